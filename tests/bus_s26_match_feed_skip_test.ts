/**
 * A sensor reads other nodes' match records from JetStream (`fsmpx.match.>`, for hops across nodes). A message
 * there that is not a record (not JSON, not a match record, a subject of another shape) is skipped and counted in
 * `fsmpx_bus_receive_failed_total{kind="match"}`, as an undecodable signature is under `kind="signature"`: it
 * was skipped without a count or a log line.
 * @module
 */
import { ok } from "node:assert/strict";
import { jetstream } from "@nats-io/jetstream";
import { connectNats } from "../bus/connection.ts";
import { NatsServer } from "./support/nats_server.ts";
import { ROOT, SensorProcess, sleep, writeSensorConfig } from "./support/sensor_process.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

natsTest({
  name: "sensor: malformed messages on the match subjects it reads are counted by reason and skipped",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const srv = await NatsServer.start();
    const dir = await Deno.makeTempDir({ prefix: "fsmpx-feed-skip-" });
    let sensor: SensorProcess | undefined;
    try {
      const config = await writeSensorConfig({
        base: `${ROOT}fixtures/demo/config.yaml`,
        dir,
        node: "node-a",
        natsUrl: srv.url,
      });
      sensor = await SensorProcess.start({
        node: "node-a",
        config,
        capture: `${ROOT}fixtures/demo/node-a.jsonl`,
        speed: 20,
      });
      const nc = await connectNats({ url: srv.url });
      try {
        const js = jetstream(nc);
        const end = Date.now() + 20_000;
        let n = 0;
        const failed = async (reason: string) =>
          await sensor!.metric("fsmpx_bus_receive_failed_total", { kind: "match", reason });
        // The feed reads from when it subscribed: published again until counted (or the deadline).
        while (Date.now() < end) {
          n++;
          await js.publish("fsmpx.match.call_audio.asr", "not json", { msgID: `junk-json-${n}` });
          await js.publish("fsmpx.match.call_audio.asr", '{"kind":"match"}', { msgID: `junk-rec-${n}` });
          await sleep(500);
          if (await failed("json") > 0 && await failed("record") > 0) break;
        }
        ok(await failed("json") > 0, `not counted: ${await failed("json")}`);
        ok(await failed("record") > 0, `not counted: ${await failed("record")}`);
        ok(sensor.exitStatus === null, "the sensor still runs");
      } finally {
        await nc.close();
      }
    } finally {
      await sensor?.kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await srv.stop();
    }
  },
});
