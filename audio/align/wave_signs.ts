/**
 * The signs of the source's waveform over 64 ms near a signature's instant, carried by the signature (64 bytes)
 * to place the instant to the sample where level envelopes cannot.
 *
 * Why: a level envelope times a codec's or a noise suppressor's output by its energy, and what they do to energy
 * is not what they do to the waveform. Speech codecs that rebuild the waveform (CELP, RPE) build each onset's
 * energy up over a few milliseconds while the pitch pulses stay where they were, so every envelope fit came out
 * late (measured on the bench's AMR-NB chain: median +0.38 ms, 14% more than 1 ms late, whatever the envelope's
 * form). The waveform itself is where the bench's truth and a listener put the audio. Its signs survive any gain
 * reshaping (AGC, compression) and most spectral reshaping, and a 1-bit correlation over 512 samples has a peak
 * a sample or two wide. Speech repeats itself every pitch period (2.5–10 ms), so the signs alone choose only
 * within ±2 ms of the envelope's answer, which is nearly always that close (see align.ts); up to ±6 ms, where
 * AGC's envelope is sometimes a pitch period off, a shift must win on the signs and the envelope together (see
 * {@link waveSignShift}). No codec is named anywhere:
 * the refinement applies to every target and leaves clean ones where they were. The best agreement is taken
 * however weak: a floor of 0.2 or 0.3 (kept the envelope's answer on noisy targets) lost 0.5–1.3 points on AMR
 * and gained at most 0.2 on GSM + noise.
 *
 * Measured offline on the bench's recorded alignments (seed 1; share within 1 ms, envelope → envelope + signs):
 * AMR-NB 85.9% → 98.8%, AGC + noise reduction 94.1% → 95.4%, GSM + pink noise 98.7% → 98.7%. Window: 128
 * samples gave 97.0% on AMR, 256 98.0%, 512 98.7%; pre-emphasised or LPC-whitened signs were no better (GSM +
 * noise 96.8% / 93.8%). Search ±1 ms: AMR 94.1%; ±3 ms: 94.2% and ±4 ms: 83.9% (the next pitch period wins).
 *
 * The joint score up to ±6 ms with the signs weighted by the target's magnitude, on the bench at 2d3906b (seed 1
 * / seed 2; recall / exact / > 20 ms off): AGC 97.1 / 92.9 / 0.1% → 97.1 / 94.6 / 0.1% and 98.2 / 95.0 / 0.4%
 * → 98.3 / 96.7 / 0.3%; AMR exact 97.9 → 97.6% and 97.6 → 98.0% (p95 error 0.62 → 0.38 and 0.50 ms); GSM +
 * pink exact 98.5 → 99.1% and 99.0 → 99.1%, recall and > 20 ms off unchanged; the English table (`--en-only`)
 * unchanged but GSM exact 99.2 → 99.7% and the combined chain 5.05 → 3.37 false per 1,000 signatures.
 * @module
 */

import type { SampleRing } from "../decode/sample_ring.ts";
import { DOT_MAX_OUT, DOT_MAX_SERIES, DOT_MAX_X, dotKernel } from "./dot_simd.ts";

/** Samples whose signs are carried. */
export const WAVE_SIGN_SAMPLES = 512;
/** Bytes of the packed signs on the wire. */
export const WAVE_SIGN_BYTES = WAVE_SIGN_SAMPLES / 8;
/**
 * Where the window may start, relative to the instant (analysis samples): anywhere from 64 ms before it to
 * 192 ms after it, the stretch the level envelope covers, on a 2 ms grid; the loudest window is taken (an
 * instant at an onset has silence before it, and signs of silence are noise).
 */
export const WAVE_FROM = -512;
export const WAVE_TO = 1536;
const WAVE_STEP = 16;
/**
 * Shifts tried on either side of the envelope's answer on an equal footing, samples (±2 ms: less than a pitch
 * period).
 */
export const WAVE_RANGE = 16;

/** The signs of a source window: bit i (byte i >> 3, most significant first) set when sample i is >= 0. */
export interface WaveSigns {
  /** First sample of the window relative to the instant, analysis samples (WAVE_FROM..WAVE_TO - samples). */
  offset: number;
  /** WAVE_SIGN_BYTES bytes. */
  bits: Uint8Array;
}

/** The signs of the loudest window near the instant at analysis sample `k`; undefined when not held. */
export function sourceWaveSigns(ring: SampleRing, k: number): WaveSigns | undefined {
  if (!ring.has(k + WAVE_FROM, WAVE_TO - WAVE_FROM)) return undefined;
  const data = ring.data, mask = ring.mask;
  // Energy per WAVE_STEP block, then the loudest run of blocks as long as the window.
  const blocks = (WAVE_TO - WAVE_FROM) / WAVE_STEP;
  const per = WAVE_SIGN_SAMPLES / WAVE_STEP;
  const e = new Float64Array(blocks);
  for (let b = 0; b < blocks; b++) {
    let s = 0;
    for (let i = 0, at = k + WAVE_FROM + b * WAVE_STEP; i < WAVE_STEP; i++, at++) {
      const v = data[at & mask]!;
      s += v * v;
    }
    e[b] = s;
  }
  let run = 0;
  for (let b = 0; b < per; b++) run += e[b]!;
  let best = run, bestAt = 0;
  for (let b = per; b < blocks; b++) {
    run += e[b]! - e[b - per]!;
    if (run > best) [best, bestAt] = [run, b - per + 1];
  }
  if (best <= 0) return undefined;
  const offset = WAVE_FROM + bestAt * WAVE_STEP;
  const bits = new Uint8Array(WAVE_SIGN_BYTES);
  for (let i = 0, at = k + offset; i < WAVE_SIGN_SAMPLES; i++, at++) {
    if (data[at & mask]! >= 0) bits[i >> 3] = bits[i >> 3]! | (0x80 >> (i & 7));
  }
  return { offset, bits };
}

/**
 * Shifts beyond WAVE_RANGE tried when the envelope's correlation is there to weigh them, samples (±6 ms: a pitch
 * period on either side). The envelope's peak is a pitch period off on some reshaped targets (AGC, noise
 * suppression: the slow level it would tell the periods apart by is what they reshape), and the signs alone
 * cannot say which period is right (within ±3 or ±4 ms the next period often agrees best).
 */
export const WAVE_FAR = 48;
/**
 * A shift beyond WAVE_RANGE must beat the best one within it by this much on the joint score (signs plus
 * weighted envelope correlation). Measured offline on the bench's recorded alignments (instants within 1 ms,
 * seeds 1 / 2): with no margin AGC 717 / 673, AMR 749 / 701; with 0.03, 723 / 678 and 752 / 705 (of 744 / 702
 * and 765 / 714); 0.02–0.1 are alike.
 */
export const FAR_MARGIN = 0.03;
/**
 * Weight of the envelope's correlation in the joint score. Offline (as for FAR_MARGIN) 0.4–0.6 and 1 did
 * alike, 0 lost (AGC 696 / 661, AMR 715 / 675: the signs alone cannot tell the periods apart); but an envelope
 * a few samples late (a codec's smeared onsets) pulls a heavier weight's answer a sample toward it
 * (tests/audio_align_wave_signs_test.ts: with 0.75 or 1, one anchor of six ends a sample late).
 */
export const ENVELOPE_WEIGHT = 0.5;

/**
 * Agreement of the target's waveform with `signs` for shifts -range..range of the instant at target analysis
 * sample `k`, into `out[0..2·range]`: Σ sᵢ·tᵢ / Σ |tᵢ| (sᵢ = ±1 the source's sign, tᵢ the target sample), -1..1.
 * False when the samples are not held.
 *
 * Why weighted by the target's magnitude: a plain count of equal signs gives a near-silent sample (whose sign
 * is the noise's) as much say as a pitch pulse; AGC and noise reduction lift and gate exactly those samples.
 *
 * The signed sums run in WebAssembly SIMD (dot_simd.ts) where available, `simd: false` keeps them in JS: every
 * product is ± an Int16 sample and every partial sum an integer far below 2^53, so any order of the additions
 * gives the same sums, to the bit (~0.6% of analyze's CPU in JS, a tenth of a match's alignment).
 */
export function waveSignScores(
  ring: SampleRing,
  signs: WaveSigns,
  k: number,
  range: number,
  out: Float64Array,
  opts: { simd?: boolean } = {},
): boolean {
  const from = k + signs.offset - range;
  const n = WAVE_SIGN_SAMPLES + 2 * range;
  if (!ring.has(from, n)) return false;
  const data = ring.data, mask = ring.mask;
  if (scratch.target.length < n) {
    scratch.target = new Float64Array(n);
    scratch.abs = new Float64Array(n + 1);
    scratch.num = new Float64Array(n);
  }
  const target = scratch.target, abs = scratch.abs, src = scratch.src;
  abs[0] = 0;
  for (let i = 0; i < n; i++) {
    const v = data[(from + i) & mask]!;
    target[i] = v;
    abs[i + 1] = abs[i]! + (v < 0 ? -v : v);
  }
  for (let i = 0; i < WAVE_SIGN_SAMPLES; i++) src[i] = (signs.bits[i >> 3]! >> (7 - (i & 7))) & 1 ? 1 : -1;
  const last = 2 * range;
  const dot = opts.simd === false ? undefined : dotKernel();
  if (dot !== undefined && n <= DOT_MAX_SERIES && last < DOT_MAX_OUT) {
    // The window in pieces the kernel takes (a multiple of four values each), their sums added per shift.
    const num = scratch.num;
    dot.series.set(target.subarray(0, n));
    for (let c = 0; c < WAVE_SIGN_SAMPLES; c += DOT_MAX_X) {
      const len = Math.min(DOT_MAX_X, WAVE_SIGN_SAMPLES - c);
      dot.x.set(src.subarray(c, c + len));
      dot.dot(c, len, last + 1);
      const part = dot.out;
      if (c === 0) num.set(part.subarray(0, last + 1));
      else for (let d = 0; d <= last; d++) num[d] = num[d]! + part[d]!;
    }
    for (let d = 0; d <= last; d++) out[d] = scoreOf(num[d]!, abs[d + WAVE_SIGN_SAMPLES]! - abs[d]!);
    return true;
  }
  let d = 0;
  // Four shifts a pass, each its own sum in the order of i (the same sums as one shift at a time): each pass
  // reads a source sign and one new target sample per i, the other three carried over from the previous i.
  for (; d + 3 <= last; d += 4) {
    let n0 = 0, n1 = 0, n2 = 0, n3 = 0;
    let t1 = target[d]!, t2 = target[d + 1]!, t3 = target[d + 2]!;
    for (let i = 0, at = d + 3; i < WAVE_SIGN_SAMPLES; i++, at++) {
      const s = src[i]!, t0 = t1, t4 = target[at]!;
      t1 = t2;
      t2 = t3;
      t3 = t4;
      n0 += s * t0;
      n1 += s * t1;
      n2 += s * t2;
      n3 += s * t3;
    }
    out[d] = scoreOf(n0, abs[d + WAVE_SIGN_SAMPLES]! - abs[d]!);
    out[d + 1] = scoreOf(n1, abs[d + 1 + WAVE_SIGN_SAMPLES]! - abs[d + 1]!);
    out[d + 2] = scoreOf(n2, abs[d + 2 + WAVE_SIGN_SAMPLES]! - abs[d + 2]!);
    out[d + 3] = scoreOf(n3, abs[d + 3 + WAVE_SIGN_SAMPLES]! - abs[d + 3]!);
  }
  for (; d <= last; d++) {
    let num = 0;
    for (let i = 0; i < WAVE_SIGN_SAMPLES; i++) num += src[i]! * target[d + i]!;
    out[d] = scoreOf(num, abs[d + WAVE_SIGN_SAMPLES]! - abs[d]!);
  }
  return true;
}

/** waveSignScores' target samples, their running magnitude and signed sums, and the source's signs as ±1. */
const scratch = {
  target: new Float64Array(0),
  abs: new Float64Array(0),
  num: new Float64Array(0),
  src: new Float64Array(WAVE_SIGN_SAMPLES),
};

/** A shift's agreement from its signed sum and the sum of the magnitudes. */
function scoreOf(num: number, den: number): number {
  return den > 0 ? num / den : 0;
}

/**
 * The shift that best lines the target's waveform up with `signs` for an instant at target analysis sample `k`,
 * and its agreement (-1..1, see {@link waveSignScores}); undefined when the samples are not held. Ties go to the
 * smaller shift.
 *
 * Alone, the signs choose within ±WAVE_RANGE. Given `corrAt` (the envelope's correlation at a shift), the score
 * is the agreement plus that correlation, and a shift up to ±WAVE_FAR wins when it beats the best within
 * ±WAVE_RANGE by FAR_MARGIN: where the envelope and the waveform both favour another pitch period, it is the
 * right one. Measured offline on the bench's recorded alignments (seeds 1 / 2, instants within 1 ms of 744 /
 * 702, 765 / 714 and 745 / 702; AGC, AMR, GSM + pink): the signs as before (counted, ±2 ms) 707 / 664, 752 /
 * 706, 734 / 693; weighted 710 / 666, 756 / 707, 734 / 693; the joint score within ±2 ms 713 / 672, 758 / 709,
 * 735 / 693; up to ±6 ms with the margin 723 / 678, 752 / 705, 738 / 694 (with counted signs 716 / 675, 742 /
 * 703, 739 / 696). The signs alone up to ±3–6 ms, with any margin 0–0.15, lost on every chain (AMR 752 →
 * 553–740).
 */
export function waveSignShift(
  ring: SampleRing,
  signs: WaveSigns,
  k: number,
  corrAt?: (shift: number) => number,
): { shift: number; agreement: number } | undefined {
  let range = corrAt ? WAVE_FAR : WAVE_RANGE;
  if (!waveSignScores(ring, signs, k, range, scores)) {
    range = WAVE_RANGE;
    if (!waveSignScores(ring, signs, k, range, scores)) return undefined;
  }
  const joint = (shift: number) => scores[shift + range]! + (corrAt ? ENVELOPE_WEIGHT * corrAt(shift) : 0);
  // A correlation is at most 1, so a shift whose agreement plus ENVELOPE_WEIGHT falls short of the score to beat
  // cannot win: the envelope's correlation (most of the CPU here) is computed only for shifts that can. Visited
  // in order of agreement, the rest are cut off at the first that cannot; the answer is the full search's.
  const most = corrAt ? ENVELOPE_WEIGHT * (1 + 1e-9) : 0;
  let shift = 0, best = -Infinity;
  const near = byAgreement(scores, range, false);
  for (let j = 0; j < near; j++) {
    const s = visit[j]!;
    if (scores[s + range]! + most < best) break;
    const v = joint(s);
    if (v > best || (v === best && Math.abs(s) < Math.abs(shift))) [best, shift] = [v, s];
  }
  if (range > WAVE_RANGE) {
    // Beyond ±WAVE_RANGE only what beats the near best by FAR_MARGIN counts (within it, nothing beats it).
    let farBest = best + FAR_MARGIN;
    const far = byAgreement(scores, range, true);
    for (let j = 0; j < far; j++) {
      const s = visit[j]!;
      if (scores[s + range]! + most < farBest) break;
      const v = joint(s);
      if (v > farBest || (v === farBest && Math.abs(s) < Math.abs(shift))) [farBest, shift] = [v, s];
    }
  }
  return { shift, agreement: scores[shift + range]! };
}

const scores = new Float64Array(2 * WAVE_FAR + 1);
/** Shifts in the order {@link byAgreement} visits them. */
const visit = new Int32Array(2 * WAVE_FAR + 1);

/**
 * Fills `visit` with the shifts within ±WAVE_RANGE (`far`: those of -range..range beyond it) by agreement in
 * `scores` (shift s at s + range), highest first, equal ones in order of shift (a stable sort of them in order
 * of shift, by insertion: a few dozen); returns how many.
 */
function byAgreement(scores: Float64Array, range: number, far: boolean): number {
  let n = 0;
  for (let s = far ? -range : -WAVE_RANGE; s <= (far ? range : WAVE_RANGE); s++) {
    if (far && Math.abs(s) <= WAVE_RANGE) continue;
    const v = scores[s + range]!;
    let j = n++;
    while (j > 0 && scores[visit[j - 1]! + range]! < v) {
      visit[j] = visit[j - 1]!;
      j--;
    }
    visit[j] = s;
  }
  return n;
}
