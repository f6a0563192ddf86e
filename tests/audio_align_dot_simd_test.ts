import { ok } from "node:assert/strict";
import { DOT_MAX_OUT, DOT_MAX_SERIES, DOT_MAX_X, dotKernel } from "../audio/align/dot_simd.ts";

Deno.test("dot kernel: every sliding dot product as summed in JS, to rounding", () => {
  const k = dotKernel();
  if (!k) return; // No WebAssembly SIMD here: the callers keep their JS loops.
  let s = 3;
  const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
  const series = Float64Array.from({ length: DOT_MAX_SERIES }, () => 80 * (rnd() - 0.5));
  let worst = 0, checked = 0;
  for (
    const [from, n, count] of [[0, 4, 1], [17, 224, 65], [3, DOT_MAX_X, 9], [1, 8, DOT_MAX_OUT], [
      DOT_MAX_SERIES - 224 - 30,
      224,
      30,
    ]] as const
  ) {
    for (let i = 0; i < n; i++) k.x[i] = 20 * (rnd() - 0.5);
    k.series.set(series);
    k.dot(from, n, count);
    for (let c = 0; c < count; c++) {
      let want = 0, scale = 0;
      for (let i = 0; i < n; i++) {
        want += series[from + c + i]! * k.x[i]!;
        scale += Math.abs(series[from + c + i]! * k.x[i]!);
      }
      worst = Math.max(worst, Math.abs(k.out[c]! - want) / scale);
      checked++;
    }
  }
  ok(checked > 1000 && worst < 1e-14, `${checked} products, worst relative error ${worst}`);
});
