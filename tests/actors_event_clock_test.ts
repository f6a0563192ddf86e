/**
 * The event clock against a plain model of its rule (the lower median of the recent rows by a full sort, every
 * 8 rows or when a row is past it by more than the window): the same answers and watermark row by row, on rows
 * that step back, jump ahead, repeat and include lone outliers.
 */
import { equal } from "node:assert/strict";
import { EventClock, type Observed } from "../actors/event_clock.ts";
import { rng } from "./support/rng.ts";

const S = 1_000_000_000n;

/** The rule as first written: a copy of the recent rows sorted with a comparator. */
class ModelClock {
  readonly #recent: bigint[];
  #filled = 0;
  #next = 0;
  now = 0n;
  #median: bigint | undefined;
  #since = 0;
  constructor(readonly windowNs: bigint, n: number) {
    this.#recent = new Array<bigint>(n).fill(0n);
  }
  observe(t: bigint): Observed {
    const r = this.#recent;
    r[this.#next] = t;
    this.#next = (this.#next + 1) % r.length;
    if (this.#filled < r.length) this.#filled++;
    if (t <= this.now) return "behind";
    if (++this.#since >= 8 || this.#median === undefined || t > this.#median + this.windowNs) {
      const v = r.slice(0, this.#filled).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      this.#median = v[(v.length - 1) >> 1]!;
      this.#since = 0;
    }
    if (this.#filled < 3 || t > this.#median + this.windowNs) return this.#filled >= 3 ? "outlier" : "behind";
    this.now = t;
    return "advanced";
  }
}

Deno.test("event clock: the lower median as a full sort gives it, row by row, on disordered rows", () => {
  for (const [seed, recent] of [[1, 31], [2, 3], [3, 8], [4, 31]] as const) {
    const r = rng(seed);
    const clock = new EventClock({ windowNs: 30n * S, recent });
    const model = new ModelClock(30n * S, recent);
    let t = 1_763_900_000n * S;
    for (let i = 0; i < 5000; i++) {
      const u = r();
      if (u < 0.6) t += BigInt(Math.floor(r() * 40_000_000));
      else if (u < 0.8) t -= BigInt(Math.floor(r() * 2_000_000_000));
      else if (u < 0.82) t += 120n * S; // a real jump, or a lone outlier when the next rows step back
      else if (u < 0.84) t -= 120n * S;
      const row = u > 0.97 ? t + 3600n * S : t; // a row from the future
      equal(clock.observe(row), model.observe(row), `seed ${seed}, row ${i}`);
      equal(clock.nowNs, model.now, `seed ${seed}, row ${i}`);
    }
  }
});
