/**
 * The match stage: finding signatures in a target stream's sub-fingerprints (what audio/pipeline.ts uses).
 *
 * - target_matcher.ts: {@link TargetMatcher}, the forward and backward search of one target stream;
 * - lookup.ts: probes of a target frame, a signature's own half-value tables, what a hit is worth as a vote;
 * - recent_frames.ts: the recent frames of a measurement's target streams by probe key, which spare the backward
 *   search the streams without a hit;
 * - vote_table.ts: votes per alignment in the forward search;
 * - scheduler.ts: when the checks of candidate alignments run;
 * - precheck.ts: the cheap first look at a candidate, on a sample of its frames;
 * - verify.ts: whether a candidate is a match, with thresholds.ts (the thresholds) and split.ts (a message lost inside
 *   the block);
 * - score.ts: the weighted bit error rate and its significance, the one formula every score uses;
 * - types.ts: the matcher's context (options, including the tuning hook `observe`), matches and counters.
 * @module
 */

export { plainBer } from "./score.ts";
export { CLOCK_SKEW_NS, DEFAULT_THRESHOLDS, type MatchThresholds } from "./thresholds.ts";
export { GAP_SLACK_FRAMES } from "./split.ts";
export { TargetMatcher } from "./target_matcher.ts";
export { RecentFrames, type RecentFramesStats } from "./recent_frames.ts";
export type { CoarseMatch, MatcherContext, MatcherStats, VerifyContext, VerifyTrace } from "./types.ts";
