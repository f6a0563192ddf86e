/**
 * The client hands on responses that arrived together with turns of the event loop between them, so a sensor
 * reading a backlog still answers /metrics.
 */
import { equal, ok } from "node:assert/strict";
import { PixieClient } from "../pixie/client.ts";
import { FakeVizier, HTTP_RELATION, httpBatch } from "./support/fake_vizier.ts";

Deno.test("responses that arrived together are handed on with turns of the event loop between", async () => {
  const fake = await FakeVizier.start({ healthIntervalMs: 60_000 });
  const batches = 200;
  fake.onExecute = async (c) => {
    await c.meta("t", "voice/source", HTTP_RELATION);
    for (let i = 0; i < batches && !c.isCancelled(); i++) {
      await c.batch(httpBatch("t", [{ time: BigInt(i + 1), body: "x" }]));
    }
    await c.cancelled;
  };
  const client = await PixieClient.connect({ mode: "direct", directAddr: fake.address });
  try {
    let received = 0;
    let timerFired = false;
    let beforeTimer = 0;
    for await (const r of client.execute({ queryStr: "stream", clusterId: "" })) {
      if (!r.batch) continue;
      received++;
      if (received === 1) {
        // Let the rest arrive and queue up (the client pauses the call at 64), then time a timer against them.
        await new Promise((resolve) => setTimeout(resolve, 300));
        setTimeout(() => (timerFired = true), 0);
        continue;
      }
      if (!timerFired) beforeTimer++;
      // Work on each response (0.2 ms): a timer due now must not wait for all the queued ones.
      const until = performance.now() + 0.2;
      while (performance.now() < until) { /* busy */ }
      if (received === batches) break;
    }
    equal(received, batches);
    // About 3 ms of them (15) before the timer runs; without turns, every queued one (60 and more).
    ok(beforeTimer < 40, `${beforeTimer} responses handed on before a timer due at once ran`);
  } finally {
    client.close();
    await fake.stop();
  }
});
