/**
 * Signatures: building one from an anchor's block of sub-fingerprints (64-bit id by xxhash64), and the binary
 * wire format, always under 1 KB.
 *
 * Wire format v1 (big-endian):
 * ```
 * "FP" u8 version=1 u8 flags(bit0: mask present, bit1: envelope present, bit2: waveform signs present)
 * id u64 | time_ns i64 | offset_ms f64 | frames u16 (1..128)
 * fingerprint frames × u32 | [mask ceil(frames/8) bytes] | [envelope 96 bytes: 256 × 3 bits]
 * [waveform signs: offset i16 (samples from the instant), 64 bytes: 512 × 1 bit]
 * measurement, node, pod, stream: u8 length + UTF-8 each
 * ids: u8 count, then per pair u8 length + key, u8 length + value
 * ```
 * Worst case: 30 + 512 + 16 + 96 + 4 + 232 (names at their caps) + 1 + 132 (ids budget) = 1023 bytes, so the
 * first two ids always fit when they are UUIDs with keys of up to 28 characters. Names longer
 * than their cap keep a prefix and a `~` plus 8 hex digits of the full name's hash, so distinct long names stay
 * distinct; id pairs that do not fit the budget are dropped whole (a cut id would be a wrong id).
 *
 * The waveform signs (bit2, added for issue 14's sample-exact alignment through codecs) are optional and come
 * last among the blocks: a signature carries them only when they fit under 1023 bytes with everything else, so
 * the worst case above is unchanged (names at their caps and a full ids budget leave them out, and the match is
 * aligned by the envelope alone). Signatures without them decode as before; decoders before bit2 refuse it.
 * @module
 */

import { createXXHash64, type IHasher } from "hash-wasm";
import {
  ENV_LEVELS,
  ENV_PACKED_BYTES,
  ENV_VALUES,
  packEnvelope,
  unpackEnvelope,
} from "../align/level_envelope.ts";
import { WAVE_FROM, WAVE_SIGN_BYTES, WAVE_SIGN_SAMPLES, WAVE_TO } from "../align/wave_signs.ts";
import type { Signature } from "../types.ts";

/** Frames in a signature block (the wire format allows 1..this). */
export const SIGNATURE_MAX_FRAMES = 128;
/** Largest encoded signature, bytes. */
export const SIGNATURE_MAX_BYTES = 1023;
/** Caps on name fields, UTF-8 bytes. */
export const NAME_CAPS = { measurement: 40, node: 48, pod: 72, stream: 72 } as const;
/** Caps on one context id's key and value, UTF-8 bytes; longer pairs are dropped. */
export const ID_KEY_CAP = 32;
export const ID_VALUE_CAP = 64;

const MAGIC0 = 0x46;
const MAGIC1 = 0x50;
const VERSION = 1;
const HEADER = 30;
const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

let hasher: IHasher | undefined;

/** Prepares the xxhash64 hasher (hash-wasm); idempotent. */
export async function initSignatureHasher(): Promise<void> {
  hasher ??= await createXXHash64();
}

function needHasher(): IHasher {
  if (!hasher) throw new Error("signature: call initAudioEngine() (or initSignatureHasher()) first");
  return hasher;
}

/** xxhash64 of `parts` (each followed by a 0 byte), as 16 lowercase hex digits. Synchronous after init. */
export function hash64(...parts: Uint8Array[]): string {
  const h = needHasher();
  h.init();
  const zero = new Uint8Array(1);
  for (const p of parts) {
    h.update(p);
    h.update(zero);
  }
  return h.digest("hex");
}

/** Thrown by {@link decodeSignature} on bytes that are not a valid signature. */
export class SignatureDecodeError extends Error {
  /** @param detail what is wrong */
  constructor(detail: string) {
    super(`bad signature: ${detail}`);
    this.name = "SignatureDecodeError";
  }
}

/** The longest prefix of `bytes` (UTF-8) of at most `max` bytes that does not split a character. */
function utf8Prefix(bytes: Uint8Array, max: number): Uint8Array {
  if (bytes.length <= max) return bytes;
  let end = max;
  // Back off continuation bytes (10xxxxxx) so the cut lands on a character boundary.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

/**
 * `name` capped at `cap` UTF-8 bytes: unchanged if it fits, else a prefix + `~` + 8 hex digits of the full
 * name's xxhash64.
 */
export function capName(name: string, cap: number): string {
  const bytes = enc.encode(name);
  if (bytes.length <= cap) return name;
  const suffix = "~" + hash64(bytes).slice(0, 8);
  return dec.decode(utf8Prefix(bytes, cap - suffix.length)) + suffix;
}

/** Sets an own enumerable property, even for keys like `__proto__` that plain assignment would not store. */
function setOwn(o: Record<string, string>, key: string, value: string): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * Context ids as they fit the wire: in their given order (the config's `metadata_extraction` order, so the
 * first patterns win the budget), pairs over the caps or the budget dropped.
 */
export function capIds(ids: Record<string, string>, budget = idBudget()): Record<string, string> {
  const out: Record<string, string> = {};
  let used = 1;
  for (const key of Object.keys(ids)) {
    const value = ids[key];
    if (typeof value !== "string") continue;
    const k = enc.encode(key).length, v = enc.encode(value).length;
    if (k > ID_KEY_CAP || v > ID_VALUE_CAP || used + 2 + k + v > budget) continue;
    used += 2 + k + v;
    setOwn(out, key, value);
  }
  return out;
}

function idBudget(): number {
  const names = NAME_CAPS.measurement + NAME_CAPS.node + NAME_CAPS.pod + NAME_CAPS.stream + 4;
  return SIGNATURE_MAX_BYTES - HEADER - 4 * SIGNATURE_MAX_FRAMES - SIGNATURE_MAX_FRAMES / 8 -
    ENV_PACKED_BYTES - names;
}

/** What a source pipeline knows about an anchor when it builds a signature. */
export interface SignatureFields {
  measurement: string;
  node: string;
  pod: string;
  stream: string;
  timeNs: bigint;
  offsetMs: number;
  fingerprint: Uint32Array;
  mask?: Uint8Array;
  levelEnvelope?: Uint8Array;
  waveSigns?: { offset: number; bits: Uint8Array };
  ids: Record<string, string>;
}

function u64(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigInt64(0, v);
  return b;
}

function f64(v: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, v);
  return b;
}

function fpBytes(fp: Uint32Array): Uint8Array {
  const b = new Uint8Array(fp.length * 4);
  const dv = new DataView(b.buffer);
  for (let i = 0; i < fp.length; i++) dv.setUint32(i * 4, fp[i]!);
  return b;
}

/**
 * Builds a signature: names and ids capped for the wire, id = xxhash64 over measurement, node, stream, the
 * anchor's time_ and offset, and the block (so the same instant seen twice gets the same id).
 */
export function buildSignature(f: SignatureFields): Signature {
  if (f.fingerprint.length < 1 || f.fingerprint.length > SIGNATURE_MAX_FRAMES) {
    throw new RangeError(`signature: block of ${f.fingerprint.length} frames (1..${SIGNATURE_MAX_FRAMES})`);
  }
  const measurement = capName(f.measurement, NAME_CAPS.measurement);
  const node = capName(f.node, NAME_CAPS.node);
  const stream = capName(f.stream, NAME_CAPS.stream);
  const id = hash64(
    enc.encode(measurement),
    enc.encode(node),
    enc.encode(stream),
    u64(f.timeNs),
    f64(f.offsetMs),
    fpBytes(f.fingerprint),
  );
  return signatureOf({
    id,
    measurement,
    source: { node, pod: capName(f.pod, NAME_CAPS.pod), stream, timeNs: f.timeNs, offsetMs: f.offsetMs },
    fingerprint: f.fingerprint,
    // A mask with no frame masked says nothing: none, so such signatures encode and record as before masks.
    mask: f.mask && f.mask.some((b) => b !== 0) ? f.mask : undefined,
    levelEnvelope: f.levelEnvelope ? checkEnvelope(f.levelEnvelope) : undefined,
    waveSigns: f.waveSigns ? checkWaveSigns(f.waveSigns) : undefined,
    ids: capIds(f.ids),
  });
}

/** A signature's parts, the optional ones omitted when absent. */
export type SignatureParts =
  & Omit<Signature, "mask" | "levelEnvelope" | "waveSigns">
  & Partial<Pick<Signature, "mask" | "levelEnvelope" | "waveSigns">>;

/**
 * The signature of `p` as the one object literal that every signature is made by (build, decode, tests):
 * every field, in one order, absent ones as undefined. Signatures built with and without a mask, envelope or
 * waveform signs then share one hidden class, so the matcher's and aligner's loads from them stay
 * monomorphic instead of deoptimizing on a "wrong map" when a new combination first comes by. Fields are
 * taken as they are (no checks, no copies).
 */
export function signatureOf(p: SignatureParts): Signature {
  return {
    id: p.id,
    measurement: p.measurement,
    source: p.source,
    fingerprint: p.fingerprint,
    mask: p.mask,
    levelEnvelope: p.levelEnvelope,
    waveSigns: p.waveSigns,
    ids: p.ids,
  };
}

function checkEnvelope(env: Uint8Array): Uint8Array {
  if (env.length !== ENV_VALUES || env.some((v) => v >= ENV_LEVELS)) {
    throw new RangeError(`signature: envelope must be ${ENV_VALUES} levels 0..${ENV_LEVELS - 1}`);
  }
  return env;
}

/** Bytes of the waveform-signs block on the wire (offset and signs). */
const WAVE_BLOCK = 2 + WAVE_SIGN_BYTES;

function checkWaveSigns(w: { offset: number; bits: Uint8Array }): { offset: number; bits: Uint8Array } {
  if (
    w.bits.length !== WAVE_SIGN_BYTES || !Number.isInteger(w.offset) || w.offset < WAVE_FROM ||
    w.offset > WAVE_TO - WAVE_SIGN_SAMPLES
  ) {
    throw new RangeError(
      `signature: waveform signs must be ${WAVE_SIGN_BYTES} bytes at an offset in ` +
        `[${WAVE_FROM}, ${WAVE_TO - WAVE_SIGN_SAMPLES}]`,
    );
  }
  return w;
}

/** True if frame `j` of `sig` is masked (ignored). */
export function isMasked(mask: Uint8Array | undefined, j: number): boolean {
  return mask !== undefined && ((mask[j >> 3] ?? 0) >> (j & 7) & 1) === 1;
}

/** Encodes `sig` for the wire (names and ids capped as in {@link buildSignature}); at most 1023 bytes. */
export function encodeSignature(sig: Signature): Uint8Array {
  const n = sig.fingerprint.length;
  if (n < 1 || n > SIGNATURE_MAX_FRAMES) throw new RangeError(`signature: block of ${n} frames`);
  if (!/^[0-9a-f]{16}$/.test(sig.id)) throw new RangeError(`signature: id must be 16 lowercase hex digits`);
  const names = [
    capName(sig.measurement, NAME_CAPS.measurement),
    capName(sig.source.node, NAME_CAPS.node),
    capName(sig.source.pod, NAME_CAPS.pod),
    capName(sig.source.stream, NAME_CAPS.stream),
  ].map((s) => enc.encode(s));
  const ids = Object.entries(capIds(sig.ids)).map(([k, v]) => [enc.encode(k), enc.encode(v)] as const);
  const maskLen = sig.mask ? (n + 7) >> 3 : 0;
  const env = sig.levelEnvelope ? packEnvelope(checkEnvelope(sig.levelEnvelope)) : undefined;
  let size = HEADER + 4 * n + maskLen + (env ? env.length : 0) + 1;
  for (const s of names) size += 1 + s.length;
  for (const [k, v] of ids) size += 2 + k.length + v.length;
  // Only where they fit: the names and ids keep their budget, the worst case its 1023 bytes.
  const wave = sig.waveSigns && size + WAVE_BLOCK <= SIGNATURE_MAX_BYTES
    ? checkWaveSigns(sig.waveSigns)
    : undefined;
  if (wave) size += WAVE_BLOCK;
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  out[0] = MAGIC0;
  out[1] = MAGIC1;
  out[2] = VERSION;
  out[3] = (sig.mask ? 1 : 0) | (env ? 2 : 0) | (wave ? 4 : 0);
  dv.setBigUint64(4, BigInt("0x" + sig.id));
  dv.setBigInt64(12, sig.source.timeNs);
  dv.setFloat64(20, sig.source.offsetMs);
  dv.setUint16(28, n);
  let at = HEADER;
  for (let i = 0; i < n; i++, at += 4) dv.setUint32(at, sig.fingerprint[i]!);
  if (sig.mask) {
    for (let i = 0; i < maskLen; i++) out[at + i] = sig.mask[i] ?? 0;
    // Bits past the last frame carry nothing; keep them zero so equal signatures encode equally.
    if (n & 7) out[at + maskLen - 1] = out[at + maskLen - 1]! & ((1 << (n & 7)) - 1);
    at += maskLen;
  }
  if (env) {
    out.set(env, at);
    at += env.length;
  }
  if (wave) {
    dv.setInt16(at, wave.offset);
    out.set(wave.bits, at + 2);
    at += WAVE_BLOCK;
  }
  for (const s of names) {
    out[at++] = s.length;
    out.set(s, at);
    at += s.length;
  }
  out[at++] = ids.length;
  for (const [k, v] of ids) {
    out[at++] = k.length;
    out.set(k, at);
    at += k.length;
    out[at++] = v.length;
    out.set(v, at);
    at += v.length;
  }
  return out;
}

/** Decodes a signature; throws {@link SignatureDecodeError} saying what is wrong with bad input. */
export function decodeSignature(bytes: Uint8Array): Signature {
  if (!(bytes instanceof Uint8Array)) throw new SignatureDecodeError("not bytes");
  if (bytes.length > SIGNATURE_MAX_BYTES) throw new SignatureDecodeError(`${bytes.length} bytes (max 1023)`);
  if (bytes.length < HEADER + 4 + 5) throw new SignatureDecodeError(`${bytes.length} bytes is too short`);
  if (bytes[0] !== MAGIC0 || bytes[1] !== MAGIC1) throw new SignatureDecodeError("no FP magic");
  if (bytes[2] !== VERSION) throw new SignatureDecodeError(`unknown version ${bytes[2]}`);
  const flags = bytes[3]!;
  if (flags & ~7) throw new SignatureDecodeError(`unknown flags ${flags}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const id = dv.getBigUint64(4).toString(16).padStart(16, "0");
  const timeNs = dv.getBigInt64(12);
  const offsetMs = dv.getFloat64(20);
  if (!Number.isFinite(offsetMs) || offsetMs < 0) throw new SignatureDecodeError(`offset_ms ${offsetMs}`);
  const n = dv.getUint16(28);
  if (n < 1 || n > SIGNATURE_MAX_FRAMES) throw new SignatureDecodeError(`${n} frames (1..128)`);
  let at = HEADER;
  const need = (k: number, what: string) => {
    if (at + k > bytes.length) throw new SignatureDecodeError(`truncated in ${what}`);
  };
  need(4 * n, "fingerprint");
  const fingerprint = new Uint32Array(n);
  for (let i = 0; i < n; i++, at += 4) fingerprint[i] = dv.getUint32(at);
  let mask: Uint8Array | undefined;
  if (flags & 1) {
    const len = (n + 7) >> 3;
    need(len, "mask");
    mask = bytes.slice(at, at + len);
    at += len;
  }
  let envelope: Uint8Array | undefined;
  if (flags & 2) {
    need(ENV_PACKED_BYTES, "envelope");
    envelope = unpackEnvelope(bytes.subarray(at, at + ENV_PACKED_BYTES));
    at += ENV_PACKED_BYTES;
  }
  let waveSigns: { offset: number; bits: Uint8Array } | undefined;
  if (flags & 4) {
    need(WAVE_BLOCK, "waveform signs");
    const offset = dv.getInt16(at);
    if (offset < WAVE_FROM || offset > WAVE_TO - WAVE_SIGN_SAMPLES) {
      throw new SignatureDecodeError(`waveform signs offset ${offset}`);
    }
    waveSigns = { offset, bits: bytes.slice(at + 2, at + WAVE_BLOCK) };
    at += WAVE_BLOCK;
  }
  const str = (what: string, cap: number): string => {
    need(1, what);
    const len = bytes[at++]!;
    if (len > cap) throw new SignatureDecodeError(`${what} of ${len} bytes (max ${cap})`);
    need(len, what);
    let s: string;
    try {
      s = dec.decode(bytes.subarray(at, at + len));
    } catch {
      throw new SignatureDecodeError(`${what} is not UTF-8`);
    }
    at += len;
    return s;
  };
  const measurement = str("measurement", NAME_CAPS.measurement);
  const node = str("node", NAME_CAPS.node);
  const pod = str("pod", NAME_CAPS.pod);
  const stream = str("stream", NAME_CAPS.stream);
  need(1, "ids");
  const count = bytes[at++]!;
  const ids: Record<string, string> = {};
  for (let i = 0; i < count; i++) {
    const k = str("id key", ID_KEY_CAP);
    setOwn(ids, k, str("id value", ID_VALUE_CAP));
  }
  if (at !== bytes.length) throw new SignatureDecodeError(`${bytes.length - at} trailing bytes`);
  return signatureOf({
    id,
    measurement,
    source: { node, pod, stream, timeNs, offsetMs },
    fingerprint,
    mask,
    levelEnvelope: envelope,
    waveSigns,
    ids,
  });
}
