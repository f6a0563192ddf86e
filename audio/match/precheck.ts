/**
 * The pre-check: a cheap look at a candidate alignment on a sample of its frames, before the whole block is
 * there and verified. Most candidates (chance hits on unrelated audio) end here.
 * @module
 */

import type { FrameStore } from "../fingerprint/fingerprint.ts";
import { FRAME_POSITIONS_AT, FRAME_VALUES_AT, FRAME_WORDS, framesBelow } from "./signature_index.ts";
import { sampledBer } from "./score.ts";

/** Frames a pre-check looks at (spread over what is there). */
export const PRECHECK_FRAMES = 32;
/** A pre-check waits until this many frames of the block are there (onsets are weak evidence in noise). */
export const PRECHECK_AFTER = 64;
/** A pre-check passes when the best weighted BER of s-1..s+1 over its frames is at most this. */
export const PRECHECK_BER = 0.36;

/**
 * Best weighted BER of s-1..s+1 over up to PRECHECK_FRAMES unmasked frames spread over what `store` holds; the
 * signature's unmasked frames are read from `frames` at `at` (a slot of SignatureIndex.frames, or
 * frameSlotOf): one flat array rather than the signature's fingerprint and position list, since most
 * pre-checks touch a signature not seen for a while and wait on memory.
 */
export function precheck(store: FrameStore, frames: Uint32Array, at: number, s: number): number {
  // Frames before end − s − 1 are held: how many of the positions are below that (the slot's rank bytes).
  const avail = framesBelow(frames, at, store.end - s - 1);
  const step = Math.max(1, avail / PRECHECK_FRAMES);
  // Most chance candidates fail at their own alignment by far, even on half the frames; neighbours and all
  // the frames only for the close calls.
  let best = sampledBer(store, frames, at, avail, step * 4, s);
  if (best > PRECHECK_BER + 0.14) return best;
  best = sampledBer(store, frames, at, avail, step * 2, s);
  if (best > PRECHECK_BER + 0.1) return best;
  best = sampledBer(store, frames, at, avail, step, s);
  if (best > PRECHECK_BER && best <= PRECHECK_BER + 0.08) {
    best = Math.min(
      best,
      sampledBer(store, frames, at, avail, step, s - 1),
      sampledBer(store, frames, at, avail, step, s + 1),
    );
  }
  return best;
}

/** What {@link touchPrechecks} needs of a pending check. */
export interface PrecheckRef {
  slot: number;
  s: number;
  verify: boolean;
  due: number;
}

/**
 * Loads what the pre-checks of `now` due at `dueNext` read first (their slot's rank word and the frames their
 * first stage samples), all before any check runs: mostly cache misses, independent across checks, so they
 * overlap here instead of stalling one check after another. In two rounds, the rank words, then the frames
 * (which ones depends on the rank word): a check's second miss then waits on its first together with the
 * other checks', not after it. (A pre-check that fails reads nothing of the signature object itself.) Changes
 * nothing; returns a value the caller keeps so that the loads are not optimised away.
 */
export function touchPrechecks(
  now: readonly PrecheckRef[],
  dueNext: number,
  frames: Uint32Array,
  end: number,
): number {
  let acc = 0;
  for (const p of now) {
    if (p.verify || p.slot < 0 || p.due > dueNext) continue;
    acc ^= framesBelow(frames, p.slot * FRAME_WORDS, end - p.s - 1);
  }
  for (const p of now) {
    if (p.verify || p.slot < 0 || p.due > dueNext) continue;
    const at = p.slot * FRAME_WORDS;
    const avail = framesBelow(frames, at, end - p.s - 1);
    const step = Math.max(1, avail / PRECHECK_FRAMES) * 4;
    // The sample's positions (bytes) share a line or two; its values are what is spread.
    for (let w = 0; w < (avail + 3) >> 2; w += 16) acc ^= frames[at + FRAME_POSITIONS_AT + w]!;
    for (let x = 0; x < avail; x += step) acc ^= frames[at + FRAME_VALUES_AT + (x | 0)]!;
  }
  return acc;
}
