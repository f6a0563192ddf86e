import { ok as assert, throws } from "node:assert/strict";
import { RealFft } from "../audio/fingerprint/fft.ts";
import { centeredRng } from "./support/rng.ts";

/** Power spectrum by the textbook DFT. */
function naivePower(x: Float64Array): Float64Array {
  const n = x.length;
  const out = new Float64Array(n / 2 + 1);
  for (let k = 0; k <= n / 2; k++) {
    let re = 0, im = 0;
    for (let t = 0; t < n; t++) {
      re += x[t]! * Math.cos((-2 * Math.PI * k * t) / n);
      im += x[t]! * Math.sin((-2 * Math.PI * k * t) / n);
    }
    out[k] = re * re + im * im;
  }
  return out;
}

Deno.test("RealFft.power matches the DFT for every supported shape of size", () => {
  for (const n of [16, 32, 64, 256, 1024]) {
    const rnd = centeredRng(n);
    const x = new Float64Array(n);
    for (let i = 0; i < n; i++) x[i] = Math.sin(i * 0.37) + rnd();
    const got = new Float64Array(n / 2 + 1);
    new RealFft(n).power(x, got);
    const want = naivePower(x);
    for (let k = 0; k <= n / 2; k++) {
      assert(
        Math.abs(got[k]! - want[k]!) <= 1e-9 * (1 + want[k]!),
        `n=${n} bin ${k}: ${got[k]} vs ${want[k]}`,
      );
    }
  }
});

Deno.test("RealFft.power writes only the requested bins", () => {
  const n = 64;
  const x = new Float64Array(n).map((_, i) => Math.cos(i));
  const out = new Float64Array(n / 2 + 1).fill(-1);
  new RealFft(n).power(x, out, 5, 9);
  for (let k = 0; k <= n / 2; k++) {
    if (k >= 5 && k <= 9) assert(out[k]! >= 0);
    else assert(out[k] === -1, `bin ${k} was written`);
  }
});

Deno.test("RealFft.powerWindowed equals power of the windowed samples read across the ring's wrap", () => {
  const n = 256;
  const ring = new Int16Array(1024);
  const rnd = centeredRng(7);
  for (let i = 0; i < ring.length; i++) ring[i] = Math.round(rnd() * 20000);
  const win = new Float64Array(n).map((_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n));
  const start = 1000; // wraps: samples 1000..1023 then 0..231
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) x[i] = ring[(start + i) & 1023]! * win[i]!;
  const fft = new RealFft(n);
  const a = new Float64Array(n / 2 + 1), b = new Float64Array(n / 2 + 1);
  fft.power(x, a);
  fft.powerWindowed(ring, start, 1023, win, b);
  for (let k = 0; k <= n / 2; k++) assert(Math.abs(a[k]! - b[k]!) <= 1e-9 * (1 + a[k]!), `bin ${k}`);
});

Deno.test("RealFft rejects sizes that are not powers of two in range", () => {
  for (const n of [0, 8, 100, 1 << 17, 1.5]) throws(() => new RealFft(n), RangeError);
});
