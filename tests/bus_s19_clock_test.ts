/**
 * What a peer can send the clock-skew estimator: hellos are read from a subject every sensor may publish on, so a
 * garbled or hostile one must not reach the connection the node's bus shares.
 * @module
 */
import { deepEqual, equal } from "node:assert/strict";
import type { NatsConnection } from "@nats-io/transport-node";
import { ClockSkewEstimator } from "../bus/clock_skew.ts";
import { connectNats } from "../bus/connection.ts";
import { CLOCK_HELLO_SUBJECT } from "../bus/subjects.ts";
import { NatsServer } from "./support/nats_server.ts";
import { waitFor } from "./support/bus_fixtures.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

natsTest(
  "clock skew: a hello with a name too long for a subject is ignored; the node's connection is not dropped",
  async () => {
    const srv = await NatsServer.start();
    const conns: NatsConnection[] = [];
    const estimators: ClockSkewEstimator[] = [];
    try {
      const ncA = await connectNats({ url: srv.url }), ncB = await connectNats({ url: srv.url });
      const other = await connectNats({ url: srv.url });
      conns.push(ncA, ncB, other);
      const drops: string[] = [];
      (async () => {
        for await (const s of ncA.status()) if (s.type === "disconnect") drops.push(s.type);
      })().catch(() => {});
      const a = new ClockSkewEstimator({ nc: ncA, node: "node-a", samples: 2, timeoutMs: 500 });
      const b = new ClockSkewEstimator({ nc: ncB, node: "node-b" });
      estimators.push(a, b);
      await a.start(false);
      // A request to `fsmpx.clock.n.<5,000 bytes>` is a protocol line past the server's 4 KiB limit: the
      // server closed node-a's connection (its bus's too) on each of the round's exchanges.
      other.publish(CLOCK_HELLO_SUBJECT, new TextEncoder().encode("x".repeat(5000)));
      await other.flush();
      await b.start(false);
      await waitFor(() => a.peers().includes("node-b"), 5000, "the real peer's hello");
      await a.round();
      deepEqual(a.peers(), ["node-b"]);
      equal(a.offsets().size, 1);
      deepEqual(drops, []);
    } finally {
      for (const e of estimators) await e.stop();
      for (const c of conns) await c.close();
      await srv.stop();
    }
  },
);
