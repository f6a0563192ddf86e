/**
 * The pre-check's sampled weighted BER (score.ts sampledBer) in a tiny WebAssembly kernel over a SignatureIndex's
 * slots and a copy of the target stream's recent frames, both in the index's linear memory. In JS it was a third
 * of the pre-check's cost on a warm cache (~0.28 µs a pre-check of ~25 frames: five bounds-checked loads, three
 * 12-operation popcounts and two table loads a frame); here a popcount is one instruction. The sums are the
 * same float64 additions in the same order, so the results are the same to the last bit.
 *
 * Memory: the tables at byte 0 ({@link ERRORS_AT}, {@link WEIGHT_AT}), the index's slots from
 * {@link SLOTS_AT} (SignatureIndex.frames is a view there; a matcher's ring of recent frames is a slot of its
 * own, see {@link RING_FRAMES}).
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
import { FRAME_ERRORS, FRAME_WEIGHT } from "./score.ts";

/** Byte offset of the weighted errors of (strong errors a, weak errors b) at a·33 + b (float64). */
export const ERRORS_AT = 0;
/** Byte offset of a frame's weight by strong-bit count (float64). */
export const WEIGHT_AT = ERRORS_AT + 8 * (SUBFP_BITS + 1) * (SUBFP_BITS + 1);
/** Byte offset of the index's slots (a multiple of 64: slots are whole cache lines). */
export const SLOTS_AT = (WEIGHT_AT + 8 * (SUBFP_BITS + 1) + 63) & ~63;
/**
 * Frames a ring holds (a power of two): frame t's value and strong bits at words 2·(t mod RING_FRAMES) and one
 * more of the ring's slot. A pre-check as scheduled reads frames from s − 1 on, s at most a block (128 frames)
 * before the newest frame.
 */
export const RING_FRAMES = 128;

const I32 = 0x7f, F64 = 0x7c;
const [BLOCK, LOOP, IF, END, BR, BRIF, VOID, SELECT] = [0x02, 0x03, 0x04, 0x0b, 0x0c, 0x0d, 0x40, 0x1b];
const [I32LOAD, F64LOAD, I32LOAD8U, I32CONST, F64CONST] = [0x28, 0x2b, 0x2d, 0x41, 0x44];
const [I32EQZ, I32LTU, I32POPCNT, I32ADD, I32SUB, I32MUL, I32AND, I32XOR, I32SHL] = [
  0x45,
  0x49,
  0x69,
  0x6a,
  0x6b,
  0x6c,
  0x71,
  0x73,
  0x74,
];
const [F64LT, F64GT, F64ADD, F64DIV, I32TRUNCF64S, F64CONVERTI32S] = [0x63, 0x64, 0xa0, 0xa3, 0xaa, 0xb7];
const i32 = (v: number) => [I32CONST, ...sleb(v)];
const f64 = (v: number) => [F64CONST, ...new Uint8Array(Float64Array.of(v).buffer)];

/**
 * (func (export "ber") (param $pos $val $n i32) (param $step f64) (param $k $ring $from $end i32) (result f64)
 *   for (x = 0; x < n; x += step) { y = trunc(x); t = k + pos[y] (a byte); if from ≤ t < end:
 *     diff = val[y] ^ ring.bits[t]; sm = ring.strong[t];
 *     e += ERRORS[popcnt(diff & sm)·33 + popcnt(diff & ~sm)]; d += WEIGHT[popcnt(sm)] }
 *   d > 0 ? e / d : 1
 * (pos, val and ring byte addresses; the ring's frames t mod RING_FRAMES.)
 */
/**
 * Code leaving on the stack the byte offset, from {@link ERRORS_AT}, of a frame's error term: the differing bits in
 * local `diff` split by the strong bits in local `strong` into (strong errors · (SUBFP_BITS + 1) + weak errors) · 8,
 * the index score.ts's frameErrors takes into FRAME_ERRORS. Shared by this kernel and split_kernel.ts.
 */
export function errorTermOffset(diff: number, strong: number): number[] {
  return [
    ...get(diff),
    ...get(strong),
    I32AND,
    I32POPCNT,
    ...i32(SUBFP_BITS + 1),
    I32MUL,
    ...get(diff),
    ...get(strong),
    ...i32(-1),
    I32XOR,
    I32AND,
    I32POPCNT,
    I32ADD,
    ...i32(3),
    I32SHL,
  ];
}

function kernelBytes(): Uint8Array<ArrayBuffer> {
  const [POS, VAL, N, STEP, K, RING, FROM, END_] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [X, E, D, Y, T, R, DIFF, SM] = [8, 9, 10, 11, 12, 13, 14, 15];
  const body = [
    ...[2, 3, F64, 5, I32],
    ...[BLOCK, VOID, LOOP, VOID],
    ...get(X),
    ...get(N),
    F64CONVERTI32S,
    F64LT,
    I32EQZ,
    ...[BRIF, 1],
    ...get(X),
    I32TRUNCF64S,
    ...tee(Y),
    ...get(POS),
    I32ADD,
    ...[I32LOAD8U, 0, 0],
    ...get(K),
    I32ADD,
    ...tee(T),
    ...get(FROM),
    I32SUB,
    ...get(END_),
    ...get(FROM),
    I32SUB,
    I32LTU,
    ...[IF, VOID],
    ...get(RING),
    ...get(T),
    ...i32(RING_FRAMES - 1),
    I32AND,
    ...i32(3),
    I32SHL,
    I32ADD,
    ...set(R),
    ...get(VAL),
    ...get(Y),
    ...i32(2),
    I32SHL,
    I32ADD,
    ...[I32LOAD, 2, 0],
    ...get(R),
    ...[I32LOAD, 2, 0],
    I32XOR,
    ...set(DIFF),
    ...get(R),
    ...[I32LOAD, 2, 4],
    ...set(SM),
    ...get(E),
    ...errorTermOffset(DIFF, SM),
    ...[F64LOAD, 3, ...uleb(ERRORS_AT)],
    F64ADD,
    ...set(E),
    ...get(D),
    ...get(SM),
    I32POPCNT,
    ...i32(3),
    I32SHL,
    ...[F64LOAD, 3, ...uleb(WEIGHT_AT)],
    F64ADD,
    ...set(D),
    END,
    ...get(X),
    ...get(STEP),
    F64ADD,
    ...set(X),
    ...[BR, 0],
    END,
    END,
    ...get(E),
    ...get(D),
    F64DIV,
    ...f64(1),
    ...get(D),
    ...f64(0),
    F64GT,
    SELECT,
    END,
  ];
  return new Uint8Array([
    ...WASM_HEADER,
    ...section(1, [1, 0x60, 8, I32, I32, I32, F64, I32, I32, I32, I32, 1, F64]),
    ...section(2, [1, ...name("m"), ...name("mem"), 0x02, 0x00, 1]),
    ...section(3, [1, 0]),
    ...section(7, [1, ...name("ber"), 0x00, 0]),
    ...section(10, [1, ...uleb(body.length), ...body]),
  ]);
}

/** The kernel's function (byte addresses; see {@link kernelBytes}). */
export type BerFn = (
  pos: number,
  val: number,
  n: number,
  step: number,
  k: number,
  ring: number,
  from: number,
  end: number,
) => number;

/** A memory with the tables written, and the kernel over it. */
export interface BerKernel {
  readonly memory: WebAssembly.Memory;
  readonly ber: BerFn;
}

let module: WebAssembly.Module | null | undefined;

/**
 * A new memory of at least `bytes` bytes from {@link SLOTS_AT} on, with the tables and the kernel; undefined where
 * WebAssembly is unavailable (callers keep plain arrays and the JS loops).
 */
export function berKernel(bytes: number): BerKernel | undefined {
  if (module === undefined) {
    try {
      module = new WebAssembly.Module(kernelBytes());
    } catch {
      module = null;
    }
  }
  if (module === null) return undefined;
  try {
    const memory = new WebAssembly.Memory({ initial: Math.ceil((SLOTS_AT + bytes) / 65536) });
    const instance = new WebAssembly.Instance(module, { m: { mem: memory } });
    // score.ts's tables, so the kernel's sums are sampledBer's.
    const t = new Float64Array(memory.buffer);
    t.set(FRAME_ERRORS, ERRORS_AT / 8);
    t.set(FRAME_WEIGHT, WEIGHT_AT / 8);
    return { memory, ber: instance.exports.ber as BerFn };
  } catch {
    return undefined;
  }
}

/** Turns the kernel off for tests of the JS path (`true`), or on again. */
export function disableBerKernel(off: boolean): void {
  module = off ? null : undefined;
}
