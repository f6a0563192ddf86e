/**
 * A `run` sensor exporting traces: what its OTLP exporter sent reaches the collector and `/metrics`
 * (`fsmpx_otlp_spans_total`). Real parts: the sensor process replaying the e2e capture, a collector on loopback.
 */
import { equal, ok } from "node:assert/strict";
import { parse, stringify } from "yaml";
import { killAll, ROOT, SensorProcess, sleep, writeSensorConfig } from "./support/sensor_process.ts";

Deno.test({
  name: "run: the spans a sensor exports are counted in /metrics as the collector received them",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "fsmpx-otlp-" });
    let received = 0;
    const collector = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
      await req.arrayBuffer();
      received++;
      return new Response(new Uint8Array(0), { headers: { "content-type": "application/x-protobuf" } });
    });
    const sensors: SensorProcess[] = [];
    try {
      const config = await writeSensorConfig({
        base: `${ROOT}fixtures/e2e/config.yaml`,
        dir,
        node: "node-a",
        natsUrl: "",
      });
      const doc = parse(await Deno.readTextFile(config)) as Record<string, unknown>;
      doc["otlp"] = { endpoint: `http://127.0.0.1:${collector.addr.port}` };
      await Deno.writeTextFile(config, stringify(doc));
      const a = await SensorProcess.start({
        node: "node-a",
        config,
        capture: `${ROOT}fixtures/e2e/node-a.jsonl`,
        speed: 8,
      });
      sensors.push(a);
      await a.waitReplayed();
      equal(await a.metric("signatures_detected_total"), 10);
      // A batch leaves at most 2 s after its first span.
      let sent = 0;
      for (let i = 0; i < 100 && sent < 10; i++) {
        sent = await a.metric("fsmpx_otlp_spans_total", { outcome: "sent" });
        if (sent < 10) await sleep(100);
      }
      equal(sent, 10, "a root span per signature, sent");
      ok(received >= 1, "the collector got them");
      equal(await a.metric("fsmpx_otlp_spans_total", { outcome: "failed" }), 0);
      equal((await a.stop()).code, 0);
    } finally {
      await killAll(sensors);
      await collector.shutdown();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
