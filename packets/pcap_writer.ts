/**
 * Classic pcap writing (nanosecond or microsecond magic, little-endian), the format `tcpdump -r`, Wireshark and
 * {@link PcapReader} all read. Used by fixture generators and tests; a live source's `record` can use it too.
 * @module
 */

import type { Frame } from "./types.ts";

/** The 24-byte file header. `nanosecond` selects the a1b23c4d magic (times kept to the ns). */
export function pcapFileHeader(
  linkType: number,
  opts: { nanosecond?: boolean; snapLen?: number } = {},
): Uint8Array {
  const b = new Uint8Array(24);
  const v = new DataView(b.buffer);
  v.setUint32(0, opts.nanosecond === false ? 0xa1b2c3d4 : 0xa1b23c4d, true);
  v.setUint16(4, 2, true);
  v.setUint16(6, 4, true);
  v.setUint32(16, opts.snapLen ?? 262_144, true);
  v.setUint32(20, linkType, true);
  return b;
}

/** One record (16-byte header + data) for a file whose header said `nanosecond` (default) or microsecond. */
export function pcapRecord(frame: Pick<Frame, "timeNs" | "data" | "origLen">, nanosecond = true): Uint8Array {
  const b = new Uint8Array(16 + frame.data.length);
  const v = new DataView(b.buffer);
  const sec = frame.timeNs / 1_000_000_000n;
  const frac = frame.timeNs % 1_000_000_000n;
  v.setUint32(0, Number(sec), true);
  v.setUint32(4, nanosecond ? Number(frac) : Number(frac / 1000n), true);
  v.setUint32(8, frame.data.length, true);
  v.setUint32(12, Math.max(frame.origLen, frame.data.length), true);
  b.set(frame.data, 16);
  return b;
}

/** A whole classic pcap file of frames that share `linkType`. */
export function pcapFile(
  linkType: number,
  frames: Iterable<Pick<Frame, "timeNs" | "data" | "origLen">>,
  opts: { nanosecond?: boolean; snapLen?: number } = {},
): Uint8Array {
  const parts = [pcapFileHeader(linkType, opts)];
  for (const f of frames) parts.push(pcapRecord(f, opts.nanosecond !== false));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
