import { ok as assert } from "node:assert/strict";
import { type BandTable, RealFft } from "../audio/fingerprint/fft.ts";
import { FP_PARAMS } from "../audio/fingerprint/fingerprint.ts";
import { centeredRng } from "./support/rng.ts";

/**
 * A ring of Int16 samples: speech-like tones plus noise, full-scale stretches (−32768 and 32767, the ends of the
 * kernel's sample conversion) and digital silence.
 */
function ring(size: number, seed: number): Int16Array {
  const rnd = centeredRng(seed);
  const r = new Int16Array(size);
  for (let i = 0; i < size; i++) {
    const v = 9000 * Math.sin(i * 0.071) + 5000 * Math.sin(i * 0.43 + 1) + 12000 * rnd();
    r[i] = Math.max(-32768, Math.min(32767, Math.round(v)));
  }
  for (let i = 300; i < 420; i++) r[i] = i & 1 ? 32767 : -32768;
  r.fill(-32768, 1500, 1600);
  r.fill(0, 2600, 2800);
  return r;
}

/** The fingerprint's bands' shape: log-spaced over 300–2000 Hz, a bin shared by two neighbours, weights < 1. */
function bandTable(n: number): { table: BandTable; lo: number; hi: number } {
  const df = FP_PARAMS.sampleRate / n;
  const edges = Array.from({ length: 34 }, (_, b) => 300 * Math.pow(2000 / 300, b / 33));
  const bin: number[] = [], weight: number[] = [], start = [0];
  let lo = n, hi = 0;
  for (let b = 0; b < 33; b++) {
    for (let k = 1; k < n >> 1; k++) {
      const overlap = Math.min((k + 0.5) * df, edges[b + 1]!) - Math.max((k - 0.5) * df, edges[b]!);
      if (overlap > 0) {
        bin.push(k);
        weight.push(overlap / df);
        lo = Math.min(lo, k);
        hi = Math.max(hi, k);
      }
    }
    start.push(bin.length);
  }
  return {
    table: { bin: Int32Array.from(bin), weight: Float64Array.from(weight), start: Int32Array.from(start) },
    lo,
    hi,
  };
}

Deno.test("the float64 WebAssembly kernel gives the JS spectrum and the fingerprint-shaped band sums bit for bit on full-scale frames at every hop of a wrapping ring", () => {
  const size = 4096, mask = size - 1;
  const data = ring(size, 5);
  for (const n of [512, 1024, 2048]) {
    const hann = new Float64Array(n).map((_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n));
    const simd = new RealFft(n, { float32: false });
    const js = new RealFft(n, { simd: false });
    assert(simd.simd);
    const { table, lo, hi } = bandTable(n);
    // Every hop of 128 over the ring, the frames past size − n wrap around its end; odd starts too.
    const starts = [...Array.from({ length: size / 128 }, (_, i) => i * 128), 1, 4095, size - n / 2 + 3];
    for (const start of starts) {
      const want = new Float64Array(n / 2 + 1);
      js.powerWindowed(data, start, mask, hann, want);
      const got = new Float64Array(n / 2 + 1);
      simd.powerWindowed(data, start, mask, hann, got);
      for (let k = 0; k <= n / 2; k++) {
        assert(Object.is(got[k], want[k]), `n=${n} start ${start} bin ${k}: ${got[k]} vs ${want[k]}`);
      }
      const bands = simd.bandPowers(data, start, mask, hann, table, lo, hi);
      assert(bands !== undefined, `n=${n}`);
      let total = 0;
      for (let b = 0; b < 33; b++) {
        let e = 0;
        for (let i = table.start[b]!; i < table.start[b + 1]!; i++) {
          e += want[table.bin[i]!]! * table.weight[i]!;
        }
        assert(Object.is(bands[b], e), `n=${n} start ${start} band ${b}: ${bands[b]} vs ${e}`);
        total += e;
      }
      assert(Object.is(bands[33], total), `n=${n} start ${start} total`);
    }
  }
});
