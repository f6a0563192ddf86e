/**
 * Memory of a sensor with many concurrent target streams, measured as the process's RSS: a capture file holding
 * `streams` concurrent calls of `seconds` each (8 kHz μ-law Twilio JSON, 20 ms messages, cut from the bench
 * corpus's speech) is replayed by `deno task run --capture` (the DaemonSet's process, one node) and analysed by
 * `analyze`; each reports its peak RSS (VmHWM). Streams run longer than the 30 s lookback so every ring is full.
 * The figures size the DaemonSet (k8s/README.md "Sizing").
 *
 * `deno run -A bench/capture_memory.ts [--streams 1000,2000] [--seconds 35] [--run-only] [--heap-mb N]
 * [--daemonset] [--env NAME=VALUE]...` (`--heap-mb`: V8's old space capped as a container memory limit would, to
 * find what the replay needs; `--daemonset`: with the memory settings of k8s/daemonset.yaml's environment (V8
 * flags, allocator), as the DaemonSet runs it; `--env`: any other variable for the measured process). The run
 * also says what its peak RSS was made of (bench/memory_probe.ts): V8's heap, ArrayBuffers, and the rest.
 *
 * `deno run -A bench/capture_memory.ts --breakdown [N]`: the engine alone (bench/speed.ts's memory probe, which
 * `deno task bench` runs too): N `TargetPipeline`s (default 1,000) sharing the bench's 10,000-signature index,
 * each fed 30 s of a corpus call; printed: growth per 1,000 streams after GC and the bytes per stream each part
 * reports (`TargetPipeline.memoryBreakdown`).
 * @module
 */

import { encodeCaptureHeader, encodeCaptureLine } from "../pixie/capture.ts";
import type { Row } from "../pixie/row.ts";
import { buildCorpus } from "./corpus.ts";
import { Rng } from "../fixtures/gen/prng.ts";
import { timed } from "./analyze_speed.ts";
import { describeMemory, describeParts, measureMemory } from "./speed.ts";
import { describeSample, type ProbeSample, readPeakSample } from "./memory_probe.ts";
import { parse as parseYaml } from "yaml";

const ROOT = new URL("../", import.meta.url).pathname;
const T0 = 1_763_900_000_000_000_000n;

/** Peak memory of one configuration. */
export interface CaptureMemory {
  streams: number;
  seconds: number;
  captureMB: number;
  /** `run --capture`: peak RSS (VmHWM) and RSS at the end of the replay, MB. */
  runPeakMB: number;
  runEndMB: number;
  /** `analyze` of the same capture: peak RSS, MB (NaN when not run). */
  analyzePeakMB: number;
  /** What `run --capture`'s peak RSS was made of (bench/memory_probe.ts), when sampled. */
  runPeak?: ProbeSample;
}

// engine.max_streams (default 1,000) would finish streams early past 1,000: lifted so every stream is held.
const CONFIG = `log_level: info
node: node-b
metrics: { listen: 127.0.0.1:0 }
engine: { max_streams: 100000 }
measurements:
  - name: mem
    signature_rules:
      stream_filter: "df = px.DataFrame(table='http_events')"
      stream_key: [pod, remote_addr, remote_port]
      audio: { envelope: json, path: media.payload, encoding: base64, codec: mulaw, sample_rate: 8000 }
    match_rules:
      - stage: relay
        stream_filter: "df = px.DataFrame(table='http_events')"
        stream_key: [pod, remote_addr, remote_port]
        audio: { envelope: json, path: media.payload, encoding: base64, codec: mulaw, sample_rate: 8000 }
`;

/** Writes a capture of `streams` concurrent target streams of `seconds` each; returns its size in bytes. */
export async function writeManyStreams(path: string, streams: number, seconds: number): Promise<number> {
  const corpus = await buildCorpus({ seed: 1, quick: true, cacheDir: ".bench-cache" });
  const sources = corpus.calls.map((c) => c.source.messages);
  const perStream = Math.round((seconds * 1000) / 20);
  const rng = new Rng(5);
  const plan = Array.from({ length: streams }, (_, i) => {
    const src = sources[i % sources.length]!;
    return {
      src,
      from: rng.int(0, Math.max(0, src.length - perStream)),
      offsetNs: BigInt(rng.int(0, 999)) * 1_000_000n,
    };
  });
  const f = await Deno.open(path, { write: true, create: true, truncate: true });
  const enc = new TextEncoder();
  let bytes = 0;
  const write = async (text: string) => {
    const b = enc.encode(text);
    bytes += b.length;
    for (let off = 0; off < b.length;) off += await f.write(b.subarray(off));
  };
  try {
    await write(encodeCaptureHeader("node-b") + "\n");
    for (let k = 0; k < perStream; k++) {
      const lines: string[] = [];
      for (let i = 0; i < streams; i++) {
        const p = plan[i]!;
        const m = p.src[(p.from + k) % p.src.length]!;
        const time = T0 + BigInt(k) * 20_000_000n + p.offsetNs;
        const row: Row = {
          query: "mem/relay",
          node: "node-b",
          time,
          columns: {
            time_: time,
            pod: "voice/relay-0",
            remote_addr: "10.1.0.7",
            remote_port: 10000 + i,
            req_body: m.payload,
          },
        };
        lines.push(encodeCaptureLine(row));
      }
      await write(lines.join("\n") + "\n");
    }
  } finally {
    f.close();
  }
  return bytes;
}

function statusMB(pid: number, field: "VmHWM" | "VmRSS"): number {
  try {
    const s = Deno.readTextFileSync(`/proc/${pid}/status`);
    const m = s.match(new RegExp(`${field}:\\s+(\\d+) kB`));
    return m ? (Number(m[1]) * 1024) / 1e6 : NaN;
  } catch {
    return NaN;
  }
}

/** Variables of the DaemonSet's environment that shape the process's memory (V8's flags, the C allocator). */
const MEMORY_ENV = /^(DENO_V8_FLAGS|MALLOC_\w+|GLIBC_TUNABLES)$/;

/** The memory-shaping variables k8s/daemonset.yaml sets on the sensor (literal values only). */
export function daemonSetMemoryEnv(yamlText: string): Record<string, string> {
  const doc = parseYaml(yamlText) as {
    spec?: { template?: { spec?: { containers?: { env?: { name: string; value?: unknown }[] }[] } } };
  };
  const out: Record<string, string> = {};
  for (const c of doc.spec?.template?.spec?.containers ?? []) {
    for (const e of c.env ?? []) {
      if (MEMORY_ENV.test(e.name) && typeof e.value === "string") out[e.name] = e.value;
    }
  }
  return out;
}

/** Runs `run --capture` until the capture is replayed; its peak and final RSS, MB. */
async function runCapture(
  config: string,
  capture: string,
  heapMB?: number,
  env: Record<string, string> = {},
  probeFile?: string,
): Promise<{ peak: number; end: number; code?: number; sample?: ProbeSample }> {
  const child = new Deno.Command(Deno.execPath(), {
    env: probeFile ? { ...env, FSMPX_MEMORY_PROBE: probeFile } : env,
    args: [
      "run",
      "-A",
      // As a memory limit with DENO_USE_CGROUPS=1 would size it: does the replay fit in that V8 heap?
      ...(heapMB ? [`--v8-flags=--max-old-space-size=${heapMB}`] : []),
      ...(probeFile ? [`--preload=${ROOT}bench/memory_probe.ts`] : []),
      `${ROOT}main.ts`,
      "run",
      "--config",
      config,
      "--capture",
      capture,
      "--speed",
      "1000000",
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const dec = new TextDecoder();
  let text = "";
  let result = { peak: NaN, end: NaN };
  for await (const chunk of child.stderr) {
    text += dec.decode(chunk, { stream: true });
    if (text.includes("capture replayed")) {
      result = { peak: statusMB(child.pid, "VmHWM"), end: statusMB(child.pid, "VmRSS") };
      child.kill("SIGTERM");
      break;
    }
    if (text.length > 1 << 20) text = text.slice(-4096);
  }
  const status = await child.status;
  const sample = probeFile ? readPeakSample(probeFile) : undefined;
  // Killed by us after "capture replayed" (SIGTERM), or died on its own first (e.g. out of heap).
  return Number.isNaN(result.peak) ? { ...result, code: status.code, sample } : { ...result, sample };
}

/** Measures every configuration. */
export async function captureMemory(
  streamCounts: readonly number[],
  seconds: number,
  onResult?: (r: CaptureMemory) => void,
  opts: { analyze?: boolean; heapMB?: number; env?: Record<string, string> } = {},
): Promise<CaptureMemory[]> {
  const dir = await Deno.makeTempDir({ prefix: "fsmpx-capture-memory-" });
  const out: CaptureMemory[] = [];
  try {
    const config = `${dir}/config.yaml`;
    await Deno.writeTextFile(config, CONFIG);
    for (const streams of streamCounts) {
      const capture = `${dir}/many.jsonl`;
      const bytes = await writeManyStreams(capture, streams, seconds);
      const run = await runCapture(config, capture, opts.heapMB, opts.env, `${dir}/probe.jsonl`);
      if (run.code !== undefined) {
        console.log(`  run --capture exited with ${run.code} before the end of the replay`);
      }
      const an = opts.analyze === false ? { maxRssMB: NaN } : await timed([
        Deno.execPath(),
        "run",
        "-A",
        `${ROOT}main.ts`,
        "analyze",
        "--config",
        config,
        capture,
      ]);
      const r = {
        streams,
        seconds,
        captureMB: bytes / 1e6,
        runPeakMB: run.peak,
        runEndMB: run.end,
        analyzePeakMB: an.maxRssMB,
        runPeak: run.sample,
      };
      onResult?.(r);
      out.push(r);
      await Deno.remove(capture);
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return out;
}

/** The bench's printout. */
export function printCaptureMemory(rs: readonly CaptureMemory[]): void {
  for (const r of rs) {
    console.log(
      `  ${r.streams} concurrent target streams x ${r.seconds} s (${r.captureMB.toFixed(0)} MB capture): ` +
        `run --capture peak RSS ${r.runPeakMB.toFixed(0)} MB (${r.runEndMB.toFixed(0)} MB at the end); ` +
        (Number.isNaN(r.analyzePeakMB) ? "" : `analyze peak RSS ${r.analyzePeakMB.toFixed(0)} MB `) +
        `(target <= 400 MB at 1,000 streams)`,
    );
    if (r.runPeak) console.log(`    run --capture at its peak: ${describeSample(r.runPeak)}`);
  }
}

/** Per-stream memory of the engine, by part (see the module doc). */
if (import.meta.main && Deno.args.includes("--breakdown")) {
  const n = Number(Deno.args[Deno.args.indexOf("--breakdown") + 1]);
  const streams = Number.isFinite(n) && n > 0 ? n : 1000;
  const m = await measureMemory(streams, 30, { seed: 1, cacheDir: ".bench-cache" });
  console.log(`  ${describeMemory(m)}`);
  console.log(`  per stream: ${describeParts(m)}`);
} else if (import.meta.main) {
  const si = Deno.args.indexOf("--streams");
  const ti = Deno.args.indexOf("--seconds");
  const counts = si >= 0 ? Deno.args[si + 1]!.split(",").map(Number) : [1000, 2000];
  const seconds = ti >= 0 ? Number(Deno.args[ti + 1]) : 35;
  // --run-only: the DaemonSet's process only (analyze of the same capture doubles the time).
  const hi = Deno.args.indexOf("--heap-mb");
  const env: Record<string, string> = Deno.args.includes("--daemonset")
    ? daemonSetMemoryEnv(await Deno.readTextFile(`${ROOT}k8s/daemonset.yaml`))
    : {};
  Deno.args.forEach((a, i) => {
    if (a !== "--env") return;
    const [name, ...value] = (Deno.args[i + 1] ?? "").split("=");
    if (name) env[name] = value.join("=");
  });
  if (Object.keys(env).length > 0) {
    console.log(`  environment: ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(" ")}`);
  }
  await captureMemory(counts, seconds, (r) => printCaptureMemory([r]), {
    analyze: !Deno.args.includes("--run-only"),
    heapMB: hi >= 0 ? Number(Deno.args[hi + 1]) : undefined,
    env,
  });
}
