/**
 * `deno run --allow-all bench/bus_fanout.ts [--messages N] [--rate R] [--subscribers K] [--burst N] [--json FILE]`:
 * the JetStream bus on loopback against a real `nats-server -js`.
 *
 * 1. Fan-out latency: N signatures published at R msg/s by one bus, each delivered to K subscriber buses (K
 *    connections = K nodes); latency = delivery time − publishSignature call (outbox, publish, store, ordered
 *    consumer, decode), p50/p90/p99/max over the N×K deliveries.
 * 2. Publish throughput: a burst of N signatures enqueued at once, time until every ack (outbox drained), and
 *    until all K subscribers have them.
 * 3. Volume model for a cluster: every node reads every signature, so a node's inbound signature traffic is the
 *    cluster-wide signature rate, and the server's egress is that times the node count (printed as a table
 *    with the wire size measured here).
 *
 * All clients share one process (and 2 cores with the server here), so the figures are an upper bound of
 * what the bus adds, not of the server's capacity.
 * @module
 */
import { JetStreamBus } from "../bus/jetstream.ts";
import { encodeSignature } from "../audio/signature.ts";
import { matchRecord } from "../report/records.ts";
import { setLogLevel } from "../util/log.ts";
import { NatsServer } from "../tests/support/nats_server.ts";
import { testBusOptions, testMatch, testSignature, waitFor } from "../tests/support/bus_fixtures.ts";

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

async function fanout(url: string, args: Args, base: number) {
  const pub = await JetStreamBus.connect(testBusOptions(url, "pub"));
  const subs: JetStreamBus[] = [];
  const sent = new Map<string, number>();
  const lat: number[] = [];
  let delivered = 0;
  try {
    for (let k = 0; k < args.subscribers; k++) {
      const b = await JetStreamBus.connect(testBusOptions(url, `sub-${k}`));
      subs.push(b);
      await b.subscribeSignatures(["m"], (s) => {
        const t = sent.get(s.id);
        if (t !== undefined) lat.push(performance.now() - t);
        delivered++;
      });
    }
    // Paced in 10 ms ticks: R/100 messages per tick.
    const perTick = Math.max(1, Math.round(args.rate / 100));
    const t0 = performance.now();
    for (let i = 0; i < args.messages; i += perTick) {
      for (let j = i; j < Math.min(args.messages, i + perTick); j++) {
        const sig = testSignature(base + j);
        sent.set(sig.id, performance.now());
        await pub.publishSignature(sig);
      }
      const due = t0 + ((i + perTick) / args.rate) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
    }
    await pub.flush(30_000);
    await waitFor(() => delivered >= args.messages * args.subscribers, 30_000, "fan-out deliveries");
    lat.sort((a, b) => a - b);
    return {
      deliveries: lat.length,
      p50_ms: quantile(lat, 0.5),
      p90_ms: quantile(lat, 0.9),
      p99_ms: quantile(lat, 0.99),
      max_ms: lat.at(-1) ?? NaN,
    };
  } finally {
    for (const b of subs) await b.close();
    await pub.close();
  }
}

async function throughput(url: string, args: Args, base: number) {
  const pub = await JetStreamBus.connect(testBusOptions(url, "pub", { outboxSize: args.burst + 1 }));
  const subs: JetStreamBus[] = [];
  let delivered = 0;
  try {
    for (let k = 0; k < args.subscribers; k++) {
      const b = await JetStreamBus.connect(testBusOptions(url, `sub-${k}`));
      subs.push(b);
      await b.subscribeSignatures(["m"], () => void delivered++);
    }
    const t0 = performance.now();
    for (let i = 0; i < args.burst; i++) await pub.publishSignature(testSignature(base + i));
    const enqueued = performance.now() - t0;
    await pub.flush(120_000);
    const acked = performance.now() - t0;
    await waitFor(() => delivered >= args.burst * args.subscribers, 120_000, "burst deliveries");
    const all = performance.now() - t0;
    return {
      messages: args.burst,
      enqueue_per_s: Math.round(args.burst / (enqueued / 1000)),
      acked_per_s: Math.round(args.burst / (acked / 1000)),
      delivered_per_s: Math.round((args.burst * args.subscribers) / (all / 1000)),
    };
  } finally {
    for (const b of subs) await b.close();
    await pub.close();
  }
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
      fanout: { rate: args.rate, subscribers: args.subscribers, ...f },
      throughput: t,
      model,
    };
    const r2 = (x: number) => Math.round(x * 100) / 100;
    console.log(`signature: ${sigBytes} B encoded (128 frames, 1 id), match record: ${matchBytes} B JSON`);
    console.log(
      `fan-out: ${args.messages} msgs at ${args.rate}/s to ${args.subscribers} subscribers: ` +
        `p50 ${r2(f.p50_ms)} ms, p90 ${r2(f.p90_ms)} ms, p99 ${r2(f.p99_ms)} ms, max ${
          r2(f.max_ms)
        } ms (${f.deliveries} deliveries)`,
    );
    console.log(
      `publish burst of ${t.messages}: enqueue ${t.enqueue_per_s}/s, acked ${t.acked_per_s}/s, ` +
        `delivered to ${args.subscribers} subscribers ${t.delivered_per_s} deliveries/s`,
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

if (import.meta.main) await main();
