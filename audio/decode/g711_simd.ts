/**
 * sample_ring.ts's coding of a hot block at its law's own level (#encodeChecked) in a tiny WebAssembly SIMD
 * kernel: each of the block's {@link G711_BLOCK} ring values (G.711 linear / 4) to its μ-law or A-law code, and
 * whether every value is one of the law's own (given back exactly by its code), sixteen values a turn. The JS
 * looks each value up in a table, four a turn (~450 ns a block, 1.7% of analyze's profile); here the code is
 * computed branch-free (~80 ns a block, ~125 with the block copied in and its codes out).
 *
 * In ring units a μ-law magnitude is `((2m + 33) << e) − 33` and an A-law one `(2m + 33) << e` (segment e ≥ 1)
 * or `(2m + 1) << 1` (segment 0), m the 4-bit mantissa. So for `t = |v| + 33` (μ-law) or `|v|` (A-law), e is
 * ⌊log2(t >> 5)⌋ (looked up by nibble, i8x16.swizzle), and with e' = e (μ-law) or max(e, 1) (A-law) and
 * `tp = t · 2^(7 − e')` (the power looked up per lane too: SIMD has no per-lane shift), m is `(tp >> 8) & 15`.
 * v is the law's own exactly when the low byte of tp is 0x80 (see {@link kernelBytes}), and then its code is
 * the one whose value is v (the nearest, as the JS's table; μ-law's zero is code 0xff there too). The codes of a
 * block that is not all the law's own are not the nearest ones: the caller codes such a block itself.
 *
 * Memory (bytes): the values at 0 (Int16), the codes after them, then per law the kernel's constants (four
 * v128) and the shared ones (six).
 * @module
 */

import {
  i32Const as i32c,
  localGet as get,
  localSet as set,
  name,
  section,
  simdOp as simd,
  uleb,
  WASM_HEADER,
} from "../../util/wasm_encode.ts";

/** Values a block has (sample_ring.ts's COLD_BLOCK). */
export const G711_BLOCK = 256;
const CODES_AT = 2 * G711_BLOCK;
/** Per law (v128 each): OFF (i16 33 / 0), CAP (i16: t ≤ 8191), LO (i8: the least e'), X (i8: the code's xor). */
const LAW_AT = CODES_AT + G711_BLOCK;
const LAW_CONSTS = 4;
/**
 * Shared (v128 each, i8 lanes unless said): ⌊log2⌋ of a high nibble (+4) and of a low one (0 for 0), 2^(7 − e'),
 * 15, 0x80, and i16 0x8000.
 */
const SHARED_AT = LAW_AT + 2 * 16 * LAW_CONSTS;
const MEMORY_BYTES = SHARED_AT + 16 * 6;

const I32 = 0x7f, V128 = 0x7b;
const [LOOP, END, BRIF] = [0x03, 0x0b, 0x0d];
const [I32ADD, I32MUL, I32LTU, I32SHRU] = [0x6a, 0x6c, 0x49, 0x76];
const [V_LOAD, V_STORE, SWIZZLE, V_AND, V_OR, V_XOR, ANY_TRUE] = [0x00, 0x0b, 0x0e, 0x4e, 0x50, 0x51, 0x53];
const [I8_NARROW_S, I8_NARROW_U, I8_SHL, I8_SHR_U, I8_MAX_U] = [0x65, 0x66, 0x6b, 0x6d, 0x79];
const [I16_ABS, I16_EXT_LO_U, I16_EXT_HI_U, I16_SHL, I16_SHR_S, I16_SHR_U, I16_ADD, I16_MUL, I16_MIN_U] = [
  0x80,
  0x89,
  0x8a,
  0x8b,
  0x8c,
  0x8d,
  0x8e,
  0x95,
  0x97,
];

/**
 * (func (export "encode") (param law i32) (result i32)): the block's codes; 0 if every value is the law's own.
 * Sixteen values a turn, two i16x8 vectors, their exponents, powers and codes in one i8x16. With
 * `tp = t · 2^(7 − e')`, v is the law's own exactly when the low byte of tp is 0x80: t is then
 * `(2m + 33) << e` (or A-law's `(2m + 1) << 1`), tp `(2m + 33) · 128` (or `(2m + 1) · 128`), and m is
 * `(tp >> 8) & 15`; a clamped t (8,191) never is.
 */
function kernelBytes(): Uint8Array<ArrayBuffer> {
  const LAW = 0, K = 1;
  const [OFF, CAP, LO, X, LOG_HI, LOG_LO, POW, F8, B80, H8000] = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
  const [ACC, R0, R1, T0, T1, E, P, TP0, TP1] = [12, 13, 14, 15, 16, 17, 18, 19, 20];
  const lawConst = (c: number, local: number) => [
    ...get(LAW),
    ...i32c(16 * LAW_CONSTS),
    I32MUL,
    ...simd(V_LOAD, 4, ...uleb(LAW_AT + 16 * c)),
    ...set(local),
  ];
  const shared = (
    c: number,
    local: number,
  ) => [...i32c(0), ...simd(V_LOAD, 4, ...uleb(SHARED_AT + 16 * c)), ...set(local)];
  /** r, and t = min_u(|v|, CAP) + OFF (|−32768| is 0x8000: above CAP as unsigned), of the 8 values at k + at. */
  const load = (at: number, r: number, t: number) => [
    ...get(K),
    ...simd(V_LOAD, 4, ...uleb(at)),
    ...set(r),
    ...get(r),
    ...simd(I16_ABS),
    ...get(CAP),
    ...simd(I16_MIN_U),
    ...get(OFF),
    ...simd(I16_ADD),
    ...set(t),
  ];
  /** (tp << 8) ^ 0x8000: zero in the lanes of the law's own values. */
  const miss = (tp: number) => [...get(tp), ...i32c(8), ...simd(I16_SHL), ...get(H8000), ...simd(V_XOR)];
  const body = [
    ...[2, 1, I32, 19, V128],
    ...lawConst(0, OFF),
    ...lawConst(1, CAP),
    ...lawConst(2, LO),
    ...lawConst(3, X),
    ...[LOG_HI, LOG_LO, POW, F8, B80, H8000].flatMap((local, c) => shared(c, local)),
    LOOP,
    0x40,
    ...load(0, R0, T0),
    ...load(16, R1, T1),
    // e = ⌊log2(t >> 5)⌋ (0 for 0), from its nibbles
    ...get(LOG_HI),
    ...get(T0),
    ...i32c(5),
    ...simd(I16_SHR_U),
    ...get(T1),
    ...i32c(5),
    ...simd(I16_SHR_U),
    ...simd(I8_NARROW_U),
    ...set(E),
    ...get(E),
    ...i32c(4),
    ...simd(I8_SHR_U),
    ...simd(SWIZZLE),
    ...get(LOG_LO),
    ...get(E),
    ...get(F8),
    ...simd(V_AND),
    ...simd(SWIZZLE),
    ...simd(I8_MAX_U),
    ...set(E),
    // p = 2^(7 − max(e, LO)); tp = t · p (< 2^13)
    ...get(POW),
    ...get(E),
    ...get(LO),
    ...simd(I8_MAX_U),
    ...simd(SWIZZLE),
    ...set(P),
    ...get(T0),
    ...get(P),
    ...simd(I16_EXT_LO_U),
    ...simd(I16_MUL),
    ...set(TP0),
    ...get(T1),
    ...get(P),
    ...simd(I16_EXT_HI_U),
    ...simd(I16_MUL),
    ...set(TP1),
    ...get(ACC),
    ...miss(TP0),
    ...miss(TP1),
    ...simd(V_OR),
    ...simd(V_OR),
    ...set(ACC),
    // code = ((e << 4) | m) ^ (v < 0 ? 0x80 : 0) ^ X, to byte k / 2 of the codes
    ...get(K),
    ...i32c(1),
    I32SHRU,
    ...get(E),
    ...i32c(4),
    ...simd(I8_SHL),
    ...get(TP0),
    ...i32c(8),
    ...simd(I16_SHR_U),
    ...get(TP1),
    ...i32c(8),
    ...simd(I16_SHR_U),
    ...simd(I8_NARROW_U),
    ...get(F8),
    ...simd(V_AND),
    ...simd(V_OR),
    ...get(R0),
    ...i32c(15),
    ...simd(I16_SHR_S),
    ...get(R1),
    ...i32c(15),
    ...simd(I16_SHR_S),
    ...simd(I8_NARROW_S),
    ...get(B80),
    ...simd(V_AND),
    ...simd(V_XOR),
    ...get(X),
    ...simd(V_XOR),
    ...simd(V_STORE, 4, ...uleb(CODES_AT)),
    ...get(K),
    ...i32c(32),
    I32ADD,
    ...set(K),
    ...get(K),
    ...i32c(2 * G711_BLOCK),
    I32LTU,
    BRIF,
    0,
    END,
    ...get(ACC),
    ...simd(ANY_TRUE),
    END,
  ];
  return new Uint8Array([
    ...WASM_HEADER,
    ...section(1, [1, 0x60, 1, I32, 1, I32]),
    ...section(2, [1, ...name("m"), ...name("mem"), 0x02, 0x00, 1]),
    ...section(3, [1, 0]),
    ...section(7, [1, ...name("encode"), 0x00, 0]),
    ...section(10, [1, ...uleb(body.length), ...body]),
  ]);
}

/** μ-law (0) and A-law (1), as sample_ring.ts numbers them. */
export type G711Law = 0 | 1;

/** The kernel over its memory: fill `values`, `encode`, read `codes`. */
export interface G711Block {
  /** The block's ring values. */
  readonly values: Int16Array;
  /** Their codes, after {@link encode}. */
  readonly codes: Uint8Array;
  /**
   * Codes the values in `law`: 0 if every value is the law's own (the codes are then the nearest ones), else
   * not 0 (the codes are then not to be used).
   */
  encode(law: G711Law): number;
}

let kernel: G711Block | null | undefined;

/** The process's kernel (the engine is synchronous), or undefined where WebAssembly SIMD is unavailable. */
export function g711Block(): G711Block | undefined {
  if (kernel === undefined) {
    try {
      const memory = new WebAssembly.Memory({ initial: Math.ceil(MEMORY_BYTES / 65536) });
      const instance = new WebAssembly.Instance(new WebAssembly.Module(kernelBytes()), {
        m: { mem: memory },
      });
      const i16 = new Int16Array(memory.buffer), i8 = new Uint8Array(memory.buffer);
      // μ-law: t = |v| + 33 ≤ 8191; A-law: t = |v| ≤ 8191, e' at least 1 (segment 0's step is segment 1's).
      [[33, 8158, 0, 0xff], [0, 8191, 1, 0xd5]].forEach(([off, cap, lo, x], l) => {
        const at = LAW_AT + 16 * LAW_CONSTS * l;
        i16.fill(off!, at >> 1, (at >> 1) + 8);
        i16.fill(cap!, (at + 16) >> 1, ((at + 16) >> 1) + 8);
        i8.fill(lo!, at + 32, at + 48);
        i8.fill(x!, at + 48, at + 64);
      });
      const log2 = (i: number) => (i === 0 ? 0 : Math.floor(Math.log2(i)));
      for (let i = 0; i < 16; i++) {
        i8[SHARED_AT + i] = i === 0 ? 0 : 4 + log2(i);
        i8[SHARED_AT + 16 + i] = log2(i);
        i8[SHARED_AT + 32 + i] = i < 8 ? 1 << (7 - i) : 0;
      }
      i8.fill(15, SHARED_AT + 48, SHARED_AT + 64);
      i8.fill(0x80, SHARED_AT + 64, SHARED_AT + 80);
      i16.fill(-0x8000, (SHARED_AT + 80) >> 1, ((SHARED_AT + 80) >> 1) + 8);
      kernel = {
        values: new Int16Array(memory.buffer, 0, G711_BLOCK),
        codes: new Uint8Array(memory.buffer, CODES_AT, G711_BLOCK),
        encode: instance.exports.encode as (law: G711Law) => number,
      };
    } catch {
      kernel = null;
    }
  }
  return kernel ?? undefined;
}

/** Turns the kernel off for tests of the JS path (`true`), or on again. */
export function disableG711Block(off: boolean): void {
  kernel = off ? null : undefined;
}
