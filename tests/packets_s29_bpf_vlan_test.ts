/**
 * The live capture's BPF filter keeps a tap's packets when their frames carry 802.1Q / 802.1ad tags in the data
 * (a trunk port, a NIC without VLAN offload). The decoder follows the tags (packets/link.ts), but a port or host
 * clause reads the tag where it expects the IP header, so the kernel dropped every such packet: a sensor on such
 * an interface captured nothing. Real parts: the real tcpdump applies the filter (`tcpdump -r IN -w OUT FILTER`,
 * libpcap's compiler and filter machine, as live) to built frames; what passes goes through the PacketSource.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { parseFrames } from "../packets/pcap.ts";
import { PacketSource } from "../packets/packet_source.ts";
import { bpfFilter, parseCidr, withVlanTags } from "../packets/taps.ts";
import { isEthernetInterface } from "../packets/live_capture.ts";
import { LinkType } from "../packets/types.ts";
import type { Row } from "../pixie/row.ts";
import { classicPcap, ethernet, ipv4, rtp, rtpTap, tcp, udp } from "./support/packet_build.ts";
import { gatedTest } from "./support/tools.ts";
import { filtered } from "./support/tcpdump_filter.ts";

const tcpdumpTest = await gatedTest(import.meta.url, ["tcpdump"]);
const SEC = 1_700_000_000;

/** Tag sets a frame may carry: none, 802.1Q, 802.1ad over 802.1Q (QinQ), two 802.1Q. */
const TAGS: [number, number][][] = [
  [],
  [[0x8100, 42]],
  [[0x88a8, 7], [0x8100, 42]],
  [[0x8100, 7], [0x8100, 42]],
];

tcpdumpTest(
  "bpf: a tap's filter keeps its packets under one or two VLAN tags, and still nothing else",
  async () => {
    const tap = rtpTap({ ports: [40000], host: parseCidr("10.0.0.2") });
    const filter = bpfFilter([tap], { vlanTags: true });
    for (const tags of TAGS) {
      const records: { sec: number; frac: number; data: Uint8Array }[] = [];
      const push = (data: Uint8Array) => records.push({ sec: SEC, frac: records.length * 1_000_000, data });
      for (let i = 0; i < 5; i++) {
        const audio = new Uint8Array(160).map((_, j) => (i * 3 + j) & 0xff);
        const packet = rtp({ pt: 0, seq: i, ts: i * 160, ssrc: 0x100 }, audio);
        push(ethernet(0x0800, ipv4("10.0.0.1", "10.0.0.2", 17, udp(5004, 40000, packet)), tags));
        // Left out, tagged the same: UDP to another port, TCP to the RTP port, the tap's port on another host.
        push(ethernet(0x0800, ipv4("10.0.0.1", "10.0.0.2", 17, udp(5004, 9999, packet)), tags));
        push(ethernet(0x0800, ipv4("10.0.0.1", "10.0.0.2", 6, tcp(5004, 40000, i, 0, 0x18, audio)), tags));
        push(ethernet(0x0800, ipv4("10.0.0.1", "10.9.9.9", 17, udp(5004, 40000, packet)), tags));
      }
      const pcap = classicPcap(
        { nanosecond: true, littleEndian: true, linkType: LinkType.ETHERNET },
        records,
      );
      const what = JSON.stringify(tags);
      const kept = parseFrames(await filtered(pcap, filter)).frames;
      deepEqual(kept.map((f) => f.data), records.filter((_, k) => k % 4 === 0).map((r) => r.data), what);
      const src = new PacketSource({ taps: [tap], node: "n" });
      const rows: Row[] = [];
      for (const f of kept) rows.push(...src.push(f));
      rows.push(...src.finish());
      equal(rows.length, 5, `the RTP packets under ${what} decode`);
    }
  },
);

/** tcpdump's verdict on `filter` for link type `dlt` (compiled only): its error text, or "" when it compiles. */
async function compileError(dlt: string, filter: string): Promise<string> {
  const out = await new Deno.Command("tcpdump", {
    args: ["-d", "-y", dlt, filter],
    stdout: "null",
    stderr: "piped",
  })
    .output();
  return out.success ? "" : new TextDecoder().decode(out.stderr).trim();
}

tcpdumpTest("bpf: VLAN clauses only where libpcap has them: an Ethernet link, not -i any", async () => {
  const taps = [rtpTap({ ports: [40000] }), rtpTap({ protocol: "websocket", ports: [8080] })];
  equal(bpfFilter(taps, { vlanTags: true }), withVlanTags(bpfFilter(taps)));
  equal(await compileError("EN10MB", bpfFilter(taps, { vlanTags: true })), "");
  // `-i any` is Linux cooked capture, where `vlan` is refused: the sensor's default interface would never start.
  for (const dlt of ["LINUX_SLL", "LINUX_SLL2"]) {
    equal(await compileError(dlt, bpfFilter(taps)), "");
    ok(/no VLAN support/.test(await compileError(dlt, bpfFilter(taps, { vlanTags: true }))), dlt);
  }
});

Deno.test("isEthernetInterface: from the kernel's link type; any, loopback and odd names are not", async () => {
  equal(await isEthernetInterface("any"), false);
  equal(await isEthernetInterface("lo"), false);
  for (const name of ["", ".", "..", "../lo", "eth0/../lo"]) {
    equal(await isEthernetInterface(name), false, name);
  }
  // Whatever this host has: the answer follows /sys/class/net/NAME/type (1: ARPHRD_ETHER).
  for await (const e of Deno.readDir("/sys/class/net")) {
    const type = (await Deno.readTextFile(`/sys/class/net/${e.name}/type`)).trim();
    equal(await isEthernetInterface(e.name), type === "1", e.name);
  }
});
