/**
 * Memory of a sensor with many concurrent target streams, measured as the process's RSS: a capture file holding
 * `streams` concurrent calls of `seconds` each (8 kHz μ-law Twilio JSON, 20 ms messages, cut from the bench
 * corpus's speech) is replayed by `deno task run --capture` (the DaemonSet's process, one node) and analysed by
 * `analyze`; each reports its peak RSS (VmHWM). Streams run longer than the 30 s lookback so every ring is full.
 * The figures size the DaemonSet (k8s/README.md "Sizing").
 *
 * `deno run -A bench/capture_memory.ts [--streams 1000,2000] [--seconds 35] [--run-only] [--daemonset] [--task]
 * [--limit-mib N] [--heap-mb N] [--env NAME=VALUE]... [--capture-file F] [--repeat K] [--main PATH]`
 * (`--daemonset`: with the memory variables of k8s/daemonset.yaml's environment (V8 flags, allocator);
 * `--task`: with the V8 flags of deno.json's `run` task, the DaemonSet's command; `--limit-mib`: as in a
 * container with that memory limit, V8's heap sized from it by `DENO_USE_CGROUPS=1` as in the DaemonSet (root:
 * a private mount namespace fakes the cgroup files; nothing is enforced); `--heap-mb`: V8's old space capped
 * explicitly; `--env`: any other variable for the measured process; `--capture-file`: the capture kept there
 * and reused by later runs; `--repeat`: runs per stream count; `--main`: another checkout's main.ts, for an
 * A/B on the same capture). The DaemonSet as deployed: `--streams 1000 --run-only --daemonset --task
 * --limit-mib 768`. Each run prints its peak RSS, its CPU seconds, and what the peak was made of
 * (bench/memory_probe.ts): V8's heap, ArrayBuffers, and the rest.
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
import { taskEnv, taskV8Flags, v8FlagsArgs } from "./deno_tasks.ts";

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
  /** CPU seconds `run --capture` took to replay the capture (start-up included). */
  runCpuS?: number;
  /** `analyze` of the same capture: peak RSS, MB (NaN when not run). */
  analyzePeakMB: number;
  /** What `run --capture`'s peak RSS was made of (bench/memory_probe.ts), when sampled. */
  runPeak?: ProbeSample;
  /** What the replay found, from its metrics once replayed (see {@link recordsOfMetrics}). */
  runRecords?: RunRecords;
}

/** Signatures and matches of a replay, from its metrics, and a digest of them for an A/B. */
export interface RunRecords {
  signatures: number;
  matches: number;
  /** sha-256 (first 16 hex digits) of the sorted signature, match and latency series (sums and buckets). */
  digest: string;
}

/** Series that say what a replay found: every signature, every match and its latency (exact sums). */
const RECORD_SERIES =
  /^(signatures_detected_total|signatures_matched_total|audio_latency_seconds_(sum|count|bucket))\b/;

/** {@link RunRecords} of a Prometheus text scrape. */
export async function recordsOfMetrics(text: string): Promise<RunRecords> {
  const lines = text.split("\n").filter((l) => RECORD_SERIES.test(l)).sort();
  const total = (name: string) =>
    lines.filter((l) => l.startsWith(name)).reduce((a, l) => a + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
  const hash = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(lines.join("\n")));
  return {
    signatures: total("signatures_detected_total"),
    matches: total("audio_latency_seconds_count"),
    digest: Array.from(new Uint8Array(hash).subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join(""),
  };
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

/** CPU seconds (user + system) a live process has used so far, from `/proc/<pid>/stat` (NaN when unreadable). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the command name (which may hold spaces): state is field 3, utime 14 and stime 15.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
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

/**
 * `argv` run as in a container limited to `limitMiB` as deno sees it with `DENO_USE_CGROUPS=1` (V8's heap sized
 * from the limit, as in the DaemonSet): in a private mount namespace (`unshare -m`, root only) whose cgroup
 * files say that limit. Nothing is limited (the peak is measured, not enforced) and nothing outside the process
 * sees the namespace. The command is exec'd, so the child's pid is deno's.
 */
export function inMemoryLimit(limitMiB: number, argv: readonly string[]): string[] {
  const bytes = Math.round(limitMiB * 1024 * 1024);
  const script = [
    "set -e",
    // Where /proc/self/cgroup places this process: cgroup v1's memory controller, or v2's unified path.
    `v1=$(sed -n 's/^[0-9]*:memory:\\(.*\\)$/\\1/p' /proc/self/cgroup)`,
    `v2=$(sed -n 's/^0::\\(.*\\)$/\\1/p' /proc/self/cgroup)`,
    "mount -t tmpfs fsmpx-limit /sys/fs/cgroup",
    `mkdir -p "/sys/fs/cgroup/memory$v1" "/sys/fs/cgroup$v2"`,
    `echo ${bytes} > "/sys/fs/cgroup/memory$v1/memory.limit_in_bytes"`,
    `echo ${bytes} > "/sys/fs/cgroup$v2/memory.max"`,
    'exec "$@"',
  ].join("\n");
  return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", ...argv];
}

/** Runs `run --capture` until the capture is replayed; its peak and final RSS, MB. */
async function runCapture(
  config: string,
  capture: string,
  heapMB?: number,
  env: Record<string, string> = {},
  probeFile?: string,
  opts: { main?: string; runFlags?: readonly string[]; limitMiB?: number } = {},
): Promise<
  { peak: number; end: number; cpuS: number; code?: number; sample?: ProbeSample; records?: RunRecords }
> {
  const deno = [
    Deno.execPath(),
    "run",
    "-A",
    ...v8FlagsArgs([
      ...(opts.runFlags ?? []),
      // As a memory limit with DENO_USE_CGROUPS=1 would size it: does the replay fit in that V8 heap?
      ...(heapMB ? [`--max-old-space-size=${heapMB}`] : []),
    ]),
    ...(probeFile ? [`--preload=${ROOT}bench/memory_probe.ts`] : []),
    opts.main ?? `${ROOT}main.ts`,
    "run",
    "--config",
    config,
    "--capture",
    capture,
    "--speed",
    "1000000",
  ];
  const [cmd, ...args] = opts.limitMiB ? inMemoryLimit(opts.limitMiB, deno) : deno;
  const child = new Deno.Command(cmd!, {
    env: {
      ...env,
      ...(probeFile ? { FSMPX_MEMORY_PROBE: probeFile } : {}),
      ...(opts.limitMiB ? { DENO_USE_CGROUPS: "1" } : {}),
    },
    args,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const dec = new TextDecoder();
  let text = "";
  let result: { peak: number; end: number; cpuS: number; records?: RunRecords } = {
    peak: NaN,
    end: NaN,
    cpuS: NaN,
  };
  let metricsUrl: string | undefined;
  for await (const chunk of child.stderr) {
    text += dec.decode(chunk, { stream: true });
    metricsUrl ??= text.match(/"metrics":"(http:\/\/[^"]+)"/)?.[1];
    if (text.includes("capture replayed")) {
      result = {
        peak: statusMB(child.pid, "VmHWM"),
        end: statusMB(child.pid, "VmRSS"),
        cpuS: cpuSeconds(child.pid),
      };
      // After the peak was read: the scrape's own memory is not in it.
      if (metricsUrl) {
        result.records = await fetch(metricsUrl).then((r) => r.text()).then(recordsOfMetrics).catch(() =>
          undefined
        );
      }
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

/** The V8 flags deno.json's `run` task (the DaemonSet's command) starts the sensor with. */
export function runTaskV8Flags(denoJsonText: string): string[] {
  return taskV8Flags(denoJsonText, "run");
}

/** The variables deno.json's `run` task sets on the sensor (`NAME=value` words before `deno run`). */
export function runTaskEnv(denoJsonText: string): Record<string, string> {
  return taskEnv(denoJsonText, "run");
}

/** Options of {@link captureMemory}. */
export interface CaptureMemoryOptions {
  /** Also `analyze` the capture (default true). */
  analyze?: boolean;
  /** V8's old space for `run --capture`, MB (as a container limit caps it). */
  heapMB?: number;
  /** Environment of the measured processes. */
  env?: Record<string, string>;
  /** V8 flags of `run --capture` (deno.json's run task's, with `--task`). */
  runFlags?: readonly string[];
  /** The main.ts to measure (default this checkout's; another worktree's for an A/B). */
  main?: string;
  /**
   * The capture to replay: written there when missing and kept (one capture for many runs); default a
   * temporary one per stream count.
   */
  captureFile?: string;
  /** Runs per stream count (default 1). */
  repeat?: number;
  /** Run `run --capture` as in a container with this memory limit, MiB (see {@link inMemoryLimit}). */
  limitMiB?: number;
}

/** The file `name` in the directory of `main` (a main.ts path, absolute or relative to the working directory). */
function besideMain(main: string, name: string): string {
  const abs = main.startsWith("/") ? main : `${Deno.cwd()}/${main}`;
  return `${abs.slice(0, abs.lastIndexOf("/") + 1)}${name}`;
}

/** Measures every configuration. */
export async function captureMemory(
  streamCounts: readonly number[],
  seconds: number,
  onResult?: (r: CaptureMemory) => void,
  opts: CaptureMemoryOptions = {},
): Promise<CaptureMemory[]> {
  const dir = await Deno.makeTempDir({ prefix: "fsmpx-capture-memory-" });
  const out: CaptureMemory[] = [];
  const main = opts.main ?? `${ROOT}main.ts`;
  // `analyze` as `deno task analyze` runs it: the V8 flags of the analyze task beside that main.ts.
  const analyzeFlags = taskV8Flags(await Deno.readTextFile(besideMain(main, "deno.json")), "analyze");
  try {
    const config = `${dir}/config.yaml`;
    await Deno.writeTextFile(config, CONFIG);
    for (const streams of streamCounts) {
      const capture = opts.captureFile ?? `${dir}/many.jsonl`;
      const kept = opts.captureFile !== undefined &&
        (await Deno.stat(capture).catch(() => undefined)) !== undefined;
      const bytes = kept
        ? (await Deno.stat(capture)).size
        : await writeManyStreams(capture, streams, seconds);
      for (let k = 0; k < (opts.repeat ?? 1); k++) {
        const run = await runCapture(config, capture, opts.heapMB, opts.env, `${dir}/probe.jsonl`, {
          main,
          runFlags: opts.runFlags,
          limitMiB: opts.limitMiB,
        });
        if (run.code !== undefined) {
          console.log(`  run --capture exited with ${run.code} before the end of the replay`);
        }
        const an = opts.analyze === false ? { maxRssMB: NaN } : await timed([
          Deno.execPath(),
          "run",
          "-A",
          ...v8FlagsArgs(analyzeFlags),
          main,
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
          runCpuS: run.cpuS,
          analyzePeakMB: an.maxRssMB,
          runPeak: run.sample,
          runRecords: run.records,
        };
        onResult?.(r);
        out.push(r);
      }
      if (opts.captureFile === undefined) await Deno.remove(capture);
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return out;
}

/** Issue 16's bound on the peak RSS of `analyze` of a capture of this many concurrent target streams, MB. */
export const PEAK_TARGET_MB = 400;
/** The stream count that bound is stated for. */
export const PEAK_TARGET_STREAMS = 1000;

/** The bench's printout. */
export function printCaptureMemory(rs: readonly CaptureMemory[]): void {
  for (const r of rs) {
    console.log(
      `  ${r.streams} concurrent target streams x ${r.seconds} s (${r.captureMB.toFixed(0)} MB capture): ` +
        `run --capture peak RSS ${r.runPeakMB.toFixed(0)} MB (${r.runEndMB.toFixed(0)} MB at the end` +
        (r.runCpuS === undefined ? "" : `, ${r.runCpuS.toFixed(1)} CPU s`) + `); ` +
        (Number.isNaN(r.analyzePeakMB) ? "" : `analyze peak RSS ${r.analyzePeakMB.toFixed(0)} MB `) +
        `(target <= ${PEAK_TARGET_MB} MB at ${PEAK_TARGET_STREAMS.toLocaleString("en")} streams)`,
    );
    if (r.streams === PEAK_TARGET_STREAMS && !Number.isNaN(r.analyzePeakMB)) {
      // Issue 16 states the target for analyze of such a capture ("the 1,000-stream case ... in all").
      const met = r.analyzePeakMB <= PEAK_TARGET_MB ? "met" : "not met";
      console.log(
        `    target (issue 16): analyze of ${
          PEAK_TARGET_STREAMS.toLocaleString("en")
        } concurrent streams <= ` +
          `${PEAK_TARGET_MB} MB peak RSS in all; measured ${r.analyzePeakMB.toFixed(0)} MB: ${met}`,
      );
    }
    if (r.runPeak) {
      console.log(
        `    run --capture at its peak (${(r.runPeak.t / 1000).toFixed(1)} s): ${describeSample(r.runPeak)}`,
      );
    }
    if (r.runRecords) {
      const rr = r.runRecords;
      console.log(
        `    run --capture found ${rr.signatures} signatures, ${rr.matches} matches (digest ${rr.digest})`,
      );
    }
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
  const value = (name: string) => {
    const i = Deno.args.indexOf(name);
    return i >= 0 ? Deno.args[i + 1] : undefined;
  };
  const hi = Deno.args.indexOf("--heap-mb");
  const env: Record<string, string> = Deno.args.includes("--daemonset")
    ? daemonSetMemoryEnv(await Deno.readTextFile(`${ROOT}k8s/daemonset.yaml`))
    : {};
  // deno.json's run task: its variables (the allocator's) and V8 flags, as `deno task run` starts the sensor; with
  // `--main`, that checkout's task (an A/B measures each tree as it would be deployed).
  const mainPath = value("--main");
  const taskFile = besideMain(mainPath ?? `${ROOT}main.ts`, "deno.json");
  const task = Deno.args.includes("--task") ? await Deno.readTextFile(taskFile) : undefined;
  if (task) Object.assign(env, runTaskEnv(task));
  Deno.args.forEach((a, i) => {
    if (a !== "--env") return;
    const [name, ...value] = (Deno.args[i + 1] ?? "").split("=");
    if (name) env[name] = value.join("=");
  });
  if (Object.keys(env).length > 0) {
    console.log(`  environment: ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(" ")}`);
  }
  const runFlags = task ? runTaskV8Flags(task) : [];
  if (runFlags.length > 0) console.log(`  V8 flags of ${taskFile}'s run task: ${runFlags.join(" ")}`);
  await captureMemory(counts, seconds, (r) => printCaptureMemory([r]), {
    analyze: !Deno.args.includes("--run-only"),
    heapMB: hi >= 0 ? Number(Deno.args[hi + 1]) : undefined,
    env,
    runFlags,
    main: mainPath,
    captureFile: value("--capture-file"),
    repeat: Number(value("--repeat") ?? 1),
    limitMiB: value("--limit-mib") === undefined ? undefined : Number(value("--limit-mib")),
  });
}
