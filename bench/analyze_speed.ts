/**
 * `analyze` end to end on the bench corpus, as a user runs it: the corpus's source tap and four target taps
 * written as capture files (JSON Lines, two nodes), then `deno run main.ts analyze` in a child process with the
 * V8 flags of deno.json's analyze task, start-up included. Throughput is audio seconds of all taps over the
 * child's CPU seconds (user + system, from `/usr/bin/time`), with its peak RSS. A second run under `--cpu-prof`
 * says what share of the CPU each stage takes (read/parse, decode, resample, sample ring, fingerprint, index,
 * verify, align, records, actors, GC, start-up), by the innermost frame of each profile sample that lies in a
 * file of that stage.
 *
 * Chromaprint's `fpcalc` (Debian `libchromaprint-tools`) fingerprints the same audio (every tap as a WAV file of
 * its decoded 16-bit audio at the tap's rate) for a side-by-side figure, when it is installed; only audio fpcalc
 * fingerprinted in full counts (`bench/fpcalc.ts`).
 *
 * `deno run -A bench/analyze_speed.ts [--quick] [--seed N] [--keep DIR [--reuse]]`
 * @module
 */

import { encodeCaptureHeader, encodeCaptureLine } from "../pixie/capture.ts";
import type { Row } from "../pixie/row.ts";
import { BENCH_CHAINS, type Chain } from "../fixtures/gen/chains.ts";
import type { SimStream } from "../fixtures/gen/pipeline_sim.ts";
import { buildChainStreams, buildCorpus, type Corpus } from "./corpus.ts";
import { decodeSamples } from "../fixtures/gen/codecs.ts";
import { encodeWav } from "../fixtures/gen/wav.ts";
import { type FpcalcSpeed, fpcalcSpeed, hasFpcalc } from "./fpcalc.ts";
import { taskV8Flags, v8FlagsArgs } from "./deno_tasks.ts";

/** Issue 16's target for analyze end to end: audio seconds of all taps per CPU second, start-up included. */
export const ANALYZE_TARGET_X = 1500;

/** The target chains written beside the source tap (five taps in all). */
export const ANALYZE_CHAINS = ["identity", "alaw", "rate8k-16k", "chunks10-120ms"] as const;

/** Stages of the per-stage breakdown, in pipeline order. */
export const STAGES = [
  "read/parse",
  "decode",
  "resample",
  "sample ring",
  "fingerprint",
  "vad/onsets",
  "index",
  "verify",
  "align",
  "pipeline",
  "records",
  "actors",
  "gc",
  "start-up/other",
] as const;
/** One stage of {@link STAGES}. */
export type Stage = typeof STAGES[number];

/**
 * Which stage a source file belongs to (the first pattern that matches its path); the innermost frame in a
 * mapped file decides, and a frame in no mapped file (the engine's builtins, WebAssembly) counts for its caller.
 */
const STAGE_OF_FILE: [RegExp, Stage][] = [
  [
    /\/pixie\/(capture|capture_line_fast|replay|row|held_rows|line_arena|string_cell_simd)\.ts$/,
    "read/parse",
  ],
  [/\/cli\/(capture_run|capture_stream|packet_capture_files)\.ts$/, "read/parse"],
  [/\/packets\//, "read/parse"],
  [/\/audio\/decode\/resample\.ts$/, "resample"],
  // The lookback's tiers: writes, ageing to 8-bit and 4-bit codes, decoding them for verification and alignment
  // (counted under fingerprint before, which the streaming fingerprinter's kernel is only about half of).
  [/\/audio\/decode\/(sample_ring|adpcm4|adpcm4_format)\.ts$/, "sample ring"],
  [/\/audio\/decode\//, "decode"],
  [/\/util\/linear_regex\.ts$/, "decode"],
  [/\/actors\/(tap_intake|tap_message|row_dedupe|decode_reporter)\.ts$/, "decode"],
  [/\/audio\/fingerprint\/(fingerprint|fft|fft_simd|fft_simd32)\.ts$/, "fingerprint"],
  [/\/audio\/detect\//, "vad/onsets"],
  [/\/audio\/fingerprint\/signature\.ts$/, "index"],
  [/\/audio\/match\/signature_index\.ts$/, "index"],
  [/\/util\/wasm_encode\.ts$/, "index"],
  [/\/audio\/align\/rephase\.ts$/, "verify"],
  [/\/audio\/match\//, "verify"],
  [/\/audio\/align\//, "align"],
  // Capture-time gap hints, kept per stream as messages arrive (align/gap_hints.ts computes each).
  // The facade's own work: feeding decoded samples to the ring and fingerprinter, timing matches.
  [/\/audio\/pipeline\.ts$/, "pipeline"],
  [/\/(report|http)\//, "records"],
  [/\/actors\/exporter\.ts$/, "records"],
  [/\/actors\//, "actors"],
  [/\/bus\//, "actors"],
];

/** The stage of a file (exported for the test that keeps the map in step with the source tree). */
export function stageOfUrl(url: string): Stage | undefined {
  for (const [re, stage] of STAGE_OF_FILE) if (re.test(url)) return stage;
  return undefined;
}

/** What one analyze run cost. */
export interface AnalyzeRun {
  cpuS: number;
  wallS: number;
  maxRssMB: number;
  /** Lines of `--out` (signature and match records). */
  records: number;
}

/** The bench's figures. */
export interface AnalyzeSpeed {
  taps: number;
  streams: number;
  /** Audio seconds over all taps. */
  audioS: number;
  captureMB: number;
  run: AnalyzeRun;
  /** Audio seconds per CPU second, start-up included. */
  xRealTime: number;
  /** The same command on an empty capture (start-up and shutdown only). */
  emptyCpuS: number;
  /** Share of CPU per stage (sums to 1), from a `--cpu-prof` run; undefined if the profile could not be read. */
  stages?: Record<Stage, number>;
  /** Functions with the most self time, for the record. */
  hottest?: { fn: string; share: number }[];
  /** fpcalc on the taps' audio as WAV files: only audio it fingerprinted in full is counted. */
  fpcalc?: FpcalcSpeed;
}

const ROOT = new URL("../", import.meta.url).pathname;
const ROOT_URL = new URL("../", import.meta.url).href;

/** A source file's path in the repository (any checkout: a worktree's too), else the URL as it is. */
function shortUrl(url: string): string {
  return url.startsWith(ROOT_URL) ? url.slice(ROOT_URL.length) : url.replace(/^.*\/main\//, "");
}

/** Rows of a simulated tap as Pixie's http_events would hold them: one connection (remote port) per stream. */
function rowsOfStream(s: SimStream, node: string, query: string, port: number): Row[] {
  return s.messages.map((m) => ({
    query,
    node,
    time: m.timeNs,
    columns: { time_: m.timeNs, pod: s.pod, remote_addr: "10.1.0.7", remote_port: port, req_body: m.payload },
  }));
}

function stageOf(chain: Chain): string {
  return chain.name.toLowerCase().replace(/[^a-z0-9_]+/g, "_");
}

/** The config of the bench captures: one measurement, the source tap and one stage per chain. */
function benchConfig(chains: readonly Chain[]): string {
  const tap = (c: Chain) => {
    const env = c.envelope === "twilio"
      ? `envelope: json, path: media.payload, encoding: base64`
      : c.envelope === "data"
      ? `envelope: json, path: data, encoding: base64`
      : `envelope: raw, encoding: binary`;
    return `{ ${env}, codec: ${c.codec}, sample_rate: ${c.sampleRate} }`;
  };
  const lines = [
    "log_level: warn",
    "node: bench",
    "metrics: { listen: 127.0.0.1:0 }",
    "measurements:",
    "  - name: bench",
    "    signature_rules:",
    "      stream_filter: \"df = px.DataFrame(table='http_events')\"",
    "      stream_key: [pod, remote_addr, remote_port]",
    `      audio: { envelope: json, path: media.payload, encoding: base64, codec: mulaw, sample_rate: 8000 }`,
    "    match_rules:",
  ];
  for (const c of chains) {
    lines.push(
      `      - stage: ${stageOf(c)}`,
      "        stream_filter: \"df = px.DataFrame(table='http_events')\"",
      "        stream_key: [pod, remote_addr, remote_port]",
      `        audio: ${tap(c)}`,
    );
  }
  return lines.join("\n") + "\n";
}

async function writeCapture(path: string, node: string, rows: Row[]): Promise<number> {
  rows.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  const f = await Deno.open(path, { write: true, create: true, truncate: true });
  const enc = new TextEncoder();
  let bytes = 0;
  try {
    let buf: string[] = [encodeCaptureHeader(node)];
    const flush = async () => {
      const b = enc.encode(buf.join("\n") + "\n");
      bytes += b.length;
      for (let off = 0; off < b.length;) off += await f.write(b.subarray(off));
      buf = [];
    };
    for (const r of rows) {
      buf.push(encodeCaptureLine(r));
      if (buf.length >= 2000) await flush();
    }
    await flush();
  } finally {
    f.close();
  }
  return bytes;
}

/** Writes the bench captures (and WAVs for fpcalc) under `dir`. */
export async function writeBenchCaptures(
  corpus: Corpus,
  dir: string,
): Promise<
  { files: string[]; config: string; audioS: number; streams: number; bytes: number; wavs: string[] }
> {
  const chains = ANALYZE_CHAINS.map((n) => {
    const c = BENCH_CHAINS.find((x) => x.name === n);
    if (!c) throw new Error(`no bench chain ${n}`);
    return c;
  });
  await Deno.mkdir(dir, { recursive: true });
  const config = `${dir}/config.yaml`;
  await Deno.writeTextFile(config, benchConfig(chains));
  let audioS = 0;
  let streams = 0;
  const wavs: string[] = [];
  const source: Row[] = [];
  for (const c of corpus.calls) {
    source.push(...rowsOfStream(c.source, "node-a", "bench/source", 20000 + streams));
    audioS += c.audio.length / 8000;
    streams++;
    const path = `${dir}/source-${streams}.wav`;
    await Deno.writeFile(path, encodeWav({ samples: c.audio, sampleRate: 8000 }));
    wavs.push(path);
  }
  const targets: Row[] = [];
  for (const chain of chains) {
    const cs = await buildChainStreams(corpus, chain);
    for (const s of cs.positives) {
      targets.push(...rowsOfStream(s, "node-b", `bench/${stageOf(chain)}`, 20000 + streams));
      const seconds = s.messages.reduce((a, m) => a + (m.endS - m.startS), 0);
      audioS += seconds;
      streams++;
      // fpcalc gets the tap's audio as the tap carries it, decoded to 16-bit PCM at its own rate.
      const pcm = concatPayloads(s, chain);
      if (pcm) {
        const path = `${dir}/${stageOf(chain)}-${streams}.wav`;
        await Deno.writeFile(path, encodeWav({ samples: pcm, sampleRate: chain.sampleRate }));
        wavs.push(path);
      }
    }
  }
  const bytes = await writeCapture(`${dir}/node-a.jsonl`, "node-a", source) +
    await writeCapture(`${dir}/node-b.jsonl`, "node-b", targets);
  const written = {
    files: [`${dir}/node-a.jsonl`, `${dir}/node-b.jsonl`],
    config,
    audioS,
    streams,
    bytes,
    wavs,
  };
  await Deno.writeTextFile(`${dir}/bench.json`, JSON.stringify(written));
  return written;
}

type Written = Awaited<ReturnType<typeof writeBenchCaptures>>;

/** The decoded audio of a simulated tap's messages (fpcalc's input), or undefined for float formats. */
function concatPayloads(s: SimStream, chain: Chain): Float32Array | undefined {
  const parts: Float32Array[] = [];
  for (const m of s.messages) {
    let bytes = m.payload;
    if (chain.envelope !== "raw") {
      const obj = JSON.parse(new TextDecoder().decode(bytes)) as {
        media?: { payload?: string };
        data?: string;
      };
      const b64 = obj.media?.payload ?? obj.data ?? "";
      bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
    }
    try {
      parts.push(decodeSamples(bytes, chain.codec));
    } catch {
      return undefined;
    }
  }
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Runs a command under `/usr/bin/time`; CPU seconds (user + system), wall seconds and peak RSS. */
export async function timed(
  cmd: string[],
  opts: { cwd?: string } = {},
): Promise<AnalyzeRun & { ok: boolean }> {
  const tf = await Deno.makeTempFile({ suffix: ".time" });
  const w0 = performance.now();
  const out = await new Deno.Command("/usr/bin/time", {
    args: ["-o", tf, "-f", "%U %S %M", ...cmd],
    cwd: opts.cwd,
    stdout: "null",
    stderr: "piped",
  }).output();
  const wallS = (performance.now() - w0) / 1000;
  const t = (await Deno.readTextFile(tf)).trim().split("\n").pop()!.split(" ").map(Number);
  await Deno.remove(tf);
  if (!out.success) console.error(new TextDecoder().decode(out.stderr).slice(-2000));
  return { ok: out.success, cpuS: t[0]! + t[1]!, wallS, maxRssMB: (t[2]! * 1024) / 1e6, records: 0 };
}

async function lineCount(path: string): Promise<number> {
  const text = await Deno.readTextFile(path);
  return text.split("\n").filter((l) => l !== "").length;
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/** Shares of CPU by stage (and the hottest functions) from a V8 `.cpuprofile`. */
export function profileStages(profile: {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}): { stages: Record<Stage, number>; hottest: { fn: string; share: number }[] } {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const stageCache = new Map<number, Stage>();
  const stageOfNode = (id: number): Stage => {
    const cached = stageCache.get(id);
    if (cached) return cached;
    const n = byId.get(id)!;
    const name = n.callFrame.functionName;
    let s: Stage | undefined;
    if (name === "(garbage collector)") s = "gc";
    else if (name === "(program)" || name === "(idle)") s = "start-up/other";
    else s = stageOfUrl(n.callFrame.url);
    if (!s) {
      const p = parent.get(id);
      s = p === undefined ? "start-up/other" : stageOfNode(p);
    }
    stageCache.set(id, s);
    return s;
  };
  const time = Object.fromEntries(STAGES.map((s) => [s, 0])) as Record<Stage, number>;
  const self = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    const dt = profile.timeDeltas[i] ?? 0;
    const n = byId.get(id)!;
    if (n.callFrame.functionName === "(idle)") continue;
    time[stageOfNode(id)] += dt;
    const fn = `${n.callFrame.functionName || "(anonymous)"} ${shortUrl(n.callFrame.url)}:${
      n.callFrame.lineNumber + 1
    }`;
    self.set(fn, (self.get(fn) ?? 0) + dt);
    total += dt;
  }
  for (const s of STAGES) time[s] = total > 0 ? time[s] / total : 0;
  const hottest = [...self].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([fn, t]) => ({
    fn,
    share: t / total,
  }));
  return { stages: time, hottest };
}

/** Runs the analyze bench. */
export async function analyzeSpeed(opts: {
  quick: boolean;
  seed: number;
  soundsDir?: string;
  cacheDir?: string;
  keepDir?: string;
  /** Reuse the captures already in `keepDir` (to compare two builds on the very same files). */
  reuse?: boolean;
  corpus?: Corpus;
  profile?: boolean;
}): Promise<AnalyzeSpeed> {
  const dir = opts.keepDir ?? await Deno.makeTempDir({ prefix: "fsmpx-analyze-bench-" });
  try {
    let caps: Written;
    if (opts.reuse && opts.keepDir) {
      caps = JSON.parse(await Deno.readTextFile(`${dir}/bench.json`)) as Written;
    } else {
      if (opts.keepDir) await Deno.remove(dir, { recursive: true }).catch(() => {});
      const corpus = opts.corpus ??
        await buildCorpus({
          seed: opts.seed,
          quick: opts.quick,
          soundsDir: opts.soundsDir,
          cacheDir: opts.cacheDir,
        });
      caps = await writeBenchCaptures(corpus, dir);
    }
    const deno = Deno.execPath();
    const main = `${ROOT}main.ts`;
    const out = `${dir}/out.jsonl`;
    // As `deno task analyze` runs it: that task's V8 flags.
    const flags = v8FlagsArgs(taskV8Flags(await Deno.readTextFile(`${ROOT}deno.json`), "analyze"));
    const analyzeArgs = (
      ...rest: string[]
    ) => ["run", "-A", ...flags, main, "analyze", "--config", caps.config, ...rest];
    const args = analyzeArgs("--out", out, ...caps.files);
    // One warm-up so module compilation (cached by Deno) is not charged to the first measured run.
    await timed([deno, ...args]);
    const run = await timed([deno, ...args]);
    if (!run.ok) throw new Error("analyze failed");
    run.records = await lineCount(out);
    const empty = `${dir}/empty.jsonl`;
    await Deno.writeTextFile(empty, encodeCaptureHeader("node-a") + "\n");
    const emptyRun = await timed([deno, ...analyzeArgs(empty)]);
    const result: AnalyzeSpeed = {
      taps: 1 + ANALYZE_CHAINS.length,
      streams: caps.streams,
      audioS: caps.audioS,
      captureMB: caps.bytes / 1e6,
      run,
      xRealTime: caps.audioS / run.cpuS,
      emptyCpuS: emptyRun.cpuS,
    };
    if (opts.profile !== false) {
      const profDir = `${dir}/prof`;
      await Deno.remove(profDir, { recursive: true }).catch(() => {});
      await Deno.mkdir(profDir, { recursive: true });
      const p = await new Deno.Command(deno, {
        args: ["run", "-A", "--cpu-prof", `--cpu-prof-dir=${profDir}`, ...args.slice(2)],
        stdout: "null",
        stderr: "null",
      }).output();
      if (p.success) {
        for await (const e of Deno.readDir(profDir)) {
          if (!e.name.endsWith(".cpuprofile")) continue;
          const prof = JSON.parse(await Deno.readTextFile(`${profDir}/${e.name}`));
          Object.assign(result, profileStages(prof));
        }
      }
    }
    if (await hasFpcalc()) {
      // fpcalc fingerprints each whole file (-length 0) at its 124 ms resolution, 50 files per process.
      result.fpcalc = await fpcalcSpeed(caps.wavs);
    }
    return result;
  } finally {
    if (!opts.keepDir) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** The bench's printout. */
export function printAnalyzeSpeed(r: AnalyzeSpeed): void {
  const n = (x: number, d = 0) => x.toFixed(d);
  console.log(
    `  analyze end to end: ${n(r.xRealTime)}x real time per CPU second (target >= 1,500x) over ` +
      `${n(r.audioS / 60, 1)} min of audio in ${r.taps} taps (${r.streams} streams, ${
        n(r.captureMB, 1)
      } MB of ` +
      `capture): ${n(r.run.cpuS, 2)} CPU s, ${n(r.run.wallS, 2)} s wall, peak RSS ${n(r.run.maxRssMB)} MB, ` +
      `${r.run.records} records; an empty capture costs ${n(r.emptyCpuS, 2)} CPU s`,
  );
  console.log(
    `    target (issue 16): >= ${
      ANALYZE_TARGET_X.toLocaleString("en-US")
    }x real time per CPU second; measured ${n(r.xRealTime)}x: ${
      r.xRealTime >= ANALYZE_TARGET_X ? "met" : "not met"
    }`,
  );
  if (r.stages) {
    console.log(
      "    CPU by stage: " +
        STAGES.filter((s) => r.stages![s] >= 0.005).map((s) => `${s} ${n(100 * r.stages![s])}%`).join(", "),
    );
  }
  if (r.fpcalc) {
    console.log(
      `  fpcalc (Chromaprint, 124 ms resolution) on the same audio: ${
        n(r.fpcalc.xRealTime)
      }x real time per ` +
        `CPU second (${r.fpcalc.files} files, ${n(r.fpcalc.audioS / 60, 1)} min fingerprinted in full, ${
          n(r.fpcalc.cpuS, 2)
        } CPU s)`,
    );
  } else console.log("  fpcalc: not installed (Debian libchromaprint-tools)");
}

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  const si = Deno.args.indexOf("--seed");
  const ki = Deno.args.indexOf("--keep");
  const r = await analyzeSpeed({
    quick,
    seed: si >= 0 ? Number(Deno.args[si + 1]) : 1,
    cacheDir: ".bench-cache",
    keepDir: ki >= 0 ? Deno.args[ki + 1] : undefined,
    reuse: Deno.args.includes("--reuse"),
  });
  printAnalyzeSpeed(r);
  if (r.hottest) {
    console.log("    hottest functions (self time):");
    for (const h of r.hottest) console.log(`      ${(100 * h.share).toFixed(1)}%  ${h.fn}`);
  }
}
