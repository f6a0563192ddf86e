/**
 * What a verified alignment needs to be a match: the thresholds (a {@link MatchThresholds}, configurable) and the
 * fixed parts of the rule that go with them. See audio/match/verify.ts for how they are applied.
 * @module
 */

/** When a verified alignment is a match. */
export interface MatchThresholds {
  /** Highest weighted bit error rate at the peak. */
  thresholdBer: number;
  /** Least difference between the best weighted BER 2..6 frames away and the peak's. */
  margin: number;
  /** Least significance z (see audio/match/score.ts). */
  minZ: number;
}

/** Default rule, tuned on the accuracy corpus: `deno task bench` (bench/accuracy.ts) measures recall and false matches. */
export const DEFAULT_THRESHOLDS: Readonly<MatchThresholds> = Object.freeze({
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
export function requiredZ(rule: MatchThresholds, used: number): number {
  return rule.minZ + SHORT_BLOCK_EXTRA_Z * Math.max(0, (SHORT_BLOCK_FRAMES - used) / 36);
}

/**
 * Significance credited to a whole block aligned where a neighbouring match of the same source tap puts it
 * (continuity.ts): it was not picked as the best of every alignment a search tried. Chance candidates that reach
 * verification (each the best of its search) scored z ≥ 4.9 in 0.5% of 22,248 on the mixing chain's negative and
 * other calls' streams, seeds 1–3, and never ≥ 6.1; short blocks under the other leg's speech fell 0.1–1.5 short
 * of the rule (a credit of 1.25 left recall on seeds 1–3 at 95.9 / 95.8 / 96.1% against 96.5 / 95.9 / 96.4%).
 */
export const CONTINUITY_Z_CREDIT = 1.5;
/**
 * The credit needs the block's first frames (the instant's, which the fine alignment places) to agree: weighted
 * BER over the first {@link CONTINUITY_HEAD_FRAMES} frames at most this. Of the blocks the credit let through on
 * the mixing chain (seeds 1–3), 13 of 23 whose first frames were buried (BER ≥ 0.3 or none usable) were placed
 * exactly and 2 more than 20 ms off, against 78 of 90 and 1 of the others.
 */
export const CONTINUITY_HEAD_BER = 0.3;
/** Frames at the start of a block whose agreement {@link CONTINUITY_HEAD_BER} bounds (256 ms). */
export const CONTINUITY_HEAD_FRAMES = 16;
/**
 * How far (frames) from where a neighbour's delay puts it a block may align and still count as continuing: the
 * mixing chain's matches sat within 0.05 frames of it; capture times jitter.
 */
export const CONTINUITY_TOLERANCE_FRAMES = 2;
/** How far apart (source time, ms) a neighbouring match may be to vouch for a signature's alignment. */
export const CONTINUITY_MAX_AGE_MS = 10_000;

/** Frames either side searched for the second-best score. */
export const MARGIN_SPAN = 6;
/** Usable (unmasked, present) frames a block needs to be verified at all. */
export const MIN_USED_FRAMES = 16;
/** Target audio earlier than the source instant minus this (clock skew between nodes) is not searched, ns. */
export const CLOCK_SKEW_NS = 2_000_000_000n;
