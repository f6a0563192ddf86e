/**
 * The reader's hand-off from a live row source: a source that gives batches has each batch taken as one mailbox
 * message and routed as one message per destination, in order; the reader's mailbox is bounded, and drops, in
 * rows.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { ActorSystem } from "../actors/runtime.ts";
import { Mailbox } from "../actors/mailbox.ts";
import { VirtualClock } from "../actors/clock.ts";
import {
  type DetectorMsg,
  type ExporterMsg,
  type MatcherMsg,
  type ReaderMsg,
  type RegistryMsg,
  rowWeight,
} from "../actors/messages.ts";
import {
  DroppedRows,
  pixieReader,
  type ReaderDeps,
  type RowSource,
  SOURCE_ROOM_WAIT_MS,
} from "../actors/pixie_reader.ts";
import type { Row } from "../pixie/row.ts";
import { setLogSink } from "../util/log.ts";
import { recorder, settleAll } from "./support/actor_fixtures.ts";

setLogSink(() => {});

const OPTS = { capacity: 100_000, overflow: "backpressure" } as const;
const QUERIES = new Set(["m/source", "m/relay"]);

function row(query: string, i: number): Row {
  return { query, node: "n", time: 1_000_000_000n + BigInt(i) * 20_000_000n, columns: { body: `${i}` } };
}

/**
 * The reader's peers and options for these tests: the Matcher records into `toMatcher` (or is `matcher`), the
 * other peers record nothing, and no registry tick falls inside the rows' few seconds (a tick splits a batch's
 * messages where it falls); `over` adds or replaces the rest.
 */
function readerDeps(
  system: ActorSystem,
  source: RowSource,
  over: Partial<ReaderDeps> & { toMatcher?: MatcherMsg[] } = {},
): ReaderDeps {
  const { toMatcher = [], ...rest } = over;
  return {
    detectors: new Map(),
    matcher: rest.matcher ?? system.spawn<MatcherMsg>("matcher", recorder(toMatcher), OPTS),
    registry: system.spawn<RegistryMsg>("registry", recorder([]), OPTS),
    exporter: system.spawn<ExporterMsg>("exporter", recorder([]), OPTS),
    source,
    queries: QUERIES,
    clockWindowNs: 30_000_000_000n,
    tickNs: 3_600_000_000_000n,
    ...rest,
  };
}

/** A source that hands `batches` to the reader, by batch when `batched`, else row by row; then waits. */
function source(batches: Row[][], batched: boolean): RowSource {
  const wait = (signal: AbortSignal) => new Promise<void>((r) => signal.addEventListener("abort", () => r()));
  const s: RowSource = {
    async run(emit, signal) {
      for (const b of batches) for (const r of b) await emit(r);
      await wait(signal);
    },
  };
  if (batched) {
    s.runBatches = async (emit, signal) => {
      for (const b of batches) await emit(b);
      await wait(signal);
    };
  }
  return s;
}

/** Runs a reader over `batches`; what the Detector and the Matcher got. */
async function readAll(batches: Row[][], batched: boolean) {
  const clock = new VirtualClock();
  const system = new ActorSystem({ clock });
  const toDetector: DetectorMsg[] = [];
  const toMatcher: MatcherMsg[] = [];
  const reader = system.spawn<ReaderMsg>(
    "pixie_reader",
    pixieReader(readerDeps(system, source(batches, batched), {
      detectors: new Map([["m", system.spawn("detector/m", recorder(toDetector), OPTS)]]),
      toMatcher,
    })),
    { capacity: 4096, overflow: "drop-oldest", weigh: rowWeight },
  );
  await settleAll(clock, system);
  const stats = system.stats().find((s) => s.name === reader.name)!;
  await system.shutdown({ deadlineMs: 1000 });
  const rowsOf = (msgs: (DetectorMsg | MatcherMsg)[]) =>
    msgs.flatMap((m) => m.kind === "rows" ? [...m.rows] : m.kind === "row" ? [m.row] : []);
  return { toDetector, toMatcher, detectorRows: rowsOf(toDetector), matcherRows: rowsOf(toMatcher), stats };
}

Deno.test("reader: a batching source's rows are taken one message per batch and reach each destination in order", async () => {
  const batches: Row[][] = [];
  let i = 0;
  for (let b = 0; b < 4; b++) {
    batches.push(Array.from({ length: 50 }, () => row(i % 3 === 0 ? "m/source" : "m/relay", i++)));
  }
  const byBatch = await readAll(batches, true);
  const byRow = await readAll(batches, false);
  // The same rows in the same order either way.
  deepEqual(byBatch.detectorRows, byRow.detectorRows);
  deepEqual(byBatch.matcherRows, byRow.matcherRows);
  equal(byBatch.detectorRows.length + byBatch.matcherRows.length, 200);
  // One mailbox message per batch (not per row), and each destination gets one message per batch.
  equal(byBatch.stats.processed, 4);
  equal(byRow.stats.processed, 200);
  equal(byBatch.toDetector.length, 4);
  equal(byBatch.toMatcher.length, 4);
  equal(byRow.toMatcher.length, byRow.matcherRows.length);
});

/** A reader over `batches` of a live source whose Matcher (one batch at a time) takes each batch with `take`. */
function liveReader(clock: VirtualClock, batches: Row[][], take: (msg: MatcherMsg) => Promise<void>) {
  const system = new ActorSystem({ clock });
  const matcher = system.spawn<MatcherMsg>("matcher", () => ({ receive: take }), {
    capacity: 1,
    overflow: "backpressure",
    weigh: rowWeight,
  });
  const reader = system.spawn<ReaderMsg>(
    "pixie_reader",
    pixieReader(readerDeps(system, source(batches, true), { matcher })),
    { capacity: 4096, overflow: "drop-oldest", weigh: rowWeight },
  );
  return { system, stats: () => system.stats().find((x) => x.name === reader.name)! };
}

/** 10,000 rows of the relay tap in 40 batches of 250: a burst 2.4 times the reader's mailbox. */
function burst(): Row[][] {
  return Array.from(
    { length: 40 },
    (_, b) => Array.from({ length: 250 }, (_, k) => row("m/relay", b * 250 + k)),
  );
}

Deno.test("reader: a burst larger than the live mailbox is held back at its source, not dropped", async () => {
  // A Matcher that takes each batch in a turn of the event loop: it keeps up, but the source reads a whole
  // push (a Pixie response after another) in microtasks, far faster. Without waiting for room the reader's
  // mailbox dropped 5,250 of these rows.
  const clock = new VirtualClock();
  const got: Row[] = [];
  const { system, stats } = liveReader(clock, burst(), async (msg) => {
    if (msg.kind === "rows") got.push(...msg.rows);
    await new Promise((r) => setTimeout(r, 0));
  });
  // Until the Matcher has taken every batch the reader passed on and the reader holds none (5 s at most).
  const matcher = () => system.stats().find((x) => x.name === "matcher")!;
  for (let t = 0; t < 5000; t++) {
    const m = matcher();
    if (t > 20 && stats().depth === 0 && m.depth === 0 && m.processed === stats().processed) break;
    await new Promise((r) => setTimeout(r, 1));
  }
  const s = stats();
  equal(s.dropped.overflow, 0);
  equal(s.processed, 40);
  deepEqual(got.map((r) => r.time), burst().flat().map((r) => r.time));
  await system.shutdown({ deadlineMs: 1000 });
});

Deno.test("reader: under overload the live mailbox drops the oldest batches, counted in rows, held in rows", async () => {
  const clock = new VirtualClock();
  let release = () => {};
  const stalled = new Promise<void>((r) => release = r);
  // A Matcher stuck on its first message: the reader blocks on its full mailbox, its own mailbox fills.
  const { system, stats } = liveReader(clock, burst(), () => stalled);
  await settleAll(clock, system);
  // Two batches passed on (one stuck in the Matcher, one in its mailbox), one in the reader's hands waiting for
  // room, 4,000 rows held (16 batches within 4,096): the source waits for room, nothing dropped yet.
  equal(stats().processed, 2);
  equal(stats().depth, 4000);
  equal(stats().dropped.overflow, 0);
  // Each of the other 21 batches waits SOURCE_ROOM_WAIT_MS, then goes in, the oldest dropped whole to make room:
  // 5,250 rows, every one counted.
  await clock.advance(21 * SOURCE_ROOM_WAIT_MS);
  await settleAll(clock, system);
  const s = stats();
  equal(s.processed, 2);
  equal(s.depth, 4000);
  equal(s.dropped.overflow, 5250);
  release();
  await system.shutdown({ deadlineMs: 1000 });
});

/** Rows of `m/relay` 20 ms apart from t = 1 s: `n` of them from the `from`th. */
const relayRowsAt = (from: number, n: number) =>
  Array.from({ length: n }, (_, k) => row("m/relay", from + k));

/**
 * A live reader (late bound 5 s) whose source hands it `batches`, each read when the local clock says its ms:
 * what it sent the Matcher and the rows it counted late.
 */
async function readLateBatches(
  batches: [number, Row[]][],
): Promise<{ toMatcher: MatcherMsg[]; late: number }> {
  const clock = new VirtualClock();
  const system = new ActorSystem({ clock });
  const toMatcher: MatcherMsg[] = [];
  let localMs = 0;
  let late = 0;
  const src: RowSource = {
    run: () => Promise.reject(new Error("batches only")),
    async runBatches(emit, signal) {
      for (const [at, rs] of batches) {
        localMs = at;
        await emit(rs);
        await settleAll(clock, system);
      }
      await new Promise<void>((r) => signal.addEventListener("abort", () => r()));
    },
  };
  system.spawn<ReaderMsg>(
    "pixie_reader",
    pixieReader(readerDeps(system, src, {
      toMatcher,
      late: { boundMs: 5_000, nowMs: () => localMs, onLate: (n) => late += n },
    })),
    { capacity: 4096, overflow: "drop-oldest", weigh: rowWeight },
  );
  for (let i = 0; i < 20; i++) await settleAll(clock, system);
  await system.shutdown({ deadlineMs: 1000 });
  return { toMatcher, late };
}

Deno.test("reader: a live reader drops rows read too late, counted, and routes the rest", async () => {
  const { toMatcher, late } = await readLateBatches([
    // Read 1 s after their time (the baseline), twice.
    [1_000 + 49 * 20 + 1_000, relayRowsAt(0, 50)],
    [2_000 + 49 * 20 + 1_000, relayRowsAt(50, 50)],
    // The next rows are read 8 s after their time: 7 s later than usual, beyond the 5 s bound.
    [3_000 + 49 * 20 + 8_000, relayRowsAt(100, 50)],
    // These are 6.48 s down to 5.5 s behind: the first 24 more than 5 s beyond the baseline (1 s), the rest not,
    // but none back within a fifth of the bound: shedding goes on (late_rows.ts RESUME_FRACTION).
    [4_000 + 49 * 20 + 5_500, relayRowsAt(150, 50)],
  ]);
  const routed = toMatcher.flatMap((m) => m.kind === "rows" ? [...m.rows] : m.kind === "row" ? [m.row] : []);
  // 100 rows routed; 50 + 50 dropped and counted.
  equal(late, 100);
  deepEqual(routed.map((r) => r.columns.body), relayRowsAt(0, 100).map((r) => r.columns.body));
});

Deno.test("reader: after shedding, the actors are told before the first rows kept (a gap in every stream)", async () => {
  const { toMatcher, late } = await readLateBatches([
    [1_000 + 49 * 20 + 1_000, relayRowsAt(0, 50)],
    [2_000 + 49 * 20 + 1_000, relayRowsAt(50, 50)],
    // 7 s later than usual: shed.
    [3_000 + 49 * 20 + 8_000, relayRowsAt(100, 50)],
    // Back at the baseline: kept, after word of the gap (stream_table.ts: no stream is quiet for its turn not
    // having come yet).
    [4_000 + 49 * 20 + 1_000, relayRowsAt(150, 50)],
    [5_000 + 49 * 20 + 1_000, relayRowsAt(200, 50)],
  ]);
  equal(late, 50);
  deepEqual(toMatcher.map((m) => m.kind === "rows" ? `rows ${m.rows.length}` : m.kind), [
    "rows 50",
    "rows 50",
    "shed",
    "rows 50",
    "rows 50",
  ]);
  // The gap began with the earliest row shed: a stream quiet before then stays quiet (stream_table.ts).
  const shed = toMatcher.find((m) => m.kind === "shed");
  equal(shed?.kind === "shed" ? shed.fromNs : undefined, relayRowsAt(100, 1)[0]!.time);
});

Deno.test("reader: rows its own mailbox dropped are announced as a gap before the next rows, from the earliest", async () => {
  // The runtime notes the rows of each message a full drop-oldest mailbox loses (node.ts: SpawnOptions.onDrop);
  // the actors are told, as for late rows, so that no stream changes hands at the cap for the gap.
  const clock = new VirtualClock();
  const system = new ActorSystem({ clock });
  const toMatcher: MatcherMsg[] = [];
  const dropped = new DroppedRows();
  let emitBatch: ((rows: Row[]) => Promise<void>) | undefined;
  const src: RowSource = {
    run: () => Promise.reject(new Error("batches only")),
    async runBatches(emit, signal) {
      emitBatch = (rs) => emit(rs);
      await new Promise<void>((r) => signal.addEventListener("abort", () => r()));
    },
  };
  system.spawn<ReaderMsg>("pixie_reader", pixieReader(readerDeps(system, src, { toMatcher, dropped })), OPTS);
  for (let i = 0; i < 5 && emitBatch === undefined; i++) await settleAll(clock, system);
  await emitBatch!(relayRowsAt(0, 10));
  await settleAll(clock, system);
  dropped.note({ kind: "rows", rows: relayRowsAt(20, 10) });
  dropped.note({ kind: "row", row: relayRowsAt(10, 1)[0]! });
  await emitBatch!(relayRowsAt(30, 10));
  await settleAll(clock, system);
  await emitBatch!(relayRowsAt(40, 10));
  for (let i = 0; i < 5; i++) await settleAll(clock, system);
  await system.shutdown({ deadlineMs: 1000 });
  deepEqual(toMatcher.map((m) => m.kind === "rows" ? `rows ${m.rows.length}` : m.kind), [
    "rows 10",
    "shed",
    "rows 10",
    "rows 10",
  ]);
  const shed = toMatcher.find((m) => m.kind === "shed");
  equal(shed?.kind === "shed" ? shed.fromNs : undefined, relayRowsAt(10, 1)[0]!.time);
  equal(dropped.pending, false);
});

Deno.test("reader: late rows are shed while the main thread is saturated, even with the actors idle", async () => {
  // The reading (gRPC, protobuf, rows) runs outside the actors: a sensor whose reading is the bottleneck has idle
  // actors (saturated() false) and a busy main thread. Before, such a sensor never shed a row (bench/live_load.ts
  // --calls 1000 --pod: 62 s of lag, 0 rows shed).
  for (const [demand, shed] of [[0.95, 100], [0.3, 0], [NaN, 0]] as const) {
    const clock = new VirtualClock();
    const system = new ActorSystem({ clock });
    const toMatcher: MatcherMsg[] = [];
    let localMs = 0;
    const rowsAt = (from: number, n: number) => Array.from({ length: n }, (_, k) => row("m/relay", from + k));
    const batches: [number, Row[]][] = [
      [1_000 + 49 * 20 + 1_000, rowsAt(0, 50)],
      [2_000 + 49 * 20 + 1_000, rowsAt(50, 50)],
      [3_000 + 49 * 20 + 8_000, rowsAt(100, 50)],
      [4_000 + 49 * 20 + 5_500, rowsAt(150, 50)],
    ];
    let late = 0;
    const src: RowSource = {
      run: () => Promise.reject(new Error("batches only")),
      async runBatches(emit, signal) {
        for (const [at, rs] of batches) {
          localMs = at;
          await emit(rs);
          await settleAll(clock, system);
        }
        await new Promise<void>((r) => signal.addEventListener("abort", () => r()));
      },
    };
    system.spawn<ReaderMsg>(
      "pixie_reader",
      pixieReader(readerDeps(system, src, {
        toMatcher,
        late: {
          boundMs: 5_000,
          nowMs: () => localMs,
          saturated: () => false,
          demand: () => demand,
          onLate: (n) => late += n,
        },
      })),
      { capacity: 4096, overflow: "drop-oldest", weigh: rowWeight },
    );
    for (let i = 0; i < 20; i++) await settleAll(clock, system);
    const routed = toMatcher.flatMap((m) =>
      m.kind === "rows" ? [...m.rows] : m.kind === "row" ? [m.row] : []
    );
    equal(late, shed, `demand ${demand}`);
    equal(routed.length, 200 - shed, `demand ${demand}`);
    await system.shutdown({ deadlineMs: 1000 });
  }
});

Deno.test("reader: a live source that cannot be read fast enough even dropping is skipped ahead", async () => {
  const clock = new VirtualClock();
  const system = new ActorSystem({ clock });
  let localMs = 0;
  let late = 0;
  const skips: bigint[] = [];
  let done!: () => void;
  const read = new Promise<void>((r) => done = r);
  // Rows 20 ms apart; one batch of 10 per 100 ms of local time, read at half real time after 30 s in step.
  const src: RowSource = {
    run: () => Promise.reject(new Error("batches only")),
    async runBatches(emit, signal) {
      let at = 0;
      for (let b = 0; b < 900 && !signal.aborted; b++) {
        localMs = 1_000 + 100 * b;
        at += b < 300 ? 100 : 50;
        const to = skips.length ? Number(skips[skips.length - 1]! / 1_000_000n) - 1_000 : -Infinity;
        if (to > at) at = to;
        const first = Math.round(at / 20) - 9;
        await emit(Array.from({ length: 10 }, (_, k) => row("m/relay", first + k)));
        await settleAll(clock, system);
      }
      done();
      await new Promise<void>((r) => signal.addEventListener("abort", () => r()));
    },
    skipTo: (t) => void skips.push(t),
  };
  system.spawn<ReaderMsg>(
    "pixie_reader",
    pixieReader(readerDeps(system, src, {
      late: { boundMs: 5_000, nowMs: () => localMs, onLate: (n) => late += n },
    })),
    { capacity: 4096, overflow: "drop-oldest", weigh: rowWeight },
  );
  let finished = false;
  void read.then(() => finished = true);
  for (let i = 0; i < 2000 && !finished; i++) await settleAll(clock, system);
  ok(finished);
  ok(skips.length >= 1, `skipped ahead (late ${late})`);
  ok(late > 0, "late and skipped rows counted");
  // Each skip goes to the freshest rows the source has: their usual lag (here -100 ms) behind the local clock.
  for (const t of skips) ok(t > 30_000_000_000n && t <= 91_000_000_000n, `${t}`);
  await system.shutdown({ deadlineMs: 1000 });
});

Deno.test("reader: a source that waits for its input is not saturated, however busy the main thread", async () => {
  // An oversubscribed host: the sensor's thread is runnable most of the time, but its source waits for a peer that
  // is itself behind; rows arriving late are the peer's delay, and shedding them would not catch up with anything.
  for (const [inputBusy, shed] of [[0.1, 0], [0.95, 100]] as const) {
    const clock = new VirtualClock();
    const system = new ActorSystem({ clock });
    const toMatcher: MatcherMsg[] = [];
    let localMs = 0;
    const rowsAt = (from: number, n: number) => Array.from({ length: n }, (_, k) => row("m/relay", from + k));
    const batches: [number, Row[]][] = [
      [1_000 + 49 * 20 + 1_000, rowsAt(0, 50)],
      [2_000 + 49 * 20 + 1_000, rowsAt(50, 50)],
      [3_000 + 49 * 20 + 8_000, rowsAt(100, 50)],
      [4_000 + 49 * 20 + 5_500, rowsAt(150, 50)],
    ];
    let late = 0;
    const src: RowSource = {
      run: () => Promise.reject(new Error("batches only")),
      async runBatches(emit, signal) {
        for (const [at, rs] of batches) {
          localMs = at;
          await emit(rs);
          await settleAll(clock, system);
        }
        await new Promise<void>((r) => signal.addEventListener("abort", () => r()));
      },
      inputBusy: () => inputBusy,
    };
    system.spawn<ReaderMsg>(
      "pixie_reader",
      pixieReader(readerDeps(system, src, {
        toMatcher,
        late: {
          boundMs: 5_000,
          nowMs: () => localMs,
          saturated: () => false,
          demand: () => 0.99,
          onLate: (n) => late += n,
        },
      })),
      { capacity: 4096, overflow: "drop-oldest", weigh: rowWeight },
    );
    for (let i = 0; i < 20; i++) await settleAll(clock, system);
    equal(late, shed, `input busy ${inputBusy}`);
    await system.shutdown({ deadlineMs: 1000 });
  }
});

Deno.test("reader: under sustained overload its timed-out waits for room do not pile up in the mailbox", async () => {
  const clock = new VirtualClock();
  const system = new ActorSystem({ clock });
  // The mailbox the source waits on, kept full for the whole test (nothing is ever taken from it): the reader's
  // context waits on it in place of its own, so each wait times out after SOURCE_ROOM_WAIT_MS.
  const full = new Mailbox<ReaderMsg>(4096, "drop-oldest", () => {}, rowWeight);
  full.offer({ kind: "rows", rows: burst().flat().slice(0, 4096) });
  const batches = burst();
  const reader = pixieReader(readerDeps(system, source(batches, true)));
  const ref = system.spawn<ReaderMsg>(
    "pixie_reader",
    (ctx) => reader({ ...ctx, room: (w, signal) => full.room(w, signal) }),
    OPTS,
  );
  await settleAll(clock, system);
  equal(full.waitingForRoom, 1);
  // Every batch waits its SOURCE_ROOM_WAIT_MS and goes on: before, each left its wait in the full mailbox's
  // list, 40 by the end (one per Pixie response for as long as an overload lasts).
  for (let i = 0; i < batches.length; i++) {
    await clock.advance(SOURCE_ROOM_WAIT_MS);
    await settleAll(clock, system);
    ok(full.waitingForRoom <= 1, `${full.waitingForRoom} waits listed after ${i + 1} timed out`);
  }
  equal(system.stats().find((x) => x.name === ref.name)!.processed, batches.length);
  equal(full.waitingForRoom, 0);
  await system.shutdown({ deadlineMs: 1000 });
});

Deno.test("reader: when the rows' clock steps back by minutes, the registry's next tick says so", async () => {
  // NTP stepped Pixie's host back 10 minutes: the event clock follows once every recent row is a window behind,
  // and the registry is told (a plain tick lower than its watermark is ignored).
  const clock = new VirtualClock();
  const system = new ActorSystem({ clock });
  const toRegistry: RegistryMsg[] = [];
  const at = (i: number, backS = 0n) => ({
    ...row("m/relay", i),
    time: row("m/relay", i).time - backS * 1_000_000_000n,
  });
  const before = Array.from({ length: 100 }, (_, i) => at(i));
  const after = Array.from({ length: 100 }, (_, i) => at(100 + i, 600n));
  system.spawn<ReaderMsg>(
    "pixie_reader",
    pixieReader(readerDeps(system, source([before, after], true), {
      registry: system.spawn<RegistryMsg>("registry-seen", recorder(toRegistry), OPTS),
      tickNs: 1_000_000_000n,
    })),
    OPTS,
  );
  await settleAll(clock, system);
  await system.shutdown({ deadlineMs: 1000 });
  const ticks = toRegistry.filter((m) => m.kind === "tick");
  const back = ticks.filter((m) => m.kind === "tick" && m.back);
  equal(back.length, 1);
  ok(back[0]!.kind === "tick" && back[0]!.nowNs < before[0]!.time);
});
