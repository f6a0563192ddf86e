/**
 * A password written into a server URL as it is, with an `@` in it (`nats://user:p@ss@host:4222`): the userinfo
 * ends at the last `@` (as URL parsers and the config loader's secret registration read it), so the whole
 * password is used and none of it is in a log line or an error.
 * @module
 */
import { deepEqual, ok } from "node:assert/strict";
import { JetStreamBus } from "../bus/jetstream.ts";
import { safeServers, urlCredentials } from "../bus/connection.ts";
import { setLogSink } from "../util/log.ts";
import { NatsServer } from "./support/nats_server.ts";
import { testBusOptions } from "./support/bus_fixtures.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

// Registered as a secret nowhere else in this process: only what the bus does with the URL can hide it.
const HEAD = "AtSign-Pw", TAIL = "tail-5d02b7";
const PASSWORD = `${HEAD}@${TAIL}`;

Deno.test("connection: a URL password with '@' is taken whole and no part of it stays in the logged URL", () => {
  for (const scheme of ["nats://", ""]) {
    const url = `${scheme}fsmpx:${PASSWORD}@127.0.0.1:4222`;
    deepEqual(safeServers(url), [`${scheme}127.0.0.1:4222`]);
    deepEqual(urlCredentials(url), { user: "fsmpx", password: PASSWORD });
  }
  deepEqual(urlCredentials(`nats://${PASSWORD}@127.0.0.1:4222`), { token: PASSWORD });
});

natsTest(
  "auth: user:password@host with '@' in the password connects with it; no part of it in a log line or error",
  async () => {
    const srv = await NatsServer.start({ user: "fsmpx", password: PASSWORD });
    const lines: string[] = [];
    const prev = setLogSink((l) => void lines.push(l));
    try {
      const url = `nats://fsmpx:${PASSWORD}@127.0.0.1:${srv.port}`;
      let bus: JetStreamBus | null = null;
      try {
        bus = await JetStreamBus.connect(testBusOptions(url, "node-a"));
      } catch (e) {
        const msg = (e as Error).message;
        ok(!msg.includes(HEAD) && !msg.includes(TAIL), `password in the error: ${msg}`);
        throw e;
      } finally {
        await bus?.close();
      }
      ok(lines.some((l) => l.includes("connected to NATS JetStream")));
      for (const l of lines) ok(!l.includes(HEAD) && !l.includes(TAIL), `password leaked: ${l}`);
    } finally {
      setLogSink(prev);
      await srv.stop();
    }
  },
);

Deno.test("connection: a URL password with a '%' that is no escape is taken as written (was 'URI malformed')", () => {
  deepEqual(urlCredentials("nats://fsmpx:50%off-Pw@127.0.0.1:4222"), {
    user: "fsmpx",
    password: "50%off-Pw",
  });
  deepEqual(urlCredentials("nats://fsmpx:a%40b@127.0.0.1:4222"), { user: "fsmpx", password: "a@b" });
  deepEqual(urlCredentials("nats://100%tok@127.0.0.1:4222"), { token: "100%tok" });
});
