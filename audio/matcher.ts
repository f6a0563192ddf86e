/**
 * Finding signatures in one target stream's sub-fingerprints, in both orders:
 * - forward: each new target frame (not silent) is looked up in the {@link SignatureIndex} by both 16-bit
 *   halves, plus each half with its weakest bit toggled; hits within Hamming distance 4 vote for an alignment
 *   (signature, target frame of its frame 0). Two votes (a near-exact hit counts two; the neighbouring
 *   alignments' votes count, the grids differ by up to half a hop) queue a pre-check on 32 frames once 64 are
 *   there (weighted BER ≤ 0.36), and a passing alignment is verified when the whole block is there;
 * - backward: a signature that just arrived is looked up in the target frames already held (the lookback, from
 *   its source time minus the clock skew allowance on), through a small table of its own half-values; what
 *   is complete is verified at once, the rest when its frames arrive.
 *
 * Verification scores the block at the alignment and its neighbours. The score is a weighted bit error rate:
 * bits the target itself measured with a large energy difference ("strong") count fully, the others 0.3 — noise
 * flips weak bits first. A message lost at the target shifts the rest of the block 1–8 frames earlier, so a
 * two-part score (prefix at one alignment, suffix at an earlier one) replaces the whole-block one when it is
 * clearly more significant; the instant is where the prefix aligns. A match needs all of:
 * - weighted BER ≤ `thresholdBer` (0.4);
 * - significance 2·(0.5 − BER)·(effective bits)^0.35 ≥ `minZ` (6.4), plus up to 0.4 more for short blocks;
 * - a peak: the best score at least `margin` (0.04) below the best score 2–6 frames away (after WebRTC's delay
 *   estimator, which accepts a delay only when the best candidate stands out);
 * - target time not earlier than the source time minus 2 s (clock skew between nodes).
 * Tuned on the bench corpus (16 calls, ~600 signatures, 4 negative streams): through identity, GSM, 20 and 10 dB
 * SNR and 1% loss, the best chance alignment on other streams stayed ≥ 0.12 below the threshold while 97.4% of
 * signatures at 20 dB and 84.4% at 10 dB passed it.
 * @module
 */

import { type FrameStore, SUBFP_BITS, weakMask } from "./fingerprint.ts";
import {
  FRAME_WORDS,
  framesBelow,
  HitBuffer,
  popcount32,
  type SignatureIndex,
  writeFrameSlot,
} from "./signature_index.ts";
import { isMasked } from "./signature.ts";
import type { Signature } from "./types.ts";

/** When a verified alignment is a match. */
export interface MatchRule {
  /** Highest weighted bit error rate at the peak. */
  thresholdBer: number;
  /** Least difference between the best weighted BER 2..6 frames away and the peak's. */
  margin: number;
  /** Least significance z (see the module doc). */
  minZ: number;
}

/** Default rule, tuned on the accuracy corpus: `deno task bench` (bench/accuracy.ts) measures recall and false matches. */
export const DEFAULT_RULE: Readonly<MatchRule> = Object.freeze({
  thresholdBer: 0.4,
  margin: 0.04,
  minZ: 6.4,
});
/**
 * Blocks with fewer usable frames than this need more significance: chance agreement of short blocks was
 * somewhat higher than the exponent predicts.
 */
export const SHORT_BLOCK_FRAMES = 60;
/** Extra significance required per 36 frames below SHORT_BLOCK_FRAMES. */
export const SHORT_BLOCK_EXTRA_Z = 0.4;

/** The significance a block with `used` usable frames needs under `rule`. */
export function requiredZ(rule: MatchRule, used: number): number {
  return rule.minZ + SHORT_BLOCK_EXTRA_Z * Math.max(0, (SHORT_BLOCK_FRAMES - used) / 36);
}
/** Weight of a bit the target measured with a small energy difference. */
export const WEAK_WEIGHT = 0.3;
/** Largest Hamming distance of a lookup hit (one half exact, the whole value within this). */
export const HIT_MAX_DIST = 4;
/** A single hit this close queues verification without a second vote. */
const STRONG_HIT_DIST = 1;
/** Frames either side searched for the second-best score. */
export const MARGIN_SPAN = 6;
/** Usable (unmasked, present) frames a block needs to be verified at all. */
export const MIN_USED_FRAMES = 16;
/** Target audio earlier than the source instant minus this (clock skew between nodes) is not searched, ns. */
export const CLOCK_SKEW_NS = 2_000_000_000n;
/** Target frames quieter than this (dB, as FrameStore.energy) are not looked up: silence matches nothing. */
export const SILENT_FRAME_DB = -55;
/** Weak bits toggled per half when probing (of the two recorded per half). */
export const PROBE_BITS_PER_HALF = 1;

/** What a verification saw, for tuning (see {@link setVerifyObserver}). */
export interface VerifyTrace {
  sigId: string;
  /** Target frame of the signature's frame 0 (prefix alignment when split). */
  frame: number;
  ber: number;
  z: number;
  /** Whole-block z at the best of s-1..s+1. */
  wholeZ: number;
  split: boolean;
  second: number;
  used: number;
  /** Capture time of the target message at `frame` (undefined when unknown). */
  targetTimeNs: bigint | undefined;
  accepted: boolean;
}

let observer: ((t: VerifyTrace) => void) | undefined;
let observeOnly = false;

/**
 * Installs (or with undefined removes) a callback that sees every verification that got past the cheap
 * rejections: for tuning and the bench. `observeOnly`: never accept, so every candidate is seen.
 */
export function setVerifyObserver(
  fn: ((t: VerifyTrace) => void) | undefined,
  opts: { observeOnly?: boolean } = {},
): void {
  observer = fn;
  observeOnly = fn !== undefined && opts.observeOnly === true;
}

/**
 * Exponent of the effective bit count in the significance. Independent bits would give 0.5 (a z-score); bits of
 * speech fingerprints are correlated within and across frames, so chance agreement of unrelated speech grows
 * with block length faster than that predicts. 0.35 separated true matches (through noise, GSM, loss) from the
 * best chance alignments against unrelated speech over 3,000 signature × chain trials (bench/accuracy.ts).
 */
export const SIGNIFICANCE_EXPONENT = 0.35;

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
  const ww = WEAK_WEIGHT;
  for (let j = from; j < to; j++) {
    if (mask !== undefined && ((mask[j >> 3]! >> (j & 7)) & 1) === 1) continue;
    const i = (s + j) & m;
    const x = (fp[j]! ^ bits[i]!) >>> 0;
    const sm = strong[i]!;
    const ns = popcount32(sm);
    e += popcount32((x & sm) >>> 0) + ww * popcount32((x & ~sm) >>> 0);
    d += ns + ww * (SUBFP_BITS - ns);
    d2 += ns + ww * ww * (SUBFP_BITS - ns);
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
function frameErrors(
  fp: Uint32Array,
  mask: Uint8Array | undefined,
  store: FrameStore,
  s: number,
  e: Float64Array,
  w: Float64Array,
  w2: Float64Array,
): void {
  const bits = store.bits, strong = store.strong, m = store.mask;
  const ww = WEAK_WEIGHT;
  for (let j = 0; j < fp.length; j++) {
    e[j] = 0;
    w[j] = 0;
    w2[j] = 0;
    if (isMasked(mask, j) || !store.has(s + j, 1)) continue;
    const i = (s + j) & m;
    const x = (fp[j]! ^ bits[i]!) >>> 0;
    const sm = strong[i]!;
    const ns = popcount32(sm);
    e[j] = popcount32((x & sm) >>> 0) + ww * popcount32((x & ~sm) >>> 0);
    w[j] = ns + ww * (SUBFP_BITS - ns);
    w2[j] = ns + ww * ww * (SUBFP_BITS - ns);
  }
}

/**
 * A rejected candidate is re-scored on the envelope's grid phase (see rephase.ts) only when its significance
 * reached this fraction of the required: a grid phase costs a few tenths of the significance, not half of it, and
 * each re-scoring costs a block of frame analyses.
 */
const REPHASE_FRACTION = 0.75;
/** {@link TargetMatcher}'s verification rejected a candidate on its score after a significant start. */
const NEAR_MISS = Symbol("near miss");

/**
 * How far (frames) a capture-time gap may sit from where a split block breaks, and differ in length from its
 * shift, and still count as the loss that split it (both are known to a few frames).
 */
export const GAP_SLACK_FRAMES = 4;
/** Significance a split gives up when capture times show no such gap where it splits (see #verifyOn). */
const UNHINTED_SPLIT_EXTRA_Z = 0.8;
/** Significance a split of a block shorter than SHORT_BLOCK_FRAMES gives up (see #verifyOn). */
const SHORT_SPLIT_EXTRA_Z = 0.5;
/** Split scoring only helps if it beats the whole block by this much significance (a lost message). */
const SPLIT_GAIN_Z = 1;
/** Frames the part before a split must have, so that the instant is aligned on real evidence. */
const MIN_PREFIX_FRAMES = 8;
/**
 * Largest shift between the two parts of a split, frames: a lost message of up to 128 ms (messages of 10–120 ms
 * are common).
 */
const SPLIT_MAX_SHIFT = 8;
/** Whole-block significance (fraction of the required) below which no split is tried. */
const SPLIT_MIN_FRACTION = 0.5;
/** Each part of a split must be significant on its own. */
const SPLIT_PART_Z = 2;

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

/** A verified alignment. */
export interface CoarseMatch {
  sig: Signature;
  /** Target frame where the signature's first frame sits. */
  frame: number;
  /** Weighted BER and significance at that frame. */
  ber: number;
  z: number;
  /** Best weighted BER 2..6 frames away. */
  second: number;
  /** Scored in two parts (a message lost inside the block): the frame is where the first part aligns. */
  split?: boolean;
}

/** Counters of a matcher. */
export interface MatcherStats {
  lookups: number;
  hits: number;
  /** Alignments that gathered enough votes and were pre-checked on a few frames. */
  prechecked: number;
  /** Alignments scored on the whole block. */
  verified: number;
  accepted: number;
  rejected: number;
  /** Near misses scored again on the grid phase their envelope found (see rephase.ts). */
  rephased: number;
}

/** What a matcher needs from its stream besides the frames. */
export interface MatcherContext {
  index: SignatureIndex;
  store: FrameStore;
  rule: MatchRule;
  /** Hop of the frame grid, samples. */
  hop: number;
  /** Capture time of the message carrying analysis sample k, if still known. */
  timeOfSample(k: number): bigint | undefined;
  /** First analysis sample carried by a message captured at or after `t` (or the end of the stream). */
  firstSampleAtOrAfter(t: bigint): number;
  /**
   * The block of `sig` (coarsely at `frame`) re-fingerprinted on the grid phase where its envelope puts it
   * (see rephase.ts), for a second verification of a near miss; undefined if not possible.
   */
  rephase?(sig: Signature, frame: number): { store: FrameStore; frame: number } | undefined;
  /**
   * Whether capture times suggest that `shift` frames (± GAP_SLACK_FRAMES) of audio are missing between frames
   * `from` and `to` (see gap_hints.ts); without that, a split (a lost message inside the block) is taken on the
   * audio's word alone.
   */
  gapAt?(from: number, to: number, shift: number): boolean;
}

/** A signature's half-values in a small open-addressed table, for the backward search. */
class SigTable {
  readonly keys: Int32Array;
  readonly head: Int16Array;
  readonly next: Int16Array;
  readonly mask: number;

  constructor(fp: Uint32Array, sigMask: Uint8Array | undefined, half: 0 | 1) {
    let cap = 64;
    while (cap < fp.length * 4) cap *= 2;
    this.mask = cap - 1;
    this.keys = new Int32Array(cap).fill(-1);
    this.head = new Int16Array(cap).fill(-1);
    this.next = new Int16Array(fp.length).fill(-1);
    for (let j = 0; j < fp.length; j++) {
      if (isMasked(sigMask, j)) continue;
      const key = half === 0 ? fp[j]! >>> 16 : fp[j]! & 0xffff;
      let h = Math.imul(key, 0x9e3779b1) >>> 0 & this.mask;
      while (this.keys[h] !== -1 && this.keys[h] !== key) h = (h + 1) & this.mask;
      this.keys[h] = key;
      this.next[j] = this.head[h]!;
      this.head[h] = j;
    }
  }

  /** First frame with this half-value (-1 if none); continue with `next[j]`. */
  first(key: number): number {
    let h = Math.imul(key, 0x9e3779b1) >>> 0 & this.mask;
    for (;;) {
      const k = this.keys[h]!;
      if (k === key) return this.head[h]!;
      if (k === -1) return -1;
      h = (h + 1) & this.mask;
    }
  }
}

const sigTables = new WeakMap<Signature, [SigTable, SigTable]>();
const sigUsed = new WeakMap<Signature, Int16Array>();
const sigFrames = new WeakMap<Signature, Uint32Array>();

/** A signature's unmasked frames laid out as one slot of {@link SignatureIndex.frames} (cached). */
function framesOf(sig: Signature): Uint32Array {
  let f = sigFrames.get(sig);
  if (!f) {
    f = new Uint32Array(FRAME_WORDS);
    writeFrameSlot(f, 0, sig.fingerprint, usedFrames(sig));
    sigFrames.set(sig, f);
  }
  return f;
}

/** Positions of a signature's unmasked frames (cached per signature object). */
function usedFrames(sig: Signature): Int16Array {
  let u = sigUsed.get(sig);
  if (!u) {
    const list: number[] = [];
    for (let j = 0; j < sig.fingerprint.length; j++) if (!isMasked(sig.mask, j)) list.push(j);
    u = Int16Array.from(list);
    sigUsed.set(sig, u);
  }
  return u;
}

function tablesOf(sig: Signature): [SigTable, SigTable] {
  let t = sigTables.get(sig);
  if (!t) {
    t = [new SigTable(sig.fingerprint, sig.mask, 0), new SigTable(sig.fingerprint, sig.mask, 1)];
    sigTables.set(sig, t);
  }
  return t;
}

const probeHi = new Int32Array(PROBE_BITS_PER_HALF);
const probeLo = new Int32Array(PROBE_BITS_PER_HALF);

/**
 * The probes of a target value: the value itself plus, per half, the value with that half's weakest
 * {@link PROBE_BITS_PER_HALF} bits toggled. Writes [halfKey...] pairs as (half, key) into `out`; returns count.
 */
function probes(v: number, weak: number, out: Int32Array): number {
  let n = 0;
  out[n++] = 0;
  out[n++] = v >>> 16;
  out[n++] = 1;
  out[n++] = v & 0xffff;
  const hiMasks = PROBE_BITS_PER_HALF, loMasks = PROBE_BITS_PER_HALF;
  const hiList = probeHi, loList = probeLo;
  for (let k = 0; k < PROBE_BITS_PER_HALF; k++) {
    hiList[k] = weakMask(weak, k) >>> 16;
    loList[k] = weakMask(weak, 2 + k) & 0xffff;
  }
  for (let p = 1; p < 1 << hiMasks; p++) {
    let t = 0;
    for (let b = 0; b < hiMasks; b++) if ((p >> b) & 1) t ^= hiList[b]!;
    out[n++] = 0;
    out[n++] = (v >>> 16) ^ t;
  }
  for (let p = 1; p < 1 << loMasks; p++) {
    let t = 0;
    for (let b = 0; b < loMasks; b++) if ((p >> b) & 1) t ^= loList[b]!;
    out[n++] = 1;
    out[n++] = (v & 0xffff) ^ t;
  }
  return n >> 1;
}

/** Bits (log2) of a vote-table generation's filter of present alignments: 32768 bits, 4 KB. */
const SEEN_LOG2 = 15;
const SEEN_WORDS = (1 << SEEN_LOG2) >> 5;

/** Vote-table entry states: gathering votes, or handed to the checks (never queued twice). */
const NEW = 0, QUEUED = 1;

/**
 * Votes per alignment (signature slot, target frame of its frame 0) in typed arrays: two open-addressed
 * generations of EPOCH frames each, so entries expire without deletions (a candidate's hits span at most one
 * block, i.e. two consecutive epochs). Grows when a generation fills up.
 */
class VoteTable {
  #cap: number;
  /** Per field one array of both generations: generation g's entry h is at g·cap + h. */
  #slot: Int32Array;
  #s: Int32Array;
  #votes: Uint8Array;
  #last: Int32Array;
  #state: Uint8Array;
  #used = [0, 0];
  #cur = 0;
  #epoch = -1;
  /**
   * Per generation a bitset over a hash of (slot, s): bit clear means no such entry there. Most votes are for
   * alignments seen nowhere before, and their lookups in the older generation and of the neighbours are cache
   * misses in a table of a few hundred KB; this 4 KB filter answers most of them (a set bit is only a maybe).
   */
  readonly #seen = new Int32Array(2 * SEEN_WORDS);

  constructor(cap = 1024) {
    this.#cap = cap;
    this.#slot = new Int32Array(2 * cap).fill(-1);
    this.#s = new Int32Array(2 * cap);
    this.#votes = new Uint8Array(2 * cap);
    this.#last = new Int32Array(2 * cap);
    this.#state = new Uint8Array(2 * cap);
  }

  /** Bytes held. */
  get bytes(): number {
    return this.#cap * 2 * 14 + this.#seen.byteLength;
  }

  /** Moves to the epoch of frame `t` (clearing the older generation when a new epoch starts). */
  advance(t: number, epochFrames: number): void {
    const e = Math.floor(t / epochFrames);
    if (e === this.#epoch) return;
    if (e === this.#epoch + 1) {
      this.#cur ^= 1;
      this.#clear(this.#cur);
    } else {
      this.#clear(0);
      this.#clear(1);
    }
    this.#epoch = e;
  }

  #clear(g: number): void {
    this.#slot.fill(-1, g * this.#cap, (g + 1) * this.#cap);
    this.#seen.fill(0, g * SEEN_WORDS, (g + 1) * SEEN_WORDS);
    this.#used[g] = 0;
  }

  /** Bit of (slot, s) in the {@link #seen} filter (same bit in both generations' halves). */
  #seenBit(slot: number, s: number): number {
    return Math.imul(slot ^ Math.imul(s, 0x85ebca6b), 0x9e3779b1) >>> (32 - SEEN_LOG2);
  }

  /** False if generation g surely has no entry of (slot, s). */
  #mayHave(g: number, slot: number, s: number): boolean {
    const b = this.#seenBit(slot, s);
    return (this.#seen[g * SEEN_WORDS + (b >>> 5)]! & (1 << (b & 31))) !== 0;
  }

  /** Index (g·cap + h) of the entry of (slot, s) in generation g, or of the free place where it would go. */
  #find(g: number, slot: number, s: number): number {
    const cap = this.#cap, mask = cap - 1, base = g * cap;
    const keys = this.#slot, ss = this.#s;
    // Alignments of a slot in runs of four places (16 bytes of keys, one cache line): s and its neighbours,
    // looked up together by the neighbour check, then mostly share a line instead of hitting three random ones.
    let h = ((Math.imul(slot, 0x9e3779b1) ^ Math.imul(s >> 2, 0x85ebca6b)) << 2 | (s & 3)) & mask;
    for (;;) {
      const k = keys[base + h]!;
      if (k === -1 || (k === slot && ss[base + h] === s)) return base + h;
      h = (h + 1) & mask;
    }
  }

  /**
   * Adds a vote from target frame `t` (once per frame) worth `w`; returns the entry's state before, the
   * votes after in `out[0]` and a handle (generation·cap + index) in `out[1]`.
   */
  vote(slot: number, s: number, t: number, w: number, out: Int32Array): number {
    // Merge with the older generation's entry, if any, by moving it into the current one.
    const g = this.#cur;
    const h = this.#find(g, slot, s);
    const keys = this.#slot, votes = this.#votes, last = this.#last, states = this.#state;
    if (keys[h] === -1) {
      if (this.#used[g]! * 10 >= this.#cap * 7) {
        this.#grow();
        return this.vote(slot, s, t, w, out);
      }
      const ho = this.#mayHave(1 - g, slot, s) ? this.#find(1 - g, slot, s) : -1;
      keys[h] = slot;
      this.#s[h] = s;
      this.#used[g]!++;
      const b = this.#seenBit(slot, s);
      this.#seen[g * SEEN_WORDS + (b >>> 5)]! |= 1 << (b & 31);
      if (ho >= 0 && keys[ho] !== -1) {
        votes[h] = votes[ho]!;
        last[h] = last[ho]!;
        states[h] = states[ho]!;
      } else {
        votes[h] = 0;
        last[h] = -1;
        states[h] = NEW;
      }
    }
    const state = states[h]!;
    if (last[h] !== t) {
      last[h] = t;
      votes[h] = Math.min(255, votes[h]! + w);
    }
    out[0] = votes[h]!;
    out[1] = h;
    return state;
  }

  /** Votes of a neighbouring alignment (0 if none). */
  votesAt(slot: number, s: number): number {
    let v = 0;
    for (let g = 0; g < 2; g++) {
      if (!this.#mayHave(g, slot, s)) continue;
      const h = this.#find(g, slot, s);
      if (this.#slot[h] !== -1) v = Math.max(v, this.#votes[h]!);
    }
    return v;
  }

  /** Sets the state of the entry behind `handle` (from {@link vote}). */
  setState(handle: number, state: number): void {
    this.#state[handle] = state;
  }

  #grow(): void {
    const old = { slot: this.#slot, s: this.#s, votes: this.#votes, last: this.#last, state: this.#state };
    const oldCap = this.#cap;
    const cap = oldCap * 2;
    this.#cap = cap;
    this.#slot = new Int32Array(2 * cap).fill(-1);
    this.#s = new Int32Array(2 * cap);
    this.#votes = new Uint8Array(2 * cap);
    this.#last = new Int32Array(2 * cap);
    this.#state = new Uint8Array(2 * cap);
    this.#used = [0, 0];
    for (let g = 0; g < 2; g++) {
      for (let i = g * oldCap; i < (g + 1) * oldCap; i++) {
        const key = old.slot[i]!;
        if (key === -1) continue;
        const h = this.#find(g, key, old.s[i]!);
        this.#slot[h] = key;
        this.#s[h] = old.s[i]!;
        this.#votes[h] = old.votes[i]!;
        this.#last[h] = old.last[i]!;
        this.#state[h] = old.state[i]!;
        this.#used[g]!++;
      }
    }
  }
}

/** An alignment waiting for target frames: a pre-check on a few frames, or the whole-block verification. */
interface Pending {
  sig: Signature;
  /** Index slot (its unmasked frames are in index.frames); -1 only for verifications. */
  slot: number;
  gen: number;
  s: number;
  verify: boolean;
  due: number;
}

/** A frame's weight given its strong-bit count n: n + WEAK_WEIGHT·(32 − n), as the scores compute it. */
const FRAME_WEIGHT = Float64Array.from(
  { length: SUBFP_BITS + 1 },
  (_, n) => n + WEAK_WEIGHT * (SUBFP_BITS - n),
);
/** A frame's weighted errors from (strong errors a, weak errors b) at a·33 + b: a + WEAK_WEIGHT·b. */
const FRAME_ERRORS = Float64Array.from(
  { length: (SUBFP_BITS + 1) * (SUBFP_BITS + 1) },
  (_, x) => Math.floor(x / (SUBFP_BITS + 1)) + WEAK_WEIGHT * (x % (SUBFP_BITS + 1)),
);

/** Most finished pending checks a matcher keeps for reuse. */
const POOL_MAX = 256;

/** Frames a pre-check looks at (spread over what is there). */
const PRECHECK_FRAMES = 32;
/** A pre-check waits until this many frames of the block are there (onsets are weak evidence in noise). */
const PRECHECK_AFTER = 64;
/** A pre-check passes when the best weighted BER of s-1..s+1 over its frames is at most this. */
export const PRECHECK_BER = 0.36;
/** Frames a vote table generation spans (≥ a block, so a candidate's votes live in two generations). */
const EPOCH_FRAMES = 160;

/** Forward and backward search of one target stream. */
export class TargetMatcher {
  readonly #ctx: MatcherContext;
  readonly #votes = new VoteTable();
  readonly #voteOut = new Int32Array(2);
  /** Pending checks in buckets by due frame (mod 1024; nothing is due more than a block ahead). */
  readonly #due: Pending[][] = Array.from({ length: 1024 }, () => []);
  /** Finished pending checks for reuse. */
  readonly #pool: Pending[] = [];
  /** An empty bucket to swap in for the one being run. */
  #spare: Pending[] = [];
  #pending = 0;
  #dueNext = -1;
  /** Signature ids already matched here, with the frame when they were, for pruning. */
  readonly #matched = new Map<string, number>();
  /** Per index slot: generation + 1 of the signature matched here (fast check in the hit loop). */
  #slotMatched = new Int32Array(1024);
  readonly #hits = new HitBuffer();
  readonly #probe = new Int32Array(2 * (2 + 2 * ((1 << PROBE_BITS_PER_HALF) - 1)));
  readonly #score: BlockScore = { ber: 0, z: 0, used: 0 };
  readonly #split = Array.from({ length: 6 }, () => new Float64Array(256));
  #lastSweep = 0;
  /** What {@link #touchChecks} loaded, kept so that the loads are not optimised away. */
  #sink = 0;
  readonly #stats: MatcherStats = {
    lookups: 0,
    hits: 0,
    prechecked: 0,
    verified: 0,
    accepted: 0,
    rejected: 0,
    rephased: 0,
  };

  /** A matcher over `ctx.store`, looking up `ctx.index`. */
  constructor(ctx: MatcherContext) {
    this.#ctx = ctx;
  }

  /** Counters. */
  stats(): MatcherStats {
    return { ...this.#stats };
  }

  /** Alignments waiting for frames (for memory accounting and tests). */
  get pending(): number {
    return this.#pending;
  }

  /** Bytes of the vote table (the matcher's largest structure). */
  get bytes(): number {
    return this.#votes.bytes + this.#slotMatched.byteLength;
  }

  /** True if the signature was already matched in this stream. */
  matched(id: string): boolean {
    return this.#matched.has(id);
  }

  /**
   * Forward search over frames [from, to) that were just computed, then runs the checks that became due.
   * `final`: the stream ended, verify everything pending with the frames there are.
   */
  onFrames(from: number, to: number, final = false): CoarseMatch[] {
    const { index, store } = this.#ctx;
    const hits = this.#hits;
    const pr = this.#probe;
    const out: CoarseMatch[] = [];
    if (this.#dueNext < 0) this.#dueNext = from;
    for (let t = Math.max(from, store.start); t < to; t++) {
      this.#votes.advance(t, EPOCH_FRAMES);
      const i = t & store.mask;
      // Silent frames carry no pattern (digital silence is all zeros, a hot bucket).
      if (index.size > 0 && store.energy[i]! >= SILENT_FRAME_DB) {
        const v = store.bits[i]!;
        const np = probes(v, store.weak[i]!, pr);
        hits.count = 0;
        index.lookupProbes(pr, np, v, HIT_MAX_DIST, hits);
        this.#stats.lookups += np;
        this.#stats.hits += hits.count;
        for (let h = 0; h < hits.count; h++) this.#vote(hits.slot[h]!, t - hits.pos[h]!, t, hits.dist[h]!);
      }
      this.#runDue(t, out);
    }
    if (final) this.#runAll(out);
    if (to - this.#lastSweep >= 1024) this.#sweep(to);
    return out;
  }

  #vote(slot: number, s: number, t: number, dist: number): void {
    const { index, store } = this.#ctx;
    if (s < store.start) return;
    const gen = index.generation(slot);
    if (slot < this.#slotMatched.length && this.#slotMatched[slot] === gen + 1) return;
    const o = this.#voteOut;
    const state = this.#votes.vote(slot, s, t, dist <= STRONG_HIT_DIST ? 2 : 1, o);
    if (state !== NEW) return;
    // With the votes of a neighbour: the second neighbour is looked up only if the first does not suffice.
    const votes = o[0]!;
    if (
      votes < 2 && votes + this.#votes.votesAt(slot, s - 1) < 2 &&
      votes + this.#votes.votesAt(slot, s + 1) < 2
    ) return;
    this.#votes.setState(o[1]!, QUEUED);
    const sig = index.signatureAt(slot);
    if (!sig) return;
    const p = this.#pool.pop();
    const due = Math.max(t, s + Math.min(PRECHECK_AFTER, sig.fingerprint.length));
    if (p) {
      p.sig = sig;
      p.slot = slot;
      p.gen = gen;
      p.s = s;
      p.verify = false;
      p.due = due;
      this.#schedule(p);
    } else this.#schedule({ sig, slot, gen, s, verify: false, due });
  }

  #schedule(p: Pending): void {
    const due = Math.max(p.due, this.#dueNext);
    p.due = due;
    this.#due[due & 1023]!.push(p);
    this.#pending++;
  }

  /** Runs the checks due at frame `t`. */
  #runDue(t: number, out: CoarseMatch[]): void {
    for (; this.#dueNext <= t; this.#dueNext++) {
      const at = this.#dueNext & 1023;
      const now = this.#due[at]!;
      if (now.length === 0) continue;
      // Swap in the spare (empty) bucket instead of copying: what is (re)scheduled here lands in it.
      const bucket = this.#spare;
      this.#due[at] = bucket;
      if (now.length > 1) this.#touchChecks(now);
      for (const p of now) {
        if (p.due > this.#dueNext) {
          bucket.push(p);
          continue;
        }
        this.#pending--;
        // Most candidates die at the pre-check: recycle them (the pool is bounded).
        if (!this.#check(p, out, false) && this.#pool.length < POOL_MAX) this.#pool.push(p);
      }
      now.length = 0;
      this.#spare = now;
    }
  }

  /**
   * Loads what the checks of `now` read first (the signature, its id and fingerprint objects, and of each
   * pre-check due now its slot's rank word and the frames its first stage samples), all before any check runs:
   * mostly cache misses, independent across checks, so they overlap here instead of stalling one check after
   * another. Changes nothing.
   */
  #touchChecks(now: readonly Pending[]): void {
    const frames = this.#ctx.index.frames, end = this.#ctx.store.end;
    let acc = 0;
    for (const p of now) {
      const sig = p.sig;
      acc ^= sig.id.length ^ sig.fingerprint.length;
      if (p.verify || p.slot < 0 || p.due > this.#dueNext) continue;
      const at = p.slot * FRAME_WORDS;
      const avail = framesBelow(frames, at, end - p.s - 1);
      const step = Math.max(1, avail / PRECHECK_FRAMES) * 4;
      for (let x = 0; x < avail; x += step) acc ^= frames[at + 1 + 2 * (x | 0)]!;
    }
    this.#sink = acc;
  }

  /** Runs every pending check now (end of stream). */
  #runAll(out: CoarseMatch[]): void {
    for (const bucket of this.#due) {
      const now = bucket.splice(0, bucket.length);
      for (const p of now) {
        this.#pending--;
        this.#check(p, out, true);
      }
    }
  }

  /** Runs a pre-check or verification; true if `p` was scheduled again (still in use). */
  #check(p: Pending, out: CoarseMatch[], final: boolean): boolean {
    const { index, store } = this.#ctx;
    if (this.#matched.has(p.sig.id)) return false;
    if (p.slot >= 0 && (index.signatureAt(p.slot) !== p.sig || index.generation(p.slot) !== p.gen)) {
      return false;
    }
    const n = p.sig.fingerprint.length;
    if (!p.verify) {
      this.#stats.prechecked++;
      if (this.#precheck(index.frames, p.slot * FRAME_WORDS, p.s) > PRECHECK_BER) {
        this.#stats.rejected++;
        return false;
      }
      p.verify = true;
      p.due = p.s + n + MARGIN_SPAN;
      if (!final && p.due > store.end - 1) {
        this.#schedule(p);
        return true;
      }
    }
    const m = this.#verify(p.sig, p.s);
    if (m) {
      this.#accept(m, p.slot, p.gen);
      out.push(m);
    }
    return false;
  }

  /**
   * Best weighted BER of s-1..s+1 over up to PRECHECK_FRAMES unmasked frames spread over what is held; the
   * signature's unmasked frames are read from `frames` at `at` (a slot of SignatureIndex.frames, or
   * {@link framesOf}): one flat array rather than the signature's fingerprint and position list, since most
   * pre-checks touch a signature not seen for a while and wait on memory.
   */
  #precheck(frames: Uint32Array, at: number, s: number): number {
    // Frames before end − s − 1 are held: how many of the positions are below that (the slot's rank bytes).
    const avail = framesBelow(frames, at, this.#ctx.store.end - s - 1);
    const step = Math.max(1, avail / PRECHECK_FRAMES);
    // Most chance candidates fail at their own alignment by far, even on half the frames; neighbours and all
    // the frames only for the close calls.
    let best = this.#partialBer(frames, at, avail, step * 4, s);
    if (best > PRECHECK_BER + 0.14) return best;
    best = this.#partialBer(frames, at, avail, step * 2, s);
    if (best > PRECHECK_BER + 0.1) return best;
    best = this.#partialBer(frames, at, avail, step, s);
    if (best > PRECHECK_BER && best <= PRECHECK_BER + 0.08) {
      best = Math.min(
        best,
        this.#partialBer(frames, at, avail, step, s - 1),
        this.#partialBer(frames, at, avail, step, s + 1),
      );
    }
    return best;
  }

  /** Weighted BER at alignment k over the unmasked frames x = 0, step, 2·step, ... < avail of `frames` at `at`. */
  #partialBer(frames: Uint32Array, at: number, avail: number, step: number, k: number): number {
    const store = this.#ctx.store;
    const bits = store.bits, strong = store.strong, m = store.mask;
    const start = store.start, end = store.end;
    const wt = FRAME_WEIGHT, et = FRAME_ERRORS;
    let e = 0, d = 0;
    // x stays below 2^31, so `x | 0` is Math.floor(x); the tables hold exactly the per-frame terms.
    for (let x = 0; x < avail; x += step) {
      const y = at + 1 + 2 * (x | 0);
      const j = frames[y]!;
      const t = k + j;
      if (t < start || t >= end) continue;
      const i = t & m;
      const diff = frames[y + 1]! ^ bits[i]!;
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

  /** Backward search: `sig` against the target frames already held. */
  searchBackward(sig: Signature): CoarseMatch[] {
    if (this.#matched.has(sig.id)) return [];
    const { store, index } = this.#ctx;
    const [hiT, loT] = tablesOf(sig);
    const fp = sig.fingerprint;
    const hop = this.#ctx.hop;
    const fromSample = this.#ctx.firstSampleAtOrAfter(sig.source.timeNs - CLOCK_SKEW_NS);
    const from = Math.max(store.start, Math.floor(fromSample / hop));
    const votes = new Map<number, number>();
    const pr = this.#probe;
    for (let t = from; t < store.end; t++) {
      const i = t & store.mask;
      if (store.energy[i]! < SILENT_FRAME_DB) continue;
      const v = store.bits[i]!;
      const np = probes(v, store.weak[i]!, pr);
      // A target frame votes at most once per alignment even when several probes find the same frame.
      let seen0 = -1, seen1 = -1, seen2 = -1;
      for (let p = 0; p < np; p++) {
        const table = pr[2 * p] === 0 ? hiT : loT;
        for (let j = table.first(pr[2 * p + 1]!); j !== -1; j = table.next[j]!) {
          const d = popcount32((fp[j]! ^ v) >>> 0);
          if (d > HIT_MAX_DIST || j === seen0 || j === seen1 || j === seen2) continue;
          seen2 = seen1, seen1 = seen0, seen0 = j;
          const s = t - j;
          votes.set(s, (votes.get(s) ?? 0) + (d <= STRONG_HIT_DIST ? 2 : 1));
        }
      }
    }
    this.#stats.lookups += store.end - from;
    const slot = index.slotOf(sig.id);
    const gen = slot >= 0 ? index.generation(slot) : 0;
    let best: CoarseMatch | undefined;
    for (const [s, n] of votes) {
      const near = n + Math.max(votes.get(s - 1) ?? 0, votes.get(s + 1) ?? 0);
      if (near < 2 || (votes.get(s - 1) ?? 0) > n || (votes.get(s + 1) ?? 0) > n) continue;
      this.#stats.prechecked++;
      if (this.#precheck(framesOf(sig), 0, s) > PRECHECK_BER) continue;
      if (s + fp.length + MARGIN_SPAN <= store.end) {
        const m = this.#verify(sig, s);
        if (m && (!best || m.z > best.z)) best = m;
      } else if (slot >= 0) {
        // Not all of the block is here yet: verify when it is (the forward search adds its own votes).
        this.#schedule({
          sig,
          slot,
          gen,
          s,
          verify: true,
          due: s + fp.length + MARGIN_SPAN,
        });
      }
    }
    if (best) {
      this.#accept(best, slot, gen);
      return [best];
    }
    return [];
  }

  /**
   * Scores alignments s-1..s+1 and takes the best; then tries a split of the block (a message lost at the
   * target shifts what follows it 1–8 frames earlier): the part before the split at one alignment and the rest
   * at an earlier one. The instant is where the part before the split aligns. Then applies the rule. A near
   * miss (significant enough to try a split, yet rejected on its score) is scored once more on frames computed
   * where the envelope puts the source's grid (the target's grid phase is arbitrary; see rephase.ts).
   */
  #verify(sig: Signature, s: number): CoarseMatch | undefined {
    this.#stats.verified++;
    const first = this.#verifyOn(sig, s, this.#ctx.store);
    if (first !== NEAR_MISS) return first;
    const rp = this.#ctx.rephase?.(sig, s);
    if (!rp) return undefined;
    this.#stats.rephased++;
    const second = this.#verifyOn(sig, rp.frame, rp.store);
    return second === NEAR_MISS ? undefined : second;
  }

  /** {@link #verify} on the frames of `store`: the match, undefined, or NEAR_MISS. */
  #verifyOn(sig: Signature, s: number, store: FrameStore): CoarseMatch | undefined | typeof NEAR_MISS {
    const { rule } = this.#ctx;
    const sc = this.#score;
    const fp = sig.fingerprint;
    let bestS = s, bestBer = Infinity, bestZ = -Infinity, bestUsed = 0;
    for (let k = s - 1; k <= s + 1; k++) {
      scoreBlock(fp, sig.mask, store, k, sc);
      if (sc.ber < bestBer) {
        bestBer = sc.ber;
        bestZ = sc.z;
        bestS = k;
        bestUsed = sc.used;
      }
    }
    const need = requiredZ(rule, bestUsed);
    // Far from significant even as a whole: a split (at most two parts of this evidence) cannot save it.
    if (bestZ < SPLIT_MIN_FRACTION * need || bestUsed < MIN_USED_FRAMES) {
      this.#stats.rejected++;
      return undefined;
    }
    // Split: prefix at a, suffix at a - d.
    let frame = bestS, lowEdge = bestS;
    const wholeZ = bestZ;
    const split = this.#bestSplit(sig, bestS, store);
    const useSplit = split !== undefined && split.z > bestZ + SPLIT_GAIN_Z;
    if (split && useSplit) {
      bestBer = split.ber;
      // Two parts of a short block fit chance audio more easily (a 45-frame block matched a pause of another
      // call that way): a split of one needs more significance.
      bestZ = bestUsed < SHORT_BLOCK_FRAMES ? split.z - SHORT_SPLIT_EXTRA_Z : split.z;
      // A split where capture times show no gap of its size: the same words in another recording fit two parts
      // of a block better than one (seen at z 6.4–6.8 on the bench), so the audio alone must convince more.
      const breakAt = split.a + split.k + 1;
      if (
        this.#ctx.gapAt &&
        !this.#ctx.gapAt(breakAt - GAP_SLACK_FRAMES, breakAt + GAP_SLACK_FRAMES, split.a - split.b)
      ) {
        bestZ -= UNHINTED_SPLIT_EXTRA_Z;
      }
      frame = split.a;
      lowEdge = split.b;
    }
    if (bestZ < need || bestBer > rule.thresholdBer) {
      this.#stats.rejected++;
      observer?.({
        sigId: sig.id,
        frame,
        ber: bestBer,
        z: bestZ,
        wholeZ,
        split: useSplit,
        second: NaN,
        used: bestUsed,
        targetTimeNs: this.#ctx.timeOfSample(frame * this.#ctx.hop),
        accepted: false,
      });
      return store === this.#ctx.store && bestZ >= REPHASE_FRACTION * need ? NEAR_MISS : undefined;
    }
    let second = Infinity;
    for (let k = lowEdge - MARGIN_SPAN; k <= frame + MARGIN_SPAN; k++) {
      if (k > lowEdge - 2 && k < frame + 2) continue;
      scoreBlock(fp, sig.mask, store, k, sc);
      if (sc.used >= MIN_USED_FRAMES / 2 && sc.ber < second) second = sc.ber;
    }
    const t = this.#ctx.timeOfSample(frame * this.#ctx.hop);
    const accepted = second - bestBer >= rule.margin && t !== undefined &&
      t >= sig.source.timeNs - CLOCK_SKEW_NS &&
      !observeOnly;
    observer?.({
      sigId: sig.id,
      frame,
      ber: bestBer,
      z: bestZ,
      wholeZ,
      split: useSplit,
      second,
      used: bestUsed,
      targetTimeNs: t,
      accepted,
    });
    if (!accepted) {
      this.#stats.rejected++;
      return undefined;
    }
    return { sig, frame, ber: bestBer, z: bestZ, second, split: useSplit };
  }

  /**
   * Best two-part scoring around `best` (see {@link #verify}): the split point maximises the evidence
   * Σ(w/2 − e) of the two parts (linear, so one pass), and only the chosen split's significance is computed.
   */
  #bestSplit(
    sig: Signature,
    best: number,
    store: FrameStore,
  ): { a: number; b: number; ber: number; z: number; k: number } | undefined {
    const fp = sig.fingerprint;
    const n = fp.length;
    const [e1, w1, q1, e2, w2, q2] = this.#split as [
      Float64Array,
      Float64Array,
      Float64Array,
      Float64Array,
      Float64Array,
      Float64Array,
    ];
    let out: { a: number; b: number; ber: number; z: number; k: number } | undefined;
    for (let d = 1; d <= SPLIT_MAX_SHIFT; d++) {
      for (const a of [best, best + d]) {
        const b = a - d;
        frameErrors(fp, sig.mask, store, a, e1, w1, q1);
        frameErrors(fp, sig.mask, store, b, e2, w2, q2);
        let sufEv = 0;
        for (let j = 0; j < n; j++) sufEv += 0.5 * w2[j]! - e2[j]!;
        let preEv = 0, preFrames = 0, bestEv = -Infinity, bestK = -1;
        for (let k = 0; k < n; k++) {
          preEv += 0.5 * w1[k]! - e1[k]!;
          sufEv -= 0.5 * w2[k]! - e2[k]!;
          if (w1[k]! > 0) preFrames++;
          if (preFrames >= MIN_PREFIX_FRAMES && preEv + sufEv > bestEv && sufEv > 0) {
            bestEv = preEv + sufEv;
            bestK = k;
          }
        }
        if (bestK < 0) continue;
        let pe = 0, pw = 0, pq = 0, se = 0, sw = 0, sq = 0;
        for (let j = 0; j <= bestK; j++) {
          pe += e1[j]!;
          pw += w1[j]!;
          pq += q1[j]!;
        }
        for (let j = bestK + 1; j < n; j++) {
          se += e2[j]!;
          sw += w2[j]!;
          sq += q2[j]!;
        }
        if (pw <= 0 || sw <= 0) continue;
        if (significance(pe / pw, pw, pq) < SPLIT_PART_Z || significance(se / sw, sw, sq) < SPLIT_PART_Z) {
          continue;
        }
        const ber = (pe + se) / (pw + sw);
        const z = significance(ber, pw + sw, pq + sq);
        if (!out || z > out.z) out = { a, b, ber, z, k: bestK };
      }
    }
    return out;
  }

  #accept(m: CoarseMatch, slot: number, gen: number): void {
    this.#stats.accepted++;
    this.#matched.set(m.sig.id, m.frame);
    if (slot >= 0) {
      if (slot >= this.#slotMatched.length) {
        const grown = new Int32Array(Math.max(slot + 1, this.#slotMatched.length * 2));
        grown.set(this.#slotMatched);
        this.#slotMatched = grown;
      }
      this.#slotMatched[slot] = gen + 1;
    }
  }

  /** Forgets matched ids whose signature left the index and whose frame left the lookback. */
  #sweep(now: number): void {
    this.#lastSweep = now;
    const { store, index } = this.#ctx;
    for (const [id, frame] of this.#matched) {
      if (!index.has(id) && frame < store.start) this.#matched.delete(id);
    }
  }
}
