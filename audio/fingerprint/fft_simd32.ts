/**
 * The float32 variant of the whole-frame kernel of audio/fingerprint/fft_simd.ts: the same
 * transform (bit-reversed radix-4 input pass with the window, radix-2² passes, a last radix-2 pass, the split of
 * the needed bins and the band sums), four lanes of float32 (f32x4) instead of two of float64, so half the
 * vector arithmetic. The spectrum is rounded to float32 at every step, so fingerprints can differ from the float64
 * kernel's in near-tie bits (one bit of one signature in each bench corpus, the same matches: see FFT_F32 in
 * fft.ts, which makes this the default; `FSMPX_FFT_F32=0` keeps the float64 kernel). The band sums stay in float64
 * over the float32 powers, in the JS table order. RealFft computes the same values in JS where this kernel does
 * not run (tests/audio_fft_f32_test.ts checks both against a float32 reference).
 *
 * Tried and not kept: the band sums two bands at a time (two dependency chains, the same additions per band):
 * 1.16 -> 1.11 µs a frame in a loop, but no gain in analyze (the band sums' share of its CPU profile 411 -> 461
 * ms): between frames the tables and powers come from the caches' outer levels, not the additions' latency.
 * Again in session 13 as two bands per f64x2 lane pair (the shorter band padded with weight-0 entries, which add
 * +0): 2-3% of the frame in a loop (in-process A/B on the loaded 2-core host), too little to show in analyze.
 *
 * Memory layout (bytes, float32 unless noted): re at 0, im at 4·half; per radix-2² pass (quarter q) w1r, w1i,
 * w2r, w2i, q each; the last pass's cos and sin (half/2 each); the window in input
 * order (per group of four inputs a, b, c, d: (a, a', c, c'), (b, b', d, d')); the rev table (int32 byte offset
 * of each group's first input's samples: b, c and d are half/2, half/4 and 3·half/4 inputs further, so their
 * offsets are the loads' constants); the split's cos and sin (k ≤ half, padded); the powers (k ≤ half, padded);
 * the band tables as in fft_simd.ts (start, bin int32; weight, output float64); the previous frame's band
 * energies (float64) and the sub-fingerprint (int32) of {@link SimdFrame32.frameBits}; the columns of
 * {@link SimdFrame32.frameBitsRun} (bits, strong bits int32, band totals float64, weak bits int16); last, the
 * Int16 samples: a frame's, or a run's (the input pass reads a frame at a byte offset into them).
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
import { type BandTable, type Expr, MAX_BANDS, radix22Butterfly, radix22Locals } from "./fft_simd.ts";

const I32 = 0x7f, V128 = 0x7b;
const [ADD, SHL, LTU, I32_SUB, I32_LOAD] = [0x6a, 0x74, 0x49, 0x6b, 0x28];
const [LOOP, END, BRIF, VOID] = [0x03, 0x0b, 0x0d, 0x40];
const load = (offset: number) => simd(0x00, 2, ...uleb(offset));
const store = (offset: number) => simd(0x0b, 2, ...uleb(offset));
const F32X4_ADD = 0xe4, F32X4_SUB = 0xe5, F32X4_MUL = 0xe6;

const add = (a: Expr, b: Expr): Expr => ({ op: F32X4_ADD, a, b });
const sub = (a: Expr, b: Expr): Expr => ({ op: F32X4_SUB, a, b });
const mul = (a: Expr, b: Expr): Expr => ({ op: F32X4_MUL, a, b });
function emit(e: Expr): number[] {
  return typeof e === "number" ? get(e) : [...emit(e.a), ...emit(e.b), ...simd(e.op)];
}
const let_ = (dst: number, e: Expr) => [...emit(e), ...set(dst)];
/** i8x16.shuffle of two v128 by 32-bit lanes (0–3 from the first, 4–7 from the second). */
const shuffle32 = (...lanes: number[]) =>
  simd(0x0d, ...lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]));

const maxBandEntries = (half: number) => half + 2 * (MAX_BANDS + 1);

interface Layout32 {
  stages: [number, number][];
  hasLast: boolean;
  cosAt: number;
  sinAt: number;
  windowAt: number;
  revAt: number;
  splitCosAt: number;
  splitSinAt: number;
  outAt: number;
  bandStartAt: number;
  bandBinAt: number;
  bandWAt: number;
  bandOutAt: number;
  /** The previous frame's band energies (float64) and the sub-fingerprint's three int32 (subFingerprintBody). */
  prevAt: number;
  resAt: number;
  /** {@link SimdFrame32.frameBitsRun}'s output columns: bits, strong bits (int32), band totals (float64), weak. */
  runBitsAt: number;
  runStrongAt: number;
  runTotalAt: number;
  runWeakAt: number;
  /** {@link SimdFrame32.framePairs}' frames: each pair's second frame's first sample in the samples (int32). */
  pairAtAt: number;
  /** The samples: a frame's, or a run's span of {@link SPAN_FRAMES} frames' worth (a pair list's: {@link PAIR_SPAN_FRAMES}). */
  samplesAt: number;
  bytes: number;
}

/** Frames {@link SimdFrame32.frameBitsRun} computes at most in one call. */
export const MAX_RUN = 128;
/** A run's samples in frames' worth: with the fingerprint's hop of an eighth of a frame, 121 frames. */
const SPAN_FRAMES = 16;
/**
 * The samples of {@link SimdFrame32.framePairs} in frames' worth: a 128-frame signature block on a grid with its
 * frame before it (129 hops and a frame less a hop: 17 frames' worth at the fingerprint's hop) in one copy.
 */
const PAIR_SPAN_FRAMES = 17;

function layoutOf(half: number): Layout32 {
  const stages: [number, number][] = [];
  let bytes = 8 * half;
  let len = 8;
  for (; len * 2 <= half; len <<= 2) {
    stages.push([len >> 1, bytes]);
    bytes += 8 * len;
  }
  const cosAt = bytes;
  const sinAt = cosAt + 2 * half;
  const windowAt = sinAt + 2 * half;
  const revAt = windowAt + 8 * half;
  const splitCosAt = revAt + half;
  const splitSinAt = splitCosAt + 4 * half + 32;
  const outAt = splitSinAt + 4 * half + 32;
  const bandStartAt = outAt + 4 * half + 32;
  const bandBinAt = bandStartAt + 4 * (MAX_BANDS + 1);
  const bandWAt = (bandBinAt + 4 * maxBandEntries(half) + 7) & ~7;
  const bandOutAt = bandWAt + 8 * maxBandEntries(half);
  const runBitsAt = bandOutAt + 16 * (MAX_BANDS + 1) + 16;
  const runStrongAt = runBitsAt + 4 * MAX_RUN;
  const runTotalAt = runStrongAt + 4 * MAX_RUN;
  const runWeakAt = runTotalAt + 8 * MAX_RUN;
  const pairAtAt = runWeakAt + 2 * MAX_RUN;
  const samplesAt = pairAtAt + 4 * MAX_RUN;
  return {
    stages,
    hasLast: len <= half,
    cosAt,
    sinAt,
    windowAt,
    revAt,
    splitCosAt,
    splitSinAt,
    outAt,
    bandStartAt,
    bandBinAt,
    bandWAt,
    bandOutAt,
    prevAt: bandOutAt + 8 * (MAX_BANDS + 1),
    resAt: bandOutAt + 16 * (MAX_BANDS + 1),
    runBitsAt,
    runStrongAt,
    runTotalAt,
    runWeakAt,
    pairAtAt,
    samplesAt,
    bytes: samplesAt + 2 * Math.max(SPAN_FRAMES, PAIR_SPAN_FRAMES) * 2 * half,
  };
}

// The sub-fingerprint of fingerprint.ts's `subFingerprint` as a function of the kernel, run right after the band
// sums in the same memory: the frame's band energies are where the kernel left them, so a fingerprint frame is
// one call from JS (SimdFrame32.frameBits).
//
// The same operations as the JS, so the same bits: each difference `(c[m] − c[m+1]) − (p[m] − p[m+1])` and its
// sign and `|·|` two bits at a time in f64x2 lanes, the sum of the |differences| in bit order, the strong threshold
// `(sum / 32) · strongAlpha`, and the two smallest |differences| per half kept with `select` rather than branches
// (strictly smaller replaces, so the earlier index wins ties, as in the JS). Branches on those comparisons are a
// coin toss: the JS spent most of its ~0.25 µs a frame (analyze's profile) on their mispredictions.
// tests/audio_fft_f32_test.ts checks it against `subFingerprint`.
const I64 = 0x7e, F64 = 0x7c;
const I64_LT_S = 0x53, F64_GT = 0x64, F64_ADD = 0xa0, F64_MUL = 0xa2, F64_DIV = 0xa3, SELECT = 0x1b;
const [I32_AND, I32_OR, I32_SHL, I32_SHR_U, I32_STORE] = [0x71, 0x72, 0x74, 0x76, 0x36];
const [V128_LOAD, F64X2_GT, F64X2_GE, F64X2_ABS, F64X2_SUB, I64X2_BITMASK] = [
  0x00,
  0x4a,
  0x4c,
  0xec,
  0xf1,
  0xc4,
];
const I64X2_EXTRACT = 0x1d, F64X2_EXTRACT = 0x21, F64X2_SPLAT = 0x14;
/** Signed LEB128 of a 64-bit integer. */
function sleb64(n: bigint): number[] {
  const out: number[] = [];
  for (;;) {
    const b = Number(n & 0x7fn);
    n >>= 7n;
    if ((n === 0n && (b & 0x40) === 0) || (n === -1n && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
}
const f64c = (v: number) => [0x44, ...new Uint8Array(Float64Array.of(v).buffer)];

/** Bits per sub-fingerprint; the body is written for exactly this many. */
const BITS = 32;
/** Bands the body reads per frame (a bit per pair of neighbours). */
export const SUBFP_BANDS = BITS + 1;

/**
 * The body (locals and code) of a function `(param $alpha f64)` that reads the frame's band energies (33 float64 at
 * byte `curAt`) and the previous frame's (at `prevAt`) and writes bits, packed weak-bit indices and strong bits
 * (int32 each) at `resAt`, as `subFingerprint(cur, prev, result, diff, alpha)` does, then copies the energies to
 * `prevAt` (which holds 34 float64) for the next frame.
 */
function subFingerprintBody(curAt: number, prevAt: number, resAt: number): number[] {
  const ALPHA = 0;
  const [T, BITSL, STRONG, LT1, LT2] = [1, 2, 3, 4, 5];
  const IDX = [6, 7, 8, 9]; // h1, h2, l1, l2: index within the half
  // Their |differences| and the one compared, as the int64 of their bits: for non-negative doubles (and +∞, and
  // the NaN |·| makes, above it) the same order as the doubles', and integer `select`s compile to conditional
  // moves where double ones may become branches.
  const VAL = [10, 11, 12, 13];
  const A = 14;
  const [SUM, THR] = [15, 16];
  const Z = 17, D = 18, AV = 19; // AV + k: |differences| 2k, 2k + 1
  const pairs = BITS / 2;
  const code: number[] = [];
  const emit = (...xs: number[][]) => {
    for (const x of xs) code.push(...x);
  };
  const at0 = (off: number) => [...i32c(0), ...simd(V128_LOAD, 3, ...uleb(off))];
  /** `acc = (acc << 2) | the two lanes' mask bits, lane 0 first (the higher bit)`. */
  const twoBits = (acc: number, cmp: number[]) =>
    emit(
      cmp,
      simd(I64X2_BITMASK),
      set(T),
      get(acc),
      i32c(2),
      [I32_SHL],
      get(T),
      i32c(1),
      [I32_AND],
      i32c(1),
      [I32_SHL, I32_OR],
      get(T),
      i32c(1),
      [I32_SHR_U, I32_OR],
      set(acc),
    );
  emit(simd(0x0c, ...new Array<number>(16).fill(0)), set(Z));
  emit(i32c(1), set(IDX[1]!), i32c(1), set(IDX[3]!));
  // +∞'s bits.
  for (const v of VAL) emit([0x42, ...sleb64(0x7ff0000000000000n)], set(v));
  for (let k = 0; k < pairs; k++) {
    const o = 16 * k;
    emit(at0(curAt + o), at0(curAt + o + 8), simd(F64X2_SUB));
    emit(at0(prevAt + o), at0(prevAt + o + 8), simd(F64X2_SUB), simd(F64X2_SUB), set(D));
    emit(get(D), simd(F64X2_ABS), set(AV + k));
    twoBits(BITSL, [...get(D), ...get(Z), ...simd(F64X2_GT)]);
  }
  const lane = (m: number) => [...get(AV + (m >> 1)), ...simd(F64X2_EXTRACT, m & 1)];
  /** One step of the two-smallest selection of half `h` (0: high, 1: low) over |difference| m. */
  const weak = (h: number, m: number) => {
    const i1 = IDX[2 * h]!, i2 = IDX[2 * h + 1]!, v1 = VAL[2 * h]!, v2 = VAL[2 * h + 1]!;
    emit(get(AV + (m >> 1)), simd(I64X2_EXTRACT, m & 1), set(A));
    emit(get(A), get(v1), [I64_LT_S], set(LT1), get(A), get(v2), [I64_LT_S], set(LT2));
    emit(get(v1), get(A), get(v2), get(LT2), [SELECT], get(LT1), [SELECT], set(v2));
    emit(get(i1), i32c(m & 15), get(i2), get(LT2), [SELECT], get(LT1), [SELECT], set(i2));
    emit(get(A), get(v1), get(LT1), [SELECT], set(v1));
    emit(i32c(m & 15), get(i1), get(LT1), [SELECT], set(i1));
  };
  // The sum in bit order from 0 (as the JS), the two halves' selections interleaved around it.
  emit(f64c(0), set(SUM));
  for (let m = 0; m < BITS / 2; m++) {
    weak(0, m);
    weak(1, m + BITS / 2);
    emit(get(SUM), lane(m), [F64_ADD], set(SUM));
  }
  for (let m = BITS / 2; m < BITS; m++) emit(get(SUM), lane(m), [F64_ADD], set(SUM));
  emit(get(SUM), f64c(BITS), [F64_DIV], get(ALPHA), [F64_MUL], set(THR));
  emit(get(THR), simd(F64X2_SPLAT), set(D));
  for (let k = 0; k < pairs; k++) twoBits(STRONG, [...get(AV + k), ...get(D), ...simd(F64X2_GE)]);
  // No strong bits unless the threshold is positive (all-zero differences would otherwise all be strong).
  emit(get(STRONG), i32c(0), get(THR), f64c(0), [F64_GT], [SELECT], set(STRONG));
  const st = (off: number, value: number[]) => emit(i32c(0), value, [I32_STORE, 2, ...uleb(resAt + off)]);
  st(0, get(BITSL));
  st(4, [
    ...get(IDX[0]!),
    ...get(IDX[1]!),
    ...i32c(4),
    I32_SHL,
    I32_OR,
    ...get(IDX[2]!),
    ...i32c(8),
    I32_SHL,
    I32_OR,
    ...get(IDX[3]!),
    ...i32c(12),
    I32_SHL,
    I32_OR,
  ]);
  st(8, get(STRONG));
  // This frame's energies become the next one's previous (34 values: the 34th slot is spare).
  for (let k = 0; k < (BITS + 2) / 2; k++) {
    emit(i32c(0), at0(curAt + 16 * k), simd(0x0b, 3, ...uleb(prevAt + 16 * k)));
  }
  code.push(0x0b);
  return [4, 9, I32, 5, I64, 2, F64, 2 + pairs, V128, ...code];
}

function kernelBytes(half: number): Uint8Array<ArrayBuffer> {
  const IM = 4 * half;
  const L = layoutOf(half);

  // One radix-2² pass of quarter q, lanes j .. j + 3 (q ≥ 4), as fft_simd.ts's.
  const fusedStage = (q: number, tw: number): number[] => {
    const QB = 4 * q, BIG = 4 * QB;
    const J = 0, A = 1;
    const R = radix22Locals(2);
    const { W1R, W1I, W2R, W2I, AR, AI, BR, BI, CR, CI, DR, DI } = R;
    const ld = (k: number, off: number, dst: number) => [...get(A), ...load(off + k * QB), ...set(dst)];
    const st = (k: number, off: number, e: Expr) => [...get(A), ...emit(e), ...store(off + k * QB)];
    const tl = (off: number, dst: number) => [...get(J), ...load(tw + off), ...set(dst)];
    const body = [
      ...i32c(0),
      ...set(J),
      LOOP,
      VOID,
      ...tl(0, W1R),
      ...tl(QB, W1I),
      ...tl(2 * QB, W2R),
      ...tl(3 * QB, W2I),
      ...get(J),
      ...set(A),
      LOOP,
      VOID,
      ...ld(0, 0, AR),
      ...ld(0, IM, AI),
      ...ld(1, 0, BR),
      ...ld(1, IM, BI),
      ...ld(2, 0, CR),
      ...ld(2, IM, CI),
      ...ld(3, 0, DR),
      ...ld(3, IM, DI),
      ...radix22Butterfly({ add, sub, mul, let_ }, R, st, IM),
      ...get(A),
      ...i32c(BIG),
      ADD,
      ...tee(A),
      ...i32c(IM),
      LTU,
      BRIF,
      0,
      END,
      ...get(J),
      ...i32c(16),
      ADD,
      ...tee(J),
      ...i32c(QB),
      LTU,
      BRIF,
      0,
      END,
      END,
    ];
    return [2, 2, I32, 21, V128, ...body];
  };

  // last: butterflies j .. j + 3 of the radix-2 pass of length half.
  const P = 0;
  const [WR, WI, QR, QI, XR, XI, PR, PI] = [1, 2, 3, 4, 5, 6, 7, 8];
  const H = 2 * half; // byte offset of j + half/2
  const lp = (off: number, dst: number) => [...get(P), ...load(off), ...set(dst)];
  const sp = (off: number, e: Expr) => [...get(P), ...emit(e), ...store(off)];
  const last = [
    ...i32c(0),
    ...set(P),
    LOOP,
    VOID,
    ...lp(L.cosAt, WR),
    ...lp(L.sinAt, WI),
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
  const stageBodies = L.stages.map(([q, tw]) => fusedStage(q, tw));
  if (L.hasLast) stageBodies.push([2, 1, I32, 8, V128, ...last]);

  // input: per group of four inputs a, b, c, d (re, im each): V1 = (a, c), V2 = (b, d) times the window, then
  // s0, s1 = V1 + V2 and d0, d1 = V1 − V2 and the radix-4 outputs shuffled into re[i..i+4), im[i..i+4).
  const BASE = 0; // i32 param: byte offset of the frame's first sample from samplesAt (a run's frame)
  const O = 1; // i32 local: byte offset of the group in re (half of it in the window)
  const RB = 2; // i32 local: byte offset of input a's samples; b, c, d's are half/2, half/4, 3·half/4 inputs on
  const [V1, V2, SS, DD, E, F, PP, MM] = [3, 4, 5, 6, 7, 8, 9, 10];
  /** (x, x', y, y') for inputs k and k + 2 of the group, times the window (at 2·O + winOff). */
  const vecOf = (k: number, winOff: number, dst: number) => [
    // v128.load32_lane needs the address below the vector on the stack, so the vector goes to a local first.
    ...get(RB),
    ...simd(0x5c, 2, ...uleb(L.samplesAt + 2 * half * k)),
    ...set(dst),
    ...get(RB),
    ...get(dst),
    ...simd(0x56, 2, ...uleb(L.samplesAt + 2 * half * k + half), 1), // v128.load32_lane into lane 1
    ...simd(0xa7), // i32x4.extend_low_i16x8_s
    ...simd(0xfa), // f32x4.convert_i32x4_s
    ...get(O),
    0x41,
    1, // i32.const 1
    SHL,
    ...load(L.windowAt + winOff),
    ...simd(F32X4_MUL),
    ...set(dst),
  ];
  const input = [
    ...i32c(0),
    ...set(O),
    LOOP,
    VOID,
    ...get(O),
    ...i32c(2),
    0x76, // i32.shr_u: the group's entry in the rev table
    I32_LOAD,
    2,
    ...uleb(L.revAt),
    ...get(BASE),
    ADD,
    ...set(RB),
    ...vecOf(0, 0, V1),
    ...vecOf(1, 16, V2),
    ...let_(SS, add(V1, V2)),
    ...let_(DD, sub(V1, V2)),
    // E = (s0r, s0i, d0r, d0i), F = (s1r, s1i, d1i, d1r): E + F = (re[i], im[i], re[i+1], im[i+3]),
    // E − F = (re[i+2], im[i+2], re[i+3], im[i+1]).
    ...get(SS),
    ...get(DD),
    ...shuffle32(0, 1, 4, 5),
    ...set(E),
    ...get(SS),
    ...get(DD),
    ...shuffle32(2, 3, 7, 6),
    ...set(F),
    ...let_(PP, add(E, F)),
    ...let_(MM, sub(E, F)),
    ...get(O),
    ...get(PP),
    ...get(MM),
    ...shuffle32(0, 2, 4, 6),
    ...store(0),
    ...get(O),
    ...get(PP),
    ...get(MM),
    ...shuffle32(1, 7, 5, 3),
    ...store(IM),
    ...get(O),
    ...i32c(16),
    ADD,
    ...tee(O),
    ...i32c(IM),
    LTU,
    BRIF,
    0,
    END,
    END,
  ];
  const inputBody = [2, 2, I32, 8, V128, ...input];

  // split: bins k0 .. k0 + 4·quads − 1, four a turn; conj Z[half − k] from the four below half − k, reversed.
  const K0 = 0, QUADS = 1, PB = 2, QP = 3;
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
  const reversed = (off: number, dst: number) => [
    ...get(QP),
    ...load(off),
    ...get(QP),
    ...load(off),
    ...shuffle32(3, 2, 1, 0),
    ...set(dst),
  ];
  const atP = (off: number, dst: number) => [...get(PB), ...load(off), ...set(dst)];
  const split = [
    ...simd(0x0c, ...new Uint8Array(Float32Array.of(0.5, 0.5, 0.5, 0.5).buffer)),
    ...set(HALF),
    ...get(K0),
    ...i32c(2),
    SHL,
    ...set(PB),
    ...i32c(half - 3),
    ...get(K0),
    I32_SUB,
    ...i32c(2),
    SHL,
    ...set(QP),
    LOOP,
    VOID,
    ...atP(0, ZR),
    ...atP(IM, ZI),
    ...reversed(0, YR),
    ...reversed(IM, YI),
    ...get(YI),
    ...simd(0xe1), // f32x4.neg
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
    I32_SUB,
    ...set(QP),
    ...get(QUADS),
    ...i32c(1),
    I32_SUB,
    ...tee(QUADS),
    BRIF,
    0,
    END,
    END,
  ];
  const splitBody = [2, 2, I32, 15, V128, ...split];

  // bands: as fft_simd.ts's, over float32 powers promoted to float64.
  const NB = 0, B4 = 1, I = 2, END_ = 3, EN = 4, TOT = 5;
  const F64_STORE = 0x39,
    F32_LOAD = 0x2a,
    F64_LOAD = 0x2b,
    F64_PROMOTE = 0xbb,
    F64_ADD = 0xa0,
    F64_MUL = 0xa2;
  const GE_S = 0x4e, LT_S = 0x48, BLOCK = 0x02;
  const f64zero = [0x44, 0, 0, 0, 0, 0, 0, 0, 0];
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
    ...set(EN),
    BLOCK,
    VOID,
    ...get(I),
    ...get(END_),
    GE_S,
    BRIF,
    0,
    LOOP,
    VOID,
    ...get(EN),
    ...get(I),
    ...i32c(2),
    SHL,
    I32_LOAD,
    2,
    ...uleb(L.bandBinAt),
    ...i32c(2),
    SHL,
    F32_LOAD,
    2,
    ...uleb(L.outAt),
    F64_PROMOTE,
    ...get(I),
    ...i32c(3),
    SHL,
    F64_LOAD,
    3,
    ...uleb(L.bandWAt),
    F64_MUL,
    F64_ADD,
    ...set(EN),
    ...get(I),
    ...i32c(1),
    ADD,
    ...tee(I),
    ...get(END_),
    LT_S,
    BRIF,
    0,
    END,
    END,
    ...get(B4),
    ...i32c(1),
    SHL,
    ...get(EN),
    F64_STORE,
    3,
    ...uleb(L.bandOutAt),
    ...get(TOT),
    ...get(EN),
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
    BRIF,
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

  const CALL = 0x10;
  const NS = stageBodies.length;
  const [INPUT, SPLIT, BANDS, FRAME, FP, FRAME_FP, RUN_FP, PAIRS_FP] = [
    NS,
    NS + 1,
    NS + 2,
    NS + 3,
    NS + 4,
    NS + 5,
    NS + 6,
    NS + 7,
  ];
  /** A frame whose samples start `base` bytes into the samples, bins k0 .. k0 + 4·quads − 1, nb bands. */
  const frameAt = (base: number[], k0: number[], quads: number[], nb: number[]) => [
    ...base,
    ...[CALL, ...uleb(INPUT)],
    ...stageBodies.flatMap((_, i) => [CALL, ...uleb(i)]),
    ...k0,
    ...quads,
    ...[CALL, ...uleb(SPLIT)],
    ...nb,
    ...[CALL, ...uleb(BANDS)],
  ];
  const frame = [...frameAt(i32c(0), get(0), get(1), get(2)), END];
  // The frame and its sub-fingerprint (a fingerprint frame) in one call.
  const frameFp = [...get(0), ...get(1), ...get(2), CALL, ...uleb(FRAME), ...get(3), CALL, ...uleb(FP), END];
  const fpBody = subFingerprintBody(L.bandOutAt, L.prevAt, L.resAt);
  // A run of fingerprint frames (count ≥ 1, `stride` bytes apart in the samples), each as frameFp, its results
  // copied to the run's columns: the previous frame's energies stay where frameFp leaves them.
  const [COUNT, STRIDE, RK0, RQUADS, RALPHA, FI, FB] = [0, 1, 2, 3, 4, 5, 6];
  const I32_STORE16 = 0x3b;
  const at = (shift: number) => [...get(FI), ...i32c(shift), SHL];
  const runFp = [
    ...i32c(0),
    ...set(FI),
    ...i32c(0),
    ...set(FB),
    LOOP,
    VOID,
    ...frameAt(get(FB), get(RK0), get(RQUADS), i32c(SUBFP_BANDS)),
    ...get(RALPHA),
    ...[CALL, ...uleb(FP)],
    ...at(2),
    ...i32c(0),
    ...[I32_LOAD, 2, ...uleb(L.resAt)],
    ...[I32_STORE, 2, ...uleb(L.runBitsAt)],
    ...at(1),
    ...i32c(0),
    ...[I32_LOAD, 2, ...uleb(L.resAt + 4)],
    ...[I32_STORE16, 1, ...uleb(L.runWeakAt)],
    ...at(2),
    ...i32c(0),
    ...[I32_LOAD, 2, ...uleb(L.resAt + 8)],
    ...[I32_STORE, 2, ...uleb(L.runStrongAt)],
    ...at(3),
    ...i32c(0),
    ...[F64_LOAD, 3, ...uleb(L.bandOutAt + 8 * SUBFP_BANDS)],
    ...[F64_STORE, 3, ...uleb(L.runTotalAt)],
    ...get(FB),
    ...get(STRIDE),
    ADD,
    ...set(FB),
    ...get(FI),
    ...i32c(1),
    ADD,
    ...tee(FI),
    ...get(COUNT),
    LTU,
    BRIF,
    0,
    END,
    END,
  ];
  // Pairs of frames (count ≥ 1): pair p's second frame starts pairAt[p] samples into the samples, its first
  // `stride` bytes before; the first frame's energies go to the previous frame's slot (as the sub-fingerprint
  // leaves them, without its bits), then the second frame and its sub-fingerprint, whose bits go to runBits[p].
  const PAIR = 5;
  const pairBase = [...get(PAIR), ...i32c(2), SHL, I32_LOAD, 2, ...uleb(L.pairAtAt), ...i32c(1), SHL];
  const pairsFp = [
    ...i32c(0),
    ...set(PAIR),
    LOOP,
    VOID,
    ...frameAt([...pairBase, ...get(STRIDE), I32_SUB], get(RK0), get(RQUADS), i32c(SUBFP_BANDS)),
    ...Array.from({ length: (SUBFP_BANDS + 1) / 2 }, (_, k) => [
      ...i32c(0),
      ...i32c(0),
      ...simd(0x00, 3, ...uleb(L.bandOutAt + 16 * k)),
      ...simd(0x0b, 3, ...uleb(L.prevAt + 16 * k)),
    ]).flat(),
    ...frameAt(pairBase, get(RK0), get(RQUADS), i32c(SUBFP_BANDS)),
    ...get(RALPHA),
    ...[CALL, ...uleb(FP)],
    ...get(PAIR),
    ...i32c(2),
    SHL,
    ...i32c(0),
    ...[I32_LOAD, 2, ...uleb(L.resAt)],
    ...[I32_STORE, 2, ...uleb(L.runBitsAt)],
    ...get(PAIR),
    ...i32c(1),
    ADD,
    ...tee(PAIR),
    ...get(COUNT),
    LTU,
    BRIF,
    0,
    END,
    END,
  ];
  // Types: 0 (i32, i32) → (), 1 () → (), 2 (i32) → (), 3 (i32, i32, i32) → (), 4 (f64) → (),
  // 5 (i32, i32, i32, f64) → (), 6 (i32, i32, i32, i32, f64) → ().
  const types = [...stageBodies.map(() => 1), 2, 0, 2, 3, 4, 5, 6, 6];
  const bodies = [
    ...stageBodies,
    inputBody,
    splitBody,
    bandsBody,
    [0, ...frame],
    fpBody,
    [0, ...frameFp],
    [1, 2, I32, ...runFp],
    [1, 1, I32, ...pairsFp],
  ];
  return new Uint8Array([
    ...WASM_HEADER,
    ...section(1, [
      7,
      ...[0x60, 2, I32, I32, 0, 0x60, 0, 0, 0x60, 1, I32, 0, 0x60, 3, I32, I32, I32, 0],
      ...[0x60, 1, F64, 0, 0x60, 4, I32, I32, I32, F64, 0, 0x60, 5, I32, I32, I32, I32, F64, 0],
    ]),
    ...section(2, [1, ...name("m"), ...name("mem"), 0x02, 0x00, 1]),
    ...section(3, [...uleb(types.length), ...types]),
    ...section(7, [
      4,
      ...name("frame"),
      0x00,
      ...uleb(FRAME),
      ...name("frameFp"),
      0x00,
      ...uleb(FRAME_FP),
      ...name("runFp"),
      0x00,
      ...uleb(RUN_FP),
      ...name("pairsFp"),
      0x00,
      ...uleb(PAIRS_FP),
    ]),
    ...section(10, [...uleb(bodies.length), ...bodies.flatMap((b) => [...uleb(b.length), ...b])]),
  ]);
}

/**
 * The float32 whole-frame kernel for one half-size (≥ 16, power of two): copy a frame's Int16 samples to
 * {@link samples}, then {@link frame}; the band energies (float64 sums of float32 powers) are in {@link bandOut}.
 */
export class SimdFrame32 {
  /** The frame's samples. */
  readonly samples: Int16Array;
  /** Energy per band, then their total. */
  readonly bandOut: Float64Array;
  /** The previous frame's band energies, for {@link frameBits}. */
  readonly prevBands: Float64Array;
  /** {@link frameBits}' sub-fingerprint: bits, packed weak-bit indices, strong bits. */
  readonly bits: Uint32Array;
  /** The samples of a run of frames for {@link frameBitsRun} (frame f from sample f·hop): {@link samples} and on. */
  readonly span: Int16Array;
  /** {@link frameBitsRun}'s frame f: bits, packed weak-bit indices, strong bits, and the total of its bands. */
  readonly runBits: Uint32Array;
  readonly runWeak: Uint16Array;
  readonly runStrong: Uint32Array;
  readonly runTotal: Float64Array;
  /** The samples of {@link framePairs} ({@link span} and on), and where each pair's second frame starts in them. */
  readonly pairSpan: Int16Array;
  readonly pairAt: Int32Array;
  readonly #frame: (k0: number, quads: number, nb: number) => void;
  readonly #frameFp: (k0: number, quads: number, nb: number, strongAlpha: number) => void;
  readonly #runFp: (count: number, stride: number, k0: number, quads: number, strongAlpha: number) => void;
  readonly #pairsFp: (count: number, stride: number, k0: number, quads: number, strongAlpha: number) => void;
  readonly #layout: Layout32;
  readonly #half: number;
  readonly #memory: WebAssembly.Memory;
  readonly #rev: Uint32Array;
  readonly #windowView: Float32Array;
  #window: Float64Array | undefined;
  #bands: BandTable | undefined;

  /** Tables as {@link SimdStages}' (float64, rounded to float32 here). */
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
    this.#half = half;
    const memory = new WebAssembly.Memory({ initial: Math.ceil(L.bytes / 65536) });
    const instance = new WebAssembly.Instance(new WebAssembly.Module(kernelBytes(half)), {
      m: { mem: memory },
    });
    this.#frame = instance.exports.frame as (k0: number, quads: number, nb: number) => void;
    this.#frameFp = instance.exports.frameFp as (k0: number, quads: number, nb: number, a: number) => void;
    this.#runFp = instance.exports.runFp as (
      n: number,
      stride: number,
      k0: number,
      quads: number,
      a: number,
    ) => void;
    this.#pairsFp = instance.exports.pairsFp as (
      n: number,
      stride: number,
      k0: number,
      quads: number,
      a: number,
    ) => void;
    this.#memory = memory;
    const f32 = new Float32Array(memory.buffer);
    this.samples = new Int16Array(memory.buffer, L.samplesAt, 2 * half);
    this.span = new Int16Array(memory.buffer, L.samplesAt, SPAN_FRAMES * 2 * half);
    this.runBits = new Uint32Array(memory.buffer, L.runBitsAt, MAX_RUN);
    this.runWeak = new Uint16Array(memory.buffer, L.runWeakAt, MAX_RUN);
    this.runStrong = new Uint32Array(memory.buffer, L.runStrongAt, MAX_RUN);
    this.runTotal = new Float64Array(memory.buffer, L.runTotalAt, MAX_RUN);
    this.pairSpan = new Int16Array(memory.buffer, L.samplesAt, PAIR_SPAN_FRAMES * 2 * half);
    this.pairAt = new Int32Array(memory.buffer, L.pairAtAt, MAX_RUN);
    this.#windowView = new Float32Array(memory.buffer, L.windowAt, 2 * half);
    // Per group of four inputs, the byte offset of its first input's samples (the others' follow from it).
    const revView = new Int32Array(memory.buffer, L.revAt, half >> 2);
    for (let g = 0; g < half >> 2; g++) revView[g] = rev[4 * g]! << 2;
    this.#rev = rev.slice();
    for (const [q, at] of L.stages) {
      const step1 = half / (2 * q), step2 = step1 >> 1;
      const o = at / 4;
      for (let j = 0; j < q; j++) {
        f32[o + j] = cos[j * step1]!;
        f32[o + q + j] = sin[j * step1]!;
        f32[o + 2 * q + j] = cos[j * step2]!;
        f32[o + 3 * q + j] = sin[j * step2]!;
      }
    }
    f32.set(cos.subarray(0, half >> 1), L.cosAt / 4);
    f32.set(sin.subarray(0, half >> 1), L.sinAt / 4);
    f32.set(splitCos.subarray(0, half + 1), L.splitCosAt / 4);
    f32.set(splitSin.subarray(0, half + 1), L.splitSinAt / 4);
    this.bandOut = new Float64Array(memory.buffer, L.bandOutAt, MAX_BANDS + 1);
    this.prevBands = new Float64Array(memory.buffer, L.prevAt, SUBFP_BANDS);
    this.bits = new Uint32Array(memory.buffer, L.resAt, 3);
  }

  /** True if {@link frame} can take `table` and bins k0 .. k0 + 4·quads − 1 (see fft_simd.ts's `fits`). */
  fits(table: BandTable, k0: number, quads: number): boolean {
    const nb = table.start.length - 1;
    const entries = table.start[nb]!;
    if (nb < 1 || nb > MAX_BANDS || entries > maxBandEntries(this.#half) || table.bin.length < entries) {
      return false;
    }
    if (k0 < 1 || quads < 1 || k0 + 4 * quads > this.#half) return false;
    for (let i = 0; i < entries; i++) {
      if (table.bin[i]! < k0 || table.bin[i]! >= k0 + 4 * quads) return false;
    }
    return true;
  }

  /** Window, FFT, the split of bins k0 .. k0 + 4·quads − 1 and the band sums of `table`, into {@link bandOut}. */
  frame(window: Float64Array, k0: number, quads: number, table: BandTable): void {
    this.#prepare(window, table);
    this.#frame(k0, quads, table.start.length - 1);
  }

  /**
   * {@link frame}, then the sub-fingerprint of its band energies over {@link prevBands} into {@link bits}, as
   * fingerprint.ts's `subFingerprint` (see subFingerprintBody), and those energies into {@link prevBands} for the next
   * frame. `table` must have 33 bands.
   */
  frameBits(window: Float64Array, k0: number, quads: number, table: BandTable, strongAlpha: number): void {
    this.#prepare(window, table);
    this.#frameFp(k0, quads, SUBFP_BANDS, strongAlpha);
  }

  /** Frames of `hop` samples (1 ≤ hop ≤ frame) one {@link frameBitsRun} takes at most: its span's and columns' room. */
  maxRun(hop: number): number {
    const frames = Math.floor((this.span.length - 2 * this.#half) / hop) + 1;
    return frames < MAX_RUN ? frames : MAX_RUN;
  }

  /**
   * {@link frameBits} for `count` frames (1 ≤ count ≤ {@link maxRun}) whose samples start `hop` samples apart in
   * {@link span}, one after the other over {@link prevBands} (which ends with the last frame's energies): frame
   * f's results in runBits[f], runWeak[f], runStrong[f] and runTotal[f] (its bands' total). The same values as
   * `count` calls of frameBits, in one call from JS.
   */
  frameBitsRun(
    window: Float64Array,
    k0: number,
    quads: number,
    table: BandTable,
    strongAlpha: number,
    count: number,
    hop: number,
  ): void {
    if (count < 1 || count > MAX_RUN || hop < 1 || (count - 1) * hop + 2 * this.#half > this.span.length) {
      throw new RangeError(`frameBitsRun: ${count} frames`);
    }
    this.#prepare(window, table);
    this.#runFp(count, 2 * hop, k0, quads, strongAlpha);
  }

  /**
   * For `count` pairs of frames (1 ≤ count ≤ {@link MAX_RUN}) in {@link pairSpan}, pair p's second frame from
   * sample pairAt[p] and its first `hop` samples before: the second's sub-fingerprint over the first into
   * runBits[p] (the bits {@link frameBits} gives it with the first's energies in {@link prevBands}). One call
   * from JS for frames anywhere in the span (an aligned grid's sampled frames); {@link prevBands} is scratch.
   */
  framePairs(
    window: Float64Array,
    k0: number,
    quads: number,
    table: BandTable,
    strongAlpha: number,
    count: number,
    hop: number,
  ): void {
    if (count < 1 || count > MAX_RUN || hop < 1) throw new RangeError(`framePairs: ${count} pairs`);
    const at = this.pairAt, last = this.pairSpan.length - 2 * this.#half;
    for (let p = 0; p < count; p++) {
      if (!(at[p]! >= hop && at[p]! <= last)) throw new RangeError(`framePairs: pair ${p} at ${at[p]}`);
    }
    this.#prepare(window, table);
    this.#pairsFp(count, 2 * hop, k0, quads, strongAlpha);
  }

  /** The window and band table into the kernel's memory, when they are not the last ones given. */
  #prepare(window: Float64Array, table: BandTable): void {
    if (window !== this.#window) {
      const wv = this.#windowView, rev = this.#rev;
      // Group g (inputs 4g .. 4g + 3 = a, b, c, d): (a, a', c, c'), then (b, b', d, d').
      for (let g = 0; g < rev.length >> 2; g++) {
        const [a, b, c, d] = [
          rev[4 * g]! << 1,
          rev[4 * g + 1]! << 1,
          rev[4 * g + 2]! << 1,
          rev[4 * g + 3]! << 1,
        ];
        wv.set([window[a]!, window[a + 1]!, window[c]!, window[c + 1]!], 8 * g);
        wv.set([window[b]!, window[b + 1]!, window[d]!, window[d + 1]!], 8 * g + 4);
      }
      this.#window = window;
    }
    if (table !== this.#bands) {
      const L = this.#layout, buf = this.#memory.buffer;
      const nb = table.start.length - 1, entries = table.start[nb]!;
      new Int32Array(buf, L.bandStartAt, nb + 1).set(table.start);
      new Int32Array(buf, L.bandBinAt, entries).set(table.bin.subarray(0, entries));
      new Float64Array(buf, L.bandWAt, entries).set(table.weight.subarray(0, entries));
      this.#bands = table;
    }
  }
}

/**
 * A float32 kernel of its own for real frames of `size` samples (a power of two ≥ 32), with the tables
 * fft.ts's RealFft gives its kernel (the same formulas, so the same values), or null where WebAssembly SIMD does
 * not run. For a caller that keeps frames in its scratch while RealFft's kernel serves the streams.
 */
export function ownFrame32(size: number): SimdFrame32 | null {
  const half = size >> 1, bits = Math.log2(half);
  const rev = new Uint32Array(half);
  for (let i = 0; i < half; i++) {
    let r = 0;
    for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
    rev[i] = r;
  }
  const cos = new Float64Array(half >> 1), sin = new Float64Array(half >> 1);
  for (let k = 0; k < half >> 1; k++) {
    cos[k] = Math.cos((-2 * Math.PI * k) / half);
    sin[k] = Math.sin((-2 * Math.PI * k) / half);
  }
  const splitCos = new Float64Array(half + 1), splitSin = new Float64Array(half + 1);
  for (let k = 0; k <= half; k++) {
    splitCos[k] = Math.cos((-2 * Math.PI * k) / size);
    splitSin[k] = Math.sin((-2 * Math.PI * k) / size);
  }
  try {
    return new SimdFrame32(half, cos, sin, rev, splitCos, splitSin);
  } catch {
    return null;
  }
}
