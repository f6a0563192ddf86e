/**
 * Sliding dot products in a tiny WebAssembly SIMD kernel, two products per instruction (f64x2): the plain scan's
 * cross terms (plain_scan.ts), 224 products per coarse shift of every envelope search. In JS they were the scan's
 * largest cost (~0.28 µs a shift, bounds-checked scalar loads); the scan's answers are estimates within a
 * tolerance, so the products may be summed in any order.
 *
 * Memory (one page, shared by every user: JS runs one call at a time and each user fills what it reads within
 * one call): the kernel `x` at byte 0 ({@link DOT_MAX_X} float64), the results from {@link DOT_OUT_AT}, the
 * series from {@link DOT_SERIES_AT}.
 * @module
 */

import {
  localGet as get,
  localSet as set,
  localTee as tee,
  name,
  section,
  simdOp as simd,
  uleb,
  WASM_HEADER,
} from "../../util/wasm_encode.ts";

/** Most kernel values. */
export const DOT_MAX_X = 256;
/** Most results of one call. */
export const DOT_MAX_OUT = 1024;
/** Byte offsets of the results and the series. */
export const DOT_OUT_AT = 8 * DOT_MAX_X;
export const DOT_SERIES_AT = DOT_OUT_AT + 8 * DOT_MAX_OUT;
/** Most series values. */
export const DOT_MAX_SERIES = (65536 - DOT_SERIES_AT) / 8;

const I32 = 0x7f, V128 = 0x7b;
const [LOOP, END, BRIF, VOID] = [0x03, 0x0b, 0x0d, 0x40];
const [I32ADD, I32SUB, I32LTU, I32CONST, F64CONST, F64ADD, F64STORE] = [
  0x6a,
  0x6b,
  0x49,
  0x41,
  0x44,
  0xa0,
  0x39,
];
const load = (offset: number) => simd(0x00, 3, ...uleb(offset));
const [SPLAT, EXTRACT, F64X2_ADD, F64X2_MUL] = [0x14, 0x21, 0xf0, 0xf2];

/**
 * (func (export "dot") (param $u i32) (param $x i32) (param $n8 i32) (param $count i32) (param $out i32)
 *   for c < count: out[c] = Σ_{i < n8/8} series[u/8 + c + i] · x[x/8 + i]   ;; n8 a positive multiple of 32,
 *   count ≥ 1; two f64x2 running sums, each lane its own.
 */
function kernelBytes(): Uint8Array<ArrayBuffer> {
  const [U, X, N8, COUNT, OUT, I, A0, A1] = [0, 1, 2, 3, 4, 5, 6, 7];
  const zero = [F64CONST, 0, 0, 0, 0, 0, 0, 0, 0, ...simd(SPLAT)];
  const product = (offset: number) => [
    ...get(U),
    ...get(I),
    I32ADD,
    ...load(offset),
    ...get(X),
    ...get(I),
    I32ADD,
    ...load(offset),
    ...simd(F64X2_MUL),
  ];
  const body = [
    ...[2, 1, I32, 2, V128],
    ...[LOOP, VOID],
    ...zero,
    ...set(A0),
    ...zero,
    ...set(A1),
    ...[I32CONST, 0],
    ...set(I),
    ...[LOOP, VOID],
    ...get(A0),
    ...product(0),
    ...simd(F64X2_ADD),
    ...set(A0),
    ...get(A1),
    ...product(16),
    ...simd(F64X2_ADD),
    ...set(A1),
    ...get(I),
    ...[I32CONST, 32],
    I32ADD,
    ...tee(I),
    ...get(N8),
    I32LTU,
    ...[BRIF, 0],
    END,
    ...get(OUT),
    ...get(A0),
    ...get(A1),
    ...simd(F64X2_ADD),
    ...tee(A0),
    ...simd(EXTRACT, 0),
    ...get(A0),
    ...simd(EXTRACT, 1),
    F64ADD,
    ...[F64STORE, 3, 0],
    ...get(OUT),
    ...[I32CONST, 8],
    I32ADD,
    ...set(OUT),
    ...get(U),
    ...[I32CONST, 8],
    I32ADD,
    ...set(U),
    ...get(COUNT),
    ...[I32CONST, 1],
    I32SUB,
    ...tee(COUNT),
    ...[BRIF, 0],
    END,
    END,
  ];
  return new Uint8Array([
    ...WASM_HEADER,
    ...section(1, [1, 0x60, 5, I32, I32, I32, I32, I32, 0]),
    ...section(2, [1, ...name("m"), ...name("mem"), 0x02, 0x00, 1]),
    ...section(3, [1, 0]),
    ...section(7, [1, ...name("dot"), 0x00, 0]),
    ...section(10, [1, ...uleb(body.length), ...body]),
  ]);
}

/** The kernel and float64 views of its memory. */
export interface DotKernel {
  /** `out[c] = Σ_{i<n} series[from + c + i]·x[i]` for c < count (n a positive multiple of 4, count ≥ 1). */
  dot(from: number, n: number, count: number): void;
  /** Kernel values (write before {@link dot}). */
  readonly x: Float64Array;
  /** Results. */
  readonly out: Float64Array;
  /** Series values. */
  readonly series: Float64Array;
}

let kernel: DotKernel | null | undefined;

/** The shared kernel, or undefined where WebAssembly SIMD is unavailable (callers keep their JS loops). */
export function dotKernel(): DotKernel | undefined {
  if (kernel === undefined) {
    try {
      const memory = new WebAssembly.Memory({ initial: 1 });
      const instance = new WebAssembly.Instance(new WebAssembly.Module(kernelBytes()), {
        m: { mem: memory },
      });
      const fn = instance.exports.dot as (
        u: number,
        x: number,
        n8: number,
        count: number,
        out: number,
      ) => void;
      const f64 = new Float64Array(memory.buffer);
      kernel = {
        dot: (from, n, count) => fn(DOT_SERIES_AT + 8 * from, 0, 8 * n, count, DOT_OUT_AT),
        x: f64.subarray(0, DOT_MAX_X),
        out: f64.subarray(DOT_OUT_AT / 8, DOT_OUT_AT / 8 + DOT_MAX_OUT),
        series: f64.subarray(DOT_SERIES_AT / 8),
      };
    } catch {
      kernel = null;
    }
  }
  return kernel ?? undefined;
}
