/**
 * One stream's decode chain: payload → Pixie marker check → envelope → encoding → codec → channel → resampler,
 * with a {@link Timeline} that maps every analysis sample back to its message.
 *
 * Failures are counted by reason and the message is skipped (it owns no samples). Pixie markers (a body cut at the
 * capture limit, or dropped) stand for audio that existed but cannot be read: a gap of silence of the estimated
 * length is inserted, so the audio after it stays at its true place on the timeline. With `keepTimeline`, audio
 * that was sent but arrived damaged (an odd byte count, bad base64/hex/binary, no payload at all) keeps its place
 * the same way: whole frames are decoded, and what cannot be read becomes a gap of its expected length.
 *
 * Media clock (RTP): a message may carry its RTP timestamp. The decoder knows where the next message should start
 * in RTP time; one that starts later (a lost packet, silence suppression, DTMF events that replaced audio) gets a
 * gap of exactly the missing length inserted before it, so every later sample keeps its exact place; one that
 * starts earlier (a duplicate, a reordered packet that slipped through) loses its overlapping part instead of
 * shifting the timeline, unless a second message in a row lies wholly behind, just where the first ended: the
 * sender's clock stepped back, and the decoder follows it. Stateful codecs (G.722, Opus) have one decoder per stream, owned here; Opus conceals
 * lost audio with libopus's packet loss concealment.
 * @module
 */

import { parseProtobufPath } from "./protobuf_path.ts";
import {
  ALAW_TO_LINEAR,
  allocSamples,
  type AudioCodec,
  bytesPerSample,
  type Codec,
  type CodecErrorReason,
  decodeSamples,
  isSampleCodec,
  MULAW_TO_LINEAR,
} from "./codecs.ts";
import { RING_SCALE } from "./sample_ring.ts";
import { G722_RATE, G722Decoder } from "./g722.ts";
import { OPUS_PLC_MS, OPUS_RATES, OpusStreamDecoder } from "./opus.ts";
import { selectChannel } from "./channels.ts";
import {
  decodeBase64Span,
  decodedLengthEstimate,
  decodeField,
  type DecodeFieldResult,
  decodeJsonBase64Field,
  type EncodingErrorReason,
  encodingRatio,
} from "./encoding.ts";
import { type BytePath, bytePath, BYTES_BAD, BYTES_MISSING } from "./json_scan_bytes.ts";
import {
  compileJsonPath,
  detectPixieMarker,
  type EnvelopeErrorReason,
  extractAudioFieldView,
  fieldAsText,
  PayloadEnvelope,
  type PixieMarker,
  regexGroupCount,
} from "./payload.ts";
import { analysisIndexOf, checkNativeRate, Resampler } from "./resample.ts";
import { Timeline, type TimelineOptions } from "./timeline.ts";
import type { AudioFormat } from "../types.ts";

/**
 * Every reason a message can be skipped (or, with `keepTimeline`, repaired). `finished`: pushed after
 * {@link StreamDecoder.finish}; `missing_payload`: no payload at all; `not_audio`: a message whose codec is
 * `event` (RTP telephone-event); `codec_change`: a codec other than the stream's that cannot be decoded in its
 * place; `media_overlap`: all of its audio lies before where the media clock says the stream is.
 */
export type DecodeErrorReason =
  | EnvelopeErrorReason
  | EncodingErrorReason
  | CodecErrorReason
  | "finished"
  | "missing_payload"
  | "not_audio"
  | "codec_change"
  | "media_overlap";

/** All skip reasons, for exporting counters with stable labels. */
export const DECODE_ERROR_REASONS: readonly DecodeErrorReason[] = [
  "bad_json",
  "missing_path",
  "not_a_string",
  "no_regex_match",
  "short_payload",
  "bad_protobuf",
  "bad_base64",
  "bad_hex",
  "bad_binary",
  "odd_byte_count",
  "bad_packet",
  "codec_unavailable",
  "finished",
  "missing_payload",
  "not_audio",
  "codec_change",
  "media_overlap",
];

/** Where a message's audio sits on its stream's media (RTP) clock. */
export interface MediaClock {
  /** RTP timestamp of the message's first sample (uint32, wraps). */
  ts: number;
  /** Timestamp units per second (G.722: 8000 although its audio is 16 kHz; Opus: 48000). */
  clockRate: number;
}

/**
 * The codec of one message when it can differ from the stream's (RTP payload types). `event` marks a message
 * that is not audio (telephone-event): it is skipped and counted, and the audio it replaced becomes a gap when
 * the next audio message's timestamp shows it. The lead's `RtpCodec` fits this shape.
 */
export interface MessageCodec {
  codec: AudioCodec | "event";
  /** Decoded audio rate, Hz. */
  sampleRate: number;
  /** Channels; the stream's when absent. */
  channels?: number;
}

/** One captured message of a stream. */
export interface StreamMessage {
  /** Capture time (`time_`), ns since the epoch. */
  timeNs: bigint;
  /**
   * The payload cell; pass the {@link PayloadEnvelope} already used for the stream key to reuse its parse.
   * Undefined: the row had no payload (counted `missing_payload`; with `keepTimeline` a gap of the median recent
   * message length keeps the timeline in place).
   */
  payload?: Uint8Array | PayloadEnvelope;
  /** Original body size (`*_body_size` column) when known: sizes the gap of a truncated or removed body. */
  bodySize?: number;
  /** RTP: the message's place on the media clock; gaps and overlaps follow from it (see the module doc). */
  mediaClock?: MediaClock;
  /** RTP: this message's codec when the stream can change payload type (the stream's format otherwise). */
  codec?: MessageCodec;
}

/** New analysis samples: `samples[i]` is analysis sample `start + i` of the stream. */
export interface SampleBlock {
  start: number;
  samples: Float32Array;
}

/**
 * What one pushed message did. Audio and marker outcomes carry the analysis samples that became computable
 * (the resampler's lookahead means they may end before, or start inside, earlier messages' audio; use the
 * timeline to map them). `frames`/`gapFrames` are native samples the message added to the stream.
 */
export type DecodeOutcome =
  | (SampleBlock & {
    kind: "audio";
    messageIndex: number;
    frames: number;
    repaired?: DecodeErrorReason;
    mediaGap?: MediaGap;
    /**
     * The message's analysis samples as the sample ring's Int16 values, instead of `samples` (then empty): see
     * {@link StreamDecoderOptions.ringValues}.
     */
    ring?: Int16Array;
  })
  | (SampleBlock & { kind: "marker"; messageIndex: number; marker: PixieMarker; gapFrames: number })
  | (SampleBlock & { kind: "gap"; messageIndex: number; reason: DecodeErrorReason; gapFrames: number })
  | { kind: "error"; messageIndex: number; reason: DecodeErrorReason };

/**
 * A gap the media clock put before a message's audio. Its span on the timeline is flagged `gap` and timed
 * `timeNs`; the message's own audio starts at analysis sample `audioStart`.
 */
export interface MediaGap {
  /** Native samples of the gap (silence, or Opus concealment). */
  frames: number;
  /** Capture time given to the gap's span (see {@link StreamDecoder}: interpolated). */
  timeNs: bigint;
  /** First analysis sample of the message's own audio, after the gap. */
  audioStart: number;
}

/** Counters of one stream. */
export interface DecoderStats {
  /** Messages pushed. */
  messages: number;
  /** Messages whose audio was decoded (possibly empty). */
  decoded: number;
  markers: Record<PixieMarker, number>;
  errors: Record<DecodeErrorReason, number>;
  /** Messages whose `time_` was earlier than the previous message's (kept in arrival order). */
  outOfOrder: number;
  /** Markers whose gap length had no basis (no body size, no earlier audio): no gap was inserted. */
  unsizedGaps: number;
  /** Native samples of silence inserted for markers. */
  gapFrames: number;
  /** Native samples of gaps inserted for damaged or missing payloads (`keepTimeline`). */
  repairedFrames: number;
  /** Gaps the media clock showed (lost packets, silence suppression), and their native samples. */
  mediaGaps: number;
  mediaGapFrames: number;
  /** Of those, native samples filled by the codec's loss concealment (Opus) rather than silence. */
  concealedFrames: number;
  /** Native samples dropped because the media clock had already passed them (duplicates, late reorders). */
  overlapFrames: number;
  /**
   * Media clock discontinuities: beyond `maxGapSeconds` either way (a timestamp reset: resynchronised, no gap),
   * and steps back seen in two messages in a row wholly behind the clock, contiguous with each other (the clock
   * follows the sender from the second; the first, dropped, is a gap of its length).
   */
  clockJumps: number;
  /** Messages decoded with a codec other than the stream's, where that is exact (same rate, stateless). */
  codecSwitches: number;
}

/** Options of a {@link StreamDecoder}. */
export interface StreamDecoderOptions extends TimelineOptions {
  /**
   * Longest gap inserted for one marker or media clock jump, in seconds (bounds memory on a bogus body size or
   * timestamp). Default 30.
   */
  maxGapSeconds?: number;
  /**
   * Keep damaged messages' place on the timeline instead of skipping them: an odd byte count decodes its whole
   * frames (plus a silent last frame for the missing byte), a field whose base64/hex/binary is invalid, an Opus
   * packet whose framing is malformed and a missing payload become a gap of their expected length. Counted by
   * reason either way. Default false (the message is skipped and owns no samples); the pipelines turn it on.
   */
  keepTimeline?: boolean;
  /**
   * Decode into a buffer the decoder reuses: an outcome's `samples` may then be a view that the next
   * {@link StreamDecoder.push} overwrites, so they must be used before it (the pipelines copy them into their
   * rings at once). Saves an array per message: at 8 kHz mono, views of 128 KiB slabs, ~1.1 GB of them for a
   * 35 s capture of 1,000 streams, freed only as the collector finds them. Default false: every outcome's samples
   * stay as they are.
   */
  reuseSamples?: boolean;
  /**
   * With `reuseSamples`: a μ-law or A-law message of an 8 kHz mono stream without a media clock (a telephony tap's
   * usual message) is decoded straight to the sample ring's Int16 values, its outcome's `ring` (a reused buffer
   * too), its `samples` then empty. The ring would round the float samples to the very same values (G.711's
   * linear values are multiples of 4: exact at {@link RING_SCALE}); the float array and that rounding, per
   * sample, are what it saves. The buffer is one for the process, reused by the next push of any decoder: it
   * stays in the CPU's cache, where one a stream was a cache miss a message with a thousand streams (the
   * pipelines copy it into their rings at once). Default false.
   */
  ringValues?: boolean;
}

/** Ring value ({@link RING_SCALE} = 1.0) of each μ-law and A-law code: its linear value / 4, exact. */
const MULAW_RING = Int16Array.from(MULAW_TO_LINEAR, (v) => (v * RING_SCALE) / 32768);
const ALAW_RING = Int16Array.from(ALAW_TO_LINEAR, (v) => (v * RING_SCALE) / 32768);
const NO_SAMPLES = new Float32Array(0);
/** The last G.711 message's ring values, of whichever decoder (see {@link StreamDecoderOptions.ringValues}). */
let ringBuf = new Int16Array(0);

const MAX_CHANNELS = 64;
/** Good messages remembered for the median duration that sizes gaps without a body size. */
const RECENT = 15;

/** Checks an audio format; returns error messages (empty when valid). */
export function checkAudioFormat(fmt: AudioFormat): string[] {
  const errors: string[] = [];
  if (fmt.envelope === "json" && fmt.path.trim() === "") errors.push("json envelope needs a non-empty path");
  if (fmt.envelope === "protobuf" && parseProtobufPath(fmt.path) === undefined) {
    errors.push(`protobuf path must be field numbers such as 2 or 1.3, not ${JSON.stringify(fmt.path)}`);
  }
  if (fmt.envelope === "regex") {
    const groups = regexGroupCount(fmt.path);
    if (groups === undefined) errors.push(`regex path does not compile: ${fmt.path}`);
    else if (groups < 1) errors.push("regex path needs a capture group (group 1 is the audio)");
  }
  if (!Number.isInteger(fmt.skip_bytes) || fmt.skip_bytes < 0) {
    errors.push("skip_bytes must be an integer >= 0");
  }
  const rate = checkNativeRate(fmt.sample_rate);
  if (rate) errors.push(rate);
  if (fmt.codec === "g722" && (fmt.sample_rate !== G722_RATE || fmt.channels !== 1)) {
    errors.push(`g722 is mono ${G722_RATE} Hz audio`);
  }
  if (fmt.codec === "opus" && !OPUS_RATES.includes(fmt.sample_rate)) {
    errors.push(`opus decodes at ${OPUS_RATES.join(", ")} Hz`);
  }
  if (fmt.codec === "opus" && fmt.channels > 2) errors.push("opus streams decode to 1 or 2 channels");
  if (!Number.isInteger(fmt.channels) || fmt.channels < 1 || fmt.channels > MAX_CHANNELS) {
    errors.push(`channels must be an integer in 1..${MAX_CHANNELS}`);
  } else if (
    fmt.channel !== "mix" &&
    (!Number.isInteger(fmt.channel) || fmt.channel < 0 || fmt.channel >= fmt.channels)
  ) {
    errors.push(`channel must be "mix" or an integer in 0..${fmt.channels - 1}`);
  }
  return errors;
}

/** Opus packets held (as audio-time, at most this many seconds) while the stream's decoder instantiates. */
const BACKLOG_SECONDS = 5;

/**
 * A backlog entry: a packet to decode, native frames to conceal or leave silent, or samples already made (a
 * lost body's gap), in timeline order.
 */
type Pending =
  | { packet: Uint8Array; drop: number }
  | { conceal: number }
  | { silence: number }
  | { samples: Float32Array };

/**
 * Decodes one stream's messages into a continuous 8 kHz analysis timeline.
 *
 * Media clock gaps: the gap's span is timed by interpolating between the capture times of the message before it
 * (whose audio ended where the gap starts) and the message after it (whose audio ends one message after the gap
 * ends), in proportion to RTP time: the time the missing audio would have arrived had it come at the same pace.
 * It lies between its neighbours' times whatever the jitter, so capture-time lookups stay monotonic, and the gap
 * hints (capture time versus samples) see no loss where the samples already account for it.
 */
export class StreamDecoder {
  readonly format: AudioFormat;
  /** Maps analysis samples back to messages (`decoder.timeline.locate(k)`). */
  readonly timeline: Timeline;
  readonly #resampler: Resampler;
  /** Bytes per native frame; 0.5 for G.722; NaN for Opus (packets vary). */
  readonly #bytesPerFrame: number;
  readonly #maxGapFrames: number;
  readonly #maxGapSeconds: number;
  readonly #keepTimeline: boolean;
  readonly #reuseSamples: boolean;
  readonly #ringValues: boolean;
  /** One channel, taken as it is (selectChannel's mono case). */
  readonly #monoChannel: boolean;
  readonly #g722: G722Decoder | undefined;
  readonly #opus: OpusStreamDecoder | undefined;
  /** The audio path of a JSON envelope with a base64 field (see {@link decodeJsonBase64Field}). */
  readonly #jsonBase64Path: BytePath | undefined;
  #messages = 0;
  #decoded = 0;
  #markers: Record<PixieMarker, number> = { truncated: 0, removed: 0 };
  #errors = Object.fromEntries(DECODE_ERROR_REASONS.map((r) => [r, 0])) as Record<DecodeErrorReason, number>;
  #outOfOrder = 0;
  #unsizedGaps = 0;
  #gapFrames = 0;
  #repairedFrames = 0;
  #mediaGaps = 0;
  #mediaGapFrames = 0;
  #concealedFrames = 0;
  #overlapFrames = 0;
  #clockJumps = 0;
  #codecSwitches = 0;
  #lastTime: bigint | undefined;
  /** Payload size and native frames of the latest good message with audio: the yardstick for lost bodies. */
  #lastSize: number | undefined;
  #lastFrames = 0;
  /**
   * Native frames of the latest {@link RECENT} good messages with audio, a ring (`#recentCount` held), but for
   * the last `#repeats` of them: that many more of `#lastFrames`, written when the length changes or the median
   * is wanted. A tap's messages are all of one length: the ring is then written once, not a message (its array
   * is memory of its own, a cache miss a message with a thousand streams).
   */
  #recent = new Float64Array(RECENT);
  #recentCount = 0;
  #recentAt = 0;
  #repeats = 0;
  #finished = false;
  /**
   * Bytes of a frame the last message broke off (its silent last frame stands for it, see {@link push}); 0 when
   * it ended on a whole frame.
   */
  #partial = 0;
  #scratchBuf = new Float32Array(0);
  /** Media clock: where the next message should start (uint32), its rate, and the last clock message's time. */
  #nextTs: number | undefined;
  #clockRate = 0;
  #clockTime = 0n;
  /**
   * Where the last message dropped whole as `media_overlap` ended on the media clock (uint32), and its ticks; -1
   * when the last clocked message was not such a drop. A second one starting exactly there is a clock that
   * stepped back, not a duplicate.
   */
  #behindEnd = -1;
  #behindTicks = 0;
  /** Opus packets (and gaps among them) waiting for the decoder to be ready, with their native frames. */
  #backlog: Pending[] = [];
  #backlogFrames = 0;

  /** Throws RangeError if `format` fails {@link checkAudioFormat} (config validation should have caught it). */
  constructor(format: AudioFormat, opts: StreamDecoderOptions = {}) {
    const errors = checkAudioFormat(format);
    if (errors.length) throw new RangeError(`invalid audio format: ${errors.join("; ")}`);
    this.format = format;
    this.timeline = new Timeline(format.sample_rate, opts);
    this.#resampler = new Resampler(format.sample_rate);
    const codec = format.codec;
    this.#bytesPerFrame = isSampleCodec(codec)
      ? bytesPerSample(codec) * format.channels
      : codec === "g722"
      ? 0.5
      : NaN;
    this.#maxGapSeconds = opts.maxGapSeconds ?? 30;
    this.#maxGapFrames = Math.floor(this.#maxGapSeconds * format.sample_rate);
    this.#keepTimeline = opts.keepTimeline ?? false;
    this.#reuseSamples = opts.reuseSamples ?? false;
    this.#ringValues = this.#reuseSamples && (opts.ringValues ?? false);
    this.#monoChannel = format.channels === 1 && (format.channel === 0 || format.channel === "mix");
    if (format.envelope === "json" && format.encoding === "base64") {
      this.#jsonBase64Path = bytePath(compileJsonPath(format.path));
    }
    if (codec === "g722") this.#g722 = new G722Decoder();
    if (codec === "opus") this.#opus = new OpusStreamDecoder(format.sample_rate, format.channels);
  }

  /** Analysis samples emitted so far; the next outcome's `start`. */
  get length(): number {
    return this.#resampler.outputLength;
  }

  /** Decodes one message and appends its audio (or a gap) to the stream. Never throws on message content. */
  push(msg: StreamMessage): DecodeOutcome {
    const messageIndex = this.#messages++;
    // The previous message's broken last frame stands only for the frame this message may complete.
    const partial = this.#partial;
    this.#partial = 0;
    if (this.#finished) return this.#fail(messageIndex, "finished");
    if (this.#lastTime !== undefined && msg.timeNs < this.#lastTime) this.#outOfOrder++;
    this.#lastTime = msg.timeNs;

    if (msg.payload === undefined) return this.#repair(messageIndex, msg, "missing_payload", undefined);
    const env = msg.payload instanceof PayloadEnvelope ? msg.payload : undefined;
    const bytes = env ? env.bytes : msg.payload as Uint8Array;
    // Pixie cuts a body at its parse limit without a marker: only the original size shows it. A message on a media
    // clock (RTP, from a packet capture) never passed through Pixie: bytes that read like a marker are its audio
    // (the clock, not told of a marker's gap, would put a second one after it).
    const marker = msg.mediaClock !== undefined ? undefined : detectPixieMarker(bytes) ??
      (msg.bodySize !== undefined && msg.bodySize > bytes.length ? "truncated" : undefined);
    if (marker) return this.#gap(messageIndex, msg, marker);

    const fmt = this.format;
    let codec = fmt.codec;
    if (msg.codec) {
      const c = msg.codec;
      if (c.codec === "event") return this.#fail(messageIndex, "not_audio");
      if (
        c.codec !== codec || c.sampleRate !== fmt.sample_rate || (c.channels ?? fmt.channels) !== fmt.channels
      ) {
        // Another sample codec at the same rate and channel count decodes exactly in the stream's place; a
        // stateful or resampled one would need its own decoder and timeline.
        const same = c.sampleRate === fmt.sample_rate && (c.channels ?? fmt.channels) === fmt.channels;
        if (!same || !isSampleCodec(c.codec) || !isSampleCodec(codec)) {
          return this.#fail(messageIndex, "codec_change");
        }
        if (c.codec !== codec) this.#codecSwitches++;
        codec = c.codec;
      }
    }

    // A base64 field of a JSON body (the usual tap's message): not read yet, found and decoded in one pass; found
    // by the stream key's scan (a live tap keyed by `$.streamSid`), decoded where it lies.
    const path = this.#jsonBase64Path;
    let audio = path === undefined
      ? undefined
      : env?.scanned
      ? scannedBase64(env, path)
      : decodeJsonBase64Field(bytes, path);
    if (audio === undefined) {
      const field = extractAudioFieldView(env ?? bytes, fmt);
      if (!field.ok) return this.#fail(messageIndex, field.reason);
      const raw: DecodeFieldResult = decodeField(field.data, fmt.encoding, true);
      if (!raw.ok) {
        return this.#repair(
          messageIndex,
          msg,
          raw.reason,
          encodedLength(fieldAsText(field.data, fmt.envelope), fmt.encoding),
        );
      }
      audio = raw.bytes;
    }
    if (!isSampleCodec(codec)) return this.#pushStateful(messageIndex, msg, audio, bytes.length);

    let repaired: DecodeErrorReason | undefined;
    const bpf = bytesPerSample(codec) * fmt.channels;
    const split = this.#keepTimeline && !msg.mediaClock && !msg.codec;
    if (split && partial > 0 && startsMidFrame(codec, audio, bpf - partial, fmt.channels)) {
      // This message begins with the rest of the frame the previous one broke off: a sender that cuts a byte
      // stream anywhere (a relay forwarding socket reads) splits samples across messages. That frame is the
      // previous message's silent last frame already; read from this one's first whole frame on, or every sample
      // of it would pair the wrong bytes (noise: 4 of 31 signatures found on a PCM16 stream cut at random bytes).
      audio = audio.subarray(bpf - partial);
    }
    if (audio.length % bpf !== 0 && this.#keepTimeline) {
      // A byte lost in transit, or a frame the next message completes: the whole frames decode; the broken last
      // frame becomes silence below, so the message keeps its length (a missing byte is far likelier than an
      // extra one).
      repaired = "odd_byte_count";
      this.#errors.odd_byte_count++;
      if (split) this.#partial = audio.length % bpf;
      audio = audio.subarray(0, audio.length - (audio.length % bpf));
    }
    // Samples that only feed the resampler or the channel picker go to a reused scratch; at 8 kHz mono the
    // decoded array is itself the output, which may reuse the scratch too when its caller consumes it at once.
    const direct = fmt.channels === 1 && this.#resampler.passthrough && !msg.mediaClock && !repaired;
    if (direct && this.#ringValues && (codec === "mulaw" || codec === "alaw") && this.#monoChannel) {
      return this.#appendRing(
        messageIndex,
        msg,
        audio,
        codec === "mulaw" ? MULAW_RING : ALAW_RING,
        bytes.length,
      );
    }
    if (
      codec === "pcm16le" && this.#ringValues && this.#monoChannel && !msg.mediaClock && !repaired &&
      !this.#resampler.passthrough && (audio.length & 1) === 0
    ) {
      const out = this.#appendPcm16Ring(messageIndex, msg, audio, bytes.length);
      if (out) return out;
    }
    const decoded = decodeSamples(
      codec,
      audio,
      fmt.channels,
      direct && !this.#reuseSamples ? undefined : this.#scratch(audio, bytesPerSample(codec)),
    );
    if (!decoded.ok) return this.#fail(messageIndex, decoded.reason);
    let mono = selectChannel(decoded.samples, fmt.channels, fmt.channel);
    if (repaired) {
      const padded = allocSamples(mono.length + 1);
      padded.set(mono);
      mono = padded;
    }
    if (!msg.mediaClock) return this.#append(messageIndex, msg, mono, bytes.length, repaired);
    return this.#clocked(messageIndex, msg, mono.length, bytes.length, (drop) => mono.subarray(drop));
  }

  /** Ends the stream: flushes the resampler's lookahead. Later pushes are counted as `finished` errors. */
  finish(): SampleBlock {
    const start = this.#resampler.outputLength;
    if (this.#finished) return { start, samples: new Float32Array(0) };
    this.#finished = true;
    const pending = this.#drain();
    const a = pending.length > 0 ? this.#resampler.push(pending) : new Float32Array(0);
    const b = this.#resampler.flush();
    this.#opus?.free();
    return { start, samples: concat(a, b) };
  }

  /**
   * Releases the codec's WebAssembly instance (Opus) without flushing: for an owner that abandons the stream (a
   * crashed actor). Safe after {@link finish} and twice; later packets find no decoder (held, then silence).
   */
  close(): void {
    this.#opus?.free();
  }

  /** A snapshot of the stream's counters. */
  stats(): DecoderStats {
    return {
      messages: this.#messages,
      decoded: this.#decoded,
      markers: { ...this.#markers },
      errors: { ...this.#errors },
      outOfOrder: this.#outOfOrder,
      unsizedGaps: this.#unsizedGaps,
      gapFrames: this.#gapFrames,
      repairedFrames: this.#repairedFrames,
      mediaGaps: this.#mediaGaps,
      mediaGapFrames: this.#mediaGapFrames,
      concealedFrames: this.#concealedFrames,
      overlapFrames: this.#overlapFrames,
      clockJumps: this.#clockJumps,
      codecSwitches: this.#codecSwitches,
    };
  }

  #scratch(bytes: Uint8Array, bps: number): Float32Array {
    const n = Math.ceil(bytes.length / bps);
    if (this.#scratchBuf.length < n) {
      this.#scratchBuf = new Float32Array(Math.max(n, this.#scratchBuf.length * 2));
    }
    return this.#scratchBuf;
  }

  #fail(messageIndex: number, reason: DecodeErrorReason): DecodeOutcome {
    this.#errors[reason]++;
    return { kind: "error", messageIndex, reason };
  }

  /** A message's decoded audio, appended as it is (no media clock). */
  #append(
    messageIndex: number,
    msg: StreamMessage,
    mono: Float32Array,
    size: number,
    repaired?: DecodeErrorReason,
  ): DecodeOutcome {
    this.#decoded++;
    this.#noteGood(size, mono.length);
    this.timeline.add(messageIndex, msg.timeNs, mono.length);
    const start = this.#resampler.outputLength;
    const samples = this.#resampler.push(mono);
    const out: DecodeOutcome = { kind: "audio", messageIndex, frames: mono.length, start, samples };
    if (repaired) out.repaired = repaired;
    return out;
  }

  /**
   * {@link #append} for a G.711 message of an 8 kHz mono stream decoded straight to ring values (`table`: a
   * code's), into a buffer the next push reuses.
   */
  #appendRing(messageIndex: number, msg: StreamMessage, codes: Uint8Array, table: Int16Array, size: number) {
    const n = codes.length;
    // The view handed out last serves again for a message of its length (the usual tap's all are): no view
    // made a message.
    let ring = ringBuf;
    if (ring.length !== n) {
      const room = ring.buffer.byteLength >> 1;
      const buffer = room >= n ? ring.buffer : new ArrayBuffer(2 * Math.max(n, room * 2));
      ring = ringBuf = new Int16Array(buffer, 0, n);
    }
    for (let i = 0; i < n; i++) ring[i] = table[codes[i]!]!;
    this.#decoded++;
    this.#noteGood(size, n);
    this.timeline.add(messageIndex, msg.timeNs, n);
    const start = this.#resampler.outputLength;
    this.#resampler.passOn(n);
    const out: DecodeOutcome = { kind: "audio", messageIndex, frames: n, start, samples: NO_SAMPLES, ring };
    return out;
  }

  /**
   * {@link #append} for a 16-bit message of a mono stream that is resampled: its samples go to the resampler's
   * kernel as they are and come back as ring values (Resampler.pushPcm16Ring; undefined, with nothing done, for
   * a message too long for it).
   */
  #appendPcm16Ring(messageIndex: number, msg: StreamMessage, pcm: Uint8Array, size: number) {
    const start = this.#resampler.outputLength;
    const ring = this.#resampler.pushPcm16Ring(pcm);
    if (!ring) return undefined;
    const n = pcm.length >> 1;
    this.#decoded++;
    this.#noteGood(size, n);
    this.timeline.add(messageIndex, msg.timeNs, n);
    const out: DecodeOutcome = { kind: "audio", messageIndex, frames: n, start, samples: NO_SAMPLES, ring };
    return out;
  }

  #noteGood(size: number, frames: number): void {
    if (frames <= 0) return;
    this.#lastSize = size;
    if (frames !== this.#lastFrames) {
      this.#writeRepeats();
      this.#lastFrames = frames;
    }
    // More than the ring holds fill it all the same.
    if (this.#repeats < RECENT) this.#repeats++;
  }

  /** Writes the pending repeats of `#lastFrames` into the ring of recent lengths. */
  #writeRepeats(): void {
    for (; this.#repeats > 0; this.#repeats--) {
      this.#recent[this.#recentAt] = this.#lastFrames;
      this.#recentAt = this.#recentAt + 1 === RECENT ? 0 : this.#recentAt + 1;
      if (this.#recentCount < RECENT) this.#recentCount++;
    }
  }

  /**
   * A message whose audio was sent but cannot be read (`reason`): counted; with `keepTimeline` (and no media
   * clock, which places the next message exactly anyway) a gap of its expected length: from the field's encoded
   * length when known, else the median recent message.
   */
  #repair(
    messageIndex: number,
    msg: StreamMessage,
    reason: DecodeErrorReason,
    fieldLength: number | undefined,
  ): DecodeOutcome {
    if (!this.#keepTimeline || msg.mediaClock) return this.#fail(messageIndex, reason);
    this.#errors[reason]++;
    let frames: number | undefined;
    if (fieldLength !== undefined && Number.isFinite(this.#bytesPerFrame)) {
      frames = Math.floor(decodedLengthEstimate(fieldLength, this.format.encoding) / this.#bytesPerFrame);
    }
    if (!frames) frames = this.#gapLength(undefined);
    if (frames === undefined) {
      this.#unsizedGaps++;
      frames = 0;
    }
    frames = Math.min(frames, this.#maxGapFrames);
    this.#repairedFrames += frames;
    this.timeline.add(messageIndex, msg.timeNs, frames, true);
    const start = this.#resampler.outputLength;
    const samples = frames > 0 ? this.#pushOrdered(new Float32Array(frames)) : new Float32Array(0);
    return { kind: "gap", messageIndex, reason, gapFrames: frames, start, samples };
  }

  /** G.722 and Opus: one decoder per stream, packets in order. */
  #pushStateful(messageIndex: number, msg: StreamMessage, audio: Uint8Array, size: number): DecodeOutcome {
    const fmt = this.format;
    if (this.#g722) {
      const n = audio.length * 2;
      if (!msg.mediaClock) {
        return this.#append(messageIndex, msg, this.#g722.decode(audio, allocSamples(n)), size);
      }
      return this.#clocked(messageIndex, msg, n, size, (drop) => {
        // The overlapping part is decoded too: the ADPCM state must see every byte it is given.
        const all = this.#g722!.decode(audio, allocSamples(n));
        return all.subarray(drop);
      });
    }
    const opus = this.#opus!;
    const frames = opus.frames(audio);
    // Malformed framing: a packet sent and damaged, whose place a gap keeps (when no media clock places the next).
    if (frames === undefined) return this.#repair(messageIndex, msg, "bad_packet", undefined);
    const decode = (drop: number): Float32Array | undefined => {
      if (!opus.ready || this.#backlog.length > 0) {
        this.#defer({ packet: audio.slice(), drop }, frames - drop);
        return undefined;
      }
      const out = opus.decode(audio, allocSamples(frames * fmt.channels));
      // The framing was checked, so libopus refusing the packet is unexpected: keep the timeline with silence.
      if (!out || out.length !== frames * fmt.channels) {
        this.#errors.bad_packet++;
        return new Float32Array(frames - drop);
      }
      return selectChannel(out, fmt.channels, fmt.channel).subarray(drop);
    };
    if (!msg.mediaClock) {
      const mono = decode(0);
      this.#decoded++;
      this.#noteGood(size, frames);
      this.timeline.add(messageIndex, msg.timeNs, frames);
      const start = this.#resampler.outputLength;
      const samples = this.#pushOrdered(mono);
      return { kind: "audio", messageIndex, frames, start, samples };
    }
    return this.#clocked(messageIndex, msg, frames, size, decode);
  }

  /**
   * A message with a media clock: places it after the audio so far (a gap before it when it starts later than
   * expected, its overlapping part dropped when earlier), then decodes it through `decode(drop)`, which returns
   * its native mono samples without the first `drop` ones (undefined: queued behind the Opus backlog).
   */
  #clocked(
    messageIndex: number,
    msg: StreamMessage,
    frames: number,
    size: number,
    decode: (drop: number) => Float32Array | undefined,
  ): DecodeOutcome {
    const clock = msg.mediaClock!;
    const rate = this.format.sample_rate;
    const ts = clock.ts >>> 0;
    const cr = clock.clockRate;
    if (!(cr > 0)) return this.#fail(messageIndex, "bad_packet");
    const ticks = Math.round((frames * cr) / rate);
    let gapTicks = 0;
    let drop = 0;
    if (this.#nextTs !== undefined && this.#clockRate === cr) {
      // Signed 32-bit distance: wraparound of the timestamp is invisible here.
      const delta = (ts - this.#nextTs) | 0;
      const limit = this.#maxGapSeconds * cr;
      if (delta > limit || delta < -limit) this.#clockJumps++;
      else if (delta > 0) gapTicks = delta;
      else if (delta < 0) {
        if (-delta >= ticks) {
          if (this.#behindEnd !== ts) {
            this.#overlapFrames += frames;
            this.#behindEnd = (ts + ticks) >>> 0;
            this.#behindTicks = ticks;
            return this.#fail(messageIndex, "media_overlap");
          }
          // Two messages in a row wholly behind the clock, the second starting where the first ended: the
          // sender's clock stepped back (another source behind the same SSRC, e.g. after a re-INVITE or an SBC's
          // switch, with the sequence going on), not a duplicate or a late packet (the reorder window removed
          // those). Waiting for the old position would drop every message until the new clock caught up with
          // it, up to maxGapSeconds of audio: the clock follows the sender from here, and the dropped message
          // becomes a gap of its length so what follows keeps its place.
          this.#clockJumps++;
          gapTicks = this.#behindTicks;
        } else {
          drop = Math.min(frames, Math.round((-delta * rate) / cr));
          this.#overlapFrames += drop;
        }
      }
    }
    this.#behindEnd = -1;
    const prevTime = this.#clockTime;
    const resync = this.#nextTs === undefined || this.#clockRate !== cr;
    this.#clockRate = cr;
    this.#clockTime = msg.timeNs;
    const end = (ts + ticks) >>> 0;
    // A dropped overlap leaves the expected position where the message ends, which is later than before.
    this.#nextTs = end;

    const start = this.#resampler.outputLength;
    const parts: Float32Array[] = [];
    let mediaGap: MediaGap | undefined;
    if (gapTicks > 0 && !resync) {
      const gapFrames = Math.min(this.#maxGapFrames, Math.round((gapTicks * rate) / cr));
      // Interpolated in RTP time between the previous message's arrival and this one's (see the class doc).
      const span = msg.timeNs > prevTime ? msg.timeNs - prevTime : 0n;
      const gapTime = prevTime + BigInt(Math.round(Number(span) * (gapTicks / (gapTicks + ticks))));
      this.#mediaGaps++;
      this.#mediaGapFrames += gapFrames;
      this.timeline.add(messageIndex, gapTime, gapFrames, true);
      const fill = this.#gapFill(gapFrames);
      if (fill) parts.push(fill);
      mediaGap = {
        frames: gapFrames,
        timeNs: gapTime,
        audioStart: analysisIndexOf(this.timeline.nativeLength, this.timeline.up, this.timeline.down),
      };
    }
    const own = frames - drop;
    const mono = decode(drop);
    if (mono) parts.push(mono);
    this.#decoded++;
    this.#noteGood(size, frames);
    this.timeline.add(messageIndex, msg.timeNs, own);
    // Nothing at hand (the message went to the Opus backlog) still drains a backlog whose decoder has become
    // ready: else a stream whose first packet waited would wait, silent and growing, until its end.
    const samples = this.#pushOrdered(
      parts.length === 0 ? undefined : parts.length === 1 ? parts[0]! : concat(parts[0]!, parts[1]!),
    );
    const out: DecodeOutcome = { kind: "audio", messageIndex, frames: own, start, samples };
    if (mediaGap) out.mediaGap = mediaGap;
    return out;
  }

  /** What fills a media gap: Opus concealment for its first part, silence otherwise; undefined when deferred. */
  #gapFill(frames: number): Float32Array | undefined {
    const opus = this.#opus;
    if (!opus) return new Float32Array(frames);
    const plc = Math.min(frames, Math.round((OPUS_PLC_MS / 1000) * this.format.sample_rate));
    if (!opus.ready || this.#backlog.length > 0) {
      this.#defer({ conceal: plc }, plc);
      if (frames > plc) this.#defer({ silence: frames - plc }, frames - plc);
      return undefined;
    }
    return this.#conceal(plc, frames);
  }

  #conceal(plc: number, frames: number): Float32Array {
    const fmt = this.format;
    const out = new Float32Array(frames);
    const c = this.#opus!.conceal(plc);
    if (c) {
      out.set(selectChannel(c, fmt.channels, fmt.channel).subarray(0, plc));
      this.#concealedFrames += plc;
    }
    return out;
  }

  /** Queues Opus work behind a decoder that is not ready; past the bound the backlog becomes silence. */
  #defer(p: Pending, frames: number): void {
    this.#backlog.push(p);
    this.#backlogFrames += frames;
  }

  /**
   * Pushes native samples to the resampler after any Opus backlog (decoded now if the decoder has become ready,
   * silence if it failed or the backlog outgrew its bound). Undefined `mono`: the samples went to the backlog.
   */
  #pushOrdered(mono: Float32Array | undefined): Float32Array {
    const opus = this.#opus;
    if (opus && this.#backlog.length > 0) {
      const limit = BACKLOG_SECONDS * this.format.sample_rate;
      if (opus.ready || opus.failed || this.#backlogFrames > limit) {
        const pending = this.#drain();
        return this.#resampler.push(mono ? concat(pending, mono) : pending);
      }
      // Samples made while packets wait (a gap's silence) wait behind them: the timeline already counts them.
      if (mono && mono.length > 0) this.#defer({ samples: mono }, mono.length);
      return new Float32Array(0);
    }
    return mono ? this.#resampler.push(mono) : new Float32Array(0);
  }

  /** The backlog's native samples, in order: decoded when the decoder is ready, silence otherwise (counted). */
  #drain(): Float32Array {
    const fmt = this.format;
    const opus = this.#opus;
    const out = new Float32Array(this.#backlogFrames);
    let at = 0;
    for (const p of this.#backlog) {
      if ("packet" in p) {
        const n = opus!.frames(p.packet)!;
        const ready = opus!.ready;
        const d = ready ? opus!.decode(p.packet) : undefined;
        if (d && d.length === n * fmt.channels) {
          out.set(selectChannel(d, fmt.channels, fmt.channel).subarray(p.drop), at);
        } else this.#errors[ready ? "bad_packet" : "codec_unavailable"]++;
        at += n - p.drop;
      } else if ("conceal" in p) {
        if (opus!.ready) out.set(this.#conceal(p.conceal, p.conceal), at);
        at += p.conceal;
      } else if ("samples" in p) {
        out.set(p.samples, at);
        at += p.samples.length;
      } else at += p.silence;
    }
    this.#backlog = [];
    this.#backlogFrames = 0;
    return out;
  }

  #gap(messageIndex: number, msg: StreamMessage, marker: PixieMarker): DecodeOutcome {
    this.#markers[marker]++;
    let frames = this.#gapLength(msg.bodySize);
    if (frames === undefined) {
      this.#unsizedGaps++;
      frames = 0;
    }
    frames = Math.min(frames, this.#maxGapFrames);
    this.#gapFrames += frames;
    this.timeline.add(messageIndex, msg.timeNs, frames, true);
    const start = this.#resampler.outputLength;
    const samples = frames > 0 ? this.#pushOrdered(new Float32Array(frames)) : new Float32Array(0);
    return { kind: "marker", messageIndex, marker, gapFrames: frames, start, samples };
  }

  /**
   * Native frames a lost body carried. With its original size: the latest good message's frames plus the size
   * difference through the encoding's ratio (exact for the usual fixed-size chunks; within a frame or two when
   * base64 padding differs), or for raw payloads before any good one, the size after the header. Otherwise the
   * median duration of recent good messages. Undefined when there is no basis at all.
   */
  #gapLength(bodySize: number | undefined): number | undefined {
    const fmt = this.format;
    if (
      bodySize !== undefined && Number.isFinite(bodySize) && bodySize >= 0 &&
      Number.isFinite(this.#bytesPerFrame)
    ) {
      const ratio = encodingRatio(fmt.encoding) / this.#bytesPerFrame;
      if (this.#lastSize !== undefined) {
        return Math.max(0, Math.round(this.#lastFrames + (bodySize - this.#lastSize) * ratio));
      }
      if (fmt.envelope === "raw") {
        return Math.floor(
          decodedLengthEstimate(bodySize - fmt.skip_bytes, fmt.encoding) / this.#bytesPerFrame,
        );
      }
    }
    this.#writeRepeats();
    if (this.#recentCount === 0) return undefined;
    const sorted = Array.from(this.#recent.subarray(0, this.#recentCount)).sort((a, b) => a - b);
    return sorted[(sorted.length - 1) >> 1]!;
  }
}

/**
 * The base64 string at `path` of a body whose JSON fields were scanned (or parsed), decoded from where the scan
 * found it (see decodeBase64Span): no view of the body and no field result made, where extractAudioFieldView and
 * decodeField made both (5% of a live row's keying and decoding). Undefined where that general path decides (not a
 * plain string there, digits that do not decode, a parsed body).
 */
function scannedBase64(env: PayloadEnvelope, path: BytePath): Uint8Array | undefined {
  if (env.parsed) return undefined;
  const hit = env.scans.get(path);
  if (hit === BYTES_MISSING || hit === BYTES_BAD || !hit.string || hit.escaped) return undefined;
  return decodeBase64Span(env.bytes, hit.start + 1, hit.end - 1);
}

/**
 * Characters of an encoded field that carry audio: for base64, all but padding (`=`) and the ASCII whitespace the
 * decoder skips (a MIME-style encoder's line breaks: counted, a 400 ms μ-law field wrapped at 76 digits sized its
 * gap 43 samples long, and every later sample that late on the timeline); for hex and binary, every character.
 */
function encodedLength(data: string | Uint8Array, encoding: AudioFormat["encoding"]): number {
  if (encoding !== "base64") return data.length;
  let n = 0;
  for (let i = 0; i < data.length; i++) {
    const c = typeof data === "string" ? data.charCodeAt(i) : data[i]!;
    if (c !== 0x3d && c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) n++;
  }
  return n;
}

/** Frames {@link startsMidFrame} compares. */
const MID_FRAME_PROBE = 64;

/**
 * Whether `bytes` read from byte `rest` on (the rest of a frame the previous message broke off skipped) is audio and
 * read from byte 0 is not: when a sample is cut (`rest` not a whole number of samples), one of the two reads pairs
 * the wrong bytes of every 16-bit sample (a low byte read as a high one), which comes out as loud white noise, the other
 * as the stream's audio, whose samples change far less from one to the next, quiet or loud. Compared on the first
 * {@link MID_FRAME_PROBE} frames, each channel with itself: the read whose changes are less than half the other's
 * wins; a tie (silence, full-scale noise, or a cut between channels, where both reads are audio) keeps byte 0 (a
 * byte lost). (Changes relative to the level were tried: quiet audio is as rough as noise, 116 of ~540 cuts
 * read wrong.)
 */
function startsMidFrame(codec: Codec, bytes: Uint8Array, rest: number, channels: number): boolean {
  const bps = bytesPerSample(codec);
  // 16-bit only: float32 read from a wrong byte is often tiny rather than loud (audio with zeros at the end of
  // its mantissas puts them in the exponent), so it needs another test; left for a stream that shows it.
  if (bps !== 2 || rest % bps === 0) return false;
  const frames = Math.min(MID_FRAME_PROBE, Math.floor((bytes.length - rest) / (bps * channels)));
  if (frames < 2) return false;
  return change(codec, bytes, rest, channels, frames) < 0.5 * change(codec, bytes, 0, channels, frames);
}

/** Sum of squared sample-to-sample changes (each channel with itself) of 16-bit samples from byte `at`. */
function change(codec: Codec, bytes: Uint8Array, at: number, channels: number, frames: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const le = codec === "pcm16le";
  let sum = 0;
  for (let i = channels; i < frames * channels; i++) {
    const d = view.getInt16(at + 2 * i, le) - view.getInt16(at + 2 * (i - channels), le);
    sum += d * d;
  }
  return sum;
}

function concat(a: Float32Array, b: Float32Array): Float32Array {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
