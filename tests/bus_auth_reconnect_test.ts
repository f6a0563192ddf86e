/**
 * The NATS connection reconnects for ever, through refused authentications too: a server that comes back
 * refusing the sensor's credentials for a while (its accounts not loaded yet, a secret rolled out late) must not
 * end the bus for good. Real parts: nats-server processes on one port, the JetStream bus.
 */
import { JetStreamBus } from "../bus/jetstream.ts";
import { NatsServer } from "./support/nats_server.ts";
import { testBusOptions, testSignature, waitFor } from "./support/bus_fixtures.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

const TOKEN = "tok-3a9e7c1b5d2f4e6a";

natsTest(
  "bus: a server that refuses the credentials for a while is reconnected to once it takes them again",
  async () => {
    const srv = await NatsServer.start({ token: TOKEN });
    let refusing: NatsServer | undefined;
    const bus = await JetStreamBus.connect(testBusOptions(srv.url, "node-a", { token: TOKEN }));
    try {
      const got = new Set<string>();
      await bus.subscribeSignatures([], (s) => void got.add(s.id), { startTimeMs: Date.now() - 1000 });
      const first = testSignature(1), second = testSignature(2);
      await bus.publishSignature(first);
      await waitFor(() => got.has(first.id), 5000, "delivery");

      // The server comes back on the same port with another token: the client's reconnects are refused.
      let refusals = 0;
      void (async () => {
        for await (const st of bus.connection.status()) {
          if (st.type === "error" && /Authorization/i.test(String(st.error))) refusals++;
        }
      })();
      await srv.stopProcess();
      refusing = await NatsServer.start({ port: srv.port, token: "not-the-sensor-token" });
      await waitFor(() => refusals >= 2, 20_000, "reconnects refused");
      await new Promise((r) => setTimeout(r, 1000));
      await refusing.stop();
      refusing = undefined;

      // The right server is back: the bus reconnects, publishes what it held and reads again.
      await srv.startProcess();
      await bus.publishSignature(second);
      // A liveness bound, not a timing assertion: the reconnect normally takes a few seconds.
      await waitFor(() => got.has(second.id), 20_000, "delivery after the refusals");
    } finally {
      await bus.close();
      await refusing?.stop();
      await srv.stop();
    }
  },
);
