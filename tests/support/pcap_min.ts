/**
 * A minimal classic-pcap reader and writer for the TCP protocol tests (independent of packets/pcap.ts, which another
 * part of the work provides): Ethernet, Linux cooked v1/v2 and raw IP; IPv4 and IPv6 (no extension headers); TCP
 * only. The writer lets fixture scripts reorder and drop records of a real capture.
 * @module
 */

import type { Packet } from "../../packets/types.ts";

/** One pcap record. */
export interface PcapRecord {
  timeNs: bigint;
  data: Uint8Array;
  origLen: number;
}

/** A parsed pcap file. */
export interface PcapFile {
  linkType: number;
  nano: boolean;
  records: PcapRecord[];
}

/** Parses a classic pcap file (either byte order, µs or ns). */
export function readPcap(bytes: Uint8Array): PcapFile {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magicBE = dv.getUint32(0, false);
  let le: boolean;
  let nano: boolean;
  if (magicBE === 0xa1b2c3d4 || magicBE === 0xa1b23c4d) [le, nano] = [false, magicBE === 0xa1b23c4d];
  else if (magicBE === 0xd4c3b2a1 || magicBE === 0x4d3cb2a1) [le, nano] = [true, magicBE === 0x4d3cb2a1];
  else throw new Error("not a classic pcap file");
  const linkType = dv.getUint32(20, le) & 0xffff;
  const records: PcapRecord[] = [];
  let o = 24;
  while (o + 16 <= bytes.length) {
    const sec = BigInt(dv.getUint32(o, le));
    const frac = BigInt(dv.getUint32(o + 4, le));
    const incl = dv.getUint32(o + 8, le);
    const origLen = dv.getUint32(o + 12, le);
    if (o + 16 + incl > bytes.length) break;
    records.push({
      timeNs: sec * 1_000_000_000n + (nano ? frac : frac * 1000n),
      data: bytes.subarray(o + 16, o + 16 + incl),
      origLen,
    });
    o += 16 + incl;
  }
  return { linkType, nano, records };
}

/** Writes a little-endian classic pcap file. */
export function writePcap(f: PcapFile): Uint8Array {
  const size = 24 + f.records.reduce((n, r) => n + 16 + r.data.length, 0);
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, f.nano ? 0xa1b23c4d : 0xa1b2c3d4, true);
  dv.setUint16(4, 2, true);
  dv.setUint16(6, 4, true);
  dv.setUint32(16, 262144, true);
  dv.setUint32(20, f.linkType, true);
  let o = 24;
  for (const r of f.records) {
    const div = f.nano ? 1_000_000_000n : 1_000_000n;
    const sec = r.timeNs / 1_000_000_000n;
    const frac = (r.timeNs % 1_000_000_000n) / (1_000_000_000n / div);
    dv.setUint32(o, Number(sec), true);
    dv.setUint32(o + 4, Number(frac), true);
    dv.setUint32(o + 8, r.data.length, true);
    dv.setUint32(o + 12, r.origLen, true);
    out.set(r.data, o + 16);
    o += 16 + r.data.length;
  }
  return out;
}

/** Decodes one record to a TCP packet; undefined for anything else. */
export function tcpPacket(linkType: number, r: PcapRecord): Packet | undefined {
  const d = r.data;
  let off: number;
  let etherType: number;
  if (linkType === 1) {
    off = 14;
    etherType = (d[12]! << 8) | d[13]!;
    while (etherType === 0x8100 && off + 4 <= d.length) {
      etherType = (d[off + 2]! << 8) | d[off + 3]!;
      off += 4;
    }
  } else if (linkType === 113) {
    off = 16;
    etherType = (d[14]! << 8) | d[15]!;
  } else if (linkType === 276) {
    off = 20;
    etherType = (d[0]! << 8) | d[1]!;
  } else if (linkType === 101) {
    off = 0;
    etherType = (d[0]! >> 4) === 6 ? 0x86dd : 0x0800;
  } else return undefined;
  let src: string, dst: string, l4: number, end: number;
  if (etherType === 0x0800) {
    const ihl = (d[off]! & 15) * 4;
    if (d[off + 9] !== 6) return undefined;
    const total = (d[off + 2]! << 8) | d[off + 3]!;
    src = [...d.subarray(off + 12, off + 16)].join(".");
    dst = [...d.subarray(off + 16, off + 20)].join(".");
    l4 = off + ihl;
    end = Math.min(d.length, off + total);
  } else if (etherType === 0x86dd) {
    if (d[off + 6] !== 6) return undefined;
    const plen = (d[off + 4]! << 8) | d[off + 5]!;
    src = v6(d.subarray(off + 8, off + 24));
    dst = v6(d.subarray(off + 24, off + 40));
    l4 = off + 40;
    end = Math.min(d.length, l4 + plen);
  } else return undefined;
  const dv = new DataView(d.buffer, d.byteOffset, d.byteLength);
  const doff = (d[l4 + 12]! >> 4) * 4;
  return {
    timeNs: r.timeNs,
    transport: "tcp",
    src,
    srcPort: dv.getUint16(l4),
    dst,
    dstPort: dv.getUint16(l4 + 2),
    payload: d.subarray(l4 + doff, end),
    tcp: { seq: dv.getUint32(l4 + 4), ack: dv.getUint32(l4 + 8), flags: d[l4 + 13]! },
    truncated: r.data.length < r.origLen,
  };
}

function v6(b: Uint8Array): string {
  const g: string[] = [];
  for (let i = 0; i < 16; i += 2) g.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return g.join(":").replace(/(^|:)0(:0)+(:|$)/, "::");
}

/** All TCP packets of a pcap file, in file order. */
export function tcpPackets(bytes: Uint8Array): Packet[] {
  const f = readPcap(bytes);
  const out: Packet[] = [];
  for (const r of f.records) {
    const p = tcpPacket(f.linkType, r);
    if (p !== undefined) out.push(p);
  }
  return out;
}
