/**
 * A clock reply with times that are not numbers (16 bytes of NaN or Infinity, from anything that answers on the
 * peer's subject) is skipped like a reply of the wrong size: the exchange with the lowest round trip was chosen by
 * `<`, which a NaN round trip never loses, so one such reply among a round's 8 made the peer's offset NaN
 * (node_clock_offset_seconds NaN) however good the other 7 were.
 * @module
 */
import { ok } from "node:assert/strict";
import { ClockSkewEstimator } from "../bus/clock_skew.ts";
import { connectNats } from "../bus/connection.ts";
import { clockSubject } from "../bus/subjects.ts";
import { withClockPeers } from "./support/bus_fixtures.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

natsTest("clock skew: replies whose times are not finite are skipped, the others measure", async () => {
  await withClockPeers(async ({ srv, conns, estimators }) => {
    const ncA = await connectNats({ url: srv.url }), ncB = await connectNats({ url: srv.url });
    conns.push(ncA, ncB);
    // A peer answering its first two requests with NaN and Infinity, then with its clock (250 ms ahead).
    let n = 0;
    ncB.subscribe(clockSubject("node-b"), {
      callback: (_err, msg) => {
        const out = new Uint8Array(16);
        const view = new DataView(out.buffer);
        const bad = [NaN, Infinity][n++];
        view.setFloat64(0, bad ?? Date.now() + 250, true);
        view.setFloat64(8, bad ?? Date.now() + 250, true);
        msg.respond(out);
      },
    });
    await ncB.flush();
    const offsets: number[] = [];
    const a = new ClockSkewEstimator({ nc: ncA, node: "node-a", onOffset: (_p, s) => void offsets.push(s) });
    estimators.push(a);
    await a.start(false);
    a.addPeer("node-b");
    await a.round();
    const got = a.offsets().get("node-b");
    ok(got !== undefined && Number.isFinite(got) && Math.abs(got - 0.25) < 0.02, `offset ${got}`);
    ok(offsets.every(Number.isFinite), `reported ${offsets}`);
  });
});
