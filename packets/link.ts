/**
 * Link-layer decoding: finds the IP header inside a captured frame. Ethernet (with any number of 802.1Q /
 * 802.1ad / QinQ tags, PPPoE sessions and MPLS label stacks), Linux cooked captures v1 and v2 (`tcpdump -i any`),
 * raw IP, BSD NULL and OpenBSD LOOP loopback, LINKTYPE_IPV4/IPV6.
 *
 * Allocation-free: the result is written into a caller-owned {@link L3Location}.
 * @module
 */

import { LinkType, type SkipReason } from "./types.ts";

/** Where the IP header of a frame starts. */
export interface L3Location {
  /** IP version of the header at `offset`. */
  family: 4 | 6;
  /** Byte offset of the IP header in the frame's data. */
  offset: number;
}

const ETH_IPV4 = 0x0800;
const ETH_IPV6 = 0x86dd;
const ETH_VLAN = 0x8100;
const ETH_QINQ = 0x88a8;
const ETH_QINQ_OLD1 = 0x9100;
const ETH_QINQ_OLD2 = 0x9200;
const ETH_PPPOE_SESSION = 0x8864;
const ETH_MPLS = 0x8847;
const ETH_MPLS_MC = 0x8848;
/** Tags followed before giving up (QinQ is 2; more is a malformed or hostile frame). */
const MAX_TAGS = 8;

/** DLT_RAW as written by some systems' libpcap (OpenBSD 14, others 12) instead of LINKTYPE_RAW 101. */
const RAW_ALIASES = new Set([12, 14]);

/** Address families of IPv6 in NULL/LOOP headers across BSDs, Darwin and Linux. */
function isAfInet6(af: number): boolean {
  return af === 24 || af === 28 || af === 30 || af === 10;
}

/** Family from the version nibble at `off`, or 0 when it is neither 4 nor 6. */
function versionAt(data: Uint8Array, off: number): 0 | 4 | 6 {
  if (off >= data.length) return 0;
  const v = data[off]! >> 4;
  return v === 4 ? 4 : v === 6 ? 6 : 0;
}

/**
 * Continues from an EtherType at `typeOff` (Ethernet, SLL): follows VLAN tags, PPPoE and MPLS to the IP header.
 * Returns undefined on success (out filled) or why the frame is skipped.
 */
function fromEtherType(data: Uint8Array, typeOff: number, out: L3Location): SkipReason | undefined {
  let off = typeOff;
  for (let tags = 0; tags <= MAX_TAGS; tags++) {
    if (off + 2 > data.length) return "snap_truncated";
    const type = (data[off]! << 8) | data[off + 1]!;
    const next = off + 2;
    switch (type) {
      case ETH_IPV4:
        out.family = 4;
        out.offset = next;
        return undefined;
      case ETH_IPV6:
        out.family = 6;
        out.offset = next;
        return undefined;
      case ETH_VLAN:
      case ETH_QINQ:
      case ETH_QINQ_OLD1:
      case ETH_QINQ_OLD2:
        // Tag control information (2 bytes), then the inner EtherType.
        off = next + 2;
        continue;
      case ETH_PPPOE_SESSION: {
        // PPPoE header (6 bytes), then the PPP protocol (2 bytes).
        const p = next + 6;
        if (p + 2 > data.length) return "snap_truncated";
        const proto = (data[p]! << 8) | data[p + 1]!;
        if (proto === 0x0021) out.family = 4;
        else if (proto === 0x0057) out.family = 6;
        else return "not_ip";
        out.offset = p + 2;
        return undefined;
      }
      case ETH_MPLS:
      case ETH_MPLS_MC: {
        // Label stack entries of 4 bytes until the bottom-of-stack bit; the payload's version nibble tells IP.
        let p = next;
        for (let i = 0; i < MAX_TAGS; i++) {
          if (p + 4 > data.length) return "snap_truncated";
          const bottom = (data[p + 2]! & 0x01) !== 0;
          p += 4;
          if (bottom) {
            const fam = versionAt(data, p);
            if (fam === 0) return "not_ip";
            out.family = fam;
            out.offset = p;
            return undefined;
          }
        }
        return "not_ip";
      }
      default:
        return "not_ip";
    }
  }
  return "not_ip";
}

/**
 * Locates the IP header of a frame of link type `linkType` (a pcap LINKTYPE_* value).
 * Returns undefined on success (`out` filled) or the skip reason: `unsupported_link_type`, `not_ip` (ARP, LLC,
 * other protocols), `snap_truncated` (the capture ends inside the link header).
 */
export function decodeLink(data: Uint8Array, linkType: number, out: L3Location): SkipReason | undefined {
  switch (linkType) {
    case LinkType.ETHERNET:
      if (data.length < 14) return "snap_truncated";
      return fromEtherType(data, 12, out);
    case LinkType.LINUX_SLL:
      // packet type(2) ARPHRD(2) address length(2) address(8) protocol(2)
      if (data.length < 16) return "snap_truncated";
      return fromEtherType(data, 14, out);
    case LinkType.LINUX_SLL2: // protocol(2) reserved(2) interface index(4) ARPHRD(2) packet type(1) address length(1) address(8)
    {
      if (data.length < 20) return "snap_truncated";
      // The protocol comes first and the payload only after the 20-byte header, so it is read here.
      const proto = (data[0]! << 8) | data[1]!;
      if (proto === ETH_IPV4 || proto === ETH_IPV6) {
        out.family = proto === ETH_IPV4 ? 4 : 6;
        out.offset = 20;
        return undefined;
      }
      // A VLAN tag libpcap put back: tag control (2 bytes) at 20, then the inner EtherType.
      if (proto === ETH_VLAN || proto === ETH_QINQ) return fromEtherType(data, 22, out);
      return "not_ip";
    }
    case LinkType.NULL:
    case LinkType.LOOP: {
      if (data.length < 4) return "snap_truncated";
      // NULL is in the capturing host's byte order, LOOP in network order; families are small, so whichever
      // reading is small is the right one.
      const le = data[0]! | (data[1]! << 8) | (data[2]! << 16) | (data[3]! << 24);
      const be = (data[0]! << 24) | (data[1]! << 16) | (data[2]! << 8) | data[3]!;
      const af = (le >>> 0) <= 0xffff ? le : be;
      if (af === 2) out.family = 4;
      else if (isAfInet6(af)) out.family = 6;
      else return "not_ip";
      out.offset = 4;
      return undefined;
    }
    case LinkType.RAW: {
      const fam = versionAt(data, 0);
      if (fam === 0) return data.length === 0 ? "snap_truncated" : "not_ip";
      out.family = fam;
      out.offset = 0;
      return undefined;
    }
    case LinkType.IPV4:
      out.family = 4;
      out.offset = 0;
      return undefined;
    case LinkType.IPV6:
      out.family = 6;
      out.offset = 0;
      return undefined;
    default:
      if (RAW_ALIASES.has(linkType)) return decodeLink(data, LinkType.RAW, out);
      return "unsupported_link_type";
  }
}
