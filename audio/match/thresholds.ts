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

/** Frames either side searched for the second-best score. */
export const MARGIN_SPAN = 6;
/** Usable (unmasked, present) frames a block needs to be verified at all. */
export const MIN_USED_FRAMES = 16;
/** Target audio earlier than the source instant minus this (clock skew between nodes) is not searched, ns. */
export const CLOCK_SKEW_NS = 2_000_000_000n;
