import { ok } from "node:assert/strict";
import { LEVEL_MAX_WINDOWS, levelKernel } from "../audio/align/level_db_simd.ts";
import { rng } from "./support/rng.ts";

const WINDOW = 16;

/** level_envelope.ts's level of each window of `x`, as its JS computes it. */
function jsLevels(x: Int16Array, n: number): Float64Array {
  const prefix = new Float64Array(n + WINDOW);
  let acc = -0;
  for (let i = 0; i < n + WINDOW - 1; i++) {
    acc += x[i]! * x[i]!;
    prefix[i + 1] = acc;
  }
  return Float64Array.from(
    { length: n },
    (_, i) => 10 * Math.log10((prefix[i + WINDOW]! - prefix[i]!) / WINDOW + 1e-2),
  );
}

/** Windows (from the first sample) whose levels differ from the JS's, compared bit for bit. */
function mismatches(x: Int16Array): number {
  const k = levelKernel()!;
  let bad = 0;
  for (let n = x.length - WINDOW + 1, at = 0; at < n; at += LEVEL_MAX_WINDOWS) {
    const m = Math.min(LEVEL_MAX_WINDOWS, n - at);
    const piece = x.subarray(at, at + m + WINDOW - 1);
    k.samples.set(piece);
    k.levels(m);
    const want = jsLevels(piece, m);
    for (let i = 0; i < m; i++) if (!Object.is(k.out[i], want[i])) bad++;
  }
  return bad;
}

/** Sixteen samples whose squares sum to `s` (greedy; undefined when it does not reach it). */
function windowOf(s: number): number[] | undefined {
  const out: number[] = [];
  let r = s;
  for (let i = 0; i < WINDOW; i++) {
    const v = Math.min(32767, Math.floor(Math.sqrt(r)));
    out.push(i % 2 ? -v : v);
    r -= v * v;
  }
  return r === 0 ? out : undefined;
}

Deno.test("level kernel: every window's level is the JS's to the bit, on audio of any level", () => {
  if (!levelKernel()) return; // no WebAssembly SIMD here: the JS levels stand
  const r = rng(3);
  for (const scale of [0, 1, 3, 40, 700, 8192, 32767]) {
    // Noise with bursts (speech-like level changes), one odd count of windows among them.
    const x = Int16Array.from({ length: 3 * LEVEL_MAX_WINDOWS + 1000 }, (_, i) => {
      const burst = Math.sin(i / 300) > 0.3 ? 1 : 0.05;
      return Math.max(-32768, Math.min(32767, Math.round((r() * 2 - 1) * scale * burst)));
    });
    ok(mismatches(x) === 0, `scale ${scale}`);
  }
});

Deno.test("level kernel: sums of squares near every power of two (fdlibm's |f| < 2^-20 form, both main forms, k = -1, 0, 1)", () => {
  if (!levelKernel()) return;
  const windows: number[] = [];
  // (S / 16 + 0.01) within a few ulps of 2^e and across the reductions' bounds (√2/2, √2 and 1 of the mantissa).
  for (let e = -6; e <= 30; e++) {
    for (const f of [1, Math.SQRT2, Math.SQRT1_2 * 2, 1.5, 1.0000001]) {
      const center = Math.round(16 * (2 ** e * f - 0.01));
      for (let d = -40; d <= 40; d++) {
        const w = center + d >= 0 ? windowOf(center + d) : undefined;
        if (w) windows.push(...w);
      }
    }
  }
  ok(windows.length > 10_000);
  ok(mismatches(Int16Array.from(windows)) === 0);
});
