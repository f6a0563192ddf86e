/**
 * Accuracy of the engine per chain: recall, false matches, timing exactness. Replays the corpus in event-time
 * order the way a node sees it: source signatures arrive when their block completes (plus a bus delay) and are
 * searched backwards in every target stream's lookback; target messages are searched forwards against the
 * active signatures; signatures expire after a TTL.
 * @module
 */

import process from "node:process";
import { SignatureIndex, SourcePipeline, TargetPipeline } from "../audio/pipeline.ts";
import { DEFAULT_MATCH_THRESHOLDS } from "../config/defaults.ts";
import type { AudioCriteria, Match, Signature } from "../audio/types.ts";
import { DEFAULT_AUDIO_CRITERIA } from "../config/defaults.ts";
import { formatOf, SOURCE_CHAIN } from "../fixtures/gen/chains.ts";
import { capturedSeconds, locateInstant, type SimStream, TimeIndex } from "../fixtures/gen/pipeline_sim.ts";
import { type Call, CALL_RATE } from "../fixtures/gen/speech.ts";
import { buildChainStreams, type Corpus, SOURCE_POD, targetPod } from "./corpus.ts";

/** Measurement name used throughout the bench. */
export const MEASUREMENT = "bench";

/** Onset criteria of the bench's source pipelines: the config defaults a deployment starts from. */
export const BENCH_CRITERIA: AudioCriteria = { ...DEFAULT_AUDIO_CRITERIA };

/** A match within this much of the true instant counts as correct; further off it is a false match. */
export const CORRECT_TOLERANCE_MS = 20;
/** A correct match on the right message within this much of the true offset counts as exact. */
export const EXACT_TOLERANCE_MS = 1;
/** Delay from a signature's completion at the source to its arrival at a matcher. */
const BUS_DELAY_NS = 5_000_000n;
/**
 * Every third call's signatures arrive this late (a congested bus, a restarted node catching up): later than any
 * stage delay, so their target audio is already there and only the backward search can find them.
 */
export const LATE_BUS_DELAY_NS = 4_000_000_000n;

/** Bus delay of a call's signatures. */
export function busDelayNs(call: number): bigint {
  return call % 3 === 2 ? LATE_BUS_DELAY_NS : BUS_DELAY_NS;
}
/** How long a signature stays active in the index, event time. */
const SIGNATURE_TTL_NS = 60_000_000_000n;

/** One source signature and where its instant is in call time. */
export interface SourceSignature {
  sig: Signature;
  /** Index into `corpus.calls`. */
  call: number;
  /** Call time of the anchor as the engine reported it, seconds. */
  callTimeS: number;
  arrivalNs: bigint;
}

/** Everything the source side produced. */
export interface SourceRun {
  signatures: SourceSignature[];
  /** Signatures whose source tap points to no message of its stream (an engine bug if non-zero). */
  badSourceTaps: number;
  cpuS: number;
  audioS: number;
  errors: Record<string, number>;
  markers: Record<string, number>;
}

/** Scores of one chain. */
export interface ChainResult {
  chain: string;
  /** Noise-free (no added noise) or the SNR. */
  snrDb?: number;
  signatures: number;
  /** Signatures whose instant was captured in their call's target stream. */
  expected: number;
  /** Expected signatures matched correctly (right stream, within the tolerance). */
  hits: number;
  recall: number;
  /** Matches on a negative stream. */
  falseNegative: number;
  /** Matches on another call's stream. */
  falseCross: number;
  /** Matches on the right stream but more than the tolerance off, or on an unknown message. */
  falseOff: number;
  falsePerSig: number;
  /** Matches on the right stream. */
  ownMatches: number;
  /** Of those, whose instant was captured (a match on audio around a lost message has no right message). */
  timed: number;
  /** Of those, on the right message within 1 ms. */
  exact: number;
  exactShare: number;
  medianErrMs: number;
  p95ErrMs: number;
  /** More than one match per (signature, target stream): the engine promises never to do that. */
  duplicates: number;
  /** Matches whose source tap or ids differ from the signature's. */
  inconsistent: number;
  /** Matched although the instant fell into a lost message (not counted in recall). */
  unexpectedHits: number;
  /** Correct expected matches found by forward search (target audio after the signature arrived). */
  hitsForward: number;
  /** Correct expected matches found by backward search (signature arrived after the target audio). */
  hitsBackward: number;
  /** BER of correct matches: median, 95th and 99th percentile, maximum. */
  correctBer: { p50: number; p95: number; p99: number; max: number };
  /** Every false match. */
  falseMatches: FalseMatch[];
  /** Every expected signature that was not matched correctly. */
  misses: Miss[];
  /** Target-side throughput over this chain's streams: audio seconds per CPU second. */
  targetXRealTime: number;
  errors: Record<string, number>;
  /** The chain's issue-14 targets, when it has them. */
  targets?: { recall: number; exact?: number };
  /** Share of all matches more than 20 ms off (on the right stream). */
  offShare: number;
  /** Matches on other streams (negative or cross) whose audio there is the same recording as the source's. */
  falseSameAudio: number;
  /** Matches on the right stream whose instant was never sent or only concealed (DTX, comfort noise, PLC). */
  matchedUnsent: number;
  /** Expected signatures and correct hits per voice set of the calls. */
  byVoice: Record<string, { expected: number; hits: number }>;
  /** Signed call-time error (ms, + = late) of every match on the right stream whose instant was captured. */
  signedErrMs: number[];
}

/** CPU seconds (user + system) used by this process so far. */
export function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function addCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

/** The SourcePipeline of a call's source tap, as every bench part runs it. */
export function benchSource(stream: string, criteria: AudioCriteria): SourcePipeline {
  return new SourcePipeline({
    measurement: MEASUREMENT,
    node: "node-a",
    pod: SOURCE_POD,
    stream,
    format: formatOf(SOURCE_CHAIN),
    criteria,
  });
}

/**
 * Runs one SourcePipeline per call over its source tap and collects signatures with their call times.
 * `extraDelayNs` delays every signature's arrival further (bench/main.ts `--sig-delay`: verification in older
 * target audio).
 */
export function runSources(
  corpus: Corpus,
  criteria: AudioCriteria = BENCH_CRITERIA,
  extraDelayNs = 0n,
): SourceRun {
  const signatures: SourceSignature[] = [];
  const errors: Record<string, number> = {};
  const markers: Record<string, number> = {};
  let bad = 0;
  let audioS = 0;
  const t0 = cpuSeconds();
  corpus.calls.forEach((c, call) => {
    const ti = new TimeIndex(c.source);
    const sp = benchSource(c.source.stream, criteria);
    const collect = (sigs: Signature[], atNs: bigint) => {
      for (const sig of sigs) {
        const t = ti.callTime(sig.source.timeNs, sig.source.offsetMs);
        if (t === undefined) {
          bad++;
          continue;
        }
        signatures.push({ sig, call, callTimeS: t, arrivalNs: atNs + busDelayNs(call) + extraDelayNs });
      }
    };
    for (const m of c.source.messages) collect(sp.push({ timeNs: m.timeNs, payload: m.payload }), m.timeNs);
    const last = c.source.messages[c.source.messages.length - 1];
    collect(sp.finish(), last?.timeNs ?? c.startNs);
    const st = sp.stats();
    addCounts(errors, st.errors);
    addCounts(markers, st.markers);
    audioS += capturedSeconds(c.source);
  });
  signatures.sort((a, b) => (a.arrivalNs < b.arrivalNs ? -1 : a.arrivalNs > b.arrivalNs ? 1 : 0));
  return { signatures, badSourceTaps: bad, cpuS: cpuSeconds() - t0, audioS, errors, markers };
}

interface Target {
  sim: SimStream;
  tp: TargetPipeline;
  times: TimeIndex;
  /** Index of the call, or -1 for a negative stream. */
  call: number;
  /** The call or negative stream whose audio this target carries. */
  audio: Call;
}

/** One false match, described so a reader can tell a near-duplicate phrase from a junk signature. */
export interface FalseMatch {
  kind: "negative" | "cross" | "off";
  signatureId: string;
  ber: number;
  /** Prompt (and seconds into it) at the signature's instant, or "pause". */
  source: string;
  /** Prompt at the matched instant in the target stream. */
  target: string;
  targetStream: string;
  /** For "off": call-time error, ms. */
  errMs?: number;
  /**
   * For "negative"/"cross": the target carries the same recording there (waveform correlation >= 0.8): a
   * duplicate in the corpus, not a false match of the engine.
   */
  sameAudio?: boolean;
}

/** Correlation (best over ±10 ms) of 0.5 s of `a` from `ta` and of `b` from `tb` (seconds, 8 kHz). */
export function sameAudioCorrelation(a: Float32Array, ta: number, b: Float32Array, tb: number): number {
  const n = Math.round(0.5 * CALL_RATE), maxLag = Math.round(0.01 * CALL_RATE);
  const i0 = Math.round(ta * CALL_RATE), j0 = Math.round(tb * CALL_RATE);
  let aa = 0;
  for (let i = 0; i < n; i++) aa += (a[i0 + i] ?? 0) ** 2;
  let best = 0;
  for (let l = -maxLag; l <= maxLag; l++) {
    let ab = 0, bb = 0;
    for (let i = 0; i < n; i++) {
      const y = b[j0 + l + i] ?? 0;
      ab += (a[i0 + i] ?? 0) * y;
      bb += y * y;
    }
    if (aa > 0 && bb > 0) best = Math.max(best, ab / Math.sqrt(aa * bb));
  }
  return best;
}

/** Correlation at or above which a match on another stream is the same recording. */
const SAME_AUDIO_CORR = 0.8;

/** An expected signature without a correct match, with what may explain it. */
export interface Miss {
  signatureId: string;
  /** Prompt (and seconds into it) at the signature's instant. */
  source: string;
  targetStream: string;
  /** Starts of lost messages within 3 s of the instant, ms relative to it. */
  lostNearMs: number[];
  /** Error of the match reported on the right stream but more than 20 ms off, ms; undefined if none. */
  offByMs?: number;
}

/** Where call time `tS` falls: `prompt+seconds` or "pause". */
export function promptAt(call: Call, tS: number): string {
  const k = tS * CALL_RATE;
  const u = call.utterances.find((x) => k >= x.start && k < x.end);
  return u ? `${u.prompt}+${((k - u.start) / CALL_RATE).toFixed(2)}s` : "pause";
}

type Event = { t: bigint; kind: 0; sig: SourceSignature } | {
  t: bigint;
  kind: 1;
  target: Target;
  msg: number;
};

function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Replays one chain over the corpus and scores it. */
export async function runChain(corpus: Corpus, source: SourceRun, chainName: string): Promise<ChainResult> {
  const chain = corpus.chains.find((c) => c.name === chainName);
  if (!chain) throw new Error(`unknown chain ${chainName}`);
  const streams = await buildChainStreams(corpus, chain);
  const index = new SignatureIndex();
  const format = formatOf(chain);
  const mk = (sim: SimStream, call: number, audio: Call): Target => ({
    sim,
    call,
    audio,
    times: new TimeIndex(sim),
    tp: new TargetPipeline({
      measurement: MEASUREMENT,
      stage: chain.name,
      node: "node-b",
      pod: targetPod(chain),
      stream: sim.stream,
      format,
      index,
      // The engine's config defaults, as a sensor and `analyze` run it (not the pipeline's built-in rule).
      thresholdBer: DEFAULT_MATCH_THRESHOLDS.match_threshold_ber,
      margin: DEFAULT_MATCH_THRESHOLDS.match_margin,
    }),
  });
  const targets = [
    ...streams.positives.map((s, i) => mk(s, i, corpus.calls[i]!.call)),
    ...streams.negatives.map((s, i) => mk(s, -1, corpus.negatives[i]!.call)),
  ];

  const events: Event[] = source.signatures.map((sig) => ({ t: sig.arrivalNs, kind: 0, sig }));
  for (const target of targets) {
    target.sim.messages.forEach((m, msg) => events.push({ t: m.timeNs, kind: 1, target, msg }));
  }
  events.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : a.kind - b.kind));

  const byId = new Map(source.signatures.map((s) => [s.sig.id, s]));
  const seen = new Set<string>();
  const hit = new Set<string>();
  const errs: number[] = [];
  const signedErrMs: number[] = [];
  const offBy = new Map<string, number>();
  const bers: number[] = [];
  const r = {
    falseNegative: 0,
    falseCross: 0,
    falseOff: 0,
    ownMatches: 0,
    timed: 0,
    exact: 0,
    duplicates: 0,
    inconsistent: 0,
    unexpectedHits: 0,
    matchedUnsent: 0,
    allMatches: 0,
  };
  let hitsBackward = 0;
  const falseMatches: FalseMatch[] = [];
  const noteFalse = (
    kind: FalseMatch["kind"],
    target: Target,
    m: Match,
    s: SourceSignature,
    errMs?: number,
  ) => {
    const t = target.times.callTime(m.target.timeNs, m.target.offsetMs);
    const sameAudio = kind !== "off" && t !== undefined &&
      sameAudioCorrelation(corpus.calls[s.call]!.call.samples, s.callTimeS, target.audio.samples, t) >=
        SAME_AUDIO_CORR;
    falseMatches.push({
      kind,
      signatureId: m.signatureId,
      ber: m.ber,
      source: promptAt(corpus.calls[s.call]!.call, s.callTimeS),
      target: t === undefined ? "unknown message" : promptAt(target.audio, t),
      targetStream: target.sim.stream,
      errMs,
      sameAudio,
    });
  };
  const score = (target: Target, matches: Match[], backward = false) => {
    for (const m of matches) {
      const key = `${m.signatureId}|${target.sim.stream}`;
      if (seen.has(key)) {
        r.duplicates++;
        continue;
      }
      seen.add(key);
      r.allMatches++;
      const s = byId.get(m.signatureId);
      if (!s) {
        r.falseOff++;
        continue;
      }
      if (m.source.timeNs !== s.sig.source.timeNs || m.source.offsetMs !== s.sig.source.offsetMs) {
        r.inconsistent++;
      }
      if (target.call === -1) {
        r.falseNegative++;
        noteFalse("negative", target, m, s);
        continue;
      }
      if (target.call !== s.call) {
        r.falseCross++;
        noteFalse("cross", target, m, s);
        continue;
      }
      r.ownMatches++;
      const t = target.times.callTime(m.target.timeNs, m.target.offsetMs);
      if (t === undefined) {
        r.falseOff++;
        noteFalse("off", target, m, s);
        continue;
      }
      const errMs = (t - s.callTimeS) * 1000;
      errs.push(Math.abs(errMs));
      const truth = locateInstant(target.sim, s.callTimeS);
      if (truth.kind === "present") signedErrMs.push(errMs);
      if (truth.kind === "present") r.timed++;
      else if (truth.kind === "lost" || truth.kind === "replaced") r.matchedUnsent++;
      if (
        truth.kind === "present" && truth.timeNs === m.target.timeNs &&
        Math.abs(truth.offsetMs - m.target.offsetMs) <= EXACT_TOLERANCE_MS
      ) r.exact++;
      if (Math.abs(errMs) > CORRECT_TOLERANCE_MS) {
        offBy.set(m.signatureId, errMs);
        r.falseOff++;
        noteFalse("off", target, m, s, errMs);
      } else if (truth.kind === "present") {
        hit.add(m.signatureId);
        bers.push(m.ber);
        if (backward) hitsBackward++;
      } else {
        r.unexpectedHits++;
      }
    }
  };

  // Signatures leave the index in arrival order once their TTL has passed in event time.
  let expireAt = 0;
  const active: string[] = [];
  let targetCpu = 0;
  for (const ev of events) {
    while (expireAt < active.length && source.signatures[expireAt]!.arrivalNs + SIGNATURE_TTL_NS < ev.t) {
      index.remove(active[expireAt]!);
      expireAt++;
    }
    const c0 = cpuSeconds();
    if (ev.kind === 0) {
      index.add(ev.sig.sig);
      active.push(ev.sig.sig.id);
      for (const target of targets) score(target, target.tp.searchSignature(ev.sig.sig), true);
    } else {
      const m = ev.target.sim.messages[ev.msg]!;
      score(ev.target, ev.target.tp.push({ timeNs: m.timeNs, payload: m.payload }));
    }
    targetCpu += cpuSeconds() - c0;
  }
  const errors: Record<string, number> = {};
  for (const target of targets) {
    score(target, target.tp.finish());
    addCounts(errors, target.tp.stats().errors);
  }

  let expected = 0;
  const misses: Miss[] = [];
  const byVoice: Record<string, { expected: number; hits: number }> = {};
  for (const s of source.signatures) {
    const sim = streams.positives[s.call]!;
    if (locateInstant(sim, s.callTimeS).kind !== "present") continue;
    expected++;
    const v = (byVoice[corpus.calls[s.call]!.voice] ??= { expected: 0, hits: 0 });
    v.expected++;
    if (hit.has(s.sig.id)) {
      v.hits++;
      continue;
    }
    misses.push({
      signatureId: s.sig.id,
      source: promptAt(corpus.calls[s.call]!.call, s.callTimeS),
      targetStream: sim.stream,
      lostNearMs: sim.lost.map((l) => Math.round((l.startS - s.callTimeS) * 1000)).filter((ms) =>
        Math.abs(ms) < 3000
      ),
      offByMs: offBy.get(s.sig.id),
    });
  }
  errs.sort((a, b) => a - b);
  bers.sort((a, b) => a - b);
  const signatures = source.signatures.length;
  const falses = r.falseNegative + r.falseCross + r.falseOff;
  const { allMatches, ...counts } = r;
  const audioS = targets.reduce((a, t) => a + capturedSeconds(t.sim), 0);
  return {
    chain: chain.name,
    snrDb: chain.snrDb,
    signatures,
    expected,
    hits: hit.size,
    recall: expected === 0 ? NaN : hit.size / expected,
    hitsForward: hit.size - hitsBackward,
    hitsBackward,
    falseMatches,
    misses,
    correctBer: {
      p50: percentile(bers, 0.5),
      p95: percentile(bers, 0.95),
      p99: percentile(bers, 0.99),
      max: bers[bers.length - 1] ?? NaN,
    },
    ...counts,
    targets: chain.targets,
    offShare: allMatches === 0 ? 0 : r.falseOff / allMatches,
    falseSameAudio: falseMatches.filter((f) => f.sameAudio).length,
    byVoice,
    signedErrMs,
    falsePerSig: signatures === 0 ? NaN : falses / signatures,
    exactShare: r.timed === 0 ? NaN : r.exact / r.timed,
    medianErrMs: percentile(errs, 0.5),
    p95ErrMs: percentile(errs, 0.95),
    targetXRealTime: audioS / Math.max(targetCpu, 1e-9),
    errors,
  };
}
