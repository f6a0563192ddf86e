/**
 * The clock responder answers only a request's own inbox. The sensors' NATS user may publish responses on any
 * subject a request names (allow_responses), so a message to a sensor's clock subject naming another reply subject
 * (a stream's API, a signature subject) had the sensor publish its 16-byte answer there.
 * @module
 */
import { deepEqual, ok } from "node:assert/strict";
import { ClockSkewEstimator } from "../bus/clock_skew.ts";
import { connectNats } from "../bus/connection.ts";
import { clockSubject } from "../bus/subjects.ts";
import { withClockPeers } from "./support/bus_fixtures.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

natsTest(
  "clock responder: answers a request's inbox, never a subject a message names otherwise",
  async () => {
    await withClockPeers(async ({ srv, conns, estimators }) => {
      const sensor = await connectNats({ url: srv.url }), other = await connectNats({ url: srv.url });
      conns.push(sensor, other);
      const b = new ClockSkewEstimator({ nc: sensor, node: "node-b" });
      estimators.push(b);
      await b.start(false);
      const landed: string[] = [];
      other.subscribe("fsmpx.sig.m.forged", { callback: (_e, m) => void landed.push(m.subject) });
      await other.flush();
      other.publish(clockSubject("node-b"), undefined, { reply: "fsmpx.sig.m.forged" });
      await other.flush();
      // A real request still gets its answer.
      const r = await other.request(clockSubject("node-b"), undefined, { timeout: 2000 });
      ok(r.data.length === 16);
      await sensor.flush();
      await other.flush();
      deepEqual(landed, []);
    });
  },
);
