/**
 * The fake Vizier answers like the real one (see tests/support/fake_vizier.ts for the Pixie sources each behaviour
 * comes from), and PixieQueryStream copes with each answer.
 */
import { deepStrictEqual, equal, match, ok, rejects } from "node:assert/strict";
import { GrpcCode, PixieClient, PixieRpcError } from "../pixie/client.ts";
import type { ExecuteScriptResponse } from "../pixie/messages.ts";
import { type ComposedQueryInput, composeScript } from "../pixie/pxl.ts";
import { PixieCompileError, PixieQueryStream } from "../pixie/stream.ts";
import { setLogLevel, setLogSink } from "../util/log.ts";
import {
  CarnotCode,
  FakeVizier,
  type FakeVizierOptions,
  ManualClock,
  type StoredRow,
} from "./support/fake_vizier.ts";

setLogLevel("error");

const te = new TextEncoder();
const td = new TextDecoder();
const NOW = BigInt(Date.now()) * 1_000_000n;

function q(filter: string, over: Partial<ComposedQueryInput> = {}): ComposedQueryInput {
  return {
    name: "voice/source",
    streamFilter: filter,
    node: "node-1",
    columns: { time: "time_", pod: "pod", payload: "req_body" },
    streamKeyColumns: [],
    ...over,
  };
}

function rows(n: number, from = 0, over: Partial<StoredRow> = {}): StoredRow[] {
  return Array.from({ length: n }, (_, i) => ({
    time: NOW + BigInt(from + i) * 1_000_000n,
    pod: "voice/media-0",
    pid: 4242,
    cmdline: "/usr/bin/media-relay --port 8080",
    cols: { req_path: te.encode("/audio"), req_body: te.encode(`r${from + i}`), local_port: 8080n },
    ...over,
  }));
}

async function withFake(
  opts: FakeVizierOptions,
  fn: (fake: FakeVizier, client: PixieClient) => Promise<void>,
): Promise<void> {
  const fake = await FakeVizier.start(opts);
  const client = await PixieClient.connect({ mode: "direct", directAddr: fake.address });
  try {
    await fn(fake, client);
  } finally {
    client.close();
    await fake.stop();
  }
}

/** Reads responses until `until` says stop or the call ends; returns them and the error, if any. */
async function read(
  client: PixieClient,
  req: { queryStr: string; queryId?: string },
  until: (got: ExecuteScriptResponse[]) => boolean = () => false,
): Promise<{ got: ExecuteScriptResponse[]; error?: unknown }> {
  const got: ExecuteScriptResponse[] = [];
  const ac = new AbortController();
  try {
    for await (const r of client.execute({ clusterId: "", ...req }, ac.signal)) {
      got.push(r);
      if (until(got)) break;
    }
    return { got };
  } catch (error) {
    return { got, error };
  } finally {
    ac.abort();
  }
}

const bodies = (got: ExecuteScriptResponse[]) =>
  got.flatMap((r) => {
    const col = r.batch?.cols.find((c) =>
      c.type === "string" && c.data.some((d) => td.decode(d).startsWith("r"))
    );
    return col && col.type === "string" ? col.data.map((d) => td.decode(d)) : [];
  });

const FILTER = "df = px.DataFrame(table='http_events', start_time='-1m')\ndf = df[df.req_path == '/audio']\n";

Deno.test("compile errors: Pixie's messages at the script's line and column, mapped into the stream_filter", async () => {
  const cases: [string, RegExp, number, number][] = [
    // [filter line 2, message, line in the filter, column in the filter]
    ["df = df[df.ctx['pod'].contains('media')]", /'Expression' object has no attribute 'contains'/, 2, 22],
    ["df = df[(df.local_port == 8080) & (df.req_path == '/a')]", /Operator '&' not handled/, 2, 33],
    ["df = df[df.pod_name == 'x']", /Column 'pod_name' not found in parent dataframe/, 2, 11],
    ["df = df[df.a == 1 and df.b == 2 and df.c == 3]", /Expected two arguments to 'and'\./, 2, 9],
  ];
  await withFake({}, async (fake, client) => {
    for (const [line2, message, line, col] of cases) {
      const filter = `df = px.DataFrame(table='http_events')\n${line2}\n`;
      const stream = new PixieQueryStream({
        client,
        clusterId: "",
        queries: [q(FILTER), q(filter, { name: "v/asr" })],
      });
      await rejects(
        (async () => {
          for await (const _ of stream) { /* none */ }
        })(),
        (e: unknown) => {
          ok(e instanceof PixieCompileError, String(e));
          match(e.message, message);
          deepStrictEqual([e.measurement, e.tap, e.line, e.col], ["v", "asr", line, col], e.message);
          ok(e.errors[0]!.scriptLine > 2, "Pixie reports the line in the whole script");
          return true;
        },
      );
    }
    // A table that does not exist: reported at the px.DataFrame call's "(".
    const r = await read(client, {
      queryStr: composeScript([q("df = px.DataFrame(table='socket_data')\n")]).script,
    });
    const status = r.got[0]?.status;
    equal(status?.code, 3);
    equal(status?.compilerErrors[0]?.message, "Table 'socket_data' not found.");
    deepStrictEqual([status?.compilerErrors[0]?.line, status?.compilerErrors[0]?.column], [3, 18]);
    ok(r.error instanceof PixieRpcError && r.error.code === GrpcCode.INVALID_ARGUMENT);
    equal(fake.stats.rowsServed, 0);
  });
});

Deno.test("a resume continues after the batch that was in flight at the drop: that batch is lost", async () => {
  await withFake({
    broker: { batchRows: 2 },
    chaos: { seed: 9, dropEvery: [2, 2], maxDrops: 1, kinds: ["end"] },
  }, async (fake, client) => {
    fake.pems[0]!.append("http_events", rows(8));
    const script = composeScript([q(FILTER)]).script;
    const first = await read(client, { queryStr: script });
    equal(first.error, undefined, "the drop ends the call (end without eos)");
    const id = first.got[0]!.queryId;
    deepStrictEqual(bodies(first.got), ["r0", "r1", "r2", "r3"]);
    const resumed = await read(client, { queryStr: script, queryId: id }, (g) => bodies(g).length >= 2);
    equal(resumed.got[0]!.metaData, undefined, "no metadata on a resume");
    deepStrictEqual(bodies(resumed.got), ["r6", "r7"], "r4 and r5 were in flight and are gone");
    equal(fake.stats.lostRows, 2);
  });
});

Deno.test("the broker forgets a query once keep-alives fill its 1,024-message buffer, or after 180 s unread", async () => {
  // 16 PEMs send a keep-alive every 2 s each: 1,024 messages in 128 s, before the consumer timeout.
  const pems = Array.from({ length: 16 }, (_, i) => ({ node: `node-${i}` }));
  await withFake({ pems }, async (fake, client) => {
    const script = composeScript([q(FILTER)]).script;
    const first = await read(client, { queryStr: script }, (g) => g.length >= 1);
    const id = first.got[0]!.queryId;
    await fake.advance(130_000);
    deepStrictEqual(fake.liveQueries, []);
    equal(fake.stats.forgottenFull, 1);
    const r = await read(client, { queryStr: script, queryId: id });
    ok(r.error instanceof PixieRpcError);
    equal(r.error.code, GrpcCode.UNKNOWN, "a plain Go error: UNKNOWN, not NOT_FOUND");
    match(r.error.details, /error in StreamResults: Query .* not registered in query forwarder/);
  });
  // One PEM fills it in 34 min: the 180 s consumer timeout comes first.
  await withFake({}, async (fake, client) => {
    const script = composeScript([q(FILTER)]).script;
    const id = (await read(client, { queryStr: script }, (g) => g.length >= 1)).got[0]!.queryId;
    while (fake.consumers > 0) await new Promise((r) => setTimeout(r, 5));
    await fake.advance(100_000);
    deepStrictEqual(fake.liveQueries, [id], "still resumable within 180 s");
    await fake.advance(81_000);
    deepStrictEqual(fake.liveQueries, []);
    equal(fake.stats.forgottenIdle, 1);
    const r = await read(client, { queryStr: script, queryId: id });
    ok(r.error instanceof PixieRpcError && r.error.code === GrpcCode.UNKNOWN);
  });
});

Deno.test("standalone PEM: query_id ignored (the script runs again), no Kubernetes metadata, table id = name", async () => {
  await withFake({ standalone: true }, async (fake, client) => {
    fake.pems[0]!.append("http_events", rows(3));
    // Today's composition (node filter, ctx pod) gets nothing from a standalone PEM.
    const nodeScoped = composeScript([q(FILTER)]).script;
    const none = await read(client, { queryStr: nodeScoped }, (g) => g.length >= 2);
    equal(none.got[0]!.metaData?.id, "voice/source");
    deepStrictEqual(bodies(none.got), [], "df.ctx['node'] reads '' there: every row filtered out");

    const direct = composeScript([q(FILTER, { scope: { kind: "none" }, podSource: "process" })]).script;
    const a = await read(client, { queryStr: direct }, (g) => bodies(g).length >= 3);
    deepStrictEqual(bodies(a.got), ["r0", "r1", "r2"]);
    const podCol = a.got.find((r) => r.batch?.numRows)!.batch!.cols[1]!;
    ok(podCol.type === "string");
    equal(td.decode(podCol.data[0]!), "4242:/usr/bin/media-relay --port 8080", "pod label from the process");
    const b = await read(
      client,
      { queryStr: direct, queryId: a.got[0]!.queryId },
      (g) => bodies(g).length >= 3,
    );
    ok(b.got[0]!.metaData, "metadata again: a fresh query");
    ok(b.got[0]!.queryId !== a.got[0]!.queryId);
    deepStrictEqual(bodies(b.got), ["r0", "r1", "r2"], "a naive resume duplicates rows");

    // Its HealthCheck ends at once with OK and no status.
    const statuses = [];
    for await (const s of client.healthCheck("")) statuses.push(s);
    deepStrictEqual(statuses, []);
  });
});

Deno.test("standalone PEM compile errors: a bare INVALID_ARGUMENT, named by query and quoted", async () => {
  await withFake({ standalone: true }, async (fake, client) => {
    const bad =
      "df = px.DataFrame(table='http_events')\ndf = df[px.contains(df.req_path, '/a') & df.local_port == 1]\n";
    const r = await read(client, { queryStr: composeScript([q(bad)]).script });
    deepStrictEqual(r.got, [], "no status message");
    ok(r.error instanceof PixieRpcError && r.error.code === GrpcCode.INVALID_ARGUMENT);
    equal(r.error.details, "Failed to compile script with error='Operator '&' not handled'");

    const clock = new ManualClock();
    const stream = new PixieQueryStream({
      client,
      clusterId: "",
      clock,
      queries: [q(FILTER), q(bad, { name: "voice/relay" })],
    });
    await rejects(
      (async () => {
        for await (const _ of stream) { /* none */ }
      })(),
      (e: unknown) => {
        ok(e instanceof PixieCompileError);
        equal(e.measurement, "voice");
        equal(e.tap, "relay", "the only filter holding the quoted '&'");
        equal(e.line, undefined);
        match(
          e.message,
          /stream_filter of measurement voice, tap relay \(the standalone PEM reports no line/,
        );
        match(e.message, /Operator '&' not handled/);
        return true;
      },
    );
    equal(fake.calls.filter((c) => c.method === "ExecuteScript").length, 2, "not retried");
  });
});

Deno.test("agent pruning: a pod equality filter runs on the PEMs holding that pod, a node filter on all", async () => {
  const pems = [
    { node: "node-1", pods: ["voice/media-0"] },
    { node: "node-2", pods: ["voice/asr-0"] },
    { node: "node-3", pods: ["voice/tts-0"] },
  ];
  await withFake({ pems }, async (fake, client) => {
    for (const p of fake.pems) p.append("http_events", rows(5, 0, { pod: [...p.pods][0]! }));
    const node = await read(
      client,
      { queryStr: composeScript([q(FILTER)]).script },
      (g) => bodies(g).length >= 5,
    );
    deepStrictEqual(fake.pems.map((p) => p.work.queries), [1, 1, 1]);
    deepStrictEqual(fake.pems.map((p) => p.work.rowsScanned), [5, 5, 5]);
    deepStrictEqual(bodies(node.got).length, 5, "only node-1's rows pass");
    const pods = composeScript([q(FILTER, { scope: { kind: "pods", pods: ["voice/media-0"] } })]).script;
    const byPod = await read(client, { queryStr: pods }, (g) => bodies(g).length >= 5);
    deepStrictEqual(fake.pems.map((p) => p.work.queries), [2, 1, 1]);
    deepStrictEqual(fake.pems.map((p) => p.work.rowsScanned), [10, 5, 5]);
    equal(bodies(byPod.got).length, 5);
  });
});

Deno.test("no start_time: Pixie reads the table from its start, so rows stored before the query are read, once, through a drop", async () => {
  await withFake({
    broker: { batchRows: 2 },
    chaos: { seed: 9, dropEvery: [2, 2], maxDrops: 1, kinds: ["unavailable"] },
  }, async (fake, client) => {
    // Ten minutes old: Stirling stored them long before the sensor started. Without a start_time Pixie's memory
    // source starts at the first row the table holds (memory_source_node.cc: StartSpec CurrentStartOfTable).
    fake.pems[0]!.append("http_events", rows(6, -600_000));
    const bare = "df = px.DataFrame(table='http_events')\ndf = df[df.req_path == '/audio']\n";
    const stream = new PixieQueryStream({
      client,
      clusterId: "",
      clock: new ManualClock(Date.now()),
      queries: [q(bare)],
      // Bounded: a model that read from the query's start would wait here for rows that never come.
      signal: AbortSignal.timeout(5_000),
    });
    const got: string[] = [];
    for await (const batch of stream) {
      for (const r of batch) got.push(td.decode(r.columns.req_body as Uint8Array));
      if (got.length >= 6) break;
    }
    stream.close();
    const stored = Array.from({ length: 6 }, (_, i) => `r${i - 600_000}`);
    deepStrictEqual(got, stored, "every stored row, once");
    equal(fake.stats.drops, 1);
    equal(fake.stats.lostRows, 2, "r4 and r5 were in flight at the drop; the re-run read them again");
    match(fake.executeRequests[1]!.queryStr, /start_time=\d+/, "the re-run starts near the last row seen");
  });
});

Deno.test("execution errors: Vizier's status with the mapped code, then the call fails with it; a code the broker cannot map is 0 and the query goes quiet; a standalone PEM's has only the message, then CANCELLED", async () => {
  const script = composeScript([q(FILTER)]).script;
  const direct = composeScript([q(FILTER, { scope: { kind: "none" }, podSource: "process" })]).script;
  const fails = async (
    opts: FakeVizierOptions,
    queryStr: string,
    code: number,
    until: (g: ExecuteScriptResponse[]) => boolean = () => false,
  ) => {
    let result: { got: ExecuteScriptResponse[]; error?: unknown } = { got: [] };
    await withFake(opts, async (fake, client) => {
      fake.pems[0]!.append("http_events", rows(2));
      const reading = read(client, { queryStr }, until);
      while (fake.consumers === 0) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 50));
      fake.failExecution(code, "Table 'http_events' not found");
      result = await reading;
    });
    return result;
  };
  const statusOf = (got: ExecuteScriptResponse[]) => got.find((r) => r.status)?.status;

  const mapped = await fails({}, script, CarnotCode.NOT_FOUND);
  deepStrictEqual(bodies(mapped.got), ["r0", "r1"], "the rows before it arrive");
  deepStrictEqual(statusOf(mapped.got), {
    code: GrpcCode.NOT_FOUND,
    message: "Table 'http_events' not found",
    compilerErrors: [],
  });
  ok(mapped.error instanceof PixieRpcError && mapped.error.code === GrpcCode.NOT_FOUND);
  equal(mapped.error.details, "Table 'http_events' not found");

  const unmapped = await fails({}, script, CarnotCode.FAILED_PRECONDITION, (g) => statusOf(g) !== undefined);
  equal(statusOf(unmapped.got)?.code, 0, "statusCodeToGRPCCode has no FAILED_PRECONDITION");
  equal(statusOf(unmapped.got)?.message, "Table 'http_events' not found");
  equal(unmapped.error, undefined, "the call goes on");

  const standalone = await fails({ standalone: true }, direct, CarnotCode.NOT_FOUND);
  deepStrictEqual(statusOf(standalone.got), {
    code: 0,
    message: "Table 'http_events' not found",
    compilerErrors: [],
  });
  ok(standalone.error instanceof PixieRpcError && standalone.error.code === GrpcCode.CANCELLED);
  equal(standalone.error.details, "");
});

Deno.test("a query failed in execution with a code the broker maps to 0 is forgotten after the producer timeout", async () => {
  const clock = { ms: 1_700_000_000_000 };
  await withFake({ clock: () => clock.ms }, async (fake, client) => {
    const reading = read(client, { queryStr: composeScript([q(FILTER)]).script });
    while (fake.consumers === 0) await new Promise((r) => setTimeout(r, 5));
    fake.failExecution(CarnotCode.UNIMPLEMENTED, "not implemented");
    await fake.advance(179_000);
    equal(fake.liveQueries.length, 1, "held: the broker knows nothing went wrong");
    await fake.advance(1_000);
    const r = await reading;
    ok(r.error instanceof PixieRpcError && r.error.code === GrpcCode.UNKNOWN);
    match(r.error.details, /timedout waiting for producers/);
    const at = r.got.findIndex((g) => g.status);
    ok(at >= 0, "the status came");
    deepStrictEqual(r.got.slice(at + 1), [], "nothing after it, not even a keep-alive");
  });
});

/** Runs a stream, fails its query in execution once rows came, and returns the errors its drop log lines give. */
async function dropErrors(
  opts: FakeVizierOptions,
  query: ComposedQueryInput,
  code: number,
  streamOpts: { idleTimeoutMs?: number } = {},
): Promise<string[]> {
  const lines: string[] = [];
  const drops = () => lines.filter((l) => l.includes("pixie stream dropped"));
  const prev = setLogSink((line) => void lines.push(line));
  setLogLevel("warn");
  try {
    await withFake(opts, async (fake, client) => {
      fake.pems[0]!.append("http_events", rows(2));
      const stream = new PixieQueryStream({
        client,
        clusterId: "",
        clock: new ManualClock(Date.now()),
        queries: [query],
        ...streamOpts,
      });
      const reading = (async () => {
        for await (const _ of stream) fake.failExecution(code, "Table 'http_events' not found");
      })();
      const deadline = Date.now() + 5_000;
      while (drops().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      stream.close();
      await reading;
    });
  } finally {
    setLogLevel("error");
    setLogSink(prev);
  }
  return drops().map((l) => String(JSON.parse(l).error));
}

Deno.test("an execution error's message is what the drop reports: a standalone PEM's (code 0, then CANCELLED) and one Vizier maps to 0", async () => {
  const direct = q(FILTER, { scope: { kind: "none" }, podSource: "process" });
  const standalone = await dropErrors({ standalone: true }, direct, CarnotCode.NOT_FOUND);
  ok(standalone.length >= 1, "re-run after it");
  match(standalone[0]!, /Table 'http_events' not found/, "not a bare CANCELLED");

  // The broker keeps the query (a 0 status is no error to it) but nothing comes after: without reading the
  // status the stream would wait for its idle watchdog and report only the silence.
  const vizier = await dropErrors({}, q(FILTER), CarnotCode.FAILED_PRECONDITION, { idleTimeoutMs: 2_000 });
  ok(vizier.length >= 1, "re-run after it");
  match(vizier[0]!, /Table 'http_events' not found/, "not 'no response for 2000 ms'");
});
