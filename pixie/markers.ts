/**
 * Pixie's markers in place of a body it did not keep whole: a body cut at the capture limit ends with
 * `... [TRUNCATED]`; a binary response body is replaced by `<removed: ...>`. One place recognises both, for the
 * stream's truncation counter and for the decoder that keeps the timeline in place.
 * @module
 */

/** What a Pixie marker says happened to a body. */
export type PixieMarker = "truncated" | "removed";

const TRUNCATED_SUFFIX = new TextEncoder().encode("... [TRUNCATED]");
const REMOVED_PREFIX = new TextEncoder().encode("<removed:");

/** Recognises Pixie's markers by comparing bytes at the ends of the payload; nothing is decoded. */
export function detectPixieMarker(payload: Uint8Array): PixieMarker | undefined {
  const n = payload.length;
  const t = TRUNCATED_SUFFIX.length;
  if (n >= t && payload[n - 1] === 0x5d && bytesAt(payload, n - t, TRUNCATED_SUFFIX)) return "truncated";
  if (n > REMOVED_PREFIX.length && payload[0] === 0x3c && payload[n - 1] === 0x3e) {
    if (bytesAt(payload, 0, REMOVED_PREFIX)) return "removed";
  }
  return undefined;
}

function bytesAt(hay: Uint8Array, at: number, needle: Uint8Array): boolean {
  for (let i = 0; i < needle.length; i++) if (hay[at + i] !== needle[i]) return false;
  return true;
}
