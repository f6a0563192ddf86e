import { deepEqual, equal } from "node:assert/strict";
import { jetstream } from "@nats-io/jetstream";
import { JetStreamBus } from "../bus/jetstream.ts";
import { readRecords } from "../bus/replay_reader.ts";
import { connectNats } from "../bus/connection.ts";
import { encodeSignature } from "../audio/fingerprint/signature.ts";
import { type AnyRecord, signatureRecord } from "../report/records.ts";
import { NatsServer } from "./support/nats_server.ts";
import { testBusOptions, testMatchRecord, testSignature } from "./support/bus_fixtures.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

const STREAM = "FSMPX_TEST";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function read(
  url: string,
  opts: Omit<Parameters<typeof readRecords>[1], "stream">,
): Promise<AnyRecord[]> {
  const out: AnyRecord[] = [];
  for await (const r of readRecords({ url }, { stream: STREAM, ...opts })) out.push(r);
  return out;
}

function key(r: AnyRecord): string {
  return r.kind === "signature"
    ? `sig:${r.measurement}:${parseInt(r.signature_id, 16)}`
    : `match:${r.measurement}:${r.stage}:${parseInt(r.signature_id, 16)}`;
}

natsTest(
  "replay reader: records by time range and measurement, in stream order, after the sensors left",
  async () => {
    const srv = await NatsServer.start();
    try {
      const t0 = Date.now() - 1000;
      const a = await JetStreamBus.connect(testBusOptions(srv.url, "node-a"));
      try {
        await a.publishSignature(testSignature(1));
        await a.publishSignature(testSignature(2, "other"));
        await a.publishMatch(testMatchRecord(1));
        await a.flush(5000);
        await sleep(300);
        const cut = Date.now();
        await sleep(50);
        await a.publishSignature(testSignature(3));
        await a.publishMatch(testMatchRecord(3, "relay"));
        await a.publishMatch({ ...testMatchRecord(4), measurement: "other" });
        await a.flush(5000);
        // Garbage on a signature subject and a non-record on a match subject: skipped and reported.
        const nc = await connectNats({ url: srv.url });
        try {
          const js = jetstream(nc);
          await js.publish("fsmpx.sig.m", new Uint8Array([1, 2, 3]), { msgID: "junk-1" });
          await js.publish("fsmpx.match.m.asr", '{"kind":"match"}', { msgID: "junk-2" });
        } finally {
          await nc.close();
        }

        await a.close(); // the sensors are gone; the server alone answers below
        const skipped: string[] = [];
        const all = await read(srv.url, { startMs: t0, onSkip: (r) => void skipped.push(r) });
        deepEqual(all.map(key), [
          "sig:m:1",
          "sig:other:2",
          "match:m:asr:1",
          "sig:m:3",
          "match:m:relay:3",
          "match:other:asr:4",
        ]);
        deepEqual(skipped, ["decode", "record"]);
        // Exactly the records `analyze --out` writes.
        const sig1 = testSignature(1);
        deepEqual(all[0], signatureRecord(sig1, encodeSignature(sig1).length));
        deepEqual(all[2], testMatchRecord(1));

        deepEqual((await read(srv.url, { startMs: cut })).map(key), [
          "sig:m:3",
          "match:m:relay:3",
          "match:other:asr:4",
        ]);
        deepEqual((await read(srv.url, { startMs: t0, untilMs: cut })).map(key), [
          "sig:m:1",
          "sig:other:2",
          "match:m:asr:1",
        ]);
        deepEqual((await read(srv.url, { startMs: t0, measurement: "m" })).map(key), [
          "sig:m:1",
          "match:m:asr:1",
          "sig:m:3",
          "match:m:relay:3",
        ]);
        deepEqual((await read(srv.url, { startMs: cut, measurement: "other" })).map(key), [
          "match:other:asr:4",
        ]);
        equal((await read(srv.url, { startMs: Date.now() + 60_000 })).length, 0);
        equal((await read(srv.url, { startMs: t0, measurement: "none" })).length, 0);
      } finally {
        await a.close();
      }
    } finally {
      await srv.stop();
    }
  },
);
