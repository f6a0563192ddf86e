/**
 * `deno run --allow-all bench/bus_fanout.ts [--messages N] [--rate R] [--subscribers K] [--burst N] [--json FILE]`:
 * the JetStream bus on loopback against a real `nats-server -js`, each of the K subscribers a node in its own
 * Deno process (bench/bus_fanout_subscriber.ts) with its own connection, as in production.
 *
 * 1. Fan-out latency: N signatures published at R msg/s by one bus, each delivered to the K subscriber
 *    processes; latency = delivery time in the subscriber − publishSignature call in the publisher (outbox,
 *    publish, store, ordered consumer, decode), p50/p90/p99/max over the N×K deliveries. Both times are
 *    `performance.timeOrigin + performance.now()`: the host's wall clock at sub-ms resolution, comparable
 *    across processes on one machine. The publisher keeps its send time per signature id; each subscriber
 *    reports its receive time per id on stdout when it has all N.
 * 2. Publish throughput: a burst of N signatures enqueued at once, time until every ack (outbox drained), and
 *    until the last of the K subscriber processes has them all (its reported receive time, same clock).
 * 3. Volume model for a cluster: every node reads every signature, so a node's inbound signature traffic is the
 *    cluster-wide signature rate, and the server's egress is that times the node count (printed as a table
 *    with the wire size measured here).
 *
 * Every process (publisher, K subscribers, the server on loopback) shares this machine's cores, so the figures
 * are an upper bound of what the bus adds, not of the server's capacity.
 * @module
 */
import { JetStreamBus } from "../bus/jetstream.ts";
import { encodeSignature } from "../audio/fingerprint/signature.ts";
import { matchRecord } from "../report/records.ts";
import { setLogLevel } from "../util/log.ts";
import { NatsServer } from "../tests/support/nats_server.ts";
import { testBusOptions, testMatch, testSignature } from "../tests/support/bus_fixtures.ts";
import { clockMs, type ReadyLine, type ReportLine } from "./bus_fanout_subscriber.ts";

interface Args {
  messages: number;
  rate: number;
  subscribers: number;
  burst: number;
  json?: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { messages: 2000, rate: 1000, subscribers: 3, burst: 20_000 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i], v = argv[i + 1];
    const num = () => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) throw new Error(`${k} needs a number >= 0`);
      i++;
      return n;
    };
    if (k === "--messages") a.messages = num();
    else if (k === "--rate") a.rate = num();
    else if (k === "--subscribers") a.subscribers = num();
    else if (k === "--burst") a.burst = num();
    else if (k === "--json") (a.json = v, i++);
    else throw new Error(`unknown option ${k}`);
  }
  return a;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q, lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const SUBSCRIBER_ENTRY = new URL("./bus_fanout_subscriber.ts", import.meta.url).pathname;
const DENO_CONFIG = new URL("../deno.json", import.meta.url).pathname;
/** Deno start-up, module load and connect of K processes on a busy 2-core machine. */
const READY_TIMEOUT_MS = 60_000;
/** Kept from the stderr of a subscriber, for the error when it dies. */
const STDERR_KEEP = 8000;

/** Splits a byte stream into lines. */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buf = "";
  for await (
    const chunk of stream.pipeThrough(new TextDecoderStream() as TransformStream<Uint8Array, string>)
  ) {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, nl);
      buf = buf.slice(nl + 1);
    }
  }
  if (buf.length > 0) yield buf;
}

/** Rejects with `what` after `ms` unless `p` settles first. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, rej) =>
        timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms)
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** One subscriber node in its own Deno process (bench/bus_fanout_subscriber.ts). */
class SubscriberProcess {
  readonly node: string;
  /** Resolves when its subscription is live; rejects if it exits first. */
  readonly ready: Promise<void>;
  /** Its receive times, once it has exited cleanly; rejects (with its stderr) on any other end. */
  readonly report: Promise<ReportLine["report"]>;
  readonly #child: Deno.ChildProcess;
  readonly #stderrRead: Promise<void>;
  #stderr = "";

  constructor(url: string, node: string, expect: number, timeoutMs: number) {
    this.node = node;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        "--config",
        DENO_CONFIG,
        SUBSCRIBER_ENTRY,
        "--url",
        url,
        "--node",
        node,
        "--expect",
        String(expect),
        "--timeout-ms",
        String(timeoutMs),
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    const stderrRead = (async () => {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        this.#stderr = (this.#stderr + chunk).slice(-STDERR_KEEP);
      }
    })().catch(() => {});
    this.#stderrRead = stderrRead;
    let onReady!: () => void;
    const gotReady = new Promise<void>((res) => onReady = res);
    let report: ReportLine["report"] | null = null;
    const read = (async () => {
      for await (const l of lines(child.stdout)) {
        const msg = JSON.parse(l) as Partial<ReadyLine & ReportLine>;
        if (msg.ready) onReady();
        else if (msg.report) report = msg.report;
      }
    })();
    // The exit decides: a report counts only with exit 0 and readable output.
    const exited = (async () => {
      const status = await child.status;
      const [out] = await Promise.allSettled([read, stderrRead]);
      if (status.code !== 0) {
        const how = status.signal ? `was killed by ${status.signal}` : `exited with code ${status.code}`;
        throw await this.#failure(how);
      }
      if (out.status === "rejected") {
        throw await this.#failure(`wrote bad output (${(out.reason as Error).message})`);
      }
    })();
    this.ready = Promise.race([
      gotReady,
      exited.then(async () => {
        throw await this.#failure("exited before it was ready");
      }),
    ]);
    this.report = exited.then(async () => {
      if (report === null) throw await this.#failure("exited without a report");
      return report;
    });
    // Either may go unawaited when another subscriber fails first; the caller sees that one's error.
    this.ready.catch(() => {});
    this.report.catch(() => {});
  }

  async #failure(what: string): Promise<Error> {
    await this.#stderrRead;
    return new Error(
      `subscriber process ${this.node} (pid ${this.#child.pid}) ${what}; its stderr:\n${this.#stderr.trim()}`,
    );
  }

  /** Ends the process if it still runs (after a failure elsewhere) and waits for it; SIGKILL if it hangs. */
  async stop(): Promise<void> {
    const signal = (s: Deno.Signal) => {
      try {
        this.#child.kill(s);
      } catch {
        // already exited
      }
    };
    signal("SIGTERM");
    const timer = setTimeout(() => signal("SIGKILL"), 5000);
    await this.#child.status;
    clearTimeout(timer);
  }
}

/** Runs `body` with `k` subscriber processes whose subscriptions are live; ends them all afterwards. */
async function withSubscribers<T>(
  url: string,
  k: number,
  expect: number,
  timeoutMs: number,
  body: (subs: SubscriberProcess[]) => Promise<T>,
): Promise<T> {
  const subs: SubscriberProcess[] = [];
  try {
    for (let i = 0; i < k; i++) subs.push(new SubscriberProcess(url, `sub-${i}`, expect, timeoutMs));
    await within(Promise.all(subs.map((s) => s.ready)), READY_TIMEOUT_MS, `${k} subscriber processes ready`);
    return await body(subs);
  } finally {
    await Promise.all(subs.map((s) => s.stop()));
  }
}

/** Every subscriber's report, after each has exited cleanly. */
function reports(subs: SubscriberProcess[], timeoutMs: number) {
  return within(Promise.all(subs.map((s) => s.report)), timeoutMs, "subscriber process reports");
}

function fanout(url: string, args: Args, base: number) {
  return withSubscribers(url, args.subscribers, args.messages, 30_000, async (subs) => {
    const pub = await JetStreamBus.connect(testBusOptions(url, "pub"));
    const sent = new Map<string, number>();
    try {
      // Paced in 10 ms ticks: R/100 messages per tick.
      const perTick = Math.max(1, Math.round(args.rate / 100));
      const t0 = performance.now();
      for (let i = 0; i < args.messages; i += perTick) {
        for (let j = i; j < Math.min(args.messages, i + perTick); j++) {
          const sig = testSignature(base + j);
          sent.set(sig.id, clockMs());
          await pub.publishSignature(sig);
        }
        const due = t0 + ((i + perTick) / args.rate) * 1000;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
      }
      await pub.flush(30_000);
    } finally {
      await pub.close();
    }
    const lat: number[] = [];
    for (const r of await reports(subs, 35_000)) {
      r.ids.forEach((id, i) => {
        const t = sent.get(id);
        if (t !== undefined) lat.push(r.t[i]! - t);
      });
    }
    lat.sort((a, b) => a - b);
    return {
      deliveries: lat.length,
      p50_ms: quantile(lat, 0.5),
      p90_ms: quantile(lat, 0.9),
      p99_ms: quantile(lat, 0.99),
      max_ms: lat.at(-1) ?? NaN,
    };
  });
}

function throughput(url: string, args: Args, base: number) {
  return withSubscribers(url, args.subscribers, args.burst, 120_000, async (subs) => {
    const pub = await JetStreamBus.connect(testBusOptions(url, "pub", { outboxSize: args.burst + 1 }));
    const t0 = clockMs();
    let enqueued: number, acked: number;
    try {
      for (let i = 0; i < args.burst; i++) await pub.publishSignature(testSignature(base + i));
      enqueued = clockMs() - t0;
      await pub.flush(120_000);
      acked = clockMs() - t0;
    } finally {
      await pub.close();
    }
    // Until the last of the K processes had the last signature, on the same clock as t0.
    let last = t0;
    for (const r of await reports(subs, 125_000)) for (const t of r.t) last = Math.max(last, t);
    return {
      messages: args.burst,
      enqueue_per_s: Math.round(args.burst / (enqueued / 1000)),
      acked_per_s: Math.round(args.burst / (acked / 1000)),
      delivered_per_s: Math.round((args.burst * args.subscribers) / ((last - t0) / 1000)),
    };
  });
}

/** Per-node and server volumes when every node reads every signature. */
function volumeModel(sigWireBytes: number) {
  // Speech-active call legs emit about one signature every 2 s (onsets after >= 300 ms of silence, re-anchors
  // every 3 s of continuous speech: config defaults).
  const sigPerCallPerS = 0.5;
  const rows: {
    nodes: number;
    calls: number;
    per_node_msgs_s: number;
    per_node_kb_s: number;
    server_egress_msgs_s: number;
    server_egress_mb_s: number;
  }[] = [];
  for (const nodes of [10, 100, 1000]) {
    for (const calls of [100, 1_000, 10_000]) {
      const rate = calls * sigPerCallPerS;
      rows.push({
        nodes,
        calls,
        per_node_msgs_s: rate,
        per_node_kb_s: Math.round((rate * sigWireBytes) / 1000),
        server_egress_msgs_s: rate * nodes,
        server_egress_mb_s: Math.round((rate * nodes * sigWireBytes) / 1e6 * 10) / 10,
      });
    }
  }
  return { sig_per_call_per_s: sigPerCallPerS, rows };
}

async function main(): Promise<void> {
  const args = parseArgs(Deno.args);
  setLogLevel("warn");
  const sigBytes = encodeSignature(testSignature(1)).length;
  const matchBytes = new TextEncoder().encode(JSON.stringify(matchRecord(testMatch(1)))).length;
  // Subject, Nats-Msg-Id header, JetStream ack reply subject on delivery: measured framing is about 150 B.
  const sigWire = sigBytes + 150;
  const srv = await NatsServer.start();
  try {
    const f = await fanout(srv.url, args, 1);
    const t = await throughput(srv.url, args, 1_000_000);
    const model = volumeModel(sigWire);
    const out = {
      server: "nats-server 2.9.10 loopback",
      signature_bytes: sigBytes,
      match_record_bytes: matchBytes,
      fanout: { rate: args.rate, subscribers: args.subscribers, subscriber_processes: true, ...f },
      throughput: t,
      model,
    };
    const r2 = (x: number) => Math.round(x * 100) / 100;
    console.log(`signature: ${sigBytes} B encoded (128 frames, 1 id), match record: ${matchBytes} B JSON`);
    console.log(
      `fan-out: ${args.messages} msgs at ${args.rate}/s to ${args.subscribers} subscriber processes: ` +
        `p50 ${r2(f.p50_ms)} ms, p90 ${r2(f.p90_ms)} ms, p99 ${r2(f.p99_ms)} ms, max ${
          r2(f.max_ms)
        } ms (${f.deliveries} deliveries)`,
    );
    console.log(
      `publish burst of ${t.messages}: enqueue ${t.enqueue_per_s}/s, acked ${t.acked_per_s}/s, ` +
        `delivered to ${args.subscribers} subscriber processes ${t.delivered_per_s} deliveries/s`,
    );
    console.log(
      `\nvolume model (every node reads every signature; ${model.sig_per_call_per_s} signatures/s per active call, ${sigWire} B on the wire):`,
    );
    console.log("nodes  calls   per-node in (msg/s, kB/s)   server egress (msg/s, MB/s)");
    for (const r of model.rows) {
      console.log(
        `${String(r.nodes).padStart(5)}  ${String(r.calls).padStart(6)}   ${
          String(r.per_node_msgs_s).padStart(8)
        }  ${String(r.per_node_kb_s).padStart(8)}        ${String(r.server_egress_msgs_s).padStart(10)}  ${
          String(r.server_egress_mb_s).padStart(8)
        }`,
      );
    }
    if (args.json) await Deno.writeTextFile(args.json, JSON.stringify(out, null, 2) + "\n");
  } finally {
    await srv.stop();
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`bus fan-out bench failed: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
