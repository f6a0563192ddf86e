/**
 * IPv4- and IPv6-fragmented UDP: L16 at 44.1 kHz in 20 ms packets (1,764 bytes of audio) does not fit a 1,500-byte
 * MTU, so every packet reaches the capture as two fragments; they were each skipped as `ip_fragment` and the
 * stream was never seen. IPv6 fragments (a Fragment extension header, RFC 8200 §4.5) are put back together the
 * same way.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { parseFrames, PcapReader } from "../packets/pcap.ts";
import { PacketSource } from "../packets/packet_source.ts";
import { discoverPacketFile } from "../cli/discover_packets.ts";
import { type AppMessage, type Frame, LinkType, SkipCounter } from "../packets/types.ts";
import { FragmentReassembler, MAX_HELD_BYTES } from "../packets/ip_fragments.ts";
import { FrameDecoder } from "../packets/ip.ts";
import { rtpMessages, RtpSource } from "../packets/rtp_source.ts";
import type { Row } from "../pixie/row.ts";
import {
  classicPcap,
  ethernet,
  fragmentHeader,
  ipv4,
  ipv6,
  rtp,
  rtpTap,
  udp,
  type V6Ext,
} from "./support/packet_build.ts";
import { FIX } from "./support/packet_truth.ts";
import type { V6FragTruth } from "../fixtures/packets/v6_frag_receiver.ts";

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

function audio(i: number, bytes = 1764): Uint8Array {
  return new Uint8Array(bytes).map((_, k) => (i * 7 + k) & 0xff);
}

/**
 * The packet source's rows of 100 L16 packets (seq 1000 + i) sent as fragments, packet 40's first fragment captured
 * twice and packet 60's last one lost: every other packet whole, timed by the fragment that completed it, and the
 * duplicate and packet 60's lone fragment (given up after 1 s) the only ones skipped.
 */
function checkFragmentedRows(src: PacketSource, frames: Iterable<Frame>): void {
  const rows: Row[] = [];
  for (const f of frames) rows.push(...src.push(f));
  rows.push(...src.finish());
  equal(rows.length, 99);
  deepEqual(
    rows.map((r) => r.columns.rtp_seq as number),
    [...Array(100).keys()].filter((i) => i !== 60).map((i) => 1000 + i),
  );
  for (const r of rows) {
    const i = (r.columns.rtp_seq as number) - 1000;
    deepEqual(r.columns.payload, audio(i));
    equal(r.columns.rtp_codec, "L16/44100");
    equal(r.columns.rtp_lost, i === 61 ? 1 : 0);
    const last = i === 40 ? 2 : 1;
    equal(r.time, BigInt(SEC) * 1_000_000_000n + BigInt(i * 20_000_000 + last * 10_000));
  }
  const skips = src.skipReport();
  equal(skips.ip_fragment, 2);
  ok(!("not_rtp" in skips));
}

/** `discover` on a capture of `records` (50 fragmented L16/44100 packets to port 40000) proposes their RTP group. */
async function discoversL16(records: { sec: number; frac: number; data: Uint8Array }[]): Promise<void> {
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
  checkFragmentedRows(src, frames);
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
  await discoversL16(records);
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

// IPv6 -----------------------------------------------------------------------------------------------------------

const V6_SRC = "2001:db8::10";
const V6_DST = "2001:db8::20";
const V6_STREAM = "udp [2001:db8::10]:5004>[2001:db8::20]:40000";

/**
 * The IPv6 packets carrying a UDP datagram as fragments with identification `id`, `size` bytes of it each (1,232
 * by default: IPv6's minimum MTU, 1,280, less the 40-byte header and the 8-byte Fragment header); `before` are
 * extension headers of the unfragmentable part, in every fragment ahead of the Fragment header.
 */
function ipv6Fragments(
  datagram: Uint8Array,
  id: number,
  opts: { size?: number; before?: V6Ext[] } = {},
): Uint8Array[] {
  const size = opts.size ?? 1232;
  const out: Uint8Array[] = [];
  for (let off = 0; off < datagram.length; off += size) {
    const part = datagram.subarray(off, Math.min(off + size, datagram.length));
    const more = off + part.length < datagram.length;
    out.push(ipv6(V6_SRC, V6_DST, 17, part, [...(opts.before ?? []), fragmentHeader(off, more, id)]));
  }
  return out;
}

/** An Ethernet frame of an IPv6 packet captured at `ns` past SEC. */
function v6Frame(packet: Uint8Array, ns: number): Frame {
  const data = ethernet(0x86dd, packet);
  return {
    timeNs: BigInt(SEC) * 1_000_000_000n + BigInt(ns),
    linkType: LinkType.ETHERNET,
    data,
    origLen: data.length,
    iface: 0,
  };
}

/** The UDP datagram (port 5004 to 40000) of RTP packet `i` of a stream with `bytes` of audio per packet. */
function rtpDatagram(i: number, bytes = 1764, pt = 11): Uint8Array {
  return udp(5004, 40000, rtp({ pt, seq: 1000 + i, ts: i * 882, ssrc: 0xabc }, audio(i, bytes)));
}

/** Every frame through an RTP source (flushed at the end): its messages, skips and reassembler. */
function throughRtpSource(
  frames: Frame[],
): { msgs: AppMessage[]; skips: Record<string, number>; src: RtpSource } {
  const msgs: AppMessage[] = [];
  const skips = new SkipCounter();
  const src = new RtpSource((m) => msgs.push(m), {}, skips);
  for (const f of frames) src.pushFrame(f);
  src.flush();
  return { msgs, skips: skips.toJSON(), src };
}

Deno.test("IPv6 fragments: four fragments in order, a hop-by-hop header before the Fragment header, come out whole", () => {
  // L16/48000 stereo in 20 ms packets: 3,840 bytes of audio, four fragments of a 1,280-byte MTU.
  const hbh: V6Ext = { type: 0, body: new Uint8Array([5, 2, 0, 0, 1, 0]) }; // router alert + PadN: 8 bytes
  const frames: Frame[] = [];
  for (let i = 0; i < 20; i++) {
    const frags = ipv6Fragments(rtpDatagram(i, 3840, 96), 0x10000 + i, { before: [hbh] });
    equal(frags.length, 4);
    for (const [k, f] of frags.entries()) frames.push(v6Frame(f, i * 20_000_000 + k * 10_000));
  }
  const { msgs, skips, src } = throughRtpSource(frames);
  deepEqual(skips, {});
  deepEqual(src.fragments.stats, { reassembled: 20, abandoned: 0 });
  equal(src.fragments.size, 0);
  equal(src.fragments.heldBytes, 0);
  deepEqual(msgs.map((m) => m.rtp!.seq), [...Array(20).keys()].map((i) => 1000 + i));
  for (const [i, m] of msgs.entries()) {
    equal(m.stream, `${V6_STREAM} ssrc=0x00000abc`);
    equal(m.rtp!.pt, 96);
    deepEqual(m.payload, audio(i, 3840));
    // Timed by the fragment that completed it: the fourth.
    equal(m.timeNs, BigInt(SEC) * 1_000_000_000n + BigInt(i * 20_000_000 + 3 * 10_000));
  }
});

Deno.test("IPv6 fragments: any order, and fragments of two datagrams interleaved", () => {
  const orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
  const frames: Frame[] = [];
  const completedAt: number[] = [];
  // Datagrams of 2,500 bytes in fragments of 1,000 (a multiple of 8): 1,000 + 1,000 + 500, in every order.
  for (const [i, order] of orders.entries()) {
    const frags = ipv6Fragments(rtpDatagram(i, 2480), 0x20000 + i, { size: 1000 });
    equal(frags.length, 3);
    for (const [k, which] of order.entries()) {
      frames.push(v6Frame(frags[which]!, i * 20_000_000 + k * 10_000));
    }
    completedAt[i] = i * 20_000_000 + 2 * 10_000;
  }
  // Datagrams 6 and 7, interleaved: 6.0 7.2 6.2 7.0 6.1 (6 complete) 7.1 (7 complete).
  const a = ipv6Fragments(rtpDatagram(6, 2480), 0x20006, { size: 1000 });
  const b = ipv6Fragments(rtpDatagram(7, 2480), 0x20007, { size: 1000 });
  const t = 6 * 20_000_000;
  for (const [k, f] of [a[0]!, b[2]!, a[2]!, b[0]!, a[1]!, b[1]!].entries()) {
    frames.push(v6Frame(f, t + k * 10_000));
  }
  completedAt[6] = t + 4 * 10_000;
  completedAt[7] = t + 5 * 10_000;
  const { msgs, skips, src } = throughRtpSource(frames);
  deepEqual(skips, {});
  deepEqual(src.fragments.stats, { reassembled: 8, abandoned: 0 });
  deepEqual(msgs.map((m) => m.rtp!.seq), [...Array(8).keys()].map((i) => 1000 + i));
  for (const [i, m] of msgs.entries()) {
    deepEqual(m.payload, audio(i, 2480));
    equal(m.timeNs, BigInt(SEC) * 1_000_000_000n + BigInt(completedAt[i]!));
  }
});

Deno.test("IPv6 fragments: a duplicate fragment is ignored and counted, the datagram still comes out", () => {
  const frames: Frame[] = [];
  for (let i = 0; i < 10; i++) {
    const [f0, f1] = ipv6Fragments(rtpDatagram(i), 0x30000 + i);
    // Every fragment captured twice (a capture on two interfaces), the first or the last fragment first.
    const seq = i % 2 === 0 ? [f0!, f0!, f1!, f1!] : [f1!, f1!, f0!, f0!];
    for (const [k, f] of seq.entries()) frames.push(v6Frame(f, i * 20_000_000 + k * 10_000));
  }
  const { msgs, skips, src } = throughRtpSource(frames);
  deepEqual(msgs.map((m) => m.rtp!.seq), [...Array(10).keys()].map((i) => 1000 + i));
  for (const [i, m] of msgs.entries()) {
    deepEqual(m.payload, audio(i));
    // Completed by the first copy of the other fragment.
    equal(m.timeNs, BigInt(SEC) * 1_000_000_000n + BigInt(i * 20_000_000 + 2 * 10_000));
  }
  // Per datagram: the copy that came while it was pending (counted at once), and the copy that came after it was
  // complete (a datagram of its own that never completes, given up at the end).
  equal(skips.ip_fragment, 10 + 10);
  deepEqual(src.fragments.stats, { reassembled: 10, abandoned: 10 });
});

Deno.test("IPv6 fragments: overlapping fragments give the whole datagram up (RFC 5722), counted; others come out", () => {
  const [a0, a1] = ipv6Fragments(rtpDatagram(0), 0x40000);
  const dgramA = rtpDatagram(0);
  // A's bytes from 616 on again, as a fragment of its own: it overlaps A's first fragment.
  const overlap = ipv6(V6_SRC, V6_DST, 17, dgramA.subarray(616, 1848), [fragmentHeader(616, true, 0x40000)]);
  const [b0, b1] = ipv6Fragments(rtpDatagram(1), 0x40001);
  // C: two last fragments that end in different places (no overlap: one of them lies).
  const dgramC = rtpDatagram(2);
  const [c0, c1] = ipv6Fragments(dgramC, 0x40002);
  const cShort = ipv6(V6_SRC, V6_DST, 17, dgramC.subarray(1232, 1600), [
    fragmentHeader(1232, false, 0x40002),
  ]);
  const cLater = ipv6(V6_SRC, V6_DST, 17, new Uint8Array(16), [fragmentHeader(1784, false, 0x40002)]);
  // D: whole, so that B and D pass the RTP source's probation (two packets) and come out.
  const [d0, d1] = ipv6Fragments(rtpDatagram(3), 0x40003);
  const seq = [a0!, b0!, overlap, b1!, a1!, cLater, c0!, cShort, c1!, d0!, d1!];
  const { msgs, skips, src } = throughRtpSource(seq.map((f, k) => v6Frame(f, k * 10_000)));
  // Only B and D come out.
  deepEqual(msgs.map((m) => m.rtp!.seq), [1001, 1003]);
  deepEqual(msgs[0]!.payload, audio(1));
  deepEqual(msgs[1]!.payload, audio(3));
  // A's first fragment and the overlapping one (given up together), A's last one (alone, given up at the end),
  // C's cLater, c0 and cShort (given up when cShort disagreed), C's c1 (alone, given up at the end).
  equal(skips.ip_fragment, 2 + 1 + 3 + 1);
  deepEqual(src.fragments.stats, { reassembled: 2, abandoned: 4 });
  equal(src.fragments.size, 0);
  equal(src.fragments.heldBytes, 0);
});

Deno.test("IPv6 fragments: an atomic fragment is a whole packet at once, apart from fragments with its id (RFC 6946)", () => {
  // A's fragments pending when an atomic fragment with the same (source, destination, identification) comes:
  // the atomic one is the whole of packet 1 and must neither wait for nor disturb A.
  const [a0, a1] = ipv6Fragments(rtpDatagram(0), 0x50000);
  const atomic = ipv6(V6_SRC, V6_DST, 17, rtpDatagram(1, 160), [fragmentHeader(0, false, 0x50000)]);
  const frames = [v6Frame(a0!, 0), v6Frame(atomic, 20_000_000), v6Frame(a1!, 20_010_000)];
  const { msgs, skips, src } = throughRtpSource(frames);
  deepEqual(skips, {});
  deepEqual(msgs.map((m) => m.rtp!.seq), [1000, 1001]);
  deepEqual(msgs[0]!.payload, audio(0));
  equal(msgs[0]!.timeNs, BigInt(SEC) * 1_000_000_000n + 20_010_000n);
  deepEqual(msgs[1]!.payload, audio(1, 160));
  equal(msgs[1]!.timeNs, BigInt(SEC) * 1_000_000_000n + 20_000_000n);
  // The atomic fragment never entered the reassembler.
  deepEqual(src.fragments.stats, { reassembled: 1, abandoned: 0 });
});

Deno.test("IPv6 fragments: first fragments that never complete hold at most MAX_HELD_BYTES; a datagram may reach 65,535 bytes, not more", () => {
  const skips = new SkipCounter();
  const r = new FragmentReassembler(skips);
  const dec = new FrameDecoder(skips);
  dec.holdFragments = true;
  // Through the decoder, as the RTP source does: it finds the Fragment header.
  const push = (packet: Uint8Array, t: number): Frame | undefined => {
    const frame: Frame = {
      timeNs: BigInt(SEC) * 1_000_000_000n + BigInt(t),
      linkType: LinkType.RAW,
      data: packet,
      origLen: packet.length,
      iface: 0,
    };
    equal(dec.decodeView(frame), false);
    equal(dec.lastSkip, "ip_fragment");
    return r.push(frame, dec.l3, dec.view.fragmentHeader);
  };
  const first = 1000;
  for (let id = 0; id < first; id++) {
    equal(push(ipv6(V6_SRC, V6_DST, 17, new Uint8Array(8000), [fragmentHeader(0, true, id)]), id), undefined);
  }
  ok(r.heldBytes <= MAX_HELD_BYTES, `${r.heldBytes} bytes held`);
  ok(r.heldBytes > MAX_HELD_BYTES - 8000, "filled up to the bound");
  const kept = r.size;
  equal(skips.counts.get("ip_fragment"), first - kept, "every fragment given up is counted");
  // The newest datagram still completes: the IPv6 header, the Fragment header (made atomic), 8,100 bytes.
  const done = push(
    ipv6(V6_SRC, V6_DST, 17, new Uint8Array(100), [fragmentHeader(8000, false, first - 1)]),
    first,
  );
  ok(done !== undefined, "the newest datagram completes");
  equal(done.data.length, 40 + 8 + 8100);
  equal((done.data[4]! << 8) | done.data[5]!, 8 + 8100);
  deepEqual([...done.data.subarray(40, 48)], [17, 0, 0, 0, 0, 0, (first - 1) >> 8, (first - 1) & 0xff]);
  ok(r.heldBytes <= MAX_HELD_BYTES - 8000);
  r.flush();
  equal(r.heldBytes, 0);

  // The largest UDP datagram (65,535 bytes: a Payload Length of 65,535 once reassembled) comes out and decodes; a
  // fragment that would make it one byte longer is refused, counted.
  const before = skips.counts.get("ip_fragment") ?? 0;
  const big = udp(5004, 40000, new Uint8Array(65_535 - 8).map((_, k) => k & 0xff));
  const parts = ipv6Fragments(big, 0x60000);
  let whole: Frame | undefined;
  for (const [k, f] of parts.entries()) whole = push(f, k) ?? whole;
  ok(whole !== undefined, "the largest datagram completes");
  ok(dec.decodeView(whole), "and decodes");
  equal(dec.view.payloadEnd - dec.view.payloadStart, 65_535 - 8);
  deepEqual(whole.data.subarray(dec.view.payloadStart, dec.view.payloadEnd), big.subarray(8));
  const over = ipv6(V6_SRC, V6_DST, 17, new Uint8Array(9), [fragmentHeader(65_528, false, 0x60001)]);
  equal(push(over, 100), undefined);
  equal(r.size, 0, "not held");
  equal(skips.counts.get("ip_fragment"), before + 1);
});

/** Records of a pcap holding `packets` RTP packets of L16/44100 over IPv6 in fragments, through `shape`. */
function v6Records(
  packets: number,
  shape: (i: number, frags: Uint8Array[]) => Uint8Array[] = (_, f) => f,
): { sec: number; frac: number; data: Uint8Array }[] {
  const records: { sec: number; frac: number; data: Uint8Array }[] = [];
  for (let i = 0; i < packets; i++) {
    const frags = shape(i, ipv6Fragments(rtpDatagram(i), 0x70000 + i));
    for (const [k, f] of frags.entries()) {
      records.push({ sec: SEC, frac: i * 20_000_000 + k * 10_000, data: ethernet(0x86dd, f) });
    }
  }
  return records;
}

Deno.test("IPv6 fragments: large L16 RTP packets become rows through the packet source, as analyze reads a capture", () => {
  const records = v6Records(100, (i, frags) => {
    equal(frags.length, 2);
    if (i % 3 === 1) frags = frags.reverse(); // the last fragment first
    if (i === 40) frags = [frags[0]!, frags[0]!, frags[1]!]; // a fragment captured twice
    if (i === 60) frags = [frags[0]!]; // the last fragment lost: packet 60 is lost
    return frags;
  });
  const { frames } = parseFrames(
    classicPcap({ nanosecond: true, littleEndian: true, linkType: LinkType.ETHERNET }, records),
  );
  const src = new PacketSource({ taps: [rtpTap()], node: "n" });
  checkFragmentedRows(src, frames);
});

Deno.test("IPv6 fragments: discover finds a fragmented L16 stream and names its payload type", async () => {
  await discoversL16(v6Records(50));
});

Deno.test("IPv6 fragments: a real capture (ffmpeg L16 RTP, fragmented by the kernel at a 1,280-byte MTU) comes out as the receiver's kernel put it together", async () => {
  // fixtures/packets/capture_v6_frag.sh: the truth is what the receiving socket got, the kernel's reassembly.
  const truth = JSON.parse(await Deno.readTextFile(new URL("rtp_v6_frag.json", FIX))) as V6FragTruth;
  equal(truth.version, 1);
  ok(truth.packets.length >= 15, `${truth.packets.length} packets in the truth`);
  const bytes = await Deno.readFile(new URL("rtp_v6_frag.pcap", FIX));
  // Every RTP packet is in the capture as fragments only: decoded one by one, each is an ip_fragment.
  const plain = new FrameDecoder();
  for (const f of parseFrames(bytes).frames) plain.decode(f);
  equal(plain.skips.counts.get("ip_fragment"), 2 * truth.packets.length);

  const skips = new SkipCounter();
  const msgs: AppMessage[] = [];
  using file = await Deno.open(new URL("rtp_v6_frag.pcap", FIX));
  for await (const m of rtpMessages(new PcapReader(file), {}, skips)) msgs.push(m);
  // ffmpeg's one RTCP sender report (to the port above) is the only skip.
  deepEqual(skips.toJSON(), { rtcp: 1 });
  equal(msgs.length, truth.packets.length);
  for (const [k, m] of msgs.entries()) {
    const t = truth.packets[k]!;
    equal(m.stream, `udp [::1]:5004>[::1]:40000 ssrc=0x0f4a6c00`);
    deepEqual([m.rtp!.seq, m.rtp!.ts, m.rtp!.ssrc, m.rtp!.pt], [t.seq, t.ts, t.ssrc, t.pt]);
    equal(m.payload.length, t.bytes - 12);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", m.payload.slice()));
    equal([...digest].map((b) => b.toString(16).padStart(2, "0")).join(""), t.sha256, `payload of ${t.seq}`);
  }

  const d = await discoverPacketFile(new URL("rtp_v6_frag.pcap", FIX).pathname);
  const g = d.groups.find((x) => x.protocol === "rtp");
  ok(g, "an RTP group");
  deepEqual(g.payloadTypes?.map((p) => [p.pt, p.packets, p.codec]), [[
    11,
    truth.packets.length,
    "L16/44100",
  ]]);
});
