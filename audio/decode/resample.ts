/**
 * Streaming resampler from any integer native rate (8000..48000 Hz) to the 8 kHz analysis rate.
 *
 * Rational polyphase FIR: the native rate r and 8000 reduce to `up`/`down` (16000 → 1/2, 44100 → 80/441), and
 * analysis sample k sits exactly at native position k·down/up, i.e. at stream time k/8000 s: the filter is
 * centred on that instant (its delay is compensated by waiting for lookahead input, not by shifting the output).
 * Each output is computed from the same native samples with the same coefficients in the same order whatever the
 * input chunking, so the output is bit-identical under re-chunking. 8000 → 8000 is a passthrough.
 *
 * Low-pass: Kaiser-windowed sinc, ≥ 40 dB from {@link STOPBAND_HZ} up, flat (< 0.1 dB) to ~3 kHz. The transition
 * is sized for speed: the fingerprint bands end at 3 kHz, and the matcher's budget leaves the resampler a few
 * nanoseconds per output sample. The dot products run in a tiny WebAssembly SIMD kernel built below (scalar JS is
 * about 5x slower); f32x4 multiply/add are exact IEEE operations, so results are deterministic on every CPU.
 * @module
 */

import {
  localGet as get,
  localSet as set,
  localTee as tee,
  name,
  section,
  simdOp as simd,
  sleb,
  uleb,
  WASM_HEADER,
} from "../../util/wasm_encode.ts";
import { allocSamples } from "./codecs.ts";

/** The analysis rate every stream is resampled to, Hz. */
export const ANALYSIS_RATE = 8000;
/** Lowest native rate accepted, Hz. */
export const MIN_NATIVE_RATE = 8000;
/** Highest native rate accepted, Hz. */
export const MAX_NATIVE_RATE = 48000;
/** Tones at or above this frequency are attenuated by at least {@link STOPBAND_DB}. */
export const STOPBAND_HZ = 3900;
/** Minimum stopband attenuation the design guarantees (checked by tests at several rates), dB. */
export const STOPBAND_DB = 40;
/** Width of the transition band below {@link STOPBAND_HZ}, Hz. */
const TRANSITION_HZ = 900;
/** Kaiser design attenuation; a few dB above {@link STOPBAND_DB} so every rate's realised filter clears it. */
const DESIGN_DB = 45;
/** Fewest taps: near 8 kHz the formula asks for so few that rounding leaves the stopband short. */
const MIN_TAPS = 32;

/** Greatest common divisor of two positive integers. */
export function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** The polyphase filter bank for one native rate. */
export interface ResamplerDesign {
  readonly inRate: number;
  /** Analysis sample k is at native position k·down/up. */
  readonly up: number;
  readonly down: number;
  /** Native samples on each side of an output instant that the filter reads (its lookahead). */
  readonly halfTaps: number;
  /** Coefficients per phase (2·halfTaps), a multiple of 8 for the SIMD kernel. */
  readonly taps: number;
  /** `up` rows of `taps` coefficients: row p is the filter for outputs at fractional native position p/up. */
  readonly bank: Float32Array;
}

function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 64; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

const designs = new Map<number, ResamplerDesign>();

/** Checks a native rate; returns an error message or undefined. */
export function checkNativeRate(rate: number): string | undefined {
  if (!Number.isInteger(rate) || rate < MIN_NATIVE_RATE || rate > MAX_NATIVE_RATE) {
    return `sample_rate must be an integer in ${MIN_NATIVE_RATE}..${MAX_NATIVE_RATE}, got ${rate}`;
  }
  return undefined;
}

/**
 * The filter bank for native rate `inRate` (cached: every stream of that rate shares it). Throws RangeError on a
 * rate outside 8000..48000.
 */
export function designResampler(inRate: number): ResamplerDesign {
  const cached = designs.get(inRate);
  if (cached) return cached;
  const err = checkNativeRate(inRate);
  if (err) throw new RangeError(err);
  const g = gcd(inRate, ANALYSIS_RATE);
  const up = ANALYSIS_RATE / g;
  const down = inRate / g;
  let design: ResamplerDesign;
  if (up === down) {
    design = { inRate, up, down, halfTaps: 0, taps: 0, bank: new Float32Array(0) };
  } else {
    // Kaiser's formulas, in native-sample units. The length is rounded up to whole SIMD turns, and the cutoff
    // is then placed so the transition the longer filter achieves ends exactly at STOPBAND_HZ.
    const width = (2 * Math.PI * TRANSITION_HZ) / inRate;
    const needed = Math.ceil((DESIGN_DB - 7.95) / (2.285 * width)) + 1;
    const taps = Math.max(MIN_TAPS, Math.ceil(needed / 8) * 8);
    const achieved = (DESIGN_DB - 7.95) / (2.285 * (taps - 1)) / (2 * Math.PI);
    const cutoff = STOPBAND_HZ / inRate - achieved / 2;
    const beta = 0.5842 * Math.pow(DESIGN_DB - 21, 0.4) + 0.07886 * (DESIGN_DB - 21);
    const halfTaps = taps / 2;
    const bank = new Float32Array(up * taps);
    const i0b = besselI0(beta);
    const row = new Float64Array(taps);
    for (let p = 0; p < up; p++) {
      let sum = 0;
      for (let i = 0; i < taps; i++) {
        // Distance, in native samples, from the output instant to tap i's sample.
        const tau = p / up + halfTaps - 1 - i;
        const x = tau / halfTaps;
        const w = Math.abs(x) >= 1 ? 0 : besselI0(beta * Math.sqrt(1 - x * x)) / i0b;
        const a = 2 * cutoff * tau;
        const sinc = a === 0 ? 1 : Math.sin(Math.PI * a) / (Math.PI * a);
        row[i] = 2 * cutoff * sinc * w;
        sum += row[i]!;
      }
      // Unit DC gain in every phase, so a constant input stays constant whatever the output's phase.
      for (let i = 0; i < taps; i++) bank[p * taps + i] = row[i]! / sum;
    }
    design = { inRate, up, down, halfTaps, taps, bank };
  }
  designs.set(inRate, design);
  return design;
}

// ---------------------------------------------------------------------------------------------------------------
// The SIMD kernel. Equivalent WAT (params are byte addresses/counts in the shared memory):
//
// (func (export "run") (param $x i32) (param $h i32) (param $tb i32) (param $n i32) (param $out i32)
//                      (param $frac i32) (param $up i32) (param $stepb i32) (param $stepr i32)
//   (local $i i32) (local $xp i32) (local $hp i32) (local $a v128) (local $b v128) (local $s v128)
//   block  (br_if 0 (i32.eqz $n))
//   loop $outer
//     $hp = $h + $frac * $tb ; $xp = $x ; $a = $b = 0 ; $i = 0
//     loop $inner                                   ;; 8 taps per turn, two accumulators
//       $a += load($xp+$i) * load($hp+$i) ; $b += load($xp+$i+16) * load($hp+$i+16)
//       br_if $inner ((i32.lt_u ($i += 32) $tb))
//     $s = $a + $b ; f32.store $out ((s0 + s1) + (s2 + s3)) ; $out += 4
//     $x += $stepb ; $frac += $stepr ; if ($frac >= $up) { $frac -= $up ; $x += 4 }
//     br_if $outer (($n -= 1) != 0)
//   end end)
// ---------------------------------------------------------------------------------------------------------------

function kernelBytes(): Uint8Array<ArrayBuffer> {
  const I32 = 0x7f;
  const V128 = 0x7b;
  const [X, H, TB, N, OUT, FRAC, UP, STEPB, STEPR, I, XP, HP, A, B, S] = [
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
    12,
    13,
    14,
  ] as const;
  const i32c = (v: number) => [0x41, ...uleb(v)]; // small non-negative constants only
  const v128load = (offset: number) => simd(0x00, 0, ...uleb(offset));
  const f32x4mul = simd(0xe6);
  const f32x4add = simd(0xe4);
  const lane = (l: number) => simd(0x1f, l);
  const zero = simd(0x0c, ...new Array(16).fill(0));
  const [ADD, SUB, MUL, EQZ, LTU, GEU] = [0x6a, 0x6b, 0x6c, 0x45, 0x49, 0x4f];
  const [BLOCK, LOOP, IF, END, BRIF, VOID, F32ADD, F32STORE] = [
    0x02,
    0x03,
    0x04,
    0x0b,
    0x0d,
    0x40,
    0x92,
    0x38,
  ];
  const mac = (acc: number, off: number) => [
    ...get(acc),
    ...get(XP),
    ...get(I),
    ADD,
    ...v128load(off),
    ...get(HP),
    ...get(I),
    ADD,
    ...v128load(off),
    ...f32x4mul,
    ...f32x4add,
    ...set(acc),
  ];
  const code = [
    BLOCK,
    VOID,
    ...get(N),
    EQZ,
    BRIF,
    0,
    LOOP,
    VOID,
    ...get(H),
    ...get(FRAC),
    ...get(TB),
    MUL,
    ADD,
    ...set(HP),
    ...get(X),
    ...set(XP),
    ...zero,
    ...set(A),
    ...zero,
    ...set(B),
    ...i32c(0),
    ...set(I),
    LOOP,
    VOID,
    ...mac(A, 0),
    ...mac(B, 16),
    ...get(I),
    ...i32c(32),
    ADD,
    ...tee(I),
    ...get(TB),
    LTU,
    BRIF,
    0,
    END,
    ...get(A),
    ...get(B),
    ...f32x4add,
    ...set(S),
    ...get(OUT),
    ...get(S),
    ...lane(0),
    ...get(S),
    ...lane(1),
    F32ADD,
    ...get(S),
    ...lane(2),
    ...get(S),
    ...lane(3),
    F32ADD,
    F32ADD,
    F32STORE,
    2,
    0,
    ...get(OUT),
    ...i32c(4),
    ADD,
    ...set(OUT),
    ...get(X),
    ...get(STEPB),
    ADD,
    ...set(X),
    ...get(FRAC),
    ...get(STEPR),
    ADD,
    ...tee(FRAC),
    ...get(UP),
    GEU,
    IF,
    VOID,
    ...get(FRAC),
    ...get(UP),
    SUB,
    ...set(FRAC),
    ...get(X),
    ...i32c(4),
    ADD,
    ...set(X),
    END,
    ...get(N),
    ...i32c(1),
    SUB,
    ...tee(N),
    BRIF,
    0,
    END,
    END,
    END,
  ];
  const body = [2, 3, I32, 3, V128, ...code];
  const bodies = [body, pcm16Body(), ringBody()];
  return new Uint8Array([
    ...WASM_HEADER,
    ...section(1, [2, 0x60, 9, ...new Array(9).fill(I32), 0, 0x60, 3, I32, I32, I32, 0]),
    ...section(2, [1, ...name("m"), ...name("mem"), 0x02, 0x00, 1]),
    ...section(3, [3, 0, 1, 1]),
    ...section(7, [3, ...name("run"), 0x00, 0, ...name("pcm16"), 0x00, 1, ...name("ring"), 0x00, 2]),
    ...section(10, [3, ...bodies.flatMap((b) => [...uleb(b.length), ...b])]),
  ]);
}

// Instructions of the two small kernels below (their loops run while the count stays above zero).
const [LOCAL_GET, LOCAL_SET, LOCAL_TEE, I32_CONST, F64_CONST] = [0x20, 0x21, 0x22, 0x41, 0x44];
const [BLOCK_VOID, LOOP_VOID, BR_IF, END] = [[0x02, 0x40], [0x03, 0x40], 0x0d, 0x0b];
const [I32_ADD, I32_SUB, I32_LE_S, I32_GT_S, SELECT] = [0x6a, 0x6b, 0x4c, 0x4a, 0x1b];
const [F32_LOAD, I32_STORE16, F64_PROMOTE, F64_ADD, F64_MUL, F64_MIN, F64_MAX, F64_EQ] = [
  0x2a,
  0x3b,
  0xbb,
  0xa0,
  0xa2,
  0xa4,
  0xa5,
  0x61,
];
const I32_TRUNC_SAT_F64_S = [0xfc, 0x02];
const [V128_LOAD, V128_CONST, V128_STORE, I32X4_EXTEND_LOW_S, I32X4_EXTEND_HIGH_S] = [
  0x00,
  0x0c,
  0x0b,
  0xa7,
  0xa8,
];
const [F32X4_MUL, F32X4_CONVERT_S] = [0xe6, 0xfa];
const op = (code: number, ...imm: number[]) => [code, ...imm];
const simdOp = (code: number, ...imm: number[]) => [0xfd, ...uleb(code), ...imm];
const f64Const = (x: number) => [F64_CONST, ...new Uint8Array(new Float64Array([x]).buffer)];
/** `local += step`. */
const advance = (local: number, step: number) => [
  ...op(LOCAL_GET, local),
  ...op(I32_CONST, ...sleb(step)),
  I32_ADD,
  ...op(LOCAL_SET, local),
];

// (func (export "pcm16") (param $src i32) (param $n i32) (param $dst i32)): the little-endian Int16 samples at
// $src to floats at $dst, eight a turn: widened, converted (exact) and scaled by 2^-15 (exact), as codecs.ts
// decodes them. Whole turns: up to seven floats past the last are written (the caller leaves room).
function pcm16Body(): number[] {
  const [SRC, N, DST, V] = [0, 1, 2, 3];
  const scale = simdOp(V128_CONST, ...Array.from({ length: 16 }, (_, i) => (i & 3) === 3 ? 0x38 : 0)); // 2^-15
  const half = (extend: number, offset: number) => [
    ...[...op(LOCAL_GET, DST), ...op(LOCAL_GET, V), ...simdOp(extend), ...simdOp(F32X4_CONVERT_S)],
    ...[...scale, ...simdOp(F32X4_MUL), ...simdOp(V128_STORE, 2, offset)],
  ];
  return [
    ...[1, 1, 0x7b], // one v128 local
    ...[...BLOCK_VOID, ...op(LOCAL_GET, N), ...op(I32_CONST, 0), I32_LE_S, BR_IF, 0, ...LOOP_VOID],
    ...[...op(LOCAL_GET, SRC), ...simdOp(V128_LOAD, 0, 0), ...op(LOCAL_SET, V)],
    ...half(I32X4_EXTEND_LOW_S, 0),
    ...half(I32X4_EXTEND_HIGH_S, 16),
    ...advance(SRC, 16),
    ...advance(DST, 32),
    ...[
      ...op(LOCAL_GET, N),
      ...op(I32_CONST, 8),
      I32_SUB,
      ...op(LOCAL_TEE, N),
      ...op(I32_CONST, 0),
      I32_GT_S,
    ],
    ...[BR_IF, 0, END, END, END],
  ];
}

// (func (export "ring") (param $src i32) (param $n i32) (param $dst i32)): each float at $src as the sample
// ring rounds it (sample_ring.ts #put) to an Int16 at $dst: v = f64(x)·8192; NaN → 0, else
// trunc_sat(min(max(v + 32768.5, 0), 65535)) − 32768, i.e. floor(v + 0.5) clamped to Int16.
function ringBody(): number[] {
  const [SRC, N, DST, V, R] = [0, 1, 2, 3, 4];
  return [
    ...[2, 1, 0x7c, 1, 0x7f], // one f64 local, one i32
    ...[...BLOCK_VOID, ...op(LOCAL_GET, N), ...op(I32_CONST, 0), I32_LE_S, BR_IF, 0, ...LOOP_VOID],
    ...[
      ...op(LOCAL_GET, SRC),
      ...op(F32_LOAD, 2, 0),
      F64_PROMOTE,
      ...f64Const(8192),
      F64_MUL,
      ...op(LOCAL_SET, V),
    ],
    ...[
      ...op(LOCAL_GET, V),
      ...f64Const(32768.5),
      F64_ADD,
      ...f64Const(0),
      F64_MAX,
      ...f64Const(65535),
      F64_MIN,
    ],
    ...[...I32_TRUNC_SAT_F64_S, ...op(I32_CONST, ...sleb(32768)), I32_SUB, ...op(LOCAL_SET, R)],
    ...[...op(LOCAL_GET, DST), ...op(LOCAL_GET, R), ...op(I32_CONST, 0)],
    ...[...op(LOCAL_GET, V), ...op(LOCAL_GET, V), F64_EQ, SELECT, ...op(I32_STORE16, 1, 0)],
    ...advance(SRC, 4),
    ...advance(DST, 2),
    ...[...op(LOCAL_GET, N), ...op(I32_CONST, 1), I32_SUB, ...op(LOCAL_TEE, N), BR_IF, 0, END, END, END],
  ];
}

type KernelFn = (
  x: number,
  h: number,
  tapBytes: number,
  n: number,
  out: number,
  frac: number,
  up: number,
  stepBytes: number,
  stepRem: number,
) => void;

/** Outputs computed per kernel call; bounds the scratch area. */
const BLOCK = 4096;
/** Scratch input floats: the most native samples one block can read (48 kHz: 6 per output, plus the taps). */
const X_FLOATS = BLOCK * 6 + 2048;
const OUT_BYTE = X_FLOATS * 4;
/** Int16 input of {@link Resampler.pushPcm16Ring} (as many samples as the scratch floats hold). */
const PCM_BYTE = OUT_BYTE + BLOCK * 4;
/** Its outputs as ring values. */
const RING_BYTE = PCM_BYTE + X_FLOATS * 2;
const BANKS_BYTE = RING_BYTE + BLOCK * 2;
/** Floats {@link Kernel.pcm16} may write past the samples (it converts eight a turn). */
const PCM_SLACK = 8;

/** One shared instance: JS is single-threaded, so a scratch area and the banks of all rates can share memory. */
class Kernel {
  readonly run: KernelFn;
  /** Little-endian Int16 samples at byte `src` to floats (÷ 32768, as codecs.ts decodes them) at byte `dst`. */
  readonly pcm16: (src: number, n: number, dst: number) => void;
  /** Floats at byte `src` to the sample ring's Int16 values (its rounding, see sample_ring.ts) at byte `dst`. */
  readonly ring: (src: number, n: number, dst: number) => void;
  readonly memory: WebAssembly.Memory;
  #f32: Float32Array;
  #u8: Uint8Array;
  /** The last {@link ringView}, handed out again for outputs of its length. */
  #ringView: Int16Array<ArrayBufferLike> = new Int16Array(0);
  #next = BANKS_BYTE;
  readonly #banks = new Map<ResamplerDesign, number>();

  constructor() {
    this.memory = new WebAssembly.Memory({ initial: Math.ceil(BANKS_BYTE / 65536) + 1 });
    const instance = new WebAssembly.Instance(new WebAssembly.Module(kernelBytes()), {
      m: { mem: this.memory },
    });
    this.run = instance.exports.run as KernelFn;
    this.pcm16 = instance.exports.pcm16 as Kernel["pcm16"];
    this.ring = instance.exports.ring as Kernel["ring"];
    this.#f32 = new Float32Array(this.memory.buffer);
    this.#u8 = new Uint8Array(this.memory.buffer);
  }

  /** A view of the whole memory, renewed after the memory grows. */
  get f32(): Float32Array {
    if (this.#f32.buffer !== this.memory.buffer) this.#f32 = new Float32Array(this.memory.buffer);
    return this.#f32;
  }

  /** {@link f32} as bytes. */
  get u8(): Uint8Array {
    if (this.#u8.buffer !== this.memory.buffer) this.#u8 = new Uint8Array(this.memory.buffer);
    return this.#u8;
  }

  /** The `n` ring values at {@link RING_BYTE}: the same view as last time for the same length. */
  ringView(n: number): Int16Array<ArrayBufferLike> {
    const v = this.#ringView;
    if (v.length === n && v.buffer === this.memory.buffer) return v;
    return this.#ringView = new Int16Array(this.memory.buffer, RING_BYTE, n);
  }

  /** Byte address of `design`'s bank in memory, copied there on first use. */
  bankAddress(design: ResamplerDesign): number {
    let at = this.#banks.get(design);
    if (at === undefined) {
      at = this.#next;
      const end = at + design.bank.length * 4;
      const have = this.memory.buffer.byteLength;
      if (end > have) this.memory.grow(Math.ceil((end - have) / 65536));
      this.f32.set(design.bank, at / 4);
      this.#next = end;
      this.#banks.set(design, at);
    }
    return at;
  }
}

const EMPTY = new Float32Array(0);
let kernel: Kernel | undefined;
function getKernel(): Kernel {
  kernel ??= new Kernel();
  return kernel;
}

/**
 * Streaming resampler of one stream to {@link ANALYSIS_RATE}. Output sample k (counting from the stream's first
 * output) is the band-limited signal at stream time k/8000 s, where native sample n is at n/inRate. An output is
 * produced once `halfTaps` native samples after its instant exist; {@link flush} pads zeros to produce the rest.
 */
export class Resampler {
  /** Native rate, Hz. */
  readonly inRate: number;
  /** Analysis sample k is at native position k·down/up. */
  readonly up: number;
  readonly down: number;
  /** True at 8000 Hz: samples pass unchanged and immediately. */
  readonly passthrough: boolean;
  readonly #d: ResamplerDesign;
  #buf: Float32Array;
  /** Absolute native index of `#buf[0]`; negative at the start (virtual zeros before the stream). */
  #bufStart: number;
  #bufLen: number;
  /** Native index and fractional phase (in 1/up) of the next output's instant. */
  #nextIdx = 0;
  #nextFrac = 0;
  #inputLength = 0;
  #outputLength = 0;
  #flushed = false;

  /** Throws RangeError on a rate outside 8000..48000. */
  constructor(inRate: number) {
    this.#d = designResampler(inRate);
    this.inRate = inRate;
    this.up = this.#d.up;
    this.down = this.#d.down;
    this.passthrough = this.up === this.down;
    const history = this.passthrough ? 0 : this.#d.halfTaps - 1;
    // A passthrough never buffers: no 4 KB per 8 kHz stream.
    this.#buf = this.passthrough ? EMPTY : new Float32Array(Math.max(64, history * 2 + 1024));
    this.#bufStart = -history;
    this.#bufLen = history;
  }

  /** The filter design in use (shared by every stream of this rate). */
  get design(): ResamplerDesign {
    return this.#d;
  }

  /** Native samples pushed so far. */
  get inputLength(): number {
    return this.#inputLength;
  }

  /** Analysis samples produced so far; the next push's output starts at this index. */
  get outputLength(): number {
    return this.#outputLength;
  }

  /** Feeds native mono samples; returns the analysis samples that became computable (possibly none). */
  push(input: Float32Array): Float32Array {
    if (this.#flushed) throw new Error("Resampler.push after flush");
    this.#inputLength += input.length;
    if (this.passthrough) {
      this.#outputLength += input.length;
      return input;
    }
    this.#append(input);
    return this.#produce(Infinity);
  }

  /**
   * A passthrough's {@link push} of `n` samples the caller has in another form (the ring's Int16 values): only
   * counted. Throws on a resampler that is not a passthrough.
   */
  passOn(n: number): void {
    if (!this.passthrough) throw new Error("Resampler.passOn on a resampler that filters");
    if (this.#flushed) throw new Error("Resampler.push after flush");
    this.#inputLength += n;
    this.#outputLength += n;
  }

  /**
   * {@link push} of little-endian 16-bit mono samples (`bytes`, an even count), returning the outputs as the
   * sample ring's Int16 values (sample_ring.ts rounds a float sample to the same value) in the kernel's memory:
   * valid until the next call of any resampler. The samples are converted, filtered and rounded in the kernel,
   * with no float array made or copied on the way (a 16 kHz tap's message: its decode to floats, their copies into
   * the history and the kernel, the output array and its rounding in the ring were more than the filter).
   * Undefined, with nothing done, for a passthrough and for a message too long for one kernel call.
   */
  pushPcm16Ring(bytes: Uint8Array): Int16Array<ArrayBufferLike> | undefined {
    if (this.#flushed) throw new Error("Resampler.push after flush");
    const m = bytes.length >> 1;
    const held = this.#bufLen;
    if (this.passthrough || held + m + PCM_SLACK > X_FLOATS) return undefined;
    const d = this.#d;
    const h = d.halfTaps;
    const lead = h - 1;
    const end = this.#bufStart + held + m;
    const n = this.#countUpTo(end - h - 1);
    if (n > BLOCK) return undefined;
    const k = getKernel();
    // The scratch holds the stream from #bufStart: its history, then the new samples.
    // Copied in a loop: the history is a few dozen floats, a view of them costs more.
    const f32 = k.f32, buf = this.#buf;
    for (let i = 0; i < held; i++) f32[i] = buf[i]!;
    k.u8.set(bytes, PCM_BYTE);
    k.pcm16(PCM_BYTE, m, held * 4);
    this.#inputLength += m;
    if (n > 0) {
      const bank = k.bankAddress(d);
      const x = (this.#nextIdx - lead - this.#bufStart) * 4;
      k.run(
        x,
        bank,
        d.taps * 4,
        n,
        OUT_BYTE,
        this.#nextFrac,
        d.up,
        Math.floor(d.down / d.up) * 4,
        d.down % d.up,
      );
      k.ring(OUT_BYTE, n, RING_BYTE);
      const adv = this.#nextFrac + n * d.down;
      this.#nextIdx += Math.floor(adv / d.up);
      this.#nextFrac = adv % d.up;
      this.#outputLength += n;
    }
    // What later outputs read, back into the history: from a view taken now, as the bank's first use above
    // may have grown the memory (which detaches the views taken before it).
    const keepFrom = n > 0 ? Math.max(this.#bufStart, this.#nextIdx - lead) : this.#bufStart;
    const from = keepFrom - this.#bufStart, len = end - keepFrom;
    if (len > buf.length) this.#buf = new Float32Array(Math.max(len, buf.length * 2));
    const keep = this.#buf, scratch = k.f32;
    for (let i = 0; i < len; i++) keep[i] = scratch[from + i]!;
    this.#bufLen = len;
    this.#bufStart = keepFrom;
    return k.ringView(n);
  }

  /**
   * Ends the stream: pads zeros after the last native sample and returns the remaining outputs, i.e. every
   * analysis sample whose instant lies before the end of the native input. Further pushes throw.
   */
  flush(): Float32Array {
    if (this.#flushed) return EMPTY;
    this.#flushed = true;
    if (this.passthrough) return EMPTY;
    const remaining = this.#countUpTo(this.#inputLength - 1);
    this.#append(new Float32Array(this.#d.halfTaps + 1));
    return this.#produce(remaining);
  }

  #append(input: Float32Array): void {
    const need = this.#bufLen + input.length;
    if (need > this.#buf.length) {
      const grown = new Float32Array(Math.max(need, this.#buf.length * 2));
      grown.set(this.#buf.subarray(0, this.#bufLen));
      this.#buf = grown;
    }
    this.#buf.set(input, this.#bufLen);
    this.#bufLen = need;
  }

  /** Outputs from the next one whose instant is at native index <= `lastIdx`. */
  #countUpTo(lastIdx: number): number {
    const span = lastIdx - this.#nextIdx + 1;
    if (span <= 0) return 0;
    return Math.floor((span * this.up - this.#nextFrac - 1) / this.down) + 1;
  }

  #produce(limit: number): Float32Array {
    const d = this.#d;
    const h = d.halfTaps;
    const lead = h - 1;
    const n = Math.min(limit, this.#countUpTo(this.#bufStart + this.#bufLen - h - 1));
    if (n <= 0) return EMPTY;
    const out = allocSamples(n);
    const k = getKernel();
    const bank = k.bankAddress(d);
    const stepQ = Math.floor(d.down / d.up);
    const stepR = d.down % d.up;
    for (let done = 0; done < n;) {
      const count = Math.min(BLOCK, n - done);
      // Native span read by this block: from the first output's first tap to the last output's last tap.
      const first = this.#nextIdx - lead;
      const lastFrac = this.#nextFrac + (count - 1) * d.down;
      const lastIdx = this.#nextIdx + Math.floor(lastFrac / d.up);
      const len = lastIdx + h + 1 - first;
      const f32 = k.f32;
      f32.set(this.#buf.subarray(first - this.#bufStart, first - this.#bufStart + len), 0);
      k.run(0, bank, d.taps * 4, count, OUT_BYTE, this.#nextFrac, d.up, stepQ * 4, stepR);
      out.set(f32.subarray(OUT_BYTE / 4, OUT_BYTE / 4 + count), done);
      const adv = this.#nextFrac + count * d.down;
      this.#nextIdx += Math.floor(adv / d.up);
      this.#nextFrac = adv % d.up;
      done += count;
    }
    this.#outputLength += n;
    // Keep only what later outputs read, at the start of the buffer.
    const keepFrom = this.#nextIdx - lead;
    const drop = keepFrom - this.#bufStart;
    if (drop > 0) {
      this.#buf.copyWithin(0, drop, this.#bufLen);
      this.#bufLen -= drop;
      this.#bufStart = keepFrom;
    }
    return out;
  }
}

/**
 * Index of the first analysis sample whose instant is at or after native position `nativeIndex`:
 * ceil(nativeIndex·up/down), in exact integer arithmetic while nativeIndex·up < 2^53.
 */
export function analysisIndexOf(nativeIndex: number, up: number, down: number): number {
  if (up === down) return nativeIndex;
  const a = nativeIndex * up;
  let q = Math.floor(a / down);
  // The float quotient can round across an integer; settle q = floor(a / down) exactly.
  if (q * down > a) q--;
  else if ((q + 1) * down <= a) q++;
  return q * down === a ? q : q + 1;
}
