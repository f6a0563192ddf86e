/**
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
} from "./adpcm4_format.ts";

export { HEADER_BYTES };

/** Step index after each (step index, magnitude): IMA's adaptation, clamped to the table. */
const NEXT = Uint8Array.from(
  { length: STEPS.length * 8 },
  (_, k) => Math.max(0, Math.min(MAX_INDEX, (k >> 3) + INDEX_STEP[k & 7]!)),
);
/**
 * LEVELS, then their negatives: the level a code of sign `s` (0 or -1) reconstructs is at `j + (s & NEGATIVE)`,
 * one load instead of a load and a negation.
 */
const SIGNED_LEVELS = Int32Array.from(
  { length: 2 * LEVELS.length },
  (_, k) => k < LEVELS.length ? LEVELS[k]! : -LEVELS[k - LEVELS.length]!,
);
const NEGATIVE = LEVELS.length;

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
  // The loop here, as in encodeBlockPair.
  const k1 = (heads[h + 3]! << 24) >> 24, k2 = (heads[h + 4]! << 24) >> 24;
  let ix = heads[h + 2]!;
  let y1 = src[from]!, y2 = y1;
  // The first nibble is unused (zero).
  let byte = 0;
  for (let k = 1; k < n; k++) {
    let p = (k1 * y1 + k2 * y2) >> COEF_SHIFT;
    if (p > 32767) p = 32767;
    else if (p < -32768) p = -32768;
    const diff = src[from + k]! - p;
    const sign = diff >> 31;
    // An error beyond 8 steps codes 7 anyway. Its product with the reciprocal (< 65,536 · 37,450 < 2^32) in
    // uint32: no cap on the error to keep it an int32 (a load and a compare a value, ~10% of the coding).
    let m = Math.imul((diff ^ sign) - sign, RECIPROCAL[ix]!) >>> 16;
    if (m > 7) m = 7;
    const j = (ix << 3) | m;
    let y = p + SIGNED_LEVELS[j + (sign & NEGATIVE)]!;
    if (y > 32767) y = 32767;
    else if (y < -32768) y = -32768;
    y2 = y1;
    y1 = y;
    ix = NEXT[j]!;
    const code = m | (sign & 8);
    if (k & 1) codes[at + (k >> 1)] = byte | (code << 4);
    else byte = code;
  }
  // An odd count leaves its last code in the low nibble.
  if (n > 1 && (n & 1) === 1) codes[at + (n >> 1)] = byte;
}

/**
 * Encodes two blocks of `n` values, `a[fromA..)` and `b[fromB..)`, exactly as two {@link encodeBlock} calls
 * would, their codes interleaved: each block's coding is one long chain of dependent operations (every value's
 * prediction needs the value decoded before it), and two independent chains run in about the time of one.
 * `headed`: both headers are written already (adpcm4_format.ts writeHeaderFromSums, by a caller that made the
 * values), as writeHeader writes them.
 */
export function encodeBlockPair(
  n: number,
  a: Int16Array,
  fromA: number,
  codesA: Uint8Array,
  atA: number,
  headsA: Uint8Array,
  hA: number,
  b: Int16Array,
  fromB: number,
  codesB: Uint8Array,
  atB: number,
  headsB: Uint8Array,
  hB: number,
  headed = false,
): void {
  if (!headed) {
    writeHeader(a, fromA, n, headsA, hA);
    writeHeader(b, fromB, n, headsB, hB);
  }
  // The loop here, after the headers are written, rather than in a function of its own called with them:
  // V8 compiles it so to ~5 ns a sample for both blocks instead of ~8 (measured, Deno 2.9).
  const k1a = (headsA[hA + 3]! << 24) >> 24, k2a = (headsA[hA + 4]! << 24) >> 24;
  const k1b = (headsB[hB + 3]! << 24) >> 24, k2b = (headsB[hB + 4]! << 24) >> 24;
  let ixa = headsA[hA + 2]!, ixb = headsB[hB + 2]!;
  let y1a = a[fromA]!, y2a = y1a, bytea = 0;
  let y1b = b[fromB]!, y2b = y1b, byteb = 0;
  for (let k = 1; k < n; k++) {
    let pa = (k1a * y1a + k2a * y2a) >> COEF_SHIFT;
    let pb = (k1b * y1b + k2b * y2b) >> COEF_SHIFT;
    if (pa > 32767) pa = 32767;
    else if (pa < -32768) pa = -32768;
    if (pb > 32767) pb = 32767;
    else if (pb < -32768) pb = -32768;
    const da = a[fromA + k]! - pa, db = b[fromB + k]! - pb;
    const sa = da >> 31, sb = db >> 31;
    let qa = Math.imul((da ^ sa) - sa, RECIPROCAL[ixa]!) >>> 16;
    let qb = Math.imul((db ^ sb) - sb, RECIPROCAL[ixb]!) >>> 16;
    if (qa > 7) qa = 7;
    if (qb > 7) qb = 7;
    const ja = (ixa << 3) | qa, jb = (ixb << 3) | qb;
    let ya = pa + SIGNED_LEVELS[ja + (sa & NEGATIVE)]!, yb = pb + SIGNED_LEVELS[jb + (sb & NEGATIVE)]!;
    if (ya > 32767) ya = 32767;
    else if (ya < -32768) ya = -32768;
    if (yb > 32767) yb = 32767;
    else if (yb < -32768) yb = -32768;
    y2a = y1a;
    y1a = ya;
    y2b = y1b;
    y1b = yb;
    ixa = NEXT[ja]!;
    ixb = NEXT[jb]!;
    const codeA = qa | (sa & 8), codeB = qb | (sb & 8);
    if (k & 1) {
      codesA[atA + (k >> 1)] = bytea | (codeA << 4);
      codesB[atB + (k >> 1)] = byteb | (codeB << 4);
    } else {
      bytea = codeA;
      byteb = codeB;
    }
  }
  if (n > 1 && (n & 1) === 1) {
    codesA[atA + (n >> 1)] = bytea;
    codesB[atB + (n >> 1)] = byteb;
  }
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
    const byte = codes[at + (k >> 1)]!;
    const code = k & 1 ? byte >> 4 : byte & 15;
    let p = (c1 * y1 + c2 * y2) >> COEF_SHIFT;
    if (p > 32767) p = 32767;
    else if (p < -32768) p = -32768;
    const j = (index << 3) | (code & 7);
    let y = code & 8 ? p - LEVELS[j]! : p + LEVELS[j]!;
    if (y > 32767) y = 32767;
    else if (y < -32768) y = -32768;
    y2 = y1;
    y1 = y;
    index = NEXT[j]!;
    if (k >= lo) out[(base + k) & mask] = y;
  }
}
