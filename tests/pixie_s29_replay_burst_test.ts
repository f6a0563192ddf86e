/**
 * Pacing a capture replay (`run --capture`, `demo`) through a burst of rows from the far future (review of session
 * 29). Pacing ignored a lone row far from its neighbours, but two rows in a row a year ahead (a batch of rows with a
 * clock gone wrong, written together) were taken for a break in the capture: the replay slept for the year. Now a
 * run of up to SPIKE_LOOKAHEAD such rows followed by a row near the ones before is a burst, not waited for; a
 * break that every later row shares is still paced.
 *
 * The merge sorts a burst's rows at their own (wrong) times, so a burst from the future ends up last: pacing does
 * not wait for a run far from the rows before it that the capture ends within the lookahead either (session 30:
 * with the merge's burst rule, the first test waited the year again).
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { mergeStreams, replay, replayStream, SPIKE_LOOKAHEAD, timeSpikes } from "../pixie/replay.ts";
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
  // A break that more rows than the lookahead share is paced.
  const brk = [
    row(T0),
    row(T0 + S),
    ...Array.from({ length: SPIKE_LOOKAHEAD + 1 }, (_, i) => row(T0 + 1000n * S + BigInt(i))),
  ];
  deepEqual(timeSpikes(brk.map((r) => ({ row: r })), 600n * S), brk.map(() => false));
  // A run far ahead that the capture ends within the lookahead (where the merge sorts a burst): not waited for.
  const tail = brk.slice(0, SPIKE_LOOKAHEAD + 1).map((r) => ({ row: r }));
  deepEqual(timeSpikes(tail, 600n * S), tail.map((_, i) => i >= 2));
});

Deno.test("replay: a burst a year ahead of two captures, merged as `run --capture` merges them, is not waited for", async () => {
  const a = [0n, 1n, 2n, 3n, 4n].map((k) => ({ ...row(T0 + k * S), query: "a/source" }));
  a.splice(3, 0, { ...row(T0 + YEAR), query: "a/source" }, { ...row(T0 + YEAR + 1n), query: "a/source" });
  const b = [0n, 1n, 2n, 3n, 4n, 5n].map((k) => ({ ...row(T0 + k * S + 500_000_000n), query: "b/relay" }));
  async function* batches(rows: Row[]) {
    yield rows;
  }
  const waits: number[] = [];
  const skipped: bigint[] = [];
  let now = 0;
  let got = 0;
  await replayStream(
    mergeStreams([{ node: "a", batches: batches(a) }, { node: "b", batches: batches(b) }]),
    (_n, rs) => Promise.resolve(void (got += rs.length)),
    {
      speed: 1,
      now: () => now,
      sleep: (ms) => {
        waits.push(ms);
        now += ms;
        return Promise.resolve();
      },
      onSkipped: (r) => void skipped.push(r.time),
    },
  );
  equal(got, a.length + b.length, "every row delivered");
  deepEqual(skipped, [T0 + YEAR, T0 + YEAR + 1n], "the burst is sorted last and taken for spikes");
  ok(waits.every((w) => w <= 1_000 + 1e-6), `paced by the real rows only (before: a year): ${waits}`);
  equal(Math.round(now), 5_500);
});
