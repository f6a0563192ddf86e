/**
 * The benchmark corpus: concurrent calls of real speech (each with its 8 kHz μ-law source tap) and negative
 * streams of other speech, built deterministically from a seed; and, per chain, the target taps of every call
 * and negative stream. sox results are cached under the cache directory.
 * @module
 */

import { BENCH_CHAINS, type Chain, renderChain, SOURCE_CHAIN } from "../fixtures/gen/chains.ts";
import { decodeSamples, encodeSamples } from "../fixtures/gen/codecs.ts";
import { type SimStream, simulateStream } from "../fixtures/gen/pipeline_sim.ts";
import { Rng } from "../fixtures/gen/prng.ts";
import type { SoxOptions } from "../fixtures/gen/sox.ts";
import {
  ASTERISK_SOUNDS_DIR,
  type Call,
  CALL_RATE,
  composeCall,
  dealPrompts,
  loadPrompts,
  promptSeconds,
} from "../fixtures/gen/speech.ts";

/** Corpus size and provenance. */
export interface CorpusOptions {
  seed: number;
  /** Small corpus for a run under a minute. */
  quick: boolean;
  soundsDir?: string;
  /** sox result cache; none when absent. */
  cacheDir?: string;
}

/** A call with its source tap and the timing of its target taps. */
export interface CorpusCall {
  call: Call;
  /** The call's audio after the source codec (what every chain starts from). */
  audio: Float32Array;
  startNs: bigint;
  source: SimStream;
  /** Kind of downstream stage: a relay (fixed short delay) or an ASR-like stage (long, buffered). */
  stage: "relay" | "asr";
  targetDelayMs: number;
}

/** A negative stream: speech that no call contains. */
export interface CorpusNegative {
  call: Call;
  audio: Float32Array;
  startNs: bigint;
}

/** Everything the accuracy run needs, chain-independent. */
export interface Corpus {
  seed: number;
  soundsDir: string;
  promptsAvailable: number;
  promptSecondsAvailable: number;
  calls: CorpusCall[];
  negatives: CorpusNegative[];
  chains: readonly Chain[];
  /** Sum of prompt durations in calls, seconds. */
  speechSeconds: number;
  /** Sum of call durations (speech and pauses), seconds. */
  callSeconds: number;
  negativeSpeechSeconds: number;
  sox: SoxOptions;
}

/** Target taps of one chain: one per call (same order as `corpus.calls`) and one per negative stream. */
export interface ChainStreams {
  chain: Chain;
  positives: SimStream[];
  negatives: SimStream[];
}

/** Event time of call time 0 of the first call (2025-11-23, so capture files look plausible). */
export const CORPUS_T0_NS = 1_763_900_000_000_000_000n;

const SIZES = {
  quick: { calls: 4, secondsPerCall: 45, negatives: 2, secondsPerNegative: 40, staggerS: 8 },
  full: { calls: 16, secondsPerCall: 70, negatives: 4, secondsPerNegative: 60, staggerS: 20 },
};

const RELAY_DELAY_MS = 150;
const ASR_DELAY_MS: [number, number] = [800, 3000];
const SOURCE_JITTER_MS = 1;
const TARGET_JITTER_MS = 2;
/** Source tap pod (namespace/pod). */
export const SOURCE_POD = "voice/gateway-0";

function streamSid(rng: Rng): string {
  let s = "MZ";
  for (let i = 0; i < 32; i++) s += "0123456789abcdef"[rng.int(0, 15)];
  return s;
}

function throughCodec(samples: Float32Array, chain: Chain): Float32Array {
  return decodeSamples(encodeSamples(samples, chain.codec), chain.codec);
}

/** Builds the calls, their source taps and the negative streams. */
export async function buildCorpus(opts: CorpusOptions): Promise<Corpus> {
  const soundsDir = opts.soundsDir ?? ASTERISK_SOUNDS_DIR;
  const size = opts.quick ? SIZES.quick : SIZES.full;
  const rng = new Rng(opts.seed);
  const prompts = await loadPrompts(soundsDir);
  const wants = [
    ...Array.from({ length: size.calls }, () => size.secondsPerCall),
    ...Array.from({ length: size.negatives }, () => size.secondsPerNegative),
  ];
  const groups = dealPrompts(prompts, wants, rng.fork("deal"));
  const calls: CorpusCall[] = [];
  const negatives: CorpusNegative[] = [];
  const timing = rng.fork("timing");
  for (let g = 0; g < groups.length; g++) {
    const group = groups[g]!;
    if (group.length === 0) continue;
    const isCall = g < size.calls;
    const id = isCall ? `call${String(g).padStart(2, "0")}` : `neg${String(g - size.calls).padStart(2, "0")}`;
    const call = composeCall(id, group, rng.fork(`compose/${id}`));
    const audio = throughCodec(call.samples, SOURCE_CHAIN);
    const startNs = CORPUS_T0_NS + BigInt(Math.round(timing.range(0, size.staggerS) * 1e9));
    if (!isCall) {
      negatives.push({ call, audio, startNs });
      continue;
    }
    const stage = calls.length % 2 === 0 ? "relay" : "asr";
    const targetDelayMs = stage === "relay" ? RELAY_DELAY_MS : Math.round(timing.range(...ASR_DELAY_MS));
    const source = simulateStream({ sampleRate: CALL_RATE, samples: call.samples }, SOURCE_CHAIN, {
      stream: streamSid(rng.fork(`sid/${id}`)),
      pod: SOURCE_POD,
      callStartNs: startNs,
      delayMs: 0,
      jitterMs: SOURCE_JITTER_MS,
      rng: rng.fork(`source/${id}`),
    });
    calls.push({ call, audio, startNs, source, stage, targetDelayMs });
  }
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  return {
    seed: opts.seed,
    soundsDir,
    promptsAvailable: prompts.length,
    promptSecondsAvailable: promptSeconds(prompts),
    calls,
    negatives,
    chains: BENCH_CHAINS,
    speechSeconds: sum(calls.map((c) => c.call.speechSeconds)),
    callSeconds: sum(calls.map((c) => c.call.samples.length / CALL_RATE)),
    negativeSpeechSeconds: sum(negatives.map((n) => n.call.speechSeconds)),
    sox: { cacheDir: opts.cacheDir ? `${opts.cacheDir}/sox` : undefined },
  };
}

/** Pod of a chain's target stage. */
export function targetPod(chain: Chain): string {
  return `voice/${chain.name.replace(/[^a-z0-9]+/gi, "-").toLowerCase()}-0`;
}

/** Renders a chain's target taps for every call and negative stream. */
/**
 * Samples a target tap skips at the start of its call: up to one hop of the analysis grid (16 ms), so the
 * target's frame grid sits at a random phase against the source's, as it does when a tap starts mid-stream.
 * Calls begin with a pause, so no speech is lost.
 */
function gridPhase(chain: Chain, rng: Rng): number {
  return rng.int(0, Math.round(0.016 * chain.sampleRate) - 1);
}

export async function buildChainStreams(corpus: Corpus, chain: Chain): Promise<ChainStreams> {
  const rng = new Rng(corpus.seed).fork(`chain/${chain.name}`);
  const pod = targetPod(chain);
  const positives: SimStream[] = [];
  for (const c of corpus.calls) {
    const signal = await renderChain(c.audio, chain, rng.fork(`render/${c.call.id}`), corpus.sox);
    positives.push(simulateStream(signal, chain, {
      stream: `${chain.name}/${c.call.id}`,
      pod,
      callStartNs: c.startNs,
      delayMs: c.targetDelayMs,
      jitterMs: TARGET_JITTER_MS,
      rng: rng.fork(`sim/${c.call.id}`),
      skipSamples: gridPhase(chain, rng.fork(`phase/${c.call.id}`)),
    }));
  }
  const negatives: SimStream[] = [];
  for (const n of corpus.negatives) {
    const signal = await renderChain(n.audio, chain, rng.fork(`render/${n.call.id}`), corpus.sox);
    negatives.push(simulateStream(signal, chain, {
      stream: `${chain.name}/${n.call.id}`,
      pod,
      callStartNs: n.startNs,
      delayMs: RELAY_DELAY_MS,
      jitterMs: TARGET_JITTER_MS,
      rng: rng.fork(`sim/${n.call.id}`),
      skipSamples: gridPhase(chain, rng.fork(`phase/${n.call.id}`)),
    }));
  }
  return { chain, positives, negatives };
}
