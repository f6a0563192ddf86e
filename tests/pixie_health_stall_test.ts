/**
 * Vizier's health stream for /readyz: a stream that stops sending statuses without failing (a proxy that keeps
 * the call open after its upstream went away) is re-opened, not waited on for ever. Real parts: the fake Vizier's
 * HealthCheck, the gRPC client and PixieHealth.
 */
import { equal, ok } from "node:assert/strict";
import { PixieClient } from "../pixie/client.ts";
import { PixieHealth } from "../pixie/health.ts";
import { setLogLevel } from "../util/log.ts";
import { FakeVizier } from "./support/fake_vizier.ts";

setLogLevel("error");

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test({
  name: "PixieHealth: a health stream that goes quiet without an error is re-opened",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // One status at once, then none for a minute: each call goes quiet with its connection alive.
    const fake = await FakeVizier.start({ healthIntervalMs: 60_000 });
    const client = await PixieClient.connect({ mode: "direct", directAddr: fake.address });
    const changes: boolean[] = [];
    const health = new PixieHealth({
      client,
      clusterId: "c",
      staleMs: 300,
      backoff: { initialMs: 20, maxMs: 50, minMs: 10 },
      onChange: (h) => void changes.push(h),
    });
    const calls = () => fake.calls.filter((c) => c.method === "HealthCheck").length;
    try {
      health.start();
      // A liveness bound (~20 s), not a timing assertion: the second call normally comes within a second.
      for (let i = 0; i < 400 && calls() < 2; i++) await sleep(50);
      ok(calls() >= 2, `HealthCheck calls: ${calls()}; health changes: ${changes.join(",")}`);
      // Each re-opened call's fresh status reads as healthy again.
      for (let i = 0; i < 400 && changes.filter((c) => c).length < 2; i++) await sleep(50);
      equal(changes.slice(0, 3).join(","), "true,false,true");
    } finally {
      await health.stop();
      client.close();
      await fake.stop();
    }
  },
});
