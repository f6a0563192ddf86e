/**
 * Late rows of a live node (actors/late_rows.ts): rows read more than the bound later than usual are dropped, and
 * no clock offset, step of either clock, or mix of PEM clocks silences the sensor for more than a few periods.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { LateRows, PERIOD_MS } from "../actors/late_rows.ts";
import type { Row } from "../pixie/row.ts";

const BOUND_MS = 5_000;
const T0_MS = 1_780_000_000_000;

function row(timeMs: number): Row {
  return { query: "m/source", node: "n", time: BigInt(Math.round(timeMs)) * 1_000_000n, columns: {} };
}

/**
 * A simulated sensor: every 100 ms of local time it reads a batch of 10 rows. `timeOf(localMs)` gives the `time_`
 * of the freshest row read at that local instant (the rows of a batch are 20 ms apart, older ones first).
 */
class Sim {
  localMs = T0_MS;
  readonly late: LateRows;
  /** Rows kept and dropped per 1 s of simulated time, in order. */
  readonly kept: number[] = [];
  readonly dropped: number[] = [];

  constructor(offsetMs = 0) {
    this.late = new LateRows({ boundMs: BOUND_MS, nowMs: () => this.localMs + offsetMs });
  }

  run(seconds: number, timeOf: (localMs: number) => number | number[]): void {
    for (let s = 0; s < seconds; s++) {
      let kept = 0, seen = 0;
      for (let k = 0; k < 10; k++) {
        this.localMs += 100;
        const at = timeOf(this.localMs);
        const rows: Row[] = [];
        for (const t of Array.isArray(at) ? at : [at]) {
          for (let i = 9; i >= 0; i--) rows.push(row(t - 20 * i));
        }
        seen += rows.length;
        kept += this.late.filter(rows).length;
      }
      this.kept.push(kept);
      this.dropped.push(seen - kept);
    }
  }
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

Deno.test("late rows: rows read in step are kept; a backlog beyond the bound is dropped until read up", () => {
  const sim = new Sim();
  // 1.5 s behind, steady: the baseline.
  sim.run(30, (l) => l - 1_500);
  equal(sum(sim.dropped), 0);
  // The reader falls behind by 1 s per s for 20 s (a CPU-bound sensor), then reads at 3x real time.
  let behind = 0;
  sim.run(20, (l) => l - 1_500 - (behind += 100));
  sim.run(15, (l) => l - 1_500 - (behind = Math.max(0, behind - 200)));
  const dropped = sim.dropped.slice(30);
  // Nothing within the bound (the 5th second drops the rows of its last batches that are more than 5 s behind),
  // everything beyond it until caught up within 5 s.
  deepEqual(dropped.slice(0, 4), [0, 0, 0, 0]);
  ok(dropped[4]! > 0 && dropped[4]! < 50, `${dropped[4]}`);
  ok(sum(dropped) > 0.5 * 100 * 25, `dropped ${dropped}`);
  // While falling further behind it keeps dropping: a backlog is not taken for a clock step.
  deepEqual(dropped.slice(7, 20), new Array(13).fill(100));
  // Caught up: everything kept again.
  deepEqual(sim.kept.slice(-5), [100, 100, 100, 100, 100]);
  equal(sim.late.dropped, sum(sim.dropped));
});

Deno.test("late rows: an offset between the clocks, either way, changes nothing", () => {
  const runs = [0, 3_600_000, -3_600_000, 45_000].map((offset) => {
    const sim = new Sim(offset);
    let behind = 0;
    sim.run(30, (l) => l - 800);
    sim.run(20, (l) => l - 800 - (behind += 100));
    sim.run(15, (l) => l - 800 - (behind = Math.max(0, behind - 200)));
    return sim.dropped;
  });
  for (const r of runs.slice(1)) deepEqual(r, runs[0]);
  ok(sum(runs[0]!) > 0);
});

Deno.test("late rows: a step of either clock back or forth silences the sensor for at most 3 periods", () => {
  const limit = Math.ceil((3 * PERIOD_MS) / 1000) + 1;
  for (const step of [60_000, 3_600_000, 7_000, -60_000, -3_600_000]) {
    // The rows' clock steps back by `step` (or forward, negative) at a steady real-time pace...
    const rowsStep = new Sim();
    rowsStep.run(30, (l) => l - 1_000);
    rowsStep.run(120, (l) => l - 1_000 - step);
    // ... or the local clock steps forward by `step` (e.g. a wall clock given as the local clock).
    let jump = 0;
    const local = new Sim();
    const l0 = local.localMs;
    const sim2 = new LateRows({
      boundMs: BOUND_MS,
      nowMs: () => local.localMs + jump,
    });
    Object.defineProperty(local, "late", { value: sim2 });
    local.run(30, (l) => l - 1_000);
    jump = step;
    local.run(120, (l) => l - 1_000);
    ok(local.localMs > l0);
    for (const sim of [rowsStep, local]) {
      const after = sim.dropped.slice(30);
      const silent = after.filter((d) => d > 0).length;
      ok(silent <= limit, `step ${step}: rows dropped in ${silent} seconds: ${after}`);
      // Once through, the rows flow for good (no oscillation as the window moves on).
      deepEqual(sim.kept.slice(30 + limit), new Array(120 - limit).fill(100), `step ${step}`);
    }
  }
});

Deno.test("late rows: two PEMs whose clocks differ by more than the bound both stay heard", () => {
  const sim = new Sim();
  // Every batch holds rows of both: one PEM's clock is 20 s behind the other's.
  sim.run(240, (l) => [l - 1_000, l - 21_000]);
  const limit = Math.ceil((3 * PERIOD_MS) / 1000) + 1;
  ok(sim.dropped.filter((d) => d > 0).length <= limit, `${sim.dropped}`);
  deepEqual(sim.kept.slice(limit), new Array(240 - limit).fill(200));
});

Deno.test("late rows: one row from the far future does not make the later rows late", () => {
  const sim = new Sim();
  sim.run(10, (l) => l - 1_000);
  let once = true;
  sim.run(1, (l) => once ? (once = false, [l - 1_000, l + 3_600_000]) : l - 1_000);
  sim.run(60, (l) => l - 1_000);
  equal(sum(sim.dropped), 0);
});

Deno.test("late rows: a sensor with time to spare analyses late rows instead of dropping them", () => {
  let saturated = false;
  let localMs = T0_MS;
  const late = new LateRows({ boundMs: BOUND_MS, nowMs: () => localMs, saturated: () => saturated });
  const batch = (behindMs: number) => Array.from({ length: 10 }, (_, i) => row(localMs - behindMs - 20 * i));
  for (let i = 0; i < 20; i++) {
    localMs += 100;
    late.filter(batch(1_000));
  }
  // Rows 30 s late, delivered late by their source while the sensor idles: all kept.
  localMs += 100;
  equal(late.filter(batch(30_000)).length, 10);
  // The same rows while the sensor is saturated: dropped.
  saturated = true;
  localMs += 100;
  equal(late.filter(batch(30_000)).length, 0);
  equal(late.dropped, 10);
  // Once dropping, the actors idle (dropping is cheap): the backlog is still dropped until a batch is in time.
  saturated = false;
  localMs += 100;
  equal(late.filter(batch(29_000)).length, 0);
  localMs += 100;
  equal(late.filter(batch(1_000)).length, 10);
  localMs += 100;
  equal(late.filter(batch(30_000)).length, 10);
  equal(late.dropped, 20);
});
