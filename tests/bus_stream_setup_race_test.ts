/**
 * Every sensor runs ensureStream at start-up, several at once on a fresh cluster: whichever add the server takes
 * first creates the stream, and the others must end up with it rather than fail. In CI (nats-server 2.9.10) one
 * of three sensors starting at once exited with "subjects overlap with an existing stream"; the first test did
 * not reproduce that here in 200 rounds, so the last one replays such answers (a racing create refused as
 * overlapping, the new stream listed late: nats-server #4600).
 */
import { equal, rejects } from "node:assert/strict";
import { type JetStreamManager, jetstreamManager, type StreamInfo } from "@nats-io/jetstream";
import { connectNats } from "../bus/connection.ts";
import { ensureStream, streamConfig, type StreamSpec } from "../bus/stream_setup.ts";
import { STREAM_SUBJECTS } from "../bus/subjects.ts";
import { NatsServer } from "./support/nats_server.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

const SPEC: StreamSpec = {
  name: "FSMPX_RACE",
  replicas: 1,
  retentionMs: 3_600_000,
  maxBytes: 64 << 20,
  duplicateWindowMs: 120_000,
  maxMsgSize: 64 * 1024,
};

natsTest("ensureStream: nodes starting at once all get the one stream, round after round", async () => {
  const srv = await NatsServer.start();
  const conns = await Promise.all(Array.from({ length: 12 }, () => connectNats({ url: srv.url })));
  try {
    const jsms = await Promise.all(conns.map((nc) => jetstreamManager(nc)));
    for (let round = 0; round < 15; round++) {
      const got = await Promise.allSettled(jsms.map((jsm) => ensureStream(jsm, SPEC)));
      const failed = got.filter((g) => g.status === "rejected").map((g) =>
        String((g as PromiseRejectedResult).reason)
      );
      equal(failed.length, 0, `round ${round}: ${failed.join("; ")}`);
      equal((await jsms[0]!.streams.info(SPEC.name)).config.name, SPEC.name);
      await jsms[0]!.streams.delete(SPEC.name);
    }
  } finally {
    await Promise.all(conns.map((nc) => nc.close()));
    await srv.stop();
  }
});

natsTest(
  "ensureStream: a stream of another name holding the subjects is a clear error naming them",
  async () => {
    const srv = await NatsServer.start();
    const nc = await connectNats({ url: srv.url });
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ ...streamConfig(SPEC), name: "SOMEONE_ELSE" });
      await rejects(
        ensureStream(jsm, SPEC),
        (e: Error) =>
          /subjects overlap/.test(e.message) && e.message.includes(`another stream holds the subjects of`) &&
          STREAM_SUBJECTS.every((s) => e.message.includes(s)),
      );
    } finally {
      await nc.close();
      await srv.stop();
    }
  },
);

Deno.test("ensureStream: a create refused as overlapping while the stream another node made is not yet listed", async () => {
  // What the server answered a racing create (nats-server #4600: a new stream may be listed late).
  let lookups = 0;
  const made = { config: streamConfig(SPEC) } as unknown as StreamInfo;
  const jsm = {
    streams: {
      info: () => {
        lookups++;
        if (lookups <= 3) {
          return Promise.reject(
            Object.assign(new Error("stream not found"), { name: "StreamNotFoundError" }),
          );
        }
        return Promise.resolve(made);
      },
      add: () => Promise.reject(new Error("subjects overlap with an existing stream")),
      update: () => Promise.reject(new Error("no update expected")),
    },
  } as unknown as JetStreamManager;
  equal(await ensureStream(jsm, SPEC), made);
  equal(lookups, 4);
});
