/**
 * A `.creds` file rotated while the sensor runs (a user JWT that expires and is renewed, a credentials Secret
 * rolled): the bus reconnects with the credentials the file holds now. It read the file once at start, so after
 * the server stopped admitting the old user every reconnection was refused for good. Real parts: nats-server with
 * nkey users, restarted with the new one; the JetStream bus.
 */
import { ok } from "node:assert/strict";
import { JetStreamBus } from "../bus/jetstream.ts";
import { NatsServer } from "./support/nats_server.ts";
import { testBusOptions, testSignature, waitFor } from "./support/bus_fixtures.ts";
import { gatedTest } from "./support/tools.ts";
import { admitting, nkeyUser as user } from "./support/nkey_users.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

natsTest(
  "auth: a credentials file rotated while the bus runs is read again when it reconnects",
  async () => {
    const before = user(), after = user();
    const dir = await Deno.makeTempDir({ prefix: "fsmpx-creds-" });
    const credsFile = `${dir}/fsmpx.creds`;
    await Deno.writeTextFile(credsFile, before.creds);
    const srv = await NatsServer.start({ configLines: admitting(before.publicKey) });
    const bus = await JetStreamBus.connect(testBusOptions(srv.url, "node-a", { credentialsFile: credsFile }));
    try {
      const got = new Set<string>();
      await bus.subscribeSignatures([], (s) => void got.add(s.id), { startTimeMs: Date.now() - 1000 });
      const first = testSignature(1), second = testSignature(2);
      await bus.publishSignature(first);
      await waitFor(() => got.has(first.id), 5000, "delivery");

      // The secret is rolled: a new user in the file, and the server, restarted, admits only it (as after the old
      // user JWT expired).
      let disconnects = 0;
      void (async () => {
        for await (const st of bus.connection.status()) if (st.type === "disconnect") disconnects++;
      })();
      await Deno.writeTextFile(credsFile, after.creds);
      srv.reconfigure(admitting(after.publicKey));
      await srv.restart();
      await waitFor(() => disconnects >= 1, 10_000, "the old user's connection closed");

      await bus.publishSignature(second);
      // A liveness bound, not a timing assertion: the reconnect normally takes a second or two.
      await waitFor(() => got.has(second.id), 20_000, "delivery after the credentials were rotated");
      ok(bus.stats().published >= 2);
    } finally {
      await bus.close();
      await srv.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);
