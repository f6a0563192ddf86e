/**
 * Verification: whether a candidate alignment of a signature in a target stream is a match.
 *
 * The block is scored (score.ts) at the alignment and its neighbours, in parts across gaps that capture times
 * show (parts.ts: a pause a silence-suppressing sender left out), and otherwise in two parts when a lost message
 * seems to have split it (split.ts). A match needs all of (thresholds.ts):
 * - weighted BER ≤ `thresholdBer` (0.4);
 * - significance ≥ `minZ` (6.4), plus up to 0.4 more for short blocks; 1.5 less for a whole block where a
 *   neighbouring match of the same source tap puts it, its first frames agreeing (continuity.ts);
 * - a peak: the best score at least `margin` (0.04) below the best score 2–6 frames away (after WebRTC's delay
 *   estimator, which accepts a delay only when the best candidate stands out);
 * - target time not earlier than the source time minus 2 s (clock skew between nodes).
 * A near miss is scored once more on frames computed where the envelope puts the source's grid (rephase.ts).
 * Tuned on the bench corpus (16 calls, ~600 signatures, 4 negative streams): through identity, GSM, 20 and 10 dB
 * SNR and 1% loss, the best chance alignment on other streams stayed ≥ 0.12 below the threshold while 97.4% of
 * signatures at 20 dB and 84.4% at 10 dB passed it.
 * @module
 */

import type { FrameStore } from "../fingerprint/fingerprint.ts";
import type { Signature } from "../types.ts";
import {
  CLOCK_SKEW_NS,
  CONTINUITY_HEAD_BER,
  CONTINUITY_HEAD_FRAMES,
  CONTINUITY_Z_CREDIT,
  MARGIN_SPAN,
  MIN_USED_FRAMES,
  requiredZ,
} from "./thresholds.ts";
import { type BlockScore, scoreBlock } from "./score.ts";
import { SPLIT_MIN_FRACTION, Splitter, splitWins, splitZ } from "./split.ts";
import { PartScorer } from "./parts.ts";
import { continues, type Expected, LatencyMemory } from "./continuity.ts";
import type { CoarseMatch, MatcherStats, VerifyContext } from "./types.ts";

/**
 * A rejected candidate is re-scored on the envelope's grid phase (see rephase.ts) only when its significance
 * reached this fraction of the required: a grid phase costs a few tenths of the significance, not half of it, and
 * each re-scoring costs a block of frame analyses.
 */
export const REPHASE_FRACTION = 0.75;
/** {@link Verifier}'s verification rejected a candidate on its score after a significant start. */
const NEAR_MISS = Symbol("near miss");

/** Verifies candidate alignments in one target stream (reusable scratch; not re-entrant). */
export class Verifier {
  readonly #ctx: VerifyContext;
  readonly #stats: MatcherStats;
  /** NaN, not 0: double fields from the start (a field first holding 0 changes representation, and the
   * object its map, at the first fractional store, deoptimizing scoreBlock). */
  readonly #score: BlockScore = { ber: NaN, z: NaN, used: 0 };
  readonly #splitter = new Splitter();
  readonly #parts = new PartScorer();
  readonly #latency = new LatencyMemory();
  /**
   * Where neighbouring matches' delay puts the signature being verified (continuity.ts), looked up on first use
   * (most verifications are rejected before they ask); #expectedFor: the signature it was looked up for.
   */
  #expected: Expected | undefined;
  #expectedFor: Signature | undefined;

  /** A verifier over `ctx.store`; counts verifications, rejections and re-scored near misses into `stats`. */
  constructor(ctx: VerifyContext, stats: MatcherStats) {
    this.#ctx = ctx;
    this.#stats = stats;
  }

  /**
   * Scores alignments s-1..s+1 and takes the best; then tries a split of the block (see split.ts). Then applies
   * the rule. A near miss (significant enough to try a split, yet rejected on its score) is scored once more on
   * frames computed where the envelope puts the source's grid (the target's grid phase is arbitrary; see
   * rephase.ts).
   */
  verify(sig: Signature, s: number): CoarseMatch | undefined {
    this.#stats.verified++;
    this.#expectedFor = undefined;
    const first = this.#verifyOn(sig, s, this.#ctx.store);
    if (first !== NEAR_MISS) return first;
    const rp = this.#ctx.rephase?.(sig, s);
    if (!rp) return undefined;
    this.#stats.rephased++;
    const second = this.#verifyOn(sig, rp.frame, rp.store);
    return second === NEAR_MISS ? undefined : second;
  }

  /** {@link LatencyMemory.expect} of `sig` within one {@link verify} (no match is remembered before its end). */
  #expectOf(sig: Signature): Expected | undefined {
    if (this.#expectedFor !== sig) {
      this.#expected = this.#latency.expect(sig, this.#ctx.hop);
      this.#expectedFor = sig;
    }
    return this.#expected;
  }

  /**
   * Whether the first CONTINUITY_HEAD_FRAMES frames of `sig`'s block at `frame` agree (weighted BER at most
   * CONTINUITY_HEAD_BER over the usable ones; none usable: no).
   */
  #headAgrees(sig: Signature, store: FrameStore, frame: number): boolean {
    const sc = scoreBlock(
      sig.fingerprint.subarray(0, CONTINUITY_HEAD_FRAMES),
      sig.mask,
      store,
      frame,
      this.#score,
    );
    return sc.used > 0 && sc.ber <= CONTINUITY_HEAD_BER;
  }

  /** {@link verify} on the frames of `store`: the match, undefined, or NEAR_MISS. */
  #verifyOn(sig: Signature, s: number, store: FrameStore): CoarseMatch | undefined | typeof NEAR_MISS {
    const ctx = this.#ctx;
    const rule = ctx.rule;
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
    let need = requiredZ(rule, bestUsed);
    const wholeZ = bestZ;
    // Parts across gaps that capture times show (a pause a DTX sender left out; see parts.ts).
    const parts = store === ctx.store ? this.#parts.find(ctx, sig, bestS, wholeZ, need) : undefined;
    if (parts) {
      bestBer = parts.ber;
      bestZ = parts.z;
      bestUsed = parts.used;
      need = requiredZ(rule, bestUsed);
    }
    // Far from significant even as a whole: a split (at most two parts of this evidence) cannot save it.
    if (bestZ < SPLIT_MIN_FRACTION * need || bestUsed < MIN_USED_FRAMES) {
      this.#stats.rejected++;
      return undefined;
    }
    // Split: prefix at a, suffix at a - d.
    let frame = parts ? parts.frame : bestS, lowEdge = frame;
    const split = parts ? undefined : this.#splitter.best(sig, bestS, store);
    const useSplit = splitWins(split, bestZ);
    if (useSplit) {
      bestBer = split.ber;
      bestZ = splitZ(split, bestUsed, ctx.gapAt);
      frame = split.a;
      lowEdge = split.b;
    }
    // A whole block where a neighbour's delay puts it was not picked as the best of a search (continuity.ts).
    const credit = !parts && !useSplit && continues(this.#expectOf(sig), frame, ctx.hop, ctx.gapsIn) &&
        this.#headAgrees(sig, store, frame)
      ? CONTINUITY_Z_CREDIT
      : 0;
    if (bestZ < need - credit || bestBer > rule.thresholdBer) {
      this.#stats.rejected++;
      ctx.observe?.({
        sigId: sig.id,
        frame,
        ber: bestBer,
        z: bestZ,
        wholeZ,
        split: useSplit,
        second: NaN,
        used: bestUsed,
        targetTimeNs: ctx.timeOfSample(frame * ctx.hop),
        accepted: false,
      });
      return store === ctx.store && bestZ >= REPHASE_FRACTION * need ? NEAR_MISS : undefined;
    }
    let second = parts ? this.#parts.second(sig, parts, store, ctx.hop) : Infinity;
    for (let k = lowEdge - MARGIN_SPAN; !parts && k <= frame + MARGIN_SPAN; k++) {
      if (k > lowEdge - 2 && k < frame + 2) continue;
      scoreBlock(fp, sig.mask, store, k, sc);
      if (sc.used >= MIN_USED_FRAMES / 2 && sc.ber < second) second = sc.ber;
    }
    const t = ctx.timeOfSample(frame * ctx.hop);
    const accepted = second - bestBer >= rule.margin && t !== undefined &&
      t >= sig.source.timeNs - CLOCK_SKEW_NS &&
      !(ctx.observeOnly === true && ctx.observe !== undefined);
    ctx.observe?.({
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
    // Only a match that stood on its own significance vouches for its neighbours.
    if (bestZ >= need) this.#latency.remember(sig, frame);
    const m: CoarseMatch = { sig, frame, ber: bestBer, z: bestZ, second, split: useSplit };
    if (parts) {
      m.parts = parts.gapsInside;
      if (!parts.instantSent) m.instantNotSent = true;
    }
    return m;
  }
}
