/**
 * The sub-fingerprint of fingerprint.ts's `subFingerprint` as a WebAssembly function body, for the float32
 * whole-frame kernel (fft_simd32.ts) to run right after the band sums, in the same memory: the frame's band
 * energies are where the kernel left them, so a fingerprint frame is one call from JS.
 *
 * The same operations as the JS, so the same bits: each difference `(c[m] − c[m+1]) − (p[m] − p[m+1])` and its
 * sign and `|·|` two bits at a time in f64x2 lanes, the sum of the |differences| in bit order, the strong threshold
 * `(sum / 32) · strongAlpha`, and the two smallest |differences| per half kept with `select` rather than branches
 * (strictly smaller replaces, so the earlier index wins ties, as in the JS). Branches on those comparisons are a
 * coin toss: the JS spent most of its ~0.25 µs a frame (analyze's profile) on their mispredictions.
 * tests/audio_fft_f32_test.ts checks it against `subFingerprint`.
 * @module
 */

import { sleb, uleb } from "../../util/wasm_encode.ts";

const I32 = 0x7f, I64 = 0x7e, F64 = 0x7c, V128 = 0x7b;
const get = (l: number) => [0x20, ...uleb(l)];
const set = (l: number) => [0x21, ...uleb(l)];
const i32c = (v: number) => [0x41, ...sleb(v)];
const simd = (op: number, ...imm: number[]) => [0xfd, ...uleb(op), ...imm];
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
export function subFingerprintBody(curAt: number, prevAt: number, resAt: number): number[] {
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
