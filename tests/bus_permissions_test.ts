/**
 * The NATS users of k8s/nats/nats.conf, on a real nats-server given that file's authorization block: the sensor
 * user can do everything a sensor does (create the stream, publish and read signatures, answer and ask clock
 * requests) and cannot delete or purge the stream; the viewer reads and cannot publish signatures.
 */
import { equal, ok, rejects } from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { JetStreamBus } from "../bus/jetstream.ts";
import { ClockSkewEstimator } from "../bus/clock_skew.ts";
import { setLogSink } from "../util/log.ts";
import { natsConfAuthorization, NatsServer } from "./support/nats_server.ts";
import { testBusOptions, testSignature, waitFor } from "./support/bus_fixtures.ts";
import { ROOT } from "./support/sensor_process.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

setLogSink(() => {});

const PW = {
  NATS_USER: "fsm-px",
  NATS_PASSWORD: "s-pw",
  NATS_VIEWER_PASSWORD: "v-pw",
  NATS_ADMIN_PASSWORD: "a-pw",
};

const authorization = () => natsConfAuthorization(ROOT, PW);

natsTest({
  name: "nats.conf users: a sensor does all it needs and cannot delete the stream; a viewer cannot publish",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const srv = await NatsServer.start({ configLines: await authorization() });
    const opened: { close(): Promise<void> }[] = [];
    try {
      const sensor = (node: string) =>
        JetStreamBus.connect(
          testBusOptions(srv.url, node, { stream: "FSMPX", user: PW.NATS_USER, password: PW.NATS_PASSWORD }),
        );
      const a = await sensor("node-a");
      opened.push(a);
      const b = await sensor("node-b");
      opened.push(b);
      const got = new Set<string>();
      await b.subscribeSignatures([], (s) => void got.add(s.id), { startTimeMs: Date.now() - 1000 });
      const sig = testSignature(7);
      await a.publishSignature(sig);
      await a.flush(5000);
      equal(a.stats().failed, 0);
      await waitFor(() => got.has(sig.id), 5000, "the signature through the stream");

      // Clock requests between two sensors (core request/reply on fsmpx.clock.*).
      const ea = new ClockSkewEstimator({ nc: a.connection, node: "node-a", samples: 2 });
      const eb = new ClockSkewEstimator({ nc: b.connection, node: "node-b", samples: 2 });
      await ea.start(false);
      await eb.start(false);
      ok((await ea.probe("node-b")) !== null, "a sensor answers another's clock request");
      await ea.stop();
      await eb.stop();

      // What a sensor may not do.
      const nc = await connect({ servers: srv.url, user: PW.NATS_USER, pass: PW.NATS_PASSWORD });
      opened.push({ close: () => nc.close() });
      const jsm = await jetstreamManager(nc);
      await rejects(jsm.streams.delete("FSMPX"), /permission|authoriz/i);
      await rejects(jsm.streams.purge("FSMPX"), /permission|authoriz/i);
      equal((await jsm.streams.info("FSMPX")).state.messages >= 1, true, "the stream is intact");

      // The viewer reads, and its publishes of signatures are refused by the server.
      const viewer = await connect({
        servers: srv.url,
        user: "fsm-px-viewer",
        pass: PW.NATS_VIEWER_PASSWORD,
      });
      opened.push({ close: () => viewer.close() });
      const vjsm = await jetstreamManager(viewer);
      equal((await vjsm.streams.info("FSMPX")).config.name, "FSMPX");
      const errors: string[] = [];
      (async () => {
        for await (const s of viewer.status()) if (s.type === "error") errors.push(String(s.error));
      })().catch(() => {});
      viewer.publish("fsmpx.sig.m", new Uint8Array(8));
      await viewer.flush();
      await waitFor(() => errors.some((e) => /permission/i.test(e)), 5000, "the permissions violation");
      equal((await jsm.streams.info("FSMPX")).state.messages, 1, "nothing the viewer sent was stored");

      // The admin may delete it.
      const admin = await connect({ servers: srv.url, user: "fsm-px-admin", pass: PW.NATS_ADMIN_PASSWORD });
      opened.push({ close: () => admin.close() });
      ok(await (await jetstreamManager(admin)).streams.delete("FSMPX"));
    } finally {
      for (const o of opened.reverse()) await o.close().catch(() => {});
      await srv.stop();
    }
  },
});
