/**
 * The envelope search's window levels (level_envelope.ts: `10·log10(Σ16 squares / 16 + 1e-2)` for every
 * window of a span) in a WebAssembly SIMD kernel, two windows per instruction (f64x2), bit for bit the numbers
 * the JS gives.
 *
 * Why: a search computes ~2,500–4,100 levels (a window at every sample of its span), one `Math.log10` each, a
 * C call from optimised JS of ~18 ns: ~60 µs of a ~300 µs alignment, the largest item of its profile. The
 * levels are correlated as they are, so they must be the same doubles. V8's `Math.log10` is fdlibm's (its
 * ieee754.cc: `log10` reduces x to [0.5, 2) and calls `log`); this kernel does those operations, in the same
 * order, in float64 lanes, so each lane rounds as the C does (no fused multiply-add in WebAssembly). Its
 * branches become selects: the `k = 0` forms equal the general ones with `dk = 0` to the bit (`a − b` and
 * `0 − (b − a)` round alike, zeros' signs vanish in the sums after them), so only the two main forms and the
 * `|f| < 2^-20` one are computed and chosen between. (That one never changes a level here: checked over every
 * sum of squares that takes it; it keeps the kernel fdlibm's for any input ≥ 0.01.) The inputs are ≥ 0.01 and
 * finite (16 squares of Int16 values), so fdlibm's branches for zero, subnormals, negatives, infinities and NaN
 * never apply. Checked offline (the same operations in JS against `Math.log10`, 49 million inputs: every sum
 * of squares below 2·10^7, 2·10^7 random ones up to 2^34, random doubles) and by
 * tests/audio_align_level_db_test.ts (the kernel against the JS levels, on audio and near powers of two).
 *
 * Memory (one kernel for the process: JS runs one call at a time): the Int16 samples at byte 0
 * ({@link LEVEL_MAX_WINDOWS} + 15 of them), the squares' running sums (float64) from PREFIX_AT, the levels
 * (float64) from OUT_AT.
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

/** Samples per window (level_envelope.ts ENV_WINDOW). */
const WINDOW = 16;
/** Windows one call computes at most (a caller's longer spans go in pieces). */
export const LEVEL_MAX_WINDOWS = 8192;
const PREFIX_AT = 2 * (LEVEL_MAX_WINDOWS + WINDOW);
/** Running sums: one more than the samples, and a spare pair's reach for an odd count's last lane. */
const OUT_AT = PREFIX_AT + 8 * (LEVEL_MAX_WINDOWS + 2 * WINDOW);
const BYTES = OUT_AT + 8 * (LEVEL_MAX_WINDOWS + 2);

const I32 = 0x7f, F64 = 0x7c, V128 = 0x7b;
const [LOOP, END, BRIF, VOID] = [0x03, 0x0b, 0x0d, 0x40];
const [I32ADD, I32SHL, I32LTU, I32CONST, F64CONST, I64CONST] = [0x6a, 0x74, 0x49, 0x41, 0x44, 0x42];
const [I32LOAD16S, F64STORE, F64ADD, F64MUL, F64CONVERTI32S] = [0x2e, 0x39, 0xa0, 0xa2, 0xb7];
const [V_LOAD, V_STORE, SHUFFLE, I64X2_SPLAT, F64X2_SPLAT] = [0x00, 0x0b, 0x0d, 0x12, 0x14];
const [V_AND, V_OR, V_XOR, V_BITSELECT] = [0x4e, 0x50, 0x51, 0x52];
const [I64X2_SHL, I64X2_SHR_U, I64X2_ADD, I64X2_SUB, I64X2_LT_S, I64X2_GT_S] = [
  0xcb,
  0xcd,
  0xce,
  0xd1,
  0xd8,
  0xd9,
];
const [F64X2_ADD, F64X2_SUB, F64X2_MUL, F64X2_DIV, F64X2_CONVERT_LOW_I32X4_S] = [
  0xf0,
  0xf1,
  0xf2,
  0xf3,
  0xfe,
];

/** fdlibm's constants (V8 ieee754.cc `log` and `log10`). */
const LN2_HI = 6.93147180369123816490e-01, LN2_LO = 1.90821492927058770002e-10;
const LG = [
  6.666666666666735130e-01,
  3.999999999940941908e-01,
  2.857142874366239149e-01,
  2.222219843214978396e-01,
  1.818357216161805012e-01,
  1.531383769920937332e-01,
  1.479819860511658591e-01,
];
const IVLN10 = 4.34294481903251816668e-01;
const LOG10_2HI = 3.01029995663611771306e-01, LOG10_2LO = 3.69423907715893078616e-13;

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

/** An expression: the code that pushes its value. */
type Code = number[];
const f64s = (
  v: number,
): Code => [F64CONST, ...new Uint8Array(Float64Array.of(v).buffer), ...simd(F64X2_SPLAT)];
const i64s = (v: bigint): Code => [I64CONST, ...sleb64(v), ...simd(I64X2_SPLAT)];
const op = (code: number) => (a: Code, b: Code): Code => [...a, ...b, ...simd(code)];
const [fadd, fsub, fmul, fdiv] = [op(F64X2_ADD), op(F64X2_SUB), op(F64X2_MUL), op(F64X2_DIV)];
const [iadd, isub, and, or, xor, ltS, gtS] = [
  op(I64X2_ADD),
  op(I64X2_SUB),
  op(V_AND),
  op(V_OR),
  op(V_XOR),
  op(I64X2_LT_S),
  op(I64X2_GT_S),
];
const shl = (a: Code, n: number): Code => [...a, I32CONST, ...sleb(n), ...simd(I64X2_SHL)];
const shrU = (a: Code, n: number): Code => [...a, I32CONST, ...sleb(n), ...simd(I64X2_SHR_U)];
/** `c ? a : b` lane by lane (c all ones or all zeros). */
const select = (a: Code, b: Code, c: Code): Code => [...a, ...b, ...c, ...simd(V_BITSELECT)];
/** Both int64 lanes' low halves (small integers) as float64. */
const toF64 = (a: Code): Code => [
  ...a,
  ...a,
  ...simd(SHUFFLE, 0, 1, 2, 3, 8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11),
  ...simd(F64X2_CONVERT_LOW_I32X4_S),
];

/**
 * (func (export "levels") (param $n i32)): for the n ≥ 1 windows of the samples at byte 0, the running sums of
 * their squares from PREFIX_AT (from 0, in sample order: integers, exact), then level w = 10·log10((P[w + 16] −
 * P[w]) / 16 + 1e-2) at OUT_AT + 8w, two at a time (an odd n's spare lane reads a stale sum: its level is not
 * read).
 */
function kernelBytes(): Uint8Array<ArrayBuffer> {
  const [N, T, END_, ACC, V] = [0, 1, 2, 3, 4];
  const [BITS, HX, HM, I0, II, F, DK, Y, S, Z, W, R, HF, TMP] = [
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
  const L = get;
  const let_ = (l: number, e: Code): Code => [...e, ...set(l)];
  const prefix: Code = [
    ...[F64CONST, 0, 0, 0, 0, 0, 0, 0, 0],
    ...set(ACC),
    ...[I32CONST, 0, F64CONST, 0, 0, 0, 0, 0, 0, 0, 0, F64STORE, 3, ...uleb(PREFIX_AT)],
    ...[I32CONST, 0],
    ...set(T),
    ...get(N),
    ...[I32CONST, WINDOW - 1, I32ADD],
    ...set(END_),
    ...[LOOP, VOID],
    ...get(T),
    ...[I32CONST, 3, I32SHL],
    ...get(ACC),
    ...get(T),
    ...[I32CONST, 1, I32SHL, I32LOAD16S, 1, 0, F64CONVERTI32S],
    ...tee(V),
    ...get(V),
    F64MUL,
    F64ADD,
    ...tee(ACC),
    ...[F64STORE, 3, ...uleb(PREFIX_AT + 8)],
    ...get(T),
    ...[I32CONST, 1, I32ADD],
    ...tee(T),
    ...get(END_),
    ...[I32LTU, BRIF, 0, END],
  ];
  const at = (offset: number): Code => [...get(T), ...simd(V_LOAD, 3, ...uleb(offset))];
  // x = (P[w + 16] − P[w]) / 16 + 1e-2; the division by 16 is exact, as a product by 1/16.
  const x = fadd(fmul(fsub(at(PREFIX_AT + 8 * WINDOW), at(PREFIX_AT)), f64s(1 / WINDOW)), f64s(1e-2));
  // log10's reduction: y = k0 + (k0 < 0), the mantissa's high word hm; log's: x2 = 1 + f in [sqrt(2)/2, sqrt(2)),
  // k = (i >> 20) − (k0 < 0).
  const k0 = isub(shrU(L(HX), 20), i64s(1023n));
  const x2 = or(and(L(BITS), i64s(0x000fffffffffffffn)), shl(xor(L(II), i64s(0x3ff00000n)), 32));
  const dkLn2Hi = fmul(L(DK), f64s(LN2_HI)), dkLn2Lo = fmul(L(DK), f64s(LN2_LO));
  // The three forms of log's result (fdlibm's branches) and the choice between them.
  const main1 = fsub(dkLn2Hi, fsub(fsub(L(HF), fadd(fmul(L(S), fadd(L(HF), L(R))), dkLn2Lo)), L(F)));
  const main2 = fsub(dkLn2Hi, fsub(fsub(fmul(L(S), fsub(L(F), L(R))), dkLn2Lo), L(F)));
  const tinyR = fmul(fmul(L(F), L(F)), fsub(f64s(0.5), fmul(f64s(0.33333333333333333), L(F))));
  const tiny = fsub(dkLn2Hi, fsub(fsub(tinyR, dkLn2Lo), L(F)));
  const isTiny = ltS(and(iadd(L(HM), i64s(2n)), i64s(0xfffffn)), i64s(3n));
  const isMain1 = gtS(or(isub(L(HM), i64s(0x6147an)), isub(i64s(0x6b851n), L(HM))), i64s(0n));
  const lg = select(tiny, select(main1, main2, isMain1), isTiny);
  const level = fmul(
    f64s(10),
    fadd(fadd(fmul(L(Y), f64s(LOG10_2LO)), fmul(f64s(IVLN10), lg)), fmul(L(Y), f64s(LOG10_2HI))),
  );
  const levels: Code = [
    ...[I32CONST, 0],
    ...set(T),
    ...get(N),
    ...[I32CONST, 3, I32SHL],
    ...set(END_),
    ...[LOOP, VOID],
    ...let_(BITS, x),
    ...let_(HX, shrU(L(BITS), 32)),
    ...let_(TMP, k0),
    ...let_(I0, shrU(L(TMP), 63)),
    ...let_(Y, toF64(iadd(L(TMP), L(I0)))),
    ...let_(HM, and(L(HX), i64s(0xfffffn))),
    ...let_(II, and(iadd(L(HM), i64s(0x95f64n)), i64s(0x100000n))),
    ...let_(DK, toF64(isub(shrU(L(II), 20), L(I0)))),
    ...let_(F, fsub(x2, f64s(1))),
    ...let_(S, fdiv(L(F), fadd(f64s(2), L(F)))),
    ...let_(Z, fmul(L(S), L(S))),
    ...let_(W, fmul(L(Z), L(Z))),
    // R = t2 + t1: t1 = w(Lg2 + w(Lg4 + w·Lg6)), t2 = z(Lg1 + w(Lg3 + w(Lg5 + w·Lg7))).
    ...let_(
      R,
      fadd(
        fmul(
          L(Z),
          fadd(
            f64s(LG[0]!),
            fmul(L(W), fadd(f64s(LG[2]!), fmul(L(W), fadd(f64s(LG[4]!), fmul(L(W), f64s(LG[6]!)))))),
          ),
        ),
        fmul(L(W), fadd(f64s(LG[1]!), fmul(L(W), fadd(f64s(LG[3]!), fmul(L(W), f64s(LG[5]!)))))),
      ),
    ),
    ...let_(HF, fmul(fmul(f64s(0.5), L(F)), L(F))),
    ...get(T),
    ...level,
    ...simd(V_STORE, 3, ...uleb(OUT_AT)),
    ...get(T),
    ...[I32CONST, 16, I32ADD],
    ...tee(T),
    ...get(END_),
    ...[I32LTU, BRIF, 0, END],
  ];
  const body = [...[3, 2, I32, 2, F64, 14, V128], ...prefix, ...levels, END];
  return new Uint8Array([
    ...WASM_HEADER,
    ...section(1, [1, 0x60, 1, I32, 0]),
    ...section(2, [1, ...name("m"), ...name("mem"), 0x02, 0x00, 1]),
    ...section(3, [1, 0]),
    ...section(7, [1, ...name("levels"), 0x00, 0]),
    ...section(10, [1, ...uleb(body.length), ...body]),
  ]);
}

/** The kernel and views of its memory. */
export interface LevelKernel {
  /** Levels of windows 0 .. n − 1 of {@link samples} into {@link out} (1 ≤ n ≤ {@link LEVEL_MAX_WINDOWS}). */
  levels(n: number): void;
  /** Samples (n + 15 for n windows). */
  readonly samples: Int16Array;
  /** Levels. */
  readonly out: Float64Array;
}

let kernel: LevelKernel | null | undefined;

/** The shared kernel, or undefined where WebAssembly SIMD is unavailable (callers keep their JS loops). */
export function levelKernel(): LevelKernel | undefined {
  if (kernel === undefined) {
    try {
      const memory = new WebAssembly.Memory({ initial: Math.ceil(BYTES / 65536) });
      const instance = new WebAssembly.Instance(new WebAssembly.Module(kernelBytes()), {
        m: { mem: memory },
      });
      const fn = instance.exports.levels as (n: number) => void;
      kernel = {
        levels: (n) => {
          if (!(n >= 1 && n <= LEVEL_MAX_WINDOWS)) throw new RangeError(`levels: ${n} windows`);
          fn(n);
        },
        samples: new Int16Array(memory.buffer, 0, LEVEL_MAX_WINDOWS + WINDOW - 1),
        out: new Float64Array(memory.buffer, OUT_AT, LEVEL_MAX_WINDOWS),
      };
    } catch {
      kernel = null;
    }
  }
  return kernel ?? undefined;
}
