/**
 * Sample codecs: bytes of one payload's audio to interleaved Float32 samples in [-1, 1), and back.
 *
 * G.711 follows the ITU-T reference algorithm (the Sun Microsystems `g711.c` public-domain implementation):
 * μ-law decodes to the 14-bit range ±32124, A-law to the 13-bit range ±32256, both scaled by 1/32768.
 * Decoding is a 256-entry table lookup; encoding is a 65536-entry table built once on first use.
 * @module
 */

import type { AudioFormat } from "../types.ts";

/** Any codec named in the `audio.codec` config key. */
export type AudioCodec = AudioFormat["codec"];

/** Codecs that carry decoder state from message to message (decoded by audio/decode/g722.ts and audio/decode/opus.ts). */
export type StatefulCodec = "g722" | "opus";

/** A sample codec: fixed bytes per sample, each message decodes on its own (what this module handles). */
export type Codec = Exclude<AudioCodec, StatefulCodec>;

/** True for the codecs this module decodes (no state across messages). */
export function isSampleCodec(codec: AudioCodec): codec is Codec {
  return codec !== "g722" && codec !== "opus";
}

/**
 * Why a payload's audio bytes could not become samples. `bad_packet`: a malformed Opus packet or one libopus
 * refused; `codec_unavailable`: the stream's decoder could not be instantiated.
 */
export type CodecErrorReason = "odd_byte_count" | "bad_packet" | "codec_unavailable";

/** Result of {@link decodeSamples}. */
export type DecodeSamplesResult =
  | { ok: true; samples: Float32Array }
  | { ok: false; reason: CodecErrorReason };

/** Bytes per sample of one channel for `codec`. */
export function bytesPerSample(codec: Codec): 1 | 2 | 4 {
  switch (codec) {
    case "mulaw":
    case "alaw":
      return 1;
    case "pcm16le":
    case "pcm16be":
      return 2;
    case "float32le":
      return 4;
  }
}

const SCALE = 1 / 32768;

/** μ-law byte → linear 16-bit value (ITU-T G.711), for all 256 codes. */
export const MULAW_TO_LINEAR: Int16Array = (() => {
  const t = new Int16Array(256);
  for (let i = 0; i < 256; i++) {
    const u = ~i & 0xff;
    let v = ((u & 0x0f) << 3) + 0x84;
    v <<= (u & 0x70) >> 4;
    t[i] = u & 0x80 ? 0x84 - v : v - 0x84;
  }
  return t;
})();

/** A-law byte → linear 16-bit value (ITU-T G.711), for all 256 codes. */
export const ALAW_TO_LINEAR: Int16Array = (() => {
  const t = new Int16Array(256);
  for (let i = 0; i < 256; i++) {
    const a = i ^ 0x55;
    let v = (a & 0x0f) << 4;
    const seg = (a & 0x70) >> 4;
    if (seg === 0) v += 8;
    else if (seg === 1) v += 0x108;
    else v = (v + 0x108) << (seg - 1);
    t[i] = a & 0x80 ? v : -v;
  }
  return t;
})();

const MULAW_FLOAT = Float32Array.from(MULAW_TO_LINEAR, (v) => v * SCALE);
const ALAW_FLOAT = Float32Array.from(ALAW_TO_LINEAR, (v) => v * SCALE);

/** Encodes one linear 16-bit value as μ-law (ITU-T G.711, 14-bit magnitude with clipping at 8159). */
export function linearToMulaw(pcm: number): number {
  let v = clampInt16(pcm) >> 2;
  let mask: number;
  if (v < 0) {
    v = -v;
    mask = 0x7f;
  } else {
    mask = 0xff;
  }
  if (v > 8159) v = 8159;
  v += 0x84 >> 2;
  let seg = 0;
  // Segment ends of the biased 14-bit magnitude: 0x3F, 0x7F, ..., 0x1FFF.
  while (seg < 8 && v > (0x40 << seg) - 1) seg++;
  if (seg >= 8) return 0x7f ^ mask;
  const u = (seg << 4) | ((v >> (seg + 1)) & 0x0f);
  return (u ^ mask) & 0xff;
}

/** Encodes one linear 16-bit value as A-law (ITU-T G.711, 13-bit magnitude). */
export function linearToAlaw(pcm: number): number {
  let v = clampInt16(pcm) >> 3;
  let mask: number;
  if (v >= 0) {
    mask = 0xd5;
  } else {
    mask = 0x55;
    v = -v - 1;
  }
  let seg = 0;
  // Segment ends of the 13-bit magnitude: 0x1F, 0x3F, ..., 0xFFF.
  while (seg < 8 && v > (0x20 << seg) - 1) seg++;
  if (seg >= 8) return 0x7f ^ mask;
  let a = seg << 4;
  a |= seg < 2 ? (v >> 1) & 0x0f : (v >> seg) & 0x0f;
  return (a ^ mask) & 0xff;
}

function clampInt16(v: number): number {
  const r = Math.round(v);
  return r > 32767 ? 32767 : r < -32768 ? -32768 : r;
}

let mulawEncodeTable: Uint8Array | undefined;
let alawEncodeTable: Uint8Array | undefined;

function encodeTable(codec: "mulaw" | "alaw"): Uint8Array {
  if (codec === "mulaw") {
    if (!mulawEncodeTable) {
      mulawEncodeTable = new Uint8Array(65536);
      for (let i = 0; i < 65536; i++) mulawEncodeTable[i] = linearToMulaw(i - 32768);
    }
    return mulawEncodeTable;
  }
  if (!alawEncodeTable) {
    alawEncodeTable = new Uint8Array(65536);
    for (let i = 0; i < 65536; i++) alawEncodeTable[i] = linearToAlaw(i - 32768);
  }
  return alawEncodeTable;
}

/** Float sample in [-1, 1) → nearest 16-bit integer, saturating. */
export function floatToInt16(x: number): number {
  // NaN would poison the table index; it is silence.
  if (!(x === x)) return 0;
  return clampInt16(x * 32768);
}

/** Floats per slab of {@link allocSamples}. */
const SLAB = 32768;
let slab = new Float32Array(SLAB);
let slabUsed = 0;

/**
 * A zeroed Float32Array of `n` samples, carved from a shared 128 KiB slab. In Deno every typed-array
 * allocation costs ~0.2 µs, more than decoding a whole 20 ms packet, so per-message sample arrays are views of
 * slabs instead. A view keeps its slab alive; large requests get their own array.
 */
export function allocSamples(n: number): Float32Array {
  if (n > SLAB / 4) return new Float32Array(n);
  if (slabUsed + n > SLAB) {
    slab = new Float32Array(SLAB);
    slabUsed = 0;
  }
  const view = slab.subarray(slabUsed, slabUsed + n);
  slabUsed += n;
  return view;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Decodes `bytes` of `codec` audio to interleaved Float32 samples in [-1, 1). The byte count must be a whole
 * number of frames (`bytesPerSample(codec) * channels`), else the result is `odd_byte_count`. Non-finite
 * float32 samples become 0 and finite ones are clipped to ±{@link FLOAT_LIMIT}, so they cannot poison the
 * filters downstream. The samples are written to the start of `into` when it is long enough (the result is then
 * a view of it), else to a new array from {@link allocSamples}.
 */
export function decodeSamples(
  codec: Codec,
  bytes: Uint8Array,
  channels = 1,
  into?: Float32Array,
): DecodeSamplesResult {
  const bps = bytesPerSample(codec);
  if (bytes.length % (bps * channels) !== 0) return { ok: false, reason: "odd_byte_count" };
  const n = bytes.length / bps;
  const out = into && into.length >= n ? (into.length === n ? into : into.subarray(0, n)) : allocSamples(n);
  switch (codec) {
    case "mulaw":
      for (let i = 0; i < n; i++) out[i] = MULAW_FLOAT[bytes[i]!]!;
      break;
    case "alaw":
      for (let i = 0; i < n; i++) out[i] = ALAW_FLOAT[bytes[i]!]!;
      break;
    case "pcm16le":
      if (LITTLE_ENDIAN_HOST && bytes.byteOffset % 2 === 0) {
        // An aligned view reads each sample in one load instead of two bytes and shifts.
        const v = new Int16Array(bytes.buffer, bytes.byteOffset, n);
        for (let i = 0; i < n; i++) out[i] = v[i]! * SCALE;
      } else {
        for (let i = 0, j = 0; i < n; i++, j += 2) {
          out[i] = (((bytes[j]! | (bytes[j + 1]! << 8)) << 16) >> 16) * SCALE;
        }
      }
      break;
    case "pcm16be":
      for (let i = 0, j = 0; i < n; i++, j += 2) {
        out[i] = ((((bytes[j]! << 8) | bytes[j + 1]!) << 16) >> 16) * SCALE;
      }
      break;
    case "float32le":
      decodeFloat32le(bytes, out);
      break;
  }
  return { ok: true, samples: out };
}

function decodeFloat32le(bytes: Uint8Array, out: Float32Array): void {
  const n = out.length;
  if (LITTLE_ENDIAN_HOST) {
    // Reinterpreting needs 4-byte alignment; a payload slice rarely has it, so copy the bytes once.
    new Uint8Array(out.buffer, out.byteOffset, n * 4).set(bytes);
  } else {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
  }
  for (let i = 0; i < n; i++) {
    const v = out[i]!;
    if (!(v >= -FLOAT_LIMIT && v <= FLOAT_LIMIT)) {
      out[i] = v - v !== 0 ? 0 : v > 0 ? FLOAT_LIMIT : -FLOAT_LIMIT;
    }
  }
}

/**
 * Largest float32 sample magnitude kept (+96 dB over full scale, far above any real stream: the ring clips at
 * +12 dB). Finite samples near float32's limit (~3.4e38, garbage or a broken sender) summed by the resampler's
 * filter overflowed to ±Infinity and then NaN in levels; clipped here, every sum downstream stays finite.
 */
export const FLOAT_LIMIT = 65536;

/**
 * Encodes interleaved Float32 samples (nominally [-1, 1)) as `codec` bytes. Integer codecs round to the nearest
 * 16-bit value and saturate. Used by fixture generators and benches to make payloads.
 */
export function encodeSamples(codec: Codec, samples: Float32Array): Uint8Array {
  const n = samples.length;
  const out = new Uint8Array(n * bytesPerSample(codec));
  switch (codec) {
    case "mulaw":
    case "alaw": {
      const t = encodeTable(codec);
      for (let i = 0; i < n; i++) out[i] = t[floatToInt16(samples[i]!) + 32768]!;
      break;
    }
    case "pcm16le":
      for (let i = 0, j = 0; i < n; i++, j += 2) {
        const v = floatToInt16(samples[i]!);
        out[j] = v & 0xff;
        out[j + 1] = (v >> 8) & 0xff;
      }
      break;
    case "pcm16be":
      for (let i = 0, j = 0; i < n; i++, j += 2) {
        const v = floatToInt16(samples[i]!);
        out[j] = (v >> 8) & 0xff;
        out[j + 1] = v & 0xff;
      }
      break;
    case "float32le": {
      const dv = new DataView(out.buffer);
      for (let i = 0; i < n; i++) dv.setFloat32(i * 4, samples[i]!, true);
      break;
    }
  }
  return out;
}
