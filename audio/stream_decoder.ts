/**
 * One stream's decode chain: payload → Pixie marker check → envelope → encoding → codec → channel → resampler,
 * with a {@link Timeline} that maps every analysis sample back to its message.
 *
 * Failures are counted by reason and the message is skipped (it owns no samples). Pixie markers (a body cut at the
 * capture limit, or dropped) stand for audio that existed but cannot be read: a gap of silence of the estimated
 * length is inserted, so the audio after it stays at its true place on the timeline.
 * @module
 */

import { bytesPerSample, type CodecErrorReason, decodeSamples } from "./codecs.ts";
import { selectChannel } from "./channels.ts";
import {
  decodedLengthEstimate,
  decodeField,
  type DecodeFieldResult,
  type EncodingErrorReason,
  encodingRatio,
} from "./encoding.ts";
import {
  detectPixieMarker,
  type EnvelopeErrorReason,
  extractAudioField,
  PayloadEnvelope,
  type PixieMarker,
  regexGroupCount,
} from "./envelope.ts";
import { checkNativeRate, Resampler } from "./resample.ts";
import { Timeline, type TimelineOptions } from "./timeline.ts";
import type { AudioFormat } from "./types.ts";

/** Every reason a message can be skipped. `finished`: pushed after {@link StreamDecoder.finish}. */
export type DecodeErrorReason = EnvelopeErrorReason | EncodingErrorReason | CodecErrorReason | "finished";

/** All skip reasons, for exporting counters with stable labels. */
export const DECODE_ERROR_REASONS: readonly DecodeErrorReason[] = [
  "bad_json",
  "missing_path",
  "not_a_string",
  "no_regex_match",
  "short_payload",
  "bad_base64",
  "bad_hex",
  "bad_binary",
  "odd_byte_count",
  "finished",
];

/** One captured message of a stream. */
export interface StreamMessage {
  /** Capture time (`time_`), ns since the epoch. */
  timeNs: bigint;
  /** The payload cell; pass the {@link PayloadEnvelope} already used for the stream key to reuse its parse. */
  payload: Uint8Array | PayloadEnvelope;
  /** Original body size (`*_body_size` column) when known: sizes the gap of a truncated or removed body. */
  bodySize?: number;
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
  | (SampleBlock & { kind: "audio"; messageIndex: number; frames: number })
  | (SampleBlock & { kind: "marker"; messageIndex: number; marker: PixieMarker; gapFrames: number })
  | { kind: "error"; messageIndex: number; reason: DecodeErrorReason };

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
}

/** Options of a {@link StreamDecoder}. */
export interface StreamDecoderOptions extends TimelineOptions {
  /** Longest gap inserted for one marker, in seconds (bounds memory on a bogus body size). Default 30. */
  maxGapSeconds?: number;
}

const MAX_CHANNELS = 64;
/** Good messages remembered for the median duration that sizes gaps without a body size. */
const RECENT = 15;

/** Checks an audio format; returns error messages (empty when valid). */
export function checkAudioFormat(fmt: AudioFormat): string[] {
  const errors: string[] = [];
  if (fmt.envelope === "json" && fmt.path.trim() === "") errors.push("json envelope needs a non-empty path");
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

/** Decodes one stream's messages into a continuous 8 kHz analysis timeline. */
export class StreamDecoder {
  readonly format: AudioFormat;
  /** Maps analysis samples back to messages (`decoder.timeline.locate(k)`). */
  readonly timeline: Timeline;
  readonly #resampler: Resampler;
  readonly #bytesPerFrame: number;
  readonly #maxGapFrames: number;
  #messages = 0;
  #decoded = 0;
  #markers: Record<PixieMarker, number> = { truncated: 0, removed: 0 };
  #errors = Object.fromEntries(DECODE_ERROR_REASONS.map((r) => [r, 0])) as Record<DecodeErrorReason, number>;
  #outOfOrder = 0;
  #unsizedGaps = 0;
  #gapFrames = 0;
  #lastTime: bigint | undefined;
  /** Payload size and native frames of the latest good message with audio: the yardstick for lost bodies. */
  #lastSize: number | undefined;
  #lastFrames = 0;
  #recent: number[] = [];
  #finished = false;
  #scratchBuf = new Float32Array(0);

  /** Throws RangeError if `format` fails {@link checkAudioFormat} (config validation should have caught it). */
  constructor(format: AudioFormat, opts: StreamDecoderOptions = {}) {
    const errors = checkAudioFormat(format);
    if (errors.length) throw new RangeError(`invalid audio format: ${errors.join("; ")}`);
    this.format = format;
    this.timeline = new Timeline(format.sample_rate, opts);
    this.#resampler = new Resampler(format.sample_rate);
    this.#bytesPerFrame = bytesPerSample(format.codec) * format.channels;
    this.#maxGapFrames = Math.floor((opts.maxGapSeconds ?? 30) * format.sample_rate);
  }

  /** Analysis samples emitted so far; the next outcome's `start`. */
  get length(): number {
    return this.#resampler.outputLength;
  }

  /** Decodes one message and appends its audio (or a gap) to the stream. Never throws on message content. */
  push(msg: StreamMessage): DecodeOutcome {
    const messageIndex = this.#messages++;
    if (this.#finished) return this.#fail(messageIndex, "finished");
    if (this.#lastTime !== undefined && msg.timeNs < this.#lastTime) this.#outOfOrder++;
    this.#lastTime = msg.timeNs;

    const env = msg.payload instanceof PayloadEnvelope ? msg.payload : undefined;
    const bytes = env ? env.bytes : msg.payload as Uint8Array;
    const marker = detectPixieMarker(bytes);
    if (marker) return this.#gap(messageIndex, msg, marker);

    const fmt = this.format;
    const field = extractAudioField(env ?? bytes, fmt);
    if (!field.ok) return this.#fail(messageIndex, field.reason);
    const raw: DecodeFieldResult = decodeField(field.data, fmt.encoding, true);
    if (!raw.ok) return this.#fail(messageIndex, raw.reason);
    // Samples that only feed the resampler or the channel picker go to a reused scratch; at 8 kHz mono the
    // decoded array is itself the output.
    const direct = fmt.channels === 1 && this.#resampler.passthrough;
    const decoded = decodeSamples(
      fmt.codec,
      raw.bytes,
      fmt.channels,
      direct ? undefined : this.#scratch(raw.bytes),
    );
    if (!decoded.ok) return this.#fail(messageIndex, decoded.reason);
    const mono = selectChannel(decoded.samples, fmt.channels, fmt.channel);

    this.#decoded++;
    if (mono.length > 0) {
      this.#lastSize = bytes.length;
      this.#lastFrames = mono.length;
      this.#recent.push(mono.length);
      if (this.#recent.length > RECENT) this.#recent.shift();
    }
    this.timeline.append(messageIndex, msg.timeNs, mono.length);
    const start = this.#resampler.outputLength;
    const samples = this.#resampler.push(mono);
    return { kind: "audio", messageIndex, frames: mono.length, start, samples };
  }

  /** Ends the stream: flushes the resampler's lookahead. Later pushes are counted as `finished` errors. */
  finish(): SampleBlock {
    const start = this.#resampler.outputLength;
    if (this.#finished) return { start, samples: new Float32Array(0) };
    this.#finished = true;
    return { start, samples: this.#resampler.flush() };
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
    };
  }

  #scratch(bytes: Uint8Array): Float32Array {
    const n = Math.ceil(bytes.length / bytesPerSample(this.format.codec));
    if (this.#scratchBuf.length < n) {
      this.#scratchBuf = new Float32Array(Math.max(n, this.#scratchBuf.length * 2));
    }
    return this.#scratchBuf;
  }

  #fail(messageIndex: number, reason: DecodeErrorReason): DecodeOutcome {
    this.#errors[reason]++;
    return { kind: "error", messageIndex, reason };
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
    this.timeline.append(messageIndex, msg.timeNs, frames, true);
    const start = this.#resampler.outputLength;
    const samples = frames > 0 ? this.#resampler.push(new Float32Array(frames)) : new Float32Array(0);
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
    if (bodySize !== undefined && Number.isFinite(bodySize) && bodySize >= 0) {
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
    if (this.#recent.length === 0) return undefined;
    const sorted = [...this.#recent].sort((a, b) => a - b);
    return sorted[(sorted.length - 1) >> 1]!;
  }
}
