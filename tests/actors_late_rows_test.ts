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
  /** Rows kept of the last batch. */
  lastKept = 0;

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
        this.lastKept = this.late.filter(rows).length;
        kept += this.lastKept;
      }
      this.kept.push(kept);
      this.dropped.push(seen - kept);
    }
  }
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

Deno.test("late rows: a sensor that falls behind drops what is beyond the bound and catches up, again and again", () => {
  const sim = new Sim();
  // 1.5 s behind, steady: the baseline.
  sim.run(30, (l) => l - 1_500);
  equal(sum(sim.dropped), 0);
  // Analysing, the sensor falls behind by 1 s per s; dropping, it reads at 3x real time and catches up by 2 s per s.
  let behind = 0, maxBehind = 0;
  const before = sim.late.dropped;
  sim.run(120, (l) => {
    behind = Math.max(0, behind + (sim.lastKept > 0 ? 100 : -200));
    maxBehind = Math.max(maxBehind, behind);
    return l - 1_500 - behind;
  });
  const dropped = sim.dropped.slice(30);
  ok(sum(dropped) > 0, "nothing dropped");
  // Every 10 s some rows are analysed and some dropped: the sensor stays within a few seconds of its input.
  for (let s = 10; s + 10 <= 120; s += 10) {
    ok(sum(dropped.slice(s, s + 10)) > 0 && sum(sim.kept.slice(30 + s, 40 + s)) > 0, `${s}: ${dropped}`);
  }
  ok(maxBehind <= BOUND_MS + 1_000, `max behind ${maxBehind}`);
  // Catching up each time: never taken for a clock step.
  equal(sim.late.slackMs, 0);
  equal(sim.late.dropped - before, sum(dropped));
});

Deno.test("late rows: a reader that cannot catch up even dropping is let through, not silenced", () => {
  const sim = new Sim();
  sim.run(30, (l) => l - 1_500);
  // Behind by 0.5 s more every second, whatever is dropped (a sensor with almost no CPU).
  let behind = 0;
  sim.run(90, (l) => l - 1_500 - (behind += 50));
  const dropped = sim.dropped.slice(30);
  ok(sum(dropped) > 0);
  // Never more than 3 periods in a row without a row analysed.
  let run = 0, longest = 0;
  for (const k of sim.kept.slice(30)) {
    run = k === 0 ? run + 1 : 0;
    longest = Math.max(longest, run);
  }
  ok(longest <= Math.ceil((3 * PERIOD_MS) / 1000), `${longest} s without a row: ${sim.kept.slice(30)}`);
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
  for (const step of [60_000, 3_600_000, 9_000, -60_000, -3_600_000]) {
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

/**
 * A reader that cannot keep up even dropping (it reads half as fast as its input, late rows or not), over a source
 * that can skip ahead: `at` is the event time (ms) of the freshest row it has read. `saturated` is what its meters
 * say (default: always saturated).
 */
function starvedReader(
  opts: { skip: boolean; seconds: number; saturated?: () => boolean; futureRowAtS?: number },
) {
  let localMs = T0_MS;
  let at = localMs - 1_500;
  const skips: number[] = [];
  let skippedRows = 0;
  const late = new LateRows({
    boundMs: BOUND_MS,
    nowMs: () => localMs,
    skip: opts.skip ? (toNs) => void skips.push(Number(toNs / 1_000_000n)) : undefined,
    onSkipped: (n) => skippedRows += n,
    saturated: opts.saturated,
  });
  const lagS: number[] = [];
  const kept: number[] = [];
  for (let s = 0; s < 30 + opts.seconds; s++) {
    let k = 0;
    for (let b = 0; b < 10; b++) {
      localMs += 100;
      // Keeping up for 30 s, then half speed.
      at += s < 30 ? 100 : 50;
      const to = skips.length ? skips[skips.length - 1]! : -Infinity;
      if (to > at) at = to;
      const rows: Row[] = [];
      for (let i = 9; i >= 0; i--) rows.push(row(at - 20 * i));
      // One row with a garbage `time_` an hour ahead, in one batch.
      if (s === opts.futureRowAtS && b === 0) rows.push(row(at + 3_600_000));
      k += late.filter(rows).length;
    }
    kept.push(k);
    lagS.push((localMs - at) / 1000);
  }
  return { late, skips, skippedRows, lagS: lagS.slice(30), kept: kept.slice(30) };
}

Deno.test("late rows: a reader that cannot catch up even dropping skips its source ahead: the lag stays bounded", () => {
  const r = starvedReader({ skip: true, seconds: 300 });
  ok(r.skips.length >= 5, `skips ${r.skips.length}`);
  // Bounded: the baseline (1.5 s) plus the bound, plus two periods of falling behind before a skip.
  const worst = Math.max(...r.lagS);
  ok(worst <= 1.5 + BOUND_MS / 1000 + (3 * PERIOD_MS) / 1000, `lag up to ${worst} s: ${r.lagS}`);
  // Rows are still analysed all along (between skips), the rest dropped and counted, skipped ones included.
  let run = 0, longest = 0;
  for (const k of r.kept) {
    run = k === 0 ? run + 1 : 0;
    longest = Math.max(longest, run);
  }
  ok(longest <= Math.ceil((3 * PERIOD_MS) / 1000) + 1, `${longest} s without a row: ${r.kept}`);
  ok(sum(r.kept) > 0.3 * 100 * 300, `${sum(r.kept)} rows kept`);
  ok(r.skippedRows > 0);
  ok(r.late.dropped > r.skippedRows);
  equal(r.late.slackMs, 0);
  // Without a source that skips, the same reader falls ever further behind (let through with a slack).
  const no = starvedReader({ skip: false, seconds: 300 });
  ok(Math.max(...no.lagS) > 100, `${Math.max(...no.lagS)}`);
});

Deno.test("late rows: one row from the far future does not hide the rows the skips leave unread", () => {
  const clean = starvedReader({ skip: true, seconds: 300 });
  const r = starvedReader({ skip: true, seconds: 300, futureRowAtS: 10 });
  ok(r.skips.length >= 5, `skips ${r.skips.length}`);
  ok(clean.skippedRows > 0);
  // Counted as without the row (it stood for the freshest row read, and every skip counted from it: none).
  equal(r.skippedRows, clean.skippedRows);
  equal(r.late.dropped, clean.late.dropped);
});

Deno.test("late rows: where a gap began: the earliest row dropped since the reader last asked", () => {
  const sim = new Sim();
  sim.run(3, (l) => l - 1_000);
  equal(sim.late.takeGapFrom(), undefined, "nothing dropped");
  // 9 s behind, beyond the 5 s bound: the first batch of the next second is dropped from its oldest row on.
  const first = T0_MS + 3_000 + 100 - 9_000 - 9 * 20;
  sim.run(1, (l) => l - 9_000);
  ok(sim.dropped[3]! > 0);
  equal(sim.late.takeGapFrom(), BigInt(first) * 1_000_000n);
  equal(sim.late.takeGapFrom(), undefined, "taken");
});

Deno.test("late rows: a reader starved of CPU whose meters say it has time to spare probes with a skip: the lag stays bounded", () => {
  // tests/live_overload_test.ts at nice 10 beside a busy loop: input busy 0.3-0.47, actors idle, the lag growing.
  const r = starvedReader({ skip: true, seconds: 300, saturated: () => false });
  ok(r.skips.length >= 5, `skips ${r.skips.length}`);
  const worst = Math.max(...r.lagS);
  ok(worst <= 1.5 + BOUND_MS / 1000 + (3 * PERIOD_MS) / 1000, `lag up to ${worst} s: ${r.lagS}`);
  // Nothing is dropped as it is read (the sensor is not read as saturated); the skipped rows are counted.
  ok(r.skippedRows > 0);
  equal(r.late.dropped, r.skippedRows);
  ok(sum(r.kept) > 0.3 * 100 * 300, `${sum(r.kept)} rows kept`);
});

Deno.test("late rows: a peer that delivers ever later is probed once a minute at most, and its rows are kept", () => {
  // The source's delay grows by 0.5 s a second after 30 s: a skip brings no fresher rows (they do not exist yet).
  let localMs = T0_MS;
  let skipTo = -Infinity;
  const skips: number[] = [];
  const late = new LateRows({
    boundMs: BOUND_MS,
    nowMs: () => localMs,
    saturated: () => false,
    skip: (toNs) => {
      skipTo = Number(toNs / 1_000_000n);
      skips.push(localMs);
    },
  });
  let read = 0, kept = 0;
  for (let s = 0; s < 330; s++) {
    for (let b = 0; b < 10; b++) {
      localMs += 100;
      const at = localMs - 1_000 - (s < 30 ? 0 : 500 * (s - 30) + 50 * b);
      const rows: Row[] = [];
      for (let i = 9; i >= 0; i--) if (at - 20 * i >= skipTo) rows.push(row(at - 20 * i));
      read += rows.length;
      kept += late.filter(rows).length;
    }
  }
  equal(kept, read, "every row delivered is kept");
  ok(skips.length >= 1 && skips.length <= 5, `${skips.length} probes in 300 s`);
  for (let i = 1; i < skips.length; i++) {
    ok(skips[i]! - skips[i - 1]! >= 30_000, `probes ${skips}`);
  }
});

Deno.test("late rows: a skip that does not lower the lag (a clock step) gives way to the slack", () => {
  let localMs = T0_MS;
  let step = 0;
  const skips: bigint[] = [];
  const late = new LateRows({ boundMs: BOUND_MS, nowMs: () => localMs, skip: (t) => void skips.push(t) });
  const kept: number[] = [];
  for (let s = 0; s < 150; s++) {
    // The rows' clock steps back 12 s: too little to read as a step (late_rows.ts STEP_MS), a skip is tried and
    // changes nothing.
    if (s === 30) step = 12_000;
    let k = 0;
    for (let b = 0; b < 10; b++) {
      localMs += 100;
      const rows: Row[] = [];
      for (let i = 9; i >= 0; i--) rows.push(row(localMs - 1_000 - step - 20 * i));
      k += late.filter(rows).length;
    }
    kept.push(k);
  }
  equal(skips.length, 1, "one skip tried");
  // Rows flow again within five periods, and for good.
  const limit = Math.ceil((5 * PERIOD_MS) / 1000) + 1;
  deepEqual(kept.slice(30 + limit), new Array(120 - limit).fill(100), `${kept.slice(30)}`);
});

/**
 * A reader that pays per row: keeping a row (analysing it) costs 5 ms of local time, dropping one 1 ms, against
 * input of 10 calls' rows per 20 ms of event time (2.5x its keeping speed, half its dropping speed), delivered 1 s
 * after their `time_`. Returns, per call, the runs (ms of event time) of its rows kept and dropped.
 */
function payingReader(seconds: number, opts: { slowerSourceMs?: number } = {}) {
  let localMs = T0_MS;
  let delayMs = 1_000; // how long after its time_ the source delivers a row
  let at = 0;
  const late = new LateRows({
    boundMs: BOUND_MS,
    nowMs: () => localMs,
    // Saturated while rows wait to be read (the input meter of a live source).
    saturated: () => at + 40 <= localMs - delayMs,
  });
  const keptRuns: number[] = [], dropRuns: number[] = [];
  const run = new Array<number>(10).fill(0), keeping = new Array<boolean>(10).fill(true);
  let maxLagMs = 0;
  // Keeping up at first (a baseline of 1 s), then the calls come: the input outgrows the reader.
  for (let b = 0; b < 1_500; b++) {
    localMs += 20;
    late.filter(Array.from({ length: 10 }, (_, i) => row(localMs - 1_000 - 20 + 2 * i)));
  }
  at = localMs - 1_000; // event time of the next batch's first row
  const end = localMs + seconds * 1_000;
  // The source gets slower after a minute: its rows come later than when the baseline was set.
  const slowAt = localMs + 60_000;
  while (localMs < end) {
    if (localMs >= slowAt) delayMs = 1_000 + (opts.slowerSourceMs ?? 0);
    if (at + 20 > localMs - delayMs) localMs = at + 20 + delayMs; // waiting for input
    const kept = late.filter(Array.from({ length: 10 }, (_, i) => row(at + 2 * i))).length;
    localMs += kept * 5 + (10 - kept);
    maxLagMs = Math.max(maxLagMs, localMs - at - delayMs);
    at += 20;
    // The rows kept are the freshest: calls 10 - kept .. 9.
    for (let c = 0; c < 10; c++) {
      const k = c >= 10 - kept;
      if (k !== keeping[c] && run[c]! > 0) {
        (keeping[c] ? keptRuns : dropRuns).push(run[c]!);
        run[c] = 0;
      }
      keeping[c] = k;
      run[c]! += 20;
    }
  }
  return { late, keptRuns: keptRuns.slice(-20), dropRuns: dropRuns.slice(-20), maxLagMs };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

Deno.test("late rows: shedding keeps long stretches of every call (drops until nearly caught up), not a batch here and there", () => {
  const r = payingReader(300);
  const kept = sum(r.keptRuns), dropped = sum(r.dropRuns);
  // The reader keeps what its CPU allows (at these costs about a quarter of the event time), and in runs of
  // seconds, in every call: each run signs and matches.
  ok(kept > 0.2 * (kept + dropped), `kept ${kept} of ${kept + dropped} ms`);
  ok(median(r.keptRuns) >= 2_000, `kept runs ${r.keptRuns.slice(0, 40)}`);
  ok(median(r.dropRuns) >= 2_000, `dropped runs ${r.dropRuns.slice(0, 40)}`);
  // Still within the bound: the lag beyond the source's delay is bounded by the baseline plus the bound.
  ok(r.maxLagMs <= BOUND_MS + 100, `max lag ${r.maxLagMs}`);
  equal(r.late.slackMs, 0);
});

Deno.test("late rows: a drop that caught up with a source now slower than at the start ends there, and runs stay long", () => {
  // The source's rows come 3 s later than when the baseline was set: 3 s of excess the sensor cannot drop away.
  const r = payingReader(300, { slowerSourceMs: 3_000 });
  const kept = sum(r.keptRuns), dropped = sum(r.dropRuns);
  ok(kept > 0.2 * (kept + dropped), `kept ${kept} of ${kept + dropped} ms`);
  ok(median(r.keptRuns) >= 2_000, `kept runs ${r.keptRuns}`);
  // The baseline rose by the source's delay (the bound at most), not further.
  ok(
    r.late.baselineMs >= 1_000 + 2_500 && r.late.baselineMs <= 1_000 + 3_100,
    `baseline ${r.late.baselineMs}`,
  );
  ok(r.maxLagMs <= BOUND_MS + 100, `max lag ${r.maxLagMs}`);
  equal(r.late.slackMs, 0);
});

Deno.test("late rows: a drop that no longer gets the reader fresher ends within ~1 s even while the sensor reads as saturated", () => {
  // A reader starved by its neighbours (its meter reads saturated throughout) whose source got 3 s slower after a
  // backlog started a drop: the rows stay 3 s past the baseline, inside the band between the resume level (1 s)
  // and the bound (5 s), so the drop never reaches the resume level. It must end rather than drop every row
  // until the period checks give way (10-15 s).
  let localMs = T0_MS;
  const late = new LateRows({ boundMs: BOUND_MS, nowMs: () => localMs, saturated: () => true });
  const keptPerS = (seconds: number, lagMs: number): number[] => {
    const out: number[] = [];
    for (let s = 0; s < seconds; s++) {
      let kept = 0;
      for (let k = 0; k < 20; k++) {
        localMs += 50;
        const rows: Row[] = [];
        for (let i = 4; i >= 0; i--) rows.push(row(localMs - lagMs - 10 * i));
        kept += late.filter(rows).length;
      }
      out.push(kept);
    }
    return out;
  };
  keptPerS(20, 0);
  const backlog = keptPerS(2, 7_000);
  equal(backlog[1], 0, "a backlog past the bound is dropped");
  const slower = keptPerS(6, 3_000);
  ok(slower.slice(2).every((k) => k === 100), `rows 3 s late are kept again within 2 s, got ${slower}`);
});

Deno.test("late rows: a step of the rows' clock back never skips a source (that would re-run it past rows not yet made)", () => {
  // Saturated, the shedding path would skip; with time to spare, the probe.
  for (const saturated of [true, false]) {
    let localMs = T0_MS;
    let step = 0;
    // Like a Pixie query re-run from a skip's time: rows before it are never delivered.
    let floorNs = 0n;
    const skips: bigint[] = [];
    const late = new LateRows({
      boundMs: BOUND_MS,
      nowMs: () => localMs,
      saturated: () => saturated,
      skip: (t) => {
        skips.push(t);
        floorNs = t;
      },
    });
    const kept: number[] = [];
    for (let s = 0; s < 150; s++) {
      // The rows' clock steps back a minute (NTP on Pixie's host), within a period: its rows' lag grows two periods
      // running, which looks like a starved reader's to the probe.
      if (s === 32) step = 60_000;
      let k = 0;
      for (let b = 0; b < 10; b++) {
        localMs += 100;
        const rows: Row[] = [];
        for (let i = 9; i >= 0; i--) rows.push(row(localMs - 1_000 - step - 20 * i));
        const delivered = rows.filter((r) => r.time >= floorNs);
        if (delivered.length > 0) k += late.filter(delivered).length;
      }
      kept.push(k);
    }
    deepEqual(skips, [], `skipped (saturated: ${saturated})`);
    // Rows flow again within five periods, and for good.
    const limit = Math.ceil((5 * PERIOD_MS) / 1000) + 1;
    deepEqual(kept.slice(32 + limit), new Array(118 - limit).fill(100), `${saturated}: ${kept.slice(32)}`);
  }
});
