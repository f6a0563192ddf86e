/**
 * Issue 15 units: the robust event clock, replay pacing with `time_` 0 and lone spikes, the duplicate-row
 * memory's bounds, the stream cap's LRU order, and the bounded `audio_latency_seconds` label sets.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { EventClock } from "../actors/event_clock.ts";
import { DEDUPE_MAX_ROWS, RecentRows } from "../actors/row_dedupe.ts";
import { StreamTable } from "../actors/stream_table.ts";
import { replay, SPIKE_LOOKAHEAD, timeSpikes } from "../pixie/replay.ts";
import type { Row } from "../pixie/row.ts";
import { FsmMetrics } from "../http/metrics.ts";
import type { Match } from "../audio/types.ts";
import { parseMetricsText } from "./support/sensor_process.ts";

const S = 1_000_000_000n;
const T0 = 1_763_900_000n * S;
const row = (time: bigint, query = "m/source"): Row => ({ query, node: "n", time, columns: {} });

Deno.test("event clock: follows rows, ignores one far ahead, follows a real jump once the rows agree", () => {
  const c = new EventClock({ windowNs: 30n * S });
  for (let i = 0; i < 20; i++) c.observe(T0 + BigInt(i) * S / 10n);
  equal(c.nowNs, T0 + 19n * S / 10n);
  equal(c.observe(T0 + 130n * S), "outlier");
  equal(c.nowNs, T0 + 19n * S / 10n);
  equal(c.observe(T0 + 2n * S), "advanced");
  // A capture resumed ten minutes later: after half the recent rows, the clock follows.
  let followed = -1;
  for (let i = 0; i < 40 && followed < 0; i++) {
    if (c.observe(T0 + 600n * S + BigInt(i) * S / 10n) === "advanced") followed = i;
  }
  ok(followed > 0 && followed <= 16, `followed after ${followed} rows`);
  equal(c.outliers, 1 + followed);
});

Deno.test("event clock: a first row from the future is outvoted; live, the wall clock bounds it too", () => {
  const c = new EventClock({ windowNs: 30n * S });
  c.observe(T0 + 3600n * S);
  c.observe(T0);
  c.observe(T0 + S / 10n);
  equal(c.observe(T0 + S / 5n), "advanced");
  equal(c.nowNs, T0 + S / 5n);
  const live = new EventClock({ windowNs: 30n * S, wallNs: () => T0 });
  for (let i = 0; i < 5; i++) live.observe(T0 + 100n * S + BigInt(i));
  equal(live.nowNs, 0n, "rows 100 s ahead of the wall clock never move a live node's clock");
});

Deno.test("replay: a time_ 0 row is not delivered and does not break pacing; a lone spike is not waited for", async () => {
  const rows = [
    row(0n),
    ...Array.from({ length: 10 }, (_, i) => row(T0 + BigInt(i) * S)),
    row(T0 + 5000n * S),
  ];
  const waits: number[] = [];
  let now = 0;
  const skipped: string[] = [];
  const got: Row[] = [];
  const n = await replay([{ node: "n", rows }], (_n, r) => Promise.resolve(void got.push(r)), {
    speed: 2,
    now: () => now,
    sleep: (ms) => {
      waits.push(ms);
      now += ms;
      return Promise.resolve();
    },
    onSkipped: (r, reason) => void skipped.push(`${r.time === 0n ? "zero" : "spike"}:${reason}`),
  });
  equal(n, 11);
  deepEqual(skipped, ["zero:no_time", "spike:time_spike"]);
  equal(got.at(-1)!.time, T0 + 5000n * S, "the spike is still delivered (the node's clock ignores it)");
  ok(waits.every((w) => w <= 500 + 1e-6), `paced by the real rows only: ${waits}`);
  equal(Math.round(now), 4500);
  // Unpaced (analyze), nothing is held back.
  const all: Row[] = [];
  await replay([{ node: "n", rows }], (_n, r) => Promise.resolve(void all.push(r)));
  equal(all.length, rows.length);
});

Deno.test("replay: a break that every later row shares is paced, not taken for a spike", () => {
  // More rows after the break than pacing looks ahead (SPIKE_LOOKAHEAD): a run that the capture ends within is
  // taken for a burst the merge sorted last (session 30), so the break needs rows after it to be seen as one.
  const after = Array.from({ length: SPIKE_LOOKAHEAD + 1 }, (_, i) => row(T0 + (1000n + BigInt(i)) * S));
  const rs = [row(T0), row(T0 + S), ...after].map((r) => ({ row: r }));
  deepEqual(timeSpikes(rs, 600n * S), rs.map(() => false));
  const lone = [row(T0), row(T0 + 1000n * S), row(T0 + S)].map((r) => ({ row: r }));
  deepEqual(timeSpikes(lone, 600n * S), [false, true, false]);
});

Deno.test("duplicate rows: same time and payload is a duplicate; memory stays bounded whatever the times", () => {
  const r = new RecentRows();
  const p = new Uint8Array([1, 2, 3]);
  equal(r.seen(T0, p), false);
  equal(r.seen(T0, p), true);
  equal(r.seen(T0, new Uint8Array([1, 2, 4])), false, "another payload at the same time is not a duplicate");
  equal(r.seen(T0 + 1n, p), false);
  for (let i = 0; i < 10_000; i++) r.seen(T0 + BigInt(i) * 3_600n * S, p); // times all over the place
  ok(r.size <= DEDUPE_MAX_ROWS);
});

Deno.test("stream table: at the cap the least recently fed stream goes, iteration stays in creation order", () => {
  const t = new StreamTable<string, string>(60n * S, 2);
  t.touch("tap", "a", 1n, () => "A");
  t.touch("tap", "b", 2n, () => "B");
  t.touch("tap", "a", 3n, () => "A");
  const c = t.touch("tap", "c", 4n, () => "C");
  deepEqual(c?.evicted, "B");
  deepEqual([...t.values()], ["A", "C"]);
});

Deno.test("stream table: at the cap a new stream waits while every stream is active; a quiet one makes room", () => {
  // Streams fed every 20 ms; the cap 2; a stream must be 2 s quiet to give way.
  const t = new StreamTable<string, string>(60n * S, 2, 2n * S);
  const MS = 1_000_000n;
  t.touch("tap", "a", 0n, () => "A");
  t.touch("tap", "b", 10n * MS, () => "B");
  for (let ms = 20n; ms <= 1_980n; ms += 20n) {
    t.touch("tap", "a", ms * MS, () => "A");
    // c's rows are refused while a and b are active (b was fed last at 10 ms: 1.97 s is not 2 s quiet).
    equal(t.touch("tap", "c", ms * MS + MS, () => "C"), undefined, `c at ${ms} ms`);
  }
  deepEqual([...t.values()], ["A", "B"]);
  // b quiet for 2 s: c takes its place.
  const c = t.touch("tap", "c", 2_010n * MS, () => "C");
  deepEqual(c?.evicted, "B");
  deepEqual([...t.values()], ["A", "C"]);
  // A stream whose time is far ahead of the others (a clock off) does not hold its place: d replaces it.
  t.touch("tap", "a", 2_020n * MS, () => "A");
  const u = new StreamTable<string, string>(60n * S, 1, 2n * S);
  u.touch("tap", "x", 3_600n * S, () => "X");
  deepEqual(u.touch("tap", "y", 1n * S, () => "Y")?.evicted, "X");
});

Deno.test("metrics: audio_latency_seconds keeps a bounded set of pod label sets, expiring idle ones", async () => {
  let now = 0;
  const m = new FsmMetrics({
    latencySeries: 5,
    latencySeriesTtlMs: 60_000,
    now: () => now,
    exemplars: false,
  });
  const match = (gen: number): Match => ({
    measurement: "m",
    stage: "s",
    signatureId: `sig${gen}`,
    ids: {},
    source: { node: "a", pod: `src-${gen}`, stream: "x", timeNs: T0, offsetMs: 0 },
    target: { node: "b", pod: `dst-${gen}`, stream: "y", timeNs: T0 + S, offsetMs: 0 },
    latencyS: 1,
    ber: 0.1,
  });
  for (let gen = 0; gen < 40; gen++) m.match(match(gen));
  const series = async () =>
    new Set(
      parseMetricsText(await m.text()).filter((s) => s.name === "audio_latency_seconds_count").map((s) =>
        s.labels["target_pod"]
      ),
    );
  deepEqual([...await series()].sort(), ["dst-35", "dst-36", "dst-37", "dst-38", "dst-39"]);
  now = 120_000;
  m.match(match(99));
  deepEqual([...await series()], ["dst-99"]);
});
