/**
 * The 4-bit coder's coding and decoding loops (audio/decode/adpcm4.ts) as they were first written, kept as the
 * reference their faster rewrite must match bit for bit (tests/audio_adpcm4_test.ts). The header and the tables,
 * which the rewrite left as they were, come from adpcm4_format.ts. Not used by the engine.
 *
 * A 4-bit adaptive coder for blocks of Int16 ring values that decode on their own (sample_ring.ts's 4-bit tier).
 *
 * Each value is predicted from the two values decoded before it with the block's own second-order predictor
 * (linear prediction from the block's autocorrelation, coefficients in 1/64), and the prediction error is coded
 * in 4 bits with IMA ADPCM's adaptive step (its step and index tables). A block's header ({@link HEADER_BYTES}
 * bytes) holds its first value exactly, the step index its coding starts from (from its first differences) and
 * the two coefficients: everything is chosen from the block's own samples, so its decoded values depend on
 * nothing but its input (not on the block before it, not on when it was coded). On speech the predictor gains
 * ~2.5 dB over IMA's (the previous value): ~22 dB SNR, ~27 dB mean per 32 ms block. Codes are two per byte, low
 * nibble first; a block's first nibble is unused (its value is in the header).
 * @module
 */

import {
  COEF_SHIFT,
  HEADER_BYTES,
  INDEX_STEP,
  LEVELS,
  MAX_INDEX,
  RECIPROCAL,
  STEPS,
  writeHeader,
} from "../../audio/decode/adpcm4_format.ts";

export { HEADER_BYTES };

/**
 * Encodes `n` (at most 256) values `src[from..from+n)` into `ceil(n / 2)` bytes of `codes` at `at` and a header at
 * `heads[h..h+HEADER_BYTES)`.
 */
export function encodeBlock(
  src: Int16Array,
  from: number,
  n: number,
  codes: Uint8Array,
  at: number,
  heads: Uint8Array,
  h: number,
): void {
  writeHeader(src, from, n, heads, h);
  const c1 = (heads[h + 3]! << 24) >> 24, c2 = (heads[h + 4]! << 24) >> 24;
  let index = heads[h + 2]!;
  const first = src[from]!;
  let y1 = first, y2 = first;
  let byte = 0;
  for (let k = 1; k < n; k++) {
    const p = Math.max(-32768, Math.min(32767, (c1 * y1 + c2 * y2) >> COEF_SHIFT));
    const diff = src[from + k]! - p;
    const sign = diff >> 31;
    // Errors beyond 8 steps are 7 anyway; capped first so that the product stays an int32 (< 2^22).
    const m = Math.min(7, (Math.min((diff ^ sign) - sign, STEPS[index]! << 3) * RECIPROCAL[index]!) >> 16);
    const level = LEVELS[(index << 3) | m]!;
    const y = Math.max(-32768, Math.min(32767, p + ((level ^ sign) - sign)));
    y2 = y1;
    y1 = y;
    index = Math.max(0, Math.min(MAX_INDEX, index + INDEX_STEP[m]!));
    const code = m | (sign & 8);
    if (k & 1) codes[at + (k >> 1)] = byte | (code << 4);
    else byte = code;
  }
  if (n > 1 && (n & 1) === 0) return;
  // An odd count leaves its last code in the low nibble.
  if (n > 1) codes[at + (n >> 1)] = byte;
}

/**
 * Decodes the values `lo..hi` (hi exclusive) of a block coded by {@link encodeBlock} (codes at `codes[at..]`,
 * header at `heads[h..]`) into `out[(base + k) & mask]` for k in [lo, hi). Decoding runs from the block's first
 * value whatever `lo`.
 */
export function decodeBlock(
  codes: Uint8Array,
  at: number,
  heads: Uint8Array,
  h: number,
  lo: number,
  hi: number,
  out: Int16Array,
  base: number,
  mask: number,
): void {
  const first = ((heads[h]! | (heads[h + 1]! << 8)) << 16) >> 16;
  let index = heads[h + 2]!;
  const c1 = (heads[h + 3]! << 24) >> 24, c2 = (heads[h + 4]! << 24) >> 24;
  if (lo === 0 && hi > 0) out[base & mask] = first;
  let y1 = first, y2 = first;
  for (let k = 1; k < hi; k++) {
    const code = k & 1 ? codes[at + (k >> 1)]! >> 4 : codes[at + (k >> 1)]! & 15;
    const p = Math.max(-32768, Math.min(32767, (c1 * y1 + c2 * y2) >> COEF_SHIFT));
    const level = LEVELS[(index << 3) | (code & 7)]!;
    const y = Math.max(-32768, Math.min(32767, code & 8 ? p - level : p + level));
    y2 = y1;
    y1 = y;
    index = Math.max(0, Math.min(MAX_INDEX, index + INDEX_STEP[code & 7]!));
    if (k >= lo) out[(base + k) & mask] = y;
  }
}
