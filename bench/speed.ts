/**
 * Speed and memory of the engine: the detector's and the matcher's throughput in x real time per core at 8 kHz
 * (the matcher with 10,000 active signatures), and memory per 1,000 target streams. Throughput is audio seconds
 * over process CPU seconds (user + system) of a single-threaded run, so it does not depend on what else the
 * machine is doing; wall-clock figures are printed alongside.
 *
 * Run as a module by bench/main.ts; run as a program (`speed.ts memory ...`) it is the memory probe, started in
 * a fresh process with `--expose-gc` so the measurement sees only the streams it creates.
 * @module
 */

import { initAudioEngine, SignatureIndex, SourcePipeline, TargetPipeline } from "../audio/pipeline.ts";
import { decodeSignature, encodeSignature } from "../audio/fingerprint/signature.ts";
import type { AudioCriteria, Signature } from "../audio/types.ts";
import { formatOf, SOURCE_CHAIN } from "../fixtures/gen/chains.ts";
import { type SimMessage, simulateStream } from "../fixtures/gen/pipeline_sim.ts";
import { Rng } from "../fixtures/gen/prng.ts";
import { applyEffects } from "../fixtures/gen/sox.ts";
import { CALL_RATE, composeCall, loadPrompts } from "../fixtures/gen/speech.ts";
import { BENCH_CRITERIA, benchSource, cpuSeconds, MEASUREMENT } from "./accuracy.ts";
import { buildCorpus, type Corpus, CORPUS_T0_NS } from "./corpus.ts";

/** Active signatures in the matcher benchmark's index. */
export const ACTIVE_SIGNATURES = 10_000;
/** Issue 16's target for the matcher with ACTIVE_SIGNATURES active signatures on non-matching audio, x real time. */
export const MATCHER_TARGET_X = 3000;

/** Detector throughput. */
export interface DetectorSpeed {
  audioS: number;
  cpuS: number;
  wallS: number;
  signatures: number;
  /** Audio seconds per CPU second. */
  xRealTime: number;
  xRealTimeWall: number;
}

/** Matcher throughput with a full index. */
export interface MatcherSpeed {
  activeSignatures: number;
  streams: number;
  audioS: number;
  cpuS: number;
  wallS: number;
  xRealTime: number;
  xRealTimeWall: number;
  /** Matches found against the background signatures (none expected: they come from other speech). */
  matches: number;
  /** Cost of searching one arriving signature in one stream's lookback, µs (CPU). */
  searchSignatureUs: number;
  /**
   * CPU seconds of the same messages through the same pipelines with an empty index (decode and fingerprint
   * only, no lookups): what the matcher stage adds is cpuS minus this.
   */
  bareCpuS: number;
  /** The matcher stage alone (lookups, votes, checks): audioS / (cpuS − bareCpuS). */
  stageXRealTime: number;
  /**
   * The same pass again on fresh pipelines and a fresh index, after the first pass compiled the code (V8's JIT
   * tiers up while the first pass runs, and that CPU counts there): a long-running sensor's steady state. The
   * figures above are the first pass's, warm-up included.
   */
  warm: MatcherPass;
}

/** One pass of the matcher load: CPU with the full index, and with an empty one over the same messages. */
export interface MatcherPass {
  audioS: number;
  cpuS: number;
  xRealTime: number;
  bareCpuS: number;
  stageXRealTime: number;
}

/** Memory of target streams. */
export interface MemoryUse {
  streams: number;
  secondsPerStream: number;
  /** V8 heap used + external (ArrayBuffers) growth, MB, scaled to 1,000 streams. */
  perThousandMB: number;
  /** The two parts of it: JS objects (V8 heap) and typed-array storage (external), MB per 1,000 streams. */
  heapPerThousandMB?: number;
  externalPerThousandMB?: number;
  rssPerThousandMB: number;
  /** Memory of the 10,000-signature index itself, MB. */
  indexMB: number;
  /** Mean bytes per stream of each part a target pipeline holds (TargetPipeline.memoryBreakdown). */
  partsPerStream?: Record<string, number>;
}

/** Runs SourcePipelines over every call's source tap, timing CPU and wall clock. */
export function measureDetector(corpus: Corpus, criteria: AudioCriteria = BENCH_CRITERIA): DetectorSpeed {
  const w0 = performance.now();
  const c0 = cpuSeconds();
  let signatures = 0;
  let audioS = 0;
  for (const c of corpus.calls) {
    const sp = benchSource(c.source.stream, criteria);
    for (const m of c.source.messages) signatures += sp.push({ timeNs: m.timeNs, payload: m.payload }).length;
    signatures += sp.finish().length;
    audioS += c.call.samples.length / CALL_RATE;
  }
  const cpuS = cpuSeconds() - c0;
  const wallS = (performance.now() - w0) / 1000;
  return { audioS, cpuS, wallS, signatures, xRealTime: audioS / cpuS, xRealTimeWall: audioS / wallS };
}

function readRecords(bytes: Uint8Array): Signature[] {
  const out: Signature[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 0; at + 2 <= bytes.length;) {
    const n = view.getUint16(at, true);
    out.push(decodeSignature(bytes.subarray(at + 2, at + 2 + n)));
    at += 2 + n;
  }
  return out;
}

function writeRecords(sigs: readonly Signature[]): Uint8Array {
  const parts = sigs.map((s) => encodeSignature(s));
  const out = new Uint8Array(parts.reduce((a, p) => a + 2 + p.length, 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const p of parts) {
    view.setUint16(at, p.length, true);
    out.set(p, at + 2);
    at += 2 + p.length;
  }
  return out;
}

async function engineHash(): Promise<string> {
  // Background signatures depend on the engine's fingerprint; key the cache on its sources.
  const root = new URL("../audio/", import.meta.url);
  const names: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for await (const e of Deno.readDir(new URL(dir, root))) {
      if (e.isDirectory) await walk(`${dir}${e.name}/`);
      else if (e.isFile && e.name.endsWith(".ts")) names.push(`${dir}${e.name}`);
    }
  };
  await walk("");
  names.sort();
  let all = "";
  for (const n of names) all += `${n}\n${await Deno.readTextFile(new URL(n, root))}\n`;
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(all)));
  return Array.from(d.subarray(0, 8)).map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Transformations that turn the prompts into other speech-like audio for the background signatures. */
const BACKGROUND_VARIANTS: readonly string[][] = [
  ["reverse"],
  ["reverse", "pitch", "400"],
  ["reverse", "pitch", "-400"],
  ["reverse", "pitch", "700"],
  ["reverse", "pitch", "-700"],
];

/**
 * `count` signatures from other speech-like audio: every prompt time-reversed (and pitch-shifted for more), so the
 * fingerprints have the statistics of real speech from the same speaker and channel (the same bucket load in the
 * index, the same near misses) but none of them is the audio being matched. Pitch shifts alone are not enough:
 * the engine still matches some 4-semitone shifted copies at BER 0.27-0.31. Cut with dense re-anchoring; cached
 * per engine version under `cacheDir`.
 */
export async function backgroundSignatures(
  count: number,
  soundsDir: string | undefined,
  cacheDir: string | undefined,
): Promise<Signature[]> {
  const variantsKey = BACKGROUND_VARIANTS.map((v) => v.join("_")).join("+");
  const path = cacheDir
    ? `${cacheDir}/background-${await engineHash()}-${count}-${variantsKey.replace(/[^a-z0-9_+-]/gi, "")}.bin`
    : undefined;
  if (path) {
    try {
      return readRecords(await Deno.readFile(path));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  const prompts = await loadPrompts(soundsDir);
  const rng = new Rng(7001);
  const base = composeCall("background", rng.shuffle(prompts), rng.fork("compose"), {
    pauseMinS: 0.3,
    pauseMaxS: 0.8,
  });
  const sigs: Signature[] = [];
  const sox = { cacheDir: cacheDir ? `${cacheDir}/sox` : undefined };
  for (const effects of BACKGROUND_VARIANTS) {
    if (sigs.length >= count) break;
    const name = `bg-${effects.join("-")}`;
    const shifted = await applyEffects({ sampleRate: CALL_RATE, samples: base.samples }, effects, sox);
    const sim = simulateStream(shifted, SOURCE_CHAIN, {
      stream: name,
      pod: "voice/background-0",
      callStartNs: CORPUS_T0_NS,
      delayMs: 0,
      jitterMs: 0,
      rng: rng.fork(name),
    });
    const sp = new SourcePipeline({
      measurement: MEASUREMENT,
      node: "node-bg",
      pod: sim.pod,
      stream: sim.stream,
      format: formatOf(SOURCE_CHAIN),
      criteria: { ...BENCH_CRITERIA, reanchor_ms: 250, min_silence_ms: 100 },
    });
    for (const m of sim.messages) {
      sigs.push(...sp.push({ timeNs: m.timeNs, payload: m.payload }));
      if (sigs.length >= count) break;
    }
    if (sigs.length < count) sigs.push(...sp.finish());
  }
  if (sigs.length < count) {
    throw new Error(`only ${sigs.length} background signatures from transformed speech; need ${count}`);
  }
  const out = sigs.slice(0, count);
  if (path) {
    await Deno.mkdir(cacheDir!, { recursive: true });
    const tmp = `${path}.${crypto.randomUUID()}.tmp`;
    await Deno.writeFile(tmp, writeRecords(out));
    await Deno.rename(tmp, path);
  }
  return out;
}

/**
 * Places background signatures at random source times within `[fromNs, toNs]` with fresh ids, so that an engine
 * that filters candidates by time (a target cannot precede its source) sees them as live.
 */
export function spreadSignatures(
  sigs: readonly Signature[],
  fromNs: bigint,
  toNs: bigint,
  seed: number,
): Signature[] {
  const rng = new Rng(seed);
  const span = Number(toNs - fromNs);
  return sigs.map((s, i) => ({
    ...s,
    id: (i + 1).toString(16).padStart(8, "0") + rng.int(0, 0xffffffff).toString(16).padStart(8, "0"),
    source: { ...s.source, timeNs: fromNs + BigInt(Math.floor(rng.next() * span)) },
  }));
}

/**
 * Feeds the calls' 8 kHz μ-law streams, interleaved in capture order as a node receives them, into
 * TargetPipelines against `ACTIVE_SIGNATURES` active signatures, until the audio ends or `budgetCpuS` CPU seconds
 * are spent (so a slow engine does not stall the run; the figure is a rate either way).
 */
export function measureMatcher(
  corpus: Corpus,
  background: readonly Signature[],
  budgetCpuS: number,
): MatcherSpeed {
  const streams = corpus.calls.map((c) => c.source);
  let endNs = CORPUS_T0_NS;
  for (const s of streams) {
    const last = s.messages[s.messages.length - 1];
    if (last && last.timeNs > endNs) endNs = last.timeNs;
  }
  const live = spreadSignatures(background, CORPUS_T0_NS - 30_000_000_000n, endNs, 11);
  const order: { stream: number; m: SimMessage }[] = [];
  streams.forEach((s, i) => {
    for (const m of s.messages) order.push({ stream: i, m });
  });
  order.sort((a, b) => (a.m.timeNs < b.m.timeNs ? -1 : a.m.timeNs > b.m.timeNs ? 1 : 0));
  const format = formatOf(SOURCE_CHAIN);
  const targetPipelines = (index: SignatureIndex) =>
    streams.map((s) =>
      new TargetPipeline({
        measurement: MEASUREMENT,
        stage: "speed",
        node: "node-b",
        pod: "voice/speed-0",
        stream: s.stream,
        format,
        index,
      })
    );

  /**
   * Feeds the messages (until `budgetCpuS`) to pipelines against a fresh index of the live signatures, then the
   * same messages to pipelines with an empty index (decode and fingerprint, which the matcher stage does not
   * control: audio/decode, audio/fingerprint), so that the stage's own cost shows.
   */
  const pass = () => {
    const index = new SignatureIndex({ maxActive: background.length + 1 });
    for (const s of live) index.add(s);
    const pipelines = targetPipelines(index);
    let matches = 0;
    let audioS = 0;
    let fed = 0;
    const w0 = performance.now();
    const c0 = cpuSeconds();
    for (; fed < order.length; fed++) {
      const { stream, m } = order[fed]!;
      matches += pipelines[stream]!.push({ timeNs: m.timeNs, payload: m.payload }).length;
      audioS += m.endS - m.startS;
      if (fed % 1000 === 999 && cpuSeconds() - c0 > budgetCpuS) {
        fed++;
        break;
      }
    }
    const cpuS = cpuSeconds() - c0;
    const wallS = (performance.now() - w0) / 1000;
    const bare = targetPipelines(new SignatureIndex({ maxActive: 1 }));
    const b0 = cpuSeconds();
    for (let i = 0; i < fed; i++) {
      const { stream, m } = order[i]!;
      bare[stream]!.push({ timeNs: m.timeNs, payload: m.payload });
    }
    const bareCpuS = cpuSeconds() - b0;
    const figures: MatcherPass = {
      audioS,
      cpuS,
      xRealTime: audioS / cpuS,
      bareCpuS,
      stageXRealTime: audioS / Math.max(1e-9, cpuS - bareCpuS),
    };
    return { figures, pipelines, matches, wallS, active: index.size };
  };
  const cold = pass();
  // A false match of the second pass is one of the first's (the same audio and signatures): counted once.
  const warm = pass().figures;

  // Backward search: arriving signatures against each stream's lookback (the streams are finished, but their
  // lookback is what a late signature would be searched in).
  const pipelines = cold.pipelines;
  let matches = cold.matches;
  const probes = live.slice(0, Math.min(200, live.length));
  const p0 = cpuSeconds();
  for (const sig of probes) for (const tp of pipelines) matches += tp.searchSignature(sig).length;
  const searchSignatureUs = ((cpuSeconds() - p0) / (probes.length * pipelines.length)) * 1e6;
  return {
    ...cold.figures,
    activeSignatures: cold.active,
    streams: streams.length,
    wallS: cold.wallS,
    xRealTimeWall: cold.figures.audioS / cold.wallS,
    matches,
    searchSignatureUs,
    warm,
  };
}

/** The matcher's figures against issue 16's target, as lines for the bench's output. */
export function matcherTargetLines(m: MatcherSpeed): string[] {
  const x = (v: number) => Math.round(v).toLocaleString("en");
  const met = (v: number) => (v >= MATCHER_TARGET_X ? "met" : "not met");
  const w = m.warm;
  const steady = `target pipeline (decode, fingerprint, match) ${x(w.xRealTime)}x, ${met(w.xRealTime)}; ` +
    `matcher stage alone (lookups, votes, checks) ${x(w.stageXRealTime)}x, ${met(w.stageXRealTime)} ` +
    `(the pipeline minus the same audio against an empty index, which runs at ${x(w.audioS / w.bareCpuS)}x)`;
  return [
    `  matcher target (issue 16): >= ${x(MATCHER_TARGET_X)}x per core with ${x(m.activeSignatures)} active ` +
    `signatures on non-matching audio`,
    `    measured, steady state (a second pass on fresh pipelines and index, the code compiled): ${steady}`,
    `    first pass (JIT warm-up included): target pipeline ${x(m.xRealTime)}x; matcher stage alone ` +
    `${x(m.stageXRealTime)}x`,
  ];
}

/** Measures memory of `streams` target pipelines in a fresh process (see the module doc). */
export async function measureMemory(
  streams: number,
  secondsPerStream: number,
  opts: { seed: number; soundsDir?: string; cacheDir?: string },
): Promise<MemoryUse> {
  const args = [
    "run",
    "--allow-all",
    "--v8-flags=--expose-gc",
    new URL(import.meta.url).pathname,
    "memory",
    JSON.stringify({ streams, secondsPerStream, ...opts }),
  ];
  const out = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "inherit" }).output();
  if (!out.success) throw new Error(`memory probe failed with exit code ${out.code}`);
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]!) as MemoryUse;
}

function heapNow(): { heap: number; js: number; external: number; rss: number } {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
  const m = Deno.memoryUsage();
  return { heap: m.heapUsed + m.external, js: m.heapUsed, external: m.external, rss: m.rss };
}

function rebase(messages: readonly SimMessage[], from: number, count: number, startNs: bigint): SimMessage[] {
  const out: SimMessage[] = [];
  const first = messages[from];
  if (!first) return out;
  for (let i = from; i < from + count && i < messages.length; i++) {
    const m = messages[i]!;
    out.push({ ...m, timeNs: startNs + (m.timeNs - first.timeNs) });
  }
  return out;
}

async function memoryProbe(opts: {
  streams: number;
  secondsPerStream: number;
  seed: number;
  soundsDir?: string;
  cacheDir?: string;
}): Promise<MemoryUse> {
  await initAudioEngine();
  const corpus = await buildCorpus({ seed: opts.seed, quick: true, soundsDir: opts.soundsDir });
  const perStream = Math.round((opts.secondsPerStream * 1000) / 20);
  const sources = corpus.calls.map((c) => c.source.messages);
  const m0 = heapNow();
  // The decoded background signatures are dropped once indexed and collected before m1: were they collected
  // between m1 and m2 instead, the streams' growth would be understated by their ~30 MB, times 1,000 / streams.
  let background: Signature[] | undefined = await backgroundSignatures(
    ACTIVE_SIGNATURES,
    opts.soundsDir,
    opts.cacheDir,
  );
  const index = new SignatureIndex({ maxActive: background.length + 1 });
  for (
    const s of spreadSignatures(background, CORPUS_T0_NS - 30_000_000_000n, CORPUS_T0_NS + 60_000_000_000n, 3)
  ) {
    index.add(s);
  }
  background = undefined;
  const m1 = heapNow();
  const keep: TargetPipeline[] = [];
  const rng = new Rng(opts.seed);
  for (let i = 0; i < opts.streams; i++) {
    const src = sources[i % sources.length]!;
    const from = rng.int(0, Math.max(0, src.length - perStream));
    const tp = new TargetPipeline({
      measurement: MEASUREMENT,
      stage: "memory",
      node: "node-b",
      pod: "voice/memory-0",
      stream: `mem${i}`,
      format: formatOf(SOURCE_CHAIN),
      index,
    });
    for (const m of rebase(src, from, perStream, CORPUS_T0_NS)) {
      tp.push({ timeNs: m.timeNs, payload: m.payload });
    }
    keep.push(tp);
  }
  const m2 = heapNow();
  // The corpus fed the streams and stays referenced up to here, for the same reason as above.
  if (sources.length === 0) throw new Error("memory probe: empty corpus");
  const partsPerStream: Record<string, number> = {};
  for (const tp of keep) {
    for (const [k, v] of Object.entries(tp.memoryBreakdown())) {
      partsPerStream[k] = (partsPerStream[k] ?? 0) + v / keep.length;
    }
  }
  const scale = 1000 / opts.streams;
  const result: MemoryUse = {
    streams: keep.length,
    secondsPerStream: opts.secondsPerStream,
    perThousandMB: ((m2.heap - m1.heap) * scale) / 1e6,
    heapPerThousandMB: ((m2.js - m1.js) * scale) / 1e6,
    externalPerThousandMB: ((m2.external - m1.external) * scale) / 1e6,
    rssPerThousandMB: ((m2.rss - m1.rss) * scale) / 1e6,
    indexMB: (m1.heap - m0.heap) / 1e6,
    partsPerStream,
  };
  return result;
}

/** One line for a memory probe's result, as `deno task bench` prints it. */
export function describeMemory(m: MemoryUse): string {
  const num = (x: number) => Number.isFinite(x) ? x.toFixed(0) : "?";
  return `memory:   ${num(m.perThousandMB)} MB per 1,000 target streams (target <= 250 MB; V8 heap ` +
    `${num(m.heapPerThousandMB ?? NaN)} + external ${num(m.externalPerThousandMB ?? NaN)}; RSS ` +
    `${num(m.rssPerThousandMB)} MB), measured on ${m.streams} streams fed ${m.secondsPerStream} s each` +
    `${m.streams < 1000 ? " and scaled" : ""}; the ${ACTIVE_SIGNATURES}-signature index: ${
      num(m.indexMB)
    } MB`;
}

/** The bytes per stream of each part of a target pipeline, from a memory probe's result. */
export function describeParts(m: MemoryUse): string {
  return Object.entries(m.partsPerStream ?? {}).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} KB`).join(
    ", ",
  );
}

if (import.meta.main && Deno.args[0] === "memory") {
  const result = await memoryProbe(JSON.parse(Deno.args[1] ?? "{}"));
  console.log(JSON.stringify(result));
}
