/**
 * The audio engine's facade for actors and the bench: one {@link SourcePipeline} per source stream (decode →
 * VAD/onsets → fingerprint → signatures) and one {@link TargetPipeline} per target stream (decode → fingerprint
 * → forward and backward search → sample-level alignment → matches).
 *
 * Everything here is synchronous per message once {@link initAudioEngine} has resolved.
 * @module
 */

import type { PayloadEnvelope } from "./decode/payload.ts";
import { ALIGN_RANGE, ENVELOPE_RANGE, FineAligner, INSTANT_OFFSET } from "./align/align.ts";
import { type GapHint, GapHintMemo, gapHintsOf, inSuppressedOnset } from "./align/gap_hints.ts";
import { inLonePart } from "./match/parts.ts";
import { Rephaser } from "./align/rephase.ts";
import { sourceWaveSigns } from "./align/wave_signs.ts";
import { ENV_FROM, ENV_TO, EnvelopeScratch, sourceEnvelope } from "./align/level_envelope.ts";
import {
  Fingerprinter,
  type FingerprintParams,
  FP_PARAMS,
  FrameAnalyzer,
  FrameStore,
} from "./fingerprint/fingerprint.ts";
import {
  CLOCK_SKEW_NS,
  type CoarseMatch,
  DEFAULT_THRESHOLDS,
  GAP_SLACK_FRAMES,
  type MatcherStats,
  type MatchThresholds,
  plainBer,
  RecentFrames,
  TargetMatcher,
} from "./match/mod.ts";
import { OnsetDetector } from "./detect/onset.ts";
import { ANALYSIS_RATE } from "./decode/resample.ts";
import { feedRing as feed, SampleRing } from "./decode/sample_ring.ts";
import { CaptureTimes } from "./decode/capture_times.ts";
import { buildSignature, initSignatureHasher, SIGNATURE_MAX_FRAMES } from "./fingerprint/signature.ts";
import { type IndexStats, SignatureIndex } from "./match/signature_index.ts";
import {
  type DecodeOutcome,
  type MediaClock,
  type MessageCodec,
  StreamDecoder,
} from "./decode/stream_decoder.ts";
import type { AudioCriteria, AudioFormat, Match, Signature } from "./types.ts";
import { EnergyVad, initWebRtcVad, VAD_FRAME, type VadDecider, WebRtcVad } from "./detect/vad.ts";

export { RecentFrames, SignatureIndex };
export type { IndexStats, MatcherStats, MatchThresholds, MediaClock, MessageCodec };

/** One captured message of a stream. */
export interface MessageIn {
  /** Capture time (`time_`), ns since the epoch. */
  timeNs: bigint;
  /**
   * The body, or its envelope when the caller already read it (e.g. for a stream key): parsed only once.
   * Undefined when the row had no payload: counted (`missing_payload`) and a gap keeps the timeline in place.
   */
  payload?: Uint8Array | PayloadEnvelope;
  /** Original body size when Pixie truncated or dropped the body (`*_body_size`). */
  bodySize?: number;
  /** RTP: the message's RTP timestamp and clock rate; lost packets and silence suppression become exact gaps. */
  mediaClock?: MediaClock;
  /** RTP: this message's codec (payload type) when it may differ from the stream's format. */
  codec?: MessageCodec;
}

/** Counters of a pipeline. */
export interface PipelineStats {
  messages: number;
  decoded: number;
  markers: Record<string, number>;
  errors: Record<string, number>;
  signatures?: number;
  matches?: number;
  /** Why anchors (source) or verified alignments (target) were dropped, by reason. */
  skipped?: Record<string, number>;
}

/** The counters both pipelines report: the decoder's, and why anchors or alignments were dropped. */
function baseStats(decoder: StreamDecoder, skipped: Record<string, number>): PipelineStats {
  const d = decoder.stats();
  return {
    messages: d.messages,
    decoded: d.decoded,
    markers: { ...d.markers },
    errors: { ...d.errors },
    skipped: { ...skipped },
  };
}

/**
 * Prepares the WASM parts (xxhash64, WebRTC VAD). Await once before building pipelines. `webrtcVad: false` leaves
 * the WebRTC VAD out (a config without `vad_mode: webrtc` never uses it; loaded, it holds ~6 MB).
 */
export async function initAudioEngine(opts: { webrtcVad?: boolean } = {}): Promise<void> {
  await Promise.all([initSignatureHasher(), opts.webrtcVad === false ? undefined : initWebRtcVad()]);
}

/** Signature block length, frames (128 × 16 ms = 2.05 s from the anchor on). */
export const SIGNATURE_FRAMES = SIGNATURE_MAX_FRAMES;
/** A frame more than this far (dB) below the loudest frame of its block is masked (its bits are noise). */
export const MASK_BELOW_PEAK_DB = 25;
/** A frame quieter than this (dB re a full-scale sine in the bands) is masked whatever the block. */
export const MASK_ABSOLUTE_DB = -55;
/** A block needs this many unmasked frames to become a signature. */
export const MIN_SIGNATURE_FRAMES = 24;
/**
 * Fine alignment and the near-miss re-scoring, shared by every target stream of the process: the engine handles
 * one stream's message at a time, and what they keep between calls (window levels, frames) is keyed by the ring
 * it was read from, so sharing changes no answer. Per stream they held two envelope scratches that grow to
 * ~100-200 KB each once the stream has had a match (the search spans up to 4,104 samples of float64 series).
 */
let sharedVerify: { aligner: FineAligner; rephaser: Rephaser; envelope: EnvelopeScratch } | undefined;

function verifyScratch(): { aligner: FineAligner; rephaser: Rephaser; envelope: EnvelopeScratch } {
  if (!sharedVerify) {
    const analyzer = new FrameAnalyzer(FP_PARAMS);
    // One envelope scratch for both: a near miss re-scored and then matched is aligned with the same signature's
    // levels around the same instant, whose window levels, source sides and kernels the re-scoring computed.
    const envelope = new EnvelopeScratch();
    sharedVerify = {
      aligner: new FineAligner(analyzer, envelope),
      rephaser: new Rephaser(analyzer, SIGNATURE_FRAMES, envelope),
      envelope,
    };
  }
  return sharedVerify;
}

/** Default target lookback, seconds. */
export const DEFAULT_LOOKBACK_SECONDS = 30;

/**
 * The target's level envelope at a matched instant, as a Match field (none when the audio is not held); the
 * levels from `scratch` where its alignment's envelope search holds them.
 */
function targetEnvelopeAt(
  ring: SampleRing,
  sample: number,
  scratch: EnvelopeScratch,
): { targetEnvelope?: Uint8Array } {
  const env = sourceEnvelope(ring, sample, scratch);
  return env ? { targetEnvelope: env } : {};
}

/**
 * Target samples kept as Int16 (0.5 s): what the streaming fingerprinter reads right after each write
 * (feedRing's pieces of a quarter of it). Verification and alignment read every range as the 8-bit tier holds
 * it (sample_ring.ts), so a larger Int16 tier would only cost memory (4.1 s took 28 KB more per stream).
 */
export const TARGET_HOT_SAMPLES = 1 << 12;
/**
 * Target samples after the Int16 tier kept as 8-bit codes (10 s); older ones at 4 bits (sample_ring.ts). A
 * signature verified when its block ended up to 4 s ago (the bench's late signatures) reads samples up to 8.3 s
 * old (its block, 2 s of clock skew before it, rephasing and alignment margins): all 8-bit, with 2 s to spare for
 * actor scheduling. Only signatures later than ~6 s verify on 4-bit audio. Each second here costs 4 KB a stream.
 */
export const TARGET_WARM_SAMPLES = 10 * ANALYSIS_RATE;

/**
 * Frames a source anchor may be built from: older anchors expire (`anchor_expired`). 30 s rounded up to a power of
 * two, as the source's frame store held them when it fingerprinted every frame.
 */
const SOURCE_HELD_FRAMES = 2048;

/** Bytes of a frame in a FrameStore (bits, weak bits, energy, strong bits). */
const FRAME_STORE_BYTES = 14;
/**
 * Timeline bytes a second of a target stream's lookback costs with 20 ms messages (16.9 KB at 30 s, measured
 * over 1,000 live streams): {@link TargetPipeline.fullBytes}'s estimate.
 */
export const TIMELINE_BYTES_PER_SECOND = 560;

/**
 * The signatures (source) and coarse matches (target) of the message being taken, emptied by the pipeline's
 * `#take` before and after each use: one of each for every pipeline of the process, as the engine takes one
 * message at a time and nothing a message runs takes another. A list per pipeline was a cold line to empty and
 * fill per message (one per stream of a live sensor's hundreds).
 */
const sourceFound: Signature[] = [];
const targetFound: CoarseMatch[] = [];

/** Whether `over` changes nothing of `ids` (each of its ids is already in `ids`, with the same value). */
function sameOver(ids: Record<string, string>, over: Record<string, string>): boolean {
  for (const k in over) if (!Object.hasOwn(ids, k) || ids[k] !== over[k]) return false;
  return true;
}

function bump(rec: Record<string, number>, key: string): void {
  rec[key] = (rec[key] ?? 0) + 1;
}

/** Detector side: one per source stream. */
export class SourcePipeline {
  readonly measurement: string;
  readonly node: string;
  readonly pod: string;
  readonly stream: string;
  readonly decoder: StreamDecoder;
  readonly #params: Readonly<FingerprintParams> = FP_PARAMS;
  readonly #ring: SampleRing;
  /** feedRing's pieces: the most one write after the first adds besides a gap it fills. */
  readonly #piece: number;
  readonly #store: FrameStore;
  readonly #fp: Fingerprinter;
  readonly #vad: VadDecider;
  readonly #onset: OnsetDetector;
  #vadNext = -1;
  /** Every frame fingerprinted as it completes (the reference the default, anchors' blocks only, must equal). */
  readonly #eager: boolean;
  /**
   * The frame grid as if every frame were computed: its first frame (after the stream's start or a reset of the
   * ring) and the frames complete since. An anchor's block is ready, or expired, by these; `#store` holds only
   * the frames anchors asked for.
   */
  #gridStart = 0;
  #complete = 0;
  #started = false;
  /** Anchor frames waiting for their block. */
  #anchors: number[] = [];
  #lastAnchor = -1;
  /** Context ids in force from an analysis sample on (latest last). */
  #ids: { sample: number; ids: Record<string, string> }[] = [];
  #signatures = 0;
  readonly #skipped: Record<string, number> = {};

  /**
   * Throws RangeError on an invalid format or VAD setting, and Error if `criteria.vad_mode` is "webrtc" and
   * {@link initAudioEngine} has not completed.
   */
  constructor(opts: {
    measurement: string;
    node: string;
    pod: string;
    stream: string;
    format: AudioFormat;
    criteria: AudioCriteria;
    /** Fingerprint every frame rather than only the anchors' blocks (same signatures; for tests). */
    eagerFrames?: boolean;
  }) {
    this.measurement = opts.measurement;
    this.node = opts.node;
    this.pod = opts.pod;
    this.stream = opts.stream;
    this.#eager = opts.eagerFrames === true;
    const c = opts.criteria;
    this.#onset = new OnsetDetector(c);
    // The frames computed ahead of their anchor's block (#keep) span at most an onset's confirmation delay; a
    // block and a margin more.
    const hop = this.#params.hop;
    this.#store = new FrameStore(
      this.#eager
        ? SOURCE_HELD_FRAMES
        : SIGNATURE_FRAMES + Math.ceil((this.#onset.maxDelaySamples + 2 * VAD_FRAME) / hop) + 8,
    );
    // The timeline must still know an anchor when its block completes: an anchor older than the frames held is
    // dropped (anchor_expired) before the timeline is asked, so the frames' span and a second of slack suffice.
    this.decoder = new StreamDecoder(opts.format, {
      lookbackSamples: SOURCE_HELD_FRAMES * hop + this.#params.frame + ANALYSIS_RATE,
      keepTimeline: true,
      // #take copies each outcome's samples into the ring before the next push.
      reuseSamples: true,
      ringValues: true,
    });
    this.#ring = new SampleRing(4 * ANALYSIS_RATE);
    this.#piece = Math.min(this.#ring.capacity, this.#ring.hotCapacity) >> 2;
    this.#fp = new Fingerprinter(this.#ring, this.#store, new FrameAnalyzer(this.#params));
    this.#vad = c.vad_mode === "webrtc"
      ? new WebRtcVad(c.vad_aggressiveness)
      : new EnergyVad(c.energy_threshold);
  }

  /** Feeds one message; returns the signatures it completed. `ids`: context ids extracted from this message. */
  push(msg: MessageIn, ids?: Record<string, string>): Signature[] {
    const startSample = this.decoder.timeline.length;
    const out = this.decoder.push(msg);
    if (ids && Object.keys(ids).length > 0) this.#noteIds(startSample, ids);
    return this.#take(out, false);
  }

  /** End of stream: flushes the decoder and emits signatures for anchors whose block is at least partly there. */
  finish(): Signature[] {
    const tail = this.decoder.finish();
    const sigs = this.#take({ kind: "audio", messageIndex: -1, frames: 0, ...tail }, true);
    this.#vad.close();
    return sigs;
  }

  /**
   * Releases what the stream holds outside the JavaScript heap (its WebRTC VAD, an Opus decoder) without finishing
   * it: for an owner that drops the stream unfinished (a crashed Detector). Safe twice, and after {@link finish};
   * a push after it decodes no Opus and finds no speech.
   */
  close(): void {
    this.#vad.close();
    this.decoder.close();
  }

  /** Counters. */
  stats(): PipelineStats {
    return { ...baseStats(this.decoder, this.#skipped), signatures: this.#signatures };
  }

  /** Frames analysed so far (window, FFT, band energies), for benches and tests. */
  get framesAnalyzed(): number {
    return this.#fp.analyzed;
  }

  /** The oldest frame an anchor may be built from (frames before it are as good as gone). */
  get #heldStart(): number {
    return Math.max(this.#gridStart, this.#complete - SOURCE_HELD_FRAMES);
  }

  /** Spans of context ids held (a new one where the ids in force change), for tests. */
  get idSpans(): number {
    return this.#ids.length;
  }

  #noteIds(sample: number, ids: Record<string, string>): void {
    const prev = this.#ids[this.#ids.length - 1]?.ids ?? {};
    // The ids a stream's messages are given rarely change (a call's, sticky from its first message on): an entry
    // per message held ~1,600 copies of the same ids over the frames held, 136 KB of a source stream's heap.
    if (this.#ids.length > 0 && sameOver(prev, ids)) return;
    this.#ids.push({ sample, ids: { ...prev, ...ids } });
    // Keep what anchors still pending (or about to be) can ask for: the newest entry before the oldest frame.
    const oldest = this.#heldStart * this.#params.hop;
    while (this.#ids.length > 1 && this.#ids[1]!.sample <= oldest) this.#ids.shift();
  }

  #idsAt(sample: number): Record<string, string> {
    for (let i = this.#ids.length - 1; i >= 0; i--) {
      if (this.#ids[i]!.sample <= sample) return this.#ids[i]!.ids;
    }
    return {};
  }

  /** feedRing's callback for {@link #take}, made once (not a closure per message). */
  readonly #onFed = (reset: boolean): void => {
    if (reset) {
      this.#restartGrid();
      this.#vadNext = -1;
    }
    this.#advanceGrid();
    if (this.#eager) this.#fp.advance();
    this.#runVad();
    // Emit while the ring still holds the anchors' audio (a long message is fed in pieces).
    this.#emit(false, sourceFound);
    this.#keep(this.#ring.end + this.#piece);
  };

  #take(out: DecodeOutcome, final: boolean): Signature[] {
    const found = sourceFound;
    found.length = 0;
    if (out.kind !== "error") {
      const ring = this.#ring;
      const samples = (out.kind === "audio" ? out.ring : undefined) ?? out.samples;
      this.#keep(Math.max(ring.end, out.start + Math.min(samples.length, this.#piece)));
      feed(ring, out.start, samples, this.#onFed);
    }
    if (final) this.#emit(true, found);
    if (found.length === 0) return [];
    const sigs = found.slice();
    // The signatures are not kept alive by the scratch until the next message.
    found.length = 0;
    return sigs;
  }

  /**
   * Moves the grid on to the frames complete in the ring, as the fingerprinter's `advance` would (its restarts
   * included) without computing them.
   */
  #advanceGrid(): void {
    const ring = this.#ring;
    if (ring.empty) return;
    const { hop, frame } = this.#params;
    if (!this.#started || this.#complete * hop < ring.start) this.#restartGrid();
    this.#complete = Math.max(this.#complete, Math.floor((ring.end - frame) / hop) + 1);
  }

  /** Restarts the grid at the ring's start (the stream's first samples, a reset of the ring). */
  #restartGrid(): void {
    this.#fp.restart(this.#ring.start);
    this.#gridStart = this.#fp.nextFrame;
    this.#complete = this.#gridStart;
    this.#started = true;
  }

  /**
   * Before a write that may end the ring at `nextEnd`: computes the frames an anchor reported or still to be
   * reported may need whose samples that write may overwrite (an onset confirmed late, a block not complete when
   * a write fills a gap), so that the ring need not hold what the slowest anchor needs.
   */
  #keep(nextEnd: number): void {
    const ring = this.#ring;
    if (this.#eager || !this.#started || this.#vadNext < 0) return;
    const hop = this.#params.hop;
    const lost = nextEnd - ring.capacity;
    // An anchor reported from now on starts at or after the pending onset, or at or after the next VAD frame,
    // whose samples the write leaves in the ring.
    let need = Math.ceil((this.#vadNext * VAD_FRAME) / hop);
    let last = -1;
    const onset = this.#onset.pendingOnset;
    if (onset !== undefined) {
      need = Math.min(need, Math.ceil(onset / hop));
      last = Math.ceil(onset / hop) + SIGNATURE_FRAMES;
    }
    const anchors = this.#anchors;
    if (anchors.length > 0) {
      need = Math.min(need, anchors[0]!);
      last = Math.max(last, anchors[anchors.length - 1]! + SIGNATURE_FRAMES);
    }
    need = Math.max(need, this.#heldStart);
    // Frame `need` also reads the band energies of the frame before it (but at the grid's start).
    const seed = need > this.#gridStart ? need - 1 : need;
    if (seed * hop >= lost) return;
    this.#compute(need, Math.max(need + 1, Math.min(last, Math.ceil(lost / hop))));
  }

  /**
   * Computes frames [from, to) of the grid. A frame whose samples already left the ring (a bound of #keep that no
   * longer holds) costs the anchors that needed it, counted as `frames_lost` when their block is built, never the
   * stream: a sensor must not stop on one stream's bookkeeping.
   */
  #compute(from: number, to: number): void {
    try {
      this.#fp.advanceRange(from, to);
    } catch {
      // The store keeps what was computed; #build finds the block incomplete and counts it.
    }
  }

  #runVad(): void {
    const ring = this.#ring;
    if (ring.empty) return;
    if (this.#vadNext < 0) this.#vadNext = Math.ceil(ring.start / VAD_FRAME);
    const data = ring.data, mask = ring.mask;
    while ((this.#vadNext + 1) * VAD_FRAME <= ring.end) {
      const k = this.#vadNext++;
      const at = k * VAD_FRAME, timeline = this.decoder.timeline;
      const filled = timeline.isGap(at) && timeline.isGap(at + VAD_FRAME - 1);
      const anchor = this.#onset.push(k, this.#vad.decide(data, at, mask, filled));
      if (!anchor) continue;
      const n = Math.ceil(anchor.sample / this.#params.hop);
      if (n === this.#lastAnchor) continue;
      this.#lastAnchor = n;
      this.#anchors.push(n);
    }
  }

  /** Builds the signatures of the anchors whose block is complete (all of them when `final`) into `into`. */
  #emit(final: boolean, into: Signature[]): void {
    while (this.#anchors.length > 0) {
      const n = this.#anchors[0]!;
      if (!final && this.#complete < n + SIGNATURE_FRAMES) break;
      this.#anchors.shift();
      const sig = this.#build(n);
      if (sig) {
        into.push(sig);
        this.#signatures++;
      }
    }
  }

  #build(n: number): Signature | undefined {
    const store = this.#store;
    const hop = this.#params.hop;
    if (n < this.#heldStart) {
      bump(this.#skipped, "anchor_expired");
      return undefined;
    }
    const len = Math.min(SIGNATURE_FRAMES, this.#complete - n);
    if (len < MIN_SIGNATURE_FRAMES) {
      bump(this.#skipped, "short_block");
      return undefined;
    }
    this.#compute(n, n + len);
    if (!store.has(n, len)) {
      bump(this.#skipped, "frames_lost");
      return undefined;
    }
    const fingerprint = new Uint32Array(len);
    const mask = new Uint8Array((len + 7) >> 3);
    let peak = -Infinity;
    for (let j = 0; j < len; j++) peak = Math.max(peak, store.energy[(n + j) & store.mask]!);
    const floor = Math.max(peak - MASK_BELOW_PEAK_DB, MASK_ABSOLUTE_DB);
    const frameLen = this.#params.frame;
    const gaps = this.decoder.timeline.gaps(n * hop, (n + len - 1) * hop + frameLen);
    let used = 0;
    for (let j = 0; j < len; j++) {
      const i = (n + j) & store.mask;
      fingerprint[j] = store.bits[i]!;
      const a = (n + j) * hop, b = a + frameLen;
      const inGap = gaps.some((g) => g.start < b && g.end > a - hop);
      if (store.energy[i]! < floor || inGap) mask[j >> 3] = mask[j >> 3]! | (1 << (j & 7));
      else used++;
    }
    if (used < MIN_SIGNATURE_FRAMES) {
      bump(this.#skipped, "quiet_block");
      return undefined;
    }
    const instant = n * hop + INSTANT_OFFSET;
    const loc = this.decoder.timeline.locate(instant);
    if (!loc || loc.gap) {
      bump(this.#skipped, loc ? "anchor_in_gap" : "anchor_unmapped");
      return undefined;
    }
    const envelope = sourceEnvelope(this.#ring, instant);
    if (!envelope) bump(this.#skipped, "no_envelope");
    return buildSignature({
      measurement: this.measurement,
      node: this.node,
      pod: this.pod,
      stream: this.stream,
      timeNs: loc.timeNs,
      offsetMs: loc.offsetMs,
      fingerprint,
      mask,
      levelEnvelope: envelope,
      waveSigns: sourceWaveSigns(this.#ring, instant),
      ids: this.#idsAt(instant),
    });
  }
}

/** Matcher side: one per target stream (a stage of a measurement). */
export class TargetPipeline {
  readonly measurement: string;
  readonly stage: string;
  readonly node: string;
  readonly pod: string;
  readonly stream: string;
  readonly decoder: StreamDecoder;
  readonly lookbackSeconds: number;
  readonly #params: Readonly<FingerprintParams> = FP_PARAMS;
  readonly #ring: SampleRing;
  readonly #store: FrameStore;
  readonly #fp: Fingerprinter;
  readonly #matcher: TargetMatcher;
  readonly #aligner: FineAligner;
  /** Capture time and first analysis sample of recent messages, for the backward search's time bound. */
  readonly #times: CaptureTimes;
  /** The capture-time gap hints worked out so far (see gap_hints.ts). */
  readonly #gapMemo = new GapHintMemo();
  /** Messages carry RTP timestamps: gaps are in the timeline, not to be guessed from capture times. */
  #mediaClocked = false;
  #matches = 0;
  readonly #skipped: Record<string, number> = {};
  /** How much wider than the matcher's own CLOCK_SKEW_NS the search before the source instant is, ns (>= 0). */
  #extraBeforeNs = 0n;

  /**
   * `lookbackSeconds` (default 30): target audio kept for the backward search and alignment. `thresholdBer`
   * and `margin` override the {@link DEFAULT_THRESHOLDS}. `searchBeforeNs` (default CLOCK_SKEW_NS, 2 s): target audio
   * captured up to this long before a signature's source instant is searched (clock skew between nodes).
   */
  constructor(opts: {
    measurement: string;
    stage: string;
    node: string;
    pod: string;
    stream: string;
    format: AudioFormat;
    index: SignatureIndex;
    lookbackSeconds?: number;
    thresholdBer?: number;
    margin?: number;
    minZ?: number;
    searchBeforeNs?: bigint;
    /** Newest samples kept as Int16 (default {@link TARGET_HOT_SAMPLES}). */
    ringHotSamples?: number;
    /** Samples after those kept 8-bit, the rest of the lookback 4-bit (default {@link TARGET_WARM_SAMPLES}). */
    ringWarmSamples?: number;
    /**
     * Recent frames of the measurement's target streams, for the backward search (default: shared by every
     * pipeline of `index`).
     */
    recent?: RecentFrames;
  }) {
    this.measurement = opts.measurement;
    this.stage = opts.stage;
    if (opts.searchBeforeNs !== undefined) this.searchBeforeNs = opts.searchBeforeNs;
    this.node = opts.node;
    this.pod = opts.pod;
    this.stream = opts.stream;
    const lb = opts.lookbackSeconds ?? DEFAULT_LOOKBACK_SECONDS;
    if (!(lb > 0 && lb <= 3600)) throw new RangeError(`lookbackSeconds must be in (0, 3600], got ${lb}`);
    this.lookbackSeconds = lb;
    const { hop, frame } = this.#params;
    const blockSamples = (SIGNATURE_FRAMES + 16) * hop + frame;
    const keep = Math.ceil(lb * ANALYSIS_RATE) + blockSamples;
    this.decoder = new StreamDecoder(opts.format, {
      lookbackSamples: keep + ANALYSIS_RATE,
      keepTimeline: true,
      // #take copies each outcome's samples into the ring before the next push.
      reuseSamples: true,
      ringValues: true,
    });
    // A frame's length more than the frames held start in (its samples are read when the oldest is verified).
    this.#ring = new SampleRing(keep + frame, {
      hotSamples: opts.ringHotSamples ?? TARGET_HOT_SAMPLES,
      warmSamples: opts.ringWarmSamples ?? TARGET_WARM_SAMPLES,
    });
    this.#store = new FrameStore(Math.ceil(keep / hop));
    // Entries before the frames held are never read (see #noteTime).
    this.#times = new CaptureTimes(this.decoder.timeline, { horizonSamples: this.#store.capacity * hop });
    const analyzer = new FrameAnalyzer(this.#params);
    this.#fp = new Fingerprinter(this.#ring, this.#store, analyzer);
    const { aligner, rephaser } = verifyScratch();
    this.#aligner = aligner;
    const rule: MatchThresholds = {
      thresholdBer: opts.thresholdBer ?? DEFAULT_THRESHOLDS.thresholdBer,
      margin: opts.margin ?? DEFAULT_THRESHOLDS.margin,
      minZ: opts.minZ ?? DEFAULT_THRESHOLDS.minZ,
    };
    this.#matcher = new TargetMatcher({
      index: opts.index,
      ...(opts.recent ? { recent: opts.recent } : {}),
      tag: this,
      store: this.#store,
      rule,
      hop,
      // The matcher bounds the search at source − CLOCK_SKEW_NS; a wider window is the same bound applied to
      // target times seen that much later (0 by default: the very same arithmetic as without the option).
      timeOfSample: (k) => {
        const t = this.decoder.timeline.locate(k)?.timeNs;
        return t === undefined || this.#extraBeforeNs === 0n ? t : t + this.#extraBeforeNs;
      },
      firstSampleAtOrAfter: (t) => this.#firstSampleAtOrAfter(t - this.#extraBeforeNs),
      sampleAtOrBefore: (t, slackNs) =>
        this.#times.sampleAtOrBefore(t - this.#extraBeforeNs, this.decoder.timeline.length, slackNs),
      rephase: (sig, frame) => rephaser.run(this.#ring, sig, frame),
      gapAt: (from, to, shift) =>
        this.#gaps(from * hop, to * hop).some((g) => Math.abs(g.len - shift * hop) <= GAP_SLACK_FRAMES * hop),
      gapsIn: (from, to) => this.#gaps(from, to),
    });
  }

  /** Target audio captured up to this long before a signature's source instant is searched, ns. */
  get searchBeforeNs(): bigint {
    return CLOCK_SKEW_NS + this.#extraBeforeNs;
  }

  /**
   * Widens the search (never narrower than CLOCK_SKEW_NS) before the source instant, e.g. to the clock
   * offset the skew estimator measured; applies to the searches from now on.
   */
  set searchBeforeNs(ns: bigint) {
    this.#extraBeforeNs = ns > CLOCK_SKEW_NS ? ns - CLOCK_SKEW_NS : 0n;
  }

  /** New target audio searched against the active signatures (forward order). */
  push(msg: MessageIn): Match[] {
    const startSample = this.decoder.timeline.length;
    const out = this.decoder.push(msg);
    if (msg.mediaClock) this.#mediaClocked = true;
    if (out.kind === "error") return [];
    if (out.kind === "audio" && out.mediaGap) {
      // The gap and the message's own audio each at their own time: capture times then agree with samples.
      this.#noteTime(out.mediaGap.timeNs, startSample);
      this.#noteTime(msg.timeNs, out.mediaGap.audioStart);
    } else this.#noteTime(msg.timeNs, startSample);
    return this.#take(out.start, (out.kind === "audio" ? out.ring : undefined) ?? out.samples, false);
  }

  /** A signature that just arrived, searched in this stream's lookback (backward order). */
  searchSignature(sig: Signature): Match[] {
    return this.#toMatches(this.#matcher.searchBackward(sig));
  }

  /** End of stream: flushes the decoder and verifies what is pending with the frames there are. */
  finish(): Match[] {
    const tail = this.decoder.finish();
    return this.#take(tail.start, tail.samples, true);
  }

  /** Counters. */
  stats(): PipelineStats & { matcher: MatcherStats } {
    return {
      ...baseStats(this.decoder, this.#skipped),
      matches: this.#matches,
      matcher: this.#matcher.stats(),
    };
  }

  /**
   * Bytes held per stream by the lookback (samples, frames, timeline, capture times) and the matcher's tables,
   * for capacity planning.
   */
  memoryBytes(): number {
    const b = this.memoryBreakdown();
    return b.samples + b.frames + b.timeline + b.captureTimes + b.matcher;
  }

  /** {@link memoryBytes} by part. */
  memoryBreakdown(): {
    samples: number;
    frames: number;
    timeline: number;
    captureTimes: number;
    matcher: number;
  } {
    return {
      samples: this.#ring.bytes,
      frames: this.#store.bytes,
      timeline: this.decoder.timeline.bytes,
      captureTimes: this.#times.bytes,
      matcher: this.#matcher.bytes,
    };
  }

  /**
   * Bytes a target stream with `lookbackSeconds` (and the default tiers) holds once its lookback is full: its
   * samples and frames exactly, its timeline as measured for 20 ms messages ({@link TIMELINE_BYTES_PER_SECOND});
   * the matcher's tables (a few KB) are left to the caller's per-stream overhead. For memory budgets.
   */
  static fullBytes(lookbackSeconds: number = DEFAULT_LOOKBACK_SECONDS): number {
    const { hop, frame } = FP_PARAMS;
    const keep = Math.ceil(lookbackSeconds * ANALYSIS_RATE) + (SIGNATURE_FRAMES + 16) * hop + frame;
    const ring = new SampleRing(keep + frame, {
      hotSamples: TARGET_HOT_SAMPLES,
      warmSamples: TARGET_WARM_SAMPLES,
    });
    let frames = 64;
    while (frames < Math.ceil(keep / hop)) frames *= 2;
    return ring.fullBytes + frames * FRAME_STORE_BYTES +
      Math.ceil(lookbackSeconds * TIMELINE_BYTES_PER_SECOND);
  }

  /** feedRing's callback for {@link #take}, made once (not a closure per message). */
  readonly #onFed = (reset: boolean): void => {
    if (reset) this.#fp.restart(this.#ring.start);
    const from = this.#store.end;
    this.#fp.advance();
    this.#matcher.onFrames(from, this.#store.end, false, targetFound);
  };

  #take(start: number, samples: Float32Array | Int16Array, final: boolean): Match[] {
    const found = targetFound;
    found.length = 0;
    feed(this.#ring, start, samples, this.#onFed);
    if (final) this.#matcher.onFrames(this.#store.end, this.#store.end, true, found);
    const out = found.length === 0 ? [] : this.#toMatches(found);
    // Matches and their signatures are not kept alive by the scratch until the next message.
    found.length = 0;
    return out;
  }

  #noteTime(t: bigint, sample: number): void {
    // Pruned every PRUNE_EVERY messages: entries before the lookback are never read.
    this.#times.push(t, sample, this.#store.start * this.#params.hop);
  }

  /** Gap hints (see gap_hints.ts) that an envelope search around analysis sample `k` can meet. */
  #gapsNear(k: number): GapHint[] {
    const reach = ENVELOPE_RANGE - ENV_FROM + ENV_TO;
    return this.#gaps(k - reach, k + reach);
  }

  /**
   * Capture-time gap hints whose first sample after the gap lies in [from, to) (analysis samples). None for a
   * stream with a media clock (RTP): its timeline already holds every lost or unsent stretch exactly, and its
   * capture times only show network jitter (ffmpeg sends Opus packets in pairs: every other one "late").
   */
  #gaps(from: number, to: number): GapHint[] {
    if (this.#mediaClocked) return [];
    return gapHintsOf(this.#times, this.decoder.timeline.length, ANALYSIS_RATE, from, to, this.#gapMemo);
  }

  /** Level (dB, ring scale) of analysis samples [from, to), or -Infinity when not held. */
  #levelDb(from: number, to: number): number {
    const ring = this.#ring;
    if (to <= from || !ring.has(from, to - from)) return -Infinity;
    let e = 0;
    for (let i = from; i < to; i++) {
      const v = ring.data[i & ring.mask]!;
      e += v * v;
    }
    return 10 * Math.log10(e / (to - from) + 1e-2);
  }

  #firstSampleAtOrAfter(t: bigint): number {
    return this.#times.firstSampleAtOrAfter(t, this.decoder.timeline.length);
  }

  #toMatches(found: CoarseMatch[]): Match[] {
    const out: Match[] = [];
    const hop = this.#params.hop;
    for (const m of found) {
      const sig = m.sig;
      if (m.instantNotSent) {
        // Scored in parts across a pause the sender left out, the instant inside it: no message carries it. The
        // parts' verdict does not depend on which part the vote found (parts.ts climbs to the same hypothesis),
        // so the forward and backward searches, a live sensor and `analyze` of its capture, agree.
        bump(this.#skipped, "instant_not_sent");
        continue;
      }
      // The envelope looks beyond ±ALIGN_RANGE only when something says the coarse frame may be that far off:
      // a split block, or a capture-time gap near the instant or anywhere in the block (losses inside the block
      // pull the whole-block alignment toward the audio after them). Otherwise far peaks are only chances to go
      // wrong (noisy re-anchored instants inside long utterances jumped 90–140 ms to a similar syllable).
      const gaps = this.#gapsNear(m.frame * hop);
      const inBlock = this.#gaps(m.frame * hop, (m.frame + sig.fingerprint.length) * hop);
      const al = this.#aligner.align(
        this.#ring,
        this.#store,
        sig.fingerprint,
        sig.mask,
        sig.levelEnvelope,
        m.frame,
        ALIGN_RANGE,
        m.split || gaps.length > 0 || inBlock.length > 0 ? ENVELOPE_RANGE : ALIGN_RANGE,
        gaps,
        sig.waveSigns,
      );
      if (al?.instantInGap) {
        // Never report a neighbour of audio that was not sent (DTX) or lost: the instant has no message here.
        bump(this.#skipped, "instant_not_sent");
        continue;
      }
      let sample = m.frame * hop + INSTANT_OFFSET;
      let ber = plainBer(sig.fingerprint, sig.mask, this.#store, m.frame);
      if (al) {
        if (al.by === "fingerprint") bump(this.#skipped, "aligned_without_envelope");
        sample = al.sample + INSTANT_OFFSET;
        if (Number.isFinite(al.ber)) ber = al.ber;
        // In an onset's soft start the sender left out, or in a comfort-noise message alone in a pause (whose
        // noise only has the level of what it replaces): not the call's audio.
        if (inSuppressedOnset(sample, gaps, (a, b) => this.#levelDb(a, b)) || inLonePart(sample, gaps)) {
          bump(this.#skipped, "instant_not_sent");
          continue;
        }
      } else bump(this.#skipped, "not_aligned");
      const loc = this.decoder.timeline.locate(sample);
      if (!loc) {
        bump(this.#skipped, "target_unmapped");
        continue;
      }
      if (this.#mediaClocked && loc.gap) {
        // RTP: the instant lies in audio the sender never sent or the network lost (the media clock says so).
        bump(this.#skipped, "instant_not_sent");
        continue;
      }
      const src = m.sig.source;
      out.push({
        measurement: this.measurement,
        stage: this.stage,
        signatureId: m.sig.id,
        ids: m.sig.ids,
        source: src,
        target: {
          node: this.node,
          pod: this.pod,
          stream: this.stream,
          timeNs: loc.timeNs,
          offsetMs: loc.offsetMs,
        },
        latencyS: Number(loc.timeNs - src.timeNs) / 1e9,
        ber,
        ...(targetEnvelopeAt(this.#ring, sample, verifyScratch().envelope)),
      });
    }
    this.#matches += out.length;
    return out;
  }
}
