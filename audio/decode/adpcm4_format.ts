/**
 * The 4-bit coder's format (adpcm4.ts): IMA ADPCM's step and index tables, the quantiser's tables derived from
 * them, the header's size and the predictor's scale. One place for what the coder and its reference
 * (tests/support/adpcm4_reference.ts, the first implementation kept for a bit-for-bit property test) share.
 * @module
 */

/** IMA ADPCM step sizes (89 of them, ~1.1x apart). */
export const STEPS = new Int32Array([
  7,
  8,
  9,
  10,
  11,
  12,
  13,
  14,
  16,
  17,
  19,
  21,
  23,
  25,
  28,
  31,
  34,
  37,
  41,
  45,
  50,
  55,
  60,
  66,
  73,
  80,
  88,
  97,
  107,
  118,
  130,
  143,
  157,
  173,
  190,
  209,
  230,
  253,
  279,
  307,
  337,
  371,
  408,
  449,
  494,
  544,
  598,
  658,
  724,
  796,
  876,
  963,
  1060,
  1166,
  1282,
  1411,
  1552,
  1707,
  1878,
  2066,
  2272,
  2499,
  2749,
  3024,
  3327,
  3660,
  4026,
  4428,
  4871,
  5358,
  5894,
  6484,
  7132,
  7845,
  8630,
  9493,
  10442,
  11487,
  12635,
  13899,
  15289,
  16818,
  18500,
  20350,
  22385,
  24623,
  27086,
  29794,
  32767,
]);
/** Step index change per code magnitude (IMA). */
export const INDEX_STEP = new Int8Array([-1, -1, -1, -1, 2, 4, 6, 8]);
/** The last step index. */
export const MAX_INDEX = STEPS.length - 1;
/**
 * The quantiser: magnitude m (0-7) of an error e at step s is about floor(4e / s) (at most 7; the encoder decides,
 * the decoder only looks m up), reconstructed at the middle of its interval, (2m + 1) s / 8: IMA's intervals, as
 * a multiplication and a table instead of IMA's successive subtractions of s, s / 2, s / 4 (data-dependent
 * branches, and speech's errors are a coin toss for a branch predictor).
 */
export const RECIPROCAL = Int32Array.from(STEPS, (s) => Math.floor((4 << 16) / s));
/** Reconstruction level of each (step index, magnitude), at `(index << 3) | m`. */
export const LEVELS = Int32Array.from(
  { length: STEPS.length * 8 },
  (_, k) => ((2 * (k & 7) + 1) * STEPS[k >> 3]!) >> 3,
);

/** Bytes of a block's header: first value (2, little-endian), start step index (1), two coefficients (1 each). */
export const HEADER_BYTES = 5;

/** Samples the first step is estimated from (IMA's adaptation would take a few samples to catch up). */
const LEAD = 8;

/** The block's first values {@link writeHeaderFromSums} reads (its first value and the first step's lead). */
export const HEADER_VALUES = LEAD + 1;

/** Predictor coefficients' scale: 6 fractional bits. */
export const COEF_SHIFT = 6;

/**
 * Writes a block's header at `heads[h..h+HEADER_BYTES)`: its first value, the step index its coding starts from
 * and its order-2 predictor (see adpcm4.ts's module doc), all chosen from `src[from..from+n)` alone.
 */
export function writeHeader(src: Int16Array, from: number, n: number, heads: Uint8Array, h: number): void {
  // Order-2 linear prediction (Levinson) from the block's autocorrelation, kept stable and within an Int8.
  // In int32: products of values scaled down by 16 (≤ 2^22 each, < 2^31 summed over 256), cheaper than doubles.
  let v2 = src[from]! >> 4, v1 = n > 1 ? src[from + 1]! >> 4 : 0;
  let s0 = (v2 * v2 + v1 * v1) | 0, s1 = (v1 * v2) | 0, s2 = 0;
  for (let i = from + 2; i < from + n; i++) {
    const v = src[i]! >> 4;
    s0 = (s0 + v * v) | 0;
    s1 = (s1 + v * v1) | 0;
    s2 = (s2 + v * v2) | 0;
    v2 = v1;
    v1 = v;
  }
  writeHeaderFromSums(s0, s1, s2, src, from, n, heads, h);
}

/**
 * {@link writeHeader} from the block's autocorrelation sums, computed by its caller as writeHeader computes them
 * (a caller producing the values sums them as it goes): `s0` = Σ v², `s1` = Σ v·v₋₁, `s2` = Σ v·v₋₂ over the
 * values `v = src[i] >> 4`, each sum kept an int32 (`| 0` after every addition). Of `src` it reads the first
 * {@link HEADER_VALUES} values only (`n` caps them).
 */
export function writeHeaderFromSums(
  s0: number,
  s1: number,
  s2: number,
  src: Int16Array,
  from: number,
  n: number,
  heads: Uint8Array,
  h: number,
): void {
  // A touch of white noise on the diagonal: a pure tone or silence must not ask for an unstable predictor.
  const r0 = s0 * 1.0001 + 1, r1 = s1, r2 = s2;
  const det = r0 * r0 - r1 * r1;
  let a1 = (r1 * (r0 - r2)) / det, a2 = (r0 * r2 - r1 * r1) / det;
  a2 = Math.max(-0.95, Math.min(0.95, a2));
  a1 = Math.max(-1.9, Math.min(1.9, a1));
  const c1 = Math.round(a1 * (1 << COEF_SHIFT)), c2 = Math.round(a2 * (1 << COEF_SHIFT));
  let lead = 0;
  for (let i = from + 1; i < from + Math.min(n, LEAD + 1); i++) {
    lead = Math.max(lead, Math.abs(src[i]! - src[i - 1]!));
  }
  let index = 0;
  while (index < MAX_INDEX && STEPS[index]! * 2 < lead) index++;
  const first = src[from]!;
  heads[h] = first & 0xff;
  heads[h + 1] = (first >> 8) & 0xff;
  heads[h + 2] = index;
  heads[h + 3] = c1 & 0xff;
  heads[h + 4] = c2 & 0xff;
}
