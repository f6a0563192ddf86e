/**
 * How a row of a tap reads, for Pixie taps and packet taps alike: where its payload and pod are, the audio format
 * of a new stream, and the message for the stream's audio pipeline (tap_intake.ts does the rest). Packet taps
 * carrying RTP take their codec from the row's payload type (`rtp_codec`) and their place in the stream from the
 * RTP timestamp, so a lost packet or a suppressed silence is a gap of exactly its length.
 * @module
 */
import type { Columns, PacketTapConfig } from "../config/schema.ts";
import { cellNumber, cellText, type Row } from "../pixie/row.ts";
import type { MessageIn } from "../audio/pipeline.ts";
import type { PayloadEnvelope } from "../audio/decode/payload.ts";
import type { AudioFormat } from "../audio/types.ts";
import { PacketColumn } from "../packets/rows.ts";
import { parseRtpCodecName, type RtpCodec } from "../packets/rtp_codecs.ts";

/** What the intake needs of a signature or match rule. */
export interface TapRule {
  columns: Columns;
  audio: AudioFormat;
  packets?: PacketTapConfig;
  /** `stream_key`: the columns and payload fields that name an audio stream of the tap. */
  stream_key: readonly string[];
  /** Match rules: skip the streams the measurement's source tap also sees. */
  exclude_source_streams?: boolean;
}

const codecCache = new Map<string, RtpCodec | undefined>();

/** The RTP codec a packet row names, if it is an RTP row. */
export function rowRtpCodec(row: Row): RtpCodec | undefined {
  const name = cellText(row, PacketColumn.rtpCodec);
  if (name === "") return undefined;
  let c = codecCache.get(name);
  if (c === undefined && !codecCache.has(name)) {
    const parsed = parseRtpCodecName(name);
    c = "error" in parsed ? undefined : parsed;
    if (codecCache.size > 256) codecCache.clear();
    codecCache.set(name, c);
  }
  return c;
}

/** The audio format of a new stream of this tap: the rule's, or for RTP the first packet's payload type. */
export function streamFormat(rule: TapRule, row: Row): AudioFormat {
  const c = rule.packets?.protocol === "rtp" ? rowRtpCodec(row) : undefined;
  if (!c || c.codec === "event") return rule.audio;
  return {
    envelope: "raw",
    path: "",
    encoding: "binary",
    codec: c.codec,
    sample_rate: c.sampleRate,
    // libopus mixes a stereo stream down when asked for one channel.
    channels: c.codec === "opus" ? 1 : c.channels,
    channel: c.codec !== "opus" && c.channels > 1 ? "mix" : 0,
    skip_bytes: 0,
  };
}

/**
 * Longest `columns.latency` taken (ns): a request answered an hour later is a long poll or a stuck connection,
 * whose request time says nothing of when its body's audio passed; its row's own time is kept.
 */
export const MAX_PAYLOAD_LEAD_NS = 3_600_000_000_000n;

/**
 * The capture time of a row's payload: its time, less `columns.latency` where the tap names one (Pixie's
 * http_events row carries the response's time, and the request body's message was complete `latency` before).
 * A latency that is absent, not positive (Pixie's 0 for a missing timestamp, negative for a mismatched pair), or
 * over {@link MAX_PAYLOAD_LEAD_NS} leaves the row's time.
 */
export function payloadTime(rule: TapRule, row: Row): bigint {
  const col = rule.columns.latency;
  if (col === undefined) return row.time;
  const c = row.columns[col];
  const lead = typeof c === "bigint" ? c : typeof c === "number" && Number.isSafeInteger(c) ? BigInt(c) : 0n;
  return lead > 0n && lead <= MAX_PAYLOAD_LEAD_NS && lead < row.time ? row.time - lead : row.time;
}

/** The pipeline message of a row whose payload was read into `payload`. */
export function tapMessage(rule: TapRule, row: Row, payload: PayloadEnvelope): MessageIn {
  const msg: MessageIn = { timeNs: payloadTime(rule, row), payload };
  if (rule.columns.body_size) msg.bodySize = cellNumber(row, rule.columns.body_size);
  if (rule.packets?.protocol === "rtp") {
    const c = rowRtpCodec(row);
    const ts = cellNumber(row, PacketColumn.rtpTimestamp);
    if (c) {
      msg.codec = { codec: c.codec, sampleRate: c.sampleRate, channels: c.codec === "opus" ? 1 : c.channels };
      if (ts !== undefined) msg.mediaClock = { ts, clockRate: c.clockRate };
    }
  }
  return msg;
}

/**
 * Whether a row is a WebSocket text message on a tap whose audio is binary frames: a server's text replies
 * (marks, transcripts) on the audio's connection are counted as `not_audio`, never decoded as PCM.
 */
export function textOnBinaryTap(rule: TapRule, row: Row): boolean {
  return rule.packets?.protocol === "websocket" && rule.audio.encoding === "binary" &&
    row.columns[PacketColumn.wsText] === true;
}

/** The payload column of a tap (packet rows always name it `payload`). */
export function payloadColumn(rule: TapRule): string {
  return rule.packets ? PacketColumn.payload : rule.columns.payload;
}

/** The pod column of a tap. */
export function podColumn(rule: TapRule): string {
  return rule.packets ? PacketColumn.pod : rule.columns.pod;
}
