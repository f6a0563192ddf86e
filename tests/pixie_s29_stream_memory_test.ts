/**
 * The re-run dedupe's memory when time does not move (review of session 29). A table's delivered rows are
 * remembered while they lie within the re-run's overlap of the newest `time_`; rows whose `time_` is stuck (0, or
 * one value: a broken clock, a time column that does not advance) all do, so the dedupe grew ~48 bytes a row for
 * ever (145 MB after 3 million rows). Now it holds at most `maxRememberedRows` (MAX_REMEMBERED_ROWS) of a
 * table, forgetting the rows that came first; every row is still delivered.
 */
import { equal, ok } from "node:assert/strict";
import type { ExecuteScriptRequest, ExecuteScriptResponse, RowBatch } from "../pixie/messages.ts";
import { MAX_REMEMBERED_ROWS, type PixieExecutor, PixieQueryStream } from "../pixie/stream.ts";
import { HTTP_RELATION, httpBatch } from "./support/fake_vizier.ts";
import { DeliveredRows } from "../pixie/delivered_rows.ts";

const FILTER = "df = px.DataFrame(table='http_events', start_time='-30s')\n";

/** Metadata, then `batches` (the last with eos): a query that ends. */
class Batches implements PixieExecutor {
  readonly cloud = false;
  constructor(readonly batches: RowBatch[]) {}
  async *execute(_req: ExecuteScriptRequest): AsyncGenerator<ExecuteScriptResponse> {
    yield { queryId: "q", metaData: { id: "t", name: "m/source", relation: HTTP_RELATION } };
    for (const batch of this.batches) yield { queryId: "q", batch };
  }
}

/** `n` batches of `size` rows, every row at `time` with a body of its own. */
function stuck(time: bigint, n: number, size: number): RowBatch[] {
  return Array.from({ length: n }, (_, b) =>
    httpBatch(
      "t",
      Array.from({ length: size }, (_, i) => ({ time, body: `message ${b}.${i}` })),
      b === n - 1,
    ));
}

async function run(
  batches: RowBatch[],
  maxRememberedRows?: number,
): Promise<{ rows: number; most: number; last: number }> {
  const stream = new PixieQueryStream({
    client: new Batches(batches),
    clusterId: "",
    queries: [{
      name: "m/source",
      streamFilter: FILTER,
      node: "n",
      columns: { time: "time_", pod: "pod", payload: "req_body" },
      streamKeyColumns: [],
    }],
    maxRememberedRows,
  });
  let rows = 0, most = 0;
  for await (const b of stream) {
    rows += b.length;
    most = Math.max(most, stream.rememberedRows);
  }
  return { rows, most, last: stream.rememberedRows };
}

Deno.test("rows whose time_ is stuck at 0: every row delivered, the dedupe holds at most its bound", async () => {
  const r = await run(stuck(0n, 40, 1_000), 8_000);
  equal(r.rows, 40_000, "none dropped");
  ok(r.most <= 8_000, `at most the bound remembered (before: all 40,000): ${r.most}`);
  ok(r.last >= 4_000, `the newest half kept: ${r.last}`);
});

Deno.test("the default bound holds past half a million rows at one time_", async () => {
  const n = Math.ceil((MAX_REMEMBERED_ROWS + 50_000) / 4_000);
  const r = await run(stuck(1_700_000_000_000_000_000n, n, 4_000));
  equal(r.rows, n * 4_000);
  ok(r.most <= MAX_REMEMBERED_ROWS, `${r.most}`);
});

Deno.test("DeliveredRows.keepNewest keeps the newest keys in arrival order, found as before", () => {
  const d = new DeliveredRows();
  for (let i = 0; i < 5_000; i++) d.seenOrAdd(7n, i, ~i, true);
  d.keepNewest(1_000);
  equal(d.size, 1_000);
  equal(d.seenOrAdd(7n, 4_999, ~4_999, false), true, "a kept key is found");
  equal(d.seenOrAdd(7n, 4_000, ~4_000, false), true);
  equal(d.seenOrAdd(7n, 3_999, ~3_999, false), false, "a forgotten one is not");
  equal(d.seenOrAdd(8n, 1, 1, true), false, "a later key is added after");
  equal(d.size, 1_001);
});
