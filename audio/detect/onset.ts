/**
 * Anchors from per-10 ms VAD decisions: speech onsets after enough silence, confirmed by enough speech, plus
 * re-anchors every `reanchor_ms` during long continuous speech so long utterances also yield signatures.
 *
 * Pure state machine over frame decisions; it reports anchors as absolute analysis samples (start of the VAD
 * frame). The signature's instant is later snapped to the fingerprint grid.
 * @module
 */

import type { AudioCriteria } from "../types.ts";

/** Analysis samples per VAD frame (10 ms at 8 kHz). */
const FRAME = 80;
/** Pauses inside speech shorter than this do not break the speech that confirms an onset (stop closures). */
export const ONSET_MAX_GAP_MS = 60;

/** One anchor: where, and why. */
export interface Anchor {
  /** Absolute analysis sample (start of the first speech frame for an onset). */
  sample: number;
  kind: "onset" | "reanchor";
}

type State = "idle" | "candidate" | "active";

/**
 * Onset detector. Per frame: `idle` (enough silence seen) → speech → `candidate` (onset noted) → once
 * `min_duration_ms` of speech followed (gaps < 60 ms tolerated) → anchor, `active`. A longer gap before that
 * drops the candidate (the blip counts as silence). `active` ends after `min_silence_ms` of silence. The stream's
 * start counts as silence, so speech at the start is an onset.
 */
export class OnsetDetector {
  readonly #minSpeech: number;
  readonly #minSilence: number;
  readonly #maxGap: number;
  readonly #reanchor: number;
  #state: State = "idle";
  /** Consecutive non-speech frames (infinite at the start). */
  #silence = Infinity;
  /** Silence before the current candidate, frames. */
  #silenceBefore = 0;
  #candidate = 0;
  #speechFrames = 0;
  #gap = 0;
  #lastAnchor = -Infinity;

  /**
   * The onset waiting for `min_duration_ms` of speech (an analysis sample), if any: an anchor reported later is
   * at or after it, or at or after the next frame pushed when there is none.
   */
  get pendingOnset(): number | undefined {
    return this.#state === "candidate" ? this.#candidate : undefined;
  }

  /**
   * The most analysis samples after an anchor's sample the frame that reports it can start: its onset confirmed
   * by `min_duration_ms` of speech frames, each after the longest pause tolerated.
   */
  get maxDelaySamples(): number {
    return (this.#minSpeech - 1) * (this.#maxGap + 1) * FRAME;
  }

  /** Uses `min_duration_ms`, `min_silence_ms` and `reanchor_ms` of the criteria (negative values count as 0). */
  constructor(criteria: Pick<AudioCriteria, "min_duration_ms" | "min_silence_ms" | "reanchor_ms">) {
    const frames = (ms: number) => Math.max(0, Math.round((Number.isFinite(ms) ? ms : 0) / 10));
    this.#minSpeech = Math.max(1, frames(criteria.min_duration_ms));
    this.#minSilence = frames(criteria.min_silence_ms);
    this.#maxGap = frames(ONSET_MAX_GAP_MS);
    this.#reanchor = Math.max(0, Number.isFinite(criteria.reanchor_ms) ? criteria.reanchor_ms : 0) * 8;
  }

  /**
   * Feeds the decision for VAD frame `k` (frames must come in order; a skipped frame counts as silence).
   * Returns the anchor it completes, if any.
   */
  push(k: number, speech: boolean): Anchor | undefined {
    const sample = k * FRAME;
    switch (this.#state) {
      case "idle":
        // Only reached after at least min_silence of silence (or at the start), so speech here is an onset.
        if (!speech) {
          this.#silence++;
          return undefined;
        }
        this.#state = "candidate";
        this.#silenceBefore = this.#silence;
        this.#candidate = sample;
        this.#speechFrames = 1;
        this.#gap = 0;
        this.#silence = 0;
        return this.#confirm();
      case "candidate":
        if (speech) {
          this.#speechFrames++;
          this.#gap = 0;
          return this.#confirm();
        }
        this.#gap++;
        if (this.#gap > this.#maxGap) {
          // A blip, not an utterance: all of it counts as silence before whatever comes next.
          this.#state = "idle";
          this.#silence = this.#silenceBefore + (sample + FRAME - this.#candidate) / FRAME;
        }
        return undefined;
      case "active":
        if (speech) {
          this.#silence = 0;
          return this.#maybeReanchor(sample);
        }
        this.#silence++;
        if (this.#silence >= this.#minSilence) this.#state = "idle";
        return undefined;
    }
  }

  #confirm(): Anchor | undefined {
    if (this.#speechFrames < this.#minSpeech) return undefined;
    this.#state = "active";
    this.#silence = 0;
    this.#lastAnchor = this.#candidate;
    return { sample: this.#candidate, kind: "onset" };
  }

  #maybeReanchor(sample: number): Anchor | undefined {
    if (this.#reanchor <= 0 || sample - this.#lastAnchor < this.#reanchor) return undefined;
    this.#lastAnchor = sample;
    return { sample, kind: "reanchor" };
  }
}
