/**
 * The split scoring's per-frame terms (split.ts) in a tiny WebAssembly kernel: for each of the 17 alignments a
 * split reads, every block frame's weighted errors, weight, squared weight and evidence w/2 − e, and the sum of
 * the evidence. In JS this was most of a split's cost (2,176 frames, two 12-operation popcounts each); here a
 * popcount is one instruction. The terms are the same table values and the same float64 operations in the same
 * order, so the numbers are the same to the last bit (a JS loop of the same steps stays where WebAssembly is
 * unavailable, and as the reference the tests compare it with).
 *
 * Memory (one per process, three pages): the tables of score.ts, the block (sub-fingerprints, used frames), the
 * target frames the alignments read (sub-fingerprints, strong bits, weights), then the outputs by alignment.
 * @module
 */

import { SUBFP_BITS } from "../fingerprint/fingerprint.ts";
import {
  localGet as get,
  localSet as set,
  localTee as tee,
  name,
  section,
  sleb,
  uleb,
  WASM_HEADER,
} from "../../util/wasm_encode.ts";
import { FRAME_ERRORS, FRAME_WEIGHT, FRAME_WEIGHT_SQ } from "./score.ts";
import { errorTermOffset } from "./ber_kernel.ts";

/** Alignments (best − SPLIT_MAX_SHIFT .. best + SPLIT_MAX_SHIFT). */
export const KERNEL_OFFSETS = 17;
/** Most block frames. */
export const KERNEL_MAX_FRAMES = 256;
/** Target frames the alignments read at most. */
const SPAN = KERNEL_MAX_FRAMES + KERNEL_OFFSETS;

// Byte offsets (each a multiple of 8).
const ERRORS_AT = 0;
const WEIGHT_AT = ERRORS_AT + 8 * (SUBFP_BITS + 1) * (SUBFP_BITS + 1);
const WEIGHT_SQ_AT = WEIGHT_AT + 8 * (SUBFP_BITS + 1);
const FP_AT = WEIGHT_SQ_AT + 8 * (SUBFP_BITS + 1);
const USED_AT = FP_AT + 4 * KERNEL_MAX_FRAMES;
const BITS_AT = USED_AT + KERNEL_MAX_FRAMES;
const STRONG_AT = BITS_AT + ((4 * SPAN + 7) & ~7);
const W_AT = STRONG_AT + ((4 * SPAN + 7) & ~7);
const Q_AT = W_AT + 8 * SPAN;
const TOTAL_AT = Q_AT + 8 * SPAN;
const E_AT = TOTAL_AT + 8 * KERNEL_OFFSETS;
const OUT_BYTES = 8 * KERNEL_OFFSETS * KERNEL_MAX_FRAMES;
const WO_AT = E_AT + OUT_BYTES;
const QO_AT = WO_AT + OUT_BYTES;
const VO_AT = QO_AT + OUT_BYTES;
const PAGES = Math.ceil((VO_AT + OUT_BYTES) / 65536);

/**
 * The inputs and outputs of {@link FrameErrorsKernel.run}: target frame i (from the lowest alignment's frame 0)
 * in `bits`, `strong`, and `w`, `q` (its weight and squared weight; `w` 0 where not held); block frame j in `fp`
 * and `used` (0: masked). Outputs by alignment o: `e[o][j]`, `wo[o][j]`, `qo[o][j]`, `v[o][j]`, `total[o]`.
 */
export interface FrameErrorsKernel {
  readonly fp: Uint32Array;
  readonly used: Uint8Array;
  readonly bits: Int32Array;
  readonly strong: Int32Array;
  readonly w: Float64Array;
  readonly q: Float64Array;
  readonly e: Float64Array[];
  readonly wo: Float64Array[];
  readonly qo: Float64Array[];
  readonly v: Float64Array[];
  readonly total: Float64Array;
  /** The outputs of an `n`-frame block (n ≤ KERNEL_MAX_FRAMES). */
  run(n: number): void;
}

const I32 = 0x7f, F64 = 0x7c;
const [BLOCK, LOOP, IF, ELSE, END, BRIF, VOID] = [0x02, 0x03, 0x04, 0x05, 0x0b, 0x0d, 0x40];
const [I32LOAD, F64LOAD, I32LOAD8U, F64STORE, I32CONST, F64CONST] = [0x28, 0x2b, 0x2d, 0x39, 0x41, 0x44];
const [I32EQZ, I32LTU, F64EQ, I32ADD, I32OR, I32XOR, I32SHL] = [0x45, 0x49, 0x61, 0x6a, 0x72, 0x73, 0x74];
const [F64ADD, F64SUB, F64MUL] = [0xa0, 0xa1, 0xa2];
const i32 = (v: number) => [I32CONST, ...sleb(v)];
const f64 = (v: number) => [F64CONST, ...new Uint8Array(Float64Array.of(v).buffer)];
const loadI32 = (at: number) => [I32LOAD, 2, ...uleb(at)];
const loadF64 = (at: number) => [F64LOAD, 3, ...uleb(at)];
const storeF64 = (at: number) => [F64STORE, 3, ...uleb(at)];

/**
 * (func (export "run") (param $n i32)
 *   for o < 17: total = 0; for j < n: i = o + j; p = o·256 + j;
 *     if used[j] == 0 or w[i] == 0: e[p] = wo[p] = qo[p] = v[p] = 0
 *     else: x = fp[j] ^ bits[i]; sm = strong[i]; e[p] = ERRORS[popcnt(x & sm)·33 + popcnt(x & ~sm)];
 *       wo[p] = w[i]; qo[p] = q[i]; v[p] = 0.5·w[i] − e[p]; total += v[p]
 *     total_o = total)
 */
function kernelBytes(): Uint8Array<ArrayBuffer> {
  const N = 0;
  const [O, J, I, X, SM, OFF, P] = [1, 2, 3, 4, 5, 6, 7];
  const [TOTAL, WI, EI, V] = [8, 9, 10, 11];
  const zero = (at: number) => [...get(P), ...f64(0), ...storeF64(at)];
  const body = [
    ...[2, 7, I32, 4, F64],
    ...[LOOP, VOID],
    ...f64(0),
    ...set(TOTAL),
    ...i32(0),
    ...set(J),
    ...get(O),
    ...i32(11),
    I32SHL,
    ...set(OFF),
    ...[BLOCK, VOID],
    ...get(N),
    I32EQZ,
    ...[BRIF, 0],
    ...[LOOP, VOID],
    ...get(O),
    ...get(J),
    I32ADD,
    ...set(I),
    ...get(I),
    ...i32(3),
    I32SHL,
    ...loadF64(W_AT),
    ...set(WI),
    ...get(OFF),
    ...get(J),
    ...i32(3),
    I32SHL,
    I32ADD,
    ...set(P),
    ...get(J),
    ...[I32LOAD8U, 0, ...uleb(USED_AT)],
    I32EQZ,
    ...get(WI),
    ...f64(0),
    F64EQ,
    I32OR,
    ...[IF, VOID],
    ...zero(E_AT),
    ...zero(WO_AT),
    ...zero(QO_AT),
    ...zero(VO_AT),
    ELSE,
    ...get(J),
    ...i32(2),
    I32SHL,
    ...loadI32(FP_AT),
    ...get(I),
    ...i32(2),
    I32SHL,
    ...loadI32(BITS_AT),
    I32XOR,
    ...set(X),
    ...get(I),
    ...i32(2),
    I32SHL,
    ...loadI32(STRONG_AT),
    ...set(SM),
    ...errorTermOffset(X, SM),
    ...loadF64(ERRORS_AT),
    ...set(EI),
    ...get(P),
    ...get(EI),
    ...storeF64(E_AT),
    ...get(P),
    ...get(WI),
    ...storeF64(WO_AT),
    ...get(P),
    ...get(I),
    ...i32(3),
    I32SHL,
    ...loadF64(Q_AT),
    ...storeF64(QO_AT),
    ...f64(0.5),
    ...get(WI),
    F64MUL,
    ...get(EI),
    F64SUB,
    ...set(V),
    ...get(P),
    ...get(V),
    ...storeF64(VO_AT),
    ...get(TOTAL),
    ...get(V),
    F64ADD,
    ...set(TOTAL),
    END,
    ...get(J),
    ...i32(1),
    I32ADD,
    ...tee(J),
    ...get(N),
    I32LTU,
    ...[BRIF, 0],
    END,
    END,
    ...get(O),
    ...i32(3),
    I32SHL,
    ...get(TOTAL),
    ...storeF64(TOTAL_AT),
    ...get(O),
    ...i32(1),
    I32ADD,
    ...tee(O),
    ...i32(KERNEL_OFFSETS),
    I32LTU,
    ...[BRIF, 0],
    END,
    END,
  ];
  return new Uint8Array([
    ...WASM_HEADER,
    ...section(1, [1, 0x60, 1, I32, 0]),
    ...section(2, [1, ...name("m"), ...name("mem"), 0x02, 0x00, ...uleb(PAGES)]),
    ...section(3, [1, 0]),
    ...section(7, [1, ...name("run"), 0x00, 0]),
    ...section(10, [1, ...uleb(body.length), ...body]),
  ]);
}

/** Per-alignment views of `KERNEL_OFFSETS` rows of KERNEL_MAX_FRAMES float64 from byte `at` of `buffer`. */
function rows(buffer: ArrayBufferLike, at: number): Float64Array[] {
  return Array.from(
    { length: KERNEL_OFFSETS },
    (_, o) => new Float64Array(buffer, at + 8 * o * KERNEL_MAX_FRAMES, KERNEL_MAX_FRAMES),
  );
}

/** The kernel over a memory of its own, or undefined where WebAssembly is unavailable. */
function wasmKernel(): FrameErrorsKernel | undefined {
  try {
    const memory = new WebAssembly.Memory({ initial: PAGES });
    const instance = new WebAssembly.Instance(new WebAssembly.Module(kernelBytes()), { m: { mem: memory } });
    const buf = memory.buffer;
    new Float64Array(buf, ERRORS_AT, FRAME_ERRORS.length).set(FRAME_ERRORS);
    new Float64Array(buf, WEIGHT_AT, FRAME_WEIGHT.length).set(FRAME_WEIGHT);
    new Float64Array(buf, WEIGHT_SQ_AT, FRAME_WEIGHT_SQ.length).set(FRAME_WEIGHT_SQ);
    return {
      fp: new Uint32Array(buf, FP_AT, KERNEL_MAX_FRAMES),
      used: new Uint8Array(buf, USED_AT, KERNEL_MAX_FRAMES),
      bits: new Int32Array(buf, BITS_AT, SPAN),
      strong: new Int32Array(buf, STRONG_AT, SPAN),
      w: new Float64Array(buf, W_AT, SPAN),
      q: new Float64Array(buf, Q_AT, SPAN),
      e: rows(buf, E_AT),
      wo: rows(buf, WO_AT),
      qo: rows(buf, QO_AT),
      v: rows(buf, VO_AT),
      total: new Float64Array(buf, TOTAL_AT, KERNEL_OFFSETS),
      run: instance.exports.run as (n: number) => void,
    };
  } catch {
    return undefined;
  }
}

/** The same steps in JS, on arrays of its own. */
function jsKernel(): FrameErrorsKernel {
  const buf = new ArrayBuffer(PAGES * 65536);
  const k = {
    fp: new Uint32Array(buf, FP_AT, KERNEL_MAX_FRAMES),
    used: new Uint8Array(buf, USED_AT, KERNEL_MAX_FRAMES),
    bits: new Int32Array(buf, BITS_AT, SPAN),
    strong: new Int32Array(buf, STRONG_AT, SPAN),
    w: new Float64Array(buf, W_AT, SPAN),
    q: new Float64Array(buf, Q_AT, SPAN),
    e: rows(buf, E_AT),
    wo: rows(buf, WO_AT),
    qo: rows(buf, QO_AT),
    v: rows(buf, VO_AT),
    total: new Float64Array(buf, TOTAL_AT, KERNEL_OFFSETS),
    run: (n: number) => {
      const et = FRAME_ERRORS, fp = k.fp, used = k.used, bits = k.bits, strong = k.strong, w = k.w, q = k.q;
      for (let o = 0; o < KERNEL_OFFSETS; o++) {
        const e = k.e[o]!, wo = k.wo[o]!, qo = k.qo[o]!, v = k.v[o]!;
        let total = 0;
        for (let j = 0, i = o; j < n; j++, i++) {
          const wi = w[i]!;
          if (used[j] === 0 || wi === 0) {
            e[j] = 0;
            wo[j] = 0;
            qo[j] = 0;
            v[j] = 0;
            continue;
          }
          const x = fp[j]! ^ bits[i]!, sm = strong[i]!;
          const ei = et[popcount(x & sm) * (SUBFP_BITS + 1) + popcount(x & ~sm)]!;
          e[j] = ei;
          wo[j] = wi;
          qo[j] = q[i]!;
          const vi = 0.5 * wi - ei;
          v[j] = vi;
          total += vi;
        }
        k.total[o] = total;
      }
    },
  };
  return k;
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}

/**
 * A kernel: in WebAssembly where available (`wasm: false`: the JS steps, the reference). Not re-entrant; the
 * process shares one (split.ts).
 */
export function frameErrorsKernel(opts: { wasm?: boolean } = {}): FrameErrorsKernel {
  return (opts.wasm === false ? undefined : wasmKernel()) ?? jsKernel();
}
