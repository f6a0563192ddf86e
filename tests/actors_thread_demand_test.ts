/** The main thread's demand for CPU (actors/thread_demand.ts), from run and run-queue times on a synthetic clock. */
import { equal, ok } from "node:assert/strict";
import { procSchedstat, ThreadDemand } from "../actors/thread_demand.ts";

Deno.test("thread demand: running or waiting for a CPU both count; waiting for input does not", () => {
  let nowMs = 0, runNs = 0, waitNs = 0;
  const d = new ThreadDemand(() => ({ runNs, waitNs }), () => nowMs);
  equal(d.fraction(), 0);
  // 3 s with the thread on a CPU 40% of the time and runnable but descheduled (starved) 55%: saturated.
  for (let i = 0; i < 30; i++) {
    nowMs += 100;
    runNs += 40e6;
    waitNs += 55e6;
    d.fraction();
  }
  ok(Math.abs(d.fraction() - 0.95) < 0.05, `${d.fraction()}`);
  // Then 3 s mostly waiting for input (10% running): it falls within a few seconds.
  for (let i = 0; i < 30; i++) {
    nowMs += 100;
    runNs += 10e6;
    d.fraction();
  }
  ok(d.fraction() < 0.2, `${d.fraction()}`);
  // Read at most every 100 ms.
  let reads = 0;
  const e = new ThreadDemand(() => (reads++, { runNs, waitNs }), () => nowMs);
  for (let i = 0; i < 10; i++) e.fraction();
  equal(reads, 1);
});

Deno.test("thread demand: unknown (NaN) where the counters cannot be read", () => {
  equal(new ThreadDemand(() => undefined, () => 0).fraction(), NaN);
  if (Deno.build.os === "linux") ok(procSchedstat() !== undefined);
});
