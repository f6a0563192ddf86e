/**
 * Sample-level alignment of a verified match. The coarse offset is only known to the frame grid (a hop, 16 ms);
 * recomputing the target's sub-fingerprints on grids shifted sample by sample around it and keeping the shift
 * that agrees best with the signature gives the instant to the sample (measured: the aligned grid's BER drops to
 * about 0.01 on clean chains, so the optimum is sharp).
 *
 * Agreement is soft: Σ over bits of ±|difference| (plus when the target's difference has the signature bit's
 * sign), normalised per frame. Unlike the bit error rate it changes smoothly with the shift, so a coarse-to-fine
 * search over shifts does not get stuck on ties. Only a window of the loudest consecutive frames of the block is
 * recomputed per shift, which keeps a match's alignment to a few hundred frame analyses.
 * @module
 */

import { EnvelopeScratch, envelopeShift } from "./level_envelope.ts";
import type { GapHint } from "./gap_hints.ts";
import { WAVE_FAR, WAVE_SIGN_SAMPLES, type WaveSigns, waveSignShift } from "./wave_signs.ts";
import { type FrameAnalyzer, type FrameStore, SUBFP_BITS } from "../fingerprint/fingerprint.ts";
import { popcount32 } from "../match/signature_index.ts";
import { isMasked } from "../fingerprint/signature.ts";
import type { SampleRing } from "../decode/sample_ring.ts";

/** Frames sampled for the aligned-grid bit error rate. */
const BER_FRAMES = 24;
/** Frames recomputed per shift (fingerprint-only alignment). */
export const ALIGN_WINDOW = 48;
/**
 * A signature's instant is this many analysis samples (1 ms) after its anchor frame's first sample. The frame
 * grid (128 samples) and the usual packetisations (80, 160, 240, 320 samples) share factors of 16–64, so a grid
 * instant would often sit exactly on a packet boundary, where a one-sample error names the wrong message; 8
 * samples in, every instant is at least 1 ms from a boundary of 10/20/30/40 ms packets.
 */
export const INSTANT_OFFSET = 8;
/**
 * Search range of the fine alignment around the coarse position, samples: half a hop of grid error plus a lost
 * 20 ms message (the whole-block alignment may be the one after the loss) and some slack.
 */
export const ALIGN_RANGE = 256;
/**
 * Search range of the envelope alignment, samples (128 ms): a message of up to 120 ms lost just after the
 * instant pulls the block's coarse alignment that far from it, and the envelope search is cheap enough to cover
 * it (measured: with ±256 samples, such instants were reported 20–110 ms early on the bench's lossy chain).
 */
export const ENVELOPE_RANGE = 1024;
const BANDS = SUBFP_BITS + 1;

/**
 * Whether a capture-time gap hint falls between the instant at target sample `instant` and the far end of the
 * signs' window (starting `offset` samples from it, ±WAVE_FAR). The signs are not used across one: audio
 * missing between the instant and their window (up to 192 ms after it) moves the window by the gap, and the best
 * agreement within ±2 ms is then noise (measured on the bench's 1% loss chain: exact 99.8% -> 97.9%).
 */
export function gapNearSigns(gaps: readonly GapHint[], instant: number, offset: number): boolean {
  const from = Math.min(instant, instant + offset) - WAVE_FAR;
  const to = Math.max(instant, instant + offset + WAVE_SIGN_SAMPLES) + WAVE_FAR;
  return gaps.some((g) => g.at > from && g.at < to);
}

/** Result of {@link FineAligner.align}. */
export interface Alignment {
  /** Target analysis sample where the signature's frame 0 starts (its instant is INSTANT_OFFSET later). */
  sample: number;
  /** How it was found. */
  by: "envelope" | "fingerprint";
  /** Shift from the coarse position, samples. */
  shift: number;
  /** Hard bit error rate on the aligned grid (24 unmasked frames spread over the block); NaN if not held. */
  ber: number;
  /**
   * The envelope says the instant itself lies in audio missing from the target (capture times show a gap there:
   * silence suppression or a lost message): no target message carries it. Else undefined.
   */
  instantInGap: true | undefined;
}

/** Reusable state for fine alignment (one per target stream; not re-entrant). */
export class FineAligner {
  readonly #an: FrameAnalyzer;
  readonly #bands: Float64Array[];
  readonly #env: EnvelopeScratch;
  /** Band energies of the coarse pass's frames by position (see {@link FrameMemo}). */
  readonly #memo = new FrameMemo();
  /** {@link #hardBer}'s sampled frames: their indices in the block, first samples, and bits. */
  #berFrames = new Int32Array(0);
  /** Absolute sample indices: float64, as a target stream passes 2^31 samples in its 75th hour. */
  #berPos = new Float64Array(0);
  #berBits = new Uint32Array(0);

  /**
   * Uses `analyzer`'s parameters (must be the fingerprint's). `envelope`: the envelope search's scratch, which
   * may be shared with a {@link Rephaser} used one call at a time (what it keeps is keyed by ring and levels).
   */
  constructor(analyzer: FrameAnalyzer, envelope: EnvelopeScratch = new EnvelopeScratch()) {
    this.#an = analyzer;
    this.#env = envelope;
    this.#bands = Array.from({ length: 2 }, () => new Float64Array(BANDS));
  }

  /**
   * Aligns signature block `fp` (with `mask`) whose first frame coarsely sits at target frame `coarse` of
   * `store`/`ring`: by the envelope over [-envelopeRange, envelopeRange] samples when the signature has one,
   * else by sub-fingerprints over [-range, range] coarse to fine. Returns undefined when the samples needed are
   * no longer (or not yet) in the ring. `gaps`: where capture times suggest lost audio (see gap_hints.ts).
   * `waveSigns`: the signature's waveform signs, which refine the envelope's answer to the sample.
   */
  align(
    ring: SampleRing,
    store: FrameStore,
    fp: Uint32Array,
    mask: Uint8Array | undefined,
    envelope: Uint8Array | undefined,
    coarse: number,
    range: number = ALIGN_RANGE,
    envelopeRange: number = ENVELOPE_RANGE,
    gaps: readonly GapHint[] = [],
    waveSigns?: WaveSigns,
  ): Alignment | undefined {
    const { hop, frame } = this.#an.params;
    const n = fp.length;
    if (envelope) {
      const e = envelopeShift(ring, envelope, coarse * hop + INSTANT_OFFSET, envelopeRange, this.#env, gaps);
      if (e?.instantInGap) {
        return {
          sample: coarse * hop + e.shift,
          by: "envelope",
          shift: e.shift,
          ber: NaN,
          instantInGap: true,
        };
      }
      if (e) {
        // The aligned grid's BER (48 frame analyses) at a shift: taken only where it is needed, i.e. not at a
        // shift the waveform's signs then move away from.
        const berAt = (s: number) => {
          const at = coarse * hop + s;
          return ring.has(at - hop, n * hop + frame) ? this.#hardBer(ring, fp, mask, at) : NaN;
        };
        let shift = e.shift;
        let ber: number | undefined;
        if (e.alt) {
          // Two envelope peaks nearly as good: the sub-fingerprints on each one's grid decide.
          ber = berAt(shift);
          const ber2 = berAt(e.alt.shift);
          if (ber2 < ber) {
            shift = e.alt.shift;
            ber = ber2;
          }
        }
        const instant = coarse * hop + shift + INSTANT_OFFSET;
        if (waveSigns && !gapNearSigns(gaps, instant, waveSigns.offset)) {
          // The envelope is right to a millisecond or two, or a pitch period off; the waveform's signs, weighed
          // with the envelope's correlation, say where.
          const base = shift;
          const w = waveSignShift(ring, waveSigns, instant, (d) => e.corrAt(base + d));
          if (w && w.shift !== 0) {
            shift += w.shift;
            ber = undefined;
          }
        }
        return {
          sample: coarse * hop + shift,
          by: "envelope",
          shift,
          ber: ber ?? berAt(shift),
          instantInGap: undefined,
        };
      }
    }
    // The window: the loudest run of ALIGN_WINDOW frames (target energies) with the fewest masked frames.
    const w = Math.min(ALIGN_WINDOW, n);
    let bestStart = 0;
    let bestScore = -Infinity;
    for (let j0 = 0; j0 + w <= n; j0++) {
      let sc = 0;
      for (let j = j0; j < j0 + w; j++) {
        if (isMasked(mask, j)) continue;
        const t = coarse + j;
        sc += store.has(t, 1) ? Math.max(0, store.energy[t & store.mask]! + 80) : 0;
      }
      if (sc > bestScore) {
        bestScore = sc;
        bestStart = j0;
      }
    }
    const base = coarse * hop;
    const first = base - range + (bestStart - 1) * hop;
    const end = base + range + (bestStart + w - 1) * hop + frame;
    if (!ring.has(first, end - first)) return undefined;
    const coarseStep = Math.max(1, Math.floor(hop / 4));
    // The coarse pass's shifts a hop apart read the same frames (frame j + 1 of one is frame j of the next):
    // each position is analysed once. Positions lie on the coarse step's grid from the first frame of the lowest
    // shift to the last of the highest.
    const memo = hop % coarseStep === 0 ? this.#memo : undefined;
    memo?.reset(first, coarseStep, Math.floor((end - frame - first) / coarseStep) + 1);
    let useMemo = true;
    const score = (shift: number) =>
      this.#soft(ring, fp, mask, base + shift, bestStart, w, useMemo ? memo : undefined);
    const cache = new Map<number, number>();
    const at = (shift: number) => {
      let v = cache.get(shift);
      if (v === undefined) {
        v = score(shift);
        cache.set(shift, v);
      }
      return v;
    };
    let best = 0;
    for (let s = -range; s <= range; s += coarseStep) if (at(s) > at(best)) best = s;
    // The refinement's shifts are off the coarse grid (they would only miss the memo).
    useMemo = false;
    for (let step = coarseStep >> 1; step >= 1; step >>= 1) {
      let next = best;
      for (const s of [best - step, best + step]) {
        if (s < -range || s > range) continue;
        if (at(s) > at(next)) next = s;
      }
      best = next;
    }
    // One more pass at unit steps in case the curve was flat between the refinements.
    for (let moved = true, guard = 0; moved && guard < 8; guard++) {
      moved = false;
      for (const s of [best - 1, best + 1]) {
        if (s >= -range && s <= range && at(s) > at(best)) {
          best = s;
          moved = true;
        }
      }
    }
    const sample = base + best;
    const ber = ring.has(sample - hop, n * hop + frame) ? this.#hardBer(ring, fp, mask, sample) : NaN;
    return { sample, by: "fingerprint", shift: best, ber, instantInGap: undefined };
  }

  /** Band energies of the frame at `pos`: from `memo` when it covers the position, else into `spare`. */
  #frameAt(ring: SampleRing, pos: number, spare: Float64Array, memo: FrameMemo | undefined): Float64Array {
    const v = memo?.at(pos);
    if (v === undefined) {
      this.#an.analyze(ring, pos, spare);
      return spare;
    }
    if (!memo!.have(pos)) this.#an.analyze(ring, pos, v);
    return v;
  }

  /**
   * Mean per-frame soft agreement of frames [j0, j0+w) on the grid whose frame 0 starts at `origin`; frames
   * `memo` covers are taken from it (the same analyses).
   */
  #soft(
    ring: SampleRing,
    fp: Uint32Array,
    mask: Uint8Array | undefined,
    origin: number,
    j0: number,
    w: number,
    memo?: FrameMemo,
  ): number {
    const hop = this.#an.params.hop;
    const b0 = this.#bands[0]!, b1 = this.#bands[1]!;
    let prev = this.#frameAt(ring, origin + (j0 - 1) * hop, b0, memo);
    let cur: Float64Array;
    let total = 0;
    let frames = 0;
    for (let j = j0; j < j0 + w; j++) {
      cur = this.#frameAt(ring, origin + j * hop, prev === b0 ? b1 : b0, memo);
      if (!isMasked(mask, j)) {
        const bits = fp[j]!;
        let num = 0, den = 0;
        for (let m = 0; m < SUBFP_BITS; m++) {
          const d = cur[m]! - cur[m + 1]! - (prev[m]! - prev[m + 1]!);
          const bit = (bits >>> (31 - m)) & 1;
          num += bit ? d : -d;
          den += d < 0 ? -d : d;
        }
        if (den > 0) {
          total += num / den;
          frames++;
        }
      }
      prev = cur;
    }
    return frames ? total / frames : -1;
  }

  /**
   * Hard BER on the grid whose frame 0 starts at `origin`, over up to `most` unmasked frames spread over the
   * block (each recomputed with its previous frame): by default a 768-bit estimate for 48 frame analyses.
   */
  #hardBer(
    ring: SampleRing,
    fp: Uint32Array,
    mask: Uint8Array | undefined,
    origin: number,
    most = BER_FRAMES,
  ): number {
    const hop = this.#an.params.hop;
    const prev = this.#bands[0]!;
    const cur = this.#bands[1]!;
    let used = 0;
    for (let j = 0; j < fp.length; j++) if (!isMasked(mask, j)) used++;
    const step = Math.max(1, used / most);
    // The sampled frames, then their bits over the frames before them in one kernel call where it runs.
    const js = this.#berFrames.length >= fp.length
      ? this.#berFrames
      : (this.#berFrames = new Int32Array(fp.length));
    const pos = this.#berPos.length >= fp.length
      ? this.#berPos
      : (this.#berPos = new Float64Array(fp.length));
    let frames = 0, seen = 0, next = 0;
    for (let j = 0; j < fp.length; j++) {
      if (isMasked(mask, j)) continue;
      if (seen++ < next) continue;
      next += step;
      js[frames] = j;
      pos[frames++] = origin + j * hop;
    }
    if (frames === 0) return NaN;
    const bits = this.#berBits.length >= frames
      ? this.#berBits
      : (this.#berBits = new Uint32Array(fp.length));
    let errors = 0;
    if (this.#an.pairBits(ring, pos, frames, bits)) {
      for (let f = 0; f < frames; f++) errors += popcount32((bits[f]! ^ fp[js[f]!]!) >>> 0);
      return errors / (frames * SUBFP_BITS);
    }
    for (let f = 0; f < frames; f++) {
      const j = js[f]!;
      this.#an.analyze(ring, origin + (j - 1) * hop, prev);
      this.#an.analyze(ring, origin + j * hop, cur);
      let b = 0;
      for (let m = 0; m < SUBFP_BITS; m++) {
        const d = cur[m]! - cur[m + 1]! - (prev[m]! - prev[m + 1]!);
        b = (b << 1) | (d > 0 ? 1 : 0);
      }
      errors += popcount32((b ^ fp[j]!) >>> 0);
    }
    return errors / (frames * SUBFP_BITS);
  }
}

/**
 * Band energies of frames at positions `lo + k·step` (k < count), each analysed on first use: one alignment's
 * coarse pass (its samples do not change during it).
 */
export class FrameMemo {
  #bands = new Float64Array(0);
  #views: Float64Array[] = [];
  #have = new Uint8Array(0);
  #lo = 0;
  #step = 1;
  #count = 0;

  /** Forgets every frame; covers `count` positions from `lo`, `step` apart. */
  reset(lo: number, step: number, count: number): void {
    if (this.#views.length < count) {
      this.#bands = new Float64Array(count * BANDS);
      this.#views = Array.from({ length: count }, (_, k) => this.#bands.subarray(k * BANDS, (k + 1) * BANDS));
      this.#have = new Uint8Array(count);
    }
    this.#have.fill(0, 0, count);
    this.#lo = lo;
    this.#step = step;
    this.#count = count;
  }

  /** The slot of position `pos` (undefined: not covered). */
  at(pos: number): Float64Array | undefined {
    const d = pos - this.#lo;
    if (d < 0 || d % this.#step !== 0) return undefined;
    const k = d / this.#step;
    return k < this.#count ? this.#views[k] : undefined;
  }

  /** Whether the frame at covered position `pos` was analysed since the reset (and marks it as analysed). */
  have(pos: number): boolean {
    const k = (pos - this.#lo) / this.#step;
    if (this.#have[k] === 1) return true;
    this.#have[k] = 1;
    return false;
  }
}
