/**
 * The client hands on responses that arrived together with turns of the event loop between them, so a sensor
 * reading a backlog still answers /metrics.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { PixieClient } from "../pixie/client.ts";
import { RESPONSE_QUEUE_BOUNDS } from "../pixie/response_queue.ts";
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

Deno.test("a call cancelled while paused with responses still buffered ends its iteration (a skip ahead re-runs at once)", async () => {
  const fake = await FakeVizier.start({ healthIntervalMs: 60_000 });
  fake.onExecute = async (c) => {
    await c.meta("t", "voice/source", HTTP_RELATION);
    for (let i = 0; i < 5_000 && !c.isCancelled(); i++) {
      await c.batch(httpBatch("t", [{ time: BigInt(i + 1), body: "x".repeat(200) }]));
    }
    await c.cancelled;
  };
  const client = await PixieClient.connect({ mode: "direct", directAddr: fake.address });
  const abort = new AbortController();
  let hung: ReturnType<typeof setTimeout> | undefined;
  try {
    let received = 0;
    const reading = (async () => {
      for await (const r of client.execute({ queryStr: "stream", clusterId: "" }, abort.signal)) {
        if (!r.batch) continue;
        received++;
        if (received === 1) {
          // The rest arrive and queue: the client pauses the call with more in its buffer, then it is cancelled.
          await new Promise((resolve) => setTimeout(resolve, 500));
          abort.abort();
        }
      }
      return "ended";
    })();
    // A liveness bound, not a timing: before, the iteration waited for ever for responses a paused,
    // cancelled call never delivered.
    const outcome = await Promise.race([
      reading,
      new Promise<string>((resolve) => hung = setTimeout(() => resolve("hung"), 20_000)),
    ]);
    equal(outcome, "ended", `the iteration did not end after the cancel (${received} responses read)`);
    ok(received < 5_000, `${received}`);
  } finally {
    clearTimeout(hung);
    client.close();
    await fake.stop();
  }
});

Deno.test("a call that fails while paused with responses queued hands on what arrived, then its error", async () => {
  const fake = await FakeVizier.start({ healthIntervalMs: 60_000 });
  const sent = 2_000;
  fake.onExecute = async (c) => {
    await c.meta("t", "voice/source", HTTP_RELATION);
    for (let i = 0; i < sent && !c.isCancelled(); i++) {
      await c.batch(httpBatch("t", [{ time: BigInt(i + 1), body: "x".repeat(200) }]));
    }
    c.fail(14, "vizier went away");
  };
  const client = await PixieClient.connect({ mode: "direct", directAddr: fake.address });
  let hung: ReturnType<typeof setTimeout> | undefined;
  try {
    let received = 0;
    const times: bigint[] = [];
    const reading = (async () => {
      try {
        for await (const r of client.execute({ queryStr: "stream", clusterId: "" })) {
          if (!r.batch) continue;
          times.push(...(r.batch.cols[0]!.data as bigint[]));
          // Slow at first: the call pauses with the rest buffered, and its error arrives meanwhile.
          if (++received === 1) await new Promise((resolve) => setTimeout(resolve, 1_000));
        }
        return "ended without the error";
      } catch (e) {
        return `failed: ${(e as Error).message}`;
      }
    })();
    // A liveness bound, not a timing: before, the paused call's buffer stopped flowing and the iteration waited
    // for ever.
    const outcome = await Promise.race([
      reading,
      new Promise<string>((resolve) => hung = setTimeout(() => resolve("hung"), 20_000)),
    ]);
    ok(
      outcome.startsWith("failed:") && outcome.includes("vizier went away"),
      `${outcome} (${received} read)`,
    );
    // What the fake had written before failing, as far as it reached the client (a drop loses what is in flight):
    // at least the responses the client had queued when it paused the call, and in order from the first, with
    // none left out (a re-run resumes after the newest time handed on, so a hole would never be filled).
    ok(received >= RESPONSE_QUEUE_BOUNDS.highCount && received <= sent, `${received}`);
    deepEqual(times, Array.from({ length: received }, (_, i) => BigInt(i + 1)));
  } finally {
    clearTimeout(hung);
    client.close();
    await fake.stop();
  }
});
