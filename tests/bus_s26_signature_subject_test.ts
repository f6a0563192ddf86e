/**
 * A node of several measurements reads every signature subject (`fsmpx.sig.>`): a message there on a subject of
 * another shape (`fsmpx.sig.m.extra`) is skipped and counted (`receive_failed{kind=signature,reason=subject}`),
 * like an undecodable one; it was skipped without a count or a log line.
 * @module
 */
import { deepEqual } from "node:assert/strict";
import { jetstream } from "@nats-io/jetstream";
import { JetStreamBus } from "../bus/jetstream.ts";
import { connectNats } from "../bus/connection.ts";
import { encodeSignature } from "../audio/fingerprint/signature.ts";
import { NatsServer } from "./support/nats_server.ts";
import { testBusOptions, testSignature, waitFor } from "./support/bus_fixtures.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

natsTest(
  "jetstream bus: a message on a signature subject of another shape is counted and skipped",
  async () => {
    const srv = await NatsServer.start();
    const failed: string[] = [];
    const metrics = {
      outboxDepth: () => {},
      outboxOverflow: () => {},
      published: () => {},
      publishFailed: () => {},
      receiveFailed: (kind: string, reason: string) => void failed.push(`${kind} ${reason}`),
    };
    const b = await JetStreamBus.connect(testBusOptions(srv.url, "node-b", { metrics }));
    try {
      const got: number[] = [];
      await b.subscribeSignatures(["m", "other"], (s) => void got.push(parseInt(s.id, 16)), {
        startTimeMs: Date.now() - 1000,
      });
      const nc = await connectNats({ url: srv.url });
      try {
        const js = jetstream(nc);
        await js.publish("fsmpx.sig.m", encodeSignature(testSignature(1)), { msgID: "1" });
        await js.publish("fsmpx.sig.m.extra", encodeSignature(testSignature(2)), { msgID: "2" });
        await js.publish("fsmpx.sig.m", new Uint8Array([1, 2, 3]), { msgID: "3" });
        await js.publish("fsmpx.sig.other", encodeSignature(testSignature(4, "other")), { msgID: "4" });
      } finally {
        await nc.close();
      }
      await waitFor(() => got.length === 2 && failed.length === 2, 5000, "two delivered, two counted");
      deepEqual(got, [1, 4]);
      deepEqual(failed, ["signature subject", "signature decode"]);
    } finally {
      await b.close();
      await srv.stop();
    }
  },
);
