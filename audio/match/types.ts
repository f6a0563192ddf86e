/**
 * What the matcher's parts share: its context (the options object a TargetMatcher is built with), what
 * it finds and what it counts.
 * @module
 */

import type { FrameStore } from "../fingerprint/fingerprint.ts";
import type { SignatureIndex } from "./signature_index.ts";
import type { RecentFrames } from "./recent_frames.ts";
import type { Signature } from "../types.ts";
import type { MatchThresholds } from "./thresholds.ts";

/** What a verification saw, for tuning (see {@link VerifyContext.observe}). */
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
  /** Scored in parts across this many gaps that capture times show (parts.ts). */
  parts?: number;
  /**
   * The instant lies in audio the target never carried (a pause a silence-suppressing sender left out, or a lost
   * message): the block is found, but no target message carries its instant, so it is not to be reported.
   */
  instantNotSent?: boolean;
}

/** Audio missing from a target stream just before analysis sample `at`, `len` samples long (see gap_hints.ts). */
export interface TargetGap {
  at: number;
  len: number;
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

/** A matcher's counters before its first lookup. */
export function emptyMatcherStats(): MatcherStats {
  return { lookups: 0, hits: 0, prechecked: 0, verified: 0, accepted: 0, rejected: 0, rephased: 0 };
}

/** What a verification needs from its stream besides the frames. */
export interface VerifyContext {
  store: FrameStore;
  rule: MatchThresholds;
  /** Hop of the frame grid, samples. */
  hop: number;
  /** Capture time of the message carrying analysis sample k, if still known. */
  timeOfSample(k: number): bigint | undefined;
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
  /**
   * Gaps that capture times show, whose first analysis sample after the gap lies in [from, to), in order (see
   * align/gap_hints.ts): a block spanning them is also scored in parts (parts.ts).
   */
  gapsIn?(from: number, to: number): readonly TargetGap[];
  /**
   * Sees every verification that got past the cheap rejections, accepted or not: for tuning, the bench and
   * tests.
   */
  observe?(t: VerifyTrace): void;
  /** With `observe`: never accept, so that every candidate is seen. */
  observeOnly?: boolean;
}

/** What a matcher needs from its stream besides the frames. */
export interface MatcherContext extends VerifyContext {
  index: SignatureIndex;
  /**
   * Recent frames of the measurement's target streams, for the backward search (default: those of every matcher
   * of `index`).
   */
  recent?: RecentFrames;
  /** What this stream's frames are named by in `recent` (RecentOwner.tag: its pipeline). */
  tag?: object;
  /** First analysis sample carried by a message captured at or after `t` (or the end of the stream). */
  firstSampleAtOrAfter(t: bigint): number;
  /**
   * A sample at or before {@link firstSampleAtOrAfter}'s answer for `t`, cheaper: it may be the answer for a time
   * up to `slackNs` earlier (absent: the answer itself is taken).
   */
  sampleAtOrBefore?(t: bigint, slackNs: bigint): number;
}
