/**
 * A sensor's whole path from Pixie's responses to the pipelines, in CPU time per row (issue 16): recorded
 * ExecuteScript responses of concurrent synthetic calls (bench/pixie_read_path.ts's recording: a source and two
 * target taps each, 20 ms μ-law Twilio JSON, 250 rows a batch) are decoded and streamed by {@link PixieRowSource},
 * handed to a {@link SensorNode}'s reader and through its Detector and Matcher (tap intake, source and target
 * pipelines), back-pressured so that no row is dropped. No gRPC and no feeder in the way: on a shared host
 * bench/live_load.ts's feeder cannot keep up and its sensor then measures a trickle; this runs the same code as
 * fast as one core allows and divides the process's CPU time by the rows. `--hand-off row` makes the reader take
 * the rows one mailbox message each (what a source without batches gives it), for comparison.
 *
 * The signatures and matches found are counted and digested (every record's measurement, stage, signature id,
 * streams, times and offsets), so a change to the path shows whether it finds the same things.
 *
 * `deno run --allow-all bench/sensor_path.ts [--calls 250] [--ticks 750] [--hand-off batch|row]`
 *
 * `--base CHECKOUT [--pairs 8]`: an in-process A/B of that checkout's path against this one's on the same
 * recording, runs alternated (which goes first too); prints each side's median µs per row and the median of the
 * per-pair ratios, and fails if the two find other signatures or matches (their digests differ). One process
 * shares the host's load between both sides, which separate runs on a noisy host do not.
 * @module
 */
import process from "node:process";
import { Buffer } from "node:buffer";
import { record, type Recording } from "./pixie_read_path.ts";
import { liveCallsConfig } from "../tests/support/live_calls.ts";
import { parseConfigText } from "../config/load.ts";
import { finishNodes, SensorNode } from "../actors/node.ts";
import type { RowSource } from "../actors/pixie_reader.ts";
import { InProcessBus } from "../bus/in_process.ts";
import { sensorMetrics } from "../cli/sensor_metrics.ts";
import { PixieRowSource } from "../pixie/live_source.ts";
import type { PixieExecutor } from "../pixie/stream.ts";
import { decodeExecuteScriptResponse } from "../pixie/messages.ts";
import type { ExecuteScriptRequest, ExecuteScriptResponse } from "../pixie/messages.ts";
import { queriesFromConfig } from "../cli/pixie_queries.ts";
import type { Row } from "../pixie/row.ts";
import type { MatchRecord, SignatureRecord } from "../report/records.ts";
import { setLogLevel } from "../util/log.ts";

/** Plays a recording once, then waits until aborted. */
class RecordedExecutor implements PixieExecutor {
  readonly cloud = false;
  readonly #rec: Recording;

  constructor(rec: Recording) {
    this.#rec = rec;
  }

  async *execute(_req: ExecuteScriptRequest, signal?: AbortSignal): AsyncGenerator<ExecuteScriptResponse> {
    for (const b of this.#rec.meta) yield decodeExecuteScriptResponse(b);
    for (const b of this.#rec.data) yield decodeExecuteScriptResponse(b as Buffer);
    await new Promise<void>((resolve) => signal?.addEventListener("abort", () => resolve(), { once: true }));
  }
}

/** CPU time of this process (user + system, every thread: GC included), ms. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** FNV-1a, two lanes, over text. */
class Digest {
  #h1 = 0x811c9dc5;
  #h2 = 0x01000193;
  add(s: string): void {
    for (let i = 0; i < s.length; i++) {
      const b = s.charCodeAt(i) & 0xff;
      this.#h1 = Math.imul(this.#h1 ^ b, 0x01000193);
      this.#h2 = Math.imul(this.#h2 ^ b, 0x5bd1e995) ^ (this.#h2 >>> 15);
    }
  }
  get hex(): string {
    return (this.#h1 >>> 0).toString(16).padStart(8, "0") + (this.#h2 >>> 0).toString(16).padStart(8, "0");
  }
}

/** One run's figures. */
export interface SensorPathResult {
  rows: number;
  /** Process CPU per row in the second half of the rows, µs (steady state: decode to pipelines). */
  cpuUsPerRow: number;
  /** Process CPU per row over the whole run, µs (start, JIT warm-up and the final flush included). */
  cpuAllUsPerRow: number;
  /** Calls one core keeps up with at this mix (150 rows/s a call). */
  callsPerCore: number;
  signatures: number;
  matches: number;
  /** Digest of the records, order-independent. */
  digest: string;
}

/** Runs `rec` through a sensor node once. */
export async function sensorPath(
  rec: Recording,
  calls: number,
  handOff: "batch" | "row",
): Promise<SensorPathResult> {
  const { config } = parseConfigText(
    liveCallsConfig({
      pixieAddr: "127.0.0.1:1",
      metricsListen: "127.0.0.1:0",
      maxStreams: Math.max(1000, calls * 3),
    }),
    "sensor_path.yaml",
  );
  const bus = new InProcessBus();
  const sigs: SignatureRecord[] = [];
  const matches: MatchRecord[] = [];
  const pixie = new PixieRowSource({
    client: new RecordedExecutor(rec),
    clusterId: "",
    queries: queriesFromConfig(config, config.node),
    encryption: false,
    stream: { idleTimeoutMs: 0 },
  });
  let routed = 0;
  let allIn: () => void = () => {};
  const done = new Promise<void>((r) => allIn = r);
  // The second half is the steady state (streams open, JIT warm): its CPU per row is the figure.
  let half: { cpu: number; rows: number } | undefined;
  const count = (n: number) => {
    routed += n;
    if (half === undefined && routed >= rec.rows / 2) half = { cpu: cpuMs(), rows: routed };
    if (routed >= rec.rows) allIn();
  };
  const source: RowSource = handOff === "batch"
    ? {
      run: (emit, signal) => pixie.run((row) => emit(row).then(() => count(1)), signal),
      runBatches: (emit, signal) =>
        pixie.runBatches((rows: readonly Row[]) => emit(rows).then(() => count(rows.length)), signal),
    }
    : { run: (emit, signal) => pixie.run((row) => emit(row).then(() => count(1)), signal) };
  const t0 = cpuMs();
  const node = await SensorNode.start({
    config,
    node: config.node,
    bus,
    metrics: sensorMetrics(config),
    mode: "replay",
    source,
    sinks: [{ signature: (r) => void sigs.push(r), match: (r) => void matches.push(r) }],
  });
  await done;
  const cpuAll = cpuMs();
  await finishNodes([node], bus);
  const cpu = cpuMs() - t0;
  await node.shutdown(30_000, "bench done");
  const lines = [
    ...sigs.map((s) => `s ${s.measurement} ${s.signature_id} ${s.stream} ${s.time_ns} ${s.offset_ms}`),
    ...matches.map((m) =>
      `m ${m.measurement} ${m.stage} ${m.signature_id} ${m.target.stream} ${m.target.time_ns} ` +
      `${m.target.offset_ms} ${m.latency_s} ${m.ber}`
    ),
  ].sort();
  const d = new Digest();
  for (const l of lines) d.add(l + "\n");
  // Rows counted when handed to the reader: the reader's queue (≤ its mailbox) is still ahead; small beside a half.
  const us = ((cpuAll - half!.cpu) * 1000) / (rec.rows - half!.rows);
  return {
    rows: rec.rows,
    cpuUsPerRow: us,
    cpuAllUsPerRow: (cpu * 1000) / rec.rows,
    callsPerCore: 1e6 / us / 150,
    signatures: sigs.length,
    matches: matches.length,
    digest: d.hex,
  };
}

if (import.meta.main) {
  const args = Deno.args;
  const get = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const calls = Number(get("--calls") ?? 250);
  const ticks = Number(get("--ticks") ?? 750);
  const handOff = get("--hand-off") === "row" ? "row" : "batch";
  setLogLevel("error");
  const rec = record(calls, ticks);
  const base = get("--base");
  if (base !== undefined) {
    await abPairs(base, Number(get("--pairs") ?? 8), rec, calls, handOff);
    Deno.exit(0);
  }
  const r = await sensorPath(rec, calls, handOff);
  console.log(
    `  sensor path (${calls} calls, ${ticks} ticks, hand-off by ${handOff}): ${
      r.rows.toLocaleString("en-US")
    } rows, ` +
      `${r.cpuUsPerRow.toFixed(2)} µs CPU per row in the second half = ${
        Math.round(r.callsPerCore)
      } calls per core ` +
      `(whole run ${r.cpuAllUsPerRow.toFixed(2)} µs); ` +
      `${r.signatures} signatures, ${r.matches} matches, digest ${r.digest}`,
  );
}

/** `--base`: alternating runs of `base`'s path and this one's on `rec` (see the module doc). */
async function abPairs(
  base: string,
  pairs: number,
  rec: Recording,
  calls: number,
  handOff: "batch" | "row",
): Promise<void> {
  const other = await import(`${base.replace(/\/$/, "")}/bench/sensor_path.ts`) as {
    sensorPath: typeof sensorPath;
  };
  (await import(`${base.replace(/\/$/, "")}/util/log.ts`) as { setLogLevel: typeof setLogLevel }).setLogLevel(
    "error",
  );
  const a: number[] = [], b: number[] = [];
  const digests = new Set<string>();
  for (let i = 0; i < pairs; i++) {
    const order = i % 2 === 0
      ? [["base", other.sensorPath, a], ["this", sensorPath, b]] as const
      : [["this", sensorPath, b], ["base", other.sensorPath, a]] as const;
    for (const [name, run, out] of order) {
      const r = await run(rec, calls, handOff);
      out.push(r.cpuUsPerRow);
      digests.add(r.digest);
      console.log(
        `  ${name} ${r.cpuUsPerRow.toFixed(2)} µs a row, ${r.signatures}/${r.matches}, digest ${r.digest}`,
      );
    }
  }
  const med = (x: number[]) => {
    const y = x.slice().sort((p, q) => p - q), h = y.length >> 1;
    return y.length % 2 ? y[h]! : (y[h - 1]! + y[h]!) / 2;
  };
  const ratios = a.map((v, i) => b[i]! / v);
  console.log(
    `  sensor path A/B (${pairs} pairs): base ${med(a).toFixed(2)} µs a row, this ${med(b).toFixed(2)}; ` +
      `this/base per pair: median ${med(ratios).toFixed(3)} [${ratios.map((r) => r.toFixed(2)).join(" ")}]`,
  );
  if (digests.size > 1) {
    console.error(`  the two found different signatures or matches: digests ${[...digests].join(", ")}`);
    Deno.exit(1);
  }
}
