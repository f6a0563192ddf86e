/**
 * The butterfly stages of {@link RealFft}'s complex FFT in a tiny WebAssembly SIMD kernel, two butterflies per
 * instruction (f64x2). Every butterfly does exactly the operations of the JS stages in audio/fingerprint/fft.ts, in the same
 * order and in float64 (WebAssembly has no fused multiply-add in these instructions and IEEE addition and
 * multiplication are commutative), so the spectrum is bit for bit the same; the stages were ~70% of a frame's
 * FFT in JS.
 *
 * Memory layout (bytes): real parts at 0, imaginary parts at 8·half, then per radix-2² stage (quarter q) the
 * twiddles w1r, w1i, w2r, w2i as q float64 each, then the last radix-2 stage's cos and sin (half/2 each). One
 * kernel per FFT size is shared by every RealFft of that size: JS is single-threaded and a transform uses the
 * scratch only within one call.
 * @module
 */

import {
  i32Const as i32c,
  localGet as get,
  localSet as set,
  localTee as tee,
  name,
  section,
  simdOp as simd,
  uleb,
  WASM_HEADER,
} from "../../util/wasm_encode.ts";

// ---------------------------------------------------------------------------------------------------------------
// Hand-assembled (no toolchain in the image). Both functions take byte offsets.
// (func (export "fused") (param $q i32) (param $tw i32)   ;; one radix-2² pass of quarter q (see fft.ts #finish)
//   $qb = q·8 ; $big = 4·$qb ; w1r.. = load(tw + 0/1/2/3·$qb + j·8) per pair of j
//   for j in 0, 2, .. < q: for a = j·8; a < 8·half; a += $big: the butterfly on lanes j, j+1
// (func (export "last") (param $cos i32) (param $sin i32) ;; the radix-2 stage of length half
//   for j in 0, 2, .. < half/2: p = j·8, q = p + 4·half: x = Z[q]·W^j ; Z[p], Z[q] = Z[p] ± x
//
// Tried and not kept (session 12, measured on the 1024-point frame, bit-identical each time):
// - Straight-line code with constant addresses: Deno runs WebAssembly without V8's trap handler, so each load
//   and store at a variable address pays an explicit bounds check (lea, cmp, jae: about half of the input
//   pass's instructions), which constant addresses inside the memory's declared minimum do not. Unrolled, the
//   input pass and the last stage took a frame from 1.89 to 1.72 µs in a loop over frames, but analyze of the
//   bench corpus 3–5% more CPU (11.87/12.06/12.64 against 11.41/11.84/11.94 s user, alternating): the code is
//   big (TurboFan: ~19 KB for the input pass, 15 KB for the last stage, ~19 KB per radix-2² pass) and between
//   two frames the rest of the pipeline evicts it. With the radix-2² passes unrolled too, 2.5 µs even in the loop.
// - One function per radix-2² pass with q baked in (no integer multiply per address): the passes 0.925 -> 0.905
//   µs, the whole frame unchanged (1.89 µs), analyze unchanged within noise.
// - The input pass's Int16 -> float64 conversion without a conversion instruction (load32_splat, and, xor and
//   a float64 subtraction of 2^52 + bias, the odd window entries pre-scaled by 2^-16): no change (0.458 µs).
// The radix-2² passes run at about three float64x2 operations a cycle, the core's limit: what is left to win
// bit for bit is small; float32 lanes (audio/fingerprint/fft_simd32.ts, the default) halve the arithmetic.
// ---------------------------------------------------------------------------------------------------------------

const I32 = 0x7f, V128 = 0x7b;
const [ADD, SHL, LTU] = [0x6a, 0x74, 0x49];
const [LOOP, END, BRIF, VOID] = [0x03, 0x0b, 0x0d, 0x40];
/** v128.load/store at address (top of stack) + offset; alignment hint 8 bytes. */
const load = (offset: number) => simd(0x00, 3, ...uleb(offset));
const store = (offset: number) => simd(0x0b, 3, ...uleb(offset));
const F64X2_ADD = 0xf0, F64X2_SUB = 0xf1, F64X2_MUL = 0xf2;

/** Expression trees over v128 locals, compiled to stack code in the written order. */
export type Expr = number | { op: number; a: Expr; b: Expr };
const add = (a: Expr, b: Expr): Expr => ({ op: F64X2_ADD, a, b });
const sub = (a: Expr, b: Expr): Expr => ({ op: F64X2_SUB, a, b });
const mul = (a: Expr, b: Expr): Expr => ({ op: F64X2_MUL, a, b });
function emit(e: Expr): number[] {
  return typeof e === "number" ? get(e) : [...emit(e.a), ...emit(e.b), ...simd(e.op)];
}

/** Lane arithmetic a kernel's expressions are built with (f64x2 here, f32x4 in fft_simd32.ts). */
export interface LaneArith {
  add(a: Expr, b: Expr): Expr;
  sub(a: Expr, b: Expr): Expr;
  mul(a: Expr, b: Expr): Expr;
  /** Evaluates `e` into local `dst`. */
  let_(dst: number, e: Expr): number[];
}

/** The v128 locals of {@link radix22Butterfly}: twiddles, the four inputs, a temporary and the first pass's outputs. */
export interface Radix22Locals {
  W1R: number;
  W1I: number;
  W2R: number;
  W2I: number;
  AR: number;
  AI: number;
  BR: number;
  BI: number;
  CR: number;
  CI: number;
  DR: number;
  DI: number;
  T: number;
  A2R: number;
  A2I: number;
  B2R: number;
  B2I: number;
  C2R: number;
  C2I: number;
  D2R: number;
  D2I: number;
}

/** {@link Radix22Locals} numbered from `first` on, in the interface's order. */
export function radix22Locals(first: number): Radix22Locals {
  const names = [
    "W1R",
    "W1I",
    "W2R",
    "W2I",
    "AR",
    "AI",
    "BR",
    "BI",
    "CR",
    "CI",
    "DR",
    "DI",
    "T",
    "A2R",
    "A2I",
    "B2R",
    "B2I",
    "C2R",
    "C2I",
    "D2R",
    "D2I",
  ] as const;
  return Object.fromEntries(names.map((n, i) => [n, first + i])) as unknown as Radix22Locals;
}

/**
 * The radix-2² butterfly of both kernels on inputs already loaded into a, b, c, d (quarters 0–3): b and d times
 * w1, two radix-2 butterflies, their second outputs times w2, then the outputs stored through `st(quarter,
 * offset, value)` (`im`: the imaginary parts' offset) in the order the JS stages of fft.ts compute them. One
 * copy, so that the float64 and float32 kernels cannot drift apart.
 */
export function radix22Butterfly(
  o: LaneArith,
  r: Radix22Locals,
  st: (k: number, off: number, e: Expr) => number[],
  im: number,
): number[] {
  const { add, sub, mul, let_ } = o;
  const { W1R, W1I, W2R, W2I, AR, AI, BR, BI, CR, CI, DR, DI, T, A2R, A2I, B2R, B2I, C2R, C2I, D2R, D2I } = r;
  const IM = im;
  return [
    ...let_(T, sub(mul(BR, W1R), mul(BI, W1I))),
    ...let_(BI, add(mul(BR, W1I), mul(BI, W1R))),
    ...let_(BR, T),
    ...let_(T, sub(mul(DR, W1R), mul(DI, W1I))),
    ...let_(DI, add(mul(DR, W1I), mul(DI, W1R))),
    ...let_(DR, T),
    ...let_(A2R, add(AR, BR)),
    ...let_(A2I, add(AI, BI)),
    ...let_(B2R, sub(AR, BR)),
    ...let_(B2I, sub(AI, BI)),
    ...let_(C2R, add(CR, DR)),
    ...let_(C2I, add(CI, DI)),
    ...let_(D2R, sub(CR, DR)),
    ...let_(D2I, sub(CI, DI)),
    ...let_(T, sub(mul(C2R, W2R), mul(C2I, W2I))),
    ...let_(C2I, add(mul(C2R, W2I), mul(C2I, W2R))),
    ...let_(C2R, T),
    ...let_(T, sub(mul(D2R, W2R), mul(D2I, W2I))),
    ...let_(D2I, add(mul(D2R, W2I), mul(D2I, W2R))),
    ...let_(D2R, T),
    ...st(0, 0, add(A2R, C2R)),
    ...st(0, IM, add(A2I, C2I)),
    ...st(2, 0, sub(A2R, C2R)),
    ...st(2, IM, sub(A2I, C2I)),
    ...st(1, 0, add(B2R, D2I)),
    ...st(1, IM, sub(B2I, D2R)),
    ...st(3, 0, sub(B2R, D2I)),
    ...st(3, IM, add(B2I, D2R)),
  ];
}

/** Byte offsets of the kernel's memory for one half-size (see the module doc). */
interface Layout {
  /** Per radix-2² stage: quarter q and the byte offset of its twiddles. */
  stages: [number, number][];
  /** Whether a last radix-2 stage of length half follows. */
  hasLast: boolean;
  cosAt: number;
  sinAt: number;
  /** The frame's Int16 samples (2·half of them). */
  samplesAt: number;
  /** The window (2·half float64), in input order (see {@link SimdStages}). */
  windowAt: number;
  /** Per complex input i: the sample index rev[i]·2 it takes its real part from (int32). */
  revAt: number;
  /** The split pass's twiddles cos, sin of −2πk/(2·half), k ≤ half, and its output |X[k]|², k ≤ half. */
  splitCosAt: number;
  splitSinAt: number;
  outAt: number;
  /** Band tables of {@link SimdStages.bands}: first entry per band (int32), bin per entry (int32), weight per
   * entry (float64), and the output: energy per band, then their total (float64). */
  bandStartAt: number;
  bandBinAt: number;
  bandWAt: number;
  bandOutAt: number;
  bytes: number;
}

/** Most bands and band entries the kernel's band tables hold (a bin overlaps few bands: see fingerprint.ts). */
export const MAX_BANDS = 63;
function maxBandEntries(half: number): number {
  return half + 2 * (MAX_BANDS + 1);
}

function layoutOf(half: number): Layout {
  const stages: [number, number][] = [];
  let bytes = 16 * half;
  let len = 8;
  for (; len * 2 <= half; len <<= 2) {
    stages.push([len >> 1, bytes]);
    bytes += 16 * len;
  }
  const cosAt = bytes;
  const sinAt = bytes + 4 * half;
  const samplesAt = sinAt + 4 * half;
  const windowAt = samplesAt + 4 * half;
  const revAt = windowAt + 16 * half;
  const splitCosAt = revAt + 4 * half;
  const splitSinAt = splitCosAt + 8 * half + 16;
  const outAt = splitSinAt + 8 * half + 16;
  const bandStartAt = outAt + 8 * half + 16;
  const bandBinAt = bandStartAt + 4 * (MAX_BANDS + 1);
  const bandWAt = bandBinAt + 4 * maxBandEntries(half);
  const bandOutAt = bandWAt + 8 * maxBandEntries(half);
  return {
    stages,
    hasLast: len <= half,
    cosAt,
    sinAt,
    samplesAt,
    windowAt,
    revAt,
    splitCosAt,
    splitSinAt,
    outAt,
    bandStartAt,
    bandBinAt,
    bandWAt,
    bandOutAt,
    bytes: bandOutAt + 8 * (MAX_BANDS + 1),
  };
}

function kernelBytes(half: number): Uint8Array<ArrayBuffer> {
  const IM = 8 * half;
  const L = layoutOf(half);
  // fused: params q, tw; i32 locals; v128 locals.
  const [Q, TW, QB, BIG, J, A, WA] = [0, 1, 2, 3, 4, 5, 6];
  // v128 locals follow the i32 ones.
  const R = radix22Locals(7);
  const { W1R, W1I, W2R, W2I, AR, AI, BR, BI, CR, CI, DR, DI } = R;
  const ldAt = (addr: number[], dst: number) => [...addr, ...load(0), ...set(dst)];
  const ld = (off: number, dst: number) => [...get(A), ...load(off), ...set(dst)];
  const ldq = (k: number, off: number, dst: number) => [
    ...get(A),
    ...get(QB),
    ...i32c(k),
    0x6c, // i32.mul
    ADD,
    ...load(off),
    ...set(dst),
  ];
  const st = (k: number, off: number, e: Expr) => [
    ...get(A),
    ...(k === 0 ? [] : [...get(QB), ...i32c(k), 0x6c, ADD]),
    ...emit(e),
    ...store(off),
  ];
  const let_ = (dst: number, e: Expr) => [...emit(e), ...set(dst)];
  const fused = [
    ...get(Q),
    ...i32c(3),
    SHL,
    ...set(QB),
    ...get(QB),
    ...i32c(2),
    SHL,
    ...set(BIG),
    ...i32c(0),
    ...set(J),
    LOOP,
    VOID,
    // Twiddles of j, j + 1: tw + j·8 + k·qb.
    ...get(TW),
    ...get(J),
    ...i32c(3),
    SHL,
    ADD,
    ...set(WA),
    ...ldAt(get(WA), W1R),
    ...ldAt([...get(WA), ...get(QB), ADD], W1I),
    ...ldAt([...get(WA), ...get(QB), ...i32c(1), SHL, ADD], W2R),
    ...ldAt([...get(WA), ...get(QB), ...i32c(3), 0x6c, ADD], W2I),
    ...get(J),
    ...i32c(3),
    SHL,
    ...set(A),
    LOOP,
    VOID,
    ...ld(0, AR),
    ...ld(IM, AI),
    ...ldq(1, 0, BR),
    ...ldq(1, IM, BI),
    ...ldq(2, 0, CR),
    ...ldq(2, IM, CI),
    ...ldq(3, 0, DR),
    ...ldq(3, IM, DI),
    ...radix22Butterfly({ add, sub, mul, let_ }, R, st, IM),
    ...get(A),
    ...get(BIG),
    ADD,
    ...tee(A),
    ...i32c(IM),
    LTU,
    BRIF,
    0,
    END,
    ...get(J),
    ...i32c(2),
    ADD,
    ...tee(J),
    ...get(Q),
    LTU,
    BRIF,
    0,
    END,
    END,
  ];
  const fusedBody = [2, 5, I32, 21, V128, ...fused];

  // last: params cos, sin; i32 local p (byte offset of j); v128 locals.
  const [COS, SIN, P] = [0, 1, 2];
  const WR = 3, WI = 4, QR = 5, QI = 6, XR = 7, XI = 8, PR = 9, PI = 10;
  const H = 4 * half; // byte offset of q = p + half/2
  const lp = (off: number, dst: number) => [...get(P), ...load(off), ...set(dst)];
  const sp = (off: number, e: Expr) => [...get(P), ...emit(e), ...store(off)];
  const last = [
    ...i32c(0),
    ...set(P),
    LOOP,
    VOID,
    ...get(COS),
    ...get(P),
    ADD,
    ...load(0),
    ...set(WR),
    ...get(SIN),
    ...get(P),
    ADD,
    ...load(0),
    ...set(WI),
    ...lp(H, QR),
    ...lp(H + IM, QI),
    ...let_(XR, sub(mul(QR, WR), mul(QI, WI))),
    ...let_(XI, add(mul(QR, WI), mul(QI, WR))),
    ...lp(0, PR),
    ...lp(IM, PI),
    ...sp(0, add(PR, XR)),
    ...sp(IM, add(PI, XI)),
    ...sp(H, sub(PR, XR)),
    ...sp(H + IM, sub(PI, XI)),
    ...get(P),
    ...i32c(16),
    ADD,
    ...tee(P),
    ...i32c(H),
    LTU,
    BRIF,
    0,
    END,
    END,
  ];
  const lastBody = [2, 1, I32, 8, V128, ...last];

  // input: the window applied to the bit-reversed samples and the first two radix-2 stages as one radix-4
  // pass, exactly as RealFft.powerWindowed in JS, a complex value (re, im) per v128.
  const RI = 0, O = 1, X = 2; // i32 locals: byte offset in the rev table, in re/im, in the window
  const [VA, VB, VC, VD, S0, D0, S1, D1, W, XX, YY, PM] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
  /** (sample[x], sample[x + 1]) · (window[x], window[x + 1]) with x = rev table entry k of this turn. */
  // The rev table holds each input's byte offset in the samples and the window is stored in input order
  // (see SimdStages.#setWindow), so the window pair of input i + k is at 16·(i + k): no address arithmetic.
  const pair = (k: number, dst: number) => [
    ...get(RI),
    0x28, // i32.load
    2,
    ...uleb(L.revAt + 4 * k),
    ...simd(0x5c, 1, ...uleb(L.samplesAt)), // v128.load32_zero: two Int16
    ...simd(0xa7), // i32x4.extend_low_i16x8_s
    ...simd(0xfe), // f64x2.convert_low_i32x4_s
    ...get(X),
    ...load(L.windowAt + 16 * k),
    ...simd(F64X2_MUL),
    ...set(dst),
  ];
  /** Lanes 0 of a and b (LO_LO) or lanes 1 of a and b (HI_HI), as one v128 stored at O + off. */
  const LO_LO = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];
  const HI_HI = [8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31];
  const whole = (off: number, a: number, b: number, lanes: number[]) => [
    ...get(O),
    ...get(a),
    ...get(b),
    ...simd(0x0d, ...lanes),
    ...store(off),
  ];
  const input = [
    ...i32c(0),
    ...set(RI),
    ...i32c(0),
    ...set(O),
    LOOP,
    VOID,
    ...get(RI),
    ...i32c(2),
    SHL,
    ...set(X),
    ...pair(0, VA),
    ...pair(1, VB),
    ...pair(2, VC),
    ...pair(3, VD),
    ...let_(S0, add(VA, VB)),
    ...let_(D0, sub(VA, VB)),
    ...let_(S1, add(VC, VD)),
    ...let_(D1, sub(VC, VD)),
    // P = s0 + s1 = (re[i], im[i]), M = s0 − s1 = (re[i + 2], im[i + 2]); with d1 halves swapped,
    // x = d0 + (d1i, d1r) = (re[i + 1], im[i + 3]) and y = d0 − (d1i, d1r) = (re[i + 3], im[i + 1]). Shuffled
    // into four whole v128 stores (re[i..i+4), im[i..i+4)) rather than eight lane stores: the same values.
    ...let_(W, add(S0, S1)),
    ...let_(PM, sub(S0, S1)),
    ...get(D1),
    ...get(D1),
    ...simd(0x0d, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7),
    ...set(D1),
    ...let_(XX, add(D0, D1)),
    ...let_(YY, sub(D0, D1)),
    ...whole(0, W, XX, LO_LO),
    ...whole(16, PM, YY, LO_LO),
    ...whole(IM, W, YY, HI_HI),
    ...whole(IM + 16, PM, XX, HI_HI),
    ...get(RI),
    ...i32c(16),
    ADD,
    ...set(RI),
    ...get(O),
    ...i32c(32),
    ADD,
    ...tee(O),
    ...i32c(IM),
    LTU,
    BRIF,
    0,
    END,
    END,
  ];
  const inputBody = [2, 3, I32, 12, V128, ...input];

  // split: bins k0 .. k0 + 2·pairs − 1 (1 ≤ k, k ≤ half − 1) of the real spectrum, as RealFft's JS split pass:
  // Z[k] from re/im at k, conj Z[half − k] from the pair below half − k, lanes swapped.
  const K0 = 0, PAIRS = 1, PB = 2, QP = 3; // params; byte offsets of k and of half − k − 1
  const [ZR, ZI, YR, YI, ER, EI, OR, OI, C, S, TR, TI, XR2, XI2, HALF] = [
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
    15,
    16,
    17,
    18,
  ];
  const SWAP = [8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7];
  const swapped = (off: number, dst: number) => [
    ...get(QP),
    ...load(off),
    ...get(QP),
    ...load(off),
    ...simd(0x0d, ...SWAP),
    ...set(dst),
  ];
  const atP = (off: number, dst: number) => [...get(PB), ...load(off), ...set(dst)];
  const split = [
    ...simd(0x0c, 0, 0, 0, 0, 0, 0, 0xe0, 0x3f, 0, 0, 0, 0, 0, 0, 0xe0, 0x3f), // v128.const (0.5, 0.5)
    ...set(HALF),
    ...get(K0),
    ...i32c(3),
    SHL,
    ...set(PB),
    ...i32c(half - 1),
    ...get(K0),
    0x6b, // i32.sub
    ...i32c(3),
    SHL,
    ...set(QP),
    LOOP,
    VOID,
    ...atP(0, ZR),
    ...atP(IM, ZI),
    ...swapped(0, YR),
    ...swapped(IM, YI),
    ...get(YI),
    ...simd(0xed), // f64x2.neg: yi = −im[half − k]
    ...set(YI),
    ...let_(ER, mul(HALF, add(ZR, YR))),
    ...let_(EI, mul(HALF, add(ZI, YI))),
    ...let_(OR, mul(HALF, sub(ZR, YR))),
    ...let_(OI, mul(HALF, sub(ZI, YI))),
    ...atP(L.splitCosAt, C),
    ...atP(L.splitSinAt, S),
    ...let_(TR, add(mul(OI, C), mul(OR, S))),
    ...let_(TI, sub(mul(OI, S), mul(OR, C))),
    ...let_(XR2, add(ER, TR)),
    ...let_(XI2, add(EI, TI)),
    ...get(PB),
    ...emit(add(mul(XR2, XR2), mul(XI2, XI2))),
    ...store(L.outAt),
    ...get(PB),
    ...i32c(16),
    ADD,
    ...set(PB),
    ...get(QP),
    ...i32c(16),
    0x6b,
    ...set(QP),
    ...get(PAIRS),
    ...i32c(1),
    0x6b,
    ...tee(PAIRS),
    BRIF,
    0,
    END,
    END,
  ];
  const splitBody = [2, 2, I32, 15, V128, ...split];

  // bands: energy of band b = Σ out[bin[i]]·w[i] over its entries in table order, from 0, in scalar float64
  // (exactly FrameAnalyzer's JS loop), each into bandOut[b]; their running total (from 0) into bandOut[nb].
  const NB = 0, B4 = 1, I = 2, END_ = 3, E = 4, TOT = 5; // param; i32 locals; f64 locals
  const F64_LOAD = 0x2b, F64_STORE = 0x39, I32_LOAD = 0x28, F64_ADD = 0xa0, F64_MUL = 0xa2, F64_CONST = 0x44;
  const GE_S = 0x4e, LT_S = 0x48, BLOCK = 0x02, BR_IF = 0x0d;
  const f64zero = [F64_CONST, 0, 0, 0, 0, 0, 0, 0, 0];
  const bands = [
    ...f64zero,
    ...set(TOT),
    ...i32c(0),
    ...set(B4),
    LOOP,
    VOID,
    ...get(B4),
    I32_LOAD,
    2,
    ...uleb(L.bandStartAt),
    ...set(I),
    ...get(B4),
    I32_LOAD,
    2,
    ...uleb(L.bandStartAt + 4),
    ...set(END_),
    ...f64zero,
    ...set(E),
    BLOCK,
    VOID,
    ...get(I),
    ...get(END_),
    GE_S,
    BR_IF,
    0,
    LOOP,
    VOID,
    ...get(E),
    // out[bin[i]]
    ...get(I),
    ...i32c(2),
    SHL,
    I32_LOAD,
    2,
    ...uleb(L.bandBinAt),
    ...i32c(3),
    SHL,
    F64_LOAD,
    3,
    ...uleb(L.outAt),
    // w[i]
    ...get(I),
    ...i32c(3),
    SHL,
    F64_LOAD,
    3,
    ...uleb(L.bandWAt),
    F64_MUL,
    F64_ADD,
    ...set(E),
    ...get(I),
    ...i32c(1),
    ADD,
    ...tee(I),
    ...get(END_),
    LT_S,
    BR_IF,
    0,
    END,
    END,
    ...get(B4),
    ...i32c(1),
    SHL,
    ...get(E),
    F64_STORE,
    3,
    ...uleb(L.bandOutAt),
    ...get(TOT),
    ...get(E),
    F64_ADD,
    ...set(TOT),
    ...get(B4),
    ...i32c(4),
    ADD,
    ...tee(B4),
    ...get(NB),
    ...i32c(2),
    SHL,
    LT_S,
    BR_IF,
    0,
    END,
    ...get(NB),
    ...i32c(3),
    SHL,
    ...get(TOT),
    F64_STORE,
    3,
    ...uleb(L.bandOutAt),
    END,
  ];
  const bandsBody = [2, 3, I32, 2, 0x7c, ...bands];

  // frame: input, every stage, split(k0, pairs), bands(nb): a whole frame in one call from JS.
  const CALL = 0x10;
  const frame = [
    ...[CALL, 2],
    ...L.stages.flatMap(([q, tw]) => [...i32c(q), ...i32c(tw), CALL, 0]),
    ...(L.hasLast ? [...i32c(L.cosAt), ...i32c(L.sinAt), CALL, 1] : []),
    ...get(0),
    ...get(1),
    CALL,
    3,
    ...get(2),
    CALL,
    4,
    END,
  ];
  const frameBody = [0, ...frame];
  return new Uint8Array([
    ...WASM_HEADER,
    ...section(1, [4, 0x60, 2, I32, I32, 0, 0x60, 0, 0, 0x60, 1, I32, 0, 0x60, 3, I32, I32, I32, 0]),
    ...section(2, [1, ...name("m"), ...name("mem"), 0x02, 0x00, 1]),
    ...section(3, [6, 0, 0, 1, 0, 2, 3]),
    ...section(7, [
      6,
      ...name("fused"),
      0x00,
      0,
      ...name("last"),
      0x00,
      1,
      ...name("input"),
      0x00,
      2,
      ...name("split"),
      0x00,
      3,
      ...name("bands"),
      0x00,
      4,
      ...name("frame"),
      0x00,
      5,
    ]),
    ...section(10, [
      6,
      ...uleb(fusedBody.length),
      ...fusedBody,
      ...uleb(lastBody.length),
      ...lastBody,
      ...uleb(inputBody.length),
      ...inputBody,
      ...uleb(splitBody.length),
      ...splitBody,
      ...uleb(bandsBody.length),
      ...bandsBody,
      ...uleb(frameBody.length),
      ...frameBody,
    ]),
  ]);
}

type StageFn = (a: number, b: number) => void;

/**
 * Sparse band weights over the power spectrum: band b sums `power[bin[i]] · weight[i]` for i in
 * `[start[b], start[b + 1])`, in that order. Tables are never modified once made (the kernel keeps the last one).
 */
export interface BandTable {
  readonly bin: Int32Array;
  readonly weight: Float64Array;
  /** Number of bands + 1 entries. */
  readonly start: Int32Array;
}

/**
 * The complex FFT of a real frame for one half-size (≥ 8, power of two) but the final split: either the caller
 * writes the radix-4 input pass's output into {@link re} and {@link im}, or it copies a frame's Int16 samples to
 * {@link samples} and calls {@link input} with the window; then {@link run}, and the transform is in re, im.
 */
export class SimdStages {
  /** Real and imaginary parts (views of the kernel's memory). */
  readonly re: Float64Array;
  readonly im: Float64Array;
  /** The frame's samples for {@link input}. */
  readonly samples: Int16Array;
  /** Output of {@link split}: |X[k]|² at index k. */
  readonly out: Float64Array;
  readonly #fused: StageFn;
  readonly #last: StageFn;
  readonly #input: () => void;
  readonly #split: StageFn;
  readonly #frame: (k0: number, pairs: number, nb: number) => void;
  readonly #layout: Layout;
  readonly #half: number;
  readonly #memory: WebAssembly.Memory;
  /** The band table last copied into the kernel's memory. */
  #bands: BandTable | undefined;
  /** Output of {@link frame}: energy per band, then their total. */
  readonly bandOut: Float64Array;
  /** The radix-2² stages' (quarter, twiddle offset) pairs, flat. */
  readonly #stageArgs: Int32Array;
  readonly #windowView: Float64Array;
  readonly #rev: Uint32Array;
  /** The window last copied into the kernel's memory (windows are never modified once made). */
  #window: Float64Array | undefined;

  /**
   * `cos`, `sin`: the JS stages' twiddles of the half-size complex FFT (W^k, k < half/2); `rev`: the bit
   * reversal of half; `splitCos`, `splitSin`: the split pass's twiddles (k ≤ half).
   */
  constructor(
    half: number,
    cos: Float64Array,
    sin: Float64Array,
    rev: Uint32Array,
    splitCos: Float64Array,
    splitSin: Float64Array,
  ) {
    const L = layoutOf(half);
    this.#layout = L;
    this.#stageArgs = Int32Array.from(L.stages.flat());
    const memory = new WebAssembly.Memory({ initial: Math.ceil(L.bytes / 65536) });
    const instance = new WebAssembly.Instance(new WebAssembly.Module(kernelBytes(half)), {
      m: { mem: memory },
    });
    this.#fused = instance.exports.fused as StageFn;
    this.#last = instance.exports.last as StageFn;
    this.#input = instance.exports.input as () => void;
    this.#split = instance.exports.split as StageFn;
    this.#frame = instance.exports.frame as (k0: number, pairs: number, nb: number) => void;
    this.#half = half;
    this.#memory = memory;
    const f64 = new Float64Array(memory.buffer);
    this.re = f64.subarray(0, half);
    this.im = f64.subarray(half, 2 * half);
    this.samples = new Int16Array(memory.buffer, L.samplesAt, 2 * half);
    this.#windowView = f64.subarray(L.windowAt / 8, L.windowAt / 8 + 2 * half);
    const revView = new Int32Array(memory.buffer, L.revAt, half);
    // Input i's samples 2·rev[i], 2·rev[i] + 1: their byte offset.
    for (let i = 0; i < half; i++) revView[i] = rev[i]! << 2;
    this.#rev = rev.slice();
    // The same table entries the JS stages read for butterfly j: W_{2q}^j at j·step1, W_{4q}^j at j·step2.
    for (const [q, at] of L.stages) {
      const step1 = half / (2 * q), step2 = step1 >> 1;
      const o = at / 8;
      for (let j = 0; j < q; j++) {
        f64[o + j] = cos[j * step1]!;
        f64[o + q + j] = sin[j * step1]!;
        f64[o + 2 * q + j] = cos[j * step2]!;
        f64[o + 3 * q + j] = sin[j * step2]!;
      }
    }
    f64.set(cos.subarray(0, half >> 1), L.cosAt / 8);
    f64.set(sin.subarray(0, half >> 1), L.sinAt / 8);
    f64.set(splitCos.subarray(0, half + 1), L.splitCosAt / 8);
    f64.set(splitSin.subarray(0, half + 1), L.splitSinAt / 8);
    this.out = f64.subarray(L.outAt / 8, L.outAt / 8 + half + 1);
    this.bandOut = f64.subarray(L.bandOutAt / 8, L.bandOutAt / 8 + MAX_BANDS + 1);
  }

  /** True if {@link frame} can take `table` (few enough bands and entries, bins inside the spectrum). */
  fits(table: BandTable): boolean {
    const nb = table.start.length - 1;
    const entries = table.start[nb]!;
    if (nb < 1 || nb > MAX_BANDS || entries > maxBandEntries(this.#half) || table.bin.length < entries) {
      return false;
    }
    for (let i = 0; i < entries; i++) if (table.bin[i]! < 0 || table.bin[i]! > this.#half) return false;
    return true;
  }

  /**
   * A whole windowed frame in one call: the input pass from {@link samples} times `window`, the stages, the split
   * of bins k0 .. k0 + 2·pairs − 1 and the band energies of `table` (which must {@link fits} and read only those
   * bins) into {@link bandOut}. The same operations as {@link input}, {@link run}, {@link split} and the JS band
   * sums, so the same values.
   */
  frame(window: Float64Array, k0: number, pairs: number, table: BandTable): void {
    if (window !== this.#window) this.#setWindow(window);
    if (table !== this.#bands) {
      const L = this.#layout, buf = this.#memory.buffer;
      const nb = table.start.length - 1, entries = table.start[nb]!;
      new Int32Array(buf, L.bandStartAt, nb + 1).set(table.start);
      new Int32Array(buf, L.bandBinAt, entries).set(table.bin.subarray(0, entries));
      new Float64Array(buf, L.bandWAt, entries).set(table.weight.subarray(0, entries));
      this.#bands = table;
    }
    this.#frame(k0, pairs, table.start.length - 1);
  }

  /** Power of bins k0 .. k0 + 2·pairs − 1 into {@link out} (pairs ≥ 1, 1 ≤ k0, k0 + 2·pairs ≤ half). */
  split(k0: number, pairs: number): void {
    this.#split(k0, pairs);
  }

  /** The radix-4 input pass from {@link samples} times `window` (2·half values) into re, im. */
  input(window: Float64Array): void {
    if (window !== this.#window) this.#setWindow(window);
    this.#input();
  }

  /** The window into the kernel in input order: input i's pair (window[2·rev[i]], window[2·rev[i] + 1]). */
  #setWindow(window: Float64Array): void {
    const wv = this.#windowView, rev = this.#rev;
    for (let i = 0; i < rev.length; i++) {
      const x = rev[i]! << 1;
      wv[2 * i] = window[x]!;
      wv[2 * i + 1] = window[x + 1]!;
    }
    this.#window = window;
  }

  /** Runs the stages in place on {@link re}, {@link im}. */
  run(): void {
    const L = this.#layout;
    // An indexed loop over a flat table: destructuring the stage pairs per frame showed in profiles.
    const st = this.#stageArgs, fused = this.#fused;
    for (let i = 0; i < st.length; i += 2) fused(st[i]!, st[i + 1]!);
    if (L.hasLast) this.#last(L.cosAt, L.sinAt);
  }
}

const kernels = new Map<number, SimdStages | null>();

/**
 * The shared stages for `half` (see {@link SimdStages}), or undefined where WebAssembly SIMD is unavailable
 * (the caller keeps its JS stages).
 */
export function simdStages(
  half: number,
  cos: Float64Array,
  sin: Float64Array,
  rev: Uint32Array,
  splitCos: Float64Array,
  splitSin: Float64Array,
): SimdStages | undefined {
  let k = kernels.get(half);
  if (k === undefined) {
    try {
      k = new SimdStages(half, cos, sin, rev, splitCos, splitSin);
    } catch {
      k = null;
    }
    kernels.set(half, k);
  }
  return k ?? undefined;
}
