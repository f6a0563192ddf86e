import { deepEqual } from "node:assert/strict";
import { gapHints } from "../audio/align/gap_hints.ts";

const MS = 1_000_000n;
const RATE = 8000;

/** A real-time tap: 20 ms messages captured at the end of their audio, with `lost` message indices missing. */
function tap(count: number, lost: number[], jitterMs: (k: number) => number = () => 0) {
  const times: bigint[] = [];
  const starts: number[] = [];
  let sample = 0;
  for (let k = 0; k < count; k++) {
    if (lost.includes(k)) continue;
    times.push(BigInt((k + 1) * 20) * MS + BigInt(Math.round(jitterMs(k) * 1e6)));
    starts.push(sample);
    sample += 160;
  }
  return { times, starts, end: sample };
}

Deno.test("gapHints: a lost 20 ms message is a 160-sample gap before the next message", () => {
  const t = tap(50, [10, 30, 31]);
  deepEqual(gapHints(t.times, t.starts, t.end, RATE, 0, t.end), [
    { at: 10 * 160, len: 160 },
    { at: 29 * 160, len: 320 },
  ]);
  deepEqual(gapHints(t.times, t.starts, t.end, RATE, 11 * 160, 20 * 160), [], "outside [from, to)");
});

Deno.test("gapHints: capture jitter below a quarter message and a stall beyond 500 ms are not gaps", () => {
  const jittery = tap(50, [], (k) => (k % 3) * 2);
  deepEqual(gapHints(jittery.times, jittery.starts, jittery.end, RATE, 0, jittery.end), []);
  const stalled = tap(50, []);
  for (let k = 20; k < stalled.times.length; k++) stalled.times[k] = stalled.times[k]! + 900n * MS;
  deepEqual(gapHints(stalled.times, stalled.starts, stalled.end, RATE, 0, stalled.end), []);
});
