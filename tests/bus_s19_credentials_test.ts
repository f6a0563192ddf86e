/**
 * Credentials in a server URL written without its scheme (`user:password@host:4222`, which the config accepts
 * like `nats://...`): used, and never in a log line or an error.
 * @module
 */
import { ok } from "node:assert/strict";
import { JetStreamBus } from "../bus/jetstream.ts";
import { safeServers } from "../bus/connection.ts";
import { setLogSink } from "../util/log.ts";
import { NatsServer } from "./support/nats_server.ts";
import { testBusOptions } from "./support/bus_fixtures.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

// Registered as a secret nowhere else in this process: only what the bus does with the URL can hide it.
const PASSWORD = "NoScheme-Pw-7c1e94";

natsTest(
  "auth: user:password@host without a scheme connects with them; the password is in no log line or error",
  async () => {
    const srv = await NatsServer.start({ user: "fsmpx", password: PASSWORD });
    const lines: string[] = [];
    const prev = setLogSink((l) => void lines.push(l));
    try {
      const url = `fsmpx:${PASSWORD}@127.0.0.1:${srv.port}`;
      ok(!safeServers(url).join(",").includes(PASSWORD), `${safeServers(url)}`);
      // The credentials were not taken out of such a URL: the client did not use them either (Authorization
      // Violation), and the start-up error quoted the URL whole, password included.
      let bus: JetStreamBus | null = null;
      try {
        bus = await JetStreamBus.connect(testBusOptions(url, "node-a"));
      } catch (e) {
        ok(!(e as Error).message.includes(PASSWORD), `password in the error: ${(e as Error).message}`);
        throw e;
      } finally {
        await bus?.close();
      }
      ok(lines.some((l) => l.includes("connected to NATS JetStream")));
      for (const l of lines) ok(!l.includes(PASSWORD), `password leaked: ${l}`);
    } finally {
      setLogSink(prev);
      await srv.stop();
    }
  },
);
