/**
 * A stream that exists before the sensors with limits of its own (made by hand, by another tool, by an older
 * fsm-px): what start-up makes of it. The configuration promises that a restarted sensor recovers every live
 * signature and that `replay` reads the retention period back; limits that keep fewer messages break both
 * without a sound.
 * @module
 */
import { deepEqual, equal, rejects } from "node:assert/strict";
import { RetentionPolicy } from "@nats-io/jetstream";
import { JetStreamBus } from "../bus/jetstream.ts";
import { NatsServer } from "./support/nats_server.ts";
import { preexistingStream, testBusOptions, testSignature, waitFor } from "./support/bus_fixtures.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

for (
  const [what, over] of [["max_msgs_per_subject 1", { max_msgs_per_subject: 1 }], ["max_msgs 2", {
    max_msgs: 2,
  }]] as const
) {
  natsTest(`stream set-up: an existing stream with ${what} is brought to the configured limits`, async () => {
    const srv = await NatsServer.start();
    const buses: JetStreamBus[] = [];
    try {
      await preexistingStream(srv.url, over);
      const t0 = Date.now() - 1000;
      const a = await JetStreamBus.connect(testBusOptions(srv.url, "node-a"));
      buses.push(a);
      for (let i = 1; i <= 5; i++) await a.publishSignature(testSignature(i));
      await a.flush(5000);
      // A sensor (re)starting now must recover all five: the stream kept only the newest one or two.
      const b = await JetStreamBus.connect(testBusOptions(srv.url, "node-b"));
      buses.push(b);
      const got: number[] = [];
      await b.subscribeSignatures(["m"], (s) => void got.push(parseInt(s.id, 16)), { startTimeMs: t0 });
      await waitFor(() => got.length >= 5, 5000, `5 signatures (got ${got})`).catch(() => {});
      deepEqual(got, [1, 2, 3, 4, 5]);
    } finally {
      for (const b of buses) await b.close();
      await srv.stop();
    }
  });
}

natsTest(
  "stream set-up: an existing stream that does not keep messages (interest, work queue) is a clear start-up error",
  async () => {
    for (const retention of [RetentionPolicy.Interest, RetentionPolicy.Workqueue]) {
      const srv = await NatsServer.start();
      try {
        await preexistingStream(srv.url, { retention });
        // Interest: it ran, and a restarted sensor or replay found nothing stored; work queue: every node's
        // subscription failed with "consumer in pull mode requires ack policy".
        await rejects(JetStreamBus.connect(testBusOptions(srv.url, "node-a")), (e: Error) => {
          equal(
            /retention "(interest|workqueue)".*needs "limits".*delete the stream/.test(e.message),
            true,
            e.message,
          );
          return true;
        });
      } finally {
        await srv.stop();
      }
    }
  },
);
