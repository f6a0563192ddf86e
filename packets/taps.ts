/**
 * Packet taps: which packets belong to which query (`<measurement>/<tap>`), decided from the flow's ports and
 * addresses and, live, the pod on either side; and the BPF filter that keeps the kernel from copying the rest.
 * Config-free: `cli/` turns `packets:` rules into {@link PacketTap}s.
 * @module
 */
import type { AppProtocol, FlowDirection } from "./types.ts";
import type { RtpCodec } from "./rtp_codecs.ts";

/** An address block: IPv4 or IPv6 bytes and a prefix length. */
export interface Cidr {
  bytes: Uint8Array;
  prefix: number;
}

/** One tap: a query fed from packets. */
export interface PacketTap {
  /** `<measurement>/<tap>`. */
  query: string;
  protocol: AppProtocol;
  /** Ports on either side; empty with no ranges: any port. */
  ports: readonly number[];
  portRanges: readonly (readonly [number, number])[];
  /** Address or block on either side. */
  host?: Cidr;
  /** Glob on `namespace/pod` (needs pod metadata). */
  pod?: string;
  direction: "any" | "to_pod" | "from_pod";
  /** rtp: dynamic payload types. */
  payloadTypes: ReadonlyMap<number, RtpCodec>;
  /** http: which bodies the tap takes (default requests). */
  httpBodies?: "requests" | "responses" | "both";
}

/** Resolves an address to the pod that owns it (live, with Kubernetes metadata); undefined when unknown. */
export type PodResolver = (addr: string, port: number) => string | undefined;

/** Parses `10.0.0.0/8`, `10.1.2.3`, `fd00::/8` or `::1`. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf("/");
  const addr = slash < 0 ? text : text.slice(0, slash);
  const bytes = parseIp(addr.trim());
  if (!bytes) return undefined;
  const max = bytes.length * 8;
  if (slash < 0) return { bytes, prefix: max };
  const p = text.slice(slash + 1).trim();
  if (!/^\d{1,3}$/.test(p) || Number(p) > max) return undefined;
  return { bytes, prefix: Number(p) };
}

/** Parses a textual IPv4 or IPv6 address into 4 or 16 bytes; undefined when malformed. */
export function parseIp(text: string): Uint8Array | undefined {
  if (text.includes(":")) return parseIpv6(text);
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const s = parts[i]!;
    if (!/^\d{1,3}$/.test(s) || Number(s) > 255) return undefined;
    out[i] = Number(s);
  }
  return out;
}

function parseIpv6(text: string): Uint8Array | undefined {
  let s = text;
  const zone = s.indexOf("%");
  if (zone >= 0) s = s.slice(0, zone);
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups.
  const lastColon = s.lastIndexOf(":");
  const tail = s.slice(lastColon + 1);
  if (tail.includes(".")) {
    const v4 = parseIp(tail);
    if (!v4) return undefined;
    s = `${s.slice(0, lastColon + 1)}${((v4[0]! << 8) | v4[1]!).toString(16)}:${
      ((v4[2]! << 8) | v4[3]!).toString(16)
    }`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const group = (h: string) => (h === "" ? [] : h.split(":"));
  const head = group(halves[0]!);
  const rest = halves.length === 2 ? group(halves[1]!) : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...rest];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const g = groups[i]!;
    if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return undefined;
    const v = parseInt(g, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  }
  return out;
}

/** True when `addr` (textual) lies in `block`. */
export function inCidr(addr: string, block: Cidr): boolean {
  const b = parseIp(addr);
  if (!b || b.length !== block.bytes.length) return false;
  let bits = block.prefix;
  for (let i = 0; i < b.length && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((b[i]! & mask) !== (block.bytes[i]! & mask)) return false;
  }
  return true;
}

const globs = new Map<string, RegExp>();

/** Glob match with `*` (any run) and `?` (one character). */
export function globMatch(glob: string, text: string): boolean {
  let re = globs.get(glob);
  if (!re) {
    re = new RegExp(
      "^" + glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") + "$",
    );
    if (globs.size > 1000) globs.clear();
    globs.set(glob, re);
  }
  return re.test(text);
}

function portMatches(tap: PacketTap, port: number): boolean {
  if (tap.ports.length === 0 && tap.portRanges.length === 0) return true;
  if (tap.ports.includes(port)) return true;
  for (const [lo, hi] of tap.portRanges) if (port >= lo && port <= hi) return true;
  return false;
}

/**
 * Whether a tap names any port at all. Where TCP taps of different protocols take one flow, one that names its port
 * decides the parser before one of any port (see `packet_source.ts`).
 */
export function hasPorts(tap: PacketTap): boolean {
  return tap.ports.length > 0 || tap.portRanges.length > 0;
}

/**
 * The part of {@link tapMatches} that never changes for a flow: ports and hosts. Parsers keep per-flow state on
 * this (pods come and go; their part is decided per message stream, where it is cheap to decide again).
 */
export function tapMatchesAddresses(tap: PacketTap, f: FlowDirection): boolean {
  if (!portMatches(tap, f.srcPort) && !portMatches(tap, f.dstPort)) return false;
  return !(tap.host && !inCidr(f.src, tap.host) && !inCidr(f.dst, tap.host));
}

/**
 * Whether a flow direction belongs to `tap`: a port on either side in the tap's ports, the host on either side,
 * and with pod metadata the pod glob on the side the direction names. Without a resolver, pod and direction
 * filters cannot hold: such a tap matches nothing (the caller warns once).
 */
export function tapMatches(tap: PacketTap, f: FlowDirection, pods?: PodResolver): boolean {
  if (!tapMatchesAddresses(tap, f)) return false;
  if (tap.pod !== undefined || tap.direction !== "any") {
    if (!pods) return false;
    const srcPod = pods(f.src, f.srcPort);
    const dstPod = pods(f.dst, f.dstPort);
    const ok = (p: string | undefined) => p !== undefined && (tap.pod === undefined || globMatch(tap.pod, p));
    if (tap.direction === "to_pod") return ok(dstPod);
    if (tap.direction === "from_pod") return ok(srcPod);
    return ok(srcPod) || ok(dstPod);
  }
  return true;
}

/**
 * The BPF filter for a set of taps: the transport each protocol uses, restricted to the taps' ports and hosts,
 * so the kernel copies nothing else. A tap without ports widens its transport to every port. `vlanTags`: the
 * same under one or two VLAN tags too ({@link withVlanTags}; only for an Ethernet link, where libpcap has `vlan`).
 */
export function bpfFilter(taps: readonly PacketTap[], opts: { vlanTags?: boolean } = {}): string {
  const parts = new Set<string>();
  for (const t of taps) {
    const transport = t.protocol === "rtp" ? "udp" : "tcp";
    const terms: string[] = [transport];
    const ports = [
      ...t.ports.map((p) => `port ${p}`),
      ...t.portRanges.map(([lo, hi]) => (lo === hi ? `port ${lo}` : `portrange ${lo}-${hi}`)),
    ];
    if (ports.length > 0) terms.push(ports.length === 1 ? ports[0]! : `(${ports.join(" or ")})`);
    const net = t.host ? `net ${cidrText(t.host)}` : undefined;
    if (net) terms.push(net);
    parts.add(terms.length === 1 ? terms[0]! : `(${terms.join(" and ")})`);
    if (t.protocol === "rtp") parts.add(net ? `(${UDP_FRAGMENTS} and ${net})` : UDP_FRAGMENTS);
  }
  const list = [...parts];
  if (list.length === 0) return "";
  const filter = list.join(" or ");
  return opts.vlanTags ? withVlanTags(filter) : filter;
}

/**
 * `filter` for untagged frames and for frames carrying one or two 802.1Q/802.1ad tags in their data (a trunk
 * port, a NIC without VLAN offload: link.ts decodes them, but a port or host clause reads the tag where it expects
 * the IP header, so the kernel dropped every such packet before). Nested because libpcap's `vlan` moves every
 * later offset of the expression by the tag's 4 bytes: `F or (vlan and F) or (vlan and vlan and F)` would read a
 * double tag 12 bytes in. A tag the kernel keeps out of the data (VLAN offload, `-i any`) matches `filter` itself.
 * libpcap refuses `vlan` on a link that is not Ethernet ("no VLAN support for Linux cooked v1": `-i any`).
 */
export function withVlanTags(filter: string): string {
  return `${filter} or (vlan and (${filter} or (vlan and (${filter}))))`;
}

/**
 * UDP fragments a port filter cannot see, for the reassembler (packets/ip_fragments.ts) to put back together
 * with the first: IPv4's later fragments carry no ports (libpcap's `port` wants offset 0), and no IPv6 fragment
 * is `udp` to libpcap (its next header is the Fragment header's, 44; the UDP header follows it only in the first).
 * Without them every RTP packet over the MTU (an L16/44100 stream in 20 ms packets) was lost to a live capture,
 * whatever the capture file path could reassemble. Fragments are rare; those of other UDP traffic are copied too
 * and skipped as `ip_fragment` or as no tap's.
 */
const UDP_FRAGMENTS = "((ip proto 17 and ip[6:2] & 0x1fff != 0) or (ip6[6] == 44 and ip6[40] == 17))";

/**
 * Renders a block as `network/prefix`: the address with its host bits cleared (`10.1.2.3/8` is the block
 * 10.0.0.0/8, as {@link inCidr} reads it; libpcap refuses a `net` with host bits set).
 */
export function cidrText(c: Cidr): string {
  const b = c.bytes.map((x, i) => {
    const bits = c.prefix - 8 * i;
    return bits >= 8 ? x : bits <= 0 ? 0 : x & (0xff << (8 - bits));
  });
  if (b.length === 4) return `${[...b].join(".")}/${c.prefix}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return `${groups.join(":")}/${c.prefix}`;
}
