import { equal, throws } from "node:assert/strict";
import { kthSmallest } from "../util/kth_smallest.ts";
import { rng } from "./support/rng.ts";

Deno.test("kthSmallest gives what a sort puts at k: random, few distinct, sorted and reversed arrays", () => {
  const rnd = rng(5);
  for (let t = 0; t < 4000; t++) {
    const n = 1 + Math.floor(rnd() * 200);
    const a = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      a[i] = [rnd() * 100 - 50, Math.floor(rnd() * 3), i, n - i][t % 4]!;
    }
    const sorted = a.slice().sort();
    const k = Math.floor(rnd() * n);
    equal(kthSmallest(a.slice(), k), sorted[k], `n=${n} k=${k} case ${t % 4}`);
  }
});

Deno.test("kthSmallest: the envelope floor's percentile of a level profile, and index bounds", () => {
  // Levels of 2 ms windows: mostly speech around -10 dB, a few quiet windows at -60..-40 dB.
  const a = new Float64Array(1000);
  for (let i = 0; i < a.length; i++) a[i] = i % 25 === 0 ? -60 + (i % 21) : -10 + (i % 7);
  const k = Math.floor(0.05 * (a.length - 1));
  equal(kthSmallest(a.slice(), k), a.slice().sort()[k]);
  throws(() => kthSmallest(new Float64Array(3), 3), RangeError);
  throws(() => kthSmallest(new Float64Array(3), -1), RangeError);
});
