/**
 * Guesses how a stream's payloads carry audio (`audio` config section) from a sample of its messages: the envelope
 * (JSON path, regex, raw bytes with a header), the encoding (base64, hex, binary), the codec (by the statistics of
 * the decoded samples), the sample rate (decoded samples per message against the capture-time spacing), channels
 * when evident, context ids and a stream key. Pure: no I/O; never throws on payload content.
 *
 * How the codec is told: speech is smooth at telephony rates (its lag-1 autocorrelation is high), and decoding a
 * payload with the wrong codec scrambles it (A-law read as μ-law flips alternate bits, PCM16 read in the wrong
 * byte order puts the noisy low byte on top, float32 read as PCM16 splits each sample in two), so the right codec
 * is the one whose decoded signal is smoothest. float32 must also give finite values in [-1, 1].
 * @module
 */

import { protobufBytesFields, protobufField } from "./protobuf_path.ts";
import { ALAW_TO_LINEAR, bytesPerSample, type Codec, MULAW_TO_LINEAR } from "./codecs.ts";
import { decodeField, type Encoding } from "./encoding.ts";
import { detectPixieMarker, extractAudioField, latin1Text } from "./payload.ts";
import type { AudioFormat } from "../types.ts";

/** One captured message of the stream being guessed. */
export interface PayloadSample {
  /** The payload cell's bytes. */
  bytes: Uint8Array;
  /** Capture time, ns since the epoch. */
  timeNs: bigint;
  /**
   * What the caller already knows tells streams apart (pod, connection...). Messages of different calls often
   * interleave; the guesser refines this with JSON ids it finds. Undefined: one stream, unless ids say otherwise.
   */
  stream?: string;
}

/** One guessed value with how sure the guess is (0..1) and why. */
export interface Guess<T> {
  value: T;
  confidence: number;
  reason: string;
}

/** A proposed `metadata_extraction.id_patterns` entry. */
export interface IdGuess {
  /** JSON path of the field (dotted, as in `audio.path`). */
  path: string;
  /** Config `id_type`: the field's key. */
  idType: string;
  /** Config `pattern`: a regular expression with one capture group, matched against the payload text. */
  pattern: string;
  /** Distinct values seen. */
  distinct: number;
  reason: string;
}

/** What the payloads look like when they carry audio (or silence in an audio format). */
export interface AudioPayloadGuess {
  /** `silence`: the format is clear but the audio is silent or too quiet to judge the codec by. */
  kind: "audio" | "silence";
  envelope: Guess<AudioFormat["envelope"]>;
  /** json: the dotted path; regex: the pattern; raw: "". */
  path: string;
  /** raw: header bytes before the audio. */
  skipBytes: number;
  encoding: Guess<Encoding>;
  codec: Guess<Codec>;
  /** The snapped rate; `estimate` is what the timing said (undefined when it said nothing). */
  sampleRate: Guess<number> & { estimate?: number };
  channels: Guess<number>;
  ids: IdGuess[];
  /** `$.path` stream key items (differ across streams, constant within one), best first. */
  streamKeyPaths: Guess<string[]>;
  /** The `audio` section as the engine takes it. */
  format: AudioFormat;
  /** Overall confidence: the weakest of envelope, encoding, codec and rate. */
  confidence: number;
  /** One line for people. */
  reason: string;
  /** Messages examined, and how many of them decoded with the guessed format. */
  messages: number;
  decoded: number;
  /** Mean decoded duration per message, ms (at the guessed rate). */
  messageMs: number;
  /** Level of the decoded audio (RMS, dBFS). */
  levelDbfs: number;
  /** Anything a user should know (ambiguities, markers, skipped messages). */
  notes: string[];
}

/** The payloads do not look like audio. */
export interface NoAudioGuess {
  kind: "none";
  confidence: number;
  reason: string;
  messages: number;
  notes: string[];
}

/** Result of {@link guessPayloadFormat}. */
export type PayloadGuess = AudioPayloadGuess | NoAudioGuess;

/** Sample rates the guesser snaps to. */
export const STANDARD_RATES: readonly number[] = [8000, 16000, 22050, 24000, 32000, 44100, 48000];

/** Options of {@link guessPayloadFormat}. */
export interface GuessOptions {
  /** Most messages examined (default 2000); the first ones are kept, since spacing needs consecutive messages. */
  maxMessages?: number;
}

const CODECS: readonly Codec[] = ["mulaw", "alaw", "pcm16le", "pcm16be", "float32le"];
/** Order-2 prediction gain (dB) above which decoded samples look like sound rather than noise (noise: ~0). */
const SMOOTH_DB = 1.5;
/** Lag-1 autocorrelation a channel needs to count as sound. */
const SMOOTH = 0.45;
/** Below this RMS (dBFS) under the best codec, the stream is taken as silence. */
const SILENT_DBFS = -45;
const MIN_FIELD_CHARS = 16;
const MIN_RUN_CHARS = 24;
const MAX_LEAVES = 256;
const MAX_DEPTH = 12;

const utf8Fatal = new TextDecoder("utf-8", { fatal: true });

function utf8Text(bytes: Uint8Array): string | undefined {
  try {
    return utf8Fatal.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Whether bytes look like text: valid UTF-8 with few control characters. */
function isTextual(bytes: Uint8Array): boolean {
  if (utf8Text(bytes) === undefined) return false;
  let ctrl = 0;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) ctrl++;
  }
  return ctrl <= bytes.length * 0.01;
}

function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function clamp01(x: number): number {
  return x < 0 ? 0 : x > 1 ? 1 : Number.isFinite(x) ? x : 0;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

function pct(n: number, of: number): string {
  return of === 0 ? "0%" : `${Math.round((100 * n) / of)}%`;
}

/** Escapes text for use as a literal in a regular expression. */
export function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

// ------------------------------------------------------------------------------------------------------------
// Codec statistics
// ------------------------------------------------------------------------------------------------------------

/** Statistics of a set of chunks decoded with one codec. */
interface CodecScore {
  codec: Codec;
  /** Chunks whose length is a whole number of samples. */
  whole: number;
  chunks: number;
  samples: number;
  /** Lag-1 autocorrelation over the samples (within chunks), NaN when the signal is constant. */
  r1: number;
  /**
   * Order-2 linear prediction gain, dB (NaN when constant): how predictable each sample is from the two before.
   * It separates the codecs far better than r1 (speech as the right G.711 law ~10 dB, as the other ~4 dB).
   */
  gainDb: number;
  /** Lag-1 autocorrelation of every other sample (channel 0 of a stereo interleave). */
  r1Stereo: number;
  rmsDbfs: number;
  /** float32: share of samples that are finite and within [-1, 1]. */
  inRange: number;
  valid: boolean;
}

/** Decodes one chunk with `codec` into `out` (length chunk/bps); non-finite float32 become NaN (counted). */
function decodeInto(codec: Codec, bytes: Uint8Array, out: Float64Array): void {
  const n = out.length;
  switch (codec) {
    case "mulaw":
      for (let i = 0; i < n; i++) out[i] = MULAW_TO_LINEAR[bytes[i]!]! / 32768;
      return;
    case "alaw":
      for (let i = 0; i < n; i++) out[i] = ALAW_TO_LINEAR[bytes[i]!]! / 32768;
      return;
    case "pcm16le":
      for (let i = 0, j = 0; i < n; i++, j += 2) {
        out[i] = (((bytes[j]! | (bytes[j + 1]! << 8)) << 16) >> 16) / 32768;
      }
      return;
    case "pcm16be":
      for (let i = 0, j = 0; i < n; i++, j += 2) {
        out[i] = ((((bytes[j]! << 8) | bytes[j + 1]!) << 16) >> 16) / 32768;
      }
      return;
    case "float32le": {
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
      return;
    }
  }
}

/** Scores `codec` on the chunks (each a message's audio bytes). */
function scoreCodec(codec: Codec, chunks: readonly Uint8Array[]): CodecScore {
  const bps = bytesPerSample(codec);
  let whole = 0;
  let samples = 0;
  let inRange = 0;
  let sum = 0;
  const decoded: Float64Array[] = [];
  for (const c of chunks) {
    if (c.length === 0) continue;
    if (c.length % bps !== 0) continue;
    whole++;
    const out = new Float64Array(c.length / bps);
    decodeInto(codec, c, out);
    for (let i = 0; i < out.length; i++) {
      const v = out[i]!;
      if (Number.isFinite(v) && v >= -1 && v <= 1) {
        inRange++;
        sum += v;
      } else {
        out[i] = NaN;
      }
    }
    samples += out.length;
    decoded.push(out);
  }
  const mean = inRange ? sum / inRange : 0;
  let sxx = 0, sxy = 0, sxz = 0, n = 0, sxx2 = 0, sxy2 = 0;
  for (const out of decoded) {
    for (let i = 0; i < out.length; i++) {
      const a = out[i]! - mean;
      if (a !== a) continue;
      sxx += a * a;
      n++;
      const b = i + 1 < out.length ? out[i + 1]! - mean : NaN;
      if (b === b) sxy += a * b;
      const z = i + 2 < out.length ? out[i + 2]! - mean : NaN;
      if (z === z) sxz += a * z;
      // Every other sample: channel 0 of two interleaved channels.
      if (i % 2 === 0) {
        sxx2 += a * a;
        const c = i + 2 < out.length ? out[i + 2]! - mean : NaN;
        if (c === c) sxy2 += a * c;
      }
    }
  }
  const rms = n ? Math.sqrt(sxx / n) : 0;
  let gainDb = NaN;
  if (sxx > 1e-18) {
    // Levinson-Durbin to order 2 on the normalised autocorrelation.
    const p1 = sxy / sxx;
    const p2 = sxz / sxx;
    const e1 = Math.max(1e-9, 1 - p1 * p1);
    const k2 = (p2 - p1 * p1) / e1;
    const e2 = Math.max(1e-9, e1 * (1 - k2 * k2));
    gainDb = -10 * Math.log10(Math.min(1, e2));
  }
  const nonEmpty = chunks.filter((c) => c.length > 0).length;
  const inRangeShare = samples ? inRange / samples : 0;
  return {
    codec,
    whole,
    chunks: nonEmpty,
    samples,
    r1: sxx > 1e-18 ? sxy / sxx : NaN,
    gainDb,
    r1Stereo: sxx2 > 1e-18 ? sxy2 / sxx2 : NaN,
    rmsDbfs: rms > 0 ? 20 * Math.log10(rms) : -200,
    inRange: inRangeShare,
    valid: nonEmpty > 0 && whole >= nonEmpty * 0.95 && samples > 0 &&
      (codec !== "float32le" || (inRangeShare >= 0.99 && rms > 1e-6)),
  };
}

/** The byte values that silence takes in each 8-bit codec (and in any PCM: zero). */
function silenceCodec(chunks: readonly Uint8Array[]): Codec {
  let mu = 0, a = 0, zero = 0, total = 0;
  for (const c of chunks) {
    for (let i = 0; i < c.length; i++) {
      const b = c[i]!;
      total++;
      if (b >= 0x7c && b <= 0x7f || b >= 0xfc) mu++;
      else if ((b & 0x7f) >= 0x50 && (b & 0x7f) <= 0x57) a++;
      else if (b === 0) zero++;
    }
  }
  if (zero > total / 2) return "pcm16le";
  return a > mu ? "alaw" : "mulaw";
}

interface CodecVerdict {
  best: CodecScore;
  scores: CodecScore[];
  kind: "audio" | "silence" | "noise";
  confidence: number;
  reason: string;
}

function judgeCodecs(chunks: readonly Uint8Array[]): CodecVerdict | undefined {
  const scores = CODECS.map((c) => scoreCodec(c, chunks));
  const valid = scores.filter((s) => s.valid);
  if (valid.length === 0) return undefined;
  const smooth = valid.filter((s) => s.gainDb === s.gainDb).sort((x, y) => y.gainDb - x.gainDb);
  const quietest = [...valid].sort((x, y) => x.rmsDbfs - y.rmsDbfs)[0]!;
  const top = smooth[0];
  if (top && top.gainDb >= SMOOTH_DB && top.rmsDbfs > SILENT_DBFS - 20) {
    const second = smooth[1];
    const margin = second ? top.gainDb - second.gainDb : top.gainDb;
    const confidence = round2(clamp01(margin / 4) * clamp01((top.gainDb - 1) / 4));
    const why = second
      ? `decoded as ${top.codec} the signal is predictable like sound (prediction gain ${
        top.gainDb.toFixed(1)
      } dB, ` +
        `lag-1 autocorrelation ${top.r1.toFixed(2)}; next best ${second.codec} ${
          second.gainDb.toFixed(1)
        } dB)`
      : `only ${top.codec} decodes (prediction gain ${top.gainDb.toFixed(1)} dB)`;
    return { best: top, scores, kind: "audio", confidence: Math.max(confidence, 0.05), reason: why };
  }
  if (quietest.rmsDbfs <= SILENT_DBFS) {
    const codec = silenceCodec(chunks);
    const best = valid.find((s) => s.codec === codec) ?? quietest;
    return {
      best,
      scores,
      kind: "silence",
      confidence: 0.2,
      reason:
        `the audio is silent (${Math.max(-99, Math.round(quietest.rmsDbfs))} dBFS as ${quietest.codec}): ` +
        `the codec cannot be told from silence; ${codec} from the byte values`,
    };
  }
  const g = top ? `${top.gainDb.toFixed(1)} dB` : "n/a";
  return {
    best: top ?? valid[0]!,
    scores,
    kind: "noise",
    confidence: 0,
    reason: `decoded with every codec the bytes look like noise (best prediction gain ${g} as ` +
      `${top?.codec ?? valid[0]!.codec})`,
  };
}

// ------------------------------------------------------------------------------------------------------------
// Where the audio field is
// ------------------------------------------------------------------------------------------------------------

/** One way to find the audio field in every message. */
interface FieldCandidate {
  envelope: AudioFormat["envelope"];
  path: string;
  skip: number;
  encoding: Encoding;
  /** Per message: the audio bytes, or undefined when the field is missing or does not decode. */
  bytes: (Uint8Array | undefined)[];
  /** How the field was found. */
  how: string;
  /** raw: the skip is the structured header found at the start of every message. */
  header?: boolean;
}

const B64_CHARS = /^[A-Za-z0-9+/_\-\s]*={0,2}\s*$/;
const HEX_CHARS = /^[0-9a-fA-F]*$/;

function encodingsFor(values: readonly string[]): Encoding[] {
  const present = values.filter((v) => v.length > 0);
  if (present.length === 0) return [];
  if (present.every((v) => HEX_CHARS.test(v) && v.length % 2 === 0)) return ["hex", "base64"];
  if (present.filter((v) => B64_CHARS.test(v)).length >= present.length * 0.95) return ["base64"];
  let binary = true;
  for (const v of present) {
    for (let i = 0; i < v.length && binary; i++) if (v.charCodeAt(i) > 0xff) binary = false;
  }
  return binary ? ["binary"] : [];
}

function decodeAll(
  values: readonly (string | Uint8Array | undefined)[],
  enc: Encoding,
): (Uint8Array | undefined)[] {
  return values.map((v) => {
    if (v === undefined) return undefined;
    const r = decodeField(v, enc);
    return r.ok ? r.bytes : undefined;
  });
}

interface Leaf {
  path: string;
  key: string;
  /** Per message (index into the sample), the string value. */
  values: (string | undefined)[];
  /** Whether the value sat inside a JSON text embedded in a string. */
  nested: boolean;
}

/** Collects string leaves of each JSON message by dotted path (arrays: the first elements, by index). */
function jsonLeaves(parsed: readonly unknown[]): Map<string, Leaf> {
  const leaves = new Map<string, Leaf>();
  const visit = (v: unknown, path: string[], i: number, depth: number, nested: boolean) => {
    if (depth > MAX_DEPTH) return;
    if (typeof v === "string") {
      const p = path.join(".");
      let leaf = leaves.get(p);
      if (!leaf) {
        if (leaves.size >= MAX_LEAVES) return;
        leaf = { path: p, key: path[path.length - 1] ?? "", values: [], nested };
        leaves.set(p, leaf);
      }
      leaf.values[i] = v;
      // A JSON text inside a string (e.g. Redis `{"channel","message"}`): its fields are reachable by regex only.
      if (!nested && v.length > 1 && (v[0] === "{" || v[0] === "[")) {
        try {
          visit(JSON.parse(v), [...path, "~"], i, depth + 1, true);
        } catch {
          // not JSON: an ordinary string
        }
      }
      return;
    }
    if (Array.isArray(v)) {
      for (let k = 0; k < Math.min(v.length, 8); k++) visit(v[k], [...path, String(k)], i, depth + 1, nested);
      return;
    }
    if (v !== null && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) {
        if (k.includes(".") || k === "~" || k === "") continue;
        visit(x, [...path, k], i, depth + 1, nested);
      }
    }
  };
  parsed.forEach((p, i) => {
    if (p !== undefined) visit(p, [], i, 0, false);
  });
  return leaves;
}

/** Runs of the base64/hex alphabet of at least {@link MIN_RUN_CHARS} characters. */
const RUN = new RegExp(`[A-Za-z0-9+/_-]{${MIN_RUN_CHARS},}={0,2}`, "g");

/** The longest base64/hex-alphabet run of each text, with where it starts. */
function longestRuns(
  texts: readonly (string | undefined)[],
): ({ start: number; text: string } | undefined)[] {
  return texts.map((t) => {
    if (t === undefined) return undefined;
    let best: { start: number; text: string } | undefined;
    RUN.lastIndex = 0;
    for (let m = RUN.exec(t); m; m = RUN.exec(t)) {
      if (!best || m[0].length > best.text.length) best = { start: m.index, text: m[0] };
    }
    return best;
  });
}

function commonSuffix(xs: readonly string[]): string {
  if (xs.length === 0) return "";
  let s = xs[0]!;
  for (const x of xs) {
    let k = 0;
    while (k < s.length && k < x.length && s[s.length - 1 - k] === x[x.length - 1 - k]) k++;
    s = s.slice(s.length - k);
    if (s === "") break;
  }
  return s;
}

/** A regex envelope for texts holding one long base64/hex blob: literal context before it, then the blob. */
function regexCandidate(
  texts: readonly (string | undefined)[],
  samples: readonly PayloadSample[],
): FieldCandidate[] {
  const runs = longestRuns(texts);
  const found = runs.filter((r) => r !== undefined);
  const present = texts.filter((t) => t !== undefined).length;
  if (found.length < Math.max(2, present * 0.8)) return [];
  const blobs = found.map((r) => r.text);
  const hex = blobs.every((b) => HEX_CHARS.test(b));
  const std = blobs.some((b) => /[+/]/.test(b));
  const url = blobs.some((b) => /[-_]/.test(b));
  const cls = hex ? "[0-9a-fA-F]" : std && url ? "[A-Za-z0-9+/_-]" : url ? "[A-Za-z0-9_-]" : "[A-Za-z0-9+/]";
  const group = hex ? `(${cls}+)` : `(${cls}+={0,2})`;
  const prefixes = runs.flatMap((r, i) => (r ? [texts[i]!.slice(Math.max(0, r.start - 24), r.start)] : []));
  const context = commonSuffix(prefixes);
  // The shortest anchoring context that finds the blob in every message, widened to the start of its word (so
  // `data: ` rather than `: `); the bare alphabet run is the last resort.
  const patterns: string[] = [];
  for (let len = 1; len <= context.length; len++) {
    let at = context.length - len;
    const tail = context.slice(at);
    if (!/[^A-Za-z0-9+/_=-]/.test(tail)) continue;
    while (at > 0 && /[A-Za-z0-9_]/.test(context[at - 1]!)) at--;
    const p = `${escapeRegex(context.slice(at))}${group}`;
    if (!patterns.includes(p)) patterns.push(p);
  }
  patterns.push(`(${cls}{${MIN_RUN_CHARS},}${hex ? "" : "={0,2}"})`);
  const out: FieldCandidate[] = [];
  for (const pattern of patterns) {
    // Checked with the engine's own extraction: what the config will do is what is scored.
    const values = samples.map((s, i) => {
      if (texts[i] === undefined) return undefined;
      const r = extractAudioField(s.bytes, { envelope: "regex", path: pattern, skip_bytes: 0 });
      return r.ok && typeof r.data === "string" ? r.data : undefined;
    });
    const agree = values.filter((v, i) => v !== undefined && v === runs[i]?.text).length;
    if (agree < found.length * 0.9) continue;
    for (const enc of hex ? (["hex", "base64"] as const) : (["base64"] as const)) {
      out.push({
        envelope: "regex",
        path: pattern,
        skip: 0,
        encoding: enc,
        bytes: decodeAll(values, enc),
        how: pattern.startsWith("(")
          ? `the longest ${hex ? "hex" : "base64"} run of each text message`
          : `a ${hex ? "hex" : "base64"} blob after a fixed text in ${
            pct(found.length, present)
          } of the text messages`,
      });
    }
    break;
  }
  return out;
}

/** Raw binary payloads: the audio starts after a header of `skip` bytes; the smoothest decode wins later. */
function rawCandidates(samples: readonly PayloadSample[]): FieldCandidate[] {
  const minLen = Math.min(...samples.map((s) => s.bytes.length));
  const header = headerLength(samples, minLen);
  const skips = new Set([0, header, 2, 4, 8, 12, 16, 20, 24, 28, 32, 44].filter((k) => k < minLen));
  return [...skips].sort((a, b) => a - b).map((skip) => ({
    envelope: "raw" as const,
    path: "",
    skip,
    encoding: "binary" as const,
    bytes: samples.map((s) => s.bytes.subarray(skip)),
    how: skip === 0
      ? "the whole payload is audio"
      : skip === header
      ? `the audio follows a ${skip}-byte header (constant or counting bytes at the start of every message)`
      : `the audio follows a ${skip}-byte header`,
    header: skip > 0 && skip === header,
  }));
}

/** Messages looked at for the fields a Protocol Buffers body holds. */
const PROTOBUF_SURVEY = 200;

/**
 * The bytes fields of Protocol Buffers messages (top level and one level down) that most messages hold and that
 * are long enough to be audio: a gRPC recognizer's `audio_content`, protobuf on NATS or a WebSocket. None when
 * fewer than 80% of the messages parse as messages.
 */
function protobufCandidates(samples: readonly PayloadSample[]): FieldCandidate[] {
  const survey = samples.slice(0, PROTOBUF_SURVEY);
  const seen = new Map<string, { n: number; bytes: number }>();
  let parsed = 0;
  for (const s of survey) {
    const top = protobufBytesFields(s.bytes);
    if (top === undefined || top.length === 0) continue;
    parsed++;
    const here = new Set<string>();
    const note = (path: string, len: number) => {
      if (here.has(path)) return;
      here.add(path);
      const e = seen.get(path) ?? { n: 0, bytes: 0 };
      e.n++;
      e.bytes += len;
      seen.set(path, e);
    };
    for (const f of top) {
      note(String(f.field), f.end - f.start);
      const inner = protobufBytesFields(s.bytes, f.start, f.end);
      if (inner === undefined) continue;
      for (const g of inner) note(`${f.field}.${g.field}`, g.end - g.start);
    }
  }
  if (parsed < survey.length * 0.8) return [];
  const out: FieldCandidate[] = [];
  for (const [path, e] of seen) {
    const mean = e.bytes / e.n;
    if (e.n < survey.length * 0.5 || mean < 4 * MIN_FIELD_CHARS) continue;
    out.push({
      envelope: "protobuf",
      path,
      skip: 0,
      encoding: "binary",
      bytes: samples.map((s) => {
        const f = protobufField(s.bytes, path);
        return typeof f === "string" ? undefined : f;
      }),
      how: `bytes field ${path} of a Protocol Buffers message (${pct(e.n, survey.length)} of messages, ~${
        Math.round(mean)
      } bytes)`,
    });
  }
  return out;
}

/**
 * Length of a structured header: leading byte positions that are constant across messages or count (the same
 * step from one message to the next, like RTP sequence numbers), as audio bytes are neither. 0 when none.
 */
function headerLength(samples: readonly PayloadSample[], minLen: number): number {
  if (samples.length < 8) return 0;
  const span = Math.min(64, minLen);
  const structured: boolean[] = [];
  for (let j = 0; j < span; j++) {
    const values = new Set<number>();
    const steps = new Map<number, number>();
    for (let k = 0; k < samples.length; k++) {
      const v = samples[k]!.bytes[j]!;
      values.add(v);
      if (k > 0) {
        const d = (v - samples[k - 1]!.bytes[j]! + 256) & 0xff;
        steps.set(d, (steps.get(d) ?? 0) + 1);
      }
    }
    const topStep = Math.max(...steps.values());
    structured.push(values.size <= 2 || topStep >= (samples.length - 1) * 0.8);
  }
  // Silence is constant too: a "header" over most of the first bytes is no header.
  if (structured.filter(Boolean).length > span * 0.6) return 0;
  let end = 0;
  for (let j = 0; j < span; j++) if (structured[j]) end = j + 1;
  // The header is a block at the start: most positions before its end must be structured.
  const inside = structured.slice(0, end).filter(Boolean).length;
  return end > 0 && inside >= end * 0.5 ? end : 0;
}

// ------------------------------------------------------------------------------------------------------------
// Streams, ids and timing
// ------------------------------------------------------------------------------------------------------------

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const ID_VALUE = /^[A-Za-z0-9][A-Za-z0-9._:@/+-]{3,127}$/;
const ID_KEY = /(?:^|[_\-.]|[a-z])(?:id|Id|ID|sid|Sid|SID|uuid|UUID|Uuid|key|Key)$|^(?:id|sid|uuid)$/;
const STREAMY_KEY = /stream|session|call|conversation|channel|conn|dialog|leg/i;

interface IdLeaf {
  leaf: Leaf;
  uuid: boolean;
  distinct: number;
  /** Share of consecutive same-stream messages whose value changed. */
  changes: number;
  present: number;
}

/** Leaves whose values look like ids and stay put within a stream. */
function idLeaves(leaves: Iterable<Leaf>, samples: readonly PayloadSample[], audioPath: string): IdLeaf[] {
  const out: IdLeaf[] = [];
  for (const leaf of leaves) {
    if (leaf.path === audioPath) continue;
    const vals = leaf.values.filter((v): v is string => v !== undefined);
    if (vals.length < Math.max(2, samples.length * 0.5)) continue;
    const uuid = vals.every((v) => UUID.test(v));
    const idish = vals.every((v) => ID_VALUE.test(v) && /\d/.test(v) && !/^\d+$/.test(v));
    if (!uuid && !(idish && (ID_KEY.test(leaf.key) || STREAMY_KEY.test(leaf.key)))) continue;
    const distinct = new Set(vals).size;
    const last = new Map<string, string>();
    let pairs = 0, changes = 0;
    leaf.values.forEach((v, i) => {
      if (v === undefined) return;
      const s = samples[i]?.stream ?? "";
      const prev = last.get(s);
      if (prev !== undefined) {
        pairs++;
        if (prev !== v) changes++;
      }
      last.set(s, v);
    });
    // Interleaved calls make a per-stream id change between consecutive messages of one caller stream; a
    // per-message id changes every time and has as many values as messages.
    if (distinct > vals.length * 0.5) continue;
    out.push({ leaf, uuid, distinct, changes: pairs ? changes / pairs : 0, present: vals.length });
  }
  return out;
}

function idTypeOf(key: string): string {
  const t = key.replace(/[^A-Za-z0-9_]/g, "_").replace(/^(\d)/, "_$1");
  return t === "" ? "id" : t;
}

function idPattern(leaf: Leaf, uuid: boolean): string {
  const key = escapeRegex(leaf.key);
  const value = uuid ? "([0-9a-fA-F-]{36})" : leaf.nested ? '([^"\\\\]+)' : '([^"]+)';
  return leaf.nested ? `${key}\\\\?"\\s*:\\s*\\\\?"${value}` : `"${key}"\\s*:\\s*"${value}`;
}

interface Timing {
  /** Native frames per second, from decoded frames and capture-time spacing. */
  rate?: number;
  /** Windows the estimate rests on. */
  windows: number;
  /** Relative spread of the per-window estimates (IQR / median). */
  spread: number;
}

/** Frames per second from consecutive messages of each stream (windows of up to 4 intervals, gaps skipped). */
function estimateRate(items: readonly { stream: string; timeNs: bigint; frames: number }[]): Timing {
  const byStream = new Map<string, { t: number[]; f: number[] }>();
  const t0 = items[0]?.timeNs ?? 0n;
  for (const it of items) {
    let s = byStream.get(it.stream);
    if (!s) byStream.set(it.stream, s = { t: [], f: [] });
    s.t.push(Number(it.timeNs - t0) / 1e9);
    s.f.push(it.frames);
  }
  const intervals: number[] = [];
  for (const s of byStream.values()) {
    for (let i = 1; i < s.t.length; i++) {
      const d = s.t[i]! - s.t[i - 1]!;
      if (d > 0) intervals.push(d);
    }
  }
  const medInterval = median(intervals);
  if (!(medInterval > 0)) return { windows: 0, spread: 1 };
  const rates: number[] = [];
  for (const s of byStream.values()) {
    for (let i = 0; i + 1 < s.t.length; i++) {
      const k = Math.min(4, s.t.length - 1 - i);
      let frames = 0;
      let gap = false;
      for (let j = i + 1; j <= i + k; j++) {
        frames += s.f[j]!;
        if (s.t[j]! - s.t[j - 1]! > 5 * medInterval) gap = true;
      }
      const dt = s.t[i + k]! - s.t[i]!;
      if (gap || dt <= 0 || frames <= 0) continue;
      rates.push(frames / dt);
    }
  }
  if (rates.length === 0) return { windows: 0, spread: 1 };
  rates.sort((a, b) => a - b);
  const q = (p: number) => rates[Math.min(rates.length - 1, Math.floor(p * rates.length))]!;
  const rate = median(rates);
  return { rate, windows: rates.length, spread: (q(0.75) - q(0.25)) / rate };
}

function snapRate(t: Timing, fallback: number): Guess<number> & { estimate?: number } {
  if (t.rate === undefined) {
    return {
      value: fallback,
      confidence: 0.1,
      reason: "the capture times give no spacing between messages of one stream; 8000 Hz assumed",
    };
  }
  const est = t.rate;
  const ranked = STANDARD_RATES.map((r) => ({ r, err: Math.abs(est / r - 1) })).sort((a, b) => a.err - b.err);
  const best = ranked[0]!;
  const second = ranked[1]!;
  let conf = best.err <= 0.03 ? 0.95 : best.err <= 0.08 ? 0.7 : best.err <= 0.15 ? 0.4 : 0.15;
  if (t.spread > 0.3) conf *= 0.7;
  if (t.windows < 5) conf *= 0.6;
  let reason = `${Math.round(est)} samples/s from decoded samples per message over capture-time spacing ` +
    `(${t.windows} windows)`;
  if (best.err > 0.15) reason += `; no standard rate fits, nearest ${best.r}`;
  if (second.err < 0.1) {
    conf = Math.min(conf, 0.5);
    reason += `; ambiguous with ${second.r} Hz`;
  }
  return { value: best.r, confidence: round2(conf), reason, estimate: Math.round(est) };
}

// ------------------------------------------------------------------------------------------------------------
// The guess
// ------------------------------------------------------------------------------------------------------------

interface Scored {
  cand: FieldCandidate;
  verdict: CodecVerdict;
  decoded: number;
  score: number;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function score(cand: FieldCandidate, n: number): Scored | undefined {
  const chunks = cand.bytes.filter((b): b is Uint8Array => b !== undefined);
  if (chunks.length < Math.max(1, n * 0.5)) return undefined;
  const verdict = judgeCodecs(chunks);
  if (!verdict) return undefined;
  const decoded = chunks.length;
  // Sound never repeats byte for byte over many messages; a value that does (a token, an id) is only audio
  // when it is digital silence.
  if (verdict.kind === "audio" && chunks.length >= 5 && chunks.every((c) => sameBytes(c, chunks[0]!))) {
    verdict.kind = "noise";
    verdict.confidence = 0;
    verdict.reason = "the same value in every message is no sound";
  }
  const g = verdict.best.gainDb === verdict.best.gainDb ? verdict.best.gainDb : 0;
  const quality = verdict.kind === "audio" ? 1 + Math.min(g, 30) / 10 : verdict.kind === "silence" ? 0.5 : 0;
  // Ties go to the plainest envelope: a JSON field, then a whole text body, then a regex, then binary bodies.
  const envBonus = cand.envelope === "json"
    ? 0.03
    : cand.envelope === "regex"
    ? 0.01
    : cand.encoding !== "binary"
    ? 0.02
    : 0;
  return { cand, verdict, decoded, score: (decoded / n) * quality + envBonus - cand.skip * 1e-4 };
}

/**
 * Guesses the `audio` section (and ids, stream key) of one stream from a sample of its payloads. Messages that are
 * Pixie markers (truncated, removed) are left out and noted. Never throws on payload content.
 */
export function guessPayloadFormat(input: readonly PayloadSample[], opts: GuessOptions = {}): PayloadGuess {
  const notes: string[] = [];
  const max = opts.maxMessages ?? 2000;
  let markers = 0;
  const samples: PayloadSample[] = [];
  for (const s of input) {
    if (samples.length >= max) break;
    if (detectPixieMarker(s.bytes)) {
      markers++;
      continue;
    }
    if (s.bytes.length === 0) continue;
    samples.push(s);
  }
  if (markers > 0) notes.push(`${markers} message(s) cut or removed by Pixie were left out`);
  const n = samples.length;
  if (n === 0) {
    return {
      kind: "none",
      confidence: 0.9,
      reason: input.length === 0 ? "no messages" : "every message is empty or a Pixie marker",
      messages: 0,
      notes,
    };
  }

  // 1. Envelope candidates.
  const textual = samples.map((s) => isTextual(s.bytes));
  const textShare = textual.filter(Boolean).length / n;
  const parsed: unknown[] = samples.map((s, i) => {
    if (!textual[i]) return undefined;
    const t = utf8Text(s.bytes)!.trim();
    if (t[0] !== "{" && t[0] !== "[") return undefined;
    try {
      return JSON.parse(t);
    } catch {
      return undefined;
    }
  });
  const jsonCount = parsed.filter((p) => p !== undefined && typeof p === "object" && p !== null).length;
  const candidates: FieldCandidate[] = [];
  let leaves = new Map<string, Leaf>();
  if (jsonCount >= n * 0.8) {
    leaves = jsonLeaves(parsed);
    for (const leaf of leaves.values()) {
      if (leaf.nested) continue;
      const vals = leaf.values.filter((v): v is string => v !== undefined);
      if (vals.length < jsonCount * 0.5) continue;
      const meanLen = vals.reduce((a, v) => a + v.length, 0) / vals.length;
      if (meanLen < MIN_FIELD_CHARS) continue;
      for (const enc of encodingsFor(vals)) {
        const values = samples.map((_, i) => leaf.values[i]);
        candidates.push({
          envelope: "json",
          path: leaf.path,
          skip: 0,
          encoding: enc,
          bytes: decodeAll(values, enc),
          how: `string field ${leaf.path} (${pct(vals.length, n)} of messages, ~${
            Math.round(meanLen)
          } chars)`,
        });
      }
    }
  }
  if (textShare >= 0.8) {
    const texts = samples.map((s, i) => (textual[i] ? latin1Text(s.bytes) : undefined));
    // The whole body may be the encoded audio itself.
    const trimmed = texts.map((t) => t?.trim());
    const whole = trimmed.filter((t) => t !== undefined && t.length >= MIN_FIELD_CHARS);
    if (whole.length >= n * 0.8) {
      for (const enc of encodingsFor(whole as string[])) {
        if (enc === "binary") continue;
        candidates.push({
          envelope: "raw",
          path: "",
          skip: 0,
          encoding: enc,
          bytes: decodeAll(samples.map((s) => s.bytes), enc),
          how: `the whole body is ${enc} text`,
        });
      }
    }
    // Regex: non-JSON text, or JSON whose audio sits in a JSON text inside a string.
    candidates.push(...regexCandidate(texts, samples));
  }
  if (textShare < 0.8) candidates.push(...rawCandidates(samples), ...protobufCandidates(samples));

  if (candidates.length === 0) {
    const what = jsonCount >= n * 0.8
      ? "JSON without a string field that holds base64 or hex data"
      : textShare >= 0.8
      ? "text without a base64 or hex blob"
      : "no candidate field";
    return { kind: "none", confidence: 0.8, reason: `${what}: no audio`, messages: n, notes };
  }

  // 2. Score every candidate by how much decodes and how smooth the smoothest codec makes it.
  const scored = candidates.map((c) => score(c, n)).filter((s): s is Scored => s !== undefined)
    .sort((a, b) => b.score - a.score);
  let win = scored[0];
  if (win?.cand.envelope === "raw" && win.verdict.kind === "audio") {
    // A structured header at the start of every message is skipped when the audio after it decodes as well
    // (within 1 dB); any other skip must earn its place: the smallest skip that decodes as well wins.
    const top = win;
    const header = scored.find((s) =>
      s.cand.header && s.verdict.kind === "audio" && s.verdict.best.codec === top.verdict.best.codec &&
      s.verdict.best.gainDb >= top.verdict.best.gainDb - 1
    );
    const same = header
      ? [header]
      : scored.filter((s) =>
        s.cand.envelope === "raw" && s.cand.encoding === top.cand.encoding && s.cand.skip < top.cand.skip &&
        s.verdict.kind === "audio" && s.verdict.best.codec === top.verdict.best.codec &&
        s.decoded >= top.decoded &&
        s.verdict.best.gainDb >= top.verdict.best.gainDb - 1
      ).sort((a, b) => a.cand.skip - b.cand.skip);
    if (same[0]) win = same[0];
  }
  if (win?.cand.envelope === "raw" && win.verdict.kind === "audio") {
    // A Protocol Buffers field that decodes as well names the audio wherever the fields before it vary in length
    // (a raw skip fits only the messages whose header is that long).
    const top = win;
    const field = scored.find((s) =>
      s.cand.envelope === "protobuf" && s.verdict.kind === "audio" &&
      s.verdict.best.codec === top.verdict.best.codec && s.verdict.best.gainDb >= top.verdict.best.gainDb - 1
    );
    if (field) win = field;
  }
  if (!win || win.verdict.kind === "noise") {
    return {
      kind: "none",
      confidence: win ? round2(clamp01(1 - (win.verdict.best.gainDb || 0) / SMOOTH_DB)) : 0.8,
      reason: win
        ? `${win.cand.how}: ${win.verdict.reason}; no audio`
        : "no candidate field decodes with any encoding and codec: no audio",
      messages: n,
      notes,
    };
  }
  const { cand, verdict } = win;
  const codec = verdict.best.codec;

  // 3. Channels: two interleaved channels with different content are smoother every other sample.
  let channels: Guess<number> = {
    value: 1,
    confidence: 0.6,
    reason: "one channel assumed (interleaved channels are not evident)",
  };
  const b = verdict.best;
  if (
    verdict.kind === "audio" && b.r1Stereo === b.r1Stereo && b.r1Stereo > b.r1 + 0.25 && b.r1Stereo >= SMOOTH
  ) {
    const even = cand.bytes.every((x) => x === undefined || x.length % (2 * bytesPerSample(codec)) === 0);
    if (even) {
      channels = {
        value: 2,
        confidence: 0.6,
        reason: `every other sample is smoother (${b.r1Stereo.toFixed(2)}) than adjacent ones ` +
          `(${b.r1.toFixed(2)}): two interleaved channels`,
      };
    }
  }

  // 4. Ids (JSON only), and the stream key: of the fields that stay put within a stream, the one under which the
  // messages of each stream are most regularly spaced (interleaved calls make the spacing irregular).
  const ids = idLeaves(leaves.values(), samples, cand.envelope === "json" ? cand.path : "");
  ids.sort((x, y) => Number(y.uuid) - Number(x.uuid) || x.changes - y.changes);
  const bps = bytesPerSample(codec) * channels.value;
  const timingFor = (leaf: Leaf | undefined) => {
    const items = samples.flatMap((s, i) => {
      const audio = cand.bytes[i];
      if (!audio) return [];
      const sub = leaf?.values[i] ?? "";
      return [{
        stream: `${s.stream ?? ""}\u0000${sub}`,
        timeNs: s.timeNs,
        frames: Math.floor(audio.length / bps),
      }];
    });
    return { items, timing: estimateRate(items) };
  };
  const cost = (leaf: Leaf | undefined, t: Timing) =>
    (t.rate === undefined ? 10 : t.spread) + (leaf === undefined ? 0.1 : 0) +
    (leaf && !STREAMY_KEY.test(leaf.key) ? 0.05 : 0) + (leaf && /interval/i.test(leaf.key) ? 0.05 : 0);
  let keyed: {
    leaf: Leaf | undefined;
    id?: IdLeaf;
    items: ReturnType<typeof timingFor>["items"];
    timing: Timing;
  } = {
    leaf: undefined,
    ...timingFor(undefined),
  };
  for (const id of ids) {
    if (id.leaf.nested) continue;
    const t = timingFor(id.leaf);
    if (cost(id.leaf, t.timing) < cost(keyed.leaf, keyed.timing)) keyed = { leaf: id.leaf, id, ...t };
  }
  const keyLeaf = keyed.leaf;
  const streamKeyPaths: Guess<string[]> = keyLeaf && keyed.id
    ? {
      value: [`$.${keyLeaf.path}`],
      confidence: round2((keyed.id.distinct > 1 ? 0.8 : 0.5) * (STREAMY_KEY.test(keyLeaf.key) ? 1 : 0.8)),
      reason: `${keyLeaf.path} is constant within a stream and spaces its messages regularly ` +
        `(${keyed.id.distinct} value(s) in the sample)`,
    }
    : { value: [], confidence: 0.5, reason: "no JSON field names a stream; key by pod and connection" };

  // 5. Rate from the decoded samples per message over the spacing of messages within a stream.
  const { items, timing } = keyed;
  const rate = snapRate(timing, 8000);
  const framesPerMsg = items.length ? items.reduce((a, x) => a + x.frames, 0) / items.length : 0;

  // 6. Confidences and the summary.
  const decodedShare = win.decoded / n;
  const envelope: Guess<AudioFormat["envelope"]> = {
    value: cand.envelope,
    confidence: round2(decodedShare * (cand.envelope === "json" ? 0.98 : 0.9)),
    reason: cand.how,
  };
  let encConf = decodedShare;
  let encReason = `${pct(win.decoded, n)} of messages decode as ${cand.encoding}`;
  if (cand.encoding === "hex") encReason += " (hex digits only, so not base64)";
  const rival = scored.find((s) => s !== win && s.cand.path === cand.path && s.cand.skip === cand.skip);
  if (rival && rival.verdict.kind === "audio" && rival.score > win.score - 0.05) {
    encConf *= 0.6;
    encReason += `; ${rival.cand.encoding} decodes almost as well`;
  }
  if (cand.skip > 0) notes.push(`skip_bytes ${cand.skip}: ${cand.how}`);
  if (win.decoded < n) notes.push(`${n - win.decoded} of ${n} messages did not decode with this format`);
  if (rate.reason.includes("ambiguous")) notes.push(`sample rate: ${rate.reason}`);
  const codecGuess: Guess<Codec> = { value: codec, confidence: verdict.confidence, reason: verdict.reason };
  const encoding: Guess<Encoding> = { value: cand.encoding, confidence: round2(encConf), reason: encReason };
  const format: AudioFormat = {
    envelope: cand.envelope,
    path: cand.path,
    encoding: cand.encoding,
    codec,
    sample_rate: rate.value,
    channels: channels.value,
    channel: 0,
    skip_bytes: cand.skip,
  };
  const confidence = round2(
    Math.min(envelope.confidence, encoding.confidence, codecGuess.confidence, rate.confidence),
  );
  const messageMs = rate.value ? (framesPerMsg / rate.value) * 1000 : 0;
  const idGuesses: IdGuess[] = ids.slice(0, 4).map((x) => ({
    path: x.leaf.path,
    idType: idTypeOf(x.leaf.key),
    pattern: idPattern(x.leaf, x.uuid),
    distinct: x.distinct,
    reason: `${x.uuid ? "a UUID" : "an id"} at ${x.leaf.path.replace(/\.~\./g, " (in embedded JSON) ")}, ` +
      `${x.distinct} value(s), constant within a stream`,
  }));
  const where = cand.envelope === "json"
    ? `JSON ${cand.path}`
    : cand.envelope === "regex"
    ? `regex ${cand.path}`
    : cand.envelope === "protobuf"
    ? `protobuf field ${cand.path}`
    : `raw${cand.skip ? ` after ${cand.skip} bytes` : ""}`;
  return {
    kind: verdict.kind === "silence" ? "silence" : "audio",
    envelope,
    path: cand.path,
    skipBytes: cand.skip,
    encoding,
    codec: codecGuess,
    sampleRate: rate,
    channels,
    ids: idGuesses,
    streamKeyPaths,
    format,
    confidence,
    reason: `${where}, ${cand.encoding} ${codec} ${rate.value} Hz` +
      (channels.value > 1 ? ` ${channels.value} channels` : "") +
      `, ~${Math.round(messageMs)} ms per message` + (verdict.kind === "silence" ? " (silent)" : ""),
    messages: n,
    decoded: win.decoded,
    messageMs: Math.round(messageMs * 10) / 10,
    levelDbfs: Math.round(verdict.best.rmsDbfs * 10) / 10,
    notes,
  };
}
