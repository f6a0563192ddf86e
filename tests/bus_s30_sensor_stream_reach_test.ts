/**
 * What the sensors' NATS user of k8s/nats/nats.conf can do to the stream (it may create and update it, so a
 * fresh cluster provisions itself): it cannot delete or purge it through those API calls, but an update empties
 * it (a limit of one message; or rollup headers allowed, then one message with `Nats-Rollup: all`) and can seal
 * it, which no one can undo. The README and nats.conf say so; a sensor started against a sealed stream now
 * refuses to start with the fix, instead of connecting and dropping every signature as "rejected".
 * @module
 */
import { equal, match, ok, rejects } from "node:assert/strict";
import { headers } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type StreamConfig } from "@nats-io/jetstream";
import { JetStreamBus } from "../bus/jetstream.ts";
import { connectNats } from "../bus/connection.ts";
import { setLogSink } from "../util/log.ts";
import { natsConfAuthorization, NatsServer } from "./support/nats_server.ts";
import { testBusOptions, testSignature } from "./support/bus_fixtures.ts";
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

/** A server with the deployment's users, a stream holding 5 signatures, and the sensor user's manager. */
async function withStream(
  fn: (s: { srv: NatsServer; update: (over: Partial<StreamConfig>) => Promise<void> }) => Promise<void>,
): Promise<void> {
  const srv = await NatsServer.start({ configLines: await natsConfAuthorization(ROOT, PW) });
  const sensorAuth = { user: PW.NATS_USER, password: PW.NATS_PASSWORD };
  const nc = await connectNats({ url: srv.url, ...sensorAuth });
  try {
    const bus = await JetStreamBus.connect(
      testBusOptions(srv.url, "node-a", { stream: "FSMPX", ...sensorAuth }),
    );
    for (let i = 1; i <= 5; i++) await bus.publishSignature(testSignature(i));
    await bus.flush(5000);
    await bus.close();
    const jsm = await jetstreamManager(nc);
    equal((await jsm.streams.info("FSMPX")).state.messages, 5);
    await fn({
      srv,
      update: async (over) => {
        const cfg = (await jsm.streams.info("FSMPX")).config;
        await jsm.streams.update("FSMPX", { ...cfg, ...over });
      },
    });
  } finally {
    await nc.close();
    await srv.stop();
  }
}

async function messages(srv: NatsServer): Promise<number> {
  const nc = await connectNats({ url: srv.url, user: "fsm-px-admin", password: PW.NATS_ADMIN_PASSWORD });
  try {
    return (await (await jetstreamManager(nc)).streams.info("FSMPX")).state.messages;
  } finally {
    await nc.close();
  }
}

natsTest({
  name: "nats.conf: the sensor user cannot purge or delete the stream, but empties it by an update",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withStream(async ({ srv }) => {
      const nc = await connectNats({ url: srv.url, user: PW.NATS_USER, password: PW.NATS_PASSWORD });
      try {
        const jsm = await jetstreamManager(nc);
        await rejects(jsm.streams.purge("FSMPX"), /Permissions Violation/);
        await rejects(jsm.streams.delete("FSMPX"), /Permissions Violation/);
      } finally {
        await nc.close();
      }
      equal(await messages(srv), 5);
    });
    await withStream(async ({ srv, update }) => {
      await update({ max_msgs: 1 });
      equal(await messages(srv), 1, "a limit of one message keeps one");
    });
    await withStream(async ({ srv, update }) => {
      await update({ allow_rollup_hdrs: true });
      const nc = await connectNats({ url: srv.url, user: PW.NATS_USER, password: PW.NATS_PASSWORD });
      try {
        const h = headers();
        h.set("Nats-Rollup", "all");
        await jetstream(nc).publish("fsmpx.sig.m", new Uint8Array([1]), { headers: h });
      } finally {
        await nc.close();
      }
      equal(await messages(srv), 1, "a rollup of all keeps only itself");
    });
  },
});

natsTest({
  name:
    "a stream sealed with the sensor user's password: the admin cannot unseal it, a sensor refuses to start",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withStream(async ({ srv, update }) => {
      await update({ sealed: true });
      const admin = await connectNats({
        url: srv.url,
        user: "fsm-px-admin",
        password: PW.NATS_ADMIN_PASSWORD,
      });
      try {
        const jsm = await jetstreamManager(admin);
        const cfg = (await jsm.streams.info("FSMPX")).config;
        ok(cfg.sealed);
        const unsealed: Partial<StreamConfig> = { ...cfg, sealed: false };
        await rejects(jsm.streams.update("FSMPX", unsealed), /unseal/);
      } finally {
        await admin.close();
      }
      const err = await JetStreamBus.connect(
        testBusOptions(srv.url, "node-b", {
          stream: "FSMPX",
          user: PW.NATS_USER,
          password: PW.NATS_PASSWORD,
        }),
      ).then(async (b) => {
        await b.close();
        return null;
      }, (e: Error) => e);
      ok(err !== null, "a sensor connected to a sealed stream (every publish then dropped as rejected)");
      match(err.message, /stream FSMPX is sealed/);
      match(err.message, /nats stream rm FSMPX/);
    });
  },
});
