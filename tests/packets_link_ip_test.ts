import { deepEqual, equal, ok } from "node:assert/strict";
import { FrameDecoder, ipv6Text } from "../packets/ip.ts";
import { decodeLink, type L3Location } from "../packets/link.ts";
import { PcapReader } from "../packets/pcap.ts";
import { type Frame, LinkType, type Packet, TcpFlag } from "../packets/types.ts";
import {
  concat,
  ethernet,
  ipv4,
  ipv6,
  loopback,
  sll,
  sll2,
  tcp,
  udp,
  v6Bytes,
} from "./support/packet_build.ts";
import { FIX, tsharkTruth } from "./support/packet_truth.ts";

const PAYLOAD = new TextEncoder().encode("hello, packets");
const UDP4 = ipv4("10.1.2.3", "192.168.0.9", 17, udp(5004, 40000, PAYLOAD));
const UDP6 = ipv6("2001:db8::1", "fe80::2:3", 17, udp(5006, 40002, PAYLOAD));

function frame(linkType: number, data: Uint8Array, origLen = data.length): Frame {
  return { timeNs: 1_700_000_000_000_000_123n, linkType, data, origLen, iface: 0 };
}

function decodeOne(f: Frame): { p: Packet | undefined; skips: Record<string, number> } {
  const d = new FrameDecoder();
  const p = d.decode(f);
  return { p, skips: d.skips.toJSON() };
}

function expectUdp4(f: Frame): void {
  const { p, skips } = decodeOne(f);
  deepEqual(skips, {});
  ok(p);
  equal(p.transport, "udp");
  equal(p.src, "10.1.2.3");
  equal(p.dst, "192.168.0.9");
  equal(p.srcPort, 5004);
  equal(p.dstPort, 40000);
  deepEqual(p.payload, PAYLOAD);
  equal(p.truncated, false);
  equal(p.timeNs, 1_700_000_000_000_000_123n);
}

function expectUdp6(f: Frame): void {
  const { p, skips } = decodeOne(f);
  deepEqual(skips, {});
  ok(p);
  equal(p.src, "2001:db8::1");
  equal(p.dst, "fe80::2:3");
  equal(p.srcPort, 5006);
  deepEqual(p.payload, PAYLOAD);
}

Deno.test("link: Ethernet, one 802.1Q tag, QinQ (802.1ad + 802.1Q) and the old 0x9100 tag", () => {
  expectUdp4(frame(LinkType.ETHERNET, ethernet(0x0800, UDP4)));
  expectUdp4(frame(LinkType.ETHERNET, ethernet(0x0800, UDP4, [[0x8100, 42]])));
  expectUdp4(frame(LinkType.ETHERNET, ethernet(0x0800, UDP4, [[0x88a8, 100], [0x8100, 42]])));
  expectUdp4(frame(LinkType.ETHERNET, ethernet(0x0800, UDP4, [[0x9100, 7], [0x8100, 8]])));
  expectUdp6(frame(LinkType.ETHERNET, ethernet(0x86dd, UDP6, [[0x8100, 1]])));
  // Ethernet pads short frames to 60 bytes: the IP total length trims the padding off the payload.
  const small = ipv4("10.1.2.3", "192.168.0.9", 17, udp(5004, 40000, new Uint8Array([1, 2])));
  const padded = concat(ethernet(0x0800, small), new Uint8Array(60 - 14 - small.length));
  deepEqual(decodeOne(frame(LinkType.ETHERNET, padded)).p?.payload, new Uint8Array([1, 2]));
});

Deno.test("link: PPPoE session and MPLS label stack carry IP too", () => {
  const pppoe = concat(new Uint8Array([0x11, 0, 0, 1, 0, UDP4.length + 2, 0x00, 0x21]), UDP4);
  expectUdp4(frame(LinkType.ETHERNET, ethernet(0x8864, pppoe)));
  const mpls = concat(new Uint8Array([0, 0x01, 0x00, 0x40, 0, 0x02, 0x01, 0x40]), UDP6); // two labels, bottom set on the 2nd
  expectUdp6(frame(LinkType.ETHERNET, ethernet(0x8847, mpls)));
});

Deno.test("link: Linux cooked v1 and v2 (with a VLAN tag put back), NULL, LOOP, raw IP, LINKTYPE_IPV4/IPV6", () => {
  expectUdp4(frame(LinkType.LINUX_SLL, sll(0x0800, UDP4)));
  expectUdp6(frame(LinkType.LINUX_SLL, sll(0x86dd, UDP6)));
  expectUdp4(frame(LinkType.LINUX_SLL2, sll2(0x0800, UDP4)));
  expectUdp6(frame(LinkType.LINUX_SLL2, sll2(0x86dd, UDP6)));
  expectUdp4(frame(LinkType.LINUX_SLL2, sll2(0x8100, concat(new Uint8Array([0, 5, 0x08, 0x00]), UDP4))));
  expectUdp4(frame(LinkType.NULL, loopback(2, UDP4, false))); // little-endian host
  expectUdp4(frame(LinkType.NULL, loopback(2, UDP4, true))); // big-endian host
  for (const af of [10, 24, 28, 30]) expectUdp6(frame(LinkType.LOOP, loopback(af, UDP6, true)));
  expectUdp4(frame(LinkType.RAW, UDP4));
  expectUdp6(frame(LinkType.RAW, UDP6));
  expectUdp4(frame(12, UDP4)); // DLT_RAW as some systems write it
  expectUdp4(frame(LinkType.IPV4, UDP4));
  expectUdp6(frame(LinkType.IPV6, UDP6));
});

Deno.test("link: what is skipped and why", () => {
  const l3: L3Location = { family: 4, offset: 0 };
  equal(decodeLink(ethernet(0x0806, new Uint8Array(28)), LinkType.ETHERNET, l3), "not_ip"); // ARP
  equal(decodeLink(ethernet(0x0026, new Uint8Array(40)), LinkType.ETHERNET, l3), "not_ip"); // 802.3 length field
  equal(decodeLink(new Uint8Array(10), LinkType.ETHERNET, l3), "snap_truncated");
  equal(decodeLink(ethernet(0x0800, UDP4, Array(9).fill([0x8100, 1])), LinkType.ETHERNET, l3), "not_ip");
  equal(decodeLink(UDP4, 147, l3), "unsupported_link_type");
  equal(decodeLink(loopback(7, UDP4, false), LinkType.NULL, l3), "not_ip");
  equal(decodeLink(sll2(0x0806, new Uint8Array(28)), LinkType.LINUX_SLL2, l3), "not_ip");
  equal(decodeLink(new Uint8Array([0x50, 0, 0, 0]), LinkType.RAW, l3), "not_ip");
});

Deno.test("IPv4 options are skipped by IHL; fragments, other protocols and bad headers are counted", () => {
  const opts = new Uint8Array([0x94, 0x04, 0, 0, 0x01, 0x01, 0x01, 0x00]); // router alert, NOP, NOP, NOP, EOL
  expectUdp4(
    frame(LinkType.RAW, ipv4("10.1.2.3", "192.168.0.9", 17, udp(5004, 40000, PAYLOAD), { options: opts })),
  );
  const skipOf = (data: Uint8Array, origLen?: number) =>
    Object.keys(decodeOne(frame(LinkType.RAW, data, origLen ?? data.length)).skips);
  const t = udp(1, 2, PAYLOAD);
  deepEqual(skipOf(ipv4("1.1.1.1", "2.2.2.2", 17, t, { frag: 0x2000 })), ["ip_fragment"]); // MF
  deepEqual(skipOf(ipv4("1.1.1.1", "2.2.2.2", 17, t, { frag: 0x0010 })), ["ip_fragment"]); // offset 128
  deepEqual(skipOf(ipv4("1.1.1.1", "2.2.2.2", 1, t)), ["not_udp_or_tcp"]); // ICMP
  const badIhl = ipv4("1.1.1.1", "2.2.2.2", 17, t);
  badIhl[0] = 0x44;
  deepEqual(skipOf(badIhl), ["bad_ip_header"]);
  deepEqual(skipOf(ipv4("1.1.1.1", "2.2.2.2", 17, t, { totalLength: 500 })), ["bad_ip_header"]); // longer than the wire
  deepEqual(skipOf(ipv4("1.1.1.1", "2.2.2.2", 17, udp(1, 2, PAYLOAD, 4))), ["bad_transport_header"]); // UDP length < 8
  deepEqual(skipOf(ipv4("1.1.1.1", "2.2.2.2", 17, udp(1, 2, PAYLOAD, 200))), ["bad_transport_header"]);
  deepEqual(skipOf(ipv4("1.1.1.1", "2.2.2.2", 17, t).subarray(0, 24), 100), ["snap_truncated"]);
});

Deno.test("snap length: a cut payload decodes with truncated set; a cut header is snap_truncated", () => {
  const full = ipv4("10.1.2.3", "192.168.0.9", 17, udp(5004, 40000, new Uint8Array(300)));
  const { p, skips } = decodeOne(frame(LinkType.RAW, full.subarray(0, 96), full.length));
  deepEqual(skips, {});
  equal(p!.truncated, true);
  equal(p!.payload.length, 96 - 28);
});

Deno.test("IPv6 extension headers: hop-by-hop, routing, destination options, AH, atomic and real fragments", () => {
  const t = udp(5006, 40002, PAYLOAD);
  const hbh = { type: 0, body: new Uint8Array([5, 2, 0, 0, 1, 0]) }; // router alert + PadN: 8 bytes total
  const rt = { type: 43, body: new Uint8Array(22) }; // 24 bytes: routing type 0, one address... (length 2)
  const dst = { type: 60, body: new Uint8Array(6) };
  const ah = { type: 51, body: new Uint8Array(14) }; // 16 bytes: length field 2
  expectUdp6(frame(LinkType.RAW, ipv6("2001:db8::1", "fe80::2:3", 17, t, [hbh, rt, dst])));
  expectUdp6(frame(LinkType.RAW, ipv6("2001:db8::1", "fe80::2:3", 17, t, [hbh, ah, dst])));
  const atomic = { type: 44, body: new Uint8Array([0, 0, 0, 0, 0, 1]) };
  expectUdp6(frame(LinkType.RAW, ipv6("2001:db8::1", "fe80::2:3", 17, t, [atomic])));
  const frag = { type: 44, body: new Uint8Array([0, 1, 0, 0, 0, 1]) }; // M set
  deepEqual(decodeOne(frame(LinkType.RAW, ipv6("::1", "::1", 17, t, [frag]))).skips, { ip_fragment: 1 });
  const later = { type: 44, body: new Uint8Array([0x01, 0x00, 0, 0, 0, 1]) }; // offset 32
  deepEqual(decodeOne(frame(LinkType.RAW, ipv6("::1", "::1", 17, t, [dst, later]))).skips, {
    ip_fragment: 1,
  });
  deepEqual(decodeOne(frame(LinkType.RAW, ipv6("::1", "::1", 58, new Uint8Array(8)))).skips, {
    not_udp_or_tcp: 1,
  });
  deepEqual(decodeOne(frame(LinkType.RAW, ipv6("::1", "::1", 50, new Uint8Array(8)))).skips, {
    not_udp_or_tcp: 1,
  });
  const v4in6 = ipv6("::1", "::1", 17, t);
  v4in6[0] = 0x40;
  deepEqual(decodeOne(frame(LinkType.IPV6, v4in6)).skips, { bad_ip_header: 1 });
});

Deno.test("TCP: ports, sequence numbers, flags and payload after options", () => {
  const opts = new Uint8Array([2, 4, 0x05, 0xb4, 1, 1, 4, 2]); // MSS, NOP, NOP, SACK permitted
  const seg = tcp(443, 51000, 0xfffffff0, 0x12345678, TcpFlag.ACK | TcpFlag.PSH, PAYLOAD, opts);
  const { p, skips } = decodeOne(frame(LinkType.ETHERNET, ethernet(0x86dd, ipv6("::1", "::1", 6, seg))));
  deepEqual(skips, {});
  equal(p!.transport, "tcp");
  equal(p!.src, "::1");
  equal(p!.srcPort, 443);
  equal(p!.dstPort, 51000);
  deepEqual(p!.tcp, { seq: 0xfffffff0, ack: 0x12345678, flags: TcpFlag.ACK | TcpFlag.PSH });
  deepEqual(p!.payload, PAYLOAD);
  const bad = tcp(1, 2, 0, 0, TcpFlag.SYN, new Uint8Array(0));
  bad[12] = 0x30; // data offset 3
  deepEqual(decodeOne(frame(LinkType.RAW, ipv4("1.1.1.1", "2.2.2.2", 6, bad))).skips, {
    bad_transport_header: 1,
  });
});

Deno.test("IPv6 text is RFC 5952: lower case, longest zero run compressed (first on ties), IPv4-mapped dotted", () => {
  const t = (a: string) => ipv6Text(new Uint8Array(v6Bytes(a)), 0);
  equal(t("2001:0db8:0000:0000:0000:0000:0000:0001"), "2001:db8::1");
  equal(t("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");
  equal(t("2001:db8:0:1:1:1:1:1"), "2001:db8:0:1:1:1:1:1"); // a single zero group is not compressed
  equal(t("0:0:0:0:0:0:0:0"), "::");
  equal(t("0:0:0:0:0:0:0:1"), "::1");
  equal(t("fe80:0:0:0:0:0:0:0"), "fe80::");
  equal(t("2001:DB8:0:0:0:0:AB:CD"), "2001:db8::ab:cd");
  equal(t("0:0:0:0:0:ffff:c000:0280"), "::ffff:192.0.2.128");
});

Deno.test("real captures: every frame of every link type decodes to the UDP datagram tshark saw", async () => {
  for (
    const name of [
      "rtp_v4_ns.pcap",
      "rtp_v6_us.pcap",
      "rtp_any_sll.pcap",
      "rtp_any_sll2.pcap",
      "rtp_dumpcap.pcapng",
    ]
  ) {
    using file = await Deno.open(new URL(name, FIX));
    const truth = await tsharkTruth(name);
    const dec = new FrameDecoder();
    let i = 0;
    for await (const f of new PcapReader(file)) {
      const p = dec.decode(f);
      ok(p, `${name} #${i}`);
      equal(p.transport, "udp");
      // The UDP payload ends exactly where the frame does (loopback frames carry no padding).
      equal(p.payload.byteOffset + p.payload.length, f.data.byteOffset + f.data.length, `${name} #${i}`);
      if (truth[i]!.seq !== null) ok(p.payload.length > 12 && p.payload.length <= 172, `${name} #${i}`);
      equal(p.src, name.includes("v6") ? "::1" : "127.0.0.1");
      i++;
    }
    equal(i, truth.length);
    deepEqual(dec.skips.toJSON(), {}, name);
  }
});
