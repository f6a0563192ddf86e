/**
 * The block score: how well a signature's sub-fingerprints agree with target frames at one alignment.
 *
 * One formula, written once ({@link weighted} and {@link weightedSq}): bits the target itself measured with a
 * large energy difference ("strong") count fully, the others {@link WEAK_WEIGHT} — noise flips weak bits first.
 * Every score here (a whole block, a block frame by frame for split scoring, a sample of a block's frames for
 * pre-checks, the last through tables of the same functions) adds up the same per-frame terms, so the three give
 * bit-identical sums for the same frames.
 * @module
 */

import { type FrameStore, SUBFP_BITS } from "../fingerprint/fingerprint.ts";
import { isMasked } from "../fingerprint/signature.ts";
import { FRAME_POSITIONS_AT, FRAME_VALUES_AT, popcount32 } from "./signature_index.ts";

/** Weight of a bit the target measured with a small energy difference. */
export const WEAK_WEIGHT = 0.3;

/**
 * Exponent of the effective bit count in the significance. Independent bits would give 0.5 (a z-score); bits of
 * speech fingerprints are correlated within and across frames, so chance agreement of unrelated speech grows
 * with block length faster than that predicts. 0.35 separated true matches (through noise, GSM, loss) from the
 * best chance alignments against unrelated speech over 3,000 signature × chain trials (bench/accuracy.ts).
 */
export const SIGNIFICANCE_EXPONENT = 0.35;

/** The weighted count of `strong` strong and `weak` weak bits: the one formula of every score. */
function weighted(strong: number, weak: number): number {
  return strong + WEAK_WEIGHT * weak;
}

/** The sum of the squared weights of `strong` strong and `weak` weak bits (for the significance). */
function weightedSq(strong: number, weak: number): number {
  return strong + WEAK_WEIGHT * WEAK_WEIGHT * weak;
}

/** A frame's weight given its strong-bit count n: {@link weighted}(n, 32 − n). */
export const FRAME_WEIGHT: Float64Array = Float64Array.from(
  { length: SUBFP_BITS + 1 },
  (_, n) => weighted(n, SUBFP_BITS - n),
);
/** A frame's weighted errors from (strong errors a, weak errors b) at a·33 + b: {@link weighted}(a, b). */
export const FRAME_ERRORS: Float64Array = Float64Array.from(
  { length: (SUBFP_BITS + 1) * (SUBFP_BITS + 1) },
  (_, x) => weighted(Math.floor(x / (SUBFP_BITS + 1)), x % (SUBFP_BITS + 1)),
);

/** A frame's squared weights given its strong-bit count n: {@link weightedSq}(n, 32 − n). */
export const FRAME_WEIGHT_SQ: Float64Array = Float64Array.from(
  { length: SUBFP_BITS + 1 },
  (_, n) => weightedSq(n, SUBFP_BITS - n),
);

/**
 * A frame's counts for the tables: with differing bits `x` and the target's strong bits `sm`, the index into
 * FRAME_ERRORS of (strong errors, weak errors) shifted left by 8, plus the strong-bit count (for FRAME_WEIGHT and
 * FRAME_WEIGHT_SQ). The three popcounts side by side (this runs for every frame of every block scored).
 */
function frameCounts(x: number, sm: number): number {
  let a = x & sm, b = x & ~sm, c = sm;
  a -= (a >>> 1) & 0x55555555;
  b -= (b >>> 1) & 0x55555555;
  c -= (c >>> 1) & 0x55555555;
  a = (a & 0x33333333) + ((a >>> 2) & 0x33333333);
  b = (b & 0x33333333) + ((b >>> 2) & 0x33333333);
  c = (c & 0x33333333) + ((c >>> 2) & 0x33333333);
  a = (a + (a >>> 4)) & 0x0f0f0f0f;
  b = (b + (b >>> 4)) & 0x0f0f0f0f;
  c = (c + (c >>> 4)) & 0x0f0f0f0f;
  const errors = (Math.imul(a, 0x01010101) >>> 24) * (SUBFP_BITS + 1) + (Math.imul(b, 0x01010101) >>> 24);
  return (errors << 8) | (Math.imul(c, 0x01010101) >>> 24);
}

/** Significance of a weighted BER over weights summing to `w` with squares summing to `w2`. */
export function significance(ber: number, w: number, w2: number): number {
  if (!(w > 0) || !(w2 > 0)) return 0;
  return 2 * (0.5 - ber) * Math.pow((w * w) / w2, SIGNIFICANCE_EXPONENT);
}

/** Score of a block at one alignment. */
export interface BlockScore {
  /** Weighted bit error rate. */
  ber: number;
  /** Significance. */
  z: number;
  /** Frames that counted. */
  used: number;
}

/**
 * Weighted BER of signature block `fp` against target frames starting at frame `s` (missing target frames and
 * masked signature frames are skipped). Writes into `out`.
 */
export function scoreBlock(
  fp: Uint32Array,
  mask: Uint8Array | undefined,
  store: FrameStore,
  s: number,
  out: BlockScore,
): BlockScore {
  let e = 0, d = 0, d2 = 0, used = 0;
  const from = Math.max(0, store.start - s);
  const to = Math.min(fp.length, store.end - s);
  const bits = store.bits, strong = store.strong, m = store.mask;
  const wt = FRAME_WEIGHT, wq = FRAME_WEIGHT_SQ, et = FRAME_ERRORS;
  for (let j = from; j < to; j++) {
    if (mask !== undefined && ((mask[j >> 3]! >> (j & 7)) & 1) === 1) continue;
    const i = (s + j) & m;
    const x = fp[j]! ^ bits[i]!;
    const sm = strong[i]!;
    // The tables hold exactly weighted(...) and weightedSq(...) of these counts: the same sums as the formulas.
    const c = frameCounts(x, sm);
    e += et[c >>> 8]!;
    d += wt[c & 255]!;
    d2 += wq[c & 255]!;
    used++;
  }
  if (used === 0 || d === 0) {
    out.ber = 0.5;
    out.z = 0;
  } else {
    out.ber = e / d;
    out.z = significance(out.ber, d, d2);
  }
  out.used = used;
  return out;
}

/**
 * Per-frame weighted errors, weights and squared weights of block `fp` at target frame `s` (0 for frames that
 * are masked or not held), for split scoring.
 */
export function frameErrors(
  fp: Uint32Array,
  mask: Uint8Array | undefined,
  store: FrameStore,
  s: number,
  e: Float64Array,
  w: Float64Array,
  w2: Float64Array,
): void {
  const bits = store.bits, strong = store.strong, m = store.mask, n = fp.length;
  const wt = FRAME_WEIGHT, wq = FRAME_WEIGHT_SQ, et = FRAME_ERRORS;
  // Frames the store holds are [from, to) of the block; the mask test inline (isMasked's: split scoring runs
  // this for 17 alignments of every block it tries).
  const from = Math.min(n, Math.max(0, store.start - s)), to = Math.max(from, Math.min(n, store.end - s));
  e.fill(0, 0, from);
  w.fill(0, 0, from);
  w2.fill(0, 0, from);
  for (let j = from; j < to; j++) {
    if (mask !== undefined && ((mask[j >> 3]! >> (j & 7)) & 1) === 1) {
      e[j] = 0;
      w[j] = 0;
      w2[j] = 0;
      continue;
    }
    const i = (s + j) & m;
    const c = frameCounts(fp[j]! ^ bits[i]!, strong[i]!);
    e[j] = et[c >>> 8]!;
    w[j] = wt[c & 255]!;
    w2[j] = wq[c & 255]!;
  }
  e.fill(0, to, n);
  w.fill(0, to, n);
  w2.fill(0, to, n);
}

/**
 * Weighted BER at alignment `k` over the unmasked frames x = 0, step, 2·step, ... < avail of a slot of
 * SignatureIndex.frames (`frames` at `at`, see FRAME_WORDS): the pre-checks' sample of a block. 1 when no
 * sampled frame is held.
 */
export function sampledBer(
  store: FrameStore,
  frames: Uint32Array,
  at: number,
  avail: number,
  step: number,
  k: number,
): number {
  const bits = store.bits, strong = store.strong, m = store.mask;
  const start = store.start, end = store.end;
  const wt = FRAME_WEIGHT, et = FRAME_ERRORS;
  let e = 0, d = 0;
  // x stays below 2^31, so `x | 0` is Math.floor(x); the tables hold exactly the per-frame terms.
  for (let x = 0; x < avail; x += step) {
    const y = x | 0;
    const j = (frames[at + FRAME_POSITIONS_AT + (y >> 2)]! >>> ((y & 3) << 3)) & 255;
    const t = k + j;
    if (t < start || t >= end) continue;
    const i = t & m;
    const diff = frames[at + FRAME_VALUES_AT + y]! ^ bits[i]!;
    const sm = strong[i]!;
    // Popcounts inline (the hottest loop of the pre-checks).
    let a = diff & sm, b = diff & ~sm, c = sm;
    a -= (a >>> 1) & 0x55555555;
    b -= (b >>> 1) & 0x55555555;
    c -= (c >>> 1) & 0x55555555;
    a = (a & 0x33333333) + ((a >>> 2) & 0x33333333);
    b = (b & 0x33333333) + ((b >>> 2) & 0x33333333);
    c = (c & 0x33333333) + ((c >>> 2) & 0x33333333);
    a = (a + (a >>> 4)) & 0x0f0f0f0f;
    b = (b + (b >>> 4)) & 0x0f0f0f0f;
    c = (c + (c >>> 4)) & 0x0f0f0f0f;
    e += et[(Math.imul(a, 0x01010101) >>> 24) * (SUBFP_BITS + 1) + (Math.imul(b, 0x01010101) >>> 24)]!;
    d += wt[Math.imul(c, 0x01010101) >>> 24]!;
  }
  return d > 0 ? e / d : 1;
}

/** Plain (unweighted) bit error rate of `fp` against target frames from `s` on (masked, missing frames skipped). */
export function plainBer(
  fp: Uint32Array,
  mask: Uint8Array | undefined,
  store: FrameStore,
  s: number,
): number {
  let errors = 0, frames = 0;
  for (let j = 0; j < fp.length; j++) {
    if (isMasked(mask, j) || !store.has(s + j, 1)) continue;
    errors += popcount32((fp[j]! ^ store.bits[(s + j) & store.mask]!) >>> 0);
    frames++;
  }
  return frames ? errors / (frames * SUBFP_BITS) : NaN;
}
