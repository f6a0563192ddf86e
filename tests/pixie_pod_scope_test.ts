/**
 * `pixie.scope: pods`: a sensor scopes its Pixie query to its node's pods, read from a Kubernetes API (a loopback
 * one, over TLS), so Pixie's planner places the query on that node's PEM only; when the pods change, the query is
 * re-scoped and re-run without losing or doubling a row. Real parts: the fake Vizier (its planner prunes agents on
 * pod equality like Pixie's removable_ops_rule.cc, its broker loses the batch in flight at a drop), the pod watch
 * over HTTPS, the composer, PixieQueryStream and PixieRowSource, and `run` as a process.
 */
import { deepStrictEqual, equal, match, ok, rejects } from "node:assert/strict";
import { join } from "node:path";
import { PixieClient } from "../pixie/client.ts";
import { NO_POD, PixieRowSource, PodScope, type ScopeTimers, scopeToPods } from "../pixie/live_source.ts";
import { composeScript } from "../pixie/pxl.ts";
import type { Row } from "../pixie/row.ts";
import { pixiePodScope } from "../cli/sensor_sources.ts";
import { queriesFromConfig } from "../cli/pixie_queries.ts";
import { loadConfig } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import { setLogLevel } from "../util/log.ts";
import { FakeVizier, makeTestCert, type StoredRow } from "./support/fake_vizier.ts";
import { FakeKubeApi, makeCaAndServerCert, type Pod, pod } from "./support/fake_kube_api.ts";
import { ROOT, sleep } from "./support/sensor_process.ts";

setLogLevel("error");

const te = new TextEncoder();
const td = new TextDecoder();
const TOKEN = "pod-scope-test-token";

/** One measurement; its default match rule (calls/downstream) reads the same table without the path filter. */
const MEASUREMENTS = `measurements:
  - name: calls
    signature_rules:
      stream_filter: |
        df = px.DataFrame(table='http_events', start_time='-30s')
        df = df[df.req_path == '/audio']
`;

/** Timers that run only when the test advances them. */
class ManualTimers implements ScopeTimers {
  ms = 0;
  readonly #timers: { at: number; fn: () => void; live: boolean }[] = [];
  nowMs = (): number => this.ms;
  setTimer = (fn: () => void, ms: number): () => void => {
    const t = { at: this.ms + ms, fn, live: true };
    this.#timers.push(t);
    return () => void (t.live = false);
  };
  /** Moves time to `ms`, firing due timers in order. */
  advanceTo(ms: number): void {
    for (;;) {
      const next = this.#timers.filter((t) => t.live && t.at <= ms).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.ms = next.at;
      next.live = false;
      next.fn();
    }
    this.ms = ms;
  }
}

Deno.test("PodScope: the first change at once, then at most one scope per interval; gone pods linger", () => {
  const timers = new ManualTimers();
  let live = ["voice/b", "voice/a"];
  const scope = new PodScope({ pods: () => live, minIntervalMs: 5_000, lingerMs: 30_000, timers });
  const published: string[][] = [];
  scope.onChange((p) => published.push([...p]));
  deepStrictEqual(scope.pods, ["voice/a", "voice/b"]);

  // A change after a quiet spell is published at once.
  live = [...live, "voice/c"];
  scope.update();
  deepStrictEqual(published, [["voice/a", "voice/b", "voice/c"]]);
  // Churn within the interval is one more scope, at the end of the interval.
  timers.advanceTo(1_000);
  live = [...live, "voice/d"];
  scope.update();
  timers.advanceTo(2_000);
  live = [...live, "voice/e"];
  scope.update();
  equal(published.length, 1);
  timers.advanceTo(5_000);
  deepStrictEqual(published.at(-1), ["voice/a", "voice/b", "voice/c", "voice/d", "voice/e"]);
  equal(published.length, 2);

  // A pod that leaves stays in the scope for the linger time (its late rows), then goes without another update.
  timers.advanceTo(6_000);
  live = live.filter((p) => p !== "voice/a");
  scope.update();
  equal(published.length, 2, "a removal alone changes nothing yet");
  timers.advanceTo(35_999);
  equal(published.length, 2);
  timers.advanceTo(36_000);
  deepStrictEqual(published.at(-1), ["voice/b", "voice/c", "voice/d", "voice/e"]);

  // A pod that comes and goes between two scopes is still read: it lingers into the next one.
  timers.advanceTo(40_000);
  live = [...live, "voice/f"];
  scope.update(); // due at 41,000 (last scope at 36,000)
  timers.advanceTo(40_500);
  live = live.filter((p) => p !== "voice/f");
  scope.update();
  timers.advanceTo(41_000);
  ok(published.at(-1)!.includes("voice/f"), JSON.stringify(published.at(-1)));
  timers.advanceTo(70_500);
  ok(!published.at(-1)!.includes("voice/f"));

  // A pod that leaves and comes back within the linger time changes nothing.
  const before = published.length;
  live = live.filter((p) => p !== "voice/b");
  scope.update();
  timers.advanceTo(80_000);
  live = [...live, "voice/b"];
  scope.update();
  timers.advanceTo(200_000);
  equal(published.length, before);

  // No pods at all: an empty scope (the source then matches nothing), never an unscoped one.
  live = [];
  scope.update();
  timers.advanceTo(300_000);
  deepStrictEqual(published.at(-1), []);
  equal(scope.changes, published.length);
  scope.close();
  live = ["voice/z"];
  scope.update();
  timers.advanceTo(400_000);
  deepStrictEqual(published.at(-1), [], "closed: nothing more");
});

Deno.test("scopeToPods: equality filters on the pods; none is a pod no Kubernetes name can be", () => {
  const q = {
    name: "calls/source",
    streamFilter: "df = px.DataFrame(table='http_events')\n",
    node: "node-a",
    columns: { time: "time_", pod: "pod", payload: "req_body" },
    streamKeyColumns: [],
  };
  const two = composeScript(scopeToPods([q], ["voice/a-0", "voice/a-1"])).script;
  ok(two.includes("df = df[(df.ctx['pod'] == 'voice/a-0') or (df.ctx['pod'] == 'voice/a-1')]"), two);
  ok(!two.includes("ctx['node']"));
  const none = composeScript(scopeToPods([q], [])).script;
  ok(none.includes(`df = df[df.ctx['pod'] == '${NO_POD}']`), none);
  // Kubernetes names are DNS labels and subdomains: lowercase alphanumerics, '-' and '.'.
  const [ns, name] = NO_POD.split("/");
  ok(!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(ns!) || !/^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/.test(name!));
});

/** A cluster: a TLS Kubernetes API, a fake Vizier with one PEM per node, and a service-account directory. */
interface Cluster {
  api: FakeKubeApi;
  fake: FakeVizier;
  dir: string;
  env: (name: string) => string | undefined;
  close(): Promise<void>;
}

async function cluster(
  nodes: Record<string, string[]>,
  vizier: Parameters<typeof FakeVizier.start>[0] = {},
): Promise<Cluster> {
  const { ca, cert, key } = await makeCaAndServerCert();
  const api = new FakeKubeApi({ token: TOKEN, tls: { cert, key } });
  let ip = 10;
  for (const [node, pods] of Object.entries(nodes)) {
    for (const p of pods) api.put("ADDED", pod(p.split("/")[1]!, `10.0.0.${ip++}`, node));
  }
  const dir = await Deno.makeTempDir({ prefix: "fsmpx-podscope-" });
  await Deno.writeTextFile(join(dir, "token"), TOKEN);
  await Deno.writeTextFile(join(dir, "ca.crt"), ca);
  const fake = await FakeVizier.start({
    ...vizier,
    pems: Object.entries(nodes).map(([node, pods]) => ({ node, pods })),
  });
  const vars: Record<string, string> = {
    KUBERNETES_SERVICE_HOST: "127.0.0.1",
    KUBERNETES_SERVICE_PORT: String(api.port),
    FSMPX_SERVICE_ACCOUNT_DIR: dir,
  };
  return {
    api,
    fake,
    dir,
    env: (n) => vars[n],
    close: async () => {
      await fake.stop();
      await api.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function podsConfig(dir: string, node: string, extra = ""): Promise<Config> {
  const path = join(dir, `${node}.yaml`);
  await Deno.writeTextFile(path, `node: ${node}\npixie:\n  scope: pods\n${extra}${MEASUREMENTS}`);
  return (await loadConfig(path, {})).config;
}

/** Appends rows for pods while the test runs; each body is unique, so each row can be counted. */
class Feeder {
  readonly sent = new Map<string, string[]>();
  #seq = 0;
  constructor(readonly fake: FakeVizier) {}
  /** One row per pod, on the PEM of `node`, at `time` (default now). */
  rows(node: string, pods: readonly string[], time?: bigint): void {
    const pem = this.fake.pems.find((p) => p.node === node)!;
    const now = time ?? BigInt(Date.now()) * 1_000_000n;
    const out: StoredRow[] = pods.map((p) => {
      const body = `${p || "(host)"}#${this.#seq++}`;
      this.sent.set(p, [...(this.sent.get(p) ?? []), body]);
      return {
        time: now,
        pod: p,
        cols: { req_path: te.encode("/audio"), req_body: te.encode(body), remote_port: 40000n },
      };
    });
    pem.append("http_events", out);
  }
  /** `<query> <body>` of every row sent for `pods`, once per query of the config. */
  of(pods: readonly string[]): string[] {
    return QUERIES.flatMap((q) => pods.flatMap((p) => (this.sent.get(p) ?? []).map((b) => `${q} ${b}`)));
  }
}

/** The queries of {@link MEASUREMENTS}: each row reaches both. */
const QUERIES = ["calls/source", "calls/downstream"];

/** Runs a PixieRowSource in the background, collecting `<query> <body>` of every row. */
function collect(source: PixieRowSource): { got: string[]; stop: () => Promise<void>; error: () => unknown } {
  const got: string[] = [];
  const ac = new AbortController();
  let error: unknown;
  const done = source.run((row: Row) => {
    got.push(`${row.query} ${td.decode(row.columns["req_body"] as Uint8Array)}`);
    return Promise.resolve();
  }, ac.signal).catch((e) => void (error = e));
  return {
    got,
    error: () => error,
    stop: async () => {
      ac.abort();
      await done;
    },
  };
}

async function until(what: string, cond: () => boolean, detail: () => string = () => ""): Promise<void> {
  // A guard against hanging, not a timing assertion: every condition normally holds within a second (the
  // whole suite in parallel on 2 cores has needed more than 30 s).
  for (let i = 0; i < 2400 && !cond(); i++) await sleep(50);
  ok(cond(), `${what}: ${detail()}`);
}

function counts(list: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const x of list) m.set(x, (m.get(x) ?? 0) + 1);
  return m;
}

function assertExactlyOnce(got: readonly string[], expected: readonly string[]): void {
  const c = counts(got);
  const doubled = [...c].filter(([, n]) => n > 1).map(([b]) => b);
  deepStrictEqual(doubled, [], "rows delivered twice");
  const want = new Set(expected);
  const missing = expected.filter((b) => !c.has(b));
  const extra = [...c.keys()].filter((b) => !want.has(b));
  deepStrictEqual({ missing, extra }, { missing: [], extra: [] });
}

Deno.test({
  name:
    "pods scope: only this node's pods' rows, on this node's PEM only; pods added and removed mid-stream " +
    "re-scope with every row exactly once, through drops that lose the batch in flight",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const nodes = {
      "node-a": ["voice/a-0", "voice/a-1"],
      "node-b": ["voice/b-0"],
      "node-c": ["voice/c-0"],
    };
    const c = await cluster(nodes, {
      broker: { batchRows: 4, tickMs: 5 },
      chaos: { seed: 11, dropEvery: [6, 30], maxDrops: 12 },
    });
    const feeder = new Feeder(c.fake);
    let running = true;
    const live: Record<string, string[]> = structuredClone(nodes);
    const feeding = (async () => {
      while (running) {
        for (const [node, pods] of Object.entries(live)) feeder.rows(node, [...pods, ""]);
        await sleep(3);
      }
    })();
    const config = await podsConfig(c.dir, "node-a");
    const scoped =
      (await pixiePodScope(config, { env: c.env, scope: { minIntervalMs: 300, lingerMs: 2_000 } }))!;
    const client = await PixieClient.connect({ mode: "direct", directAddr: c.fake.address });
    const source = new PixieRowSource({
      client,
      clusterId: "",
      queries: queriesFromConfig(config, "node-a"),
      encryption: false,
      podScope: scoped.scope,
      stream: { backoff: { initialMs: 20, maxMs: 100, minMs: 5 } },
    });
    const run = collect(source);
    const scripts = () => c.fake.executeRequests.map((r) => r.queryStr);
    try {
      deepStrictEqual(scoped.scope.pods, ["voice/a-0", "voice/a-1"]);
      await until("first rows", () => run.got.length >= 40, () => String(run.error()));
      ok(scripts()[0]!.includes("(df.ctx['pod'] == 'voice/a-0') or (df.ctx['pod'] == 'voice/a-1')"));

      // A pod is scheduled on node-a (and, elsewhere, one on node-b, which node-a's watch never sees).
      c.api.put("ADDED", pod("a-2", "10.0.1.2", "node-a"));
      c.fake.pems[0]!.pods.add("voice/a-2");
      live["node-a"]!.push("voice/a-2");
      c.api.put("ADDED", pod("b-1", "10.0.1.3", "node-b"));
      c.fake.pems[1]!.pods.add("voice/b-1");
      live["node-b"]!.push("voice/b-1");
      await until("a-2 in the scope", () => scoped.scope.pods.includes("voice/a-2"));
      await until("a-2's rows", () => run.got.some((b) => b.includes(" voice/a-2#")));
      equal(scoped.scope.changes, 1);

      // a-0 is deleted; rows it sent just before reach Pixie's table late, and are still read.
      const a0 = c.api.pods.get("uid-a-0") as Pod;
      live["node-a"] = live["node-a"]!.filter((p) => p !== "voice/a-0");
      c.api.put("DELETED", a0);
      await sleep(100);
      feeder.rows("node-a", ["voice/a-0", "voice/a-0"], BigInt(Date.now() - 300) * 1_000_000n);
      // After the linger time the scope drops it.
      await until("a-0 out of the scope", () => !scoped.scope.pods.includes("voice/a-0"));
      await until("a re-run without a-0", () => !scripts().at(-1)!.includes("voice/a-0"));
      equal(scoped.scope.changes, 2);
      await sleep(300);
    } finally {
      running = false;
      await feeding;
    }
    try {
      const expected = feeder.of(["voice/a-0", "voice/a-1", "voice/a-2"]);
      await until(
        "every row of node-a's pods",
        () => new Set(run.got).size >= new Set(expected).size,
        () => `${new Set(run.got).size} of ${expected.length}; error ${String(run.error())}`,
      );
      await sleep(200); // anything doubled or foreign would arrive now
      assertExactlyOnce(run.got, expected);
      ok(
        !run.got.some((b) => / (voice\/b-|voice\/c-|\(host\))/.test(b)),
      );
      ok(c.fake.stats.drops > 0 && c.fake.stats.lostRows > 0, JSON.stringify(c.fake.stats));

      // Pixie's planner placed every run of the script (first, re-runs after drops, re-scopes) on node-a's PEM,
      // each of its two output tables.
      const runs = c.fake.executeRequests.length;
      ok(runs >= 3, `runs: ${runs}`);
      deepStrictEqual(c.fake.pems.map((p) => p.work.queries), [2 * runs, 0, 0]);
      deepStrictEqual(c.fake.pems.slice(1).map((p) => p.work.rowsScanned), [0, 0]);
      equal(scoped.scope.changes, 2, "one scope per change");
    } finally {
      await run.stop();
      client.close();
      await scoped.stop();
      await c.close();
    }
  },
});

Deno.test({
  name:
    "pods scope: a node without pods runs a query that matches nothing and runs nowhere, until a pod comes",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const c = await cluster({ "node-a": ["voice/a-0"], "node-c": [] });
    const feeder = new Feeder(c.fake);
    const config = await podsConfig(c.dir, "node-c");
    const scoped = (await pixiePodScope(config, { env: c.env, scope: { minIntervalMs: 200 } }))!;
    const client = await PixieClient.connect({ mode: "direct", directAddr: c.fake.address });
    const source = new PixieRowSource({
      client,
      clusterId: "",
      queries: queriesFromConfig(config, "node-c"),
      encryption: false,
      podScope: scoped.scope,
      // The empty scope runs on no PEM, so nothing (not even a keep-alive) comes back.
      stream: { idleTimeoutMs: 0 },
    });
    const run = collect(source);
    try {
      deepStrictEqual(scoped.scope.pods, []);
      await until("the script ran", () => c.fake.executeRequests.length === 1);
      const first = c.fake.executeRequests[0]!.queryStr;
      ok(first.includes(`df.ctx['pod'] == '${NO_POD}'`), first);
      ok(!first.includes("ctx['node']"), "not the node scope");
      // Rows of node-c's host processes (no pod), and of node-a's pod: none is this scope's.
      feeder.rows("node-c", ["", ""]);
      feeder.rows("node-a", ["voice/a-0"]);
      await sleep(300);
      deepStrictEqual(run.got, []);
      deepStrictEqual(c.fake.pems.map((p) => p.work.queries), [0, 0], "placed on no PEM");

      c.api.put("ADDED", pod("c-1", "10.0.2.1", "node-c"));
      c.fake.pems[1]!.pods.add("voice/c-1");
      await until("c-1 in the scope", () => scoped.scope.pods.length === 1);
      await until("the re-scoped run", () => c.fake.executeRequests.length === 2);
      feeder.rows("node-c", ["voice/c-1", "", "voice/c-1"]);
      await until("c-1's rows", () => run.got.length >= 4, () => JSON.stringify(run.got));
      await sleep(200);
      assertExactlyOnce(run.got, feeder.of(["voice/c-1"]));
      deepStrictEqual(c.fake.pems.map((p) => p.work.queries), [0, 2], "both tables, on node-c's PEM only");
    } finally {
      await run.stop();
      client.close();
      await scoped.stop();
      await c.close();
    }
  },
});

Deno.test("pixiePodScope: node scope needs nothing; pods needs a Kubernetes API that lists the pods", async () => {
  const c = await cluster({ "node-a": ["voice/a-0"] });
  try {
    const node = await loadConfig(
      await Deno.writeTextFile(join(c.dir, "n.yaml"), `node: node-a\n${MEASUREMENTS}`).then(() =>
        join(c.dir, "n.yaml")
      ),
      {},
    );
    equal(node.config.pixie.scope, "node");
    equal(await pixiePodScope(node.config, { env: c.env }), undefined);

    const config = await podsConfig(c.dir, "node-a");
    // Not in a pod: a config error at pixie.scope that says what the sensor needs.
    await rejects(pixiePodScope(config, { env: () => undefined }), (e: Error) => {
      match(e.message, /pixie\.scope/);
      match(e.message, /ServiceAccount token and get\/list\/watch on pods \(k8s\/pixie-pod-scope\/\)/);
      match(e.message, /KUBERNETES_SERVICE_HOST unset or the token unreadable/);
      equal((e as Error & { exitCode?: number }).exitCode, 2);
      return true;
    });
    // A token the API refuses: the start fails with the API's answer.
    await Deno.writeTextFile(join(c.dir, "token"), "wrong");
    await rejects(pixiePodScope(config, { env: c.env, waitMs: 1_500 }), (e: Error) => {
      match(e.message, /no pod list of node node-a within 1500 ms/);
      match(e.message, /HTTP 401 \(the ServiceAccount token was refused\)/);
      return true;
    });
    await Deno.writeTextFile(join(c.dir, "token"), TOKEN);
    // A standalone PEM has no pods to scope on: a config error when the config loads.
    await rejects(podsConfig(c.dir, "node-a", "  direct_addr: 127.0.0.1:12345\n"), /pixie\.direct_addr/);
    // With its API: the node's pods.
    const ok1 = (await pixiePodScope(config, { env: c.env }))!;
    deepStrictEqual(ok1.scope.pods, ["voice/a-0"]);
    await ok1.stop();
  } finally {
    await c.close();
  }
});

const CLUSTER_ID = "55555555-5555-4555-8555-555555555555";

Deno.test({
  name:
    "run with pixie.scope pods: the sensor scopes its query to its pods, re-scopes on a new pod, and without " +
    "a Kubernetes API exits 2 saying what it needs",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const tls = await makeTestCert();
    const c = await cluster({ "node-a": ["voice/a-0"], "node-b": ["voice/b-0"] }, {
      tls,
      apiKey: "px-key",
      clusters: [{
        id: CLUSTER_ID,
        status: 1, // CS_HEALTHY
        clusterName: "prod",
        prettyClusterName: "Prod",
        vizierVersion: "0.14",
      }],
    });
    await Deno.writeFile(join(c.dir, "px.crt"), tls.cert);
    const path = join(c.dir, "run.yaml");
    const port = c.fake.address.split(":")[1];
    await Deno.writeTextFile(
      path,
      `node: node-a\nmetrics: { listen: "127.0.0.1:0" }\npixie:\n  cloud_addr: localhost:${port}\n` +
        `  api_key: px-key\n  cluster: prod\n  ca_file: ${
          join(c.dir, "px.crt")
        }\n  scope: pods\n${MEASUREMENTS}`,
    );
    const spawn = (env: Record<string, string>) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", "main.ts", "run", "--config", path],
        cwd: ROOT,
        env: { KUBERNETES_SERVICE_HOST: "", ...env },
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
    try {
      // Not in a pod: exit 2 before dialling Pixie.
      const bare = await spawn({}).output();
      const err = td.decode(bare.stderr);
      equal(bare.code, 2, err);
      match(err, /pixie\.scope/);
      match(err, /ServiceAccount token and get\/list\/watch on pods \(k8s\/pixie-pod-scope\/\)/);
      equal(c.fake.executeRequests.length, 0);

      const child = spawn({
        KUBERNETES_SERVICE_HOST: "127.0.0.1",
        KUBERNETES_SERVICE_PORT: String(c.api.port),
        FSMPX_SERVICE_ACCOUNT_DIR: c.dir,
      });
      let log = "";
      const reading = (async () => {
        for await (const t of child.stderr.pipeThrough(new TextDecoderStream())) log += t;
      })();
      try {
        await until("the scoped script", () => c.fake.executeRequests.length >= 1, () => log);
        const first = c.fake.executeRequests[0]!;
        equal(first.clusterId, CLUSTER_ID);
        ok(first.queryStr.includes("df = df[df.ctx['pod'] == 'voice/a-0']"), first.queryStr);
        deepStrictEqual(c.fake.pems.map((p) => p.work.queries), [2, 0], "two tables, on node-a's PEM");

        // The reader reports rows read when its event clock passes a 1 s tick: the last row of each step is
        // more than 1 s of capture time after the previous report.
        const feeder = new Feeder(c.fake);
        const ns = (ms: number) => BigInt(ms) * 1_000_000n;
        const t0 = Date.now();
        feeder.rows("node-a", ["voice/a-0"], ns(t0 - 1_500));
        feeder.rows("node-a", ["voice/a-0", ""], ns(t0 - 1_400));
        feeder.rows("node-b", ["voice/b-0"], ns(t0 - 1_300));
        feeder.rows("node-a", ["voice/a-0"], ns(t0));
        const addr = () => /"metrics":"http:\/\/([^/"]+)\/metrics"/.exec(log)?.[1];
        await until("the metrics address", () => addr() !== undefined, () => log);
        const rowsRead = async () => {
          const text = await (await fetch(`http://${addr()}/metrics`)).text();
          const m = /^fsmpx_rows_read_total\{[^}]*query="calls\/source"[^}]*\} (\d+)/m.exec(text);
          return Number(m?.[1] ?? NaN);
        };
        let n = NaN;
        for (let i = 0; i < 200 && n !== 3; i++, await sleep(50)) n = await rowsRead();
        equal(n, 3, log);

        c.api.put("ADDED", pod("a-1", "10.0.3.1", "node-a"));
        c.fake.pems[0]!.pods.add("voice/a-1");
        await until("the re-scoped script", () => c.fake.executeRequests.length >= 2, () => log);
        const second = c.fake.executeRequests.at(-1)!.queryStr;
        ok(second.includes("(df.ctx['pod'] == 'voice/a-0') or (df.ctx['pod'] == 'voice/a-1')"), second);
        await sleep(Math.max(0, t0 + 1_100 - Date.now()));
        feeder.rows("node-a", ["voice/a-1"]);
        for (let i = 0; i < 200 && n !== 4; i++, await sleep(50)) n = await rowsRead();
        equal(n, 4, "the new pod's row, and the old ones not again");
        deepStrictEqual(c.fake.pems.map((p) => p.work.queries), [2 * c.fake.executeRequests.length, 0]);
        match(log, /this node's pods changed; re-scoping the pixie query/);
      } finally {
        try {
          child.kill("SIGTERM");
        } catch { /* already gone: its log says why */ }
        await child.status;
        await reading;
      }
    } finally {
      await c.close();
    }
  },
});
