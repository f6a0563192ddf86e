/**
 * Pacing a capture replay (`run --capture`, `demo`) through a burst of rows from the far future (review of session
 * 29). Pacing ignored a lone row far from its neighbours, but two rows in a row a year ahead (a batch of rows with a
 * clock gone wrong, written together) were taken for a break in the capture: the replay slept for the year. Now a
 * run of up to SPIKE_LOOKAHEAD such rows followed by a row near the ones before is a burst, not waited for; a
 * break that every later row shares is still paced.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { replay, SPIKE_LOOKAHEAD, timeSpikes } from "../pixie/replay.ts";
import type { Row } from "../pixie/row.ts";

const S = 1_000_000_000n;
const T0 = 1_763_900_000n * S;
const YEAR = 365n * 86_400n * S;
const row = (time: bigint): Row => ({ query: "m/source", node: "n", time, columns: {} });

/** Replays `rows` at `speed` with a manual clock: the rows delivered, the waits asked for (ms), the spikes. */
async function paced(rows: Row[], speed = 1) {
  const waits: number[] = [];
  const skipped: bigint[] = [];
  let now = 0;
  const got: Row[] = [];
  await replay([{ node: "n", rows }], (_n, r) => Promise.resolve(void got.push(r)), {
    speed,
    now: () => now,
    sleep: (ms) => {
      waits.push(ms);
      now += ms;
      return Promise.resolve();
    },
    onSkipped: (r) => void skipped.push(r.time),
  });
  return { got, waits, skipped, now };
}

Deno.test("replay: two rows in a row a year ahead are not waited for; the rest is paced", async () => {
  const rows = [0n, 1n, 2n].map((k) => row(T0 + k * S));
  rows.push(row(T0 + YEAR), row(T0 + YEAR + 1n), ...[3n, 4n, 5n].map((k) => row(T0 + k * S)));
  const r = await paced(rows);
  equal(r.got.length, rows.length, "every row delivered");
  deepEqual(r.skipped, [T0 + YEAR, T0 + YEAR + 1n], "both taken for spikes");
  ok(r.waits.every((w) => w <= 1_000 + 1e-6), `paced by the real rows only (before: a year): ${r.waits}`);
  equal(Math.round(r.now), 5_000);
});

Deno.test("replay: a burst as long as the lookahead is a burst; a break every later row shares is paced", () => {
  const burst = (n: number) =>
    [
      row(T0),
      row(T0 + S),
      ...Array.from({ length: n }, (_, i) => row(T0 + YEAR + BigInt(i))),
      row(T0 + 2n * S),
    ].map((r) => ({ row: r }));
  deepEqual(timeSpikes(burst(SPIKE_LOOKAHEAD), 600n * S).filter((x) => x).length, SPIKE_LOOKAHEAD);
  // One more than the lookahead: taken for a break (as before for any run of two or more).
  equal(timeSpikes(burst(SPIKE_LOOKAHEAD + 1), 600n * S)[2], false);
  const brk = [row(T0), row(T0 + S), row(T0 + 1000n * S), row(T0 + 1001n * S), row(T0 + 1002n * S)];
  deepEqual(timeSpikes(brk.map((r) => ({ row: r })), 600n * S), [false, false, false, false, false]);
});
