/**
 * Split scoring: a message lost at the target shifts the rest of a block 1–8 frames earlier, so the block is
 * also scored in two parts (the part before the split at one alignment, the rest at an earlier one), and the
 * rules for when such a split replaces the whole-block score. The instant is where the first part aligns.
 * @module
 */

import type { FrameStore } from "../fingerprint/fingerprint.ts";
import type { Signature } from "../types.ts";
import { SHORT_BLOCK_FRAMES } from "./thresholds.ts";
import { FRAME_WEIGHT, FRAME_WEIGHT_SQ, significance } from "./score.ts";
import { frameErrorsKernel } from "./split_kernel.ts";
import type { VerifyContext } from "./types.ts";

/**
 * How far (frames) a capture-time gap may sit from where a split block breaks, and differ in length from its
 * shift, and still count as the loss that split it (both are known to a few frames).
 */
export const GAP_SLACK_FRAMES = 4;
/** Significance a split gives up when capture times show no such gap where it splits (see {@link splitZ}). */
export const UNHINTED_SPLIT_EXTRA_Z = 0.8;
/** Significance a split of a block shorter than SHORT_BLOCK_FRAMES gives up (see {@link splitZ}). */
export const SHORT_SPLIT_EXTRA_Z = 0.5;
/** Split scoring only helps if it beats the whole block by this much significance (a lost message). */
export const SPLIT_GAIN_Z = 1;
/** Whole-block significance (fraction of the required) below which no split is tried. */
export const SPLIT_MIN_FRACTION = 0.5;
/** Frames the part before a split must have, so that the instant is aligned on real evidence. */
export const MIN_PREFIX_FRAMES = 8;
/**
 * Largest shift between the two parts of a split, frames: a lost message of up to 128 ms (messages of 10–120 ms
 * are common).
 */
export const SPLIT_MAX_SHIFT = 8;
/** Each part of a split must be significant on its own. */
export const SPLIT_PART_Z = 2;

/** A two-part score: frames 0..k at target frame `a`, the rest at `b` = a − shift. */
export interface SplitScore {
  a: number;
  b: number;
  /** Weighted BER and significance of both parts together. */
  ber: number;
  z: number;
  /** Last frame of the first part. */
  k: number;
}

/** Whether `split` replaces a whole-block score of significance `wholeZ`. */
export function splitWins(split: SplitScore | undefined, wholeZ: number): split is SplitScore {
  return split !== undefined && split.z > wholeZ + SPLIT_GAIN_Z;
}

/**
 * The significance a winning split counts with, after what it gives up: two parts of a short block (`used`
 * usable frames) fit chance audio more easily (a 45-frame block matched a pause of another call that way), and
 * where capture times show no gap of its size the same words in another recording fit two parts of a block
 * better than one (seen at z 6.4–6.8 on the bench), so the audio alone must convince more.
 */
export function splitZ(split: SplitScore, used: number, gapAt: VerifyContext["gapAt"]): number {
  let z = used < SHORT_BLOCK_FRAMES ? split.z - SHORT_SPLIT_EXTRA_Z : split.z;
  const breakAt = split.a + split.k + 1;
  if (gapAt && !gapAt(breakAt - GAP_SLACK_FRAMES, breakAt + GAP_SLACK_FRAMES, split.a - split.b)) {
    z -= UNHINTED_SPLIT_EXTRA_Z;
  }
  return z;
}

/**
 * Per-frame errors, weights and squared weights of the block at each alignment best − SPLIT_MAX_SHIFT .. best +
 * SPLIT_MAX_SHIFT, the 17 that the 16 candidate splits read (each up to four times: computed once, not 32
 * times), and the evidence w/2 − e of each frame and its sum over the block (each alignment is a suffix of up to
 * nine candidate splits and a prefix of up to eight, which read the same numbers): the kernel's (split_kernel.ts),
 * shared by every Splitter in the process, as {@link Splitter.best} runs to its end without yielding.
 */
const OFFSETS = 2 * SPLIT_MAX_SHIFT + 1;
const K = frameErrorsKernel();
const EO = K.e, WO = K.wo, QO = K.qo, VO = K.v, TOTAL = K.total;

/**
 * The kernel's inputs for block `fp` (with `mask`) at alignments `lo + o`: the target frames the alignments read
 * (block frame j at alignment o reads frame o + j from the lowest), each with the weight and squared weight of
 * its strong-bit count (0 where not held: a frame's weights depend on the target frame alone, so each is counted
 * once, not once per alignment), and which block frames are used. Then the kernel: score.ts's frameErrors of
 * each alignment (the same table values; a frame that does not count adds 0, as there) and the evidence.
 */
function fillOffsets(fp: Uint32Array, mask: Uint8Array | undefined, store: FrameStore, lo: number): void {
  const n = fp.length, span = n + OFFSETS - 1;
  const bits = store.bits, strong = store.strong, m = store.mask, start = store.start, end = store.end;
  const wt = FRAME_WEIGHT, wq = FRAME_WEIGHT_SQ;
  const kb = K.bits, ks = K.strong, kw = K.w, kq = K.q, used = K.used;
  for (let i = 0; i < span; i++) {
    const t = lo + i;
    if (t < start || t >= end) {
      kw[i] = 0;
      continue;
    }
    const sm = strong[t & m]!;
    kb[i] = bits[t & m]!;
    ks[i] = sm;
    let c = sm - ((sm >>> 1) & 0x55555555);
    c = (c & 0x33333333) + ((c >>> 2) & 0x33333333);
    c = Math.imul((c + (c >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
    kw[i] = wt[c]!;
    kq[i] = wq[c]!;
  }
  K.fp.set(fp);
  for (let j = 0; j < n; j++) used[j] = mask !== undefined && ((mask[j >> 3]! >> (j & 7)) & 1) === 1 ? 0 : 1;
  K.run(n);
}

/** Finds the best split of a block (scratch shared by the process; not re-entrant). */
export class Splitter {
  /**
   * Best two-part scoring of `sig` around its whole-block alignment `best` on the frames of `store`: the split
   * point maximises the evidence Σ(w/2 − e) of the two parts (linear, so one pass), and only the chosen split's
   * significance is computed. Undefined when no split has two significant parts.
   */
  best(sig: Signature, best: number, store: FrameStore): SplitScore | undefined {
    const fp = sig.fingerprint, mask = sig.mask;
    const n = fp.length;
    fillOffsets(fp, mask, store, best - SPLIT_MAX_SHIFT);
    let out: SplitScore | undefined;
    for (let d = 1; d <= SPLIT_MAX_SHIFT; d++) {
      for (const a of [best, best + d]) {
        const b = a - d;
        const oa = a - best + SPLIT_MAX_SHIFT, ob = b - best + SPLIT_MAX_SHIFT;
        const e1 = EO[oa]!, w1 = WO[oa]!, q1 = QO[oa]!, e2 = EO[ob]!, w2 = WO[ob]!, q2 = QO[ob]!;
        const v1 = VO[oa]!, v2 = VO[ob]!;
        let sufEv = TOTAL[ob]!;
        let preEv = 0, preFrames = 0, bestEv = -Infinity, bestK = -1;
        for (let k = 0; k < n; k++) {
          preEv += v1[k]!;
          sufEv -= v2[k]!;
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
}
