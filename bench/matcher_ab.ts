/**
 * The matcher of two checkouts side by side in one process, for changes that must keep results identical and
 * make them faster (issue 16) on a machine whose load varies: both run the same audio in alternating chunks, so
 * load changes hit both alike. Two figures, each with its results compared:
 * - the bench's matcher load (bench/speed.ts measureMatcher: 16 streams of the bench corpus against 10,000
 *   background signatures, no true matches): x real time per core of the target pipeline, and of the matcher
 *   stage alone (the pipeline minus the same audio against an empty index, and timed inside
 *   TargetMatcher.onFrames, which is less noisy on a loaded machine); the matcher's counters must agree;
 * - CPU per match on audio with matches (bench/fingerprint_speed.ts's "same speaker, unshifted"): verification
 *   with the near-miss re-scoring, and fine alignment, timed inside those calls; the matches must agree.
 *
 * `deno run --allow-all bench/matcher_ab.ts BEFORE_DIR [AFTER_DIR] [--passes N] [--seconds S]`; a checkout made
 * with `git worktree add BEFORE_DIR <commit>` needs the dependencies: `ln -s "$PWD/node_modules" BEFORE_DIR/`.
 * @module
 */

import { buildCorpus, CORPUS_T0_NS } from "./corpus.ts";
import { cpuSeconds, MEASUREMENT } from "./accuracy.ts";
import { ACTIVE_SIGNATURES, backgroundSignatures, spreadSignatures } from "./speed.ts";
import { FORMAT, type Inside, messages, signaturesFrom, speech, timeInside } from "./fingerprint_speed.ts";
import { formatOf, SOURCE_CHAIN } from "../fixtures/gen/chains.ts";
import type { Signature } from "../audio/types.ts";
import { initAudioEngine } from "../audio/pipeline.ts";

/** What the A/B benches use of a checkout's audio engine (its own module instances). */
export interface Engine {
  name: string;
  // deno-lint-ignore no-explicit-any
  pipeline: any;
  proto: { verify: object; rephase: object; align: object; matcher: object };
}

/** CPU timers inside one engine's verification, near-miss re-scoring and fine alignment. */
export interface MatchCostTimers {
  verify: Inside;
  rephase: Inside;
  align: Inside;
  restore(): void;
}

/** Starts timing `e`'s per-match stages (until `restore`). */
export function timeMatchCost(e: Engine): MatchCostTimers {
  const verify = timeInside(e.proto.verify, "verify");
  const rephase = timeInside(e.proto.rephase, "run");
  const align = timeInside(e.proto.align, "align");
  return { verify, rephase, align, restore: () => [verify, rephase, align].forEach((t) => t.restore()) };
}

/** Loads the audio engine of the checkout in `dir` (module instances of its own). */
export async function engine(name: string, dir: string): Promise<Engine> {
  const root = new URL(`${dir.replace(/\/$/, "")}/`, `file://${Deno.cwd()}/`);
  const pipeline = await import(new URL("audio/pipeline.ts", root).href);
  const verify = await import(new URL("audio/match/verify.ts", root).href);
  const rephase = await import(new URL("audio/align/rephase.ts", root).href);
  const align = await import(new URL("audio/align/align.ts", root).href);
  const matcher = await import(new URL("audio/match/target_matcher.ts", root).href);
  await pipeline.initAudioEngine();
  return {
    name,
    pipeline,
    proto: {
      verify: verify.Verifier.prototype,
      rephase: rephase.Rephaser.prototype,
      align: align.FineAligner.prototype,
      matcher: matcher.TargetMatcher.prototype,
    },
  };
}

interface Message {
  timeNs: bigint;
  payload: Uint8Array;
}

/** A set of target pipelines of one engine over one index, fed in chunks, with the CPU they took. */
class Feed {
  readonly pipelines: {
    push(m: Message): { signatureId: string; target: { timeNs: bigint; offsetMs: number }; ber: number }[];
  }[];
  cpuS = 0;
  readonly found: string[] = [];
  /** Timer of TargetMatcher.onFrames (every feed's calls), and the CPU it counted in this feed's runs. */
  inside?: Inside;
  insideCpuS = 0;

  constructor(e: Engine, index: unknown, streams: string[], format: unknown) {
    this.pipelines = streams.map((stream) =>
      new e.pipeline.TargetPipeline({
        measurement: MEASUREMENT,
        stage: "ab",
        node: "node-b",
        pod: "voice/ab-0",
        stream,
        format,
        index,
      })
    );
  }

  run(order: readonly { stream: number; m: Message }[], from: number, to: number): void {
    const c0 = cpuSeconds(), i0 = this.inside?.cpuS ?? 0;
    for (let i = from; i < to; i++) {
      const { stream, m } = order[i]!;
      for (const x of this.pipelines[stream]!.push(m)) {
        this.found.push(`${x.signatureId} ${x.target.timeNs} ${x.target.offsetMs} ${x.ber}`);
      }
    }
    this.cpuS += cpuSeconds() - c0;
    this.insideCpuS += (this.inside?.cpuS ?? 0) - i0;
  }

  counters(): string {
    const sum: Record<string, number> = {};
    for (const tp of this.pipelines) {
      const st = (tp as unknown as { stats(): { matcher: Record<string, number> } }).stats().matcher;
      for (const [k, v] of Object.entries(st)) sum[k] = (sum[k] ?? 0) + v;
    }
    return JSON.stringify(sum);
  }
}

/** Runs `feeds` over `order` in chunks of `chunk` messages, rotating which goes first. */
function alternate(feeds: Feed[], order: readonly { stream: number; m: Message }[], chunk: number): void {
  for (let c = 0, k = 0; c < order.length; c += chunk, k++) {
    for (let j = 0; j < feeds.length; j++) {
      feeds[(j + k) % feeds.length]!.run(order, c, Math.min(order.length, c + chunk));
    }
  }
}

const x = (v: number) => `${Math.round(v).toLocaleString("en")}x`;

/**
 * The bench's matcher load: the corpus's source streams (non-matching audio for the background) and the 10,000
 * background signatures spread over their time span, as the matcher benches feed them.
 */
export async function matcherLoad(): Promise<{
  streams: Awaited<ReturnType<typeof buildCorpus>>["calls"][number]["source"][];
  live: Signature[];
}> {
  const corpus = await buildCorpus({ seed: 1, quick: false, cacheDir: ".bench-cache", voices: false });
  const background = await backgroundSignatures(ACTIVE_SIGNATURES, undefined, ".bench-cache");
  const streams = corpus.calls.map((c) => c.source);
  let endNs = CORPUS_T0_NS;
  for (const s of streams) {
    const last = s.messages[s.messages.length - 1];
    if (last && last.timeNs > endNs) endNs = last.timeNs;
  }
  return { streams, live: spreadSignatures(background, CORPUS_T0_NS - 30_000_000_000n, endNs, 11) };
}

async function nonMatching(engines: Engine[], passes: number): Promise<void> {
  const { streams, live } = await matcherLoad();
  const order: { stream: number; m: Message }[] = [];
  let audioS = 0;
  streams.forEach((s, i) => {
    for (const m of s.messages) {
      order.push({ stream: i, m: { timeNs: m.timeNs, payload: m.payload } });
      audioS += m.endS - m.startS;
    }
  });
  order.sort((a, b) => (a.m.timeNs < b.m.timeNs ? -1 : a.m.timeNs > b.m.timeNs ? 1 : 0));
  const names = streams.map((s) => s.stream);
  console.log(
    `Non-matching audio: ${(audioS / 60).toFixed(1)} min in ${streams.length} streams, ` +
      `${live.length.toLocaleString("en")} active signatures (the bench's matcher load)`,
  );
  for (let p = 0; p < passes; p++) {
    const full: Feed[] = [], bare: Feed[] = [];
    const inside = engines.map((e) => timeInside(e.proto.matcher, "onFrames"));
    for (const e of engines) {
      const index = new e.pipeline.SignatureIndex({ maxActive: live.length + 1 });
      for (const s of live) index.add(s);
      full.push(new Feed(e, index, names, formatOf(SOURCE_CHAIN)));
      bare.push(new Feed(e, new e.pipeline.SignatureIndex({ maxActive: 1 }), names, formatOf(SOURCE_CHAIN)));
    }
    full.forEach((f, i) => f.inside = inside[i]);
    alternate([...full, ...bare], order, 500);
    for (const t of inside) t.restore();
    const same = full.every((f) => f.counters() === full[0]!.counters());
    const line = engines.map((e, i) =>
      `${e.name} pipeline ${x(audioS / full[i]!.cpuS)}, matcher stage alone ` +
      `${x(audioS / (full[i]!.cpuS - bare[i]!.cpuS))} (timed inside TargetMatcher.onFrames ` +
      `${x(audioS / full[i]!.insideCpuS)})`
    ).join("; ");
    console.log(`  pass ${p + 1}: ${line}; counters ${same ? "identical" : "DIFFER"} ${full[0]!.counters()}`);
  }
}

async function perMatch(engines: Engine[], seconds: number): Promise<void> {
  const a = await speech(Math.max(seconds, 400), 0);
  const sigs = signaturesFrom(a, ACTIVE_SIGNATURES, 1);
  const order = messages(a.subarray(0, seconds * 8000)).map((m) => ({ stream: 0, m }));
  const feeds: Feed[] = [];
  const timed: MatchCostTimers[] = [];
  for (const e of engines) {
    const index = new e.pipeline.SignatureIndex({ maxActive: sigs.length + 10 });
    for (const s of sigs) index.add(s);
    feeds.push(new Feed(e, index, ["related"], FORMAT));
    timed.push(timeMatchCost(e));
  }
  alternate(feeds, order, 250);
  for (const t of timed) t.restore();
  console.log(`Audio with matches: ${seconds} s of the speech the ${sigs.length} signatures come from`);
  engines.forEach((e, i) => {
    const t = timed[i]!, n = feeds[i]!.found.length;
    const ms = (v: number) => `${((v / n) * 1e3).toFixed(2)} ms`;
    console.log(
      `  ${e.name}: ${n} matches; per match ${ms(t.verify.cpuS + t.align.cpuS)} (verification ` +
        `${ms(t.verify.cpuS)}, of which near-miss re-scoring ${ms(t.rephase.cpuS)}; alignment ${
          ms(t.align.cpuS)
        })`,
    );
  });
  const same = feeds.every((f) => JSON.stringify(f.found) === JSON.stringify(feeds[0]!.found));
  console.log(`  matches ${same ? "identical" : "DIFFER"}`);
}

async function main(): Promise<void> {
  const args = Deno.args.filter((a, i) => !a.startsWith("--") && !Deno.args[i - 1]?.startsWith("--"));
  const opt = (name: string, def: number) => {
    const i = Deno.args.indexOf(name);
    return i >= 0 ? Number(Deno.args[i + 1]) : def;
  };
  if (args.length < 1) {
    throw new Error("usage: matcher_ab.ts BEFORE_DIR [AFTER_DIR] [--passes N] [--seconds S]");
  }
  // The corpus's signatures are made with this checkout's modules, which AFTER_DIR may not be.
  await initAudioEngine();
  const engines = [await engine("before", args[0]!), await engine("after", args[1] ?? ".")];
  await nonMatching(engines, opt("--passes", 2));
  await perMatch(engines, opt("--seconds", 120));
}

if (import.meta.main) await main();
