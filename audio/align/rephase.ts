/**
 * A signature's block re-fingerprinted on the target grid phase where its envelope puts it.
 *
 * Sub-fingerprints live on the absolute frame grid of each stream (hop 128 samples), and a target tap starts at
 * an arbitrary sample of the audio, so its grid sits up to half a hop (8 ms of 128 ms frames) off the source's.
 * That costs bits: measured on the bench with target taps at a random phase, recall fell 1 point on GSM and 3.6
 * points at 10 dB SNR against taps that happened to share the source's phase. The envelope alignment (see
 * level_envelope.ts) knows the phase to the sample, so for a candidate that narrowly failed verification the
 * matcher can score it again on frames computed where the source's grid falls in the target: about one block of
 * frame analyses (~1 ms), spent only on near misses.
 * @module
 */

import { ALIGN_RANGE, INSTANT_OFFSET } from "./align.ts";
import { agedSince, EnvelopeScratch, envelopeShift } from "./level_envelope.ts";
import { type FrameAnalyzer, FrameStore, SUBFP_BITS } from "../fingerprint/fingerprint.ts";
import type { SampleRing } from "../decode/sample_ring.ts";
import type { Signature } from "../types.ts";

/** Frames computed beyond the block on either side (the matcher's neighbour and margin scans read them). */
export const REPHASE_PAD = 10;
/**
 * Grid offsets up to this many samples are left alone: the envelope is good to about a sample, and a few
 * samples of a 1024-sample frame change almost no bits.
 */
export const PHASE_TOLERANCE = 4;
/** Band energies per frame (one more band than bits). */
const BANDS = SUBFP_BITS + 1;

/** A block's target frames on a shifted grid: frame k of `store` starts at analysis sample k·hop + `offset`. */
export interface Rephased {
  store: FrameStore;
  /** Frame (same numbering as the stream's grid) where the signature's frame 0 sits. */
  frame: number;
  /** Sample offset of this grid from the stream's, in (-hop/2, hop/2]. */
  offset: number;
}

/** Recomputes blocks on shifted grids for one target stream (reusable scratch; not re-entrant). */
export class Rephaser {
  readonly #an: FrameAnalyzer;
  readonly #env: EnvelopeScratch;
  readonly #store: FrameStore;
  /** The band energies of frame #prevFrame (as many as the kernel's: FrameAnalyzer.fingerprint copies them). */
  readonly #prev = new Float64Array(BANDS);
  readonly #res = new Uint32Array(3);
  /** The ring and grid offset the store's frames were computed on, and the frame whose bands #prev holds. */
  #ring: SampleRing | undefined;
  #offset = NaN;
  #prevFrame = NaN;
  /** The ring's {@link SampleRing.finalBefore} when the store's frames were computed. */
  #final = 0;

  /**
   * Uses `analyzer`'s parameters (the stream's fingerprint). `maxFrames`: longest block plus padding.
   * `envelope`: the envelope search's scratch, which may be shared with a FineAligner (see align.ts).
   */
  constructor(analyzer: FrameAnalyzer, maxFrames: number, envelope: EnvelopeScratch = new EnvelopeScratch()) {
    this.#an = analyzer;
    this.#env = envelope;
    this.#store = new FrameStore(maxFrames + 2 * REPHASE_PAD + 2);
  }

  /**
   * The block of `sig`, coarsely at stream frame `frame`, on the grid its envelope puts it on; undefined when
   * the signature has no envelope, the samples are not held, or the grid is the stream's own.
   */
  run(ring: SampleRing, sig: Signature, frame: number): Rephased | undefined {
    if (!sig.levelEnvelope) return undefined;
    const { hop, frame: len } = this.#an.params;
    const e = envelopeShift(ring, sig.levelEnvelope, frame * hop + INSTANT_OFFSET, ALIGN_RANGE, this.#env);
    if (!e) return undefined;
    const origin = frame * hop + e.shift;
    const k = Math.round(origin / hop);
    const offset = origin - k * hop;
    if (Math.abs(offset) <= PHASE_TOLERANCE) return undefined;
    const n = sig.fingerprint.length;
    const from = k - REPHASE_PAD;
    // As far as the samples go (a forward verification runs as soon as the block is there): missing frames are
    // skipped by the scoring like missing frames of the stream's own grid.
    const to = Math.min(k + n + REPHASE_PAD, Math.floor((ring.end - offset - len) / hop) + 1);
    // Frame `from` needs its previous frame too.
    const first = (from - 1) * hop + offset, size = (to - from) * hop + len;
    if (to - from < n || !(first >= ring.start && first + size <= ring.end)) return undefined;
    const store = this.#store;
    // A near miss is often verified again a frame later, and the envelope puts it on the same grid: the frames
    // the last run computed on that grid (the same samples: a ring never rewrites one, except once when it ages
    // to the 4-bit tier) are taken as they are.
    const same = ring === this.#ring && offset === this.#offset &&
      !agedSince(ring, this.#final, (store.start - 1) * hop + offset, (store.end - 1) * hop + offset + len);
    if (!same) this.#prevFrame = NaN;
    const held = same && from >= store.start && from < store.end ? store.end : from;
    store.reset(from);
    const mask = store.mask;
    let f = from;
    for (const e = Math.min(to, held); f < e; f++) {
      const i = f & mask;
      store.push(store.bits[i]!, store.weak[i]!, store.energy[i]!, store.strong[i]!);
    }
    if (f < to) {
      // Only the samples of the frames computed are read (held by the test above; a cold range is decoded now).
      ring.has((f - 1) * hop + offset, (to - f) * hop + len);
      if (this.#prevFrame !== f - 1) this.#an.analyze(ring, (f - 1) * hop + offset, this.#prev);
      // FrameAnalyzer.fingerprint: analyze and subFingerprint over #prev (the same numbers), with the
      // sub-fingerprint in the transform's WebAssembly call where the float32 kernel runs (in JS its comparisons
      // mispredict on speech: ~9% of a re-scoring's CPU).
      for (; f < to; f++) {
        const energy = this.#an.fingerprint(ring, f * hop + offset, this.#prev, this.#res);
        store.push(this.#res[0]!, this.#res[1]!, energy, this.#res[2]!);
      }
      this.#prevFrame = to - 1;
    }
    this.#ring = ring;
    this.#offset = offset;
    this.#final = ring.finalBefore;
    return { store, frame: k, offset };
  }
}
