/**
 * JetStreamBus.delivered after the stream was deleted and created again (by hand, or a server back with an empty
 * store): the new stream numbers its messages from 1, so the sequences the bus had acknowledged in the old one are
 * never reached again and must not be waited for.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { JetStreamBus } from "../bus/jetstream.ts";
import { connectNats } from "../bus/connection.ts";
import { NatsServer } from "./support/nats_server.ts";
import { testBusOptions, testSignature, waitFor } from "./support/bus_fixtures.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

natsTest(
  "jetstream bus: delivered() after the stream was created again waits for the new stream's sequences",
  async () => {
    const srv = await NatsServer.start();
    const bus = await JetStreamBus.connect(testBusOptions(srv.url, "node-a", { publishTimeoutMs: 1000 }));
    try {
      const got: number[] = [];
      await bus.subscribeSignatures(["m"], (s) => void got.push(parseInt(s.id, 16)));
      for (let i = 1; i <= 50; i++) await bus.publishSignature(testSignature(i));
      await bus.flush(5000);
      equal(await bus.delivered(5000), true);
      const nc = await connectNats({ url: srv.url });
      try {
        await (await jetstreamManager(nc)).streams.delete("FSMPX_TEST");
      } finally {
        await nc.close();
      }
      // The next publish finds no stream and the bus creates it again: these are its sequences 1 and 2.
      for (let i = 51; i <= 52; i++) await bus.publishSignature(testSignature(i));
      await bus.flush(10_000);
      await waitFor(() => got.length >= 52, 15_000, "the signatures published into the new stream");
      // Every signature is handed on: delivered() says so at once. It waited for sequence 50 of the old stream
      // until its deadline, which at a live stop is the whole stop's (20 s), leaving the drain none.
      const t0 = performance.now();
      equal(await bus.delivered(5000), true);
      const ms = performance.now() - t0;
      ok(ms < 2000, `delivered() took ${ms.toFixed(0)} ms`);
      // And it still waits for what is not handed on yet.
      await bus.publishSignature(testSignature(53));
      await bus.flush(5000);
      equal(await bus.delivered(5000), true);
      deepEqual(got.slice(-3), [51, 52, 53]);
    } finally {
      await bus.close();
      await srv.stop();
    }
  },
);
