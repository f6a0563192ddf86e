/**
 * The live Pixie source under the reader's supervision: a reader restarted (its source failed, or a message
 * crashed it) runs its source again, from where it stopped. Real parts: the fake Vizier's model, the gRPC client,
 * PixieQueryStream and PixieRowSource.
 */
import { deepStrictEqual, ok } from "node:assert/strict";
import { PixieClient } from "../pixie/client.ts";
import { PixieRowSource } from "../pixie/live_source.ts";
import type { ComposedQueryInput } from "../pixie/pxl.ts";
import type { Row } from "../pixie/row.ts";
import { setLogLevel } from "../util/log.ts";
import { FakeVizier, type StoredRow } from "./support/fake_vizier.ts";

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
