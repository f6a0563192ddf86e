/**
 * The pre-check: a cheap look at a candidate alignment on a sample of its frames, before the whole block is
 * there and verified. Most candidates (chance hits on unrelated audio) end here.
 * @module
 */

import type { FrameStore } from "../fingerprint/fingerprint.ts";
import {
  FRAME_POSITIONS_AT,
  FRAME_SAMPLE_AT,
  FRAME_SAMPLE_HEAD_AT,
  FRAME_VALUES_AT,
  FRAME_WORDS,
  framesBelow,
  PRECHECK_FRAMES,
} from "./signature_index.ts";
import { sampledBer } from "./score.ts";
import { type BerFn, SLOTS_AT } from "./ber_kernel.ts";

// The sample's shape is part of the index's slot layout (signature_index.ts writes it).
export { PRECHECK_AFTER, PRECHECK_FRAMES } from "./signature_index.ts";

/** A pre-check passes when the best weighted BER of s-1..s+1 over its frames is at most this. */
export const PRECHECK_BER = 0.36;

/** Offsets of the slot's own copies of its stages' frames (see FRAME_SAMPLE_AT). */
const [SAMPLE_1, SAMPLE_2, SAMPLE_ALL] = FRAME_SAMPLE_AT as [number, number, number];

/**
 * Best weighted BER of s-1..s+1 over up to PRECHECK_FRAMES unmasked frames spread over what `store` holds; the
 * signature's unmasked frames are read from `frames` at `at` (a slot of SignatureIndex.frames, or
 * frameSlotOf): one flat array rather than the signature's fingerprint and position list, since most
 * pre-checks touch a signature not seen for a while and wait on memory.
 */
export function precheck(store: FrameStore, frames: Uint32Array, at: number, s: number): number {
  // Frames before end − s − 1 are held. As scheduled, that is the sample's limit, and the slot's own copy of
  // the stages' frames is read.
  const limit = store.end - s - 1, head = frames[at + FRAME_SAMPLE_HEAD_AT]!;
  if (limit === ((head >>> 8) & 255)) {
    let best = sampledBer(store, frames, at + SAMPLE_1, (head >>> 16) & 15, 1, s);
    if (best > PRECHECK_BER + 0.14) return best;
    best = sampledBer(store, frames, at + SAMPLE_2, (head >>> 20) & 31, 1, s);
    if (best > PRECHECK_BER + 0.1) return best;
    const n = head >>> 25;
    best = sampledBer(store, frames, at + SAMPLE_ALL, n, 1, s);
    if (best > PRECHECK_BER && best <= PRECHECK_BER + 0.08) {
      best = Math.min(
        best,
        sampledBer(store, frames, at + SAMPLE_ALL, n, 1, s - 1),
        sampledBer(store, frames, at + SAMPLE_ALL, n, 1, s + 1),
      );
    }
    return best;
  }
  // How many of the positions are below that (the slot's rank bytes).
  const avail = framesBelow(frames, at, limit);
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

/**
 * {@link precheck} of a slot of SignatureIndex.frames through the index's kernel (ber_kernel.ts), on the copy of
 * the target frames in a ring at byte `ring` of its memory that holds every frame the check reads (from s − 1 to
 * `end`; frames outside [start, end) are missing): the same stages, the same result to the last bit.
 */
export function precheckKernel(
  ber: BerFn,
  frames: Uint32Array,
  at: number,
  s: number,
  ring: number,
  start: number,
  end: number,
): number {
  const limit = end - s - 1, head = frames[at + FRAME_SAMPLE_HEAD_AT]!;
  // Byte addresses of the slot's positions and values (a stage's own copy: at SAMPLE_k words from these).
  const pos = SLOTS_AT + 4 * (at + FRAME_POSITIONS_AT), val = SLOTS_AT + 4 * (at + FRAME_VALUES_AT);
  if (limit === ((head >>> 8) & 255)) {
    let best = ber(pos + 4 * SAMPLE_1, val + 4 * SAMPLE_1, (head >>> 16) & 15, 1, s, ring, start, end);
    if (best > PRECHECK_BER + 0.14) return best;
    best = ber(pos + 4 * SAMPLE_2, val + 4 * SAMPLE_2, (head >>> 20) & 31, 1, s, ring, start, end);
    if (best > PRECHECK_BER + 0.1) return best;
    const n = head >>> 25, p3 = pos + 4 * SAMPLE_ALL, v3 = val + 4 * SAMPLE_ALL;
    best = ber(p3, v3, n, 1, s, ring, start, end);
    if (best > PRECHECK_BER && best <= PRECHECK_BER + 0.08) {
      best = Math.min(
        best,
        ber(p3, v3, n, 1, s - 1, ring, start, end),
        ber(p3, v3, n, 1, s + 1, ring, start, end),
      );
    }
    return best;
  }
  const avail = framesBelow(frames, at, limit);
  const step = Math.max(1, avail / PRECHECK_FRAMES);
  let best = ber(pos, val, avail, step * 4, s, ring, start, end);
  if (best > PRECHECK_BER + 0.14) return best;
  best = ber(pos, val, avail, step * 2, s, ring, start, end);
  if (best > PRECHECK_BER + 0.1) return best;
  best = ber(pos, val, avail, step, s, ring, start, end);
  if (best > PRECHECK_BER && best <= PRECHECK_BER + 0.08) {
    best = Math.min(
      best,
      ber(pos, val, avail, step, s - 1, ring, start, end),
      ber(pos, val, avail, step, s + 1, ring, start, end),
    );
  }
  return best;
}

/**
 * Loads what the pre-checks of the slots `slots[from..to)` read first (the line of their slot's sample header and
 * first stage's positions, and the line of that stage's values), all before any check runs: mostly cache
 * misses, independent across checks, so they overlap here instead of stalling one check after another. (A
 * pre-check that fails reads nothing of the signature object itself.) Changes nothing; returns a value the
 * caller keeps so that the loads are not optimised away.
 */
export function touchPrechecks(slots: Int32Array, from: number, to: number, frames: Uint32Array): number {
  let acc = 0;
  for (let x = from; x < to; x++) {
    const at = slots[x]! * FRAME_WORDS;
    acc ^= frames[at + FRAME_SAMPLE_HEAD_AT]! ^ frames[at + SAMPLE_1 + FRAME_VALUES_AT]!;
  }
  return acc;
}
