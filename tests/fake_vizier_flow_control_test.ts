/**
 * The fake Vizier is held back by a client that does not read, as a real Vizier is by HTTP/2 flow control
 * (Deno's node:http2 server never reports back-pressure on its own: without the fake's bound, a producer faster
 * than its client queued without limit, and bench/live_load.ts's feeder grew to 7 GB under overload).
 * @module
 */
import { ok } from "node:assert/strict";
import { PixieClient } from "../pixie/client.ts";
import { type ColumnInfo, DataType } from "../pixie/messages.ts";
import { FakeVizier } from "./support/fake_vizier.ts";

const RELATION: ColumnInfo[] = [{ name: "req_body", type: DataType.STRING }];

Deno.test("with maxUnsentBytes, the fake's writes wait while a client that does not read holds its data", async () => {
  const fake = await FakeVizier.start({ standalone: true, maxUnsentBytes: 4 << 20 });
  const body = new Uint8Array(100).fill(65);
  const rowsPerBatch = 1000; // ~100 KB a response
  let sentBytes = 0;
  let stop = false;
  fake.onExecute = async (c) => {
    await c.meta("t", "q", RELATION);
    while (!stop && !c.isCancelled()) {
      await c.batch({
        tableId: "t",
        cols: [{ type: "string", data: Array.from({ length: rowsPerBatch }, () => body) }],
        numRows: rowsPerBatch,
        eow: false,
        eos: false,
      });
      sentBytes += rowsPerBatch * body.length;
    }
  };
  const client = await PixieClient.connect({ mode: "direct", directAddr: fake.address });
  const ac = new AbortController();
  try {
    const it = client.execute({ queryStr: "x", clusterId: "" }, ac.signal);
    await it.next();
    await it.next();
    // The client holds the stream without reading: the fake may fill the client's queue (64 responses), the
    // HTTP/2 windows and its own bound (4 MB), then stop (~0.1 GB here). Unbounded, it went on at ~0.5 GB/s.
    let last = -1;
    for (let i = 0; i < 20 && sentBytes !== last && sentBytes < 400e6; i++) {
      last = sentBytes;
      await new Promise((r) => setTimeout(r, 500));
    }
    ok(
      sentBytes === last && sentBytes < 400e6,
      `the fake wrote ${(sentBytes / 1e6).toFixed(0)} MB to a client that read 2 responses, and went on`,
    );
    await it.return(undefined);
  } finally {
    stop = true;
    ac.abort();
    client.close();
    await fake.stop();
  }
});
