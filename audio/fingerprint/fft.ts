/**
 * A real-input FFT specialised for one power-of-two size that returns the power spectrum, for the fingerprint's
 * hot loop: precomputed twiddles and bit-reversal, typed arrays, no allocation per call.
 *
 * Why not the fft.js npm package (measured, then dropped from the imports): it computes the full complex spectrum of a real input through its own radix-4 kernel
 * and the fingerprint only needs |X[k]|² for k in a band; packing the N real samples as N/2 complex ones, one
 * complex FFT of N/2 points and a split pass halves the work. Measured in bench/fingerprint_speed.ts.
 *
 * The butterflies and the split, and for windowed frames (the fingerprint's case) the input pass too, run in
 * WebAssembly SIMD (audio/fingerprint/fft_simd.ts), two lanes of float64 doing exactly the JS operations, so results are
 * bit-identical (tests/audio_fft_simd_test.ts checks it); the JS code below is the reference and the fallback.
 * That cut a 1024-point windowed frame from 4.2 µs to 2.1 µs (Xeon, Deno 2.9). {@link RealFft.bandPowers} runs a
 * whole fingerprint frame (input pass, stages, split and the band sums) in one WebAssembly call: 3.05 -> 2.6 µs
 * per frame with the band sums, which had been a JS loop over the kernel's output. That call now runs in float32
 * lanes by default ({@link FFT_F32}, audio/fingerprint/fft_simd32.ts; the same operations in JS where that kernel
 * does not run): 1.89 -> 1.21 µs a frame, not bit for bit with float64, the same matches on the bench.
 * {@link RealFft.bandBits} adds the frame's sub-fingerprint to that call (in fft_simd32.ts): in JS
 * its comparisons mispredicted on speech (~0.2 µs a frame, 2.8% of the live sensor's CPU profile at 500 calls).
 * {@link RealFft.bandBitsRun} runs consecutive frames of the grid in one call (session 15): the span they cover
 * is copied out of the ring once (frames overlap by 7/8) and the previous frame's energies stay in the kernel.
 * It pays with the frames a call has: ~-8% of Fingerprinter.advance at eight frames a call, nothing measurable
 * at one (bench/fingerprint_run_ab.ts), and analyze advances one or two frames at a time (1.5 on average).
 * @module
 */

import { type BandTable, MAX_BANDS, type SimdStages, simdStages } from "./fft_simd.ts";
import { SimdFrame32, SUBFP_BANDS } from "./fft_simd32.ts";

/**
 * Whether {@link RealFft.bandPowers} (the fingerprint's per-frame call) runs in float32 by default: yes, unless
 * `FSMPX_FFT_F32=0` is in the environment (read once, where env access is granted), which keeps the float64 kernel
 * for comparisons. Measured on the bench corpora (session 12): the same matches with the same target instants and
 * BERs (full 3,060/3,060, quick 524/524), one fingerprint bit of one signature changed in each corpus (765 and
 * 131 signatures), the accuracy bench per chain identical (recall, exact, false matches, errors, BER); the frame
 * 1.89 -> 1.21 µs.
 */
export const FFT_F32: boolean = (() => {
  try {
    if (Deno.permissions.querySync({ name: "env", variable: "FSMPX_FFT_F32" }).state !== "granted") {
      return true;
    }
    return Deno.env.get("FSMPX_FFT_F32") !== "0";
  } catch {
    return true;
  }
})();

export type { BandTable } from "./fft_simd.ts";

/** The frames computed by {@link RealFft.bandBitsRun}: frame f's results at index f of each column. */
export interface BitsRun {
  /** Frames computed. */
  frames: number;
  /** Sub-fingerprints, packed weak-bit indices, strong bits (as `subFingerprint` writes them). */
  readonly bits: Uint32Array;
  readonly weak: Uint16Array;
  readonly strong: Uint32Array;
  /** Band energies' total per frame (what bandPowers returns after the bands). */
  readonly total: Float64Array;
}

/** Ring samples [start, start + len) (ring of `mask + 1` samples) into `out`, in two block copies when they wrap. */
export function copyOutOfRing(
  out: Int16Array,
  data: Int16Array,
  start: number,
  mask: number,
  len: number,
): void {
  if (start + len <= mask + 1) out.set(data.subarray(start, start + len));
  else {
    const first = mask + 1 - start;
    out.set(data.subarray(start, mask + 1));
    out.set(data.subarray(0, len - first), first);
  }
}

/** Real FFT of a fixed size N (power of two, 16..65536) producing the power spectrum |X[k]|², k = 0..N/2. */
export class RealFft {
  /** Number of real input samples. */
  readonly size: number;
  /** True if the butterfly stages run in WebAssembly SIMD. */
  get simd(): boolean {
    return this.#simd !== undefined;
  }
  /** True if {@link bandPowers} computes in float32 (the other methods always compute in float64). */
  readonly float32: boolean;
  readonly #half: number;
  readonly #rev: Uint32Array;
  /** Twiddles of the N/2-point complex FFT: cos, sin of -2πk/(N/2), k < N/4. */
  readonly #cos: Float64Array;
  readonly #sin: Float64Array;
  /** Twiddles of the split pass: cos, sin of -2πk/N, k ≤ N/2. */
  readonly #splitCos: Float64Array;
  readonly #splitSin: Float64Array;
  readonly #re: Float64Array;
  readonly #im: Float64Array;
  /** The butterfly stages in WebAssembly SIMD (bit-identical), when available; `#re`, `#im` are its memory. */
  readonly #simd: SimdStages | undefined;

  /**
   * Prepares tables for `size` real points. `simd: false` keeps the butterfly stages in JS (the reference the
   * WebAssembly stages are checked against); by default they run in WebAssembly SIMD where available.
   */
  constructor(size: number, opts: { simd?: boolean; float32?: boolean } = {}) {
    if (!Number.isInteger(size) || size < 16 || size > 65536 || (size & (size - 1)) !== 0) {
      throw new RangeError(`RealFft: size must be a power of two in 16..65536, got ${size}`);
    }
    this.size = size;
    this.float32 = opts.float32 ?? FFT_F32;
    const half = size >> 1;
    this.#half = half;
    const bits = Math.log2(half);
    this.#rev = new Uint32Array(half);
    for (let i = 0; i < half; i++) {
      let r = 0;
      for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
      this.#rev[i] = r;
    }
    this.#cos = new Float64Array(half >> 1);
    this.#sin = new Float64Array(half >> 1);
    for (let k = 0; k < half >> 1; k++) {
      this.#cos[k] = Math.cos((-2 * Math.PI * k) / half);
      this.#sin[k] = Math.sin((-2 * Math.PI * k) / half);
    }
    this.#splitCos = new Float64Array(half + 1);
    this.#splitSin = new Float64Array(half + 1);
    for (let k = 0; k <= half; k++) {
      this.#splitCos[k] = Math.cos((-2 * Math.PI * k) / size);
      this.#splitSin[k] = Math.sin((-2 * Math.PI * k) / size);
    }
    this.#simd = half >= 8 && opts.simd !== false
      ? simdStages(half, this.#cos, this.#sin, this.#rev, this.#splitCos, this.#splitSin)
      : undefined;
    this.#re = this.#simd ? this.#simd.re : new Float64Array(half);
    this.#im = this.#simd ? this.#simd.im : new Float64Array(half);
  }

  /**
   * Power spectrum of `input[0..size)` into `out[0..size/2]` (|X[k]|², unnormalised). Only bins
   * `[fromBin, toBin]` are written, which is all the fingerprint reads.
   */
  power(input: Float64Array, out: Float64Array, fromBin = 0, toBin = this.size >> 1): void {
    const half = this.#half;
    const rev = this.#rev;
    // Even samples as the real part and odd ones as the imaginary part, stored bit-reversed, and the first
    // two radix-2 stages (twiddles 1 and -i) done on the way in as one radix-4 pass.
    for (let i = 0; i < half; i += 4) {
      const a = rev[i]! << 1;
      const b = rev[i + 1]! << 1;
      const c = rev[i + 2]! << 1;
      const d = rev[i + 3]! << 1;
      const ar = input[a]!, ai = input[a + 1]!;
      const br = input[b]!, bi = input[b + 1]!;
      const cr = input[c]!, ci = input[c + 1]!;
      const dr = input[d]!, di = input[d + 1]!;
      this.#radix4(i, ar, ai, br, bi, cr, ci, dr, di);
    }
    this.#finish(out, fromBin, toBin);
  }

  /**
   * Like {@link power} for `window[k] · data[(start + k) & mask]`, k < size: the window is applied while loading,
   * so a frame is read straight from a ring of Int16 samples without a copy.
   */
  powerWindowed(
    data: Int16Array,
    start: number,
    mask: number,
    window: Float64Array,
    out: Float64Array,
    fromBin = 0,
    toBin = this.size >> 1,
  ): void {
    const half = this.#half;
    const rev = this.#rev;
    const simd = this.#simd;
    if (simd) {
      this.#simdInput(simd, data, start, mask, window);
      this.#finish(out, fromBin, toBin);
      return;
    }
    if (start + this.size <= mask + 1) {
      // The frame does not wrap around the ring: read it as a plain view.
      const frame = data.subarray(start, start + this.size);
      for (let i = 0; i < half; i += 4) {
        const a = rev[i]! << 1;
        const b = rev[i + 1]! << 1;
        const c = rev[i + 2]! << 1;
        const d = rev[i + 3]! << 1;
        const ar = frame[a]! * window[a]!, ai = frame[a + 1]! * window[a + 1]!;
        const br = frame[b]! * window[b]!, bi = frame[b + 1]! * window[b + 1]!;
        const cr = frame[c]! * window[c]!, ci = frame[c + 1]! * window[c + 1]!;
        const dr = frame[d]! * window[d]!, di = frame[d + 1]! * window[d + 1]!;
        this.#radix4(i, ar, ai, br, bi, cr, ci, dr, di);
      }
      this.#finish(out, fromBin, toBin);
      return;
    }
    for (let i = 0; i < half; i += 4) {
      const a = rev[i]! << 1;
      const b = rev[i + 1]! << 1;
      const c = rev[i + 2]! << 1;
      const d = rev[i + 3]! << 1;
      const ar = data[(start + a) & mask]! * window[a]!, ai = data[(start + a + 1) & mask]! * window[a + 1]!;
      const br = data[(start + b) & mask]! * window[b]!, bi = data[(start + b + 1) & mask]! * window[b + 1]!;
      const cr = data[(start + c) & mask]! * window[c]!, ci = data[(start + c + 1) & mask]! * window[c + 1]!;
      const dr = data[(start + d) & mask]! * window[d]!, di = data[(start + d + 1) & mask]! * window[d + 1]!;
      this.#radix4(i, ar, ai, br, bi, cr, ci, dr, di);
    }
    this.#finish(out, fromBin, toBin);
  }

  /**
   * {@link powerWindowed} without copying the bins out of the WebAssembly kernel: returns the array that holds
   * bins `[fromBin, toBin]` (the kernel's output where WebAssembly SIMD runs, else `out`), valid until the next
   * transform of this size by any RealFft. The same values as powerWindowed writes into `out`.
   */
  powerWindowedView(
    data: Int16Array,
    start: number,
    mask: number,
    window: Float64Array,
    out: Float64Array,
    fromBin = 0,
    toBin = this.size >> 1,
  ): Float64Array {
    const simd = this.#simd;
    if (!simd) {
      this.powerWindowed(data, start, mask, window, out, fromBin, toBin);
      return out;
    }
    this.#simdInput(simd, data, start, mask, window);
    simd.run();
    const half = this.#half, so = simd.out;
    const lo = fromBin < 0 ? 0 : fromBin;
    const hi = toBin > half ? half : toBin;
    // As #split, but the bins left to JS go to the kernel's output too.
    const a = lo < 1 ? 1 : lo, b = hi > half - 1 ? half - 1 : hi;
    const pairs = b >= a ? (b - a + 1) >> 1 : 0;
    if (lo < a) this.#splitRange(so, lo, hi < a - 1 ? hi : a - 1);
    if (pairs > 0) simd.split(a, pairs);
    if (a + 2 * pairs <= hi) this.#splitRange(so, a + 2 * pairs, hi);
    return so;
  }

  /**
   * Band energies of the windowed frame `window[k] · data[(start + k) & mask]` (as {@link powerWindowed}):
   * band b = Σ |X[bin[i]]|² · weight[i] over its entries in table order, from 0, and after the last band their
   * running total, in a whole-frame WebAssembly call. Returns the kernel's array holding them (valid until the
   * next transform of this size), or undefined where that kernel is not available or the table does not fit it
   * (the caller then sums bands itself over {@link powerWindowedView}: the same values).
   * `fromBin`..`toBin` must cover every bin of the table. With {@link float32}, the transform runs in float32
   * (the float32 kernel, else the same operations in JS) and this always returns the band energies.
   */
  bandPowers(
    data: Int16Array,
    start: number,
    mask: number,
    window: Float64Array,
    table: BandTable,
    fromBin: number,
    toBin: number,
  ): Float64Array | undefined {
    if (this.float32) return this.#bandPowers32(data, start, mask, window, table, fromBin, toBin);
    const simd = this.#simd;
    if (!simd) return undefined;
    if (table !== this.#fitTable) {
      this.#fitTable = table;
      this.#fitOk = simd.fits(table);
    }
    const half = this.#half;
    // Pairs of bins from fromBin; a spare bin past toBin is computed and not read.
    const pairs = (toBin - fromBin + 2) >> 1;
    if (!this.#fitOk || fromBin < 1 || toBin < fromBin || fromBin + 2 * pairs > half) return undefined;
    this.#copyFrame(simd.samples, data, start, mask);
    simd.frame(window, fromBin, pairs, table);
    return simd.bandOut;
  }

  /** {@link bandPowers} in float32: the float32 kernel where it runs and takes the table, else {@link #js32}. */
  #bandPowers32(
    data: Int16Array,
    start: number,
    mask: number,
    window: Float64Array,
    table: BandTable,
    fromBin: number,
    toBin: number,
  ): Float64Array {
    const quads = (toBin - fromBin + 4) >> 2;
    const k = this.#framed32(data, start, mask, table, fromBin, quads);
    if (!k) return this.#js32(data, start, mask, window, table);
    k.frame(window, fromBin, quads, table);
    return k.bandOut;
  }

  /**
   * {@link bandPowers} in float32 and the frame's sub-fingerprint in the same WebAssembly call, where the float32
   * kernel runs: `prev` holds the previous frame's 33 band energies and gets this frame's; `result` gets bits,
   * packed weak-bit indices and strong bits, all as fingerprint.ts's `subFingerprint(this frame's energies, prev,
   * result, …, strongAlpha)` would. Returns the band energies and their total as bandPowers, or undefined
   * (nothing written) where that kernel does not run, the table has not 33 bands, or {@link float32} is off.
   */
  bandBits(
    data: Int16Array,
    start: number,
    mask: number,
    window: Float64Array,
    table: BandTable,
    fromBin: number,
    toBin: number,
    prev: Float64Array,
    result: Uint32Array,
    strongAlpha: number,
  ): Float64Array | undefined {
    if (!this.float32 || table.start.length - 1 !== SUBFP_BANDS) return undefined;
    const quads = (toBin - fromBin + 4) >> 2;
    const k = this.#framed32(data, start, mask, table, fromBin, quads);
    if (!k) return undefined;
    k.prevBands.set(prev);
    k.frameBits(window, fromBin, quads, table, strongAlpha);
    prev.set(k.prevBands);
    const bits = k.bits;
    result[0] = bits[0]!;
    result[1] = bits[1]!;
    result[2] = bits[2]!;
    return k.bandOut;
  }

  /**
   * {@link bandBits} for a run of frames `hop` samples apart, the first at `start`, in one WebAssembly call: the
   * first `frames` of them (at most `count`; fewer where the kernel's room or the ring's size end the run) each
   * over the one before (over `prev` for the first), `prev` left with the last one's energies. Returns the
   * kernel's columns of the frames' bits, weak indices, strong bits and band totals (valid until its next call),
   * or undefined (nothing written) where {@link bandBits} would. The span of the run is copied out of the ring
   * once: consecutive frames overlap (by seven eighths at the fingerprint's hop).
   */
  bandBitsRun(
    data: Int16Array,
    start: number,
    mask: number,
    hop: number,
    count: number,
    window: Float64Array,
    table: BandTable,
    fromBin: number,
    toBin: number,
    prev: Float64Array,
    strongAlpha: number,
  ): BitsRun | undefined {
    if (!this.float32 || table.start.length - 1 !== SUBFP_BANDS) return undefined;
    const quads = (toBin - fromBin + 4) >> 2;
    const k = this.#kernel32(table, fromBin, quads);
    if (!k) return undefined;
    const run = this.#run ??= {
      frames: 0,
      bits: k.runBits,
      weak: k.runWeak,
      strong: k.runStrong,
      total: k.runTotal,
    };
    if (hop !== this.#roomHop || mask !== this.#roomMask) {
      // The kernel's room, and a span no longer than the ring (copied in at most two pieces).
      const ringRoom = Math.floor((mask + 1 - this.size) / hop) + 1;
      const room = k.maxRun(hop);
      this.#room = room < ringRoom ? room : ringRoom;
      this.#roomHop = hop;
      this.#roomMask = mask;
    }
    const n = count < this.#room ? count : this.#room;
    if (n < 1) return undefined;
    const len = (n - 1) * hop + this.size;
    copyOutOfRing(k.span, data, start, mask, len);
    k.prevBands.set(prev);
    k.frameBitsRun(window, fromBin, quads, table, strongAlpha, n, hop);
    prev.set(k.prevBands);
    run.frames = n;
    return run;
  }

  /** {@link bandBitsRun}'s result (the kernel's columns), made on first use. */
  #run: BitsRun | undefined;
  /** Frames a run takes at most for the last hop and ring mask given (see {@link bandBitsRun}). */
  #room = 0;
  #roomHop = 0;
  #roomMask = -1;

  /** {@link #kernel32} with the frame at `start` copied into its samples, or null (nothing copied). */
  #framed32(
    data: Int16Array,
    start: number,
    mask: number,
    table: BandTable,
    fromBin: number,
    quads: number,
  ): SimdFrame32 | null {
    const k = this.#kernel32(table, fromBin, quads);
    if (k) this.#copyFrame(k.samples, data, start, mask);
    return k;
  }

  /** The float32 kernel (made on first use) if it runs here and takes `table` for these bins, else null. */
  #kernel32(table: BandTable, fromBin: number, quads: number): SimdFrame32 | null {
    if (this.#f32 === undefined) {
      try {
        this.#f32 = this.#simd
          ? new SimdFrame32(this.#half, this.#cos, this.#sin, this.#rev, this.#splitCos, this.#splitSin)
          : null;
      } catch {
        this.#f32 = null;
      }
    }
    const k = this.#f32;
    if (table !== this.#fitTable) {
      this.#fitTable = table;
      this.#fitOk = k !== null && k.fits(table, fromBin, quads);
    }
    return this.#fitOk ? k : null;
  }

  /** The float32 kernel (null: not available here, or not wanted: `simd: false`), made on first use. */
  #f32: SimdFrame32 | null | undefined;
  #re32: Float32Array | undefined;
  #im32: Float32Array | undefined;
  #bands32: Float64Array | undefined;

  /**
   * The float32 kernel's band energies computed in JS, bit for bit: the input pass, the stages and the split of
   * the float64 path with every operation rounded to float32 (Math.fround of the float64 sum or product of two
   * float32 values is the float32 operation), then the band sums in float64. For where that kernel does not run.
   */
  #js32(data: Int16Array, start: number, mask: number, window: Float64Array, table: BandTable): Float64Array {
    const f = Math.fround;
    const half = this.#half, rev = this.#rev, cosT = this.#cos, sinT = this.#sin;
    const re = this.#re32 ??= new Float32Array(half);
    const im = this.#im32 ??= new Float32Array(half);
    const x = (k: number) => f(data[(start + k) & mask]! * f(window[k]!));
    for (let i = 0; i < half; i += 4) {
      const a = rev[i]! << 1, b = rev[i + 1]! << 1, c = rev[i + 2]! << 1, d = rev[i + 3]! << 1;
      const ar = x(a), ai = x(a + 1), br = x(b), bi = x(b + 1);
      const cr = x(c), ci = x(c + 1), dr = x(d), di = x(d + 1);
      const s0r = f(ar + br), s0i = f(ai + bi), d0r = f(ar - br), d0i = f(ai - bi);
      const s1r = f(cr + dr), s1i = f(ci + di), d1r = f(cr - dr), d1i = f(ci - di);
      re[i] = s0r + s1r;
      im[i] = s0i + s1i;
      re[i + 2] = s0r - s1r;
      im[i + 2] = s0i - s1i;
      re[i + 1] = d0r + d1i;
      im[i + 1] = d0i - d1r;
      re[i + 3] = d0r - d1i;
      im[i + 3] = d0i + d1r;
    }
    // Stores into the Float32Arrays round as f() does.
    let len = 8;
    for (; len * 2 <= half; len <<= 2) {
      const q = len >> 1, step1 = half / len, step2 = step1 >> 1;
      for (let j = 0; j < q; j++) {
        const w1r = f(cosT[j * step1]!), w1i = f(sinT[j * step1]!);
        const w2r = f(cosT[j * step2]!), w2i = f(sinT[j * step2]!);
        for (let p0 = j; p0 < half; p0 += len << 1) {
          const p1 = p0 + q, p2 = p1 + q, p3 = p2 + q;
          const ar = re[p0]!, ai = im[p0]!, cr = re[p2]!, ci = im[p2]!;
          const br = f(f(re[p1]! * w1r) - f(im[p1]! * w1i)), bi = f(f(re[p1]! * w1i) + f(im[p1]! * w1r));
          const dr = f(f(re[p3]! * w1r) - f(im[p3]! * w1i)), di = f(f(re[p3]! * w1i) + f(im[p3]! * w1r));
          const a2r = f(ar + br), a2i = f(ai + bi), b2r = f(ar - br), b2i = f(ai - bi);
          const c0r = f(cr + dr), c0i = f(ci + di), e0r = f(cr - dr), e0i = f(ci - di);
          const c2r = f(f(c0r * w2r) - f(c0i * w2i)), c2i = f(f(c0r * w2i) + f(c0i * w2r));
          const d2r = f(f(e0r * w2r) - f(e0i * w2i)), d2i = f(f(e0r * w2i) + f(e0i * w2r));
          re[p0] = a2r + c2r;
          im[p0] = a2i + c2i;
          re[p2] = a2r - c2r;
          im[p2] = a2i - c2i;
          re[p1] = b2r + d2i;
          im[p1] = b2i - d2r;
          re[p3] = b2r - d2i;
          im[p3] = b2i + d2r;
        }
      }
    }
    for (; len <= half; len <<= 1) {
      const h = len >> 1, step = half / len;
      for (let s = 0; s < half; s += len) {
        for (let j = 0; j < h; j++) {
          const wr = f(cosT[j * step]!), wi = f(sinT[j * step]!);
          const p = s + j, q = p + h;
          const xr = f(f(re[q]! * wr) - f(im[q]! * wi)), xi = f(f(re[q]! * wi) + f(im[q]! * wr));
          const pr = re[p]!, pi = im[p]!;
          re[p] = pr + xr;
          im[p] = pi + xi;
          re[q] = pr - xr;
          im[q] = pi - xi;
        }
      }
    }
    const sc = this.#splitCos, ss = this.#splitSin;
    const power = (k: number) => {
      const k1 = k === half ? 0 : k, k2 = k === 0 ? 0 : half - k;
      const zr = re[k1]!, zi = im[k1]!, yr = re[k2]!, yi = -im[k2]!;
      const er = f(0.5 * f(zr + yr)), ei = f(0.5 * f(zi + yi));
      const or = f(0.5 * f(zr - yr)), oi = f(0.5 * f(zi - yi));
      const c = f(sc[k]!), s = f(ss[k]!);
      const xr = f(er + f(f(oi * c) + f(or * s))), xi = f(ei + f(f(oi * s) - f(or * c)));
      return f(f(xr * xr) + f(xi * xi));
    };
    const nb = table.start.length - 1;
    const out = this.#bands32 ??= new Float64Array(MAX_BANDS + 1);
    const res = out.length > nb ? out : (this.#bands32 = new Float64Array(nb + 1));
    let total = 0;
    for (let b = 0; b < nb; b++) {
      let e = 0;
      for (let i = table.start[b]!; i < table.start[b + 1]!; i++) {
        e += power(table.bin[i]!) * table.weight[i]!;
      }
      res[b] = e;
      total += e;
    }
    res[nb] = total;
    return res;
  }

  /** The band table last checked by {@link bandPowers}, and whether the kernel takes it. */
  #fitTable: BandTable | undefined;
  #fitOk = false;

  /** The frame's samples out of the ring into the kernel. */
  #copyFrame(samples: Int16Array, data: Int16Array, start: number, mask: number): void {
    copyOutOfRing(samples, data, start, mask, this.size);
  }

  /**
   * Two block copies of the frame out of the ring, then the input pass in WebAssembly (the same products and
   * sums as the JS input pass of {@link powerWindowed}).
   */
  #simdInput(simd: SimdStages, data: Int16Array, start: number, mask: number, window: Float64Array): void {
    this.#copyFrame(simd.samples, data, start, mask);
    simd.input(window);
  }

  #radix4(
    i: number,
    ar: number,
    ai: number,
    br: number,
    bi: number,
    cr: number,
    ci: number,
    dr: number,
    di: number,
  ): void {
    const re = this.#re;
    const im = this.#im;
    const s0r = ar + br, s0i = ai + bi, d0r = ar - br, d0i = ai - bi;
    const s1r = cr + dr, s1i = ci + di, d1r = cr - dr, d1i = ci - di;
    re[i] = s0r + s1r;
    im[i] = s0i + s1i;
    re[i + 2] = s0r - s1r;
    im[i + 2] = s0i - s1i;
    // d0 + (-i)·d1 and d0 − (-i)·d1
    re[i + 1] = d0r + d1i;
    im[i + 1] = d0i - d1r;
    re[i + 3] = d0r - d1i;
    im[i + 3] = d0i + d1r;
  }

  #finish(out: Float64Array, fromBin: number, toBin: number): void {
    if (this.#simd) this.#simd.run();
    else this.#stages();
    this.#split(out, fromBin, toBin);
  }

  /** The butterfly stages after the radix-4 input pass, in JS (see {@link SimdStages} for the fast path). */
  #stages(): void {
    const half = this.#half;
    const re = this.#re;
    const im = this.#im;
    const cosT = this.#cos;
    const sinT = this.#sin;
    let len = 8;
    // Pairs of radix-2 stages fused (radix-2²): half the passes over memory.
    for (; len * 2 <= half; len <<= 2) {
      const q = len >> 1;
      const step1 = half / len; // W_{2q}^j
      const step2 = step1 >> 1; // W_{4q}^j
      const big = len << 1;
      // Twiddle-outer: each butterfly is computed exactly as before (they are independent), but the twiddles
      // are loaded once per j instead of once per butterfly, which pays in the early stages (small q).
      for (let j = 0; j < q; j++) {
        const w1r = cosT[j * step1]!, w1i = sinT[j * step1]!;
        const w2r = cosT[j * step2]!, w2i = sinT[j * step2]!;
        for (let start = j; start < half; start += big) {
          const p0 = start, p1 = p0 + q, p2 = p1 + q, p3 = p2 + q;
          const ar = re[p0]!, ai = im[p0]!;
          let br = re[p1]!, bi = im[p1]!;
          const cr = re[p2]!, ci = im[p2]!;
          let dr = re[p3]!, di = im[p3]!;
          let t = br * w1r - bi * w1i;
          bi = br * w1i + bi * w1r;
          br = t;
          t = dr * w1r - di * w1i;
          di = dr * w1i + di * w1r;
          dr = t;
          const a2r = ar + br, a2i = ai + bi, b2r = ar - br, b2i = ai - bi;
          let c2r = cr + dr, c2i = ci + di;
          let d2r = cr - dr, d2i = ci - di;
          t = c2r * w2r - c2i * w2i;
          c2i = c2r * w2i + c2i * w2r;
          c2r = t;
          // W_{4q}^{j+q} = W_{4q}^j · (−i)
          t = d2r * w2r - d2i * w2i;
          d2i = d2r * w2i + d2i * w2r;
          d2r = t;
          re[p0] = a2r + c2r;
          im[p0] = a2i + c2i;
          re[p2] = a2r - c2r;
          im[p2] = a2i - c2i;
          re[p1] = b2r + d2i;
          im[p1] = b2i - d2r;
          re[p3] = b2r - d2i;
          im[p3] = b2i + d2r;
        }
      }
    }
    for (; len <= half; len <<= 1) {
      const h = len >> 1;
      const step = half / len;
      for (let start = 0; start < half; start += len) {
        for (let j = 0, t = 0; j < h; j++, t += step) {
          const wr = cosT[t]!, wi = sinT[t]!;
          const p = start + j, q = p + h;
          const qr = re[q]!, qi = im[q]!;
          const xr = qr * wr - qi * wi;
          const xi = qr * wi + qi * wr;
          const pr = re[p]!, pi = im[p]!;
          re[p] = pr + xr;
          im[p] = pi + xi;
          re[q] = pr - xr;
          im[q] = pi - xi;
        }
      }
    }
  }

  #split(out: Float64Array, fromBin: number, toBin: number): void {
    const half = this.#half;
    const lo = fromBin < 0 ? 0 : fromBin;
    const hi = toBin > half ? half : toBin;
    const simd = this.#simd;
    if (!simd) {
      this.#splitRange(out, lo, hi);
      return;
    }
    // Pairs of interior bins in WebAssembly; bin 0, bin half and an odd one left over here.
    const a = lo < 1 ? 1 : lo, b = hi > half - 1 ? half - 1 : hi;
    const pairs = b >= a ? (b - a + 1) >> 1 : 0;
    if (lo < a) this.#splitRange(out, lo, hi < a - 1 ? hi : a - 1);
    if (pairs > 0) {
      simd.split(a, pairs);
      const so = simd.out;
      for (let k = a; k < a + 2 * pairs; k++) out[k] = so[k]!;
    }
    if (a + 2 * pairs <= hi) this.#splitRange(out, a + 2 * pairs, hi);
  }

  #splitRange(out: Float64Array, lo: number, hi: number): void {
    const half = this.#half;
    const re = this.#re;
    const im = this.#im;
    // Split: X[k] = (Z[k] + conj Z[M−k])/2 − i·W^k·(Z[k] − conj Z[M−k])/2, with Z[M] = Z[0].
    const sc = this.#splitCos;
    const ss = this.#splitSin;
    for (let k = lo; k <= hi; k++) {
      const k1 = k === half ? 0 : k;
      const k2 = k === 0 ? 0 : half - k;
      const zr = re[k1]!, zi = im[k1]!;
      const yr = re[k2]!, yi = -im[k2]!;
      const er = 0.5 * (zr + yr), ei = 0.5 * (zi + yi);
      const orr = 0.5 * (zr - yr), oi = 0.5 * (zi - yi);
      // −i·(orr + i·oi) = oi − i·orr, times W = (c + i s)
      const c = sc[k]!, s = ss[k]!;
      const tr = oi * c + orr * s;
      const ti = oi * s - orr * c;
      const xr = er + tr, xi = ei + ti;
      out[k] = xr * xr + xi * xi;
    }
  }
}
