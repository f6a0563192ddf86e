/**
 * The re-run dedupe and the lag of a Pixie query stream against a row from the far future and a step of the host's
 * clock back (review of session 29). Before: one row with a `time_` from the future took the table's watermark
 * along, so no later row was remembered (each lay before the dedupe window) and a re-run delivered the overlap's
 * rows a second time, while the lag gauge read hugely negative (hiding real lag from its alert); a step of the
 * host's clock back did the same until a re-run. Now the wall clock bounds the watermark, as it bounds a re-run's
 * start, and a lone row far ahead of it does not move the watermark.
 */
import { deepStrictEqual, equal, ok } from "node:assert/strict";
import { GrpcCode, PixieClient } from "../pixie/client.ts";
import type { ComposedQueryInput } from "../pixie/pxl.ts";
import type { Row } from "../pixie/row.ts";
import { PixieQueryStream, type PixieStreamMetrics } from "../pixie/stream.ts";
import {
  type ExecuteCall,
  FakeVizier,
  HTTP_RELATION,
  httpBatch,
  type HttpRow,
  ManualClock,
} from "./support/fake_vizier.ts";

const T0 = 1_700_000_000_000_000_000n;
const S = 1_000_000_000n;
const FILTER =
  "df = px.DataFrame(table='http_events', start_time='-30s')\ndf = df[df.req_path == '/audio']\n";

function query(name: string): ComposedQueryInput {
  return {
    name,
    streamFilter: FILTER,
    node: "node-1",
    columns: { time: "time_", pod: "pod", payload: "req_body", body_size: "req_body_size" },
    streamKeyColumns: ["remote_port"],
  };
}

const text = (r: Row) => new TextDecoder().decode(r.columns.req_body as Uint8Array);

/** What a re-run reads: the table's rows from the script's start_time on. */
function fromStart(call: ExecuteCall, table: HttpRow[]): HttpRow[] {
  const start = BigInt(/start_time=(-?\d+)\)/.exec(call.request.queryStr)![1]!);
  return table.filter((r) => r.time >= start);
}

interface Seen {
  rows: string[];
  duplicates: number;
  lags: number[];
}

/**
 * Runs a stream whose first call sends `first` (one batch each, each sent once the stream has taken the one
 * before, `between` called after each) and then drops; the re-run reads `table` from its start on.
 */
async function run(
  clock: ManualClock,
  first: HttpRow[][],
  table: HttpRow[],
  between: (i: number) => void = () => {},
): Promise<Seen> {
  const seen: Seen = { rows: [], duplicates: 0, lags: [] };
  let taken = 0;
  let onTaken: (() => void) | undefined;
  const fake = await FakeVizier.start();
  fake.onExecute = async (c) => {
    await c.meta(`t${c.index}`, "voice/source", HTTP_RELATION);
    if (c.index === 0) {
      for (let i = 0; i < first.length; i++) {
        const want = taken + first[i]!.length;
        const took = new Promise<void>((resolve) => (onTaken = resolve));
        await c.batch(httpBatch("t0", first[i]!));
        while (taken < want) await took;
        between(i);
      }
      c.fail(GrpcCode.UNAVAILABLE, "connection lost");
      return;
    }
    await c.batch(httpBatch("t1", fromStart(c, table), true));
    c.end();
  };
  const client = await PixieClient.connect({ mode: "direct", directAddr: fake.address });
  const metrics: PixieStreamMetrics = {
    duplicates: (_q, n) => void (seen.duplicates += n),
    lag: (_q, s) => void seen.lags.push(s),
  };
  try {
    const stream = new PixieQueryStream({
      client,
      clusterId: "",
      clock,
      queries: [query("voice/source")],
      metrics,
      random: () => 0.5,
    });
    for await (const batch of stream) {
      for (const r of batch) seen.rows.push(text(r));
      taken += batch.length;
      onTaken?.();
    }
  } finally {
    client.close();
    await fake.stop();
  }
  return seen;
}

Deno.test("a row from the far future: the rows after it are still recognised by a re-run, and the lag reads true", async () => {
  const clock = new ManualClock(Number((T0 + 5n * S) / 1_000_000n));
  const future = T0 + 86_400n * S;
  const a = { time: T0 + 1n * S, body: "a" }, b = { time: T0 + 2n * S, body: "b" };
  const c = { time: T0 + 3n * S, body: "c" }, d = { time: T0 + 4n * S, body: "d" };
  const fut = { time: future, body: "future" };
  const seen = await run(clock, [[a, fut, b], [c]], [a, b, c, d, fut]);
  deepStrictEqual(seen.rows, ["a", "future", "b", "c", "d"], "each row once");
  equal(seen.duplicates, 4, "a, b, c and the future row came again and were recognised");
  // Lags after each batch: 5 - 2 s, 5 - 3 s (before: 5 s - 1 day, twice), then the re-run's.
  deepStrictEqual(seen.lags.slice(0, 2), [3, 2]);
  ok(seen.lags.every((l) => l > -1), `no lag from the future: ${seen.lags}`);
});

Deno.test("the host's clock stepped back: the rows after the step are still recognised by a re-run", async () => {
  // Rows at T0 + 5 and 6 s read at T0 + 7 s; then the host's clock (Pixie's and this sensor's) steps back a minute.
  const clock = new ManualClock(Number((T0 + 7n * S) / 1_000_000n));
  const back = T0 - 53n * S;
  const before = [{ time: T0 + 5n * S, body: "a" }, { time: T0 + 6n * S, body: "b" }];
  const after = [{ time: back - S / 2n, body: "c" }, { time: back - S / 4n, body: "d" }];
  const later = { time: back + 100n, body: "e" };
  const seen = await run(clock, [before, after], [...before, ...after, later], (i) => {
    if (i === 0) clock.ms -= 60_000;
  });
  deepStrictEqual(seen.rows, ["a", "b", "c", "d", "e"], "each row once");
  equal(seen.duplicates, 4, "a, b (stamped before the step, after the re-run's start) c and d came again");
  ok(seen.lags[1]! >= 0 && seen.lags[1]! < 1, `the lag after the step reads true: ${seen.lags}`);
});

Deno.test("a clock ahead of this host's (every row beyond the horizon): the watermark follows the rows", async () => {
  // A standalone PEM on another host whose clock is an hour ahead: its rows are all beyond the wall clock, one a
  // batch; each moves the watermark as the one before it agrees, so the dedupe window follows them (a lone row
  // does not).
  const clock = new ManualClock(Number((T0 + 10n * S) / 1_000_000n));
  const hour = 3_600n * S;
  const rows = [1n, 2n, 3n].map((k) => ({ time: T0 + hour + k * S, body: `r${k}` }));
  const seen = await run(clock, rows.map((r) => [r]), [...rows, { time: T0 + hour + 4n * S, body: "r4" }]);
  deepStrictEqual(seen.rows, ["r1", "r2", "r3", "r4"]);
  equal(seen.duplicates, 3);
});
