import { ok as assert } from "node:assert/strict";
import { RealFft } from "../audio/fft.ts";

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296 - 0.5;
}

Deno.test("the WebAssembly SIMD stages are available here (else RealFft silently runs the slower JS stages)", () => {
  assert(new RealFft(1024).simd);
  assert(!new RealFft(1024, { simd: false }).simd);
});

Deno.test("RealFft with SIMD stages is bit-identical to the JS stages for every size and input scale", () => {
  for (const n of [16, 32, 64, 128, 256, 512, 1024, 2048, 4096]) {
    const rnd = lcg(n);
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
  const n = 1024;
  const ring = new Int16Array(4096);
  const rnd = lcg(3);
  for (let i = 0; i < ring.length; i++) ring[i] = Math.round(rnd() * 30000);
  const win = new Float64Array(n).map((_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n));
  const simd = new RealFft(n);
  const js = new RealFft(n, { simd: false });
  for (const start of [0, 128, 3000, 3968]) {
    const a = new Float64Array(n / 2 + 1);
    const b = new Float64Array(n / 2 + 1);
    simd.powerWindowed(ring, start, 4095, win, a, 38, 256);
    js.powerWindowed(ring, start, 4095, win, b, 38, 256);
    for (let k = 38; k <= 256; k++) assert(Object.is(a[k], b[k]), `start ${start} bin ${k}`);
  }
});
