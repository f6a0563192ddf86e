/**
 * Why a run produced no (or few) signatures or matches, in words a user can act on: decode errors by reason with
 * one example row, rows per query, queries that no measurement names, configured queries without rows, source
 * streams that decoded but never gave an onset (silent, or too quiet for `energy_threshold`), stages with rows
 * but no matches, and where the configured `audio` section differs from what the bodies look like.
 *
 * The counts come from the run itself (the engine's counters); the rows, when given, are only read to find an
 * example of each failure and to measure levels, with the engine's own decode functions, so what is explained
 * is what the engine did.
 * @module
 */
import { queryName, queryNamesOf } from "../util/query_name.ts";
import type { Config, MatchRule, Measurement, SignatureRules } from "../config/schema.ts";
import type { AudioFormat } from "../audio/types.ts";
import { cellBytes, cellText, parseQueryName, type Row, SOURCE_TAP } from "../pixie/row.ts";
import {
  compileJsonPath,
  detectPixieMarker,
  extractAudioField,
  PayloadEnvelope,
} from "../audio/decode/payload.ts";
import { decodeField } from "../audio/decode/encoding.ts";
import { decodeSamples, isSampleCodec } from "../audio/decode/codecs.ts";
import { StreamKeyer } from "../audio/decode/stream_key.ts";
import { StreamDecoder } from "../audio/decode/stream_decoder.ts";
import { ENERGY_DB_PER_UNIT, ENERGY_MIN_MARGIN_DB, ENERGY_MIN_SPEECH_DBFS } from "../audio/detect/vad.ts";
import { guessPayloadFormat } from "../audio/decode/payload_guess.ts";
import { groupDigits } from "../util/group_digits.ts";
import { printable } from "../util/printable.ts";
import { configPosition } from "../config/load.ts";
import { ENCRYPTED_OPUS_FRAMING, sizedSrtpAdvice, srtpOpusAdvice } from "../packets/srtp_guess.ts";
import { opusFramingShare } from "../audio/decode/opus.ts";
import { PacketColumn } from "../packets/rows.ts";
import { FP_PARAMS } from "../audio/fingerprint/fingerprint.ts";
import { SIGNATURE_MAX_FRAMES } from "../audio/fingerprint/signature.ts";

/**
 * Seconds of audio after a signature's instant that a stage needs to match it (a whole block: its frames at the
 * fingerprint's hop, and the last frame's length): a signature leaves `ttl_seconds` after its instant, so a stage
 * slower than `ttl_seconds` less this finds none.
 */
const SIGNATURE_SPAN_S = (SIGNATURE_MAX_FRAMES * FP_PARAMS.hop + FP_PARAMS.frame) / FP_PARAMS.sampleRate;
/** How far below that horizon a stage's slowest match says the TTL cost it some (the demo lost matches 0.2 s below). */
const TTL_SLACK_S = 1;

/** Engine count of one decode failure reason on one query. */
export interface DecodeErrorCount {
  measurement: string;
  /** `source` or the stage name. */
  stream: string;
  reason: string;
  count: number;
}

/** What a run did, as counted by the engine (metrics) and the reader. */
export interface RunFacts {
  /** The config file used. */
  configFile: string;
  /** Rows read per query name (every query seen, named by a measurement or not). */
  rowsByQuery: Record<string, number>;
  decodeErrors: DecodeErrorCount[];
  /** Payloads Pixie cut or removed, per query. */
  truncatedByQuery?: Record<string, number>;
  signaturesByMeasurement: Record<string, number>;
  /** Matches per `<measurement>/<stage>`. */
  matchesByStage: Record<string, number>;
  /** Distinct signatures found per `<measurement>/<stage>`, when records are at hand. */
  matchedSignaturesByStage?: Record<string, number>;
  /**
   * Source streams that gave at least one signature, as `<measurement>\0<node>\0<stream key>`, when records are
   * at hand. Without it, streams are examined only for measurements without any signature.
   */
  signatureStreams?: ReadonlySet<string>;
  /** Malformed capture lines skipped. */
  malformedLines?: number;
  /**
   * Signatures carrying each id type (`metadata_extraction.id_patterns`), per measurement, when records are at
   * hand.
   */
  signatureIdTypes?: Record<string, Record<string, number>>;
  /**
   * Matches per `<measurement>/<stage>` found in the source's own stream (same node and stream), when records
   * are at hand: the stage's tap reads the source's messages.
   */
  selfMatchesByStage?: Record<string, number>;
  /** The highest latency (s) matched per `<measurement>/<stage>`, when records are at hand. */
  maxLatencyByStage?: Record<string, number>;
  /**
   * Matches of audio the source repeats, per `<measurement>/<stage>` (audio/match/repeats.ts): dropped for a
   * nearer twin, or released before it was found.
   */
  repeatsByStage?: Record<string, { dropped: number; releasedBeforeTwin: number }>;
}

/** One thing worth telling. */
export interface Finding {
  kind:
    | "decode_errors"
    | "no_rows"
    | "unnamed_query"
    | "missing_query"
    | "no_signatures"
    | "no_onset"
    | "no_matches"
    | "few_matches"
    | "audio_mismatch"
    | "truncated"
    | "no_ids"
    | "self_matches"
    | "no_audio"
    | "srtp"
    | "ttl_short"
    | "repeated_audio";
  /** One line. */
  text: string;
  /** Indented lines under it (an example, a hint). */
  detail: string[];
  /** The query it is about (`decode_errors`, `no_audio`). */
  query?: string;
  /** Rows it counts (`decode_errors`, `no_audio`). */
  rows?: number;
}

/** Result of {@link diagnose}. */
export interface Diagnosis {
  /** True when the run produced no or few signatures or matches: the findings explain why. */
  poor: boolean;
  /** One line on what was poor ("no signatures", "stage asr: 0 matches"), empty when nothing was. */
  headline: string;
  configFile: string;
  findings: Finding[];
}

/** Options of {@link diagnose}. */
export interface DiagnoseOptions {
  /** The rows of a query (all nodes), for examples, levels and format guesses; absent: counts only. */
  rowsOf?: (query: string) => readonly Row[];
  /** Recall below which a stage counts as having few matches (default 0.5). */
  fewRecall?: number;
}

type Tap = SignatureRules | MatchRule;

const n = groupDigits;

function pctOf(part: number, whole: number): string {
  if (whole <= 0) return "";
  const p = (100 * part) / whole;
  return ` (${p >= 99.95 ? "100" : p < 0.1 ? "<0.1" : p.toFixed(1)}%)`;
}

/** The configured tap of a query name, or undefined when no measurement names it. */
export function tapOf(
  config: Config,
  query: string,
): { m: Measurement; tap: Tap; stage: string } | undefined {
  const q = parseQueryName(query);
  const m = q && config.measurements.find((x) => x.name === q.measurement);
  if (!q || !m) return undefined;
  if (q.tap === SOURCE_TAP) return { m, tap: m.signature_rules, stage: SOURCE_TAP };
  const rule = m.match_rules.find((r) => r.stage === q.tap);
  return rule ? { m, tap: rule, stage: rule.stage } : undefined;
}

const AUDIO_KEYS = [
  "envelope",
  "path",
  "encoding",
  "codec",
  "sample_rate",
  "channels",
  "skip_bytes",
] as const;

/** `key: configured -> seen` for each `audio` key where a configured format and a guessed one differ. */
export function audioDiff(configured: AudioFormat, guessed: AudioFormat): string[] {
  const out: string[] = [];
  for (const k of AUDIO_KEYS) {
    if (k === "path" && configured.envelope === "raw" && guessed.envelope === "raw") continue;
    if (configured[k] !== guessed[k]) {
      out.push(`${k}: ${JSON.stringify(configured[k])} -> ${JSON.stringify(guessed[k])}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Examples
// ---------------------------------------------------------------------------------------------------------------

const SECRET_KEY = /token|secret|passw|auth|api[_-]?key|signature|cookie|credential/i;

/**
 * A payload shown safely: JSON keeps its shape with short values, long strings become `<N chars>` and values of
 * secret-looking keys are hidden; other text is cut, with long runs of letters and digits shortened.
 */
export function payloadPreview(bytes: Uint8Array, max = 240): string {
  const marker = detectPixieMarker(bytes);
  if (marker) return `<Pixie ${marker} marker, ${n(bytes.length)} bytes>`;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    const head = Array.from(bytes.subarray(0, 16), (b) => b.toString(16).padStart(2, "0")).join(" ");
    return `<${n(bytes.length)} binary bytes: ${head}${bytes.length > 16 ? " ..." : ""}>`;
  }
  let shown: string;
  try {
    shown = JSON.stringify(shape(JSON.parse(text), 0));
    // Placeholders were written as strings; show them bare.
    shown = shown.replace(/"(<[^"<>]*>)"/g, "$1");
  } catch {
    shown = shortenRuns(text, max);
  }
  // Other control characters escaped: a text body's ESC sequences reached the terminal of analyze and check.
  shown = printable(shown.replace(/[\r\n\t]/g, " "));
  return shown.length > max ? shown.slice(0, max) + " ..." : shown;
}

/**
 * `text` with each run of over 40 letters, digits and `+/=_-` shortened to its first 12 and its length, up to a
 * little past `max` characters: a scan, not a regex replace over the whole text, on which a run of 10 MB ran out
 * of stack (a packet tap's body of that size ended analyze in a RangeError after the whole run).
 */
function shortenRuns(text: string, max: number): string {
  let out = "";
  let i = 0;
  while (i < text.length && out.length <= max) {
    let j = i;
    while (j < text.length && isRunChar(text.charCodeAt(j))) j++;
    if (j === i) out += text[i++];
    else {
      out += j - i > 40 ? `${text.slice(i, i + 12)}...<${j - i} chars>` : text.slice(i, j);
      i = j;
    }
  }
  return out;
}

/** A character of the runs {@link shortenRuns} shortens: `[A-Za-z0-9+/=_-]`. */
function isRunChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x2b ||
    c === 0x2f || c === 0x3d || c === 0x5f || c === 0x2d;
}

function shape(v: unknown, depth: number, key = ""): unknown {
  if (depth > 6) return "<...>";
  if (typeof v === "string") {
    if (key !== "" && SECRET_KEY.test(key)) return `<hidden, ${v.length} chars>`;
    return v.length > 40 ? `<${v.length} chars>` : v;
  }
  if (Array.isArray(v)) {
    const head = v.slice(0, 4).map((x) => shape(x, depth + 1));
    return v.length > 4 ? [...head, `<${v.length - 4} more>`] : head;
  }
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shape(x, depth + 1, k)]));
  }
  return v;
}

/** Why one message of `tap` fails to decode, exactly as the engine's decode chain would (undefined: it decodes). */
export function decodeFailure(row: Row, tap: Tap): string | undefined {
  const payload = cellBytes(row, tap.columns.payload);
  if (payload === undefined) return "missing_payload_column";
  if (detectPixieMarker(payload)) return undefined;
  const field = extractAudioField(payload, tap.audio);
  if (!field.ok) return field.reason;
  const raw = decodeField(field.data, tap.audio.encoding, true);
  if (!raw.ok) return raw.reason;
  // Stateful codecs (G.722, Opus) decode only in stream order: their failures are left to the engine's counts.
  const codec = tap.audio.codec;
  if (!isSampleCodec(codec)) return undefined;
  const s = decodeSamples(codec, raw.bytes, tap.audio.channels, new Float32Array(0));
  return s.ok ? undefined : s.reason;
}

/** Opus rows of a query examined for their framing. */
const OPUS_SAMPLE = 500;

/**
 * What to say when the RTP rows of one query look encrypted (SRTP; packets/srtp_guess.ts), else undefined: sized
 * codecs by their payloads' constant excess over their timestamp steps (consecutive packets of each stream in the
 * sample), Opus by its framing.
 */
function encryptedRtp(rows: readonly Row[]): string | undefined {
  const codec = rows.length > 0 ? cellText(rows[0]!, PacketColumn.rtpCodec) : "";
  if (codec.toLowerCase().startsWith("opus/")) {
    const payloads: Uint8Array[] = [];
    for (const r of rows.slice(0, OPUS_SAMPLE)) {
      const p = cellBytes(r, PacketColumn.payload);
      if (p !== undefined) payloads.push(p);
    }
    if (payloads.length < 20) return undefined;
    const share = opusFramingShare(payloads);
    return share < ENCRYPTED_OPUS_FRAMING ? srtpOpusAdvice(1 - share) : undefined;
  }
  // Consecutive packets of each stream in the sample: their timestamp steps and payload sizes.
  const last = new Map<string, { seq: number; ts: number }>();
  const steps: { dts: number; bytes: number }[] = [];
  for (const r of rows) {
    const seq = r.columns[PacketColumn.rtpSeq], ts = r.columns[PacketColumn.rtpTimestamp];
    const payload = cellBytes(r, PacketColumn.payload);
    if (typeof seq !== "number" || typeof ts !== "number" || payload === undefined) continue;
    const stream = cellText(r, PacketColumn.stream);
    const prev = last.get(stream);
    if (prev !== undefined && ((prev.seq + 1) & 0xffff) === seq) {
      steps.push({ dts: (ts - prev.ts) >>> 0, bytes: payload.length });
    }
    last.set(stream, { seq, ts });
  }
  return sizedSrtpAdvice(codec, steps);
}

/** Top-level keys that name a JSON message's kind (Twilio/Telnyx `event`, Vonage and others `type`). */
const KIND_KEYS = ["event", "type", "kind", "action"] as const;
/** Rows of the sample examined for {@link otherMessages}. */
const OTHER_SAMPLE = 200;
/** Largest body taken for one of a stream's other messages (Twilio's `start` is under 1 KB). */
const OTHER_MAX_BYTES = 64 * 1024;

/**
 * When the rows a reason counts are not audio by design, what they are (else undefined): `not_audio` (DTMF
 * events, text on an audio connection: never decoded as PCM), or `missing_path` on rows that are the stream's
 * other JSON messages (Twilio's `start`, `mark` and `stop` events: no `media` at all), in a query whose other
 * rows decode. A path missing from rows of the audio's own shape, or from every row, stays a decode error (a
 * wrong path: the hint names the fields there).
 */
function otherMessages(reason: string, rows: readonly Row[], tap: Tap): string | undefined {
  if (reason === "not_audio") return "not_audio (DTMF events, or text messages on the audio's connection)";
  if (reason !== "missing_path" || tap.audio.envelope !== "json") return undefined;
  const first = compileJsonPath(tap.audio.path)[0];
  if (first === undefined) return undefined;
  const kinds = new Set<string>();
  let others = 0, decoded = 0;
  for (const r of rows.slice(0, OTHER_SAMPLE)) {
    const why = decodeFailure(r, tap);
    if (why === undefined) {
      decoded++;
      continue;
    }
    if (why !== "missing_path") continue;
    const payload = cellBytes(r, tap.columns.payload);
    // A stream's events are small; a large body without the path is not one (and is not parsed here).
    if (payload !== undefined && payload.length > OTHER_MAX_BYTES) return undefined;
    let v: unknown;
    try {
      v = payload && JSON.parse(new TextDecoder().decode(payload));
    } catch {
      return undefined;
    }
    if (v === null || typeof v !== "object" || Array.isArray(v) || Object.hasOwn(v, first)) return undefined;
    others++;
    const rec = v as Record<string, unknown>;
    const key = KIND_KEYS.find((k) => typeof rec[k] === "string");
    if (key !== undefined && kinds.size < 8) kinds.add(`${key} ${String(rec[key]).slice(0, 24)}`);
  }
  if (others === 0 || decoded === 0) return undefined;
  return `the stream's other messages, without ${first}` +
    (kinds.size > 0 ? ` (${[...kinds].join(", ")})` : "");
}

/** What a reason means for this tap, in the words of the config. */
function reasonDetail(reason: string, tap: Tap): string {
  const a = tap.audio;
  switch (reason) {
    case "missing_path":
    case "not_a_string":
      return `${reason} ${a.path}`;
    case "bad_json":
      return `bad_json (envelope json)`;
    case "no_regex_match":
      return `no_regex_match ${a.path}`;
    case "short_payload":
      return `short_payload (skip_bytes ${a.skip_bytes})`;
    case "bad_protobuf":
      return `bad_protobuf (envelope protobuf, path ${a.path}: the body is no Protocol Buffers message)`;
    case "bad_base64":
    case "bad_hex":
    case "bad_binary":
      return `${reason} (encoding ${a.encoding})`;
    case "odd_byte_count":
      return `odd_byte_count (codec ${a.codec}, ${a.channels} channel(s))`;
    case "missing_payload_column":
      return `missing_payload_column ${tap.columns.payload}`;
    default:
      return reason;
  }
}

/** Dotted paths of the string leaves of a JSON value. */
function stringPaths(v: unknown, prefix: string[] = [], out: string[] = [], depth = 0): string[] {
  if (depth > 8 || out.length > 200) return out;
  if (typeof v === "string") out.push(prefix.join("."));
  else if (Array.isArray(v)) {
    v.slice(0, 4).forEach((x, i) => stringPaths(x, [...prefix, String(i)], out, depth + 1));
  } else if (v !== null && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) stringPaths(x, [...prefix, k], out, depth + 1);
  }
  return out;
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)] as number[]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(
        d[i - 1]![j]! + 1,
        d[i]![j - 1]! + 1,
        d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
  }
  return d[a.length]![b.length]!;
}

/** A hint that names what the example row does have. */
function exampleHint(reason: string, row: Row, tap: Tap): string | undefined {
  if (reason === "missing_payload_column") {
    return `the rows have columns: ${Object.keys(row.columns).join(", ")}`;
  }
  const payload = cellBytes(row, tap.columns.payload);
  if (!payload) return undefined;
  if (reason === "missing_path" || reason === "not_a_string") {
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder().decode(payload));
    } catch {
      return undefined;
    }
    const paths = stringPaths(parsed);
    if (paths.length === 0) return "the JSON there has no string fields";
    const best = paths.map((p) => ({ p, d: editDistance(p, tap.audio.path) })).sort((x, y) => x.d - y.d)[0]!;
    const near = best.d <= Math.max(2, Math.floor(tap.audio.path.length / 3));
    return near
      ? `did you mean ${best.p}? (string fields there: ${paths.slice(0, 8).join(", ")})`
      : `string fields there: ${paths.slice(0, 8).join(", ")}`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Levels of source streams without onsets
// ---------------------------------------------------------------------------------------------------------------

interface StreamLevel {
  node: string;
  pod: string;
  stream: string;
  messages: number;
  seconds: number;
  /** 10 ms frame levels, dBFS: the quietest tenth and the loudest twentieth. */
  floorDbfs: number;
  loudDbfs: number;
  /** Longest run of frames above the VAD's bar, ms. */
  longestSpeechMs: number;
}

/** Levels of each source stream (by node and stream key) among `rows`, decoded with the engine's decoder. */
function streamLevels(
  rows: readonly Row[],
  tap: SignatureRules,
  skip: (node: string, key: string) => boolean,
) {
  const streams = new Map<
    string,
    { node: string; pod: string; key: string; dec: StreamDecoder; frames: number[] }
  >();
  const keyer = new StreamKeyer(tap.stream_key);
  const margin = Math.max(
    ENERGY_MIN_MARGIN_DB,
    ENERGY_DB_PER_UNIT * Math.min(1, Math.max(0, tap.audio_criteria.energy_threshold)),
  );
  let carry = new Map<string, number[]>();
  for (const row of rows) {
    const payload = cellBytes(row, tap.columns.payload);
    if (!payload) continue;
    const env = new PayloadEnvelope(payload);
    const key = keyer.keyOf(row.columns, env);
    if (skip(row.node, key)) continue;
    const id = `${row.node}\u0000${key}`;
    let s = streams.get(id);
    if (!s) {
      if (streams.size >= 64) continue;
      let dec: StreamDecoder;
      try {
        dec = new StreamDecoder(tap.audio);
      } catch {
        return [];
      }
      streams.set(id, s = { node: row.node, pod: cellText(row, tap.columns.pod), key, dec, frames: [] });
    }
    const out = s.dec.push({ timeNs: row.time, payload: env });
    if (out.kind === "error") continue;
    // 10 ms frames at the 8 kHz analysis rate, across message boundaries.
    const pending = (carry.get(id) ?? []).concat(Array.from(out.samples));
    let i = 0;
    for (; i + 80 <= pending.length; i += 80) {
      let e = 0;
      for (let k = i; k < i + 80; k++) e += pending[k]! * pending[k]!;
      s.frames.push(10 * Math.log10(e / 80 + 1e-12));
    }
    carry.set(id, pending.slice(i));
  }
  carry = new Map();
  const out: StreamLevel[] = [];
  for (const s of streams.values()) {
    const f = [...s.frames].sort((a, b) => a - b);
    if (f.length === 0) continue;
    const floor = f[Math.floor(f.length * 0.1)]!;
    const loud = f[Math.min(f.length - 1, Math.floor(f.length * 0.95))]!;
    let run = 0, longest = 0;
    for (const e of s.frames) {
      run = e >= ENERGY_MIN_SPEECH_DBFS && e >= floor + margin ? run + 1 : 0;
      longest = Math.max(longest, run);
    }
    out.push({
      node: s.node,
      pod: s.pod,
      stream: s.key,
      messages: s.dec.stats().messages,
      seconds: s.frames.length / 100,
      floorDbfs: floor,
      loudDbfs: loud,
      longestSpeechMs: longest * 10,
    });
  }
  return out;
}

function levelExplanation(l: StreamLevel, tap: SignatureRules): string {
  const c = tap.audio_criteria;
  const margin = Math.max(
    ENERGY_MIN_MARGIN_DB,
    ENERGY_DB_PER_UNIT * Math.min(1, Math.max(0, c.energy_threshold)),
  );
  const where = `${l.pod || l.node} stream ${l.stream} (${n(l.messages)} messages, ${
    l.seconds.toFixed(1)
  } s)`;
  const lv = `loudest frames ${l.loudDbfs.toFixed(0)} dBFS, quietest ${l.floorDbfs.toFixed(0)} dBFS`;
  if (l.loudDbfs < ENERGY_MIN_SPEECH_DBFS) {
    return `${where}: silent (${lv}; speech must reach ${ENERGY_MIN_SPEECH_DBFS} dBFS)`;
  }
  if (c.vad_mode === "energy" && l.loudDbfs - l.floorDbfs < margin) {
    return `${where}: too quiet for energy_threshold ${c.energy_threshold}: the loudest frames are ` +
      `${(l.loudDbfs - l.floorDbfs).toFixed(1)} dB above the floor, it needs ${margin} dB (${lv}); ` +
      `lower energy_threshold or check the codec`;
  }
  if (c.vad_mode === "energy" && l.longestSpeechMs < c.min_duration_ms) {
    return `${where}: speech runs of at most ${l.longestSpeechMs} ms, min_duration_ms is ${c.min_duration_ms}`;
  }
  if (l.seconds * 1000 < c.min_silence_ms + c.min_duration_ms) {
    return `${where}: only ${l.seconds.toFixed(1)} s of audio, an onset needs min_silence_ms ` +
      `${c.min_silence_ms} + min_duration_ms ${c.min_duration_ms}`;
  }
  return `${where}: has level (${lv}) but gave no signature (onsets need ${c.min_silence_ms} ms of pause ` +
    `before ${c.min_duration_ms} ms of speech; blocks need enough unmasked frames)`;
}

// ---------------------------------------------------------------------------------------------------------------
// The diagnosis
// ---------------------------------------------------------------------------------------------------------------

/** `file:line:col: signature_rules.audio` (or `match_rules[i].audio`) of a query's tap, for a finding's detail. */
function audioAt(config: Config, query: string): string {
  const found = tapOf(config, query);
  if (!found) return "audio";
  const mi = config.measurements.indexOf(found.m);
  const ri = found.m.match_rules.indexOf(found.tap as MatchRule);
  const path = found.stage === SOURCE_TAP
    ? ["measurements", mi, "signature_rules", "audio"]
    : ["measurements", mi, "match_rules", ri, "audio"];
  const where = configPosition(config, path);
  return `${where ? where + ": " : ""}${
    found.stage === SOURCE_TAP ? "signature_rules" : `match_rules[${ri}]`
  }.audio`;
}

/** Why a configured query may have no rows, and where its tap is written. */
function missingQueryDetail(config: Config, query: string): string[] {
  const found = tapOf(config, query);
  if (!found) return [];
  const mi = config.measurements.indexOf(found.m);
  const path = found.stage === SOURCE_TAP
    ? ["measurements", mi, "signature_rules"]
    : ["measurements", mi, "match_rules", found.m.match_rules.indexOf(found.tap as MatchRule)];
  const key = found.stage === SOURCE_TAP ? "signature_rules" : `match_rules[${path[3]}]`;
  const p = found.tap.packets;
  if (p) {
    const where = configPosition(config, [...path, "packets"]);
    const what = [
      `protocol ${p.protocol}`,
      ...(p.ports.length > 0 ? [`port ${p.ports.join(", ")}`] : []),
      ...(p.port_ranges.length > 0 ? ["port_range"] : []),
      ...(p.host !== undefined ? [`host ${p.host}`] : []),
      ...(p.pod !== undefined ? [`pod ${p.pod}`] : []),
    ].join(", ");
    return [
      `${
        where ? where + ": " : ""
      }${key}.packets (${what}) took no message from the packet captures: a port, ` +
      `protocol or host that is not in them (or a capture of another node); deno task discover CAPTURE... ` +
      `lists the ports that carry audio`,
    ];
  }
  return [
    `${query}: no capture has rows of this query: a capture holds the rows its recording read on one node ` +
    `(the config's node: / $NODE_NAME): give the capture of the node that runs these pods, or record there`,
  ];
}

function guessDiff(rows: readonly Row[], tap: Tap, max = 1000): string[] | undefined {
  // An RTP tap's codec comes from each packet's payload type: its `audio` section is not read.
  if (tap.packets?.protocol === "rtp") return undefined;
  const samples = rows.slice(0, max).flatMap((r) => {
    const b = cellBytes(r, tap.columns.payload);
    return b ? [{ bytes: b, timeNs: r.time, stream: `${r.node}|${cellText(r, tap.columns.pod)}` }] : [];
  });
  if (samples.length < 5) return undefined;
  const g = guessPayloadFormat(samples);
  if (g.kind !== "audio" || g.confidence < 0.5) return undefined;
  return audioDiff(tap.audio, g.format);
}

/** Explains a run's results; `poor` says whether they call for it. Never throws on row content. */
export function diagnose(config: Config, facts: RunFacts, opts: DiagnoseOptions = {}): Diagnosis {
  const findings: Finding[] = [];
  const fewRecall = opts.fewRecall ?? 0.5;
  const headline: string[] = [];
  const rowsOf = opts.rowsOf;
  const totalRows = Object.values(facts.rowsByQuery).reduce((a, b) => a + b, 0);

  if (totalRows === 0) {
    findings.push({
      kind: "no_rows",
      text: "no rows were read" +
        (facts.malformedLines ? ` (${n(facts.malformedLines)} malformed lines skipped)` : ""),
      detail: [],
    });
    headline.push("no rows");
  }

  // Queries no measurement names, and configured queries without rows.
  const named = new Set<string>();
  for (const m of config.measurements) {
    for (const q of queryNamesOf(m)) named.add(q);
  }
  const unnamed = Object.entries(facts.rowsByQuery).filter(([q, c]) => c > 0 && !named.has(q));
  if (unnamed.length > 0) {
    const known = config.measurements.map((m) =>
      `${m.name} (${[SOURCE_TAP, ...m.match_rules.map((r) => r.stage)].join(", ")})`
    ).join("; ");
    findings.push({
      kind: "unnamed_query",
      text: `rows of queries no measurement names: ${
        unnamed.map(([q, c]) => `${q} (${n(c)} rows)`).join(", ")
      }`,
      detail: [`the config names: ${known}; query names are <measurement>/<source or stage>`],
    });
  }
  if (totalRows > 0) {
    const missing = [...named].filter((q) => !(facts.rowsByQuery[q] ?? 0));
    if (missing.length > 0) {
      findings.push({
        kind: "missing_query",
        text: `configured queries without rows: ${missing.join(", ")}`,
        detail: missing.flatMap((q) => missingQueryDetail(config, q)),
      });
    }
  }

  // Decode errors by reason, with one example each.
  const errorsByQuery = new Map<string, DecodeErrorCount[]>();
  for (const e of facts.decodeErrors) {
    if (e.count <= 0) continue;
    const q = queryName(e.measurement, e.stream);
    errorsByQuery.set(q, [...(errorsByQuery.get(q) ?? []), e]);
  }
  const failedShare = new Map<string, number>();
  /** Queries whose bodies were already compared with their audio section. */
  const guessed = new Set<string>();
  for (const [query, errs] of errorsByQuery) {
    const found = tapOf(config, query);
    const rows = facts.rowsByQuery[query] ?? 0;
    errs.sort((a, b) => b.count - a.count);
    const qRows = found && rowsOf ? rowsOf(query) : [];
    let failed = 0;
    for (const e of errs) {
      const other = found ? otherMessages(e.reason, qRows, found.tap) : undefined;
      if (other !== undefined) {
        findings.push({
          kind: "no_audio",
          text: `${n(e.count)} rows of ${query}${pctOf(e.count, rows)} carry no audio: ${other}`,
          detail: [],
          query,
          rows: e.count,
        });
        continue;
      }
      failed += e.count;
      const what = found ? reasonDetail(e.reason, found.tap) : e.reason;
      const detail: string[] = [];
      const example = found ? qRows.find((r) => decodeFailure(r, found.tap) === e.reason) : undefined;
      if (example && found) {
        const payload = cellBytes(example, found.tap.columns.payload);
        detail.push(
          `example: node ${example.node}, pod ${cellText(example, found.tap.columns.pod) || "?"}, time_ ` +
            `${example.time}: ${payload ? payloadPreview(payload) : "(no payload column)"}`,
        );
        const hint = exampleHint(e.reason, example, found.tap);
        if (hint) detail.push(hint);
      }
      findings.push({
        kind: "decode_errors",
        text: `${what} in ${n(e.count)} rows of ${query}${pctOf(e.count, rows)}`,
        detail,
        query,
        rows: e.count,
      });
    }
    failedShare.set(query, rows > 0 ? failed / rows : 1);
    // When most messages fail, the bodies may say what they are.
    if (found && rowsOf && failed >= rows * 0.5) {
      guessed.add(query);
      const diff = guessDiff(rowsOf(query), found.tap);
      if (diff && diff.length > 0) {
        findings.push({
          kind: "audio_mismatch",
          text: `the bodies of ${query} look like: ${diff.join("; ")} (configured -> seen)`,
          detail: [
            `${
              audioAt(config, query)
            }; deno task discover --config ${facts.configFile} --capture FILE shows ` +
            `the whole guess`,
          ],
        });
      }
    }
  }
  for (const [query, cut] of Object.entries(facts.truncatedByQuery ?? {})) {
    const rows = facts.rowsByQuery[query] ?? 0;
    if (cut > 0 && cut >= rows * 0.1) {
      findings.push({
        kind: "truncated",
        text: `${n(cut)} of ${n(rows)} bodies of ${query} were cut or removed by Pixie${pctOf(cut, rows)}`,
        detail: ["raise the PEM body limits (README: Raise Pixie's body limits)"],
      });
    }
  }

  // RTP taps whose payloads are encrypted: they decode, as noise, and nothing else would say why.
  const encrypted = new Set<string>();
  if (rowsOf) {
    for (const m of config.measurements) {
      for (const query of queryNamesOf(m)) {
        const found = tapOf(config, query);
        if (found?.tap.packets?.protocol !== "rtp") continue;
        const text = encryptedRtp(rowsOf(query));
        if (text === undefined) continue;
        encrypted.add(query);
        findings.push({ kind: "srtp", text: `${query}: ${text}`, detail: [], query });
      }
    }
  }

  // Per measurement: signatures, then each stage's matches.
  for (const m of config.measurements) {
    const sourceQuery = queryName(m.name, SOURCE_TAP);
    const sourceRows = facts.rowsByQuery[sourceQuery] ?? 0;
    const sigs = facts.signaturesByMeasurement[m.name] ?? 0;
    // A sensor whose stages matched signatures it did not detect: other nodes' signatures, from the bus (`run` of
    // one node's capture with nats.url, a node without source pods). Its run had signatures to find, so neither
    // "no signatures" nor "0 matches: there were no signatures to find" (said with 30 of 30 matched) is true.
    const fromOtherNodes = sigs === 0 &&
      m.match_rules.some((r) => (facts.matchesByStage[queryName(m.name, r.stage)] ?? 0) > 0);
    if (sigs === 0 && !(fromOtherNodes && sourceRows === 0)) {
      headline.push(`${m.name}: no signatures`);
      const why = sourceRows === 0
        ? "no source rows (configured queries without rows, below)"
        : (failedShare.get(sourceQuery) ?? 0) >= 0.99
        ? "every source message failed to decode (above)"
        : encrypted.has(sourceQuery)
        ? "its RTP is SRTP, encrypted (above)"
        : "the source audio decoded but gave no onset";
      findings.push({
        kind: "no_signatures",
        text: `${m.name}: 0 signatures from ${n(sourceRows)} source rows: ${why}`,
        detail: [],
      });
    }
    // Source streams that decoded but gave no signature.
    if (
      rowsOf && sourceRows > 0 && (failedShare.get(sourceQuery) ?? 0) < 0.99 &&
      (sigs === 0 || facts.signatureStreams)
    ) {
      const has = facts.signatureStreams;
      const levels = streamLevels(
        rowsOf(sourceQuery),
        m.signature_rules,
        (node, key) => has?.has(`${m.name}\u0000${node}\u0000${key}`) ?? false,
      );
      const silent = levels.slice(0, 8);
      if (silent.length > 0) {
        findings.push({
          kind: "no_onset",
          text: `${m.name}: ${levels.length} source stream(s) decoded but gave no signature`,
          detail: silent.map((l) => levelExplanation(l, m.signature_rules)),
        });
      }
      if (sigs === 0 && levels.length > 0) {
        guessed.add(sourceQuery);
        const diff = guessDiff(rowsOf(sourceQuery), m.signature_rules);
        if (diff && diff.length > 0) {
          findings.push({
            kind: "audio_mismatch",
            text: `the bodies of ${sourceQuery} look like: ${diff.join("; ")} (configured -> seen)`,
            detail: [audioAt(config, sourceQuery)],
          });
        }
      }
    }
    // Id patterns that gave no signature its id: the records have no ids and there is no waterfall.
    const idTypes = facts.signatureIdTypes?.[m.name];
    if (idTypes && sigs > 0) {
      m.metadata_extraction.id_patterns.forEach((p, i) => {
        if (idTypes[p.id_type]) return;
        const path = [
          "measurements",
          config.measurements.indexOf(m),
          "metadata_extraction",
          "id_patterns",
          i,
        ];
        const where = configPosition(config, [...path, "pattern"]);
        const detail = [
          `${where ? where + ": " : ""}id_patterns[${i}].pattern ${
            JSON.stringify(p.pattern)
          } is searched in ` +
          `the text of each source message; make it match the id as it is written there (its one group is the id)`,
        ];
        const example = rowsOf?.(sourceQuery).find((r) => cellBytes(r, m.signature_rules.columns.payload));
        const body = example && cellBytes(example, m.signature_rules.columns.payload);
        if (example && body) {
          detail.push(
            `a source message: node ${example.node}, pod ${
              cellText(example, m.signature_rules.columns.pod) || "?"
            }` +
              `, time_ ${example.time}: ${payloadPreview(body)}`,
          );
        }
        findings.push({
          kind: "no_ids",
          text:
            `${m.name}: none of ${
              n(sigs)
            } signatures has an id ${p.id_type}: its pattern matched no source ` +
            `message, so records carry no ${p.id_type} and there is no waterfall by it`,
          detail,
        });
      });
    }
    const horizon = m.ttl_seconds - SIGNATURE_SPAN_S;
    // A stage near the TTL's horizon: another stage without matches may be past it.
    const nearTtl = m.match_rules.some((r) =>
      (facts.maxLatencyByStage?.[queryName(m.name, r.stage)] ?? -Infinity) >= horizon - TTL_SLACK_S
    );
    for (const r of m.match_rules) {
      const q = queryName(m.name, r.stage);
      const rows = facts.rowsByQuery[q] ?? 0;
      const matches = facts.matchesByStage[q] ?? 0;
      const found = facts.matchedSignaturesByStage?.[q];
      if (sigs === 0 && !fromOtherNodes) {
        if (rows > 0) {
          findings.push({
            kind: "no_matches",
            text: `stage ${q}: ${n(rows)} rows, 0 matches: there were no signatures to find`,
            detail: [],
          });
        }
        continue;
      }
      if (rows === 0) continue; // said above (configured queries without rows)
      const self = facts.selfMatchesByStage?.[q] ?? 0;
      if (matches > 0 && self >= matches / 2) {
        headline.push(`stage ${r.stage}: matches in the source's own stream`);
        const mi = config.measurements.indexOf(m);
        const key = r.packets ? "packets" : "stream_filter";
        const where = configPosition(config, [
          "measurements",
          mi,
          "match_rules",
          m.match_rules.indexOf(r),
          key,
        ]);
        const src = m.signature_rules.packets ? "packets" : "stream_filter";
        findings.push({
          kind: "self_matches",
          text:
            `stage ${q}: ${n(self)} of ${n(matches)} matches are in the source's own stream (same node and ` +
            `stream, latency 0): this tap reads the source's messages, so its latencies measure nothing`,
          detail: [
            `${where ? where + ": " : ""}match_rules[${m.match_rules.indexOf(r)}].${key}: point it at the ` +
            `stage's own traffic (the port, pod or connection its copy of the audio arrives on), not at what ` +
            `signature_rules.${src} already takes` +
            (r.packets ? " (a packet tap takes its port on either side of a flow)" : ""),
          ],
        });
        continue;
      }
      // Unknown without this node's signatures (the others' are not counted here).
      const recall = found !== undefined && sigs > 0 ? found / sigs : undefined;
      // A stage whose latencies come near what ttl_seconds leaves it loses its slowest instants without a word
      // (the demo with ttl_seconds 4: asr recall 86.7%, its slowest latencies gone from the percentiles, no
      // finding; with 3, 36.7%, and the hint blamed its audio).
      const slowest = facts.maxLatencyByStage?.[q];
      if (slowest !== undefined && slowest >= horizon - TTL_SLACK_S) {
        const lost = recall === undefined || recall < 1;
        if (lost) headline.push(`stage ${r.stage}: latencies near ttl_seconds`);
        const mi = config.measurements.indexOf(m);
        const where = configPosition(config, ["measurements", mi, "ttl_seconds"]);
        findings.push({
          kind: "ttl_short",
          text:
            `stage ${q}: latencies reach ${slowest.toFixed(1)} s, near the ${
              Math.max(0, horizon).toFixed(1)
            } s a match has before its signature expires (ttl_seconds ${m.ttl_seconds}, less the ${
              SIGNATURE_SPAN_S.toFixed(1)
            } s of audio after the instant a match needs): ` +
            (lost
              ? `slower instants expired unmatched, so this stage's recall${
                found !== undefined ? ` (${n(found)} of ${n(sigs)})` : ""
              } and latency percentiles are low`
              : "a slower instant would expire unmatched"),
          detail: [
            `${where ? where + ": " : ""}measurements[${mi}].ttl_seconds: raise it to this stage's slowest ` +
            `latency plus ${Math.ceil(SIGNATURE_SPAN_S + TTL_SLACK_S)} s or more (default 120)`,
          ],
        });
        continue;
      }
      if (matches > 0 && (recall === undefined || recall >= fewRecall)) continue;
      const kind = matches === 0 ? "no_matches" : "few_matches";
      headline.push(matches === 0 ? `stage ${r.stage}: no matches` : `stage ${r.stage}: few matches`);
      const detail: string[] = [];
      const share = failedShare.get(q) ?? 0;
      if (share >= 0.5) detail.push(`${Math.round(share * 100)}% of its messages failed to decode (above)`);
      else if (encrypted.has(q)) detail.push("its RTP is SRTP, encrypted (above)");
      else {
        detail.push(
          r.packets?.protocol === "rtp"
            ? "its audio decoded; either it does not carry the source's audio (is this tap downstream of the " +
              "source?), or a dynamic payload type is mapped to the wrong codec or rate (packets.payload_types)"
            : "its audio decoded; either it does not carry the source's audio (is this tap downstream of the " +
              "source?), or its audio section is wrong (a wrong codec or sample rate still decodes)",
        );
        if (nearTtl) {
          detail.push(
            `or it is slower than the ${Math.max(0, horizon).toFixed(1)} s ttl_seconds ${m.ttl_seconds} ` +
              `leaves a match (another stage's latencies come near it, above)`,
          );
        }
        if (rowsOf) {
          guessed.add(q);
          const diff = guessDiff(rowsOf(q), r);
          if (diff && diff.length > 0) {
            detail.push(`its bodies look like: ${diff.join("; ")} (configured -> seen)`);
            detail.push(`change it at ${audioAt(config, q)}`);
          }
        }
      }
      findings.push({
        kind,
        text: matches === 0
          ? `stage ${q}: ${n(rows)} rows, 0 matches of ${
            sigs > 0 ? `${n(sigs)} signatures` : "the other nodes' signatures other stages found"
          }`
          : `stage ${q}: ${n(found ?? 0)} of ${n(sigs)} signatures found${pctOf(found ?? 0, sigs)}`,
        detail,
      });
    }
  }
  // Every other tap with decoded rows: a wrong codec or sample rate still decodes and may still give signatures
  // and matches (μ-law read as A-law: fewer signatures; the source at 16 kHz: no stage matches), without a word.
  if (rowsOf) {
    for (const m of config.measurements) {
      const taps: [string, Tap][] = [
        [SOURCE_TAP, m.signature_rules],
        ...m.match_rules.map((r): [string, Tap] => [r.stage, r]),
      ];
      for (const [tapName, tap] of taps) {
        const q = queryName(m.name, tapName);
        if (guessed.has(q) || !(facts.rowsByQuery[q] ?? 0)) continue;
        // A smaller sample than for a tap that failed: this check runs on every run (50 rows: ~0.12 s of an analyze
        // of the bench corpus for its five taps, against ~0.3 s with 200; the mistakes it is for show in either).
        const diff = guessDiff(rowsOf(q), tap, 50);
        if (!diff || diff.length === 0) continue;
        findings.push({
          kind: "audio_mismatch",
          text: `the bodies of ${q} look like: ${diff.join("; ")} (configured -> seen)`,
          detail: [
            `${audioAt(config, q)}: a wrong codec or sample rate still decodes, into other ` +
            `audio: fewer signatures and matches, or none` +
            (tapName === SOURCE_TAP ? " at any stage" : "") +
            `; deno task discover --config ${facts.configFile} CAPTURE... shows the whole guess`,
          ],
        });
      }
    }
  }
  // What the repeat guard did is in no record: said here, so that fewer matches than before, or a latency with
  // the time between two calls in it, is explained.
  for (const [q, r] of Object.entries(facts.repeatsByStage ?? {})) {
    if (r.dropped + r.releasedBeforeTwin === 0) continue;
    const detail = [
      "the source carries the same audio at several instants (a prompt played into every call, a load test " +
      "replaying one recording, music on hold); each target instant is credited to the nearest earlier one " +
      "(README: Repeated audio)",
    ];
    if (r.releasedBeforeTwin > 0) {
      detail.push(
        `${n(r.releasedBeforeTwin)} were reported before their nearer repeat was found, so their latency ` +
          "includes the time between the repeats: the nearer signature came later than the Matcher's hold " +
          "(another node's signatures arriving late)",
      );
    }
    findings.push({
      kind: "repeated_audio",
      text: `stage ${q}: ${n(r.dropped + r.releasedBeforeTwin)} matches were of audio the source repeats; ` +
        `${n(r.dropped)} dropped for a nearer repeat`,
      detail,
    });
  }
  const order: Finding["kind"][] = [
    "no_rows",
    "decode_errors",
    "audio_mismatch",
    "unnamed_query",
    "no_signatures",
    "no_onset",
    "self_matches",
    "ttl_short",
    "repeated_audio",
    "no_matches",
    "few_matches",
    "truncated",
    "no_ids",
    "missing_query",
  ];
  findings.sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
  return {
    poor: headline.length > 0,
    headline: headline.join("; "),
    configFile: facts.configFile,
    findings,
  };
}

/**
 * The decode-error findings, then the rows without audio (`no_audio`), one line each with the example under it
 * (for summaries that always show them).
 */
export function decodeErrorLines(d: Diagnosis): string[] {
  return d.findings.filter((f) => f.kind === "decode_errors" || f.kind === "no_audio").flatMap((f) => [
    `  ${f.text}`,
    ...f.detail.map((x) => `      ${x}`),
  ]);
}

/**
 * Renders a diagnosis as text (empty when there is nothing to say); `skip` leaves out findings shown elsewhere.
 * Rows without audio (`no_audio`: a stream's events) explain nothing that went wrong and are left to the decode
 * summaries ({@link decodeErrorLines}).
 */
export function renderDiagnosis(d: Diagnosis, skip: readonly Finding["kind"][] = []): string {
  const shown = d.findings.filter((f) => !skip.includes(f.kind) && f.kind !== "no_audio");
  if (shown.length === 0) return "";
  const title = d.poor
    ? `Why (${d.headline}); config ${d.configFile}:`
    : `Notes on this run (config ${d.configFile}):`;
  const lines = [title];
  for (const f of shown) {
    lines.push(`  - ${f.text}`);
    for (const x of f.detail) lines.push(`      ${x}`);
  }
  return lines.join("\n");
}
