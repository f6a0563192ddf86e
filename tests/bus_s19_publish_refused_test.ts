/**
 * A publish the server refuses for good (the user may not publish on that subject) is counted and dropped: held
 * and retried as if the connection were down, refused messages went out first on every attempt and, once a
 * batch of them (256) waited, nothing behind them was ever sent.
 * @module
 */
import { equal, ok } from "node:assert/strict";
import { type BusMetrics } from "../bus/outbox.ts";
import { JetStreamBus } from "../bus/jetstream.ts";
import { NatsServer } from "./support/nats_server.ts";
import { testBusOptions, testMatchRecord, testSignature, waitFor } from "./support/bus_fixtures.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

natsTest(
  "jetstream bus: a publish refused by permissions is counted as failed at once and does not hold up the rest",
  async () => {
    // A sensor user whose permissions lack the match subjects (a nats.conf edited by hand, an older one).
    const srv = await NatsServer.start({
      configLines: [
        "authorization { users: [",
        '  { user: sensor, password: sensorpw, permissions: { publish: { allow: ["$JS.API.>", "fsmpx.sig.>"] },',
        '    subscribe: { allow: ["_INBOX.>"] } } }',
        "] }",
      ],
    });
    let bus: JetStreamBus | null = null;
    try {
      const failed: string[] = [];
      const metrics: BusMetrics = {
        outboxDepth: () => {},
        outboxOverflow: () => {},
        published: () => {},
        publishFailed: (kind, reason) => void failed.push(`${kind}:${reason}`),
      };
      bus = await JetStreamBus.connect(
        testBusOptions(srv.url.replace("nats://", "nats://sensor:sensorpw@"), "node-a", { metrics }),
      );
      const b = bus;
      for (let i = 1; i <= 300; i++) await b.publishMatch(testMatchRecord(i));
      for (let i = 1; i <= 300; i++) await b.publishSignature(testSignature(i));
      await waitFor(() => b.stats().published === 300, 5000, "the signatures published");
      await waitFor(() => b.stats().depth === 0, 2000, "an empty outbox");
      equal(b.stats().failed, 300);
      ok(failed.length === 300 && failed.every((f) => f === "match:rejected"), `${failed.slice(0, 3)}`);
    } finally {
      await bus?.close();
      await srv.stop();
    }
  },
);
