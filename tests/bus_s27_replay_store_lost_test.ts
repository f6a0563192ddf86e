/**
 * `replay` over a server that restarts without its store mid-read (an emptyDir, a lost volume) while sensors run:
 * they create the stream again at once, numbered from 1. The read went on after its last sequence in the new
 * stream, found nothing there and ended as if the range were complete, printing part of it as the whole.
 * Real parts: nats-server restarted on an empty store, a sensor's JetStream bus, the replay reader.
 */
import { ok, rejects } from "node:assert/strict";
import { JetStreamBus } from "../bus/jetstream.ts";
import { readRecords, StreamReadStalledError } from "../bus/replay_reader.ts";
import { NatsServer } from "./support/nats_server.ts";
import { testBusOptions, testSignature } from "./support/bus_fixtures.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

const STREAM = "FSMPX_TEST";

natsTest(
  "replay reader: a stream lost with the server's store and created again mid-read fails the read (stallError)",
  async () => {
    const srv = await NatsServer.start();
    const sensor = await JetStreamBus.connect(testBusOptions(srv.url, "node-a"));
    try {
      const t0 = Date.now() - 1000;
      for (let i = 1; i <= 2000; i++) await sensor.publishSignature(testSignature(i));
      await sensor.flush(30_000);
      let n = 0;
      const read = async () => {
        const opts = { stream: STREAM, startMs: t0, idleTimeoutMs: 3000, stallError: true };
        for await (const _ of readRecords({ url: srv.url }, opts)) {
          if (++n !== 100) continue;
          // The server comes back with an empty store; the sensor creates the stream again and publishes on.
          await srv.stopProcess();
          await Deno.remove(`${srv.storeDir}/jetstream`, { recursive: true });
          await srv.startProcess();
          for (let i = 2001; i <= 2010; i++) await sensor.publishSignature(testSignature(i));
          await sensor.flush(30_000);
        }
      };
      await rejects(read(), (e: Error) => {
        ok(e instanceof StreamReadStalledError, `${e.name}: ${e.message}`);
        ok(/created again/.test(e.message), e.message);
        return true;
      });
      ok(n < 2000, `${n} records read`);
    } finally {
      await sensor.close();
      await srv.stop();
    }
  },
);
