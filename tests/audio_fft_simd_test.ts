import { ok as assert } from "node:assert/strict";
import { type BandTable, RealFft } from "../audio/fingerprint/fft.ts";
import { centeredRng } from "./support/rng.ts";

Deno.test("the WebAssembly SIMD stages are available here (else RealFft silently runs the slower JS stages)", () => {
  assert(new RealFft(1024).simd);
  assert(!new RealFft(1024, { simd: false }).simd);
});

Deno.test("RealFft with SIMD stages is bit-identical to the JS stages for every size and input scale", () => {
  for (const n of [16, 32, 64, 128, 256, 512, 1024, 2048, 4096]) {
    const rnd = centeredRng(n);
    const simd = new RealFft(n);
    const js = new RealFft(n, { simd: false });
    for (let trial = 0; trial < 20; trial++) {
      const scale = Math.pow(10, (trial % 7) - 2);
      const x = new Float64Array(n);
      for (let i = 0; i < n; i++) x[i] = (Math.sin(i * 0.37 * (trial + 1)) + rnd()) * scale;
      const a = new Float64Array(n / 2 + 1);
      const b = new Float64Array(n / 2 + 1);
      simd.power(x, a);
      js.power(x, b);
      for (let k = 0; k <= n / 2; k++) {
        assert(Object.is(a[k], b[k]), `n=${n} trial ${trial} bin ${k}: ${a[k]} vs ${b[k]}`);
      }
    }
  }
});

Deno.test("RealFft windowed frames from an Int16 ring are bit-identical with SIMD and JS stages", () => {
  const ring = new Int16Array(4096);
  const rnd = centeredRng(3);
  for (let i = 0; i < ring.length; i++) ring[i] = Math.round(rnd() * 60000);
  for (const n of [16, 64, 256, 1024, 2048]) {
    const hann = new Float64Array(n).map((_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n));
    const other = new Float64Array(n).map(() => 0.3 + rnd());
    const simd = new RealFft(n);
    const js = new RealFft(n, { simd: false });
    // Windows alternate (the kernel caches the last one) and frames wrap around the ring or not.
    for (const start of [0, 128, 3000, 4096 - n / 2, 4095]) {
      for (const win of [hann, other, hann]) {
        const a = new Float64Array(n / 2 + 1);
        const b = new Float64Array(n / 2 + 1);
        simd.powerWindowed(ring, start, 4095, win, a);
        js.powerWindowed(ring, start, 4095, win, b);
        for (let k = 0; k <= n / 2; k++) assert(Object.is(a[k], b[k]), `n=${n} start ${start} bin ${k}`);
      }
    }
  }
});

Deno.test("RealFft with SIMD stages writes exactly the requested bins, bit-identical, for any bin range", () => {
  const n = 64;
  const rnd = centeredRng(11);
  const x = new Float64Array(n).map(() => rnd());
  const simd = new RealFft(n);
  const js = new RealFft(n, { simd: false });
  for (
    const [lo, hi] of [[0, 0], [1, 1], [0, 5], [3, 8], [3, 9], [30, 32], [31, 32], [32, 32], [0, 32], [5, 4]]
  ) {
    const a = new Float64Array(n / 2 + 1).fill(-1);
    const b = new Float64Array(n / 2 + 1).fill(-1);
    simd.power(x, a, lo, hi);
    js.power(x, b, lo, hi);
    for (let k = 0; k <= n / 2; k++) {
      assert(Object.is(a[k], b[k]), `[${lo}, ${hi}] bin ${k}: ${a[k]} vs ${b[k]}`);
      assert((k >= lo! && k <= hi!) === (a[k] !== -1), `[${lo}, ${hi}] bin ${k} written: ${a[k]}`);
    }
  }
});

Deno.test("RealFft.powerWindowedView holds the bins powerWindowed writes, bit for bit, for any bin range", () => {
  const ring = new Int16Array(2048);
  const rnd = centeredRng(21);
  for (let i = 0; i < ring.length; i++) ring[i] = Math.round(rnd() * 60000);
  for (const simdOn of [true, false]) {
    const n = 256;
    const win = new Float64Array(n).map((_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n));
    const fft = new RealFft(n, { simd: simdOn });
    for (const start of [0, 1000, 2047 - n / 2]) {
      for (const [lo, hi] of [[0, 128], [1, 127], [5, 40], [5, 41], [0, 0], [128, 128], [127, 128]]) {
        const want = new Float64Array(n / 2 + 1).fill(-1);
        fft.powerWindowed(ring, start, 2047, win, want, lo, hi);
        const scratch = new Float64Array(n / 2 + 1).fill(-1);
        const got = fft.powerWindowedView(ring, start, 2047, win, scratch, lo, hi);
        // Without SIMD the view is the caller's array; with it, the kernel's (the caller's stays untouched).
        assert(simdOn ? got !== scratch && scratch.every((v) => v === -1) : got === scratch);
        for (let k = lo!; k <= hi!; k++) {
          assert(Object.is(got[k], want[k]), `simd ${simdOn} start ${start} [${lo}, ${hi}] bin ${k}`);
        }
      }
    }
  }
});

/** The float64 kernel's bandPowers (the float32 one is the default: tests/audio_fft_f32_test.ts). */
const F64 = { float32: false };

/** Band sums as FrameAnalyzer's JS loop does them: per band from 0 in table order, then the running total. */
function jsBands(spec: Float64Array, t: BandTable): number[] {
  const out: number[] = [];
  let total = 0;
  for (let b = 0; b + 1 < t.start.length; b++) {
    let e = 0;
    for (let i = t.start[b]!; i < t.start[b + 1]!; i++) e += spec[t.bin[i]!]! * t.weight[i]!;
    out.push(e);
    total += e;
  }
  out.push(total);
  return out;
}

Deno.test("RealFft.bandPowers (one WebAssembly call per frame) gives the JS band sums bit for bit", () => {
  const ring = new Int16Array(4096);
  const rnd = centeredRng(31);
  for (let i = 0; i < ring.length; i++) ring[i] = Math.round(rnd() * 60000);
  for (const n of [64, 256, 1024]) {
    const half = n / 2;
    const win = new Float64Array(n).map((_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n));
    // Bands of uneven widths over [lo, hi], a bin shared by two neighbours, weights not 1, an empty band.
    const lo = 3, hi = half - 5;
    const bins: number[] = [], weights: number[] = [], start = [0];
    for (let k = lo, b = 0; k <= hi; b++) {
      const width = 1 + (b % 4) + 3 * (n >> 8);
      for (let j = 0; j < width && k + j <= hi; j++) {
        bins.push(k + j);
        weights.push(0.25 + rnd() * 0.5);
      }
      if (b % 5 === 2) start.push(bins.length); // an empty band
      k += Math.max(1, width - 1); // the last bin of a band opens the next one
      start.push(bins.length);
    }
    const table: BandTable = {
      bin: Int32Array.from(bins),
      weight: Float64Array.from(weights),
      start: Int32Array.from(start),
    };
    const fft = new RealFft(n, { float32: false });
    for (const start0 of [0, 700, 4096 - half]) {
      for (const [from, to] of [[lo, hi], [lo, hi + 1], [lo - 1, hi]]) {
        const got = fft.bandPowers(ring, start0, 4095, win, table, from!, to!);
        assert(got !== undefined, `n=${n} [${from}, ${to}]`);
        const spec = new Float64Array(half + 1);
        new RealFft(n, { simd: false }).powerWindowed(ring, start0, 4095, win, spec);
        const want = jsBands(spec, table);
        for (let b = 0; b < want.length; b++) {
          assert(Object.is(got[b], want[b]), `n=${n} start ${start0} band ${b}: ${got[b]} vs ${want[b]}`);
        }
      }
    }
  }
});

Deno.test("RealFft.bandPowers in float64 declines what its kernel cannot take (the caller sums the bands in JS)", () => {
  const ring = new Int16Array(2048);
  const win = new Float64Array(256).fill(1);
  const one: BandTable = {
    bin: Int32Array.of(5, 6),
    weight: Float64Array.of(1, 1),
    start: Int32Array.of(0, 2),
  };
  assert(new RealFft(256, F64).bandPowers(ring, 0, 2047, win, one, 5, 6) !== undefined);
  assert(
    new RealFft(256, { simd: false, float32: false }).bandPowers(ring, 0, 2047, win, one, 5, 6) === undefined,
  );
  // Bin 0 and the top bin are left to JS; so are too many bands.
  assert(new RealFft(256, F64).bandPowers(ring, 0, 2047, win, one, 0, 6) === undefined);
  assert(new RealFft(256, F64).bandPowers(ring, 0, 2047, win, one, 5, 128) === undefined);
  const many: BandTable = {
    bin: new Int32Array(100).fill(5),
    weight: new Float64Array(100).fill(1),
    start: Int32Array.from({ length: 101 }, (_, i) => i),
  };
  assert(new RealFft(256, F64).bandPowers(ring, 0, 2047, win, many, 5, 6) === undefined);
});
