/**
 * A subscriber slower than the stream (the registry back-pressures while the node is overloaded, or a catch-up
 * after a restart): the client must not pile up messages in memory for as long as the handler is behind.
 * @module
 */
import { deepEqual, ok } from "node:assert/strict";
import { type ConsumerMessages, jetstream, type JetStreamClient } from "@nats-io/jetstream";
import { JetStreamBus } from "../bus/jetstream.ts";
import { OrderedSubscription } from "../bus/ordered_subscription.ts";
import { connectNats } from "../bus/connection.ts";
import { encodeSignature } from "../audio/fingerprint/signature.ts";
import { NatsServer } from "./support/nats_server.ts";
import { testBusOptions, testSignature, waitFor } from "./support/bus_fixtures.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

const N = 6000;

/** The real client, with every consumer's message iterator kept so the test can see how much it holds. */
function watched(js: JetStreamClient, iterators: ConsumerMessages[]): JetStreamClient {
  const consumers = {
    get: async (...args: Parameters<JetStreamClient["consumers"]["get"]>) => {
      const c = await js.consumers.get(...args);
      const consume = c.consume.bind(c);
      c.consume = async (opts) => {
        const m = await consume(opts);
        iterators.push(m);
        return m;
      };
      return c;
    },
  };
  return new Proxy(js, { get: (t, p) => p === "consumers" ? consumers : Reflect.get(t, p) });
}

natsTest(
  "ordered subscription: a handler stalled for seconds does not make the client buffer a batch per missed heartbeat",
  async () => {
    const srv = await NatsServer.start();
    const nc = await connectNats({ url: srv.url });
    let sub: OrderedSubscription | null = null;
    try {
      const t0 = Date.now() - 1000;
      const a = await JetStreamBus.connect(testBusOptions(srv.url, "node-a", { outboxSize: N }));
      try {
        const sig = testSignature(1), enc = encodeSignature(sig);
        for (let i = 1; i <= N; i++) {
          await a.publishSignature({ ...sig, id: i.toString(16).padStart(16, "0") }, enc);
        }
        await a.flush(30_000);
      } finally {
        await a.close();
      }
      const iterators: ConsumerMessages[] = [];
      let release!: () => void;
      const stalled = new Promise<void>((r) => release = r);
      const seqs: number[] = [];
      let most = 0;
      const held = () => iterators.reduce((n, m) => n + m.getPending(), 0);
      sub = await OrderedSubscription.start({
        js: watched(jetstream(nc), iterators),
        stream: "FSMPX_TEST",
        filter: "fsmpx.sig.m",
        startTimeMs: t0,
        onMessage: async (m) => {
          seqs.push(m.seq);
          most = Math.max(most, held());
          if (seqs.length === 1) await stalled;
        },
      });
      // The client's heartbeat monitor sees nothing from the server while the handler holds the iterator (the
      // batch asked for has come) and asks for another batch every two seconds: queued behind the stalled
      // message, they all went out at once when it moved on, ~256 messages each, held in memory.
      await new Promise((r) => setTimeout(r, 8000));
      release();
      await waitFor(() => seqs.length >= N, 20_000, "every message handled");
      ok(most <= 600, `the client held up to ${most} messages at once`);
      deepEqual(seqs, [...Array(N).keys()].map((i) => i + 1));
    } finally {
      await sub?.stop();
      await nc.close();
      await srv.stop();
    }
  },
);
