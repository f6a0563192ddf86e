/**
 * IP and transport decoding: IPv4 (with options), IPv6 (hop-by-hop, routing, destination options, AH and atomic
 * fragment headers), UDP and TCP headers, into the {@link Packet} of `types.ts`.
 *
 * Two levels: {@link decodeIp} fills a reusable {@link L4View} with offsets and numbers only (no strings, no
 * allocation: the RTP hot path uses it with {@link flowKey}); {@link FrameDecoder} runs link + IP + transport
 * for a {@link Frame}, counts every skip by {@link SkipReason}, and builds {@link Packet}s with cached address
 * strings. Checksums are not verified: captures on the sending host carry offloaded (unfilled) checksums.
 * @module
 */

import { decodeLink, type L3Location } from "./link.ts";
import { type Frame, type Packet, SkipCounter, type SkipReason } from "./types.ts";

/** IP protocol numbers this layer hands on. */
export const IpProto = { TCP: 6, UDP: 17 } as const;

/** A decoded IP + UDP/TCP header, as offsets into the frame's data. Reused from packet to packet. */
export class L4View {
  family: 4 | 6 = 4;
  /** Offset of the IP header. */
  ipOffset = 0;
  /** Offsets of the source and destination addresses (4 or 16 bytes). */
  srcOffset = 0;
  dstOffset = 0;
  /** {@link IpProto.UDP} or {@link IpProto.TCP}. */
  proto = 0;
  srcPort = 0;
  dstPort = 0;
  /** Transport payload: data[payloadStart, payloadEnd). */
  payloadStart = 0;
  payloadEnd = 0;
  /** The capture cut the payload short. */
  truncated = false;
  /** Where the payload ends on the wire: past `payloadEnd` by the bytes the capture cut when `truncated`. */
  wireEnd = 0;
  /** TCP only. */
  tcpSeq = 0;
  tcpAck = 0;
  tcpFlags = 0;
  /**
   * After {@link decodeIp} refused an IPv6 frame as `ip_fragment` (and only then: accepted frames do not set it):
   * the offset of its Fragment header, which the reassembler of `ip_fragments.ts` reads from.
   */
  fragmentHeader = 0;
}

/** IPv6 extension headers followed before giving up. */
const MAX_EXT_HEADERS = 8;

/**
 * Decodes the IP header at `l3` and the UDP/TCP header after it into `out`.
 * `origLen` (the frame's length on the wire) separates a snap-length cut (`snap_truncated`, or
 * `out.truncated` when only payload is missing) from a lying length field (`bad_ip_header`).
 * Returns undefined on success or the skip reason.
 */
export function decodeIp(
  data: Uint8Array,
  l3: L3Location,
  origLen: number,
  out: L4View,
): SkipReason | undefined {
  const ip = l3.offset;
  const cut = origLen > data.length; // the capture kept less than the wire carried
  let proto: number;
  let l4: number;
  let ipEnd: number;
  if (l3.family === 4) {
    if (ip + 20 > data.length) return cut ? "snap_truncated" : "bad_ip_header";
    const vihl = data[ip]!;
    if (vihl >> 4 !== 4) return "bad_ip_header";
    const ihl = (vihl & 0x0f) * 4;
    if (ihl < 20) return "bad_ip_header";
    const total = (data[ip + 2]! << 8) | data[ip + 3]!;
    // Total length 0 is what segmentation offload leaves in captures on the sending host.
    ipEnd = total === 0 ? Math.max(data.length, origLen) : ip + total;
    if (total !== 0 && total < ihl) return "bad_ip_header";
    const frag = (data[ip + 6]! << 8) | data[ip + 7]!;
    if ((frag & 0x3fff) !== 0) return "ip_fragment"; // MF set or non-zero offset
    proto = data[ip + 9]!;
    l4 = ip + ihl;
    if (l4 > data.length) return cut ? "snap_truncated" : "bad_ip_header";
    out.srcOffset = ip + 12;
    out.dstOffset = ip + 16;
  } else {
    if (ip + 40 > data.length) return cut ? "snap_truncated" : "bad_ip_header";
    if (data[ip]! >> 4 !== 6) return "bad_ip_header";
    const plen = (data[ip + 4]! << 8) | data[ip + 5]!;
    ipEnd = plen === 0 ? Math.max(data.length, origLen) : ip + 40 + plen; // 0: jumbogram or offload
    proto = data[ip + 6]!;
    l4 = ip + 40;
    for (let n = 0;; n++) {
      if (proto === IpProto.UDP || proto === IpProto.TCP) break;
      if (n === MAX_EXT_HEADERS) return "not_udp_or_tcp";
      if (proto === 0 || proto === 43 || proto === 60) {
        // Hop-by-hop, routing, destination options: next header, length in 8-byte units beyond the first 8.
        if (l4 + 2 > data.length) return cut ? "snap_truncated" : "bad_ip_header";
        const next = data[l4]!;
        l4 += (data[l4 + 1]! + 1) * 8;
        proto = next;
      } else if (proto === 44) {
        if (l4 + 8 > data.length) return cut ? "snap_truncated" : "bad_ip_header";
        const offM = (data[l4 + 2]! << 8) | data[l4 + 3]!;
        // An atomic fragment (offset 0, no more fragments) is a whole packet (RFC 6946); a real fragment is refused,
        // with where its Fragment header is: the header chain before it is not walked again to put it together.
        if ((offM & 0xfff9) !== 0) {
          out.fragmentHeader = l4;
          return "ip_fragment";
        }
        proto = data[l4]!;
        l4 += 8;
      } else if (proto === 51) {
        // Authentication header: length in 4-byte units minus 2.
        if (l4 + 2 > data.length) return cut ? "snap_truncated" : "bad_ip_header";
        const next = data[l4]!;
        l4 += (data[l4 + 1]! + 2) * 4;
        proto = next;
      } else {
        return "not_udp_or_tcp"; // ESP, ICMPv6, no next header, others
      }
      if (l4 > ipEnd) return "bad_ip_header";
    }
    out.srcOffset = ip + 8;
    out.dstOffset = ip + 24;
  }
  if (proto !== IpProto.UDP && proto !== IpProto.TCP) return "not_udp_or_tcp";
  // The IP length may exceed what was captured (snap length) but never what the wire carried.
  if (ipEnd > Math.max(data.length, origLen)) return "bad_ip_header";
  out.family = l3.family;
  out.ipOffset = ip;
  out.proto = proto;
  if (proto === IpProto.UDP) {
    if (l4 + 8 > ipEnd) return "bad_transport_header";
    if (l4 + 8 > data.length) return "snap_truncated";
    out.srcPort = (data[l4]! << 8) | data[l4 + 1]!;
    out.dstPort = (data[l4 + 2]! << 8) | data[l4 + 3]!;
    const ulen = (data[l4 + 4]! << 8) | data[l4 + 5]!;
    // UDP length 0 only occurs in jumbograms: the IP length rules then.
    const end = ulen === 0 ? ipEnd : l4 + ulen;
    if (ulen !== 0 && (ulen < 8 || end > ipEnd)) return "bad_transport_header";
    out.payloadStart = l4 + 8;
    out.truncated = end > data.length;
    out.payloadEnd = out.truncated ? data.length : end;
    out.wireEnd = end;
  } else {
    if (l4 + 20 > ipEnd) return "bad_transport_header";
    if (l4 + 20 > data.length) return "snap_truncated";
    const hlen = (data[l4 + 12]! >> 4) * 4;
    if (hlen < 20 || l4 + hlen > ipEnd) return "bad_transport_header";
    if (l4 + hlen > data.length) return "snap_truncated";
    out.srcPort = (data[l4]! << 8) | data[l4 + 1]!;
    out.dstPort = (data[l4 + 2]! << 8) | data[l4 + 3]!;
    out.tcpSeq = ((data[l4 + 4]! << 24) | (data[l4 + 5]! << 16) | (data[l4 + 6]! << 8) | data[l4 + 7]!) >>> 0;
    out.tcpAck = ((data[l4 + 8]! << 24) | (data[l4 + 9]! << 16) | (data[l4 + 10]! << 8) | data[l4 + 11]!) >>>
      0;
    out.tcpFlags = data[l4 + 13]!;
    out.payloadStart = l4 + hlen;
    out.truncated = ipEnd > data.length;
    out.payloadEnd = out.truncated ? data.length : ipEnd;
    out.wireEnd = ipEnd;
  }
  return undefined;
}

/** Dotted-quad text of the IPv4 address at `off`. */
export function ipv4Text(data: Uint8Array, off: number): string {
  return `${data[off]}.${data[off + 1]}.${data[off + 2]}.${data[off + 3]}`;
}

/** RFC 5952 text of the IPv6 address at `off`: lower-case, longest zero run as `::`, IPv4-mapped dotted. */
export function ipv6Text(data: Uint8Array, off: number): string {
  const g: number[] = new Array(8);
  for (let i = 0; i < 8; i++) g[i] = (data[off + 2 * i]! << 8) | data[off + 2 * i + 1]!;
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${ipv4Text(data, off + 12)}`;
  }
  // Longest run of at least two zero groups (the first one on a tie) becomes "::".
  let bestStart = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number) => g.slice(from, to).map((x) => x.toString(16)).join(":");
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLen, 8)}`;
}

/**
 * A compact string identifying the flow direction (protocol, addresses, ports) of the decoded view, built from
 * the raw bytes: cheap to make and to hash, for per-flow caches. Not for display.
 */
export function flowKey(data: Uint8Array, v: L4View): string {
  const s = v.srcOffset, d = v.dstOffset;
  if (v.family === 4) {
    return String.fromCharCode(
      v.proto,
      (data[s]! << 8) | data[s + 1]!,
      (data[s + 2]! << 8) | data[s + 3]!,
      (data[d]! << 8) | data[d + 1]!,
      (data[d + 2]! << 8) | data[d + 3]!,
      v.srcPort,
      v.dstPort,
    );
  }
  const codes: number[] = [v.proto | 0x100];
  for (let i = 0; i < 16; i += 2) codes.push((data[s + i]! << 8) | data[s + i + 1]!);
  for (let i = 0; i < 16; i += 2) codes.push((data[d + i]! << 8) | data[d + i + 1]!);
  codes.push(v.srcPort, v.dstPort);
  return String.fromCharCode(...codes);
}

/** Address strings cached by their bytes; cleared when it grows past this many entries. */
const ADDR_CACHE_MAX = 65_536;

/**
 * Link + IP + transport decoding of frames with every skip counted by reason in {@link skips}.
 *
 * ```ts
 * const dec = new FrameDecoder();
 * for await (const frame of new PcapReader(file)) {
 *   const p = dec.decode(frame);   // Packet | undefined (skipped and counted)
 * }
 * ```
 */
export class FrameDecoder {
  /** The last successfully decoded frame's headers (valid until the next call). */
  readonly view: L4View = new L4View();
  /** Skip counts by reason. */
  readonly skips: SkipCounter;
  /** Frames seen, and frames that decoded to a UDP datagram or TCP segment. */
  frames = 0;
  decoded = 0;
  /**
   * IP fragments are left for the caller to count (the `FragmentReassembler` of `ip_fragments.ts` counts those it cannot put
   * back together): {@link decodeView} returns false with {@link lastSkip} `ip_fragment` and counts nothing.
   */
  holdFragments = false;
  /** Why the last frame {@link decodeView} refused was skipped (not reset by a frame it accepts). */
  lastSkip: SkipReason | undefined;
  /** Where the IP header of the last frame is (for the reassembler, after an `ip_fragment`). */
  readonly l3: L3Location = { family: 4, offset: 0 };
  readonly #v4Names = new Map<number, string>();
  readonly #v6Names = new Map<string, string>();

  constructor(skips: SkipCounter = new SkipCounter()) {
    this.skips = skips;
  }

  /**
   * Decodes headers into {@link view} without building strings; false when the frame is skipped (counted).
   * A UDP datagram or TCP segment cut short by the snap length decodes with `view.truncated` set.
   */
  decodeView(frame: Frame): boolean {
    this.frames++;
    const why = decodeLink(frame.data, frame.linkType, this.l3) ??
      decodeIp(frame.data, this.l3, frame.origLen, this.view);
    if (why !== undefined) {
      this.lastSkip = why;
      if (why !== "ip_fragment" || !this.holdFragments) this.skips.add(why);
      return false;
    }
    this.decoded++;
    return true;
  }

  /** Decodes a frame into a {@link Packet}, or undefined when it is skipped (counted by reason). */
  decode(frame: Frame): Packet | undefined {
    return this.decodeView(frame) ? this.packet(frame) : undefined;
  }

  /** The {@link Packet} of the frame {@link decodeView} last accepted (its `view` must still be current). */
  packet(frame: Frame): Packet {
    const v = this.view;
    const data = frame.data;
    const p: Packet = {
      timeNs: frame.timeNs,
      transport: v.proto === IpProto.UDP ? "udp" : "tcp",
      src: this.address(data, v.srcOffset),
      srcPort: v.srcPort,
      dst: this.address(data, v.dstOffset),
      dstPort: v.dstPort,
      payload: data.subarray(v.payloadStart, v.payloadEnd),
      truncated: v.truncated,
    };
    if (v.proto === IpProto.TCP) p.tcp = { seq: v.tcpSeq, ack: v.tcpAck, flags: v.tcpFlags };
    if (v.truncated) p.cutBytes = v.wireEnd - v.payloadEnd;
    return p;
  }

  /** Text of the address at `off` (family of the current view), from a bounded cache. */
  address(data: Uint8Array, off: number): string {
    if (this.view.family === 4) {
      const key = ((data[off]! << 24) | (data[off + 1]! << 16) | (data[off + 2]! << 8) | data[off + 3]!) >>>
        0;
      let s = this.#v4Names.get(key);
      if (s === undefined) {
        if (this.#v4Names.size >= ADDR_CACHE_MAX) this.#v4Names.clear();
        s = ipv4Text(data, off);
        this.#v4Names.set(key, s);
      }
      return s;
    }
    let k = "";
    for (let i = 0; i < 16; i += 2) k += String.fromCharCode((data[off + i]! << 8) | data[off + i + 1]!);
    let s = this.#v6Names.get(k);
    if (s === undefined) {
      if (this.#v6Names.size >= ADDR_CACHE_MAX) this.#v6Names.clear();
      s = ipv6Text(data, off);
      this.#v6Names.set(k, s);
    }
    return s;
  }
}
