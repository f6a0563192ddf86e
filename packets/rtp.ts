/**
 * RTP header parsing (RFC 3550: version 2, CSRC list, header extension, padding) and classification of a UDP
 * payload as RTP, RTCP (including RTCP multiplexed on the RTP port, RFC 5761), STUN (RFC 5389 magic cookie) or
 * something else.
 *
 * This is the per-packet test only. Strictness across packets (a stream is taken for RTP only after several
 * packets agree on SSRC and sequence) lives in `jitter.ts`, which owns the per-stream state.
 *
 * Telephone events (RFC 4733 DTMF) arrive as ordinary RTP packets of a dynamic payload type on the same SSRC as
 * the audio. This layer does not know the payload-type map, so it hands them on like any payload; the consumer,
 * which knows which type is `telephone-event`, must skip them (their sequence numbers are part of the stream, so
 * dropping them earlier would look like loss).
 * @module
 */

import type { SkipReason } from "./types.ts";

/** The fields of one RTP header and where its payload lies. Reused from packet to packet. */
export class RtpHeader {
  /** Payload type 0..127. */
  pt = 0;
  marker = false;
  /** Sequence number (uint16). */
  seq = 0;
  /** Timestamp (uint32). */
  ts = 0;
  /** Synchronisation source (uint32). */
  ssrc = 0;
  /** Number of contributing sources listed (0..15); they start at offset 12 of the header. */
  csrcCount = 0;
  /** Header extension profile (the 16-bit "defined by profile" field), or -1 without an extension. */
  extProfile = -1;
  /** Offset and length in bytes of the extension data (after its 4-byte header), relative to the datagram. */
  extOffset = 0;
  extLength = 0;
  /** Padding bytes removed from the end (0 without the P bit). */
  padding = 0;
  /** Payload: datagram bytes [payloadStart, payloadEnd) (absolute offsets into the array parsed). */
  payloadStart = 0;
  payloadEnd = 0;
}

/** STUN magic cookie (RFC 5389). */
const STUN_COOKIE = 0x2112a442;

/**
 * Classifies the UDP payload `b[start, end)` and, when it is RTP, parses its header into `out`.
 * Returns undefined for RTP, otherwise the skip reason: `stun`, `rtcp` (second byte 192..223, i.e. packet types
 * 192-223 such as SR 200, RR 201, SDES 202, BYE 203, APP 204, RTPFB/PSFB 205/206, XR 207; RTP payload types
 * 64-95 with the marker bit set are indistinguishable and RFC 5761 forbids them on shared ports), or `not_rtp`
 * (wrong version, too short, CSRC list / extension / padding that do not fit).
 */
export function parseRtp(b: Uint8Array, start: number, end: number, out: RtpHeader): SkipReason | undefined {
  const len = end - start;
  if (len < 12) return len >= 8 && b[start]! >> 6 === 2 && isRtcpType(b[start + 1]!) ? "rtcp" : "not_rtp";
  const b0 = b[start]!;
  const b1 = b[start + 1]!;
  if (b0 >> 6 !== 2) {
    // STUN: top two bits zero and the magic cookie at bytes 4-7.
    if (
      b0 >> 6 === 0 && len >= 20 &&
      ((b[start + 4]! << 24) | (b[start + 5]! << 16) | (b[start + 6]! << 8) | b[start + 7]!) >>> 0 ===
        STUN_COOKIE
    ) return "stun";
    return "not_rtp";
  }
  if (isRtcpType(b1)) return "rtcp";
  const cc = b0 & 0x0f;
  let off = start + 12 + cc * 4;
  if (off > end) return "not_rtp";
  if (b0 & 0x10) {
    if (off + 4 > end) return "not_rtp";
    const extLen = ((b[off + 2]! << 8) | b[off + 3]!) * 4;
    out.extProfile = (b[off]! << 8) | b[off + 1]!;
    out.extOffset = off + 4;
    out.extLength = extLen;
    off += 4 + extLen;
    if (off > end) return "not_rtp";
  } else {
    out.extProfile = -1;
    out.extOffset = 0;
    out.extLength = 0;
  }
  let payloadEnd = end;
  if (b0 & 0x20) {
    // The last byte counts the padding, itself included.
    const pad = b[end - 1]!;
    if (pad === 0 || end - pad < off) return "not_rtp";
    payloadEnd = end - pad;
    out.padding = pad;
  } else {
    out.padding = 0;
  }
  out.pt = b1 & 0x7f;
  out.marker = (b1 & 0x80) !== 0;
  out.seq = (b[start + 2]! << 8) | b[start + 3]!;
  out.ts = ((b[start + 4]! << 24) | (b[start + 5]! << 16) | (b[start + 6]! << 8) | b[start + 7]!) >>> 0;
  out.ssrc = ((b[start + 8]! << 24) | (b[start + 9]! << 16) | (b[start + 10]! << 8) | b[start + 11]!) >>> 0;
  out.csrcCount = cc;
  out.payloadStart = off;
  out.payloadEnd = payloadEnd;
  return undefined;
}

/** RTCP packet types occupy 192..223 of the second byte (RFC 5761 section 4). */
function isRtcpType(b1: number): boolean {
  return b1 >= 192 && b1 <= 223;
}

/** The CSRC identifiers of a parsed header (`b` and `start` as given to {@link parseRtp}). */
export function csrcList(b: Uint8Array, start: number, h: RtpHeader): number[] {
  const out: number[] = [];
  for (let i = 0; i < h.csrcCount; i++) {
    const o = start + 12 + i * 4;
    out.push(((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0);
  }
  return out;
}

/** `ssrc=0x0123abcd`: the suffix of an RTP stream's name. */
export function ssrcLabel(ssrc: number): string {
  return "ssrc=0x" + (ssrc >>> 0).toString(16).padStart(8, "0");
}

/** Signed difference a - b of two uint16 sequence numbers, in -32768..32767 (wrap-around safe). */
export function seqDiff(a: number, b: number): number {
  return ((a - b + 0x8000) & 0xffff) - 0x8000;
}

/** Signed difference a - b of two uint32 RTP timestamps (wrap-around safe). */
export function tsDiff(a: number, b: number): number {
  return (a - b) | 0;
}
