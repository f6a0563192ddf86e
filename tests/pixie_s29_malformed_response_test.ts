/**
 * A response the client cannot decode (review of session 29): a peer that is not quite Pixie sends a batch with a
 * column without data, or bytes that are no ExecuteScriptResponse at all. Before, the decoder threw inside grpc-js,
 * which ended the call (INTERNAL "Response message parsing error"); the re-run read the same batch from the table
 * again and died on it again, so the sensor never got past it (4,204 re-runs in 20 s of a test's manual clock, no
 * row after the batch ever delivered). Now such a response is counted (`decode`) and skipped, and the call goes on.
 */
import { deepStrictEqual, equal } from "node:assert/strict";
import { PixieClient } from "../pixie/client.ts";
import type { Row } from "../pixie/row.ts";
import { PixieQueryStream } from "../pixie/stream.ts";
import { FakeVizier, HTTP_RELATION, httpBatch, ManualClock } from "./support/fake_vizier.ts";

const T0 = 1_700_000_000_000_000_000n;
const FILTER =
  "df = px.DataFrame(table='http_events', start_time='-30s')\ndf = df[df.req_path == '/audio']\n";

/** A protobuf length-delimited field. */
const ld = (field: number, body: number[]) => [(field << 3) | 2, body.length, ...body];

Deno.test("a response that cannot be decoded is counted and skipped; the call goes on past it", async () => {
  // RowBatchData{cols: [Column{} (no data)], num_rows: 1, table_id: "t0"} in an ExecuteScriptResponse.
  const noData = [...ld(1, []), 0x10, 0x01, ...ld(5, [0x74, 0x30])];
  const columnWithoutData = new Uint8Array([...ld(2, [0x71]), ...ld(3, ld(1, noData))]);
  const notProtobuf = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff]);
  const fake = await FakeVizier.start();
  fake.onExecute = async (c) => {
    await c.meta("t0", "voice/source", HTTP_RELATION);
    if (c.index === 0) {
      await c.batch(httpBatch("t0", [{ time: T0 + 1n, body: "a" }]));
      await c.sendBytes(columnWithoutData);
      await c.sendBytes(notProtobuf);
    }
    await c.batch(httpBatch("t0", [{ time: T0 + 2n, body: "b" }], true));
    c.end();
  };
  const client = await PixieClient.connect({ mode: "direct", directAddr: fake.address });
  const errors: string[] = [];
  const rows: Row[] = [];
  try {
    const stream = new PixieQueryStream({
      client,
      clusterId: "",
      clock: new ManualClock(Number(T0 / 1_000_000n) + 1_000),
      queries: [{
        name: "voice/source",
        streamFilter: FILTER,
        node: "node-1",
        columns: { time: "time_", pod: "pod", payload: "req_body" },
        streamKeyColumns: ["remote_port"],
      }],
      metrics: { errors: (q, kind) => void errors.push(`${q ?? "-"}:${kind}`) },
      random: () => 0.5,
    });
    for await (const batch of stream) rows.push(...batch);
  } finally {
    client.close();
    await fake.stop();
  }
  deepStrictEqual(rows.map((r) => new TextDecoder().decode(r.columns.req_body as Uint8Array)), ["a", "b"]);
  deepStrictEqual(errors, ["-:decode", "-:decode"], "both counted");
  equal(fake.executeRequests.length, 1, "no re-run: the call went on past them");
});
