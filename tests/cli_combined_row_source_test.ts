/** CombinedRowSource: rows of several live sources reach the reader in the batches their sources make. */
import { deepEqual, equal, rejects } from "node:assert/strict";
import { CombinedRowSource } from "../cli/sensor_sources.ts";
import { pixieReader, type RowSource } from "../actors/pixie_reader.ts";
import { ActorSystem } from "../actors/runtime.ts";
import { VirtualClock } from "../actors/clock.ts";
import {
  type ExporterMsg,
  type MatcherMsg,
  type ReaderMsg,
  type RegistryMsg,
  rowWeight,
} from "../actors/messages.ts";
import type { Row } from "../pixie/row.ts";
import { setLogSink } from "../util/log.ts";
import { recorder, settleAll } from "./support/actor_fixtures.ts";

setLogSink(() => {});

const row = (query: string, t: number): Row => ({ query, node: "n", time: BigInt(t), columns: {} });

/** A source that hands on `batches` as they are (with runBatches) or row by row (without). */
function source(batches: Row[][], batched: boolean): RowSource {
  const run = async (emit: (r: Row) => Promise<void>) => {
    for (const b of batches) for (const r of b) await emit(r);
  };
  if (!batched) return { run };
  return {
    run,
    async runBatches(emit) {
      for (const b of batches) await emit(b);
    },
  };
}

Deno.test("combined sources hand on each batched source's batches whole, other sources' rows one a batch", async () => {
  const pixie = [[row("m/source", 1), row("m/source", 2), row("m/source", 3)], [row("m/source", 4)]];
  const packets = [[row("m/stage", 10), row("m/stage", 11)]];
  const combined = new CombinedRowSource([source(pixie, true), source(packets, false)]);
  equal(typeof combined.runBatches, "function");
  const got: (readonly Row[])[] = [];
  await combined.runBatches!((rows) => Promise.resolve(void got.push(rows)), new AbortController().signal);
  const pixieBatches = got.filter((b) => b[0]!.query === "m/source");
  const packetBatches = got.filter((b) => b[0]!.query === "m/stage");
  deepEqual(pixieBatches.map((b) => b.map((r) => r.time)), [[1n, 2n, 3n], [4n]]);
  deepEqual(packetBatches.map((b) => b.map((r) => r.time)), [[10n], [11n]]);
});

Deno.test("combined sources: the first failure stops the others and rejects, batched or not", async () => {
  let stopped = false;
  const endless: RowSource = {
    run: () => Promise.resolve(),
    runBatches: (_emit, signal) =>
      new Promise<void>((resolve) =>
        signal.addEventListener("abort", () => {
          stopped = true;
          resolve();
        })
      ),
  };
  const failing: RowSource = { run: () => Promise.reject(new Error("capture failed")) };
  const combined = new CombinedRowSource([endless, failing]);
  await rejects(
    combined.runBatches!(() => Promise.resolve(), new AbortController().signal),
    /capture failed/,
  );
  equal(stopped, true);
});

Deno.test("combined sources: a live reader sheds and skips Pixie's backlog as with Pixie alone (its meter and skip passed on)", async () => {
  // Pixie beside packets: the reader judges whether its reading is saturated by Pixie's input meter, and skips
  // Pixie ahead. The combined source hid both: the reader fell back to the thread's demand, which the run task's
  // permissions cannot read (NaN: never saturated), and had nothing to skip, so a sensor behind on its Pixie rows
  // never shed and its lag grew without bound.
  const clock = new VirtualClock();
  const system = new ActorSystem({ clock });
  const toMatcher: MatcherMsg[] = [];
  let localMs = 0;
  let late = 0;
  const skips: bigint[] = [];
  const rowAt = (i: number): Row => ({
    query: "m/relay",
    node: "n",
    time: 1_000_000_000n + BigInt(i) * 20_000_000n,
    columns: {},
  });
  const rowsAt = (from: number, n: number) => Array.from({ length: n }, (_, k) => rowAt(from + k));
  // As tests/actors_pixie_reader_test.ts's "a source that waits for its input": the third batch is read 8 s late.
  const batches: [number, Row[]][] = [
    [1_000 + 49 * 20 + 1_000, rowsAt(0, 50)],
    [2_000 + 49 * 20 + 1_000, rowsAt(50, 50)],
    [3_000 + 49 * 20 + 8_000, rowsAt(100, 50)],
    [4_000 + 49 * 20 + 5_500, rowsAt(150, 50)],
  ];
  const untilAborted = (signal: AbortSignal) =>
    new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true }));
  const pixie: RowSource = {
    run: () => Promise.reject(new Error("batches only")),
    async runBatches(emit, signal) {
      for (const [at, rs] of batches) {
        localMs = at;
        await emit(rs);
        await settleAll(clock, system);
      }
      await untilAborted(signal);
    },
    skipTo: (t) => void skips.push(t),
    inputBusy: () => 0.95,
  };
  const packets: RowSource = { run: (_emit, signal) => untilAborted(signal) };
  const combined = new CombinedRowSource([pixie, packets]);
  const opts = { capacity: 100_000, overflow: "backpressure" } as const;
  system.spawn<ReaderMsg>(
    "pixie_reader",
    pixieReader({
      detectors: new Map(),
      matcher: system.spawn<MatcherMsg>("matcher", recorder(toMatcher), opts),
      registry: system.spawn<RegistryMsg>("registry", recorder([]), opts),
      exporter: system.spawn<ExporterMsg>("exporter", recorder([]), opts),
      source: combined,
      queries: new Set(["m/source", "m/relay"]),
      clockWindowNs: 30_000_000_000n,
      tickNs: 3_600_000_000_000n,
      late: {
        boundMs: 5_000,
        nowMs: () => localMs,
        saturated: () => false,
        // What the run task gets from /proc/thread-self/schedstat.
        demand: () => NaN,
        onLate: (n) => late += n,
      },
    }),
    { capacity: 4096, overflow: "drop-oldest", weigh: rowWeight },
  );
  for (let i = 0; i < 20; i++) await settleAll(clock, system);
  equal(late, 100, "the batches read late shed, as with Pixie alone");
  combined.skipTo?.(123n);
  deepEqual(skips, [123n], "a skip reaches the source that can skip");
  await system.shutdown({ deadlineMs: 1000 });
});
