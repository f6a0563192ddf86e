/**
 * The client's HTTP/2 receive window: with the 64 KiB default, the client answers every 32 KiB of rows with
 * WINDOW_UPDATE frames (a socket write each: ~6% of a loaded sensor's CPU, with as many extra reads), so the
 * client opens a window of {@link FLOW_CONTROL_WINDOW} bytes and acknowledges it in a few large steps. A TCP
 * relay between the client and the fake Vizier counts the bytes the client sends while it reads 8 MiB of rows.
 */
import { equal, ok } from "node:assert/strict";
import { FLOW_CONTROL_WINDOW, PixieClient } from "../pixie/client.ts";
import { FakeVizier, HTTP_RELATION, httpBatch } from "./support/fake_vizier.ts";

/** Relays TCP to `target`, counting the bytes sent from the client's side. */
function relay(target: string): { address: string; upBytes: () => number; close(): void } {
  const [host, port] = [
    target.slice(0, target.lastIndexOf(":")),
    Number(target.slice(target.lastIndexOf(":") + 1)),
  ];
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let up = 0;
  const conns: Deno.Conn[] = [];
  (async () => {
    for await (const c of listener) {
      const s = await Deno.connect({ hostname: host, port });
      conns.push(c, s);
      void (async () => {
        const buf = new Uint8Array(65536);
        try {
          for (let n; (n = await c.read(buf)) !== null;) {
            up += n;
            await s.write(buf.subarray(0, n));
          }
        } catch { /* closed */ }
      })();
      void s.readable.pipeTo(c.writable).catch(() => {});
    }
  })().catch(() => {});
  return {
    address: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    upBytes: () => up,
    close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}

Deno.test("the client acknowledges a stream of rows in few window updates", async () => {
  ok(FLOW_CONTROL_WINDOW >= 1 << 20 && FLOW_CONTROL_WINDOW <= 4 << 20);
  const fake = await FakeVizier.start({ healthIntervalMs: 60_000 });
  const body = "x".repeat(8 * 1024);
  const batches = 1024; // 8 MiB of bodies
  fake.onExecute = async (c) => {
    await c.meta("t", "voice/source", HTTP_RELATION);
    for (let i = 0; i < batches && !c.isCancelled(); i++) {
      await c.batch(httpBatch("t", [{ time: BigInt(i + 1), body }]));
    }
    await c.cancelled;
  };
  const proxy = relay(fake.address);
  const client = await PixieClient.connect({ mode: "direct", directAddr: proxy.address });
  try {
    let received = 0;
    let upAtFirst = 0;
    for await (const r of client.execute({ queryStr: "stream", clusterId: "" })) {
      if (!r.batch) continue;
      if (received === 0) upAtFirst = proxy.upBytes();
      if (++received === batches) break;
    }
    equal(received, batches);
    // Give the last frames the client wrote time to pass the relay.
    await new Promise((r) => setTimeout(r, 100));
    const up = proxy.upBytes() - upAtFirst;
    // 64 KiB windows: ~256 stream and connection updates of 13 bytes each (5.4 KB seen). 1 MiB: ~16 pairs.
    ok(up < 1024, `the client sent ${up} bytes while reading 8 MiB`);
  } finally {
    client.close();
    proxy.close();
    await fake.stop();
  }
});

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
