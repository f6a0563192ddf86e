/**
 * A live reader's late-row shedding against rows from the far future (review of session 29). The baseline of
 * late_rows.ts is the second lowest lag of a minute's batches (each batch's freshest row): one row with a bad
 * `time_` is outvoted, but a second one within the minute made the baseline an hour negative and every later row
 * late, so a saturated sensor dropped every row for ~9 s (and then let every late row through under a slack of
 * an hour while such rows kept coming). Now a row beyond the reader's event-clock horizon (the wall clock plus the
 * clock window) is not taken for its batch's freshest.
 */
import { deepEqual, equal } from "node:assert/strict";
import { ActorSystem } from "../actors/runtime.ts";
import { VirtualClock } from "../actors/clock.ts";
import {
  type ExporterMsg,
  type MatcherMsg,
  type ReaderMsg,
  type RegistryMsg,
  rowWeight,
} from "../actors/messages.ts";
import { LateRows } from "../actors/late_rows.ts";
import { pixieReader, type RowSource } from "../actors/pixie_reader.ts";
import type { Row } from "../pixie/row.ts";
import { setLogSink } from "../util/log.ts";
import { recorder, settleAll } from "./support/actor_fixtures.ts";

setLogSink(() => {});

const OPTS = { capacity: 100_000, overflow: "backpressure" } as const;
const MS = 1_000_000n;
const T0_MS = 1_780_000_000_000;
const HOUR_MS = 3_600_000;

/** 50 relay rows, 20 ms apart, the last at `lastMs`; `future`: one more, an hour ahead. */
function rowsEndingAt(lastMs: number, tag: number, future = false): Row[] {
  const rows: Row[] = Array.from({ length: 50 }, (_, k) => ({
    query: "m/relay",
    node: "n",
    time: BigInt(lastMs - 20 * (49 - k)) * MS,
    columns: { body: `${tag}.${k}` },
  }));
  if (future) {
    rows.push({ query: "m/relay", node: "n", time: BigInt(lastMs + HOUR_MS) * MS, columns: { body: "x" } });
  }
  return rows;
}

Deno.test("reader: two rows an hour ahead within a minute do not make the later rows late", async () => {
  const clock = new VirtualClock();
  const system = new ActorSystem({ clock });
  const toMatcher: MatcherMsg[] = [];
  let localMs = T0_MS;
  let late = 0;
  // A batch every 100 ms, read 1 s after its freshest row; the 3rd and the 5th carry a row an hour ahead.
  const batches = Array.from(
    { length: 40 },
    (_, i) => rowsEndingAt(T0_MS + 100 * i - 1_000, i, i === 3 || i === 5),
  );
  const src: RowSource = {
    run: () => Promise.reject(new Error("batches only")),
    async runBatches(emit, signal) {
      for (let i = 0; i < batches.length; i++) {
        localMs = T0_MS + 100 * i;
        await emit(batches[i]!);
        await settleAll(clock, system);
      }
      await new Promise<void>((r) => signal.addEventListener("abort", () => r()));
    },
  };
  const spawnRecorder = <M>(name: string, into: M[]) => system.spawn<M>(name, recorder(into), OPTS);
  system.spawn<ReaderMsg>(
    "pixie_reader",
    pixieReader({
      detectors: new Map(),
      matcher: spawnRecorder("matcher", toMatcher),
      registry: spawnRecorder<RegistryMsg>("registry", []),
      exporter: spawnRecorder<ExporterMsg>("exporter", []),
      source: src,
      queries: new Set(["m/source", "m/relay"]),
      clockWindowNs: 30_000n * MS,
      tickNs: 3_600_000n * MS,
      // A live node: the wall clock (here the local one) bounds the event clock.
      wallNs: () => BigInt(localMs) * MS,
      // Always saturated (no `saturated`): late rows are dropped.
      late: { boundMs: 5_000, nowMs: () => localMs, onLate: (n) => late += n },
    }),
    { capacity: 4096, overflow: "drop-oldest", weigh: rowWeight },
  );
  for (let i = 0; i < 50; i++) await settleAll(clock, system);
  await system.shutdown({ deadlineMs: 1000 });
  const routed = toMatcher.flatMap((m) => m.kind === "rows" ? [...m.rows] : m.kind === "row" ? [m.row] : []);
  equal(late, 0, "no row late (before: every row after the 5th batch, 1,700)");
  deepEqual(routed.length, 40 * 50 + 2);
});

Deno.test("late rows: without a horizon the bound is the caller's (replays): rows are taken as they come", () => {
  // A LateRows without horizonNs behaves as before: the future rows count (what a replay's reader, which has no
  // late rows, never meets); with one, they do not.
  const run = (horizon: boolean) => {
    let localMs = T0_MS;
    const lr = new LateRows({
      boundMs: 5_000,
      nowMs: () => localMs,
      horizonNs: horizon ? () => BigInt(localMs + 30_000) * MS : undefined,
    });
    let dropped = 0;
    for (let i = 0; i < 40; i++) {
      localMs = T0_MS + 100 * i;
      const rows = rowsEndingAt(localMs - 1_000, i, i === 3 || i === 5);
      dropped += rows.length - lr.filter(rows).length;
    }
    return dropped;
  };
  equal(run(true), 0);
  equal(run(false) > 0, true, "the hour-ahead rows set the baseline");
});
