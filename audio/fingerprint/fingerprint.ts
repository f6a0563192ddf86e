/**
 * Haitsma–Kalker differential sub-fingerprints on the stream's absolute frame grid: frame n covers analysis
 * samples [n·hop, n·hop + frame) of the stream, so any chunking of the same audio gives bit-identical frames.
 *
 * Parameters (8 kHz analysis): Hann frame 1024 samples (128 ms), hop 128 (16 ms), 33 log-spaced bands over
 * 300–2000 Hz on linear power, 32 bits per frame; blocks of 128 frames (2.05 s, 512 bytes on the wire).
 * Chosen by measurement on 2 min of the asterisk prompts (μ-law source) through μ-law, GSM 06.10, 20 and 10 dB
 * SNR chains, scoring each anchor's block at the true offset (grid misaligned by up to half a hop, as a target's
 * grid is) against its best chance score over 2 min of unrelated speech:
 * - frame/hop 1024/128 beat 512/64, 1024/64 and 512/128: share of 10 dB anchors above the best chance score
 *   0.96 vs 0.83–0.95. With a 16 ms hop a 128-frame block spans 2 s of speech instead of 1 s; 8 ms hops mostly
 *   repeat the neighbouring frame (7/8 overlap) and add bits that chance agrees with just as well.
 * - bands to 2000 Hz rather than 2500/3000 Hz: more exact half-fingerprint hits under GSM and noise (speech
 *   energy falls above 2 kHz, white noise does not), same separation. Log energies separated worse (0.89 vs 0.95).
 * - the target also marks each bit "strong" when its |energy difference| is at least the frame's mean; the bit
 *   error rate weights weak bits 0.3 (noise flips those first): 10 dB recall at the chance score 0.88 vs 0.83.
 * - cost: a whole frame (window, 1024-point real FFT, band sums and, in float32, the sub-fingerprint;
 *   audio/fingerprint/fft.ts) takes ~1.2 µs in the float32 WebAssembly SIMD kernel (1.9 µs in float64 with the
 *   sub-fingerprint in JS, 4.2 µs in JS); the fingerprinter alone runs ~8,000x real
 *   time per core in a loop (bench/fft_kernel_speed.ts on the shared 2-core Xeon). The frames an advance finds
 *   complete run in one call of that kernel (FrameAnalyzer.fingerprintRun). A source stream computes only
 *   its anchors' blocks (Fingerprinter.advanceRange).
 * @module
 */

import { type BandTable, copyOutOfRing, RealFft } from "./fft.ts";
import { MAX_RUN, ownFrame32, type SimdFrame32 } from "./fft_simd32.ts";
import type { SampleRing } from "../decode/sample_ring.ts";
import { RING_SCALE } from "../decode/sample_ring.ts";

/** The knobs of the sub-fingerprint. Changing any of them changes every fingerprint (wire version). */
export interface FingerprintParams {
  /** Analysis sample rate, Hz. */
  sampleRate: number;
  /** Frame length, samples (power of two). */
  frame: number;
  /** Hop between frames, samples. */
  hop: number;
  /** Lowest and highest band edge, Hz; 33 log-spaced bands give 32 bits. */
  fMin: number;
  fMax: number;
  /** A bit is "strong" when its |difference| is at least this times the frame's mean |difference|. */
  strongAlpha: number;
}

/** The production parameters (see the rationale at the top of this file). */
export const FP_PARAMS: Readonly<FingerprintParams> = Object.freeze({
  sampleRate: 8000,
  frame: 1024,
  hop: 128,
  fMin: 300,
  fMax: 2000,
  strongAlpha: 1,
});

/** Bits per sub-fingerprint (33 bands, 32 differences). */
export const SUBFP_BITS = 32;
const BANDS = SUBFP_BITS + 1;

/** Weak bits recorded per frame for multi-probe lookups: two per half (see {@link subFingerprint}). */
export const WEAK_BITS = 4;

/** Frame energy (dB relative to a full-scale sine over the bands) of a frame of digital silence. */
export const SILENT_DB = -200;

/** The precomputed tables of a {@link FrameAnalyzer}: they depend on the parameters only. */
interface AnalyzerTables {
  /** The transform and its output scratch: an analyzer uses them only within one call, and JS runs one at a time. */
  fft: RealFft;
  spec: Float64Array;
  window: Float64Array;
  /** Sparse weights: for each entry, bin and weight; band b's entries are [bandStart[b], bandStart[b + 1]). */
  wBin: Int32Array;
  w: Float64Array;
  bandStart: Int32Array;
  /** The same weights as one table for the FFT's whole-frame kernel. */
  bands: BandTable;
  fromBin: number;
  toBin: number;
  dbRef: number;
  /** Scratch of {@link FrameAnalyzer.fingerprint} where it calls {@link subFingerprint}: used within one call. */
  cur: Float64Array;
  diff: Float64Array;
  /** The kernel of {@link FrameAnalyzer.pairBits} (null: it does not run here), made on first use. */
  pairs: SimdFrame32 | null | undefined;
}

const tableCache = new Map<string, AnalyzerTables>();

/**
 * The tables for `params`, built once per distinct parameters (a stream's analyzer no longer carries ~20 KiB of
 * its own). Sharing the window also spares a copy per frame: the FFT kernel keeps the last window it was given
 * and copies a different one in (8 KiB) first, so with a window per analyzer every switch between streams (each
 * row, in a capture with many calls) paid that copy.
 */
function tablesOf(params: Readonly<FingerprintParams>): AnalyzerTables {
  const id = `${params.sampleRate}/${params.frame}/${params.fMin}/${params.fMax}`;
  const cached = tableCache.get(id);
  if (cached) return cached;
  const n = params.frame;
  const window = new Float64Array(n);
  let wsum2 = 0;
  for (let i = 0; i < n; i++) {
    const w = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n);
    window[i] = w;
    wsum2 += w * w;
  }
  const df = params.sampleRate / n;
  const edges: number[] = [];
  for (let b = 0; b <= BANDS; b++) edges.push(params.fMin * Math.pow(params.fMax / params.fMin, b / BANDS));
  const bins: number[] = [];
  const bands: number[] = [];
  const ws: number[] = [];
  let lo = n, hi = 0;
  for (let k = 1; k < n >> 1; k++) {
    const a = (k - 0.5) * df, z = (k + 0.5) * df;
    for (let b = 0; b < BANDS; b++) {
      const overlap = Math.min(z, edges[b + 1]!) - Math.max(a, edges[b]!);
      if (overlap > 0) {
        bins.push(k);
        bands.push(b);
        ws.push(overlap / df);
        if (k < lo) lo = k;
        if (k > hi) hi = k;
      }
    }
  }
  // Grouped by band, in bin order within a band (a stable sort): see FrameAnalyzer.analyze.
  const order = bins.map((_, i) => i).sort((x, y) => bands[x]! - bands[y]! || x - y);
  const bandStart = new Int32Array(BANDS + 1);
  for (const b of bands) bandStart[b + 1]!++;
  for (let b = 0; b < BANDS; b++) bandStart[b + 1]! += bandStart[b]!;
  const wBin = Int32Array.from(order, (i) => bins[i]!);
  const w = Float64Array.from(order, (i) => ws[i]!);
  const t: AnalyzerTables = {
    fft: new RealFft(n),
    spec: new Float64Array((n >> 1) + 1),
    window,
    wBin,
    w,
    bandStart,
    bands: { bin: wBin, weight: w, start: bandStart },
    fromBin: lo,
    toBin: hi,
    // A full-scale sine has power (n·A/2)²·Σw²/n... referenced so 0 dB ≈ full-scale tone in the bands.
    dbRef: (RING_SCALE * RING_SCALE * wsum2 * n) / 4,
    cur: new Float64Array(BANDS),
    diff: new Float64Array(SUBFP_BITS),
    pairs: undefined,
  };
  tableCache.set(id, t);
  return t;
}

/**
 * Window, FFT and band energies of one frame read from a {@link SampleRing}. Precomputed window and sparse
 * band–bin weights; no allocation per frame.
 */
export class FrameAnalyzer {
  readonly params: Readonly<FingerprintParams>;
  readonly #fft: RealFft;
  readonly #window: Float64Array;
  readonly #spec: Float64Array;
  readonly #fromBin: number;
  readonly #toBin: number;
  /** Sparse weights: for each entry, bin and weight; band b's entries are [bandStart[b], bandStart[b + 1]). */
  readonly #wBin: Int32Array;
  readonly #w: Float64Array;
  readonly #bandStart: Int32Array;
  readonly #bands: BandTable;
  readonly #dbRef: number;
  readonly #cur: Float64Array;
  readonly #diff: Float64Array;
  readonly #tables: AnalyzerTables;

  /** Tables for `params` (shared by every analyzer of the same parameters: see {@link tablesOf}). */
  constructor(params: Readonly<FingerprintParams> = FP_PARAMS) {
    this.params = params;
    const t = tablesOf(params);
    this.#fft = t.fft;
    this.#window = t.window;
    this.#spec = t.spec;
    this.#wBin = t.wBin;
    this.#w = t.w;
    this.#bandStart = t.bandStart;
    this.#bands = t.bands;
    this.#fromBin = t.fromBin;
    this.#toBin = t.toBin;
    this.#dbRef = t.dbRef;
    this.#cur = t.cur;
    this.#diff = t.diff;
    this.#tables = t;
  }

  /**
   * Sub-fingerprint bits of the frames whose first samples are absolute indices `pos[0..count)` of `ring`
   * (ascending), each over the frame a hop before it, into `bits`: the bits of {@link subFingerprint} over their
   * {@link analyze}d band energies. Where the float32 kernel runs, as many pairs as its scratch spans in one
   * WebAssembly call (an aligned grid's 24 sampled pairs: one copy of their samples and one call instead of 48
   * frame calls); returns false, nothing written, where it does not (the caller analyses the frames). The caller
   * guarantees the samples are held (one `has` over them all, so `data` addresses them).
   */
  pairBits(ring: SampleRing, pos: Float64Array, count: number, bits: Uint32Array): boolean {
    const t = this.#tables;
    if (!this.#fft.float32) return false;
    if (t.pairs === undefined) {
      const k = ownFrame32(this.params.frame);
      const quads = (this.#toBin - this.#fromBin + 4) >> 2;
      t.pairs =
        k !== null && this.#bands.start.length - 1 === BANDS && k.fits(this.#bands, this.#fromBin, quads)
          ? k
          : null;
    }
    const k = t.pairs;
    if (k === null) return false;
    const { hop, frame } = this.params;
    const data = ring.data, mask = ring.mask, span = k.pairSpan, at = k.pairAt, out = k.runBits;
    const quads = (this.#toBin - this.#fromBin + 4) >> 2;
    for (let p0 = 0; p0 < count;) {
      const lo = pos[p0]! - hop;
      let p1 = p0 + 1;
      while (p1 < count && p1 - p0 < MAX_RUN && pos[p1]! + frame - lo <= span.length) p1++;
      copyOutOfRing(span, data, lo & mask, mask, pos[p1 - 1]! + frame - lo);
      for (let p = p0; p < p1; p++) at[p - p0] = pos[p]! - lo;
      k.framePairs(this.#window, this.#fromBin, quads, this.#bands, this.params.strongAlpha, p1 - p0, hop);
      for (let p = p0; p < p1; p++) bits[p] = out[p - p0]!;
      p0 = p1;
    }
    return true;
  }

  /**
   * The frame at absolute index `pos` of `ring` as a fingerprint frame: its sub-fingerprint over the previous
   * frame's band energies `prev` into `result` (as {@link subFingerprint} with the parameters' strongAlpha), and
   * `prev` replaced by this frame's energies; returns the frame's energy as {@link analyze}. Where the float32
   * kernel runs, transform, band sums and sub-fingerprint are one WebAssembly call (RealFft.bandBits).
   */
  fingerprint(ring: SampleRing, pos: number, prev: Float64Array, result: Uint32Array): number {
    const alpha = this.params.strongAlpha;
    const bands = this.#fft.bandBits(
      ring.data,
      pos & ring.mask,
      ring.mask,
      this.#window,
      this.#bands,
      this.#fromBin,
      this.#toBin,
      prev,
      result,
      alpha,
    );
    if (bands !== undefined) {
      const total = bands[BANDS]!;
      return this.#dbOf(total);
    }
    const cur = this.#cur;
    const energy = this.analyze(ring, pos, cur);
    subFingerprint(cur, prev, result, this.#diff, alpha);
    prev.set(cur);
    return energy;
  }

  /**
   * {@link fingerprint} for frames `next`, `next + 1`, … (at most `count`) of the grid, each over the one
   * before (over `prev` for the first), appended to `store` (whose end must be `next`): where the float32 kernel
   * runs, a run of them in one WebAssembly call (RealFft.bandBitsRun), else one frame. Returns how many frames
   * were computed (at least one), `prev` left with the last one's energies; `result` is scratch.
   */
  fingerprintRun(
    ring: SampleRing,
    next: number,
    count: number,
    prev: Float64Array,
    result: Uint32Array,
    store: FrameStore,
  ): number {
    const hop = this.params.hop, mask = ring.mask;
    const limit = count < store.capacity ? count : store.capacity;
    const run = this.#fft.bandBitsRun(
      ring.data,
      (next * hop) & mask,
      mask,
      hop,
      limit,
      this.#window,
      this.#bands,
      this.#fromBin,
      this.#toBin,
      prev,
      this.params.strongAlpha,
    );
    if (run === undefined) {
      const energy = this.fingerprint(ring, next * hop, prev, result);
      store.push(result[0]!, result[1]!, energy, result[2]!);
      return 1;
    }
    const n = run.frames, total = run.total;
    // The energies in dB in place (the kernel's column is scratch until its next call).
    for (let f = 0; f < n; f++) total[f] = this.#dbOf(total[f]!);
    store.pushRun(run.bits, run.weak, total, run.strong, n);
    return n;
  }

  /** A frame's energy in dB from its bands' total (see {@link SILENT_DB}). */
  #dbOf(total: number): number {
    return total > 0 ? 10 * Math.log10(total / this.#dbRef) : SILENT_DB;
  }

  /**
   * Band energies of the frame whose first sample is absolute index `pos` of `ring` into `out[0..33)`, and the
   * frame's energy over the bands in dB (see {@link SILENT_DB}). The caller guarantees the samples are held.
   */
  analyze(ring: SampleRing, pos: number, out: Float64Array): number {
    const bands = this.#fft.bandPowers(
      ring.data,
      pos & ring.mask,
      ring.mask,
      this.#window,
      this.#bands,
      this.#fromBin,
      this.#toBin,
    );
    if (bands !== undefined) {
      // The kernel summed the bands as the loop below does (same entries, same order, float64).
      for (let b = 0; b < BANDS; b++) out[b] = bands[b]!;
      const total = bands[BANDS]!;
      return this.#dbOf(total);
    }
    const spec = this.#fft.powerWindowedView(
      ring.data,
      pos & ring.mask,
      ring.mask,
      this.#window,
      this.#spec,
      this.#fromBin,
      this.#toBin,
    );
    // Band by band with a local sum: the entries of a band in their original (bin) order, so every band's
    // additions happen in the same order as entry by entry over the whole table, without a store per entry.
    const wBin = this.#wBin, w = this.#w, bandStart = this.#bandStart;
    let total = 0;
    for (let b = 0; b < BANDS; b++) {
      let e = 0;
      for (let i = bandStart[b]!; i < bandStart[b + 1]!; i++) e += spec[wBin[i]!]! * w[i]!;
      out[b] = e;
      total += e;
    }
    return this.#dbOf(total);
  }
}

/**
 * Sub-fingerprint of a frame from its band energies and the previous frame's: bit m (MSB = band 0) is
 * `(E[n,m] − E[n,m+1]) − (E[n−1,m] − E[n−1,m+1]) > 0`. Writes `result[0]` = bits; `result[1]` = weak bits:
 * per half (bits 0–15, 16–31) the indices (0 = MSB) of the two bits with the smallest |difference| — the ones
 * noise flips first, toggled by multi-probe lookups — packed 4 bits each (the index within its half) as [hi1, hi2,
 * lo1, lo2] from the low end, 16 bits (what {@link FrameStore.weak} holds); `result[2]` = strong bits:
 * |difference| at least `strongAlpha` × the frame's mean |difference|. One pass plus one for the strong mask; no allocation.
 */
export function subFingerprint(
  cur: Float64Array,
  prev: Float64Array,
  result: Uint32Array,
  diff: Float64Array,
  strongAlpha: number,
): void {
  // Bits and the strong mask as `+(x > y)` (no branch: the signs are a coin toss, and mispredicted branches
  // took most of this function's time), a half at a time, each band read once; same results.
  let bits = 0;
  let sum = 0;
  let h1 = 0, h2 = 1, l1 = 16, l2 = 17;
  let h1v = Infinity, h2v = Infinity, l1v = Infinity, l2v = Infinity;
  let c0 = cur[0]!, p0 = prev[0]!;
  for (let m = 0; m < 16; m++) {
    const c1 = cur[m + 1]!, p1 = prev[m + 1]!;
    const d = c0 - c1 - (p0 - p1);
    c0 = c1;
    p0 = p1;
    const a = Math.abs(d);
    diff[m] = a;
    sum += a;
    bits = (bits << 1) | +(d > 0);
    // The two smallest so far, the earlier one first on ties (h1v <= h2v always).
    if (a < h2v) {
      if (a < h1v) {
        h2 = h1, h2v = h1v, h1 = m, h1v = a;
      } else h2 = m, h2v = a;
    }
  }
  for (let m = 16; m < SUBFP_BITS; m++) {
    const c1 = cur[m + 1]!, p1 = prev[m + 1]!;
    const d = c0 - c1 - (p0 - p1);
    c0 = c1;
    p0 = p1;
    const a = Math.abs(d);
    diff[m] = a;
    sum += a;
    bits = (bits << 1) | +(d > 0);
    if (a < l2v) {
      if (a < l1v) {
        l2 = l1, l2v = l1v, l1 = m, l1v = a;
      } else l2 = m, l2v = a;
    }
  }
  result[0] = bits >>> 0;
  result[1] = h1 | (h2 << 4) | ((l1 - 16) << 8) | ((l2 - 16) << 12);
  const thr = (sum / SUBFP_BITS) * strongAlpha;
  let strong = 0;
  if (thr > 0) { for (let m = 0; m < SUBFP_BITS; m++) strong = (strong << 1) | +(diff[m]! >= thr); }
  result[2] = strong >>> 0;
}

/** The bit mask (in sub-fingerprint bit order) of weak bit `k` (0, 1: high half; 2, 3: low half) of `weak`. */
export function weakMask(weak: number, k: number): number {
  return (1 << (31 - ((k & 2) * 8 + ((weak >>> (4 * k)) & 15)))) >>> 0;
}

/**
 * Per-frame output of the fingerprinter, a ring addressed by absolute frame number: frame n covers analysis
 * samples [n·hop, n·hop + frame).
 */
export class FrameStore {
  /** Capacity in frames (power of two). */
  readonly capacity: number;
  readonly mask: number;
  /** Sub-fingerprints. */
  readonly bits: Uint32Array;
  /** Packed weak-bit indices, 16 bits (see {@link subFingerprint}). */
  readonly weak: Uint16Array;
  /** Frame energy over the bands, dB. */
  readonly energy: Float32Array;
  /** Bits whose |difference| is large (reliable), same bit order as `bits`. */
  readonly strong: Uint32Array;
  /** Oldest frame held; frames before it are gone. */
  start = 0;
  /** Next frame to be written. */
  end = 0;

  /** A store of at least `minFrames` frames. */
  constructor(minFrames: number) {
    let cap = 64;
    while (cap < minFrames) cap *= 2;
    this.capacity = cap;
    this.mask = cap - 1;
    this.bits = new Uint32Array(cap);
    this.weak = new Uint16Array(cap);
    this.energy = new Float32Array(cap);
    this.strong = new Uint32Array(cap);
  }

  /** Bytes of the columns, for capacity planning. */
  get bytes(): number {
    return this.bits.byteLength + this.weak.byteLength + this.energy.byteLength + this.strong.byteLength;
  }

  /** True if frames [from, from + n) are all held. */
  has(from: number, n: number): boolean {
    return from >= this.start && from + n <= this.end;
  }

  /** Restarts the store at frame `n` (after a discontinuity). */
  reset(n: number): void {
    this.start = n;
    this.end = n;
  }

  /**
   * Appends frames `end` .. `end + n − 1` (n ≤ {@link capacity}) from columns holding them at 0 .. n − 1: as n
   * {@link push}es. Element by element: a run is a frame or two in a live sensor, where views for block copies
   * (eight of them) would cost more than the copies save.
   */
  pushRun(bits: Uint32Array, weak: Uint16Array, energy: Float64Array, strong: Uint32Array, n: number): void {
    const mask = this.mask, end = this.end;
    const sBits = this.bits, sWeak = this.weak, sEnergy = this.energy, sStrong = this.strong;
    for (let f = 0; f < n; f++) {
      const i = (end + f) & mask;
      sStrong[i] = strong[f]!;
      sBits[i] = bits[f]!;
      sWeak[i] = weak[f]!;
      sEnergy[i] = energy[f]!;
    }
    this.end = end + n;
    if (this.end - this.start > this.capacity) this.start = this.end - this.capacity;
  }

  /** Appends frame `end`. */
  push(bits: number, weak: number, energy: number, strong: number): void {
    const i = this.end & this.mask;
    this.strong[i] = strong;
    this.bits[i] = bits;
    this.weak[i] = weak;
    this.energy[i] = energy;
    this.end++;
    if (this.end - this.start > this.capacity) this.start = this.end - this.capacity;
  }
}

/**
 * Streaming fingerprinter over a {@link SampleRing}: after samples are written to the ring, {@link advance}
 * computes every frame that became complete (a target stream), or {@link advanceRange} only the frames asked for
 * (a source stream: its anchors' blocks). Frames depend only on the samples and their absolute indices, never on
 * how they were chunked or which of them were computed.
 */
export class Fingerprinter {
  readonly analyzer: FrameAnalyzer;
  readonly ring: SampleRing;
  readonly store: FrameStore;
  /** The band energies of the frame before {@link nextFrame}. */
  readonly #prev: Float64Array = new Float64Array(BANDS);
  readonly #res = new Uint32Array(3);
  #next = -1;
  /** The grid's first frame (set by {@link restart}): its "previous frame" is silence. */
  #gridStart = 0;
  /** Frames analysed so far (window, FFT, band sums), for benches and tests. */
  analyzed = 0;

  /** Fingerprints `ring` into `store`. */
  constructor(ring: SampleRing, store: FrameStore, analyzer: FrameAnalyzer = new FrameAnalyzer()) {
    this.ring = ring;
    this.store = store;
    this.analyzer = analyzer;
  }

  /** Next frame number to compute. */
  get nextFrame(): number {
    return this.#next;
  }

  /**
   * Restarts the grid at the first frame that starts at or after absolute sample `sample` (stream start or
   * after a reset of the ring). The first frame's "previous frame" is silence.
   */
  restart(sample: number): void {
    const hop = this.analyzer.params.hop;
    this.#next = Math.ceil(sample / hop);
    this.#gridStart = this.#next;
    this.#prev.fill(0);
    this.store.reset(this.#next);
  }

  /** Computes all frames complete in the ring; returns how many. */
  advance(): number {
    const ring = this.ring;
    if (ring.empty) return 0;
    if (this.#next < 0) this.restart(ring.start);
    const { hop, frame } = this.analyzer.params;
    // The ring overran frames not computed yet (a caller wrote more than it holds between two advances): the
    // grid goes on from what is still there rather than reading overwritten samples.
    if (this.#next * hop < ring.start) this.restart(ring.start);
    // Frames complete in the ring, computed in runs (FrameAnalyzer.fingerprintRun).
    const last = Math.floor((ring.end - frame) / hop);
    const count = last - this.#next + 1;
    if (count <= 0) return 0;
    const res = this.#res;
    while (this.#next <= last) {
      this.#next += this.analyzer.fingerprintRun(
        ring,
        this.#next,
        last - this.#next + 1,
        this.#prev,
        res,
        this.store,
      );
    }
    this.analyzed += count;
    return count;
  }

  /**
   * Computes the frames of [from, to) that are complete in the ring, for a reader that needs only some frames of
   * the grid (a source stream: its anchors' blocks), leaving the others out. Frames computed since the last jump
   * stay in the store and a run goes on from them; a frame after them (or before the store's oldest) starts a new
   * run seeded with the band energies of the frame before it, analysed again from the ring (silence at the grid's
   * start), so every frame gets the value {@link advance} would give it. The caller keeps the samples of the seed
   * frame and of the frames after the run's end in the ring until it asks for them: throws otherwise. Call
   * {@link restart} first.
   */
  advanceRange(from: number, to: number): void {
    if (this.#next < 0) throw new Error("Fingerprinter.advanceRange before restart");
    const ring = this.ring;
    const { hop, frame } = this.analyzer.params;
    from = Math.max(from, this.#gridStart);
    const end = ring.end;
    if (from >= to || from * hop + frame > end) return;
    if (from > this.#next || from < this.store.start) this.#seek(from);
    const res = this.#res;
    // Frames of a run start later and later in the ring, so only a run's first can have left it.
    const stop = Math.min(to, Math.floor((end - frame) / hop) + 1);
    while (this.#next < stop) {
      if (this.#next * hop < ring.start) throw new Error(`frame ${this.#next} is no longer in the ring`);
      const n = this.analyzer.fingerprintRun(
        ring,
        this.#next,
        stop - this.#next,
        this.#prev,
        res,
        this.store,
      );
      this.#next += n;
      this.analyzed += n;
    }
  }

  /** Starts a run at frame `n` (see {@link advanceRange}). */
  #seek(n: number): void {
    const ring = this.ring;
    const { hop, frame } = this.analyzer.params;
    if (n > this.#gridStart) {
      const pos = (n - 1) * hop;
      if (pos < ring.start || pos + frame > ring.end) {
        throw new Error(`frame ${n - 1} is no longer in the ring`);
      }
      this.analyzer.analyze(ring, pos, this.#prev);
      this.analyzed++;
    } else this.#prev.fill(0);
    this.#next = n;
    this.store.reset(n);
  }
}
