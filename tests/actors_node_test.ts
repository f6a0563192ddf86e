/**
 * The domain actors together on real audio (the e2e captures: telephony source on node-a, relay on node-b, ASR
 * on node-c), one SensorNode per capture over the in-process bus. Each test breaks something the issue 15
 * review found and checks that matching survives it, counted: a Matcher crash, one row from the future, a node
 * whose clock is behind, every row delivered twice, the stream cap; and exclude_source_streams.
 */
import { equal, ok } from "node:assert/strict";
import { finishNodes, type NodeOptions, SensorNode } from "../actors/node.ts";
import type { ActorFactory } from "../actors/runtime.ts";
import type { MatcherMsg } from "../actors/messages.ts";
import { InProcessBus } from "../bus/in_process.ts";
import type { Config } from "../config/schema.ts";
import { FsmMetrics } from "../http/metrics.ts";
import type { MatchRecord } from "../report/records.ts";
import type { Row } from "../pixie/row.ts";
import { mergeByTime } from "../pixie/replay.ts";
import { setLogSink } from "../util/log.ts";
import { parseMetricsText, sleep, sumSamples } from "./support/sensor_process.ts";
import { e2eConfig, e2eRows, sec } from "./support/actor_fixtures.ts";

setLogSink(() => {});

type NodeName = "node-a" | "node-b" | "node-c";
const NODES: readonly NodeName[] = ["node-a", "node-b", "node-c"];

interface Run {
  matches: MatchRecord[];
  nodes: Map<string, SensorNode>;
  metrics: Map<string, FsmMetrics>;
  metric(node: string, name: string, labels?: Record<string, string>): Promise<number>;
}

/** Runs nodes over rows; `feed` decides what is delivered when (default: all rows merged by time). */
async function run(
  config: Config,
  rows: Map<string, Row[]>,
  opts: {
    node?: Partial<NodeOptions>;
    feed?: (
      ingest: (node: string, row: Row) => Promise<void>,
      nodes: Map<string, SensorNode>,
    ) => Promise<void>;
  } = {},
): Promise<Run> {
  const bus = new InProcessBus();
  const matches: MatchRecord[] = [];
  const nodes = new Map<string, SensorNode>();
  const metrics = new Map<string, FsmMetrics>();
  for (const name of rows.keys()) {
    const m = new FsmMetrics();
    metrics.set(name, m);
    nodes.set(
      name,
      await SensorNode.start({
        config,
        node: name,
        bus,
        metrics: m,
        mode: "replay",
        sinks: [{ match: (r) => void matches.push(r) }],
        ...opts.node,
      }),
    );
  }
  const ingest = (node: string, row: Row) => nodes.get(node)!.ingest(row).then(() => {});
  if (opts.feed) await opts.feed(ingest, nodes);
  else {
    for (const { node, row } of mergeByTime([...rows].map(([node, r]) => ({ node, rows: r })))) {
      await ingest(node, row);
    }
  }
  await finishNodes([...nodes.values()], bus);
  for (const n of nodes.values()) await n.shutdown(30_000);
  return {
    matches,
    nodes,
    metrics,
    metric: async (node, name, labels = {}) =>
      sumSamples(parseMetricsText(await metrics.get(node)!.text()), name, labels),
  };
}

async function allRows(): Promise<Map<string, Row[]>> {
  return new Map(await Promise.all(NODES.map(async (n) => [n, await e2eRows(n)] as const)));
}

const stageCount = (ms: MatchRecord[], stage: string) =>
  new Set(ms.filter((m) => m.stage === stage).map((m) => m.signature_id)).size;

let truth: { relay: number; asr: number } | undefined;
async function baseline(): Promise<{ relay: number; asr: number }> {
  if (!truth) {
    const r = await run(await e2eConfig(), await allRows());
    truth = { relay: stageCount(r.matches, "relay"), asr: stageCount(r.matches, "asr") };
    ok(
      truth.relay >= 10 && truth.asr >= 10,
      `the e2e captures give 10+10 matches, got ${JSON.stringify(truth)}`,
    );
  }
  return truth;
}

/**
 * A Matcher wrapper that throws on the next clock-ahead message while `armed` (then disarms): a crash the default
 * policy restarts from.
 */
function crashOnce(
  armed: boolean,
): { armed: boolean; wrap: (f: ActorFactory<MatcherMsg>) => ActorFactory<MatcherMsg> } {
  const state = {
    armed,
    wrap: (f: ActorFactory<MatcherMsg>): ActorFactory<MatcherMsg> => (ctx) => {
      const b = f(ctx);
      return {
        ...b,
        receive(msg, c) {
          if (msg.kind === "clock-ahead" && state.armed) {
            state.armed = false;
            throw new Error("injected matcher crash");
          }
          return b.receive(msg, c);
        },
      };
    },
  };
  return state;
}

Deno.test("node: after a Matcher crash the active signatures are searched again (restored from the registry)", async () => {
  const want = await baseline();
  const rows = await allRows();
  // The Matcher throws on the first clock-ahead message: a crash the default policy restarts from.
  const crash = crashOnce(true);
  const wrapMatcher = crash.wrap;
  const r = await run(await e2eConfig(), rows, {
    node: { wrapMatcher },
    feed: async (ingest, nodes) => {
      // Every signature first (node-a's source rows), so every node's registry holds them all...
      for (const row of rows.get("node-a")!) await ingest("node-a", row);
      await nodes.get("node-a")!.finishReader();
      await nodes.get("node-a")!.finishDetectors();
      for (const name of ["node-b", "node-c"]) {
        const node = nodes.get(name)!;
        await node.syncRegistry();
        // ...then the Matchers of the target nodes crash and restart, with no signature of their own...
        crash.armed = true;
        node.noteClockOffsets([0.05]);
        while (node.system.stats().find((s) => s.name === "matcher")!.restarts < 1) await sleep(10);
        while (node.system.stats().find((s) => s.name === "matcher")!.state !== "running") await sleep(10);
        await node.syncRegistry(); // the restarted Matcher's resync has been answered
      }
      // ...and only then does the target audio come.
      for (const name of ["node-b", "node-c"] as const) {
        for (const row of rows.get(name)!) await ingest(name, row);
      }
    },
  });
  for (const name of ["node-b", "node-c"]) {
    equal(
      await r.metric(name, "fsmpx_actor_restarts_total", { actor: "matcher" }),
      1,
      `${name} matcher restarted`,
    );
  }
  equal(stageCount(r.matches, "relay"), want.relay, "every relay match found after the crash");
  equal(stageCount(r.matches, "asr"), want.asr, "every asr match found after the crash");
});

Deno.test("node: one row from the future on the relay node does not expire its signatures or end its streams", async () => {
  const want = await baseline();
  const rows = await allRows();
  const b = rows.get("node-b")!;
  // A copy of an early relay row, stamped 130 s ahead, arriving among the others (as a live stream would).
  const rogue = { ...b[5]!, time: b[5]!.time + sec(130) };
  const feed = async (ingest: (node: string, row: Row) => Promise<void>) => {
    const merged = mergeByTime([...rows].map(([node, r]) => ({ node, rows: r })));
    const at = merged.findIndex((x) => x.node === "node-b" && x.row === b[6]);
    for (let i = 0; i < merged.length; i++) {
      if (i === at) await ingest("node-b", rogue);
      await ingest(merged[i]!.node, merged[i]!.row);
    }
  };
  const r = await run(await e2eConfig(), rows, { feed });
  equal(stageCount(r.matches, "relay"), want.relay);
  equal(await r.metric("node-b", "fsmpx_rows_clock_outliers_total"), 1);
  equal(await r.metric("node-b", "fsmpx_signatures_expired_total", { reason: "ttl" }), 0);
});

Deno.test("node: a node whose clock is 5 s behind matches once the measured skew widens the search", async () => {
  const want = await baseline();
  const rows = await allRows();
  rows.set("node-b", rows.get("node-b")!.map((r) => ({ ...r, time: r.time - sec(5) })));
  const skewed = await run(await e2eConfig(), rows);
  equal(stageCount(skewed.matches, "relay"), 0, "2 s before the source: a node 5 s behind finds nothing");
  ok(stageCount(skewed.matches, "asr") >= want.asr - 1, "the other node is unaffected");

  // What the skew estimator reports (peers 5 s ahead of node-b) reaches node-b's Matcher before the audio.
  const helped = await run(await e2eConfig(), rows, {
    feed: async (ingest, nodes) => {
      nodes.get("node-b")!.noteClockOffsets([5.0, 4.9]);
      for (const { node, row } of mergeByTime([...rows].map(([node, r]) => ({ node, rows: r })))) {
        await ingest(node, row);
      }
    },
  });
  equal(stageCount(helped.matches, "relay"), want.relay);
  for (const m of helped.matches.filter((m) => m.stage === "relay")) {
    ok(m.latency_s < 0, "the skew shows as it is: negative latencies, not hidden");
  }

  // Without an estimator (no NATS), the configured window does the same.
  const configured = await run(
    await e2eConfig((d) => void (d["engine"] = { search_before_source_seconds: 6 })),
    rows,
  );
  equal(stageCount(configured.matches, "relay"), want.relay);
});

Deno.test("node: every row delivered twice gives the same matches, the copies counted", async () => {
  const want = await baseline();
  const rows = await allRows();
  const twice = new Map([...rows].map(([n, rs]) => [n, rs.flatMap((r) => [r, { ...r }])]));
  const r = await run(await e2eConfig(), twice);
  equal(stageCount(r.matches, "relay"), want.relay);
  equal(stageCount(r.matches, "asr"), want.asr);
  for (const n of NODES) {
    equal(await r.metric(n, "fsmpx_rows_skipped_total", { reason: "duplicate" }), rows.get(n)!.length, n);
  }
});

Deno.test("node: past engine.max_streams the least recently active stream is finished and counted", async () => {
  const rows = await allRows();
  const relays = new Set(
    rows.get("node-b")!.map((r) => `${r.columns["remote_addr"]}:${r.columns["remote_port"]}`),
  );
  equal(relays.size, 2, "node-b relays two calls at once");
  const r = await run(await e2eConfig((d) => void (d["engine"] = { max_streams: 1 })), rows);
  ok(await r.metric("node-b", "fsmpx_streams_evicted_total", { stream: "relay" }) >= 1);
  ok(
    await r.metric("node-a", "fsmpx_streams_evicted_total", { stream: "source" }) >= 1,
    "two calls at the source",
  );
  equal(await r.metric("node-b", "fsmpx_streams_evicted_total", { stream: "asr" }), 0);
});

/** The e2e config with a stage "loop" tapping the very rows of the source, with the source's stream key. */
const loop = (exclude: boolean) =>
  e2eConfig((d) => {
    const m = (d["measurements"] as Record<string, unknown>[])[0]!;
    const sig = m["signature_rules"] as Record<string, unknown>;
    (m["match_rules"] as unknown[]).push({
      stage: "loop",
      stream_filter: sig["stream_filter"],
      columns: sig["columns"],
      stream_key: sig["stream_key"],
      audio: sig["audio"],
      exclude_source_streams: exclude,
    });
  });

Deno.test("node: exclude_source_streams keeps a stage from matching the source's own streams", async () => {
  const rows = await allRows();
  // A stage tapping the very rows of the source, with the source's stream key: it is the source stream.
  const a = rows.get("node-a")!;
  const withLoop = new Map([["node-a", a.flatMap((r) => [r, { ...r, query: "call_audio/loop" }])]]);
  const included = await run(await loop(false), withLoop);
  ok(stageCount(included.matches, "loop") >= 5, "without the option a source stream matches itself");
  const excluded = await run(await loop(true), withLoop);
  equal(stageCount(excluded.matches, "loop"), 0);
});

Deno.test("node: after a Matcher crash, exclude_source_streams still keeps a stage from matching the source's streams", async () => {
  const a = (await allRows()).get("node-a")!;
  const config = await loop(true);
  const rows = a.flatMap((r) => [r, { ...r, query: "call_audio/loop" }]);
  const crash = crashOnce(false);
  const wrapMatcher = crash.wrap;
  const r = await run(config, new Map([["node-a", rows]]), {
    node: { wrapMatcher },
    feed: async (ingest, nodes) => {
      const node = nodes.get("node-a")!;
      // The source streams open (the Detector tells the Matcher once, at their first row)...
      const cut = Math.floor(rows.length / 10);
      for (const row of rows.slice(0, cut)) await ingest("node-a", row);
      await node.system.settled();
      // ...then the Matcher crashes and restarts while they go on.
      crash.armed = true;
      node.noteClockOffsets([0.05]);
      while (node.system.stats().find((s) => s.name === "matcher")!.restarts < 1) await sleep(10);
      while (node.system.stats().find((s) => s.name === "matcher")!.state !== "running") await sleep(10);
      for (const row of rows.slice(cut)) await ingest("node-a", row);
    },
  });
  equal(await r.metric("node-a", "fsmpx_actor_restarts_total", { actor: "matcher" }), 1);
  equal(stageCount(r.matches, "loop"), 0, "a restarted Matcher matched the source's own streams");
});

Deno.test("node: rows of queries no measurement names are counted under bounded labels and skipped", async () => {
  const a = (await e2eRows("node-a")).slice(0, 50);
  const junk = Array.from({ length: 40 }, (_, i) => ({ ...a[0]!, query: `made_up_${i}/source` }));
  const r = await run(await e2eConfig(), new Map([["node-a", [...a, ...junk]]]));
  const samples = parseMetricsText(await r.metrics.get("node-a")!.text());
  const series = samples.filter((s) => s.name === "fsmpx_rows_read_total");
  ok(series.length <= 1 + 8 + 1, `${series.length} series: configured, 8 named, (other)`);
  equal(sumSamples(samples, "fsmpx_rows_read_total"), 90);
  equal(sumSamples(samples, "fsmpx_rows_skipped_total", { reason: "unknown_query" }), 40);
  equal(sumSamples(samples, "fsmpx_rows_read_total", { query: "(other)" }), 32);
});

Deno.test("node: a replay queues few rows (a row queued behind thousands outlives V8's young generation)", async () => {
  const rows = (await allRows()).get("node-b")!;
  ok(rows.length > 200, `${rows.length} rows`);
  const node = await SensorNode.start({
    config: await e2eConfig(),
    node: "node-b",
    bus: new InProcessBus(),
    metrics: new FsmMetrics(),
    mode: "replay",
  });
  // Every row handed on at once: the reader's mailbox takes a few, the rest of the senders wait (back-pressure).
  const sent = rows.map((r) => node.ingest(r));
  const reader = node.system.stats().find((s) => s.name === "pixie_reader")!;
  ok(reader.depth <= 64, `reader mailbox depth ${reader.depth}`);
  equal(reader.waitingSenders, rows.length - reader.depth);
  for (const s of node.system.stats()) {
    if (s.name === "pixie_reader" || s.name === "matcher" || s.name.startsWith("detector/")) {
      ok(s.capacity <= 64, `${s.name} capacity ${s.capacity}`);
    }
  }
  ok((await Promise.all(sent)).every((b) => b));
  await node.shutdown(30_000);
});
