/**
 * The live capture's BPF filter lets an RTP tap's UDP fragments through to the reassembler. A port filter alone
 * kept them in the kernel: IPv4's later fragments carry no ports, and no IPv6 fragment is `udp` to libpcap (its
 * next header is 44), so every RTP packet over the MTU was lost to a live capture, however well the capture-file
 * path put fragments back together.
 * Real parts: the real tcpdump applies the filter (`tcpdump -r IN -w OUT FILTER`, the same libpcap compiler and
 * filter machine as a live capture) to built IPv4 fragments and to the real IPv6-fragmented capture
 * (fixtures/packets/rtp_v6_frag.pcap); what passes goes through the PacketSource.
 */
import { deepEqual, equal } from "node:assert/strict";
import { parseFrames } from "../packets/pcap.ts";
import { PacketSource } from "../packets/packet_source.ts";
import { bpfFilter, parseCidr } from "../packets/taps.ts";
import { LinkType } from "../packets/types.ts";
import type { Row } from "../pixie/row.ts";
import { classicPcap, ethernet, ipv4, rtp, rtpTap, tcp, udp } from "./support/packet_build.ts";
import { FIX } from "./support/packet_truth.ts";
import { gatedTest } from "./support/tools.ts";
import { filtered } from "./support/tcpdump_filter.ts";

const tcpdumpTest = await gatedTest(import.meta.url, ["tcpdump"]);
const SEC = 1_700_000_000;

/** The IPv4 fragments (1,480 payload bytes each) of a UDP datagram from 10.0.0.1 to `dst`, identification `id`. */
function fragments(datagram: Uint8Array, id: number, dst = "10.0.0.2"): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let off = 0; off < datagram.length; off += 1480) {
    const part = datagram.subarray(off, Math.min(off + 1480, datagram.length));
    const more = off + part.length < datagram.length;
    const f = ipv4("10.0.0.1", dst, 17, part, { frag: (more ? 0x2000 : 0) | (off / 8) });
    f[4] = id >> 8;
    f[5] = id & 0xff;
    out.push(ethernet(0x0800, f));
  }
  return out;
}

/** Rows the packet source makes of a capture's frames for `tap`. */
function rowsOf(pcap: Uint8Array, tap = rtpTap({ ports: [40000] })): Row[] {
  const src = new PacketSource({ taps: [tap], node: "n" });
  const rows: Row[] = [];
  for (const f of parseFrames(pcap).frames) rows.push(...src.push(f));
  rows.push(...src.finish());
  return rows;
}

tcpdumpTest(
  "bpf: an RTP tap's filter keeps its IPv4 fragments, which carry no ports past the first",
  async () => {
    const records: { sec: number; frac: number; data: Uint8Array }[] = [];
    for (let i = 0; i < 10; i++) {
      const audio = new Uint8Array(1764).map((_, k) => (i * 7 + k) & 0xff);
      const dgram = udp(5004, 40000, rtp({ pt: 11, seq: 100 + i, ts: i * 882, ssrc: 0xabc }, audio));
      for (const [k, f] of fragments(dgram, 0x100 + i).entries()) {
        records.push({ sec: SEC, frac: i * 20_000_000 + k * 10_000, data: f });
      }
      // Traffic the filter must still leave out: UDP to another port, whole, and TCP.
      records.push({
        sec: SEC,
        frac: i * 20_000_000 + 50_000,
        data: ethernet(0x0800, ipv4("10.0.0.1", "10.0.0.2", 17, udp(5004, 9999, audio.subarray(0, 200)))),
      });
      records.push({
        sec: SEC,
        frac: i * 20_000_000 + 60_000,
        data: ethernet(
          0x0800,
          ipv4("10.0.0.1", "10.0.0.2", 6, tcp(5004, 40000, i, 0, 0x18, audio.subarray(0, 100))),
        ),
      });
    }
    const pcap = classicPcap({ nanosecond: true, littleEndian: true, linkType: LinkType.ETHERNET }, records);
    const tap = rtpTap({ ports: [40000] });
    const kept = await filtered(pcap, bpfFilter([tap]));
    equal(parseFrames(kept).frames.length, 20, "both fragments of each datagram, nothing else");
    const rows = rowsOf(kept, tap);
    equal(rows.length, 10, "every L16 packet put back together");
    // A tap on a host: its fragments pass, another host's do not.
    const hostTap = rtpTap({ ports: [40000], host: parseCidr("10.0.0.2") });
    const other: { sec: number; frac: number; data: Uint8Array }[] = [];
    const dgram = udp(5004, 40000, rtp({ pt: 11, seq: 1, ts: 0, ssrc: 1 }, new Uint8Array(1764)));
    for (const [k, f] of fragments(dgram, 7, "10.9.9.9").entries()) {
      other.push({
        sec: SEC,
        frac: k,
        data: f,
      });
    }
    const both = classicPcap({ nanosecond: true, littleEndian: true, linkType: LinkType.ETHERNET }, [
      ...records.slice(0, 4),
      ...other,
    ]);
    equal(
      parseFrames(await filtered(both, bpfFilter([hostTap]))).frames.length,
      2,
      "the tap host's two only",
    );
  },
);

tcpdumpTest(
  "bpf: an RTP tap's filter keeps IPv6 fragments (a real capture), which libpcap's udp never matches",
  async () => {
    const pcap = await Deno.readFile(new URL("rtp_v6_frag.pcap", FIX));
    const all = rowsOf(pcap);
    equal(all.length, 20, "the capture as recorded");
    const kept = await filtered(pcap, bpfFilter([rtpTap({ ports: [40000] })]));
    // Its RTCP report (port 40001, whole) is no tap's; the 40 fragments of the 20 RTP packets all pass.
    equal(parseFrames(kept).frames.length, 40);
    deepEqual(rowsOf(kept), all);
    const onHost = await filtered(pcap, bpfFilter([rtpTap({ ports: [40000], host: parseCidr("::1") })]));
    equal(parseFrames(onHost).frames.length, 40);
    const offHost = await filtered(pcap, bpfFilter([rtpTap({ ports: [40000], host: parseCidr("fd00::9") })]));
    equal(parseFrames(offHost).frames.length, 0);
  },
);
