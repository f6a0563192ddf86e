/**
 * IPv4-fragmented UDP: L16 at 44.1 kHz in 20 ms packets (1,764 bytes of audio) does not fit a 1,500-byte MTU, so
 * every packet reaches the capture as two fragments; they were each skipped as `ip_fragment` and the stream was
 * never seen.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { parseFrames } from "../packets/pcap.ts";
import { PacketSource } from "../packets/packet_source.ts";
import { discoverPacketFile } from "../cli/discover_packets.ts";
import { type Frame, LinkType, SkipCounter } from "../packets/types.ts";
import { FragmentReassembler, MAX_HELD_BYTES } from "../packets/ip_fragments.ts";
import type { Row } from "../pixie/row.ts";
import { classicPcap, ethernet, ipv4, rtp, rtpTap, udp } from "./support/packet_build.ts";

const SEC = 1_700_000_000;

/** The IPv4 fragments (1,480 payload bytes each) of a UDP datagram with identification `id`. */
function fragments(datagram: Uint8Array, id: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let off = 0; off < datagram.length; off += 1480) {
    const part = datagram.subarray(off, Math.min(off + 1480, datagram.length));
    const more = off + part.length < datagram.length;
    const f = ipv4("10.0.0.1", "10.0.0.2", 17, part, { frag: (more ? 0x2000 : 0) | (off / 8) });
    f[4] = id >> 8;
    f[5] = id & 0xff;
    out.push(ethernet(0x0800, f));
  }
  return out;
}

function audio(i: number): Uint8Array {
  return new Uint8Array(1764).map((_, k) => (i * 7 + k) & 0xff);
}

Deno.test("IPv4 fragments: large L16 RTP packets are put back together, in any fragment order; a lost fragment is counted", () => {
  const records: { sec: number; frac: number; data: Uint8Array }[] = [];
  for (let i = 0; i < 100; i++) {
    const dgram = udp(5004, 40000, rtp({ pt: 11, seq: 1000 + i, ts: i * 882, ssrc: 0xabc }, audio(i)));
    let frags = fragments(dgram, 0x100 + i);
    equal(frags.length, 2);
    if (i % 3 === 1) frags = frags.reverse(); // the last fragment first
    if (i === 40) frags = [frags[0]!, frags[0]!, frags[1]!]; // a fragment captured twice
    if (i === 60) frags = [frags[0]!]; // the last fragment lost: packet 60 is lost
    for (const [k, f] of frags.entries()) {
      records.push({ sec: SEC, frac: i * 20_000_000 + k * 10_000, data: f });
    }
  }
  const { frames } = parseFrames(
    classicPcap({ nanosecond: true, littleEndian: true, linkType: LinkType.ETHERNET }, records),
  );
  const src = new PacketSource({ taps: [rtpTap()], node: "n" });
  const rows: Row[] = [];
  for (const f of frames) rows.push(...src.push(f));
  rows.push(...src.finish());
  equal(rows.length, 99);
  const seqs = rows.map((r) => r.columns.rtp_seq as number);
  deepEqual(seqs, [...Array(100).keys()].filter((i) => i !== 60).map((i) => 1000 + i));
  for (const r of rows) {
    const i = (r.columns.rtp_seq as number) - 1000;
    deepEqual(r.columns.payload, audio(i));
    equal(r.columns.rtp_codec, "L16/44100");
    equal(r.columns.rtp_lost, i === 61 ? 1 : 0);
    // Timed by the fragment that completed the datagram.
    const last = i === 40 ? 2 : 1;
    equal(r.time, BigInt(SEC) * 1_000_000_000n + BigInt(i * 20_000_000 + last * 10_000));
  }
  // The duplicate and the lone first fragment of packet 60 (given up after 1 s) are the only ones skipped.
  const skips = src.skipReport();
  equal(skips.ip_fragment, 2);
  ok(!("not_rtp" in skips));
});

Deno.test("IPv4 fragments: what cannot be put back together is counted, never decoded", () => {
  const dgram = udp(5004, 40000, rtp({ pt: 11, seq: 1, ts: 0, ssrc: 1 }, audio(1)));
  const [a, b] = fragments(dgram, 7);
  // Overlapping fragments of different extents: both given up.
  const overlap = ipv4("10.0.0.1", "10.0.0.2", 17, dgram.subarray(8, 1000), { frag: 0x2000 | 1 });
  overlap[4] = 0;
  overlap[5] = 7;
  // A TCP fragment, and a fragment cut by the snap length.
  const tcpFrag = ethernet(0x0800, ipv4("10.0.0.1", "10.0.0.2", 6, new Uint8Array(800), { frag: 0x2000 }));
  const recs = [
    { sec: SEC, frac: 0, data: a! },
    { sec: SEC, frac: 1000, data: ethernet(0x0800, overlap) },
    { sec: SEC, frac: 2000, data: b! },
    { sec: SEC, frac: 3000, data: tcpFrag },
    { sec: SEC, frac: 4000, data: a!.subarray(0, 600), origLen: a!.length },
  ];
  const { frames } = parseFrames(
    classicPcap({ nanosecond: true, littleEndian: true, linkType: LinkType.ETHERNET }, recs),
  );
  const src = new PacketSource({ taps: [rtpTap()], node: "n" });
  const rows: Row[] = [];
  for (const f of frames) rows.push(...src.push(f));
  rows.push(...src.finish());
  equal(rows.length, 0);
  // a and overlap (given up together), b (alone, given up at the end), the TCP and the cut fragments.
  equal(src.skipReport().ip_fragment, 5);
});

Deno.test("IPv4 fragments: discover finds a fragmented L16 stream and names its payload type", async () => {
  const records: { sec: number; frac: number; data: Uint8Array }[] = [];
  for (let i = 0; i < 50; i++) {
    const dgram = udp(5004, 40000, rtp({ pt: 11, seq: 1000 + i, ts: i * 882, ssrc: 0xabc }, audio(i)));
    for (const [k, f] of fragments(dgram, 0x100 + i).entries()) {
      records.push({ sec: SEC, frac: i * 20_000_000 + k * 10_000, data: f });
    }
  }
  const path = await Deno.makeTempFile({ suffix: ".pcap" });
  try {
    await Deno.writeFile(
      path,
      classicPcap({ nanosecond: true, littleEndian: true, linkType: LinkType.ETHERNET }, records),
    );
    const d = await discoverPacketFile(path);
    const g = d.groups.find((x) => x.protocol === "rtp");
    ok(g, "an RTP group");
    equal(g.port, 40000);
    equal(g.messages, 50);
    deepEqual(g.payloadTypes?.map((p) => [p.pt, p.packets, p.codec]), [[11, 50, "L16/44100"]]);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("IPv4 fragments: first fragments that never complete hold at most MAX_HELD_BYTES, the oldest given up first", () => {
  // 1,024 datagrams of up to 64 KiB each would be 64 MiB of the sensor's memory for a sender of first fragments.
  const skips = new SkipCounter();
  const r = new FragmentReassembler(skips);
  const frame = (id: number, off: number, more: boolean, bytes: number, t: number): Frame => {
    const f = ipv4("10.0.0.1", "10.0.0.2", 17, new Uint8Array(bytes), {
      frag: (more ? 0x2000 : 0) | (off / 8),
    });
    f[4] = id >> 8;
    f[5] = id & 0xff;
    return {
      timeNs: BigInt(SEC) * 1_000_000_000n + BigInt(t),
      linkType: LinkType.RAW,
      data: f,
      origLen: f.length,
      iface: 0,
    };
  };
  const first = 1000;
  for (let id = 0; id < first; id++) {
    equal(r.push(frame(id, 0, true, 8000, id), { family: 4, offset: 0 }), undefined);
  }
  ok(r.heldBytes <= MAX_HELD_BYTES, `${r.heldBytes} bytes held`);
  ok(r.heldBytes > MAX_HELD_BYTES - 8000, "filled up to the bound");
  const kept = r.size;
  equal(skips.counts.get("ip_fragment"), first - kept, "every fragment given up is counted");
  // The newest datagram still completes.
  const done = r.push(frame(first - 1, 8000, false, 100, first), { family: 4, offset: 0 });
  ok(done !== undefined, "the newest datagram completes");
  equal(done.data.length, 20 + 8100);
  ok(r.heldBytes <= MAX_HELD_BYTES - 8000);
});
