import { equal, match, ok, rejects } from "node:assert/strict";
import { JetStreamBus } from "../bus/jetstream.ts";
import { setLogSink } from "../util/log.ts";
import { NatsServer } from "./support/nats_server.ts";
import { testBusOptions, testSignature, waitFor } from "./support/bus_fixtures.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server", "openssl"]);

const TOKEN = "tok-5f1c9a7e3b2d4c6a";
const PASSWORD = "pw-9d8c7b6a5f4e3d2c";

/** Runs `fn` with every log line captured; returns them. */
async function capturingLogs(fn: () => Promise<void>): Promise<string[]> {
  const lines: string[] = [];
  const prev = setLogSink((l) => void lines.push(l));
  try {
    await fn();
  } finally {
    setLogSink(prev);
  }
  return lines;
}

let nextSig = 1;

/** A connect, a publish, a consume, a server restart and a close: every path that logs. */
async function session(
  srv: NatsServer,
  over: Parameters<typeof testBusOptions>[2],
  url = srv.url,
): Promise<void> {
  const bus = await JetStreamBus.connect(testBusOptions(url, "node-a", over));
  try {
    const got = new Set<string>();
    await bus.subscribeSignatures([], (s) => void got.add(s.id), { startTimeMs: Date.now() - 1000 });
    const first = testSignature(nextSig++), second = testSignature(nextSig++);
    await bus.publishSignature(first);
    await waitFor(() => got.has(first.id), 5000, "delivery");
    await srv.restart();
    await bus.publishSignature(second);
    await bus.flush(10_000);
    await waitFor(() => got.has(second.id), 8000, "delivery after restart");
  } finally {
    await bus.close();
  }
}

natsTest(
  "auth: token - connects with it, refused without or with a wrong one; the token is never logged",
  async () => {
    const srv = await NatsServer.start({ token: TOKEN });
    try {
      const lines = await capturingLogs(async () => {
        await session(srv, { token: TOKEN });
        await rejects(
          JetStreamBus.connect(testBusOptions(srv.url, "x")),
          /cannot connect to NATS.*[Aa]uthoriz/,
        );
        // Refused repeatedly: the server's reset after its -ERR must not crash the process (see
        // installSocketResetGuard), every time a clear error instead.
        for (let i = 0; i < 10; i++) {
          await rejects(
            JetStreamBus.connect(testBusOptions(srv.url, "x", { token: TOKEN + "-wrong" })),
            (e: Error) => {
              match(e.message, /[Aa]uthoriz/);
              ok(!e.message.includes(TOKEN));
              return true;
            },
          );
        }
      });
      ok(lines.some((l) => l.includes("connected to NATS JetStream")));
      ok(lines.some((l) => l.includes("NATS connection lost")), "the session went through a reconnect");
      for (const l of lines) ok(!l.includes(TOKEN), `token leaked: ${l}`);
    } finally {
      await srv.stop();
    }
  },
);

natsTest("auth: user/password, also inside the URL; the password is never logged", async () => {
  const srv = await NatsServer.start({ user: "fsmpx", password: PASSWORD });
  try {
    const lines = await capturingLogs(async () => {
      await session(srv, { user: "fsmpx", password: PASSWORD });
      await session(srv, {}, `nats://fsmpx:${PASSWORD}@127.0.0.1:${srv.port}`);
      await rejects(
        JetStreamBus.connect(testBusOptions(srv.url, "x", { user: "fsmpx", password: "nope-nope" })),
        /[Aa]uthoriz/,
      );
      await rejects(
        JetStreamBus.connect(testBusOptions(`nats://fsmpx:${PASSWORD}x@127.0.0.1:${srv.port}`, "x")),
        (e: Error) => {
          ok(!e.message.includes(PASSWORD), e.message);
          return true;
        },
      );
    });
    ok(lines.some((l) => l.includes("connected to NATS JetStream")));
    for (const l of lines) ok(!l.includes(PASSWORD), `password leaked: ${l}`);
  } finally {
    await srv.stop();
  }
});

async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" }).output();
  if (!out.success) throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
}

/** A CA and a server certificate for 127.0.0.1 signed by it. */
async function makeCerts(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  await openssl(
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      "2",
      "-subj",
      "/CN=fsmpx-test-ca",
    ],
    dir,
  );
  await openssl([
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
    "-subj",
    "/CN=127.0.0.1",
  ], dir);
  // DNS:localhost too: for an IP address the client sends no SNI name and Deno's node:tls then checks the
  // certificate against "localhost" (a real deployment uses a DNS name, e.g. nats.fsmpx).
  await Deno.writeTextFile(`${dir}/ext.cnf`, "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  await openssl(
    [
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "server.pem",
      "-days",
      "2",
      "-extfile",
      "ext.cnf",
    ],
    dir,
  );
  return { ca: `${dir}/ca.pem`, cert: `${dir}/server.pem`, key: `${dir}/server.key` };
}

natsTest("auth: TLS verified against the configured CA; an unknown CA is refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fsmpx-tls-" });
  let srv: NatsServer | null = null;
  try {
    const certs = await makeCerts(dir);
    srv = await NatsServer.start({ tls: { certFile: certs.cert, keyFile: certs.key } });
    const bus = await JetStreamBus.connect(testBusOptions(srv.url, "node-a", { tls: { caFile: certs.ca } }));
    try {
      await bus.publishSignature(testSignature(1));
      await bus.flush(5000);
      equal(bus.stats().published, 1);
    } finally {
      await bus.close();
    }
    // Without the CA the server's certificate cannot be verified.
    await rejects(JetStreamBus.connect(testBusOptions(srv.url, "x")), /cannot connect to NATS/);
  } finally {
    await srv?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("auth: an unreadable credentials file is a clear start-up error", async () => {
  await rejects(
    JetStreamBus.connect(
      testBusOptions("nats://127.0.0.1:1", "x", { credentialsFile: "/nonexistent/fsmpx.creds" }),
    ),
    /cannot read nats\.credentials_file \/nonexistent\/fsmpx\.creds/,
  );
});
