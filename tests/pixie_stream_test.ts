import { deepStrictEqual, equal, ok, rejects } from "node:assert/strict";
import { GrpcCode, PixieClient, PixieRpcError } from "../pixie/client.ts";
import { encryptCompactJwe, generateJweKeyPair } from "../pixie/jwe.ts";
import {
  DataType,
  encodeRowBatch,
  type ExecuteScriptRequest,
  type ExecuteScriptResponse,
} from "../pixie/messages.ts";
import type { ComposedQueryInput } from "../pixie/pxl.ts";
import type { Row } from "../pixie/row.ts";
import {
  backoffDelay,
  PixieCompileError,
  PixieQueryStream,
  type PixieQueryStreamOptions,
  type PixieStreamMetrics,
} from "../pixie/stream.ts";
import { setLogSink } from "../util/log.ts";
import {
  type ExecuteCall,
  FakeVizier,
  HTTP_RELATION,
  httpBatch,
  type HttpRow,
  makeTestCert,
  ManualClock,
  TEST_TLS_CHANNEL,
} from "./support/fake_vizier.ts";

const F1 = "df = px.DataFrame(table='http_events', start_time='-30s')\ndf = df[df.req_path == '/audio']\n";
const F2 = "df = px.DataFrame(table='http_events', start_time='-30s')\ndf = df[df.req_path == '/tts']\n";
const T0 = 1_700_000_000_000_000_000n;

function q(name: string, streamFilter = F1, over: Partial<ComposedQueryInput> = {}): ComposedQueryInput {
  return {
    name,
    streamFilter,
    node: "node-1",
    columns: { time: "time_", pod: "pod", payload: "req_body", body_size: "req_body_size" },
    streamKeyColumns: ["remote_port"],
    ...over,
  };
}

/** Records every metric call. */
class Recorder implements PixieStreamMetrics {
  rows = new Map<string, number>();
  restartsSeen: string[] = [];
  lags = new Map<string, number>();
  truncatedSeen = new Map<string, number>();
  errorsSeen: string[] = [];
  responses = 0;
  responded = () => void this.responses++;
  rowsRead = (query: string, n: number) => void this.rows.set(query, (this.rows.get(query) ?? 0) + n);
  restarts = (query: string, kind: "resume" | "rerun") => void this.restartsSeen.push(`${query}:${kind}`);
  lag = (query: string, s: number) => void this.lags.set(query, s);
  truncated = (query: string, n: number) =>
    void this.truncatedSeen.set(query, (this.truncatedSeen.get(query) ?? 0) + n);
  errors = (query: string | undefined, kind: string) => void this.errorsSeen.push(`${query ?? "-"}:${kind}`);
}

/** Runs a stream over a direct (plaintext) fake until it ends; returns the rows. */
async function collect(stream: PixieQueryStream, limit = Infinity): Promise<Row[]> {
  const rows: Row[] = [];
  for await (const batch of stream) {
    rows.push(...batch);
    if (rows.length >= limit) break;
  }
  return rows;
}

async function withDirect(
  handler: (c: ExecuteCall) => Promise<void> | void,
  fn: (
    fake: FakeVizier,
    base: Pick<PixieQueryStreamOptions, "client" | "clusterId" | "clock">,
    clock: ManualClock,
  ) => Promise<void>,
): Promise<void> {
  const fake = await FakeVizier.start();
  fake.onExecute = handler;
  const client = await PixieClient.connect({ mode: "direct", directAddr: fake.address });
  // A second after T0: rows are stamped before they are read, as Pixie's are.
  const clock = new ManualClock(1_700_000_001_000);
  try {
    await fn(fake, { client, clusterId: "", clock }, clock);
  } finally {
    client.close();
    await fake.stop();
  }
}

const text = (c: unknown) => new TextDecoder().decode(c as Uint8Array);
const times = (rows: Row[]) => rows.map((r) => r.time - T0);

Deno.test("several tables in any order, keep-alives, invalid UTF-8, shared filters fanned out, eos ends", async () => {
  const badUtf8 = new Uint8Array([0xff, 0x00, 0xfe, 0xc3]);
  await withDirect(async (c) => {
    const [a, b] = ["table-a", "table-b"];
    await c.meta(b, "voice/tts", HTTP_RELATION);
    await c.keepAlive(b, HTTP_RELATION);
    await c.meta(a, "voice/source", HTTP_RELATION);
    await c.keepAlive(a, HTTP_RELATION);
    await c.batch(httpBatch(a, [{ time: T0 + 1n, body: badUtf8 }, { time: T0 + 2n, body: "two" }]));
    await c.batch(httpBatch(b, [{ time: T0 + 5n, body: "tts" }]));
    await c.keepAlive(a, HTTP_RELATION);
    await c.batch(httpBatch(a, [{ time: T0 + 3n, body: "three" }], true));
    await c.batch(httpBatch(b, [], true));
    await c.stats();
    c.end();
  }, async (fake, base) => {
    const metrics = new Recorder();
    const stream = new PixieQueryStream({
      ...base,
      queries: [q("voice/source"), q("voice/asr"), q("voice/tts", F2)],
      metrics,
    });
    const rows = await collect(stream);
    const by = (name: string) => rows.filter((r) => r.query === name);
    deepStrictEqual(times(by("voice/source")), [1n, 2n, 3n]);
    deepStrictEqual(times(by("voice/asr")), [1n, 2n, 3n], "a shared filter fans rows out");
    deepStrictEqual(times(by("voice/tts")), [5n]);
    deepStrictEqual(by("voice/source")[0]!.columns.req_body, badUtf8);
    equal(text(by("voice/asr")[2]!.columns.req_body), "three");
    ok(rows.every((r) => r.node === "node-1"));
    equal(metrics.rows.get("voice/asr"), 3);
    equal(metrics.restartsSeen.length, 0);
    // Every response counts as the stream answering: 2 metadata, 3 keep-alives, 4 batches, the stats.
    equal(metrics.responses, 10);
    equal(fake.executeRequests.length, 1, "ended by eos: no restart");
    const req = fake.executeRequests[0]!;
    equal(req.encryption, undefined, "direct mode: no encryption by default");
    equal(req.queryStr.split("px.display(").length - 1, 2, "identical filters share one query");
  });
});

Deno.test("a compile error is reported against the user's stream_filter and not retried", async () => {
  const filter = "df = px.DataFrame(table='http_events')\ndf = df[df.bad_col == 1]\n";
  await withDirect((c) => {
    const lines = c.request.queryStr.split("\n");
    const line = lines.findIndex((l) => l.includes("bad_col"));
    c.compileError([{
      line: line + 1,
      column: lines[line]!.indexOf("bad_col") + 1,
      message: "Column 'bad_col' not found",
    }]);
  }, async (fake, base) => {
    const stream = new PixieQueryStream({ ...base, queries: [q("voice/source"), q("voice/stt", filter)] });
    await rejects(collect(stream), (e: unknown) => {
      ok(e instanceof PixieCompileError);
      equal(e.measurement, "voice");
      equal(e.tap, "stt");
      equal(e.line, 2);
      equal(e.col, "df = df[df.bad_col".indexOf("bad_col") + 1);
      ok(e.message.includes("stream_filter of measurement voice, tap stt: line 2, column 12"));
      ok(e.message.includes("Column 'bad_col' not found"));
      return true;
    });
    equal(fake.executeRequests.length, 1);
  });
});

const OVERLAP_NS = 5_000_000_000n; // the default rerunOverlapMs

for (const drop of ["reset", "unavailable", "end", "internal"] as const) {
  Deno.test(`a stream dropped mid-way (${drop}) is re-run from the last time_, never resumed`, async () => {
    await withDirect(async (c) => {
      await c.meta(`t${c.index}`, "voice/source", HTTP_RELATION);
      if (c.index === 0) {
        await c.batch(httpBatch("t0", [{ time: T0 + 1n, body: "a" }, { time: T0 + 2n, body: "b" }]));
        if (drop === "reset") c.reset();
        else if (drop === "unavailable") c.fail(GrpcCode.UNAVAILABLE, "connection lost");
        else if (drop === "internal") {
          c.fail(GrpcCode.INTERNAL, "server closed the stream without sending trailers");
        } else c.end();
      } else {
        // A fresh query: metadata again (new table id), rows from the start time on, the overlap included.
        await c.keepAlive("t1", HTTP_RELATION);
        await c.batch(httpBatch("t1", [{ time: T0 + 1n, body: "a" }, { time: T0 + 2n, body: "b" }]));
        await c.batch(httpBatch("t1", [{ time: T0 + 3n, body: "c" }], true));
        c.end();
      }
    }, async (fake, base, clock) => {
      const metrics = new Recorder();
      const dupes: number[] = [];
      const stream = new PixieQueryStream({
        ...base,
        queries: [q("voice/source")],
        metrics: { ...metrics, duplicates: (_q, n) => void dupes.push(n) },
        random: () => 0.5,
      });
      const rows = await collect(stream);
      deepStrictEqual(times(rows), [1n, 2n, 3n]);
      const [first, second] = fake.executeRequests;
      equal(fake.executeRequests.length, 2);
      equal(first!.queryId, undefined);
      equal(second!.queryId, undefined, "no resume: it could lose the batch in flight");
      ok(
        second!.queryStr.includes(`start_time=${T0 + 2n - OVERLAP_NS})`),
        "from the last time_ minus the overlap",
      );
      deepStrictEqual(metrics.restartsSeen, ["voice/source:rerun"]);
      deepStrictEqual(dupes, [2], "the overlap's rows were recognised");
      equal(clock.sleeps.length, 1, "waited before re-running");
      ok(clock.sleeps[0]! >= 250);
    });
  });
}

Deno.test("rows sharing the last time_ are neither lost nor doubled by a re-run", async () => {
  await withDirect(async (c) => {
    await c.meta(`t${c.index}`, "voice/source", HTTP_RELATION);
    if (c.index === 0) {
      await c.batch(httpBatch("t0", [
        { time: T0 + 100n, body: "A" },
        { time: T0 + 200n, body: "B" },
        { time: T0 + 200n, body: "C" },
      ]));
      // The batch holding D (also at T0+200) was in flight: lost at the drop.
      c.fail(GrpcCode.UNAVAILABLE, "Received RST_STREAM with code 2");
    } else {
      c.queryId = "99999999-0000-4000-8000-000000000000";
      await c.batch(httpBatch("t1", [
        { time: T0 + 100n, body: "A" },
        { time: T0 + 200n, body: "B" },
        { time: T0 + 200n, body: "D" },
        { time: T0 + 200n, body: "C" },
        { time: T0 + 300n, body: "E" },
      ], true));
      c.end();
    }
  }, async (fake, base) => {
    const metrics = new Recorder();
    const stream = new PixieQueryStream({ ...base, queries: [q("voice/source"), q("voice/asr")], metrics });
    const rows = await collect(stream);
    deepStrictEqual(rows.filter((r) => r.query === "voice/source").map((r) => text(r.columns.req_body)), [
      "A",
      "B",
      "C",
      "D",
      "E",
    ]);
    equal(rows.filter((r) => r.query === "voice/asr").length, 5);
    const reqs = fake.executeRequests;
    equal(reqs.length, 2);
    equal(reqs[1]!.queryId, undefined);
    ok(reqs[1]!.queryStr.includes(`start_time=${T0 + 200n - OVERLAP_NS})`));
    ok(!reqs[1]!.queryStr.includes("'-30s'"));
    deepStrictEqual(metrics.restartsSeen.sort(), ["voice/asr:rerun", "voice/source:rerun"]);
    equal(stream.queryId, "99999999-0000-4000-8000-000000000000");
  });
});

for (
  const message of [
    "error in StreamResults: Query 5d1c0f9e-1c8e-4c57-9f0b-3f1f2a6c8d10 not registered in query forwarder",
    "error in ForwardQueryResult: Query 5d1c0f9e-1c8e-4c57-9f0b-3f1f2a6c8d10 can not accept more data, consumer likely died",
    "Query 5d1c0f9e-1c8e-4c57-9f0b-3f1f2a6c8d10 timedout waiting for consumer",
  ]
) {
  Deno.test(`the broker forgetting the query (UNKNOWN "${message.slice(0, 40)}…") re-runs at once`, async () => {
    await withDirect(async (c) => {
      await c.meta(`t${c.index}`, "voice/source", HTTP_RELATION);
      if (c.index === 0) {
        await c.batch(httpBatch("t0", [{ time: T0 + 10n, body: "x" }]));
        c.fail(GrpcCode.UNKNOWN, message);
      } else {
        await c.batch(httpBatch("t1", [{ time: T0 + 10n, body: "x" }, { time: T0 + 20n, body: "y" }], true));
        c.end();
      }
    }, async (fake, base, clock) => {
      const rows = await collect(new PixieQueryStream({ ...base, queries: [q("voice/source")] }));
      deepStrictEqual(rows.map((r) => text(r.columns.req_body)), ["x", "y"]);
      equal(fake.executeRequests.length, 2);
      deepStrictEqual(clock.sleeps, [], "no backoff, and no 180 s of resume attempts");
    });
  });
}

// A quiet table (no row yet) and a drop longer than its window: re-running start_time='-30s' as written would
// begin 30 s before the re-run and never read the rows of the drop's beginning.
for (
  const [what, query] of [
    ["the query's start time", q("voice/source", F1, { startTime: "-30s" })],
    ["the filter's own px.DataFrame(..., start_time='-30s')", q("voice/source", F1)],
  ] as const
) {
  Deno.test(`a re-run before any row starts where the first run began (${what}), made absolute`, async () => {
    await withDirect(async (c) => {
      if (c.index === 0) return c.fail(GrpcCode.INTERNAL, "broker exploded");
      await c.meta("t", "voice/source", HTTP_RELATION);
      await c.batch(httpBatch("t", [], true));
      c.end();
    }, async (fake, base, clock) => {
      const start = clock.nowNs();
      await collect(new PixieQueryStream({ ...base, queries: [query], backoff: { initialMs: 60_000 } }));
      const reqs = fake.executeRequests;
      ok(reqs[0]!.queryStr.includes("start_time='-30s'"));
      ok(reqs[1]!.queryStr.includes(`start_time=${start - 30_000_000_000n})`), reqs[1]!.queryStr);
    });
  });
}

for (
  const [what, act] of [
    ["skipTo", (s: PixieQueryStream) => s.skipTo(T0 + 500n)],
    ["setQueries", (s: PixieQueryStream) => s.setQueries([q("voice/source", F2)])],
  ] as const
) {
  Deno.test(`${what} during a re-run's backoff re-runs at once instead of waiting it out`, async () => {
    let sleeping!: () => void;
    const asleep = new Promise<void>((r) => sleeping = r);
    await withDirect(async (c) => {
      if (c.index === 0) return c.fail(GrpcCode.UNAVAILABLE, "down");
      await c.meta("t", "voice/source", HTTP_RELATION);
      await c.batch(httpBatch("t", [{ time: T0 + 1_000n, body: "z" }], true));
      c.end();
    }, async (fake, base, clock) => {
      const stream = new PixieQueryStream({
        ...base,
        queries: [q("voice/source")],
        random: () => 0.999,
        // A backoff that only an abort ends: waiting it out would hang the test.
        clock: {
          ...clock,
          sleep: (ms, signal) =>
            new Promise<void>((resolve) => {
              clock.sleeps.push(ms);
              sleeping();
              if (signal?.aborted) return resolve();
              signal?.addEventListener("abort", () => resolve(), { once: true });
            }),
        },
      });
      const rowsP = collect(stream);
      await asleep;
      act(stream);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const rows = await Promise.race([
        rowsP,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("the re-run waited out its backoff")), 10_000);
        }),
      ]).finally(() => clearTimeout(timer));
      deepStrictEqual(rows.map((r) => text(r.columns.req_body)), ["z"]);
      equal(fake.executeRequests.length, 2);
      equal(clock.sleeps.length, 1);
      if (what === "skipTo") ok(fake.executeRequests[1]!.queryStr.includes(`start_time=${T0 + 500n})`));
      else ok(fake.executeRequests[1]!.queryStr.includes("/tts"));
    });
  });
}

Deno.test("backoff grows exponentially with jitter under a floor and cap; never a tight loop", async () => {
  const windowDelays = [0, 1, 2, 3, 4, 5, 6].map((a) =>
    backoffDelay(a, { initialMs: 100, maxMs: 1000, minMs: 50, stableMs: 1e9 }, () => 0.999)
  );
  deepStrictEqual(windowDelays, [99, 199, 399, 799, 999, 999, 999]);
  equal(backoffDelay(5, { initialMs: 100, maxMs: 1000, minMs: 50, stableMs: 1e9 }, () => 0), 50);

  await withDirect((c) => c.fail(GrpcCode.UNAVAILABLE, "down"), async (fake, base, clock) => {
    const stream: PixieQueryStream = new PixieQueryStream({
      ...base,
      queries: [q("voice/source")],
      backoff: { initialMs: 100, maxMs: 1000, minMs: 50, stableMs: 1e9 },
      random: () => 0.999,
      clock: {
        ...clock,
        sleep: (ms) => {
          if (clock.sleeps.length >= 5) stream.close();
          return clock.sleep(ms);
        },
      },
    });
    deepStrictEqual(await collect(stream), []);
    deepStrictEqual(clock.sleeps, [99, 199, 399, 799, 999, 999]);
    equal(fake.executeRequests.length, 6);
  });
});

Deno.test("metrics: rows read, lag from the newest time_, payloads truncated by Pixie", async () => {
  const clock = new ManualClock();
  const now = clock.nowNs();
  await withDirect(async (c) => {
    await c.meta("t", "voice/source", HTTP_RELATION);
    await c.batch(httpBatch("t", [
      { time: now - 3_000_000_000n, body: "x".repeat(497) + "... [TRUNCATED]" },
      { time: now - 2_000_000_000n, body: "whole" },
    ]));
    await c.batch(httpBatch("t", [], true));
    c.end();
  }, async (_fake, base) => {
    const metrics = new Recorder();
    await collect(
      new PixieQueryStream({ ...base, clock, queries: [q("voice/source"), q("voice/asr")], metrics }),
    );
    equal(metrics.rows.get("voice/source"), 2);
    equal(metrics.truncatedSeen.get("voice/source"), 1);
    equal(metrics.truncatedSeen.get("voice/asr"), 1);
    equal(metrics.lags.get("voice/source"), 2);
  });
});

Deno.test("bad batches are counted and skipped; the stream goes on", async () => {
  const stranger = await generateJweKeyPair();
  await withDirect(async (c) => {
    await c.meta("t", "voice/source", HTTP_RELATION);
    await c.batch(httpBatch("unknown-table", [{ time: T0, body: "?" }]));
    const short = httpBatch("t", [{ time: T0 + 1n, body: "bad" }]);
    await c.batch({ ...short, cols: short.cols.slice(1) });
    const jwe = await encryptCompactJwe(
      encodeRowBatch(httpBatch("t", [{ time: T0 + 2n, body: "s" }])),
      stranger.publicJwk,
    );
    await c.send({ encryptedBatch: new TextEncoder().encode(jwe) });
    await c.batch(httpBatch("t", [{ time: T0 + 3n, body: "good" }], true));
    c.end();
  }, async (_fake, base) => {
    const metrics = new Recorder();
    const rows = await collect(new PixieQueryStream({ ...base, queries: [q("voice/source")], metrics }));
    deepStrictEqual(rows.map((r) => text(r.columns.req_body)), ["good"]);
    deepStrictEqual(metrics.errorsSeen, ["-:unknown_table", "voice/source:decode", "-:decrypt"]);
  });
});

Deno.test("cloud mode encrypts end to end by default; batches cross only as JWE", async () => {
  const tls = await makeTestCert();
  const apiKey = "px-api-stream-test-key-0123456789";
  const fake = await FakeVizier.start({ apiKey, tls });
  fake.onExecute = async (c) => {
    await c.meta("t", "voice/source", HTTP_RELATION);
    await c.batch(httpBatch("t", [{ time: T0 + 1n, body: new Uint8Array([0, 1, 2, 255]) }]));
    await c.batch(httpBatch("t", [{ time: T0 + 2n, body: "pcm" }], true));
    c.end();
  };
  const client = await PixieClient.connect({
    mode: "cloud",
    cloudAddr: fake.address,
    apiKey,
    caPem: tls.cert,
    channelOptions: TEST_TLS_CHANNEL,
  });
  try {
    const rows = await collect(
      new PixieQueryStream({ client, clusterId: "c1", queries: [q("voice/source")] }),
    );
    deepStrictEqual(times(rows), [1n, 2n]);
    deepStrictEqual(rows[0]!.columns.req_body, new Uint8Array([0, 1, 2, 255]));
    equal(fake.encryptedBatches, 2);
    const enc = fake.executeRequests[0]!.encryption!;
    deepStrictEqual([enc.keyAlg, enc.contentAlg, enc.compressionAlg], ["RSA-OAEP-256", "A256GCM", "DEF"]);
    const jwk = JSON.parse(enc.jwkKey);
    equal(jwk.kty, "RSA");
    equal(jwk.d, undefined, "only the public key leaves the process");
    equal(fake.executeRequests[0]!.clusterId, "c1");

    // Opting out sends plain batches.
    const before = fake.encryptedBatches;
    const plain = await collect(
      new PixieQueryStream({ client, clusterId: "c1", queries: [q("voice/source")], encryption: false }),
    );
    equal(plain.length, 2);
    equal(fake.encryptedBatches, before);
    equal(fake.executeRequests[1]!.encryption, undefined);
  } finally {
    client.close();
    await fake.stop();
  }
});

Deno.test("a wrong API key ends the stream at once and never reaches the logs", async () => {
  const tls = await makeTestCert();
  const fake = await FakeVizier.start({ apiKey: "px-api-the-right-key-000000", tls });
  const wrong = "px-api-the-wrong-key-111111";
  const lines: string[] = [];
  const prev = setLogSink((l) => lines.push(l));
  const client = await PixieClient.connect({
    mode: "cloud",
    cloudAddr: fake.address,
    apiKey: wrong,
    caPem: tls.cert,
    channelOptions: TEST_TLS_CHANNEL,
  });
  try {
    const stream = new PixieQueryStream({ client, clusterId: "c1", queries: [q("voice/source")] });
    await rejects(collect(stream), (e: unknown) => {
      ok(e instanceof PixieRpcError);
      equal(e.code, GrpcCode.UNAUTHENTICATED);
      ok(!String(e).includes(wrong));
      return true;
    });
    equal(fake.executeRequests.length, 1);
  } finally {
    setLogSink(prev);
    client.close();
    await fake.stop();
  }
  ok(lines.every((l) => !l.includes(wrong)));
});

Deno.test("closing the stream cancels the running call", async () => {
  let cancelled: Promise<void> | undefined;
  await withDirect(async (c) => {
    cancelled = c.cancelled;
    await c.meta("t", "voice/source", HTTP_RELATION);
    for (let i = 0; i < 3; i++) {
      await c.batch(httpBatch("t", [{ time: T0 + BigInt(i), body: "r" } as HttpRow]));
    }
    await c.cancelled;
  }, async (_fake, base) => {
    const stream = new PixieQueryStream({ ...base, queries: [q("voice/source")] });
    const rows = await collect(stream, 3);
    equal(rows.length, 3);
    await cancelled;
  });
});

Deno.test("a stream that goes silent (no keep-alives) counts as dropped and is re-run", async () => {
  await withDirect(async (c) => {
    await c.meta("t", "voice/source", HTTP_RELATION);
    if (c.index === 0) {
      await c.batch(httpBatch("t", [{ time: T0 + 1n, body: "a" }]));
      await c.cancelled; // a half-open connection: nothing more, no error
    } else {
      await c.batch(httpBatch("t", [{ time: T0 + 1n, body: "a" }, { time: T0 + 2n, body: "b" }], true));
      c.end();
    }
  }, async (fake, base) => {
    const metrics = new Recorder();
    const rows = await collect(
      new PixieQueryStream({ ...base, queries: [q("voice/source")], metrics, idleTimeoutMs: 300 }),
    );
    deepStrictEqual(times(rows), [1n, 2n]);
    equal(fake.executeRequests[1]!.queryId, undefined);
    deepStrictEqual(metrics.restartsSeen, ["voice/source:rerun"]);
  });
});

/** A client that answers each call with `script`'s responses (metadata of table "t", then what it yields). */
function scripted(script: (call: number, signal?: AbortSignal) => AsyncGenerator<ExecuteScriptResponse>) {
  let calls = 0;
  return {
    cloud: false,
    async *execute(_req: ExecuteScriptRequest, signal?: AbortSignal): AsyncGenerator<ExecuteScriptResponse> {
      yield { queryId: "q", metaData: { id: "t", name: "voice/source", relation: HTTP_RELATION } };
      yield* script(calls++, signal);
    },
  };
}

const untilAborted = (signal?: AbortSignal) =>
  new Promise<void>((r) =>
    signal?.aborted ? r() : signal?.addEventListener("abort", () => r(), { once: true })
  );

Deno.test("the idle watchdog is one timer for a call's many responses, not one per response", async () => {
  const client = scripted(async function* () {
    for (let i = 1; i <= 200; i++) {
      yield { queryId: "q", batch: httpBatch("t", [{ time: T0 + BigInt(i), body: "x" }]) };
    }
    yield { queryId: "q", batch: httpBatch("t", [], true) };
  });
  const real = globalThis.setTimeout;
  let timers = 0;
  globalThis.setTimeout = ((fn: () => void, ms?: number) => {
    timers++;
    return real(fn, ms);
  }) as typeof setTimeout;
  try {
    const rows = await collect(new PixieQueryStream({ client, clusterId: "", queries: [q("voice/source")] }));
    equal(rows.length, 200);
  } finally {
    globalThis.setTimeout = real;
  }
  ok(timers <= 2, `${timers} timers for 202 responses`);
});

Deno.test("silence counts from the last response, and not while the consumer holds a batch", async () => {
  const idleMs = 150;
  const client = scripted(async function* (call, signal) {
    if (call === 0) {
      yield { queryId: "q", batch: httpBatch("t", [{ time: T0 + 1n, body: "a" }]) };
      // Inside the timeout after the consumer gave the first batch back (it held it 2.5x the timeout).
      await new Promise((r) => setTimeout(r, idleMs / 2));
      yield { queryId: "q", batch: httpBatch("t", [{ time: T0 + 2n, body: "b" }]) };
      await untilAborted(signal); // then silence: a drop
      return;
    }
    yield { queryId: "q", batch: httpBatch("t", [{ time: T0 + 3n, body: "c" }], true) };
  });
  const metrics = new Recorder();
  const clock = new ManualClock();
  const stream = new PixieQueryStream({
    client,
    clusterId: "",
    clock,
    queries: [q("voice/source")],
    metrics,
    idleTimeoutMs: idleMs,
  });
  const rows: Row[] = [];
  const t0 = Date.now();
  let stalledAfter = 0;
  for await (const batch of stream) {
    rows.push(...batch);
    if (rows.length === 1) await new Promise((r) => setTimeout(r, idleMs * 2.5));
    if (rows.length === 2) stalledAfter = Date.now();
  }
  deepStrictEqual(times(rows), [1n, 2n, 3n]);
  deepStrictEqual(
    metrics.restartsSeen,
    ["voice/source:rerun"],
    "one drop: the silence after the second batch",
  );
  const waited = Date.now() - stalledAfter;
  ok(waited >= idleMs - 5, `re-run ${waited} ms after the last response`);
  ok(Date.now() - t0 >= idleMs * 3.5, "the held batch did not count as silence");
});

Deno.test("truncated cells are counted from the cells each row's record holds (the last column of a name)", async () => {
  const relation = [
    { name: "time_", type: DataType.TIME64NS },
    { name: "req_body", type: DataType.STRING },
    { name: "req_body", type: DataType.STRING },
    { name: "req_body_size", type: DataType.INT64 },
  ];
  const te = new TextEncoder();
  const client = {
    cloud: false,
    async *execute(): AsyncGenerator<ExecuteScriptResponse> {
      yield { queryId: "q", metaData: { id: "t", name: "voice/source", relation } };
      const cells = (list: string[]) => list.map((x) => te.encode(x));
      yield {
        queryId: "q",
        batch: {
          tableId: "t",
          cols: [
            { type: "time64ns", data: [T0 + 1n, T0 + 2n, T0 + 3n, T0 + 4n] },
            { type: "string", data: cells(["x... [TRUNCATED]", "ok", "ok", "ok"]) },
            { type: "string", data: cells(["whole", "cut", "abc... [TRUNCATED]", "fine"]) },
            { type: "int64", data: [5n, 10n, 0n, -1n] },
          ],
          numRows: 4,
          eow: true,
          eos: true,
        },
      };
    },
  };
  const metrics = new Recorder();
  const rows = await collect(
    new PixieQueryStream({ client, clusterId: "", queries: [q("voice/source")], metrics }),
  );
  deepStrictEqual(rows.map((r) => text(r.columns.req_body)), ["whole", "cut", "abc... [TRUNCATED]", "fine"]);
  equal(metrics.truncatedSeen.get("voice/source"), 2, "the silent cut (3 of 10 bytes) and the marker");
});

Deno.test("skipTo re-runs at once from the given time_, not from the last one seen: the backlog is never read", async () => {
  let second!: () => void;
  const secondP = new Promise<void>((r) => second = r);
  await withDirect(async (c) => {
    await c.meta(`t${c.index}`, "voice/source", HTTP_RELATION);
    if (c.index === 0) {
      await c.batch(httpBatch("t0", [{ time: T0 + 1n, body: "a" }, { time: T0 + 2n, body: "b" }]));
      await c.cancelled;
    } else {
      second();
      await c.batch(httpBatch("t1", [{ time: T0 + 1_000n, body: "z" }], true));
      c.end();
    }
  }, async (fake, base, clock) => {
    const metrics = new Recorder();
    const stream = new PixieQueryStream({ ...base, queries: [q("voice/source")], metrics });
    const rows: Row[] = [];
    for await (const batch of stream) {
      rows.push(...batch);
      if (rows.length === 2) stream.skipTo(T0 + 1_000n);
    }
    await secondP;
    deepStrictEqual(times(rows), [1n, 2n, 1_000n]);
    equal(fake.executeRequests.length, 2);
    ok(fake.executeRequests[1]!.queryStr.includes(`start_time=${T0 + 1_000n})`), "from the skip's time");
    equal(metrics.restartsSeen.length, 0, "not a restart");
    equal(clock.sleeps.length, 0, "no backoff");
  });
});

Deno.test("a skip's floor above the wall clock (the host's clock stepped back) gives way: later rows are read", async () => {
  const HOUR_NS = 3_600_000_000_000n;
  await withDirect(async (c) => {
    await c.meta(`t${c.index}`, "voice/source", HTTP_RELATION);
    if (c.index === 0) {
      await c.batch(httpBatch("t0", [{ time: T0 + 1n, body: "a" }]));
      await c.cancelled;
      return;
    }
    // Pixie: the rows from the re-run's start_time on, stamped by the host's clock after it stepped back.
    const start = BigInt(/start_time=(\d+)\)/.exec(c.request.queryStr)![1]!);
    const table = [{ time: T0 - HOUR_NS + 2_000_000_000n, body: "b" }];
    await c.batch(httpBatch("t1", table.filter((r) => r.time >= start), true));
    c.end();
  }, async (fake, base, clock) => {
    const stream = new PixieQueryStream({ ...base, queries: [q("voice/source")] });
    const rows: Row[] = [];
    for await (const batch of stream) {
      rows.push(...batch);
      if (rows.length === 1) {
        // A sensor behind skips to now (actors/late_rows.ts); then the host's clock steps back an hour.
        stream.skipTo(clock.nowNs());
        clock.ms -= 3_600_000;
      }
    }
    deepStrictEqual(rows.map((r) => text(r.columns.req_body)), ["a", "b"]);
    const start = BigInt(/start_time=(\d+)\)/.exec(fake.executeRequests[1]!.queryStr)![1]!);
    ok(start <= clock.nowNs(), `re-run from ${start}`);
  });
});

// A watermark ahead of the wall clock (a row whose time_ is garbage near 2^63, or rows stamped while the host's clock
// was an hour ahead, stepped back since): a re-run from it asked Pixie for rows from the future, and read nothing
// until the clock caught up (for ever, for the garbage row).
for (
  const [what, future] of [
    ["a row's time_ near 2^63", (1n << 63n) - 1n],
    ["rows stamped an hour ahead, the host's clock stepped back since", T0 + 3_600_000_000_000n],
  ] as const
) {
  Deno.test(`a re-run after ${what} starts no later than the wall clock: later rows are read`, async () => {
    await withDirect(async (c) => {
      await c.meta(`t${c.index}`, "voice/source", HTTP_RELATION);
      if (c.index === 0) {
        await c.batch(httpBatch("t0", [{ time: T0 + 1n, body: "a" }, { time: future, body: "x" }]));
        c.fail(GrpcCode.UNAVAILABLE, "connection lost");
        return;
      }
      // Pixie: the rows from the re-run's start_time on.
      const start = BigInt(/start_time=(\d+)\)/.exec(c.request.queryStr)![1]!);
      const table = [{ time: T0 + 2_000_000n, body: "b" }, { time: T0 + 3_000_000n, body: "c" }];
      await c.batch(httpBatch("t1", table.filter((r) => r.time >= start), true));
      c.end();
    }, async (fake, base, clock) => {
      const stream = new PixieQueryStream({ ...base, queries: [q("voice/source")], random: () => 0.5 });
      const rows = await collect(stream);
      deepStrictEqual(rows.map((r) => text(r.columns.req_body)), ["a", "x", "b", "c"]);
      const start = BigInt(/start_time=(\d+)\)/.exec(fake.executeRequests[1]!.queryStr)![1]!);
      ok(start <= clock.nowNs() - OVERLAP_NS, `re-run from ${start}`);
    });
  });
}
