/**
 * The live-load feeder's pacing (tests/support/live_calls.ts): at Stirling's cadence the rows of each push go
 * together, each table's in time order (every call's messages of the push interleaved, as a push is sorted by
 * time), in batches bounded by bytes; without it each tick goes on its own.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import type { ExecuteCall } from "./support/fake_vizier.ts";
import { newServeStats, serveCalls, type ServePlan, SyntheticCalls } from "./support/live_calls.ts";
import type { RowBatch } from "../pixie/messages.ts";

/** A call that records the batches sent to it, per table name. */
function recordingCall(): { call: ExecuteCall; batches: Map<string, RowBatch[]> } {
  const names = new Map<string, string>();
  const batches = new Map<string, RowBatch[]>();
  const call = {
    request: {
      queryStr: ["source", "relay", "asr"].map((t) => `px.display(df, 'live/${t}')`).join("\n"),
    },
    isCancelled: () => false,
    meta: (id: string, name: string) => Promise.resolve(void names.set(id, name)),
    batch: (b: RowBatch) => {
      const name = names.get(b.tableId)!;
      batches.set(name, [...(batches.get(name) ?? []), b]);
      return Promise.resolve();
    },
  } as unknown as ExecuteCall;
  return { call, batches };
}

const timesOf = (b: RowBatch) => b.cols[0]!.data as bigint[];
const bytesOf = (b: RowBatch) =>
  (b.cols[2]!.data as Uint8Array[]).reduce(
    (n, x, i) => n + 8 + x.length + (b.cols[1]!.data as Uint8Array[])[i]!.length,
    0,
  );

async function serve(plan: Omit<ServePlan, "calls" | "startNs" | "paceMs" | "ticks">) {
  const { call, batches } = recordingCall();
  const stats = newServeStats();
  // Flat out from the past: nothing waits.
  await serveCalls(call, new SyntheticCalls(3, 1), {
    calls: 3,
    startNs: BigInt(Date.now() - 60_000) * 1_000_000n,
    paceMs: 0,
    ticks: 10,
    ...plan,
  }, stats);
  return { batches, stats };
}

Deno.test("live calls: a push sends the rows of its ticks together, each table's in time order, bounded by bytes", async () => {
  const { batches, stats } = await serve({ pushMs: 100, batchRows: Infinity, batchBytes: 2_000 });
  const source = batches.get("live/source")!;
  const times = source.flatMap(timesOf);
  equal(times.length, 30, "10 ticks of 3 calls");
  deepEqual(times, times.toSorted((a, b) => (a < b ? -1 : 1)), "in time order");
  ok(source.every((b) => bytesOf(b) <= 2_000), "no batch over the bound");
  ok(source.some((b) => b.numRows > 3), "a batch carries more than a tick: several rows of a call");
  equal(stats.rows, [...batches.values()].flat().reduce((n, b) => n + b.numRows, 0));
  equal(stats.ticks, 10);
});

Deno.test("live calls: without pushMs each tick goes on its own, one row per call", async () => {
  const { batches } = await serve({ batchRows: 250 });
  const source = batches.get("live/source")!;
  equal(source.length, 10);
  ok(source.every((b) => b.numRows === 3));
});
