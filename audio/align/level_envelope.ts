/**
 * The fine-timing envelope carried by a signature: the level (dB) of 2 ms windows every 1 ms from 64 ms before
 * the instant to 192 ms after it, relative to its loudest window, clamped to 45 dB and quantised to 8 levels.
 *
 * Why: sub-fingerprints use 128 ms frames, so their agreement changes slowly with a shift of a few samples; on
 * GSM or noisy chains the best sub-fingerprint shift was within 1 ms of the truth for only ~70–90% of instants
 * (measured). A short-window level envelope has sharp edges (onsets, pitch pulses) that survive codecs, gain and
 * resampling. Window length, measured on the bench with target taps at a random grid phase (share of instants
 * on the right message within 1 ms): 4 ms windows gave GSM 94.9%, 20 dB SNR 99.2%, 1% loss 98.7%; 2 ms windows
 * 99.3%, 99.5%, 99.2% (1 ms windows: no better, more matches off at 10 dB SNR). It costs 96 bytes of the
 * signature (256 values × 3 bits). Signatures from a version with 4 ms windows still align, less sharply.
 *
 * The correlation is Pearson's on the clamped dB values, so gain does not matter and noise only lifts the floor.
 * @module
 */

import type { GapHint } from "./gap_hints.ts";
import type { SampleRing } from "../decode/sample_ring.ts";
import { kthSmallest } from "../../util/kth_smallest.ts";
import { PlainScan, SCAN_TOLERANCE } from "./plain_scan.ts";
import { LEVEL_MAX_WINDOWS, levelKernel } from "./level_db_simd.ts";

/** Number of envelope values. */
export const ENV_VALUES = 256;
/** Spacing of the values, analysis samples (1 ms). */
export const ENV_HOP = 8;
/** Window of one value, analysis samples (2 ms). */
export const ENV_WINDOW = 16;
/** Values before the instant. */
export const ENV_PRE = 64;
/** Quantisation levels (3 bits). */
export const ENV_LEVELS = 8;
/** Range below the loudest window kept, dB. */
export const ENV_RANGE_DB = 45;
/** Bytes of the packed envelope on the wire. */
export const ENV_PACKED_BYTES = (ENV_VALUES * 3) / 8;

/** Samples the envelope of an instant at `k` reads: [k + ENV_FROM, k + ENV_TO). */
export const ENV_FROM = -ENV_PRE * ENV_HOP;
export const ENV_TO = (ENV_VALUES - ENV_PRE - 1) * ENV_HOP + ENV_WINDOW;

/** Level in dB of the window [pos, pos + ENV_WINDOW) read from a prefix sum of squares. */
function windowDb(prefix: Float64Array, i: number): number {
  const e = (prefix[i + ENV_WINDOW]! - prefix[i]!) / ENV_WINDOW;
  // Int16 scale: 1e-2 is far below one quantisation step, so digital silence stays finite.
  return 10 * Math.log10(e + 1e-2);
}

/**
 * Whether a sample of `ring` in [from, to) aged to the 4-bit tier (and so reads another value) since the ring's
 * {@link SampleRing.finalBefore} was `then`.
 */
export function agedSince(ring: SampleRing, then: number, from: number, to: number): boolean {
  const now = ring.finalBefore;
  return now !== then && from < now && to > then;
}

/**
 * Fills `prefix[at..at + n]` with running sums of squares of ring samples [from, from + n), from 0. The sums are
 * integers below 2^53, so a window's difference is the same wherever the sums start.
 */
function prefixSquares(ring: SampleRing, from: number, n: number, prefix: Float64Array, at = 0): void {
  const data = ring.data, mask = ring.mask;
  prefix[at] = 0;
  // From -0, a double (the same sums: -0 + x is x, and +0 for x = +0): the sums leave the small-integer range within
  // a few loud samples, and an accumulator that started as a small integer cost a deoptimisation and a recompile of
  // the function and its callers there (--trace-deopt: "overflow").
  let acc = -0;
  for (let i = 0; i < n; i++) {
    const v = data[(from + i) & mask]!;
    acc += v * v;
    prefix[at + i + 1] = acc;
  }
}

/** Window levels of one envelope (scratch of {@link sourceEnvelope}). */
const envDb = new Float64Array(ENV_VALUES);

/**
 * The quantised envelope (values 0..7) of the instant at analysis sample `k`, or undefined if not held.
 * `scratch`: an envelope search's, whose window levels are taken where they are this ring's and still hold
 * (a matched instant's envelope lies within the search that aligned it): the same numbers (see
 * {@link windowDb}), without summing its 2,056 samples' squares again.
 */
export function sourceEnvelope(
  ring: SampleRing,
  k: number,
  scratch?: EnvelopeScratch,
): Uint8Array | undefined {
  const from = k + ENV_FROM;
  const n = ENV_TO - ENV_FROM;
  if (!ring.has(from, n)) return undefined;
  const db = envDb;
  const at = from - (scratch?.dbFrom ?? 0);
  if (
    scratch !== undefined && scratch.dbRing === ring && at >= 0 &&
    at + (ENV_VALUES - 1) * ENV_HOP < scratch.dbCount &&
    !agedSince(ring, scratch.dbFinal, scratch.dbFrom, scratch.dbFrom + scratch.dbCount - 1 + ENV_WINDOW)
  ) {
    for (let i = 0; i < ENV_VALUES; i++) db[i] = scratch.db[at + i * ENV_HOP]!;
  } else {
    const prefix = new Float64Array(n + 1);
    prefixSquares(ring, from, n, prefix);
    for (let i = 0; i < ENV_VALUES; i++) db[i] = windowDb(prefix, i * ENV_HOP);
  }
  let max = -Infinity;
  for (let i = 0; i < ENV_VALUES; i++) if (db[i]! > max) max = db[i]!;
  const out = new Uint8Array(ENV_VALUES);
  for (let i = 0; i < ENV_VALUES; i++) {
    const r = Math.max(-ENV_RANGE_DB, db[i]! - max);
    out[i] = Math.round(((r + ENV_RANGE_DB) / ENV_RANGE_DB) * (ENV_LEVELS - 1));
  }
  return out;
}

/** Packs 256 levels (0..7) into 96 bytes, 3 bits each, most significant first. */
export function packEnvelope(levels: Uint8Array): Uint8Array {
  const out = new Uint8Array(ENV_PACKED_BYTES);
  let bit = 0;
  for (let i = 0; i < ENV_VALUES; i++) {
    const v = (levels[i] ?? 0) & 7;
    for (let b = 2; b >= 0; b--, bit++) {
      if ((v >> b) & 1) out[bit >> 3] = out[bit >> 3]! | (0x80 >> (bit & 7));
    }
  }
  return out;
}

/** Inverse of {@link packEnvelope}. */
export function unpackEnvelope(packed: Uint8Array): Uint8Array {
  const out = new Uint8Array(ENV_VALUES);
  let bit = 0;
  for (let i = 0; i < ENV_VALUES; i++) {
    let v = 0;
    for (let b = 0; b < 3; b++, bit++) v = (v << 1) | ((packed[bit >> 3]! >> (7 - (bit & 7))) & 1);
    out[i] = v;
  }
  return out;
}

/** Reusable scratch for {@link envelopeShift} (one per target stream). */
export class EnvelopeScratch {
  prefix = new Float64Array(0);
  db = new Float64Array(0);
  sorted = new Float64Array(0);
  /** Running maxima of `db` at stride ENV_HOP within blocks of ENV_VALUES strides, ascending and descending. */
  upMax = new Float64Array(0);
  downMax = new Float64Array(0);
  at = new Int32Array(ENV_VALUES);
  /** The source's levels in dB, for one search. */
  readonly sDb = new Float64Array(ENV_VALUES);
  /**
   * The ring and first sample of the windows whose levels `db` holds, and how many; the ring's
   * {@link SampleRing.finalBefore} when they were computed.
   */
  dbRing: SampleRing | undefined;
  dbFrom = 0;
  dbCount = 0;
  dbFinal = 0;
  /** The source sides of the plain correlations (see {@link plainCorrelation}). */
  readonly sources = new SourceSides();
  /** The coarse shifts of the plain search, their clamps and estimates (see plain_scan.ts). */
  ds = new Int32Array(0);
  floors = new Float64Array(0);
  rels = new Float64Array(0);
  estimates = new Float64Array(0);
  readonly scan = new PlainScan(ENV_VALUES, ENV_HOP, DETREND_SPAN);
  /** Scores per shift of the plain search and of the last hinted one (NaN: not scored yet). */
  plainMemo = new Float64Array(0);
  hintMemo = new Float64Array(0);
  /** {@link sources}' side for a clamp, as the plain scan asks for it. */
  readonly sourceOf = (rel: number): SourceSide => this.sources.get(rel);
  /**
   * The search under way: the first sample of its windows and how many, the coarse instant, the range, the
   * noise floor, and the hints whose scores `hintMemo` holds.
   */
  from = 0;
  positions = 0;
  center = 0;
  range = 0;
  noise = 0;
  memoHints: readonly GapHint[] | undefined;
  /** The best coarse shifts of a search and their scores, then their peaks, best first. */
  readonly top = new Int32Array(REFINE_CANDIDATES);
  readonly topScore = new Float64Array(REFINE_CANDIDATES);
  readonly peakD = new Int32Array(REFINE_CANDIDATES);
  readonly peakC = new Float64Array(REFINE_CANDIDATES);
}

/**
 * Percentile of the searched span's window levels taken as the target's noise floor: envelope values below it
 * (target and source alike) are clamped to it before correlating.
 */
export const FLOOR_PERCENTILE = 0.05;
/** Shifts scored first (every COARSE_STEP samples); the best few are then refined at every sample. */
export const COARSE_STEP = 4;
/** Coarse candidates refined. */
export const REFINE_CANDIDATES = 3;
/**
 * Shifts farther than this from the coarse position (samples; a hop and a lost 20 ms message) ...
 */
export const NEAR_SHIFT = 256;
/**
 * ... must correlate this much better than the nearer ones: far shifts are needed only when a long message was
 * lost right after the instant, and without a handicap noise made a far peak win on 1% of instants at 10 dB SNR.
 */
export const FAR_HANDICAP = 0.03;
/** Values of the envelope that must remain in the target for a correlation (a gap may take some out). */
const MIN_VALUES = 128;
/**
 * A fit with hinted gaps taken out must beat the plain one by this much. None: on the bench, any margin lost
 * right instants (with 20 dB SNR a right hinted fit beat the plain one by only 0.005) and kept no wrong one.
 */
const HINT_MARGIN = 0;
/**
 * A second peak at least this far from the best (samples) and within ALT_MARGIN of its correlation is returned
 * too: the caller decides between the two on the sub-fingerprints (under GSM the level envelope alone put some
 * instants a pitch period, ~4 ms, early).
 */
export const ALT_SEPARATION = 12;
export const ALT_MARGIN = 0.01;
/**
 * The hypothesis "the instant lies in audio missing from the target" must beat every fit that places it on a
 * target sample by this much correlation (it wins by 0.05–0.2 where DTX suppressed an onset; on the bench's
 * loss chains a zero margin also claimed instants just before a loss).
 */
export const IN_GAP_MARGIN = 0.02;
/** Adjustments of the nearest hint's length tried (analysis samples, ±2 ms). */
const LEN_TRIES = [-16, -8, 8, 16];
/** Hints tried per search, nearest to the coarse position first. */
const MAX_HINTS = 3;

/** Source level `q` (0..ENV_LEVELS-1) in dB relative to the source's loudest window. */
function levelDb(q: number): number {
  return (q / (ENV_LEVELS - 1)) * ENV_RANGE_DB - ENV_RANGE_DB;
}

/** Result of {@link envelopeShift}. */
export interface EnvelopeFit {
  shift: number;
  corr: number;
  /** A second peak nearly as good (see ALT_SEPARATION); undefined when none is. */
  alt: { shift: number; corr: number } | undefined;
  /** True when the instant lies in audio missing from the target; else undefined. */
  instantInGap: true | undefined;
  /**
   * The correlation at any shift in [-range, range] under the gap hypothesis of the answer (-1 outside or when
   * too few values are placed), for the waveform signs to weigh nearby shifts with. Reads the scratch: valid
   * until the next search with it.
   */
  corrAt: (shift: number) => number;
}

/**
 * The running maxima of `db[0, positions)` at stride ENV_HOP within blocks of ENV_VALUES·ENV_HOP positions, from
 * each block's start (`upMax`) and end (`downMax`); see {@link envelopeShift}. A function of its own: as loops
 * inside that long function they were entered through on-stack replacement on every call, and V8 compiled
 * envelopeShift 25 times in an analyze of the bench corpus (`--trace-opt`), ~0.3 s of compiler threads' CPU.
 */
function runningMaxima(
  db: Float64Array,
  positions: number,
  upMax: Float64Array,
  downMax: Float64Array,
): void {
  const block = ENV_VALUES * ENV_HOP;
  // Math.max rather than a comparison: the same value (levels are never NaN or -0), without a branch that the
  // levels' ups and downs mispredict (here and in the clamps of the correlations: CPU per match -4%).
  // The block's first ENV_HOP positions start their strides (the `k % block >= ENV_HOP` test, as a counter).
  for (let k = 0, r = 0; k < positions; k++, r = r + 1 === block ? 0 : r + 1) {
    const v = db[k]!;
    upMax[k] = r >= ENV_HOP ? Math.max(upMax[k - ENV_HOP]!, v) : v;
  }
  for (let k = positions - 1, r = (k + ENV_HOP) % block; k >= 0; k--, r = r === 0 ? block - 1 : r - 1) {
    const v = db[k]!;
    const up = k + ENV_HOP;
    downMax[k] = up < positions && r >= ENV_HOP ? Math.max(downMax[up]!, v) : v;
  }
}

/**
 * The shift in [-range, range] samples around `center` (target analysis sample where the instant coarsely is)
 * at which the target's envelope correlates best with `levels`; undefined when the samples are not held or the
 * source envelope is flat. `gaps`: where capture times suggest audio is missing (gap_hints.ts); the search is
 * also run with those gaps taken out of the target and the better fit wins.
 *
 * Why the whole range and the plain maximum: the coarse position can be more than a hop off (a message lost
 * inside the block pulls the block's alignment to the audio after the loss); a search that favoured shifts near
 * it named the wrong instant for about 1 in 8 matches on a lossy chain, and over the bench's chains no near/far
 * rule beat the global maximum. Why the common noise floor: the source was captured quiet, the target may carry
 * noise 20 dB below the speech; compared as they are, the target's noise fills the pauses the source's envelope
 * is shaped by, and at 20 dB SNR only ~78% of instants were within 1 ms; with both clamped at the target's floor,
 * 99.5% (same on clean chains).
 */
export function envelopeShift(
  ring: SampleRing,
  levels: Uint8Array,
  center: number,
  range: number,
  scratch: EnvelopeScratch,
  gaps: readonly GapHint[] = NO_GAPS,
): EnvelopeFit | undefined {
  const from = center - range + ENV_FROM;
  const n = ENV_TO - ENV_FROM + 2 * range;
  if (!ring.has(from, n)) return undefined;
  const s = scratch;
  const positions = windowLevels(ring, s, from, n);
  const db = s.db;
  const sorted = s.sorted.subarray(0, positions);
  sorted.set(db.subarray(0, positions));
  // One order statistic: selection, not a sort (a sort of the ~4,000 levels cost as much as the search).
  s.noise = kthSmallest(sorted, Math.floor(FLOOR_PERCENTILE * (positions - 1)));
  // The loudest of the ENV_VALUES values of shift d, max(db[d + i·ENV_HOP]), for every d at once (van Herk /
  // Gil-Werman): within blocks of ENV_VALUES·ENV_HOP positions, running maxima from each block's start (upMax)
  // and end (downMax) at stride ENV_HOP; a shift's values span at most two blocks, so its maximum is
  // max(downMax[d], upMax[d + (ENV_VALUES - 1)·ENV_HOP]). Exactly the maximum of the values, in O(positions).
  runningMaxima(db, positions, s.upMax, s.downMax);
  // The scratch's: the source sides hold it only for this search (their sides, once computed, are of `levels`).
  const sDb = s.sDb;
  for (let i = 0; i < ENV_VALUES; i++) sDb[i] = levelDb(levels[i]!);
  s.sources.reset(sDb, levels);
  // Every shift is scored at most once per hypothesis: the refinement revisits its coarse shift (and neighbouring
  // candidates' windows overlap), and the waveform signs ask for shifts the plain search scored already.
  const span = 2 * range + 1;
  if (s.plainMemo.length < span) {
    s.plainMemo = new Float64Array(span);
    s.hintMemo = new Float64Array(span);
    s.ds = new Int32Array(span);
    s.floors = new Float64Array(span);
    s.rels = new Float64Array(span);
    s.estimates = new Float64Array(span);
  }
  s.plainMemo.fill(NaN, 0, span);
  s.from = from;
  s.positions = positions;
  s.center = center;
  s.range = range;
  s.memoHints = undefined;

  let pick = searchPlain(s);
  let pickHints = NO_GAPS;
  // Only gaps that can fall inside some candidate's envelope matter (the rest of this is for them alone).
  const near = gaps.length === 0 ? NO_GAPS : nearHints(gaps, from, n, center);
  for (const hints of hintTries(near)) {
    const hinted = searchHinted(s, hints);
    if (hinted.c > pick.c + HINT_MARGIN) [pick, pickHints] = [hinted, hints];
  }
  if (!(pick.c > -1)) return undefined;
  const corrAt = (shift: number): number => unhandicappedScore(s, shift + range, range, pickHints);
  // The instant itself may lie in the missing stretch (silence suppression stopped sending just before a soft
  // onset, or the instant's message was lost): then no target sample carries it, and the fits above can only
  // name a neighbour (measured on the bench's DTX chain: 40–340 ms early). Score that hypothesis for each hint.
  for (const g of near) {
    const v = scoreInGap(s, g);
    if (v > pick.c + IN_GAP_MARGIN) {
      return { shift: pick.d - range, corr: v, alt: undefined, instantInGap: true, corrAt };
    }
  }
  const shift = pick.d - range, corr = unhandicap(pick.d, range, pick.c);
  // One shape whether or not there is a runner-up or the instant is in a gap (the callers' loads stay monomorphic).
  const alt = pick.altD < 0
    ? undefined
    : { shift: pick.altD - range, corr: unhandicap(pick.altD, range, pick.altC) };
  return { shift, corr, alt, instantInGap: undefined, corrAt };
}

/** No gap hints (one array for every search without them). */
const NO_GAPS: readonly GapHint[] = [];

/**
 * The window levels of `n` samples of `ring` from `from` into `s.db` (keeping those the last search of this ring
 * computed); returns how many.
 */
function windowLevels(ring: SampleRing, s: EnvelopeScratch, from: number, n: number): number {
  if (s.prefix.length < n + 1) s.prefix = new Float64Array(n + 1);
  const positions = n - ENV_WINDOW + 1;
  if (s.db.length < positions) {
    s.db = new Float64Array(positions);
    s.dbRing = undefined;
    s.sorted = new Float64Array(positions);
    s.upMax = new Float64Array(positions);
    s.downMax = new Float64Array(positions);
  }
  const db = s.db;
  // A window's level is a function of its samples alone (their squares are integers, so the prefix sums'
  // differences are exact wherever the sums start), and a ring never rewrites a sample except once, when it
  // ages to the 4-bit tier: levels of windows the last search of this ring computed are moved, not recomputed
  // (a near miss is searched again a frame later), unless one of their samples aged since.
  let keptFrom = 0, keptTo = 0;
  if (s.dbRing === ring && !agedSince(ring, s.dbFinal, s.dbFrom, s.dbFrom + s.dbCount - 1 + ENV_WINDOW)) {
    const lo = Math.max(from, s.dbFrom), hi = Math.min(from + positions, s.dbFrom + s.dbCount);
    if (hi > lo) {
      db.copyWithin(lo - from, lo - s.dbFrom, hi - s.dbFrom);
      keptFrom = lo - from;
      keptTo = hi - from;
    }
  }
  // Squares summed only where windows are computed: before the kept ones and after them (with none kept, all as
  // the first stretch). One call for both stretches: the path that keeps levels is no code the compiler has not
  // seen (a first kept search deoptimised this function).
  const prefix = s.prefix, kept = keptTo > keptFrom;
  for (let r = 0; r < 2; r++) {
    const lo = r === 0 ? 0 : kept ? keptTo : positions;
    const hi = r === 0 && kept ? keptFrom : positions;
    if (hi > lo) windowsOf(ring, from, lo, hi, prefix, db);
  }
  s.dbRing = ring;
  s.dbFinal = ring.finalBefore;
  s.dbFrom = from;
  s.dbCount = positions;
  return positions;
}

/**
 * Levels of windows [lo, hi) (the first `from`) into `db`: in the SIMD kernel where it runs (level_db_simd.ts:
 * the same numbers), else as {@link windowDb} with their squares' sums in `prefix` from `lo`.
 */
function windowsOf(
  ring: SampleRing,
  from: number,
  lo: number,
  hi: number,
  prefix: Float64Array,
  db: Float64Array,
): void {
  const k = levelKernel();
  if (k !== undefined) {
    const data = ring.data, mask = ring.mask, samples = k.samples, out = k.out;
    for (let a = lo; a < hi; a += LEVEL_MAX_WINDOWS) {
      const n = Math.min(LEVEL_MAX_WINDOWS, hi - a);
      const start = (from + a) & mask, len = n - 1 + ENV_WINDOW;
      if (start + len <= mask + 1) samples.set(data.subarray(start, start + len));
      else {
        samples.set(data.subarray(start, mask + 1));
        samples.set(data.subarray(0, len - (mask + 1 - start)), mask + 1 - start);
      }
      k.levels(n);
      db.set(out.subarray(0, n), a);
    }
    return;
  }
  prefixSquares(ring, from + lo, hi - lo - 1 + ENV_WINDOW, prefix, lo);
  for (let i = lo; i < hi; i++) db[i] = windowDb(prefix, i);
}

/** A search's answer: the best shift (index into [0, 2·range]) and its score, and a runner-up on another peak. */
class Found {
  d: number;
  c: number;
  /** The runner-up (see ALT_SEPARATION); -1: none. */
  altD = -1;
  altC = -Infinity;
  constructor(d: number, c: number) {
    this.d = d;
    this.c = c;
  }
}

/** Score `c` of shift index `d` without the far shifts' handicap. */
function unhandicap(d: number, range: number, c: number): number {
  return Math.abs(d - range) > NEAR_SHIFT ? c + FAR_HANDICAP : c;
}

/** The correlation at shift index `d` under `hints` without the far handicap; -1 outside [0, 2·range]. */
function unhandicappedScore(s: EnvelopeScratch, d: number, range: number, hints: readonly GapHint[]): number {
  if (!(d >= 0 && d <= 2 * range)) return -1;
  const c = hints.length === 0 ? plainScore(s, d) : hintedScore(s, d, hints);
  return c === -1 ? -1 : unhandicap(d, range, c);
}

/** The plain fit's score of shift index `d` (remembered for the search). */
function plainScore(s: EnvelopeScratch, d: number): number {
  const memo = s.plainMemo;
  let c = memo[d]!;
  if (c !== c) c = memo[d] = scorePlain(s, d);
  return c;
}

/** The score of shift index `d` with `hints` taken out of the target (remembered for the last hints). */
function hintedScore(s: EnvelopeScratch, d: number, hints: readonly GapHint[]): number {
  if (hints !== s.memoHints) {
    s.hintMemo.fill(NaN, 0, 2 * s.range + 1);
    s.memoHints = hints;
  }
  let c = s.hintMemo[d]!;
  if (c !== c) c = s.hintMemo[d] = scoreHinted(s, d, hints);
  return c;
}

/** {@link plainCorrelation} of shift index `d` at its clamps, with the far handicap. */
function scorePlain(s: EnvelopeScratch, d: number): number {
  const a = s.downMax[d]!, b = s.upMax[d + (ENV_VALUES - 1) * ENV_HOP]!;
  const max = a > b ? a : b;
  const floor = Math.max(max - ENV_RANGE_DB, s.noise);
  // Every value at or below the noise floor (a long pause): the target side is flat, -1 (see flatPlainSide).
  const corr = flatPlainSide(max, floor) ? -1 : plainCorrelation(s.db, d, floor, floor - max, s.sources);
  return Math.abs(d - s.range) > NEAR_SHIFT ? corr - FAR_HANDICAP : corr;
}

/** {@link placedCorrelation} of shift index `d` with `hints` taken out of the target, with the far handicap. */
function scoreHinted(s: EnvelopeScratch, d: number, hints: readonly GapHint[]): number {
  const max = place(s, d, hints);
  if (max === -Infinity) return -1;
  const floor = Math.max(max - ENV_RANGE_DB, s.noise);
  const rel = floor - max;
  const corr = placedCorrelation(s.db, s.sDb, s.at, floor, rel);
  if (corr === NOT_ENOUGH) return -1;
  return Math.abs(d - s.range) > NEAR_SHIFT ? corr - FAR_HANDICAP : corr;
}

/**
 * Fills `s.at` with the db index of each value for the instant at shift index `d` (-1: not in the target),
 * taking `hints` out of the target; returns the loudest target value.
 */
function place(s: EnvelopeScratch, d: number, hints: readonly GapHint[]): number {
  const instant = s.center - s.range + d, from = s.from, positions = s.positions, db = s.db, at = s.at;
  let max = -Infinity;
  for (let i = 0; i < ENV_VALUES; i++) {
    let q = instant + ENV_FROM + i * ENV_HOP;
    let lost = false;
    for (let h = 0; h < hints.length; h++) {
      const g = hints[h]!;
      // A gap after the instant: what the model puts after it is g.len earlier in the target (or missing);
      // a gap before: what the model puts before it is g.len later.
      if (g.at > instant) {
        if (q >= g.at) {
          q -= g.len;
          if (q < g.at) lost = true;
        }
      } else if (q < g.at) {
        q += g.len;
        if (q >= g.at) lost = true;
      }
    }
    const k = q - from;
    if (lost || k < 0 || k >= positions) {
      at[i] = -1;
      continue;
    }
    at[i] = k;
    if (db[k]! > max) max = db[k]!;
  }
  return max;
}

/** Step from coarse shift index `d` to the next: far shifts (only a long lost message needs them) twice as coarse. */
function coarseStep(d: number, range: number): number {
  return Math.abs(d - range) > NEAR_SHIFT ? 2 * COARSE_STEP : COARSE_STEP;
}

/**
 * The plain fit (no hints): the coarse shifts estimated at once (plain_scan.ts), those that can be among the best
 * few scored exactly, then refined.
 */
function searchPlain(s: EnvelopeScratch): Found {
  const range = s.range, last = 2 * range, ds = s.ds, floors = s.floors, rels = s.rels;
  const downMax = s.downMax, upMax = s.upMax, noise = s.noise;
  let count = 0;
  for (let d = 0; d <= last; d += coarseStep(d, range)) {
    const a = downMax[d]!, b = upMax[d + (ENV_VALUES - 1) * ENV_HOP]!;
    const max = a > b ? a : b;
    const floor = Math.max(max - ENV_RANGE_DB, noise);
    ds[count] = d;
    floors[count] = floor;
    rels[count] = floor - max;
    count++;
  }
  const est = s.estimates;
  s.scan.scan(s.db, ds, count, floors, rels, s.sourceOf, est);
  let e1 = -Infinity, e2 = -Infinity, e3 = -Infinity;
  for (let j = 0; j < count; j++) {
    const d = ds[j]!;
    let e = est[j]!;
    if (e !== e) {
      // No estimate: the exact score stands in (and is remembered).
      e = est[j] = s.plainMemo[d] = scorePlain(s, d);
    } else if (Math.abs(d - range) > NEAR_SHIFT) e = est[j] = e - FAR_HANDICAP;
    if (e > e1) {
      e3 = e2;
      e2 = e1;
      e1 = e;
    } else if (e > e2) {
      e3 = e2;
      e2 = e;
    } else if (e > e3) e3 = e;
  }
  // A shift whose estimate falls short of the third best's by more than twice the tolerance is below at least
  // three others exactly: it would not have been kept.
  const third = e3 - 2 * SCAN_TOLERANCE;
  let kept = 0;
  for (let j = 0; j < count; j++) {
    if (est[j]! < third) continue;
    const d = ds[j]!;
    kept = keepTop(s, kept, d, plainScore(s, d));
  }
  return refine(s, kept, NO_GAPS);
}

/** The fit with `hints` taken out of the target: every coarse shift scored exactly, then refined. */
function searchHinted(s: EnvelopeScratch, hints: readonly GapHint[]): Found {
  const range = s.range, last = 2 * range;
  let kept = 0;
  for (let d = 0; d <= last; d += coarseStep(d, range)) kept = keepTop(s, kept, d, hintedScore(s, d, hints));
  return refine(s, kept, hints);
}

/** Inserts shift index `d` scoring `c` into the best REFINE_CANDIDATES of `kept` (after ties); returns how many. */
function keepTop(s: EnvelopeScratch, kept: number, d: number, c: number): number {
  const top = s.top, topScore = s.topScore;
  let k = kept;
  while (k > 0 && topScore[k - 1]! < c) k--;
  if (k >= REFINE_CANDIDATES) return kept;
  for (let q = kept < REFINE_CANDIDATES ? kept : REFINE_CANDIDATES - 1; q > k; q--) {
    top[q] = top[q - 1]!;
    topScore[q] = topScore[q - 1]!;
  }
  top[k] = d;
  topScore[k] = c;
  return kept < REFINE_CANDIDATES ? kept + 1 : kept;
}

/**
 * Every sample around the `kept` best coarse shifts (the correlation peak is about a window wide): the best peak
 * and, when one nearly as good sits elsewhere, that runner-up (the best of another peak).
 */
function refine(s: EnvelopeScratch, kept: number, hints: readonly GapHint[]): Found {
  const range = s.range, last = 2 * range, pd = s.peakD, pc = s.peakC;
  for (let q = 0; q < kept; q++) {
    const d0 = s.top[q]!;
    let bd = d0, bc = -Infinity;
    for (let d = Math.max(0, d0 - COARSE_STEP + 1); d <= Math.min(last, d0 + COARSE_STEP - 1); d++) {
      const c = hints.length === 0 ? plainScore(s, d) : hintedScore(s, d, hints);
      // Ties go to the shift nearest the coarse position.
      if (c > bc || (c === bc && Math.abs(d - range) < Math.abs(bd - range))) {
        bd = d;
        bc = c;
      }
    }
    // Best first, ties to the shift nearest the coarse position (stable: the coarse order after that).
    let k = q;
    while (k > 0 && peakBefore(bd, bc, pd[k - 1]!, pc[k - 1]!, range)) {
      pd[k] = pd[k - 1]!;
      pc[k] = pc[k - 1]!;
      k--;
    }
    pd[k] = bd;
    pc[k] = bc;
  }
  if (kept === 0) return new Found(range, -Infinity);
  const best = new Found(pd[0]!, pc[0]!);
  for (let q = 1; q < kept; q++) {
    if (Math.abs(pd[q]! - best.d) >= ALT_SEPARATION && pc[q]! >= best.c - ALT_MARGIN) {
      best.altD = pd[q]!;
      best.altC = pc[q]!;
      break;
    }
  }
  return best;
}

/** Whether peak (d, c) sorts strictly before peak (e, f): the sort's comparator `f − c || |d − r| − |e − r|` < 0. */
function peakBefore(d: number, c: number, e: number, f: number, range: number): boolean {
  return (f - c || Math.abs(d - range) - Math.abs(e - range)) < 0;
}

/** The capture-time gaps that can fall inside some candidate's envelope, nearest the coarse position first. */
function nearHints(gaps: readonly GapHint[], from: number, n: number, center: number): readonly GapHint[] {
  return gaps.filter((g) => g.at > from && g.at < from + n)
    .sort((a, b) => Math.abs(a.at - center) - Math.abs(b.at - center))
    .slice(0, MAX_HINTS);
}

/**
 * The hint sets tried: each near gap alone (a wrong hint must not spoil a right one), and all together when
 * there are several (two losses near one instant). A hint's length comes from capture times, which jitter by a
 * millisecond or two: the nearest one is also tried a little shorter and longer, so the audio after it lines up
 * to the sample.
 */
function hintTries(near: readonly GapHint[]): (readonly GapHint[])[] {
  if (near.length === 0) return [];
  const tries = near.length > 1 ? [...near.map((g) => [g]), near] : near.map((g) => [g]);
  const first = near[0]!;
  for (const dl of LEN_TRIES) {
    if (first.len + dl > 0) tries.push([{ at: first.at, len: first.len + dl }, ...near.slice(1)]);
  }
  return tries;
}

/**
 * Best correlation with the instant `u` samples into the stretch missing before `g.at` (u in [0, g.len)):
 * source values more than u before the instant sit just before g.at, those from g.len - u after it from
 * g.at on, and the rest are missing.
 */
function scoreInGap(s: EnvelopeScratch, g: GapHint): number {
  let best = -1, bu = 0;
  for (let u = 0; u < g.len; u += COARSE_STEP) {
    const c = inGapCorrelation(s, g, u);
    if (c > best) [best, bu] = [c, u];
  }
  for (let u = Math.max(0, bu - COARSE_STEP + 1); u < Math.min(g.len, bu + COARSE_STEP); u++) {
    best = Math.max(best, inGapCorrelation(s, g, u));
  }
  return Math.abs(g.at - s.center) > NEAR_SHIFT ? best - FAR_HANDICAP : best;
}

/** {@link scoreInGap}'s correlation with the instant `u` samples into the stretch missing before `g.at`. */
function inGapCorrelation(s: EnvelopeScratch, g: GapHint, u: number): number {
  const at = s.at, db = s.db, from = s.from, positions = s.positions;
  let mx = -Infinity;
  for (let i = 0; i < ENV_VALUES; i++) {
    const v = ENV_FROM + i * ENV_HOP;
    const q = v < -u ? g.at + v + u : v >= g.len - u ? g.at + v + u - g.len : -1;
    const k = q < 0 ? -1 : q - from;
    at[i] = k < 0 || k >= positions ? -1 : k;
    if (at[i]! >= 0 && db[at[i]!]! > mx) mx = db[at[i]!]!;
  }
  if (mx === -Infinity) return -1;
  const floor = Math.max(mx - ENV_RANGE_DB, s.noise);
  const rel = floor - mx;
  const corr = placedCorrelation(db, s.sDb, at, floor, rel);
  return corr === NOT_ENOUGH ? -1 : corr;
}

/** {@link placedCorrelation}'s answer when fewer than MIN_VALUES envelope values are placed. */
const NOT_ENOUGH = -2;

/**
 * Values on either side of each envelope value whose mean is taken out before correlating (±16 ms).
 *
 * Why: AGC, compression and noise suppression reshape the level over tens of milliseconds (quiet stretches
 * lifted by up to 18 dB, loud ones held down, a noise reducer's pre-echo lifted with them), so the target's
 * onsets become ramps that start earlier than the source's steps; correlated as they are, the clamped levels
 * put such instants 20–38 ms early (measured on the bench's AGC chain: 4.8% of matches more than 20 ms off,
 * 79.8% exact). Residuals around a ±16 ms mean keep what gain reshaping leaves alone: sharp onsets and the pitch
 * pulses within voiced speech. Measured offline on the bench's recorded alignments (seed 1; share within 1 ms):
 * AGC 80.7% → 94.4%, GSM + pink noise 98.3% → 98.7%, AMR 86.4% → 86.1%; ±2 ms lost the onsets (AGC 79.9%),
 * ±4 ms 90.1%, ±8 ms 92.2%, ±12 ms 94.2%, ±24 ms 94.2%, ±32 ms 94.1%.
 */
export const DETREND_SPAN = 16;

const tVals = new Float64Array(ENV_VALUES);
const sVals = new Float64Array(ENV_VALUES);
const tRun = new Float64Array(ENV_VALUES + 1);
const sRun = new Float64Array(ENV_VALUES + 1);

/**
 * Pearson correlation of the target levels `db[at[i]]` (clamped at `floor`) with the source levels `sDb[i]`
 * (clamped at `rel`) over the values `at` places (`at[i] < 0`: missing), each side less its running mean over
 * ±{@link DETREND_SPAN} placed values; -1 when either side is flat, {@link NOT_ENOUGH} when too few values are
 * placed. One formula for the plain, gap and in-gap hypotheses.
 */
export function placedCorrelation(
  db: Float64Array,
  sDb: Float64Array,
  at: Int32Array,
  floor: number,
  rel: number,
): number {
  let m = 0;
  for (let i = 0; i < ENV_VALUES; i++) {
    const k = at[i]!;
    if (k < 0) continue;
    const v = db[k]!;
    const x = sDb[i]!;
    tVals[m] = v < floor ? floor : v;
    sVals[m] = x < rel ? rel : x;
    m++;
  }
  if (m < MIN_VALUES) return NOT_ENOUGH;
  tRun[0] = 0;
  sRun[0] = 0;
  for (let i = 0; i < m; i++) {
    tRun[i + 1] = tRun[i]! + tVals[i]!;
    sRun[i + 1] = sRun[i]! + sVals[i]!;
  }
  let tSum = 0, tSq = 0, sSum = 0, sSq = 0, cross = 0;
  for (let i = 0; i < m; i++) {
    const lo = i > DETREND_SPAN ? i - DETREND_SPAN : 0;
    const hi = i + DETREND_SPAN + 1 < m ? i + DETREND_SPAN + 1 : m;
    const w = hi - lo;
    const v = tVals[i]! - (tRun[hi]! - tRun[lo]!) / w;
    const x = sVals[i]! - (sRun[hi]! - sRun[lo]!) / w;
    tSum += v;
    tSq += v * v;
    sSum += x;
    sSq += x * x;
    cross += v * x;
  }
  const tVar = tSq - (tSum * tSum) / m;
  const sVar = sSq - (sSum * sSum) / m;
  const cov = cross - (tSum * sSum) / m;
  return tVar > 1e-9 && sVar > 1e-9 ? cov / Math.sqrt(tVar * sVar) : -1;
}

/**
 * The source side of {@link placedCorrelation} with every value placed: the levels clamped at `rel` less their
 * running mean, and the sums of those.
 */
export class SourceSide {
  /** The clamp it was computed for. */
  rel = NaN;
  readonly x = new Float64Array(ENV_VALUES);
  sSum = 0;
  sSq = 0;
}

/** Most source sides kept per search (beyond, the oldest is recomputed when asked for again). */
const MAX_SOURCE_SIDES = 32;

/**
 * The source sides of one source envelope by clamp. A source side depends only on the clamp (and the source),
 * which the plain search's shifts share in long runs (the loudest target value within an envelope's span
 * changes rarely from one shift to the next), so each is computed once per search.
 */
export class SourceSides {
  readonly #sides: SourceSide[] = [];
  #used = 0;
  #next = 0;
  #sDb: Float64Array = new Float64Array(ENV_VALUES);
  #key = new Uint8Array(0);
  /** Changes whenever the sides are forgotten (for what is derived from them). */
  generation = 0;

  /**
   * The next sides are of the source levels `sDb`, from the quantised levels `key`: the sides computed before are
   * forgotten unless they were of the same levels (a signature's envelope searched again at the next frame).
   */
  reset(sDb: Float64Array, key: Uint8Array): void {
    this.#sDb = sDb;
    const k = this.#key;
    let same = key.length === k.length;
    for (let i = 0; same && i < k.length; i++) same = key[i] === k[i];
    if (same) return;
    this.#key = Uint8Array.from(key);
    this.#used = 0;
    this.#next = 0;
    this.generation++;
  }

  /** The side for clamp `rel`. */
  get(rel: number): SourceSide {
    for (let i = 0; i < this.#used; i++) {
      const side = this.#sides[i]!;
      if (Object.is(side.rel, rel)) return side;
    }
    let side: SourceSide;
    if (this.#used < MAX_SOURCE_SIDES) {
      side = this.#sides[this.#used] ??= new SourceSide();
      this.#used++;
    } else {
      side = this.#sides[this.#next]!;
      this.#next = (this.#next + 1) % MAX_SOURCE_SIDES;
    }
    computeSide(this.#sDb, rel, side);
    return side;
  }
}

/** {@link SourceSide} of the source levels `sDb` for clamp `rel`, into `side`: placedCorrelation's operations. */
function computeSide(sDb: Float64Array, rel: number, side: SourceSide): void {
  const m = ENV_VALUES;
  const x = side.x;
  let acc = 0;
  sRun[0] = 0;
  for (let i = 0; i < m; i++) {
    const v = sDb[i]!;
    const c = Math.max(v, rel);
    sVals[i] = c;
    acc += c;
    sRun[i + 1] = acc;
  }
  let sSum = 0, sSq = 0;
  for (let i = 0; i < m; i++) {
    const lo = i > DETREND_SPAN ? i - DETREND_SPAN : 0;
    const hi = i + DETREND_SPAN + 1 < m ? i + DETREND_SPAN + 1 : m;
    const v = sVals[i]! - (sRun[hi]! - sRun[lo]!) / (hi - lo);
    x[i] = v;
    sSum += v;
    sSq += v * v;
  }
  side.sSum = sSum;
  side.sSq = sSq;
  side.rel = rel;
}

/**
 * Why a shift whose loudest value is at or below its clamp scores -1 without the formula: every value is clamped
 * to the same `floor`, so each less its running mean is rounding error alone (the running sums of ≤ 256 copies
 * of |floor| ≤ 200 are off by < 1e-8, a mean by less), the target's sum of squares stays below 1e-12, far under
 * the 1e-9 below which {@link plainCorrelation} calls a side flat. About 6 of a search's ~40 exact scores were
 * such shifts (pauses longer than the envelope's 256 ms span), each a full correlation to answer -1.
 */
export function flatPlainSide(max: number, floor: number): boolean {
  return max <= floor;
}

/**
 * {@link placedCorrelation} of the values `db[d + i·ENV_HOP]`, every one placed, with the same operations in the
 * same order for each of its sums, so the same number to the bit; the source side comes from `sides`.
 */
export function plainCorrelation(
  db: Float64Array,
  d: number,
  floor: number,
  rel: number,
  sides: SourceSides,
): number {
  const m = ENV_VALUES;
  const side = sides.get(rel);
  const x = side.x;
  let acc = 0;
  tRun[0] = 0;
  for (let i = 0, k = d; i < m; i++, k += ENV_HOP) {
    const v = db[k]!;
    const c = Math.max(v, floor);
    tVals[i] = c;
    acc += c;
    tRun[i + 1] = acc;
  }
  // placedCorrelation's window [lo, hi) in three stretches: cut at the start, whole (2·DETREND_SPAN + 1 values,
  // the same division), cut at the end.
  const span = DETREND_SPAN, whole = 2 * DETREND_SPAN + 1;
  let tSum = 0, tSq = 0, cross = 0;
  let i = 0;
  for (; i <= span; i++) {
    const hi = i + span + 1;
    const v = tVals[i]! - (tRun[hi]! - tRun[0]!) / hi;
    tSum += v;
    tSq += v * v;
    cross += v * x[i]!;
  }
  for (; i + span + 1 < m; i++) {
    const v = tVals[i]! - (tRun[i + span + 1]! - tRun[i - span]!) / whole;
    tSum += v;
    tSq += v * v;
    cross += v * x[i]!;
  }
  for (; i < m; i++) {
    const lo = i - span;
    const v = tVals[i]! - (tRun[m]! - tRun[lo]!) / (m - lo);
    tSum += v;
    tSq += v * v;
    cross += v * x[i]!;
  }
  const sSum = side.sSum;
  const tVar = tSq - (tSum * tSum) / m;
  const sVar = side.sSq - (sSum * sSum) / m;
  const cov = cross - (tSum * sSum) / m;
  return tVar > 1e-9 && sVar > 1e-9 ? cov / Math.sqrt(tVar * sVar) : -1;
}
