import { deepEqual, equal, ok } from "node:assert/strict";
import { type BusMetrics, Outbox, type OutboxItem, type PublishOutcome } from "../bus/outbox.ts";
import { JetStreamBus } from "../bus/jetstream.ts";
import { readRecords } from "../bus/replay_reader.ts";
import { NatsServer } from "./support/nats_server.ts";
import { testBusOptions, testSignature, waitFor } from "./support/bus_fixtures.ts";
import { gatedTest, quietTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

function item(n: number): OutboxItem {
  return { kind: "signature", subject: "fsmpx.sig.m", data: new Uint8Array([n]), msgId: String(n) };
}

/** Metrics hooks that record what they were told. */
function recordingMetrics() {
  const seen = { depth: [] as number[], overflow: 0, published: 0, failed: [] as string[] };
  const m: BusMetrics = {
    outboxDepth: (n) => void seen.depth.push(n),
    outboxOverflow: (n) => void (seen.overflow += n),
    published: () => void seen.published++,
    publishFailed: (_k, reason) => void seen.failed.push(reason),
  };
  return { seen, m };
}

quietTest(
  "outbox: bounded, oldest dropped and counted; transient failures retried in order; refusals counted",
  async () => {
    const { seen, m } = recordingMetrics();
    const sent: string[] = [];
    let up = false;
    const publish = (it: OutboxItem): Promise<PublishOutcome> => {
      if (it.msgId === "bad") return Promise.resolve({ ok: false, retry: false, reason: "too_large" });
      if (!up) return Promise.resolve({ ok: false, retry: true, reason: "disconnected" });
      sent.push(it.msgId);
      return Promise.resolve({ ok: true, duplicate: false });
    };
    const box = new Outbox({
      capacity: 5,
      publish,
      metrics: m,
      maxInFlight: 1,
      retryBaseMs: 5,
      retryMaxMs: 20,
    });
    for (let i = 1; i <= 8; i++) box.enqueue(item(i));
    equal(box.depth, 5);
    equal(box.stats().overflow, 3);
    equal(seen.overflow, 3);
    up = true;
    box.enqueue({ ...item(0), msgId: "bad" }); // full again: drops the oldest queued one (5)
    ok(await box.drained(2000));
    // 1 was in flight while 2..5 were dropped; its retry goes first, so the order is kept across retries, and
    // the refused message does not block the ones behind it.
    deepEqual(sent, ["1", "6", "7", "8"]);
    deepEqual(seen.failed, ["too_large"]);
    equal(box.stats().overflow, 4);
    equal(seen.published, 4);
    equal(seen.depth.at(-1), 0);
    ok(box.stats().retries >= 1);
    equal(box.close(), 0);
  },
);

quietTest("outbox: close abandons what is queued, counted as failed", async () => {
  const box = new Outbox({ capacity: 10, publish: () => new Promise(() => {}), maxInFlight: 1 });
  for (let i = 0; i < 4; i++) box.enqueue(item(i));
  equal(await box.drained(10), false);
  equal(box.close(), 3);
  equal(box.stats().failed, 3);
  box.enqueue(item(9));
  equal(box.stats().failed, 4);
});

natsTest(
  "outbox over a real server: server down -> queued (bounded, overflow counted) -> back -> republished once",
  async () => {
    const srv = await NatsServer.start();
    let bus: JetStreamBus | null = null;
    try {
      const { seen, m } = recordingMetrics();
      bus = await JetStreamBus.connect(
        testBusOptions(srv.url, "a", { outboxSize: 50, metrics: m, publishTimeoutMs: 1000 }),
      );
      for (let i = 1; i <= 10; i++) await bus.publishSignature(testSignature(i));
      await bus.flush(5000);
      equal(bus.stats().published, 10);

      await srv.stopProcess();
      const t0 = Date.now();
      for (let i = 11; i <= 70; i++) await bus.publishSignature(testSignature(i));
      // Publishing while the server is down returns at once: the detector is never held up.
      ok(Date.now() - t0 < 1000, "publishing into the outbox must not block");
      // 60 published into an outbox of 50: 10 are dropped and counted (the oldest queued ones; which ones
      // depends on how many went in flight before the client noticed the server was gone).
      await waitFor(() => bus!.stats().overflow === 10, 5000, "overflow count");
      equal(seen.overflow, 10);
      equal(bus.stats().depth, 50);

      await srv.startProcess();
      await bus.flush(15_000);
      equal(bus.stats().depth, 0);
      // Republish 5 that were already stored: dropped by the server's dedupe window.
      for (let i = 1; i <= 5; i++) await bus.publishSignature(testSignature(i));
      await bus.flush(5000);
      equal(bus.stats().duplicates >= 5, true);

      const ids: number[] = [];
      for await (
        const r of readRecords({ url: srv.url }, { stream: "FSMPX_TEST", startMs: Date.now() - 60_000 })
      ) {
        ids.push(parseInt(r.signature_id, 16));
      }
      // Every message that was not dropped is stored exactly once, the 10 from before the outage included.
      equal(ids.length, 60);
      equal(new Set(ids).size, 60);
      deepEqual(ids.filter((i) => i <= 10).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      ok(ids.every((i) => i >= 1 && i <= 70));
      equal(bus.stats().published, 60);
    } finally {
      await bus?.close();
      await srv.stop();
    }
  },
);
