/**
 * Regression for Deno's node:http2 server crash (nghttp2 assertion, exit 134, Deno 2.9.4-2.9.6): a client that
 * closes its channel right after receiving a stream of thousands of messages kills the process that hosts the
 * gRPC server (the fake Vizier here, in this test process). The clients run in child processes, as they must to
 * trigger it; under 2.9.6 this test aborted the test process in most runs, under the pinned 2.9.3 it passes.
 *
 * Run as `deno run -A tests/pixie_http2_regression_test.ts --h2-client <addr> <exit|stay>` it is that client.
 */
import { equal } from "node:assert/strict";
import { PixieClient } from "../pixie/client.ts";
import { FakeVizier, HTTP_RELATION, httpBatch } from "./support/fake_vizier.ts";

const MESSAGES = 3000;

if (import.meta.main && Deno.args[0] === "--h2-client") {
  const client = await PixieClient.connect({ mode: "direct", directAddr: Deno.args[1]! });
  let received = 0;
  for await (const r of client.execute({ queryStr: "stream", clusterId: "" })) {
    if (r.batch) received++;
    if (received === MESSAGES) {
      client.close(); // close the channel with the call still open, as the crash needs
      break;
    }
  }
  console.log(received);
  if (Deno.args[2] === "exit") Deno.exit(0);
}

Deno.test("the gRPC server survives clients closing after a stream of several thousand messages", async () => {
  const fake = await FakeVizier.start({ healthIntervalMs: 10 });
  const body = "x".repeat(100);
  fake.onExecute = async (c) => {
    await c.meta("t", "voice/source", HTTP_RELATION);
    // Alternate the server's pattern: finish after the last message, or keep streaming until cancelled.
    const endless = c.index % 2 === 1;
    for (let i = 0; (endless || i < MESSAGES) && !c.isCancelled(); i++) {
      await c.batch(httpBatch("t", [{ time: BigInt(i), body }]));
    }
    if (endless) await c.cancelled;
    else c.end();
  };
  try {
    const rounds = 6;
    for (let round = 0; round < rounds; round++) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-net=127.0.0.1",
          "--allow-read",
          "--allow-env",
          "--allow-sys",
          import.meta.filename!,
          "--h2-client",
          fake.address,
          round % 3 === 2 ? "exit" : "stay",
        ],
        stdout: "piped",
        stderr: "inherit",
      }).output();
      equal(out.code, 0, `client ${round} failed`);
      equal(new TextDecoder().decode(out.stdout).trim(), String(MESSAGES));

      // This process (the server) is still alive and a new client gets an answer.
      const next = await PixieClient.connect({ mode: "direct", directAddr: fake.address });
      let status: number | undefined;
      for await (const s of next.healthCheck("")) {
        status = s.code;
        break;
      }
      next.close();
      equal(status, 0);
    }
    equal(fake.executeRequests.length, rounds);
  } finally {
    await fake.stop();
  }
});
