/**
 * A NATS connection the client closes for good (it reconnects forever otherwise, so only something it cannot
 * recover from, such as the bad credentials seed of session 30's bus review before its fix) left a sensor running
 * that published and received nothing, its /healthz still ok, until someone restarted it by hand. Now the bus says
 * so once, loudly, and `lost()` tells `run`'s /healthz, so Kubernetes restarts the sensor. A bus closed by its own
 * `close()` (a stop) is not lost.
 */
import { equal, ok } from "node:assert/strict";
import { JetStreamBus } from "../bus/jetstream.ts";
import { setLogSink } from "../util/log.ts";
import { NatsServer } from "./support/nats_server.ts";
import { testBusOptions, waitFor } from "./support/bus_fixtures.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

natsTest(
  "bus: a connection closed for good under an open bus is reported as lost; a stop is not",
  async () => {
    const srv = await NatsServer.start();
    const lines: string[] = [];
    const prev = setLogSink((l) => void lines.push(l));
    try {
      const stopped = await JetStreamBus.connect(testBusOptions(srv.url, "node-a"));
      await stopped.close();
      equal(stopped.lost(), undefined, "closed by its own stop");

      const bus = await JetStreamBus.connect(testBusOptions(srv.url, "node-b"));
      equal(bus.lost(), undefined);
      // The client gives up on the connection (what it does on an error it cannot recover from).
      await bus.connection.close();
      await waitFor(() => bus.lost() !== undefined, 5000, "the loss noticed");
      ok(
        lines.some((l) => JSON.parse(l).level === "error" && /closed for good/.test(JSON.parse(l).msg)),
        lines.join("\n"),
      );
      await bus.close();
    } finally {
      setLogSink(prev);
      await srv.stop();
    }
  },
);
