/**
 * Voice activity decisions on 10 ms frames of the 8 kHz analysis signal, on the stream's absolute grid (frame k
 * covers analysis samples [80k, 80k + 80)), so decisions do not depend on how messages were chunked.
 *
 * Two deciders: an energy detector over an adaptive noise floor (cheap, predictable) and WebRTC's GMM VAD
 * (`@echogarden/fvad-wasm`, needs {@link initWebRtcVad} once). Onsets from either are only coarse: the
 * signature's instant is defined by the fingerprint grid, not by the VAD.
 * @module
 */

import fvadFactory from "@echogarden/fvad-wasm";
import { RING_SCALE } from "../decode/sample_ring.ts";

/** VAD frame length in analysis samples (10 ms at 8 kHz). */
export const VAD_FRAME = 80;

/**
 * Per-frame speech decision on the VAD_FRAME samples as stored in the ring (1.0 = RING_SCALE) at `data[(at + i) &
 * mask]`: a ring's data, or with `mask` -1 a plain array from `at` on. Read in place: a source stream's VAD took a
 * copy of every frame before. `filled`: the frame lies wholly in a gap the stream decoder filled (a lost message,
 * a removed body: its timeline says so), which is no evidence of the line's level.
 */
export interface VadDecider {
  decide(data: Int16Array, at: number, mask: number, filled?: boolean): boolean;
  /** Releases native resources (WebRTC); safe to call twice. */
  close(): void;
}

/** Level of a frame of digital silence, dBFS. */
const SILENCE_DBFS = -120;
/** Frames quieter than this (dBFS) are never speech, whatever the floor: a dead line is not an onset. */
export const ENERGY_MIN_SPEECH_DBFS = -70;
/** Margin above the noise floor per unit of `energy_threshold`, dB. */
export const ENERGY_DB_PER_UNIT = 30;
/** Smallest margin, dB, so that threshold 0 still needs more than the floor's own fluctuation. */
export const ENERGY_MIN_MARGIN_DB = 3;
/** The floor follows a quieter frame with this weight per frame (time constant ~30 ms). */
const FLOOR_FALL = 0.3;
/** The floor rises by at most this many dB per frame (1 dB/s) so that speech cannot pull it up quickly. */
const FLOOR_RISE_DB = 0.01;
/**
 * Frames of digital silence in a row that leave a set floor where it is, when nothing says they fill a loss: a
 * lost message or two filled with zeros (up to 50 ms) says nothing of the line's noise. A longer run (silence
 * suppression's pauses, a muted line) is followed like any quieter frame. Frames the decoder filled
 * (`filled`) hold the floor however many there are.
 */
export const SILENCE_HOLD_FRAMES = 5;
/**
 * Signal after digital silence that stays within {@link STEADY_SPREAD_DB} for this many frames (1 s) is the line's
 * noise, not speech: the floor is set to its quietest frame (see {@link EnergyVad}).
 */
export const STEADY_FRAMES = 100;
/** Largest spread (dB, loudest frame less quietest) of signal after digital silence that is steady line noise. */
export const STEADY_SPREAD_DB = 12;

/**
 * Level in dBFS of the VAD_FRAME samples at `data[(at + i) & mask]` (see {@link VadDecider}): 10·log10(mean(x²))
 * with x = sample / RING_SCALE; a full-scale sine is -3 dBFS.
 */
export function frameDbfs(data: Int16Array, at = 0, mask = -1): number {
  const e = sumOfSquares(data, at, mask);
  if (e === 0) return SILENCE_DBFS;
  return 10 * Math.log10(e / (VAD_FRAME * RING_SCALE * RING_SCALE));
}

/**
 * Σx² of the frame's samples. Exact in any order (integers below 2^37), so a frame that does not wrap is summed
 * without the mask, four samples a step.
 */
function sumOfSquares(data: Int16Array, at: number, mask: number): number {
  const from = at & mask;
  let e0 = 0, e1 = 0, e2 = 0, e3 = 0;
  if (from + VAD_FRAME <= data.length) {
    for (let i = from; i < from + VAD_FRAME; i += 4) {
      const a = data[i]!, b = data[i + 1]!, c = data[i + 2]!, d = data[i + 3]!;
      e0 += a * a;
      e1 += b * b;
      e2 += c * c;
      e3 += d * d;
    }
    return e0 + e1 + e2 + e3;
  }
  for (let i = 0; i < VAD_FRAME; i++) {
    const v = data[(at + i) & mask]!;
    e0 += v * v;
  }
  return e0;
}

/**
 * Energy VAD with an adaptive noise floor.
 *
 * `energy_threshold` (config `audio_criteria.energy_threshold`) is a number in [0, 1] (clamped): a 10 ms frame
 * is speech when its level exceeds the noise floor by `max(3, 30 × energy_threshold)` dB and is above -70 dBFS.
 * So 0.2 → 6 dB, 0.3 → 9 dB, 0.5 → 15 dB, 1 → 30 dB. The floor is a minimum tracker in dB: it falls towards a
 * quieter frame quickly (weight 0.3 per frame) and rises by at most 1 dB/s, so it sits at the level of the
 * pauses and a long utterance does not raise it much. It starts at the first frame's level; frames the decoder
 * filled, and up to {@link SILENCE_HOLD_FRAMES} other frames of digital silence (all zeros: a lost message), leave
 * it where it is. A floor that digital silence set (a stream that starts with zeros, a line muted for more than
 * 50 ms) says nothing of the line's noise once signal is back: if that signal stays steady (within
 * {@link STEADY_SPREAD_DB}) for {@link STEADY_FRAMES}, it is the line's noise and the floor is set to it.
 */
export class EnergyVad implements VadDecider {
  /** Required margin above the floor, dB. */
  readonly marginDb: number;
  #floor = NaN;
  /** Frames of digital silence in a row up to this one. */
  #zeros = 0;
  /**
   * Frames of signal since digital silence set the floor, and their quietest and loudest levels (dBFS); -1 when
   * the floor was not set by digital silence, or the signal since then was not steady.
   */
  #steadyFrames = -1;
  #steadyMin = 0;
  #steadyMax = 0;

  /** See the class doc for what `energyThreshold` means. */
  constructor(energyThreshold: number) {
    const t = Number.isFinite(energyThreshold) ? Math.min(1, Math.max(0, energyThreshold)) : 0.5;
    this.marginDb = Math.max(ENERGY_MIN_MARGIN_DB, ENERGY_DB_PER_UNIT * t);
  }

  /** Current noise floor, dBFS (NaN before the first frame). */
  get floorDbfs(): number {
    return this.#floor;
  }

  /** Decides one frame (see {@link VadDecider}) and updates the floor. */
  decide(data: Int16Array, at: number, mask: number, filled = false): boolean {
    // A loss filled by the decoder, however long (a burst of lost packets): held, as a lost message is below. Its
    // zeros followed, 6 frames on a -50 dBFS line took the floor to -90 and ~14 s of noise after for speech.
    if (filled && !Number.isNaN(this.#floor)) return false;
    const e = frameDbfs(data, at, mask);
    this.#zeros = e === SILENCE_DBFS ? this.#zeros + 1 : 0;
    const first = Number.isNaN(this.#floor);
    const held = this.#zeros > 0 && this.#zeros <= SILENCE_HOLD_FRAMES;
    if (first) this.#floor = Math.max(e, -90);
    else if (held) {
      // A lost message filled with zeros. Followed, one zero frame in -50 dBFS noise took the floor to -71 dBFS
      // and the next ~12 s of noise for speech (two frames, a lost 20 ms packet: ~27 s), masking every onset.
    } else if (e < this.#floor) this.#floor += FLOOR_FALL * (e - this.#floor);
    else this.#floor += Math.min(FLOOR_RISE_DB, e - this.#floor);
    if (this.#floor < -90) this.#floor = -90;
    if (e === SILENCE_DBFS) {
      // Digital silence that set the floor (followed, or the stream's first frame): watch the signal after it.
      if (first || !held) this.#steadyFrames = 0;
    } else if (this.#steadyFrames >= 0) this.#steady(e);
    return e >= ENERGY_MIN_SPEECH_DBFS && e >= this.#floor + this.marginDb;
  }

  /**
   * A frame of signal at `e` dBFS after digital silence set the floor. Followed at 1 dB/s from there, steady -50
   * dBFS line noise after a stream's first 20 ms of zeros (or a line muted for 100 ms) was speech for ~30 s: a
   * signature of noise every `reanchor_ms`, and every onset in it lost. Speech spreads wider than steady noise
   * within the first tens of ms (a talker whose pauses are exact zeros keeps the floor digital silence set).
   */
  #steady(e: number): void {
    if (this.#steadyFrames === 0) this.#steadyMin = this.#steadyMax = e;
    else {
      this.#steadyMin = Math.min(this.#steadyMin, e);
      this.#steadyMax = Math.max(this.#steadyMax, e);
    }
    if (this.#steadyMax - this.#steadyMin > STEADY_SPREAD_DB) this.#steadyFrames = -1;
    else if (++this.#steadyFrames >= STEADY_FRAMES) {
      this.#floor = Math.max(this.#floor, this.#steadyMin);
      this.#steadyFrames = -1;
    }
  }

  /** Nothing to release. */
  close(): void {}
}

/** The parts of the fvad Emscripten module used here (the package ships no types). */
interface FvadModule {
  _fvad_new(): number;
  _fvad_free(h: number): void;
  _fvad_set_mode(h: number, mode: number): number;
  _fvad_set_sample_rate(h: number, rate: number): number;
  _fvad_process(h: number, buf: number, len: number): number;
  _malloc(n: number): number;
  _free(p: number): void;
  HEAP16: Int16Array;
}

let fvad: FvadModule | undefined;
/** WebRtcVad instances built and not closed yet: each holds memory in fvad's heap, which never shrinks. */
let openVads = 0;

/** Loads the WebRTC VAD WASM module once (idempotent). */
export async function initWebRtcVad(): Promise<void> {
  if (fvad) return;
  const factory = fvadFactory as unknown as () => Promise<FvadModule>;
  fvad = await factory();
}

/** True once {@link initWebRtcVad} has completed. */
export function webRtcVadReady(): boolean {
  return fvad !== undefined;
}

/** How many WebRTC VADs are open (built and not closed): what an owner that drops its pipelines must free. */
export function openWebRtcVads(): number {
  return openVads;
}

/** WebRTC VAD (libfvad) at 8 kHz on 10 ms frames; aggressiveness 0 (least) .. 3 (most). */
export class WebRtcVad implements VadDecider {
  readonly #m: FvadModule;
  #handle: number;
  readonly #buf: number;
  readonly #scaled = new Int16Array(VAD_FRAME);

  /** Throws if {@link initWebRtcVad} has not completed or the aggressiveness is not 0..3. */
  constructor(aggressiveness: number) {
    if (!fvad) throw new Error("WebRtcVad: call initAudioEngine() (or initWebRtcVad()) first");
    if (!Number.isInteger(aggressiveness) || aggressiveness < 0 || aggressiveness > 3) {
      throw new RangeError(`WebRtcVad: aggressiveness must be 0..3, got ${aggressiveness}`);
    }
    this.#m = fvad;
    const h = this.#m._fvad_new();
    if (!h) throw new Error("WebRtcVad: fvad_new failed");
    if (this.#m._fvad_set_sample_rate(h, 8000) !== 0 || this.#m._fvad_set_mode(h, aggressiveness) !== 0) {
      this.#m._fvad_free(h);
      throw new Error("WebRtcVad: fvad rejected rate 8000 or the mode");
    }
    this.#handle = h;
    this.#buf = this.#m._malloc(VAD_FRAME * 2);
    openVads++;
  }

  /** Decides one 10 ms frame (80 samples; see {@link VadDecider}). */
  decide(data: Int16Array, at: number, mask: number): boolean {
    if (!this.#handle) return false;
    // WebRTC's VAD has absolute energy gates: give it full-scale Int16 (the ring keeps 12 dB of headroom).
    const g = 32768 / RING_SCALE;
    const x = this.#scaled;
    for (let i = 0; i < VAD_FRAME; i++) {
      const v = (data[(at + i) & mask] ?? 0) * g;
      x[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
    }
    // HEAP16 is re-created when the WASM memory grows: read it per call.
    this.#m.HEAP16.set(x, this.#buf >> 1);
    return this.#m._fvad_process(this.#handle, this.#buf, VAD_FRAME) === 1;
  }

  /** Frees the native VAD. */
  close(): void {
    if (!this.#handle) return;
    this.#m._fvad_free(this.#handle);
    this.#m._free(this.#buf);
    this.#handle = 0;
    openVads--;
  }
}
