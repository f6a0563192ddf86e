/**
 * The live Pixie source under the reader's supervision: a reader restarted (its source failed, or a message
 * crashed it) runs its source again, and a source that ends on its own is not the end of the sensor's rows. Real
 * parts: the fake Vizier (its model, or a scripted call), the gRPC client, PixieQueryStream, PixieRowSource and
 * the reader in an actor system.
 */
import { deepStrictEqual, ok } from "node:assert/strict";
import { PixieClient } from "../pixie/client.ts";
import { PixieRowSource } from "../pixie/live_source.ts";
import type { ComposedQueryInput } from "../pixie/pxl.ts";
import type { Row } from "../pixie/row.ts";
import { ActorSystem } from "../actors/runtime.ts";
import {
  type ExporterMsg,
  type MatcherMsg,
  type ReaderMsg,
  type RegistryMsg,
  rowWeight,
} from "../actors/messages.ts";
import { pixieReader, type RowSource } from "../actors/pixie_reader.ts";
import { setLogLevel } from "../util/log.ts";
import { FakeVizier, HTTP_RELATION, httpBatch, type StoredRow } from "./support/fake_vizier.ts";
import { recorder } from "./support/actor_fixtures.ts";

setLogLevel("error");

const te = new TextEncoder();
const td = new TextDecoder();

const QUERY: ComposedQueryInput = {
  name: "voice/source",
  streamFilter:
    "df = px.DataFrame(table='http_events', start_time='-30s')\ndf = df[df.req_path == '/audio']\n",
  node: "node-1",
  columns: { time: "time_", pod: "pod", payload: "req_body" },
  streamKeyColumns: [],
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits for `cond`; a liveness bound (~20 s), not a timing assertion: it normally holds within a second. */
async function until(what: string, cond: () => boolean, detail: () => string = () => ""): Promise<void> {
  for (let i = 0; i < 400 && !cond(); i++) await sleep(50);
  ok(cond(), `${what}: ${detail()}`);
}

/** `n` rows with unique bodies from `from`, timed now. */
function rows(n: number, from: number): StoredRow[] {
  const now = BigInt(Date.now()) * 1_000_000n;
  return Array.from({ length: n }, (_, i) => ({
    time: now + BigInt(i) * 1_000n,
    pod: "voice/media-0",
    cols: { req_path: te.encode("/audio"), req_body: te.encode(`r${from + i}`), local_port: 8080n },
  }));
}

/** One run of `source` (one incarnation of the reader that owns it), collecting the bodies it hands on. */
function runOnce(source: PixieRowSource, got: string[]): { stop: () => Promise<void> } {
  const ac = new AbortController();
  const done = source.runBatches((batch: readonly Row[]) => {
    for (const r of batch) got.push(td.decode(r.columns["req_body"] as Uint8Array));
    return Promise.resolve();
  }, ac.signal).catch(() => {});
  return {
    stop: async () => {
      ac.abort();
      await done;
    },
  };
}

Deno.test({
  name:
    "live source: run again (a restarted reader) it resumes where its last run stopped: no row twice, none lost",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const fake = await FakeVizier.start({ broker: { batchRows: 8, tickMs: 5 } });
    const client = await PixieClient.connect({ mode: "direct", directAddr: fake.address });
    try {
      const source = new PixieRowSource({
        client,
        clusterId: "",
        queries: [QUERY],
        encryption: false,
        stream: { backoff: { initialMs: 20, maxMs: 100, minMs: 5 } },
      });
      const got: string[] = [];
      const first = runOnce(source, got);
      fake.pems[0]!.append("http_events", rows(20, 0));
      await until("the first run's rows", () => got.length >= 20, () => `${got.length} of 20`);
      await first.stop();

      // The reader restarts: its source runs again, while Stirling keeps adding rows.
      fake.pems[0]!.append("http_events", rows(20, 20));
      const second = runOnce(source, got);
      try {
        await until("the rows added since", () => got.includes("r39"), () => got.join(" "));
        await sleep(300); // anything read twice would arrive now
      } finally {
        await second.stop();
      }
      const doubled = [...new Set(got)].filter((b) => got.indexOf(b) !== got.lastIndexOf(b));
      deepStrictEqual(doubled, [], "rows handed on twice");
      deepStrictEqual(new Set(got), new Set(Array.from({ length: 40 }, (_, i) => `r${i}`)));
    } finally {
      client.close();
      await fake.stop();
    }
  },
});

Deno.test({
  name: "reader: a live source that ends on its own is run again, not left silent",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // A source that hands on one row and ends without being stopped (PixieRowSource itself runs a query Pixie ended
    // again, see the test below; this is the reader's own guard, for any source).
    let runs = 0;
    const source: RowSource = {
      run: async (emit) => {
        runs++;
        await emit({ query: QUERY.name, node: "node-1", time: BigInt(Date.now()) * 1_000_000n, columns: {} });
      },
    };
    const system = new ActorSystem({ restart: { backoffInitialMs: 10, backoffMaxMs: 50, maxRestarts: 100 } });
    const opts = { capacity: 1000, overflow: "drop-oldest" } as const;
    system.spawn<ReaderMsg>(
      "pixie_reader",
      pixieReader({
        detectors: new Map([["voice", system.spawn("detector/voice", recorder([]), opts)]]),
        matcher: system.spawn<MatcherMsg>("matcher", recorder([]), opts),
        registry: system.spawn<RegistryMsg>("registry", recorder([]), opts),
        exporter: system.spawn<ExporterMsg>("exporter", recorder([]), opts),
        source,
        queries: new Set([QUERY.name]),
        clockWindowNs: 30_000_000_000n,
      }),
      { capacity: 4096, overflow: "drop-oldest", weigh: rowWeight },
    );
    try {
      await until("the source run again after it ended", () => runs >= 2, () => `${runs} run(s)`);
    } finally {
      await system.shutdown({ deadlineMs: 1000 });
    }
  },
});

Deno.test({
  name:
    "live source: a query the peer ends as done is run again (backed off) from where it stopped, for ever",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const fake = await FakeVizier.start();
    const client = await PixieClient.connect({ mode: "direct", directAddr: fake.address });
    // Each call: one new row (its time later than the last), eos on the only table, then OK.
    fake.onExecute = async (c) => {
      await c.meta("t1", "voice/source", HTTP_RELATION);
      const t = BigInt(Date.now()) * 1_000_000n + BigInt(c.index);
      await c.batch(httpBatch("t1", [{ time: t, body: `call ${c.index}` }], true));
      c.end();
    };
    const restarts: string[] = [];
    const source = new PixieRowSource({
      client,
      clusterId: "",
      queries: [QUERY],
      encryption: false,
      metrics: { restarts: (q, kind) => void restarts.push(`${q}:${kind}`) },
      stream: { backoff: { initialMs: 20, maxMs: 50, minMs: 1 } },
    });
    const got: string[] = [];
    const ac = new AbortController();
    let settled = false;
    const running = source.runBatches((rs) => {
      for (const r of rs) got.push(td.decode(r.columns.req_body as Uint8Array));
      return Promise.resolve();
    }, ac.signal).finally(() => settled = true);
    try {
      await until(
        "three calls",
        () => fake.executeRequests.length >= 3,
        () => `${fake.executeRequests.length}`,
      );
      ok(!settled, "the source ended on its own");
      ok(restarts.length >= 2 && restarts.every((r) => r === "voice/source:rerun"), `${restarts}`);
      // From where it stopped: each call's row once.
      deepStrictEqual(got.length, new Set(got).size, `${got}`);
      ok(got.includes("call 0") && got.includes("call 1"), `${got}`);
    } finally {
      ac.abort();
      await running;
      client.close();
      await fake.stop();
    }
  },
});
