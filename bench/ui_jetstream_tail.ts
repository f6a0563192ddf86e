/**
 * `deno run --allow-all bench/ui_jetstream_tail.ts [--matches N] [--rate R] [--seconds S]`: what the web UI costs
 * over a JetStream that holds N match records (plus their N/2 signatures, relay → asr) on a real `nats-server
 * -js`, with `main.ts ui` as its own process (as a user runs it):
 *
 * 1. History: from spawn until the UI serves (process start, reading every stored message, the store), its
 *    resident memory then, and the first overview (the first view: hops and summary over every record).
 * 2. Live tail, R signatures a second (each with a relay and an asr match) published for S seconds, twice:
 *    without a page, then with one open (an SSE client that re-reads the overview on every update event, as
 *    the page does). Per run: the UI process's CPU (utime + stime from /proc, in cores), the updates the page
 *    got, how long after the last publish the overview showed every record, and the longest a tiny request
 *    (/api/info, every 100 ms) waited: the event loop is single-threaded, so a view rebuild stalls everything.
 *
 * Everything shares this machine's cores (the server, the publisher, the UI): figures are for this machine and
 * its load at the time.
 * @module
 */
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectNats } from "../bus/connection.ts";
import { ensureStream } from "../bus/stream_setup.ts";
import { matchSubject, signatureSubject } from "../bus/subjects.ts";
import { encodeSignature, signatureOf } from "../audio/fingerprint/signature.ts";
import type { MatchRecord } from "../report/records.ts";
import { NatsServer } from "../tests/support/nats_server.ts";
import { writeSensorConfig } from "../tests/support/sensor_process.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const MEASUREMENT = "call_audio";
const PER_CALL = 25;
const T0 = 1_763_910_000_000_000_000n;

/** Figures of one live-tail run. */
export interface TailFigures {
  /** Matches published during the run. */
  matches: number;
  /** UI process CPU over the run, in cores (1 = one core busy all the time). */
  cpuCores: number;
  /** Update events the page received. */
  updates: number;
  /** From the last publish until the overview counted every match, ms (null: no page). */
  catchUpMs: number | null;
  /** Longest and 99th-percentile wait of /api/info probes during the run, ms. */
  probeMaxMs: number;
  probeP99Ms: number;
}

/** Figures of the bench. */
export interface UiJetStreamFigures {
  storedMatches: number;
  storedSignatures: number;
  /** Spawn until "UI at" (process start included), ms. */
  historyMs: number;
  rssMb: number;
  firstOverviewMs: number;
  noPage: TailFigures;
  withPage: TailFigures;
}

const enc = new TextEncoder();

function signatureBytes(i: number, srcNs: bigint, interval: string, stream: string, pod: string): Uint8Array {
  const fingerprint = new Uint32Array(64);
  for (let f = 0; f < fingerprint.length; f++) fingerprint[f] = Math.imul(i + 1, 2654435761) ^ f * 40503;
  const envelope = new Uint8Array(256);
  for (let e = 0; e < envelope.length; e++) envelope[e] = (i + e) % 8;
  return encodeSignature(signatureOf({
    id: i.toString(16).padStart(16, "0"),
    measurement: MEASUREMENT,
    source: { node: "node-a", pod, stream, timeNs: srcNs, offsetMs: 5 },
    fingerprint,
    levelEnvelope: envelope,
    ids: { interval_id: interval },
  }));
}

/** Publishes signature `i` and its relay and asr matches (core publishes: the stream stores them). */
export function publishOne(nc: NatsConnection, i: number): void {
  const call = Math.floor(i / PER_CALL);
  const interval = `${call.toString(16).padStart(8, "0")}-0000-4000-8000-${Math.floor((i % PER_CALL) / 5)}`;
  const src = T0 + BigInt(call) * 7_000_000_000n + BigInt(i % PER_CALL) * 900_000_000n;
  const pod = `voice/telephony-${call % 8}`;
  const stream = `${pod}|MZ${call}`;
  const id = i.toString(16).padStart(16, "0");
  nc.publish(signatureSubject(MEASUREMENT), signatureBytes(i, src, interval, stream, pod));
  const relay = src + 150_000_000n + BigInt(i % 7) * 1_000_000n;
  const asr = relay + 600_000_000n + BigInt(i % PER_CALL) * 80_000_000n;
  for (const [stage, t] of [["relay", relay], ["asr", asr]] as const) {
    const m: MatchRecord = {
      kind: "match",
      measurement: MEASUREMENT,
      stage,
      signature_id: id,
      ids: { interval_id: interval },
      source: { node: "node-a", pod, stream, time_ns: src.toString(), offset_ms: 5 },
      target: {
        node: stage === "relay" ? "node-b" : "node-c",
        pod: `voice/${stage}-0`,
        stream: `voice/${stage}-0|${call}`,
        time_ns: t.toString(),
        offset_ms: 5,
      },
      latency_s: Number(t - src) / 1e9,
      ber: 0.02,
    };
    nc.publish(matchSubject(MEASUREMENT, stage), enc.encode(JSON.stringify(m)));
  }
}

/** CPU seconds (user + system) of a process so far. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 (utime, stime) in clock ticks; Linux's USER_HZ is 100 on every common architecture.
  return (Number(f[11]) + Number(f[12])) / 100;
}

async function rssMb(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q, lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

async function overviewMatches(base: string): Promise<number> {
  const ov = await (await fetch(`${base}api/overview`)).json() as { stages: { matches: number }[] }[];
  return ov.reduce((a, m) => a + m.stages.reduce((b, s) => b + s.matches, 0), 0);
}

/** One live-tail run: publish for `seconds` at `rate` signatures/s from signature `from` on. */
async function tailRun(
  nc: NatsConnection,
  base: string,
  pid: number,
  from: number,
  rate: number,
  seconds: number,
  page: boolean,
): Promise<TailFigures> {
  const probes: number[] = [];
  let probing = true;
  const probe = (async () => {
    while (probing) {
      const t = performance.now();
      await (await fetch(`${base}api/info`)).body?.cancel();
      probes.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  let updates = 0;
  const abort = new AbortController();
  let reading: Promise<void> = Promise.resolve();
  if (page) {
    const res = await fetch(`${base}api/events`, { signal: abort.signal });
    reading = (async () => {
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      try {
        while (true) {
          const { value, done } = await reader.read();
          if (done) return;
          buf += value;
          let at;
          while ((at = buf.indexOf("\n\n")) >= 0) {
            const ev = buf.slice(0, at);
            buf = buf.slice(at + 2);
            if (ev.startsWith("event: update")) {
              updates++;
              await overviewMatches(base); // what the open overview page does on every update
            }
          }
        }
      } catch {
        // aborted at the end of the run
      }
    })();
  }
  const cpu0 = await cpuSeconds(pid);
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < seconds * 1000) {
    const due = Math.floor(((performance.now() - t0) / 1000) * rate);
    while (n < due) publishOne(nc, from + n++);
    await nc.flush();
    await new Promise((r) => setTimeout(r, 50));
  }
  const last = performance.now();
  let catchUpMs: number | null = null;
  if (page) {
    const want = 2 * (from + n);
    while ((await overviewMatches(base)) < want) await new Promise((r) => setTimeout(r, 100));
    catchUpMs = performance.now() - last;
  }
  const cpuCores = (await cpuSeconds(pid) - cpu0) / ((performance.now() - t0) / 1000);
  probing = false;
  await probe;
  abort.abort();
  await reading;
  const sorted = [...probes].sort((a, b) => a - b);
  return {
    matches: 2 * n,
    cpuCores,
    updates,
    catchUpMs,
    probeMaxMs: sorted.at(-1) ?? NaN,
    probeP99Ms: quantile(sorted, 0.99),
  };
}

/** Runs the bench. */
export async function benchUiJetStreamTail(
  opts: { matches?: number; rate?: number; seconds?: number } = {},
): Promise<UiJetStreamFigures> {
  const sigCount = Math.ceil((opts.matches ?? 100_000) / 2);
  const rate = opts.rate ?? 20;
  const seconds = opts.seconds ?? 30;
  const server = await NatsServer.start();
  const dir = await Deno.makeTempDir({ prefix: "fsmpx-bench-ui-" });
  let child: Deno.ChildProcess | undefined;
  let nc: NatsConnection | undefined;
  try {
    nc = await connectNats({ url: server.url, name: "bench-ui" });
    await ensureStream(await jetstreamManager(nc), {
      name: "FSMPX",
      replicas: 1,
      retentionMs: 86_400_000,
      maxBytes: 4 * 1024 ** 3,
      duplicateWindowMs: 120_000,
      maxMsgSize: 64 * 1024,
    });
    for (let i = 0; i < sigCount; i++) {
      publishOne(nc, i);
      if (i % 2000 === 1999) await nc.flush();
    }
    await nc.flush();
    const jsm = await jetstreamManager(nc);
    while ((await jsm.streams.info("FSMPX")).state.messages < 3 * sigCount) {
      await new Promise((r) => setTimeout(r, 100));
    }

    const config = await writeSensorConfig({
      base: `${ROOT}fixtures/demo/config.yaml`,
      dir,
      node: "bench-ui",
      natsUrl: server.url,
      logLevel: "warn",
    });
    const t0 = performance.now();
    child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "main.ts", "ui", "--config", config, "--listen", "127.0.0.1:0", "--since", "1h"],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!/UI at (http:\S+)/.test(out)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`ui ended: ${out}`);
      out += value;
    }
    const historyMs = performance.now() - t0;
    void (async () => {
      while (!(await reader.read()).done) { /* drain */ }
    })();
    const base = /UI at (http:\S+)/.exec(out)![1]!;
    const rss = await rssMb(child.pid);
    const t1 = performance.now();
    await overviewMatches(base);
    const firstOverviewMs = performance.now() - t1;
    const noPage = await tailRun(nc, base, child.pid, sigCount, rate, seconds, false);
    const withPage = await tailRun(nc, base, child.pid, sigCount + noPage.matches / 2, rate, seconds, true);
    return {
      storedMatches: 2 * sigCount,
      storedSignatures: sigCount,
      historyMs,
      rssMb: rss,
      firstOverviewMs,
      noPage,
      withPage,
    };
  } finally {
    if (child) {
      try {
        child.kill("SIGINT");
      } catch {
        // gone
      }
      await child.status;
    }
    await nc?.close();
    await server.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const arg = (k: string) => {
    const i = Deno.args.indexOf(k);
    return i >= 0 ? Number(Deno.args[i + 1]) : undefined;
  };
  const f = await benchUiJetStreamTail({
    matches: arg("--matches"),
    rate: arg("--rate"),
    seconds: arg("--seconds"),
  });
  console.log(JSON.stringify(f, null, 2));
}
