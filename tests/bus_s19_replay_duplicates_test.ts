/**
 * `replay` over a stream that holds a record twice: the stream drops a repeated message id only within its
 * dedupe window (`nats.duplicate_window`, 2 min), so a publish whose ack was lost in an outage longer than that is
 * stored again when the outbox republishes it. The UI's store holds such a record once; replay counted it twice
 * (two matches, a signature twice in the recall's denominator).
 * @module
 */
import { deepEqual, equal } from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { JetStreamBus } from "../bus/jetstream.ts";
import { connectNats } from "../bus/connection.ts";
import { NatsServer } from "./support/nats_server.ts";
import { testBusOptions, testMatchRecord, testSignature } from "./support/bus_fixtures.ts";
import { parseRecords, ROOT, runMain, writeSensorConfig } from "./support/sensor_process.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

natsTest("replay: a record stored twice (republished after the dedupe window) is read once", async () => {
  const srv = await NatsServer.start();
  const dir = await Deno.makeTempDir({ prefix: "fsmpx-replay-dup-" });
  try {
    // The stream `replay` reads (nats.stream's default), with a dedupe window of 1 s.
    const a = await JetStreamBus.connect(
      testBusOptions(srv.url, "node-a", { stream: "FSMPX", duplicateWindowMs: 1000 }),
    );
    try {
      for (const round of [1, 2]) {
        await a.publishSignature(testSignature(1));
        await a.publishMatch(testMatchRecord(1));
        await a.publishMatch(testMatchRecord(1, "tts"));
        await a.flush(5000);
        if (round === 1) await new Promise((r) => setTimeout(r, 1500));
      }
    } finally {
      await a.close();
    }
    const nc = await connectNats({ url: srv.url });
    try {
      equal((await (await jetstreamManager(nc)).streams.info("FSMPX")).state.messages, 6);
    } finally {
      await nc.close();
    }
    const config = await writeSensorConfig({
      base: `${ROOT}fixtures/demo/config.yaml`,
      dir,
      node: "viewer",
      natsUrl: srv.url,
    });
    const out = await runMain(["replay", "--config", config, "--since", "1h", "--format", "records"]);
    equal(out.code, 0, out.stderr);
    const keys = parseRecords(out.stdout).map((r) =>
      r.kind === "signature" ? "signature" : `match ${r.stage}`
    );
    deepEqual(keys, ["signature", "match asr", "match tts"]);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await srv.stop();
  }
});
