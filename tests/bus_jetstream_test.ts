import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { JetStreamBus } from "../bus/jetstream.ts";
import { connectNats } from "../bus/connection.ts";
import type { Signature } from "../audio/types.ts";
import { encodeSignature } from "../audio/fingerprint/signature.ts";
import { NatsServer } from "./support/nats_server.ts";
import { testBusOptions, testMatchRecord, testSignature, waitFor } from "./support/bus_fixtures.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

const STREAM = "FSMPX_TEST";

/** When the server stored message `seq` of the stream (ms since the epoch, truncated). */
async function storedAtMs(url: string, seq: number): Promise<number> {
  const nc = await connectNats({ url });
  try {
    const msg = await (await jetstreamManager(nc)).streams.getMessage(STREAM, { seq });
    if (!msg) throw new Error(`no message ${seq} in ${STREAM}`);
    return Date.parse(msg.timestamp);
  } finally {
    await nc.close();
  }
}

async function streamMessages(url: string): Promise<number> {
  const nc = await connectNats({ url });
  try {
    const jsm = await jetstreamManager(nc);
    return (await jsm.streams.info(STREAM)).state.messages;
  } finally {
    await nc.close();
  }
}

/** Runs `fn` with a fresh server and closes every bus it opened, then the server, whatever happens. */
async function withServer(
  fn: (srv: NatsServer, open: (node: string, over?: object) => Promise<JetStreamBus>) => Promise<void>,
) {
  const srv = await NatsServer.start();
  const buses: JetStreamBus[] = [];
  try {
    await fn(srv, async (node, over = {}) => {
      const b = await JetStreamBus.connect(testBusOptions(srv.url, node, over));
      buses.push(b);
      return b;
    });
  } finally {
    for (const b of buses) await b.close();
    await srv.stop();
  }
}

natsTest(
  "jetstream bus: signatures cross nodes (own included), decoded intact, filtered by measurement",
  async () => {
    await withServer(async (_srv, open) => {
      const a = await open("node-a");
      const b = await open("node-b");
      const onA: Signature[] = [], onB: Signature[] = [], onlyOther: string[] = [];
      await a.subscribeSignatures(["m"], (s) => void onA.push(s));
      await b.subscribeSignatures([], (s) => void onB.push(s));
      await b.subscribeSignatures(
        ["other", "third"],
        (s) => void onlyOther.push(`${s.id} ${s.ids["interval_id"]}`),
      );
      const sent = testSignature(1);
      await a.publishSignature(sent);
      // Published with its wire form already encoded (the detector measures its size): that form is sent.
      const other = testSignature(2, "other");
      await a.publishSignature(other, encodeSignature({ ...other, ids: { interval_id: "as-encoded" } }));
      // publishSignature returns once queued: without this, node-b's signature may reach the stream first.
      await a.flush(5000);
      await b.publishSignature(testSignature(3, "m", "node-b"));
      await waitFor(() => onA.length === 2 && onB.length === 3 && onlyOther.length === 1, 5000, "deliveries");
      deepEqual(onA.map((s) => s.id), [sent.id, testSignature(3).id]);
      deepEqual(onlyOther, [`${testSignature(2).id} as-encoded`]);
      const got = onB[0]!;
      equal(got.id, sent.id);
      equal(got.source.timeNs, sent.source.timeNs);
      equal(got.source.node, "node-a");
      deepEqual([...got.fingerprint], [...sent.fingerprint]);
      deepEqual(got.ids, sent.ids);
    });
  },
);

natsTest("jetstream bus: same signature id or same match key twice -> one stream message", async () => {
  await withServer(async (srv, open) => {
    const a = await open("node-a");
    const b = await open("node-b");
    await a.publishSignature(testSignature(1));
    await b.publishSignature(testSignature(1)); // another node, same instant: same id
    await a.publishSignature(testSignature(1));
    await a.publishMatch(testMatchRecord(1));
    await b.publishMatch(testMatchRecord(1));
    await a.publishMatch(testMatchRecord(1, "relay")); // another stage: another record
    await a.flush(5000);
    await b.flush(5000);
    equal(await streamMessages(srv.url), 3);
    equal(a.stats().published + b.stats().published, 3);
    equal(a.stats().duplicates + b.stats().duplicates, 3);
  });
});

natsTest(
  "jetstream bus: a refused publish (too large, bad subject) is counted and does not block the rest",
  async () => {
    await withServer(async (srv, open) => {
      const failed: string[] = [];
      const metrics = {
        outboxDepth: () => {},
        outboxOverflow: () => {},
        published: () => {},
        publishFailed: (_k: string, r: string) => void failed.push(r),
      };
      const a = await open("node-a", { maxMsgSize: 1024, metrics });
      await a.publishMatch(testMatchRecord(1, "asr", "node-b", { note: "x".repeat(4000) })); // over max_msg_size
      await a.publishSignature(testSignature(2, "bad.name")); // not a subject token
      await a.publishMatch({ ...testMatchRecord(3), stage: "a b" });
      await a.publishSignature({ ...testSignature(4), id: "not-hex" }); // cannot be encoded
      await a.publishSignature(testSignature(5));
      await a.flush(5000);
      deepEqual(failed.sort(), ["bad_subject", "bad_subject", "encode", "too_large"]);
      equal(a.stats().failed, 4);
      equal(a.stats().published, 1);
      equal(await streamMessages(srv.url), 1);
    });
  },
);

natsTest(
  "jetstream bus: a late subscriber recovers signatures newer than its start time, not older ones",
  async () => {
    await withServer(async (srv, open) => {
      const a = await open("node-a");
      for (let i = 1; i <= 5; i++) await a.publishSignature(testSignature(i));
      await a.flush(5000);
      // The cut is the millisecond after the server stored message 5; the next ones are published once the
      // clock the server shares with us has passed it, and the server's own times confirm they fall after it.
      const cut = await storedAtMs(srv.url, 5) + 1;
      await waitFor(() => Date.now() > cut, 5000, "the clock past the cut");
      for (let i = 6; i <= 10; i++) await a.publishSignature(testSignature(i));
      await a.flush(5000);
      ok(await storedAtMs(srv.url, 6) >= cut, "message 6 stored at or after the cut");

      const b = await open("node-b");
      const fromCut: number[] = [], all: number[] = [], fromNow: number[] = [];
      await b.subscribeSignatures(["m"], (s) => void fromCut.push(parseInt(s.id, 16)), { startTimeMs: cut });
      await b.subscribeSignatures(["m"], (s) => void all.push(parseInt(s.id, 16)), {
        startTimeMs: cut - 60_000,
      });
      await b.subscribeSignatures(["m"], (s) => void fromNow.push(parseInt(s.id, 16)));
      await a.publishSignature(testSignature(11));
      await waitFor(
        () => fromCut.length === 6 && all.length === 11 && fromNow.length === 1,
        5000,
        "recovery",
      );
      deepEqual(fromCut, [6, 7, 8, 9, 10, 11]);
      deepEqual(all, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
      deepEqual(fromNow, [11]);
    });
  },
);

natsTest(
  "jetstream bus: server restarted mid-consume -> the consumer resumes without gaps or repeats",
  async () => {
    await withServer(async (srv, open) => {
      const a = await open("node-a", { publishTimeoutMs: 1000 });
      const b = await open("node-b");
      const got: number[] = [];
      await b.subscribeSignatures(["m"], (s) => void got.push(parseInt(s.id, 16)), {
        startTimeMs: Date.now() - 1000,
      });
      for (let i = 1; i <= 20; i++) await a.publishSignature(testSignature(i));
      await waitFor(() => got.length === 20, 5000, "first batch");
      // "From now on", nothing received before the restart: after it no gap (re-created from its creation
      // time less a margin for clock differences, so the last few old ones may come again; the registry
      // dedupes by id).
      const fresh: number[] = [];
      await b.subscribeSignatures(["m"], (s) => void fresh.push(parseInt(s.id, 16)));
      // Twice: the first consumer starts by time, the one re-created after a restart by sequence.
      for (const last of [40, 60]) {
        await srv.restart();
        for (let i = last - 19; i <= last; i++) await a.publishSignature(testSignature(i));
        await a.flush(10_000);
        await waitFor(
          () => got.length >= last && fresh.includes(last),
          8000,
          `signatures up to ${last} after a restart`,
        );
      }
      // Nothing more can come: a last signature arrives after every earlier stream message (consumers
      // deliver in stream order), so a late repeat of one would have come before it.
      await a.publishSignature(testSignature(61));
      await waitFor(() => got.includes(61) && fresh.includes(61), 8000, "the last signature");
      deepEqual(got, [...Array(61).keys()].map((i) => i + 1));
      deepEqual(fresh.filter((i) => i > 20), [...Array(41).keys()].map((i) => i + 21));
    });
  },
);

natsTest("jetstream bus: stream set-up is idempotent and applies changed limits", async () => {
  await withServer(async (srv, open) => {
    await open("node-a");
    await open("node-b"); // same config: no change
    await open("node-c", { retentionMs: 7200_000, maxBytes: 32 * 1024 * 1024 });
    const nc = await connectNats({ url: srv.url });
    try {
      const info = await (await jetstreamManager(nc)).streams.info(STREAM);
      equal(info.config.max_age, 7200_000 * 1_000_000);
      equal(info.config.max_bytes, 32 * 1024 * 1024);
      deepEqual(info.config.subjects, ["fsmpx.sig.>", "fsmpx.match.>"]);
    } finally {
      await nc.close();
    }
  });
});

natsTest("jetstream bus: an unreachable server is a clear start-up error", async () => {
  const srv = await NatsServer.start();
  const url = srv.url;
  await srv.stop();
  await rejects(JetStreamBus.connect(testBusOptions(url, "a")), (e: Error) => {
    match(e.message, /cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+/);
    return true;
  });
});

natsTest("jetstream bus: close() with a live consumer ends promptly (iterators stopped first)", async () => {
  await withServer(async (_srv, open) => {
    const a = await open("node-a");
    let n = 0;
    await a.subscribeSignatures([], () => void n++, { startTimeMs: Date.now() - 1000 });
    await a.publishSignature(testSignature(1));
    await waitFor(() => n === 1, 5000, "delivery");
    await a.close();
    ok(a.connection.isClosed());
  });
});
