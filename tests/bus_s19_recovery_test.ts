/**
 * Reads that must survive what happens to the server under them: a stream deleted and created again while a node
 * subscribes, a server restarted in the middle of a `replay` read.
 * @module
 */
import { deepEqual, ok, rejects } from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { JetStreamBus } from "../bus/jetstream.ts";
import { readRecords, StreamReadStalledError } from "../bus/replay_reader.ts";
import { connectNats } from "../bus/connection.ts";
import { NatsServer } from "./support/nats_server.ts";
import { testBusOptions, testSignature, waitFor } from "./support/bus_fixtures.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

const STREAM = "FSMPX_TEST";
const range = (from: number, to: number) => [...Array(to - from + 1).keys()].map((i) => i + from);

natsTest(
  "ordered subscription: a stream deleted and created again is read from its first message, none skipped",
  async () => {
    const srv = await NatsServer.start();
    const buses: JetStreamBus[] = [];
    try {
      const a = await JetStreamBus.connect(testBusOptions(srv.url, "node-a", { publishTimeoutMs: 1000 }));
      buses.push(a);
      const b = await JetStreamBus.connect(testBusOptions(srv.url, "node-b"));
      buses.push(b);
      const got: number[] = [];
      await b.subscribeSignatures(["m"], (s) => void got.push(parseInt(s.id, 16)), {
        startTimeMs: Date.now() - 1000,
      });
      for (let i = 1; i <= 50; i++) await a.publishSignature(testSignature(i));
      await waitFor(() => got.length === 50, 5000, "the first 50 signatures");
      // An operator deletes the stream; the next publish finds no stream and the publishing node creates it
      // again, numbering from 1: node-b's next message would be 51, which the new stream does not have yet.
      const nc = await connectNats({ url: srv.url });
      try {
        await (await jetstreamManager(nc)).streams.delete(STREAM);
      } finally {
        await nc.close();
      }
      for (let i = 51; i <= 60; i++) await a.publishSignature(testSignature(i));
      await a.flush(10_000);
      await waitFor(() => got.length >= 60, 15_000, "the signatures published into the new stream");
      // A last one after the others: anything repeated or late would have come before it.
      await a.publishSignature(testSignature(61));
      await waitFor(() => got.includes(61), 5000, "the last signature");
      deepEqual(got.join(","), range(1, 61).join(","));
    } finally {
      for (const b of buses) await b.close();
      await srv.stop();
    }
  },
);

/** Signatures 1..n stored in the server's stream by a sensor that then leaves. */
async function storeSignatures(srv: NatsServer, n: number): Promise<void> {
  const a = await JetStreamBus.connect(testBusOptions(srv.url, "node-a"));
  try {
    for (let i = 1; i <= n; i++) await a.publishSignature(testSignature(i));
    await a.flush(30_000);
  } finally {
    await a.close();
  }
}

natsTest(
  "replay reader: a server restarted mid-read is resumed after the last message read, none lost or repeated",
  async () => {
    const srv = await NatsServer.start();
    try {
      const t0 = Date.now() - 1000;
      await storeSignatures(srv, 3000);
      const ids: number[] = [];
      // The idle timeout bounds how long a stalled read waits (it ended the read there, 1,000-1,500 records in).
      for await (
        const r of readRecords({ url: srv.url }, { stream: STREAM, startMs: t0, idleTimeoutMs: 3000 })
      ) {
        if (r.kind === "signature") ids.push(parseInt(r.signature_id, 16));
        if (ids.length === 1000) await srv.restart();
      }
      deepEqual(ids, range(1, 3000));
    } finally {
      await srv.stop();
    }
  },
);

natsTest(
  "replay reader: a server gone for good mid-read fails the read (stallError) instead of ending it short",
  async () => {
    const srv = await NatsServer.start();
    try {
      const t0 = Date.now() - 1000;
      await storeSignatures(srv, 2000);
      let n = 0;
      const read = async () => {
        const opts = { stream: STREAM, startMs: t0, idleTimeoutMs: 1000, stallError: true };
        for await (const _ of readRecords({ url: srv.url, connectTimeoutMs: 1000 }, opts)) {
          if (++n === 500) await srv.stopProcess();
        }
      };
      // It ended with the records it had (some 500-1,500 of 2,000) and no error: `replay` printed them as the range.
      await rejects(read(), StreamReadStalledError);
      ok(n >= 500 && n < 2000, `${n} records read`);
    } finally {
      await srv.stop();
    }
  },
);
