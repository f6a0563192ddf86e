/**
 * Latency continuity: the evidence a signature's neighbours give it. Within a call the delay between two taps
 * rarely changes while the target's audio runs on without a gap, so once signatures of a source tap were found
 * in a target stream, the next one is expected where the same delay puts it (to a frame or two). A block checked
 * right there has not been picked as the best of every alignment a search tried, so less significance rules out
 * chance (thresholds.ts, {@link CONTINUITY_Z_CREDIT}): short blocks under another speaker's voice (two call legs
 * mixed) fell 0.1–1.5 short of the significance a search needs.
 *
 * Only matches accepted on their own significance are remembered, so that a match accepted on this credit never
 * vouches for the next one.
 * @module
 */

import { FP_PARAMS } from "../fingerprint/fingerprint.ts";
import type { Signature } from "../types.ts";
import { CONTINUITY_MAX_AGE_MS, CONTINUITY_TOLERANCE_FRAMES } from "./thresholds.ts";

/** Matches remembered per source tap (the newest by source time). */
const KEEP_PER_TAP = 8;
/** Source taps remembered per target stream (the most recently matched). */
const KEEP_TAPS = 4;

/** A remembered match: the source instant (ms since the epoch) and the target frame of the block's frame 0. */
interface Seen {
  srcMs: number;
  frame: number;
}

/** Where a neighbour's delay puts a signature: its block's frame 0 at `frame`, derived from a match at `from`. */
export interface Expected {
  frame: number;
  /** Target frame of the neighbour's match. */
  from: number;
}

/** The source instant of `sig`, ms since the epoch (precise to well under a frame for the next 100 years). */
function sourceMs(sig: Signature): number {
  return Number(sig.source.timeNs) / 1e6 + sig.source.offsetMs;
}

/** {@link tapKey} of signatures seen (one per verification: the string was rebuilt every time). */
const tapKeys = new WeakMap<Signature, string>();

/** The source tap of `sig` as one key. */
function tapKey(sig: Signature): string {
  let key = tapKeys.get(sig);
  if (key === undefined) {
    const s = sig.source;
    key = `${sig.measurement}\u0000${s.node}\u0000${s.pod}\u0000${s.stream}`;
    tapKeys.set(sig, key);
  }
  return key;
}

/** The matches of one target stream's recent source taps, for {@link LatencyMemory.expect}. */
export class LatencyMemory {
  /**
   * Per source tap, its remembered matches; insertion order is recency of use. Made on the first match (most
   * streams of a node hold none).
   */
  #taps: Map<string, Seen[]> | undefined;

  /** Remembers that `sig` matched with its frame 0 at target frame `frame`. */
  remember(sig: Signature, frame: number): void {
    const taps = (this.#taps ??= new Map<string, Seen[]>());
    const key = tapKey(sig);
    let list = taps.get(key);
    if (list) taps.delete(key);
    else list = [];
    taps.set(key, list);
    list.push({ srcMs: sourceMs(sig), frame });
    if (list.length > KEEP_PER_TAP) {
      // Keep the newest by source time (a late signature may be matched after newer ones).
      list.sort((a, b) => a.srcMs - b.srcMs);
      list.shift();
    }
    if (taps.size > KEEP_TAPS) taps.delete(taps.keys().next().value!);
  }

  /**
   * Where the delay of the nearest remembered match of the same source tap (by source time, at most
   * CONTINUITY_MAX_AGE_MS away) puts `sig`'s frame 0; undefined without one.
   */
  expect(sig: Signature, hop: number): Expected | undefined {
    const list = this.#taps?.get(tapKey(sig));
    if (!list) return undefined;
    const t = sourceMs(sig);
    let best: Seen | undefined;
    for (const s of list) {
      const d = Math.abs(s.srcMs - t);
      if (d <= CONTINUITY_MAX_AGE_MS && (!best || d < Math.abs(best.srcMs - t))) best = s;
    }
    if (!best) return undefined;
    return { frame: best.frame + ((t - best.srcMs) * FP_PARAMS.sampleRate) / (1000 * hop), from: best.frame };
  }
}

/**
 * Whether a block aligned at `frame` sits where `expected` puts it (within CONTINUITY_TOLERANCE_FRAMES) with
 * no gap that capture times show between the two (a gap may have changed the delay). Without `gapsIn` (capture
 * times unknown) there is no continuity to rely on.
 */
export function continues(
  expected: Expected | undefined,
  frame: number,
  hop: number,
  gapsIn: ((from: number, to: number) => readonly unknown[]) | undefined,
): boolean {
  if (!expected || !gapsIn || Math.abs(frame - expected.frame) > CONTINUITY_TOLERANCE_FRAMES) return false;
  const lo = Math.min(frame, expected.from), hi = Math.max(frame, expected.from);
  return gapsIn(lo * hop, (hi + 1) * hop).length === 0;
}
