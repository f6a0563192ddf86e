/**
 * The benchmark corpus: concurrent calls of real speech (each with its 8 kHz μ-law source tap) and negative
 * streams of other speech, built deterministically from a seed; and, per chain, the target taps of every call
 * and negative stream. sox results are cached under the cache directory.
 * @module
 */

import { ALL_CHAINS, BENCH_CHAINS, type Chain, renderChain, SOURCE_CHAIN } from "../fixtures/gen/chains.ts";
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
import { haveEspeak, loadTtsPrompts } from "../fixtures/gen/tts.ts";

/** Corpus size and provenance. */
export interface CorpusOptions {
  seed: number;
  /** Small corpus for a run under a minute. */
  quick: boolean;
  soundsDir?: string;
  /** sox result cache; none when absent. */
  cacheDir?: string;
  /**
   * More voices and languages (default true): calls and a negative stream from the Spanish Asterisk prompts
   * (the same speaker as the English ones, other words) and from espeak-ng in nine languages, and the French
   * prompts (another speaker) as the second leg of the mixing chain. False: the English-only corpus of before.
   */
  voices?: boolean;
}

/** Where the voices' prompts are (Debian asterisk-core-sounds-es-wav and -fr-wav). */
export const ES_SOUNDS_DIR = "/usr/share/asterisk/sounds/es_MX_f_Allison";
export const FR_SOUNDS_DIR = "/usr/share/asterisk/sounds/fr_CA_f_June";

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
  /** Voice set: "en" (Asterisk, Allison), "es" (Asterisk, Allison in Spanish), "tts" (espeak-ng). */
  voice: string;
  /** The other leg for the mixing chain (8 kHz, the call's length), or undefined without voices. */
  other?: Float32Array;
}

/** A negative stream: speech that no call contains. */
export interface CorpusNegative {
  call: Call;
  audio: Float32Array;
  startNs: bigint;
  voice: string;
  other?: Float32Array;
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
  /** Voice sets in the corpus with their prompt counts, e.g. {en: 554, es: 490, tts: 32, fr (legs): 520}. */
  voices: Record<string, number>;
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
/** Extra calls and negatives per voice set: [calls, seconds per call, negatives, seconds per negative]. */
const VOICE_SIZES: Record<"quick" | "full", Record<"es" | "tts", [number, number, number, number]>> = {
  quick: { es: [1, 45, 1, 40], tts: [1, 45, 0, 0] },
  full: { es: [3, 70, 1, 60], tts: [2, 60, 1, 45] },
};
/** The other leg's pauses, seconds: it talks about half the time, overlapping this leg's speech at random. */
const LEG_PAUSES = { pauseMinS: 1, pauseMaxS: 4 };

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
      negatives.push({ call, audio, startNs, voice: "en" });
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
    calls.push({ call, audio, startNs, source, stage, targetDelayMs, voice: "en" });
  }
  const voices: Record<string, number> = { en: prompts.length };
  if (opts.voices ?? true) {
    // Prompts of every set are deduplicated against all sets loaded before (the Spanish set repeats tones and
    // recordings of the English one), so any match across streams is a false match.
    const es = await loadPrompts(ES_SOUNDS_DIR, { against: prompts, prefix: "es:" });
    const tts = (await haveEspeak()) ? await loadTtsPrompts(corpusSox(opts)) : [];
    const fr = await loadPrompts(FR_SOUNDS_DIR, { against: [...prompts, ...es], prefix: "fr:" });
    voices.es = es.length;
    voices.tts = tts.length;
    voices["fr (other leg)"] = fr.length;
    const sizes = VOICE_SIZES[opts.quick ? "quick" : "full"];
    for (const [voice, pool] of [["es", es], ["tts", tts]] as const) {
      const [nc, sc, nn, sn] = sizes[voice];
      const wants = [...Array.from({ length: nc }, () => sc), ...Array.from({ length: nn }, () => sn)];
      const vgroups = dealPrompts(pool, wants, rng.fork(`deal/${voice}`));
      for (let g = 0; g < vgroups.length; g++) {
        const group = vgroups[g]!;
        if (group.length === 0) continue;
        const isCall = g < nc;
        const id = `${voice}${isCall ? "call" : "neg"}${String(isCall ? g : g - nc).padStart(2, "0")}`;
        const call = composeCall(id, group, rng.fork(`compose/${id}`));
        const audio = throughCodec(call.samples, SOURCE_CHAIN);
        const startNs = CORPUS_T0_NS + BigInt(Math.round(timing.range(0, size.staggerS) * 1e9));
        if (!isCall) {
          negatives.push({ call, audio, startNs, voice });
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
        calls.push({ call, audio, startNs, source, stage, targetDelayMs, voice });
      }
    }
    // The other legs: French prompts (another speaker), one leg per stream, dealt in stream order.
    const streams = [...calls, ...negatives];
    const legRng = rng.fork("legs");
    const legGroups = dealPrompts(
      fr,
      streams.map((st) => 0.5 * st.call.samples.length / CALL_RATE),
      legRng.fork("deal"),
    );
    streams.forEach((st, i) => {
      const leg = composeCall(`leg${i}`, legGroups[i] ?? [], legRng.fork(`compose/${i}`), LEG_PAUSES);
      const other = new Float32Array(st.call.samples.length);
      other.set(leg.samples.subarray(0, other.length));
      st.other = other;
    });
  }
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  return {
    seed: opts.seed,
    soundsDir,
    promptsAvailable: prompts.length,
    promptSecondsAvailable: promptSeconds(prompts),
    calls,
    negatives,
    chains: opts.voices ?? true ? ALL_CHAINS : BENCH_CHAINS,
    speechSeconds: sum(calls.map((c) => c.call.speechSeconds)),
    callSeconds: sum(calls.map((c) => c.call.samples.length / CALL_RATE)),
    negativeSpeechSeconds: sum(negatives.map((n) => n.call.speechSeconds)),
    sox: corpusSox(opts),
    voices,
  };
}

function corpusSox(opts: CorpusOptions): SoxOptions {
  return { cacheDir: opts.cacheDir ? `${opts.cacheDir}/sox` : undefined };
}

/** Speech activity of 8 kHz `samples` over a call-time range (the DTX encoder's VAD): level >= -45 dBFS. */
export function activityOf(samples: Float32Array): (startS: number, endS: number) => boolean {
  return (startS, endS) => {
    const a = Math.max(0, Math.floor(startS * CALL_RATE)),
      b = Math.min(samples.length, Math.ceil(endS * CALL_RATE));
    if (b <= a) return false;
    let e = 0;
    for (let i = a; i < b; i++) e += samples[i]! * samples[i]!;
    return 10 * Math.log10(e / (b - a) + 1e-20) >= DTX_ACTIVE_DBFS;
  };
}
/** Level above which the DTX encoder's VAD calls a 20 ms frame active, dBFS (the call floor is -60). */
const DTX_ACTIVE_DBFS = -45;

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
    const signal = await renderChain(c.audio, chain, rng.fork(`render/${c.call.id}`), corpus.sox, {
      other: c.other,
    });
    positives.push(simulateStream(signal, chain, {
      activity: activityOf(c.call.samples),
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
    const signal = await renderChain(n.audio, chain, rng.fork(`render/${n.call.id}`), corpus.sox, {
      other: n.other,
    });
    negatives.push(simulateStream(signal, chain, {
      activity: activityOf(n.call.samples),
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
