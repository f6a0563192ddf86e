/**
 * Opus packets (RFC 6716) to samples, through libopus compiled to WebAssembly by the `opus-decoder` npm package
 * (its WASM is inlined in the package: loading it needs no network or file access).
 *
 * Packets are checked here first (TOC, frame counts and lengths, padding: RFC 6716 §3.2) so libopus only sees
 * well-formed ones: it logs its own errors to the console, and malformed input must only be counted. The check
 * also gives a packet's duration without decoding it, which places it on the stream's timeline even while its
 * decoder is still being instantiated (WebAssembly instantiation is asynchronous; {@link initOpus} pre-warms
 * decoders so a new stream usually gets one that is ready at once).
 *
 * Packet loss concealment: libopus conceals when handed an empty packet, producing 120 ms of extrapolated audio
 * per call (the package asks for the largest frame); {@link OpusStreamDecoder.conceal} keeps the part a gap
 * needs. See tests/audio_opus_test.ts for the measurement that chose concealment over silence.
 * @module
 */

import { OpusDecoder } from "opus-decoder";

/** The package's decoder at any of the rates it decodes to, and what one decode returns. */
type Decoder = OpusDecoder<8000 | 12000 | 16000 | 24000 | 48000>;
type Decoded = ReturnType<Decoder["decodeFrame"]>;

/** Output rates libopus decodes to, Hz. */
export const OPUS_RATES: readonly number[] = [8000, 12000, 16000, 24000, 48000];
/** Longest audio one packet may carry, ms (RFC 6716 §3.2.5). */
const MAX_PACKET_MS = 120;
/** Longest coded frame, bytes (RFC 6716 §3.2.1). */
const MAX_FRAME_BYTES = 1275;
/** Concealment per libopus call (what the package's empty-packet decode yields), ms. */
export const OPUS_PLC_MS = 120;

/** Frame duration of a TOC byte's configuration, in units of 2.5 ms. */
function frameUnits(toc: number): number {
  const config = toc >> 3;
  if (config < 12) return [4, 8, 16, 24][config & 3]!; // SILK: 10, 20, 40, 60 ms
  if (config < 16) return (config & 1) ? 8 : 4; // hybrid: 10, 20 ms
  return [1, 2, 4, 8][config & 3]!; // CELT: 2.5, 5, 10, 20 ms
}

/** Reads a frame length (1 or 2 bytes, RFC 6716 §3.2.1) at `at`: [length, bytes used], or undefined. */
function frameLength(p: Uint8Array, at: number): [number, number] | undefined {
  if (at >= p.length) return undefined;
  const b = p[at]!;
  if (b < 252) return [b, 1];
  if (at + 1 >= p.length) return undefined;
  return [b + 4 * p[at + 1]!, 2];
}

/**
 * The share of `payloads` that are valid Opus framing ({@link opusPacketFrames}): 1 for an Opus stream, about half
 * for encrypted bytes (SRTP) or another codec's.
 */
export function opusFramingShare(payloads: readonly Uint8Array[]): number {
  if (payloads.length === 0) return 0;
  let ok = 0;
  for (const p of payloads) if (opusPacketFrames(p, 48000) !== undefined) ok++;
  return ok / payloads.length;
}

/**
 * Samples per channel that an Opus packet carries when decoded at `rate`, after checking its framing as libopus
 * does (RFC 6716 §3.2: codes 0–3, frame lengths, padding, at most 120 ms). Undefined for a malformed packet,
 * including an empty one (libopus would take that as a request for concealment).
 */
export function opusPacketFrames(p: Uint8Array, rate: number): number | undefined {
  if (p.length < 1) return undefined;
  const toc = p[0]!;
  const units = frameUnits(toc);
  let count: number;
  switch (toc & 3) {
    case 0:
      if (p.length - 1 > MAX_FRAME_BYTES) return undefined;
      count = 1;
      break;
    case 1:
      if ((p.length - 1) % 2 !== 0 || (p.length - 1) / 2 > MAX_FRAME_BYTES) return undefined;
      count = 2;
      break;
    case 2: {
      const l = frameLength(p, 1);
      if (!l) return undefined;
      const rest = p.length - 1 - l[1];
      if (l[0] > rest || rest - l[0] > MAX_FRAME_BYTES) return undefined;
      count = 2;
      break;
    }
    default: {
      if (p.length < 2) return undefined;
      const b = p[1]!;
      count = b & 0x3f;
      if (count < 1 || count * units * 2.5 > MAX_PACKET_MS) return undefined;
      let at = 2;
      let padding = 0;
      if (b & 0x40) {
        // Padding length: bytes of 255 add 254 and continue; the last one adds its value.
        for (;;) {
          if (at >= p.length) return undefined;
          const v = p[at++]!;
          padding += v === 255 ? 254 : v;
          if (v !== 255) break;
        }
      }
      let rest = p.length - at - padding;
      if (rest < 0) return undefined;
      if (b & 0x80) {
        // VBR: the lengths of all frames but the last.
        for (let i = 0; i < count - 1; i++) {
          const l = frameLength(p, at);
          if (!l) return undefined;
          at += l[1];
          rest -= l[1] + l[0];
          if (l[0] > MAX_FRAME_BYTES || rest < 0) return undefined;
        }
        if (rest > MAX_FRAME_BYTES) return undefined;
      } else if (rest % count !== 0 || rest / count > MAX_FRAME_BYTES) return undefined;
    }
  }
  if (count * units * 2.5 > MAX_PACKET_MS) return undefined;
  return (count * units * rate) / 400;
}

/**
 * Frees a decoder's instance. Garbage packets can corrupt libopus's heap without a trap at the time (a stereo
 * stream's decoder later trapped in `free`, from the stream's end): that must not end the stream's owner.
 */
function freeQuietly(d: Decoder): void {
  try {
    d.free();
  } catch {
    // The instance is dropped either way.
  }
}

/**
 * Bytes of a packet the package's decoder takes, per channel it decodes to: its input buffer (`_inputSize`,
 * 32000 · 0.12 a channel, OpusDecoder.js), which it fills with a TypedArray `set` that throws on a longer
 * packet. RFC 6716 allows more (a 120 ms packet above ~256 kbit/s): such a packet is refused, as malformed ones
 * are.
 */
const INPUT_BYTES_PER_CHANNEL = 3840;

/** Ready decoders kept per (rate, channels), so a new stream rarely waits for WebAssembly instantiation. */
const POOL_SIZE = 4;
const pool = new Map<string, Decoder[]>();

function newDecoder(rate: number, channels: number): Decoder {
  return new OpusDecoder({ sampleRate: rate as 48000, channels });
}

function refill(rate: number, channels: number): void {
  const key = `${rate}/${channels}`;
  let ready = pool.get(key);
  if (!ready) pool.set(key, ready = []);
  const want = POOL_SIZE - ready.length;
  for (let i = 0; i < want; i++) {
    const d = newDecoder(rate, channels);
    const list = ready;
    d.ready.then(() => {
      if (list.length < POOL_SIZE) list.push(d);
      else d.free();
    }, () => {});
  }
}

/**
 * Compiles the Opus WebAssembly module and pre-warms decoders for `rate` and `channels` (default 48 kHz mono).
 * Optional: without it the first packets of a stream wait (in order, on the timeline) for their decoder.
 */
export async function initOpus(rate = 48000, channels = 1): Promise<void> {
  const d = newDecoder(rate, channels);
  await d.ready;
  const key = `${rate}/${channels}`;
  const list = pool.get(key) ?? [];
  pool.set(key, list);
  list.push(d);
  refill(rate, channels);
  // Let the refills instantiate (the module is compiled now, so this is quick).
  await Promise.all(Array.from({ length: POOL_SIZE }, () => new Promise((r) => setTimeout(r, 0))));
}

/**
 * One stream's Opus decoder. Decodes packets in order at `rate` into `channels` interleaved channels (libopus
 * mixes a stereo packet down to mono and the other way round), conceals lost audio, and reports whether its
 * WebAssembly instance is ready yet.
 */
export class OpusStreamDecoder {
  readonly rate: number;
  readonly channels: number;
  #dec: Decoder | undefined;
  #ready = false;
  #failed = false;
  #freed = false;
  /** Longest packet the package's decoder takes (see {@link INPUT_BYTES_PER_CHANNEL}). */
  readonly #maxPacket: number;

  /** Throws RangeError on a rate libopus does not decode to, or channels other than 1 or 2. */
  constructor(rate: number, channels: number) {
    if (!OPUS_RATES.includes(rate)) {
      throw new RangeError(`Opus decodes at ${OPUS_RATES.join(", ")} Hz, not ${rate}`);
    }
    if (channels !== 1 && channels !== 2) throw new RangeError("Opus streams decode to 1 or 2 channels");
    this.rate = rate;
    this.channels = channels;
    this.#maxPacket = INPUT_BYTES_PER_CHANNEL * channels;
    this.#take();
  }

  /** Takes a decoder: a ready one from the pool, else a new one (ready later). */
  #take(): void {
    const rate = this.rate, channels = this.channels;
    const warm = pool.get(`${rate}/${channels}`)?.pop();
    if (warm) {
      this.#dec = warm;
      this.#ready = true;
    } else {
      const d = newDecoder(rate, channels);
      this.#dec = d;
      this.#ready = false;
      d.ready.then(() => {
        // Freed, or replaced (see #replace) before it was ready.
        if (this.#dec !== d) freeQuietly(d);
        else this.#ready = true;
      }, () => {
        if (this.#dec === d) this.#failed = true;
      });
    }
    refill(rate, channels);
  }

  /**
   * Drops a decoder whose libopus trapped (its memory may be anything now: it is not called again, not even to
   * free it) for a fresh one, as at a stream's start: the packets after it decode from a reset state.
   */
  #replace(): void {
    this.#dec = undefined;
    this.#ready = false;
    this.#take();
  }

  /** True once packets can be decoded. */
  get ready(): boolean {
    return this.#ready && !this.#freed;
  }

  /** True if the WebAssembly instance could not be created (packets then stay undecodable). */
  get failed(): boolean {
    return this.#failed;
  }

  /** Samples per channel `packet` carries at this decoder's rate, or undefined when malformed. */
  frames(packet: Uint8Array): number | undefined {
    return opusPacketFrames(packet, this.rate);
  }

  /**
   * Decodes one packet (check it with {@link frames} first) into interleaved samples, or undefined if the
   * decoder is not ready or libopus refused the packet. The result is a view of `out` when it is long enough.
   */
  decode(packet: Uint8Array, out?: Float32Array): Float32Array | undefined {
    if (!this.ready || packet.length === 0 || packet.length > this.#maxPacket) return undefined;
    let r: Decoded;
    try {
      r = this.#dec!.decodeFrame(packet);
    } catch {
      // libopus trapped (out-of-bounds access, divide by zero: garbage packets of valid framing in a stereo stream):
      // the packet is refused, and the decoder replaced, since the trap left its memory in an unknown state.
      this.#replace();
      return undefined;
    }
    if (r.errors.length > 0 || r.samplesDecoded === 0) return undefined;
    return this.#interleave(r.channelData, r.samplesDecoded, out);
  }

  /**
   * Concealment for `frames` lost samples per channel: libopus's extrapolation for the first
   * {@link OPUS_PLC_MS} ms (it fades out by then), silence after. Undefined when the decoder is not ready.
   */
  conceal(frames: number, out?: Float32Array): Float32Array | undefined {
    if (!this.ready) return undefined;
    const n = Math.max(0, Math.floor(frames));
    const buf = out && out.length >= n * this.channels
      ? out.subarray(0, n * this.channels)
      : new Float32Array(n * this.channels);
    buf.fill(0);
    if (n === 0) return buf;
    let r: Decoded;
    try {
      r = this.#dec!.decodeFrame(new Uint8Array(0));
    } catch {
      this.#replace();
      return buf;
    }
    if (r.errors.length > 0) return buf;
    const take = Math.min(n, r.samplesDecoded);
    this.#interleave(r.channelData, take, buf);
    return buf;
  }

  /** Releases the WebAssembly instance. */
  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    if (this.#ready) freeQuietly(this.#dec!);
    this.#dec = undefined;
  }

  #interleave(ch: Float32Array[], n: number, out?: Float32Array): Float32Array {
    const c = this.channels;
    const buf = out && out.length >= n * c ? out.subarray(0, n * c) : new Float32Array(n * c);
    if (c === 1) buf.set(ch[0]!.subarray(0, n));
    else {
      const l = ch[0]!, r = ch[1] ?? ch[0]!;
      for (let i = 0; i < n; i++) {
        buf[2 * i] = l[i]!;
        buf[2 * i + 1] = r[i]!;
      }
    }
    return buf;
  }
}
