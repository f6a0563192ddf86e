/**
 * A `.creds` file rewritten with a seed that is no seed (a bad checksum, a JWT or a public key pasted in its place)
 * while the sensor runs: the client signs the server's nonce inside its handshake, and a seed it cannot decode
 * made it close the connection for good. The bus then never published or read again (the outbox held everything,
 * the consumer retried "closed connection" for ever), even once the file was fixed, and nothing restarted the
 * sensor. Real parts: nats-server with nkey users, restarted with the new one; the JetStream bus.
 */
import { equal, ok, rejects } from "node:assert/strict";
import { nkeys } from "@nats-io/transport-node";
import { JetStreamBus } from "../bus/jetstream.ts";
import { NatsServer } from "./support/nats_server.ts";
import { testBusOptions, testSignature, waitFor } from "./support/bus_fixtures.ts";
import { gatedTest } from "./support/tools.ts";
import { admitting, credsText, nkeyUser as user } from "./support/nkey_users.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

/** A seed of the right shape whose checksum is wrong (one character of a real one changed). */
function brokenSeed(): string {
  const seed = new TextDecoder().decode(nkeys.createUser().getSeed());
  const i = seed.length - 3;
  return seed.slice(0, i) + (seed[i] === "A" ? "B" : "A") + seed.slice(i + 1);
}

natsTest(
  "auth: a credentials file rewritten with a bad seed does not end the bus; fixed, it reconnects with it",
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
      await bus.publishSignature(testSignature(1));
      await waitFor(() => got.has(testSignature(1).id), 5000, "delivery");

      let disconnects = 0;
      void (async () => {
        for await (const st of bus.connection.status()) if (st.type === "disconnect") disconnects++;
      })();
      // The Secret is rolled with a broken seed, and the server, restarted, admits only the new user.
      await Deno.writeTextFile(credsFile, credsText(brokenSeed()));
      srv.reconfigure(admitting(after.publicKey));
      await srv.restart();
      await waitFor(() => disconnects >= 1, 10_000, "the old user's connection closed");
      // Reconnection attempts with the broken file: each one fails, the connection stays open for the next.
      await new Promise((r) => setTimeout(r, 2000));
      equal(bus.connection.isClosed(), false, "the client closed the connection for good on the bad seed");

      // The Secret is fixed: the next attempt reads it and the bus publishes and reads again.
      await Deno.writeTextFile(credsFile, after.creds);
      await bus.publishSignature(testSignature(2));
      // A liveness bound, not a timing assertion: the reconnect normally takes a few seconds.
      await waitFor(() => got.has(testSignature(2).id), 20_000, "delivery after the file was fixed");
      ok(bus.stats().published >= 2);
    } finally {
      await bus.close();
      await srv.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);

natsTest("auth: a credentials file with a bad seed at start-up is an error naming the file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fsmpx-creds-" });
  const credsFile = `${dir}/fsmpx.creds`;
  await Deno.writeTextFile(credsFile, credsText(brokenSeed()));
  const srv = await NatsServer.start({ configLines: admitting(user().publicKey) });
  try {
    await rejects(
      JetStreamBus.connect(testBusOptions(srv.url, "node-a", { credentialsFile: credsFile })),
      (e: Error) => e.message.includes(credsFile) && /no valid user seed/.test(e.message),
    );
  } finally {
    await srv.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
