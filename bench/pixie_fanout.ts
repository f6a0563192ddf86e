/**
 * What N sensors cost Pixie's PEMs. Pixie prunes agents only on pod/service equality filters
 * (src/carnot/planner/distributed/coordinator/removable_ops_rule.cc; the agents' metadata filters hold pods and
 * services, src/shared/metadata/metadata_filter.h), so each sensor's node-scoped script runs on every PEM of the
 * cluster: with N sensors every PEM runs N queries, reads its table N times and sends N keep-alive streams. Scoping
 * each sensor's script to this node's pods (`df.ctx['pod'] == ...`, joined with `or`) lets the planner place it on
 * that node's PEM only.
 *
 * Runs on the fake Vizier (tests/support/fake_vizier.ts), whose model counts the work per PEM, with real
 * PixieQueryStreams over loopback gRPC; the same rows reach each sensor either way.
 *
 * {@link pixieRescope} measures what the pod scope costs when pods come and go (`pixie.scope: pods`): every new
 * scope re-runs the node's query from the newest `time_` seen minus the overlap (5 s), so it re-reads up to 5 s
 * of the node's rows, which the stream drops by fingerprint.
 * @module
 */
import { PixieClient } from "../pixie/client.ts";
import type { ComposedQueryInput, QueryScope } from "../pixie/pxl.ts";
import { PixieQueryStream } from "../pixie/stream.ts";
import { PixieRowSource, PodScope } from "../pixie/live_source.ts";
import { setLogLevel } from "../util/log.ts";
import { FakeVizier, type PemWork, type StoredRow } from "../tests/support/fake_vizier.ts";

/** Options of {@link pixieFanout}. */
export interface FanoutOptions {
  /** Nodes, each with one PEM and one sensor. */
  nodes: number;
  /** Pods per node. */
  podsPerNode: number;
  /** Rows per PEM (HTTP requests with audio bodies). */
  rowsPerPem: number;
  /** Simulated seconds of keep-alives after the rows. */
  seconds: number;
}

/** Work per PEM, averaged over PEMs, for one way of scoping. */
export interface FanoutFigures {
  scope: "node" | "pods";
  /** Queries placed on each PEM. */
  queriesPerPem: number;
  rowsScannedPerPem: number;
  rowsOutPerPem: number;
  batchesPerPem: number;
  /** 0-row keep-alive batches per PEM over the simulated time. */
  keepAlivesPerPem: number;
  /** Keep-alives the broker forwards per second, cluster-wide. */
  keepAlivesPerSecond: number;
  /** Rows each sensor received (all equal; the same in both scopes). */
  rowsPerSensor: number;
}

const te = new TextEncoder();

async function runScope(scope: "node" | "pods", o: FanoutOptions): Promise<FanoutFigures> {
  const nodes = Array.from({ length: o.nodes }, (_, n) => ({
    node: `node-${n}`,
    pods: Array.from({ length: o.podsPerNode }, (_, p) => `voice/media-${n}-${p}`),
  }));
  const fake = await FakeVizier.start({ pems: nodes, broker: { batchRows: 64 } });
  const client = await PixieClient.connect({ mode: "direct", directAddr: fake.address });
  const base = BigInt(Date.now()) * 1_000_000n;
  for (const [n, pem] of fake.pems.entries()) {
    const rows: StoredRow[] = [];
    for (let i = 0; i < o.rowsPerPem; i++) {
      rows.push({
        time: base + BigInt(i) * 1_000_000n,
        pod: nodes[n]!.pods[i % o.podsPerNode]!,
        cols: {
          req_path: te.encode("/audio"),
          req_body: te.encode(`{"chunk":${i},"node":${n}}`),
          local_port: 8080n,
        },
      });
    }
    pem.append("http_events", rows);
  }
  const streams: PixieQueryStream[] = [];
  const received: number[] = [];
  try {
    const readers = nodes.map(async (n, i) => {
      const s: QueryScope = scope === "node" ? { kind: "node" } : { kind: "pods", pods: n.pods };
      const q: ComposedQueryInput = {
        name: "voice/source",
        streamFilter:
          "df = px.DataFrame(table='http_events', start_time='-1m')\ndf = df[df.req_path == '/audio']\n",
        node: n.node,
        scope: s,
        columns: { time: "time_", pod: "pod", payload: "req_body" },
        streamKeyColumns: ["remote_port"],
      };
      const stream = new PixieQueryStream({ client, clusterId: "", queries: [q], idleTimeoutMs: 0 });
      streams.push(stream);
      received[i] = 0;
      for await (const batch of stream) {
        received[i]! += batch.length;
        if (received[i]! >= o.rowsPerPem) break;
      }
    });
    await Promise.all(readers);
    await fake.advance(o.seconds * 1_000);
    await new Promise((r) => setTimeout(r, 50));
  } finally {
    for (const s of streams) s.close();
    client.close();
    await fake.stop();
  }
  const avg = (f: (w: PemWork) => number) => fake.pems.reduce((a, p) => a + f(p.work), 0) / fake.pems.length;
  const keepAlives = avg((w) => w.keepAlives);
  return {
    scope,
    queriesPerPem: avg((w) => w.queries),
    rowsScannedPerPem: avg((w) => w.rowsScanned),
    rowsOutPerPem: avg((w) => w.rowsOut),
    batchesPerPem: avg((w) => w.batches),
    keepAlivesPerPem: keepAlives,
    keepAlivesPerSecond: (keepAlives * fake.pems.length) / o.seconds,
    rowsPerSensor: Math.min(...received),
  };
}

/** Measures node-scoped against pod-scoped scripts for `nodes` sensors. */
export async function pixieFanout(opts: Partial<FanoutOptions> = {}): Promise<FanoutFigures[]> {
  const o: FanoutOptions = { nodes: 10, podsPerNode: 3, rowsPerPem: 3_000, seconds: 60, ...opts };
  setLogLevel("error");
  return [await runScope("node", o), await runScope("pods", o)];
}

/** Options of {@link pixieRescope}. */
export interface RescopeOptions {
  /** Rows per second the node's PEM receives, spread over its pods. */
  rowsPerSecond: number;
  /** Seconds of traffic. */
  seconds: number;
  /** A pod is added this often (ms). */
  churnEveryMs: number;
  /** The scope's rate limit (ms; the sensor's default is 5,000). */
  minIntervalMs: number;
}

/** What re-scoping cost one sensor. */
export interface RescopeFigures {
  /** Scopes published after the first. */
  rescopes: number;
  /** ExecuteScript calls (the first run and one per re-scope). */
  runs: number;
  rowsSent: number;
  /** Distinct rows delivered (must equal rowsSent). */
  rowsDelivered: number;
  /** Rows delivered more than once (must be 0). */
  rowsDoubled: number;
  /** Rows re-read by re-runs and dropped as already delivered. */
  duplicatesDropped: number;
  /** Rows the node's PEM scanned, over rows sent (each run scans the table from its start). */
  scanFactor: number;
}

/** One node, pods scope, a pod added every `churnEveryMs`: the cost of re-scoping, and that no row is lost. */
export async function pixieRescope(opts: Partial<RescopeOptions> = {}): Promise<RescopeFigures> {
  const o: RescopeOptions = {
    rowsPerSecond: 500,
    seconds: 8,
    churnEveryMs: 500,
    minIntervalMs: 1_000,
    ...opts,
  };
  setLogLevel("error");
  const pods = ["voice/media-0"];
  const fake = await FakeVizier.start({ pems: [{ node: "node-0", pods }], broker: { batchRows: 64 } });
  const client = await PixieClient.connect({ mode: "direct", directAddr: fake.address });
  const scope = new PodScope({ pods: () => pods, minIntervalMs: o.minIntervalMs });
  let duplicates = 0;
  const source = new PixieRowSource({
    client,
    clusterId: "",
    queries: [{
      name: "voice/source",
      streamFilter:
        "df = px.DataFrame(table='http_events', start_time='-1m')\ndf = df[df.req_path == '/audio']\n",
      node: "node-0",
      columns: { time: "time_", pod: "pod", payload: "req_body" },
      streamKeyColumns: ["remote_port"],
    }],
    encryption: false,
    podScope: scope,
    metrics: { duplicates: (_q, n) => void (duplicates += n) },
  });
  const got = new Map<string, number>();
  const ac = new AbortController();
  const running = source.run((row) => {
    const b = new TextDecoder().decode(row.columns["req_body"] as Uint8Array);
    got.set(b, (got.get(b) ?? 0) + 1);
    return Promise.resolve();
  }, ac.signal);
  let sent = 0;
  const tickMs = 20;
  const perTick = Math.max(1, Math.round(o.rowsPerSecond * tickMs / 1_000));
  const start = Date.now();
  let nextChurn = start + o.churnEveryMs;
  try {
    while (Date.now() - start < o.seconds * 1_000) {
      if (Date.now() >= nextChurn) {
        const p = `voice/media-${pods.length}`;
        pods.push(p);
        fake.pems[0]!.pods.add(p);
        scope.update();
        nextChurn += o.churnEveryMs;
      }
      const now = BigInt(Date.now()) * 1_000_000n;
      const rows: StoredRow[] = [];
      for (let i = 0; i < perTick; i++, sent++) {
        rows.push({
          time: now + BigInt(i),
          pod: pods[sent % pods.length]!,
          cols: { req_path: te.encode("/audio"), req_body: te.encode(`r${sent}`), remote_port: 40000n },
        });
      }
      fake.pems[0]!.append("http_events", rows);
      await new Promise((r) => setTimeout(r, tickMs));
    }
    for (let i = 0; i < 200 && got.size < sent; i++) await new Promise((r) => setTimeout(r, 25));
  } finally {
    ac.abort();
    await running;
    scope.close();
    client.close();
    await fake.stop();
  }
  return {
    rescopes: scope.changes,
    runs: fake.executeRequests.length,
    rowsSent: sent,
    rowsDelivered: got.size,
    rowsDoubled: [...got.values()].filter((n) => n > 1).length,
    duplicatesDropped: duplicates,
    scanFactor: fake.pems[0]!.work.rowsScanned / sent,
  };
}

if (import.meta.main) {
  const o = { nodes: 10, podsPerNode: 3, rowsPerPem: 3_000, seconds: 60 };
  const figures = await pixieFanout(o);
  console.log(
    `${o.nodes} nodes, one PEM and one sensor each, ${o.podsPerNode} pods and ${o.rowsPerPem} http_events rows ` +
      `per PEM, ${o.seconds} s of keep-alives`,
  );
  console.log(
    "scope | queries/PEM | rows scanned/PEM | rows out/PEM | row batches/PEM | keep-alives/PEM | keep-alives/s (cluster) | rows/sensor",
  );
  for (const f of figures) {
    console.log(
      [
        f.scope,
        f.queriesPerPem,
        f.rowsScannedPerPem,
        f.rowsOutPerPem,
        f.batchesPerPem,
        f.keepAlivesPerPem,
        f.keepAlivesPerSecond.toFixed(1),
        f.rowsPerSensor,
      ].join(" | "),
    );
  }
  const r = { rowsPerSecond: 500, seconds: 8, churnEveryMs: 500, minIntervalMs: 1_000 };
  const c = await pixieRescope(r);
  console.log(
    `\nre-scoping (pods scope, one node): a pod added every ${r.churnEveryMs} ms for ${r.seconds} s at ` +
      `${r.rowsPerSecond} rows/s, at most one scope per ${r.minIntervalMs} ms`,
  );
  console.log(
    "re-scopes | runs | rows sent | delivered | doubled | re-read and dropped | rows scanned / sent",
  );
  console.log(
    [
      c.rescopes,
      c.runs,
      c.rowsSent,
      c.rowsDelivered,
      c.rowsDoubled,
      c.duplicatesDropped,
      c.scanFactor.toFixed(1),
    ]
      .join(" | "),
  );
}
