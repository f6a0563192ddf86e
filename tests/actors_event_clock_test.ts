/**
 * The event clock against a plain model of its rule (the lower median of the recent rows by a full sort, every
 * 8 rows or when a row is past it by more than the window): the same answers and watermark row by row, on rows
 * that step back, jump ahead, repeat and include lone outliers.
 */
import { equal, ok } from "node:assert/strict";
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
  #behind = 0;
  constructor(readonly windowNs: bigint, n: number) {
    this.#recent = new Array<bigint>(n).fill(0n);
  }
  observe(t: bigint): Observed {
    const r = this.#recent;
    r[this.#next] = t;
    this.#next = (this.#next + 1) % r.length;
    if (this.#filled < r.length) this.#filled++;
    if (t <= this.now) {
      // Every 8 rows behind, with the recent rows all in: all of them a window behind is a step of the clock back.
      if (++this.#behind < 8 || this.#filled < r.length) return "behind";
      this.#behind = 0;
      const newest = r.reduce((a, b) => (b > a ? b : a));
      if (newest + this.windowNs >= this.now) return "behind";
      this.now = newest;
      this.#median = undefined;
      return "stepped-back";
    }
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

Deno.test("event clock: a step of the rows' clock back is followed once every recent row is a window behind", () => {
  // NTP steps Pixie's host back 10 minutes: before, every row was "behind" for 10 minutes (no tick, no expiry,
  // and the registry refused every fresh signature as already past its TTL).
  const clock = new EventClock({ windowNs: 30n * S });
  let t = 1_763_900_000n * S;
  for (let i = 0; i < 100; i++, t += S / 50n) clock.observe(t);
  const ahead = clock.nowNs;
  t -= 600n * S;
  const seen: Observed[] = [];
  for (let i = 0; i < 50; i++, t += S / 50n) seen.push(clock.observe(t));
  equal(seen.filter((o) => o === "stepped-back").length, 1);
  equal(seen.indexOf("stepped-back") >= 30, true, "not before every recent row is behind");
  ok(clock.nowNs < ahead - 500n * S && clock.nowNs <= t);
  equal(clock.observe(t), "advanced");
  // Two PEMs whose clocks differ by more than the window, rows interleaved: the clock stays with the later one.
  const two = new EventClock({ windowNs: 30n * S });
  let u = 1_763_900_000n * S;
  const kinds = new Set<Observed>();
  for (let i = 0; i < 2000; i++, u += S / 50n) {
    kinds.add(two.observe(u));
    kinds.add(two.observe(u - 90n * S));
  }
  equal(kinds.has("stepped-back"), false);
  ok(two.nowNs >= u - S);
});
