/** CombinedRowSource: rows of several live sources reach the reader in the batches their sources make. */
import { deepEqual, equal, rejects } from "node:assert/strict";
import { CombinedRowSource } from "../cli/sensor_sources.ts";
import type { RowSource } from "../actors/pixie_reader.ts";
import type { Row } from "../pixie/row.ts";

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
