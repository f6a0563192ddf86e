/**
 * The few pieces of the WebAssembly binary format that the hand-assembled kernels (resample.ts, fft_simd.ts)
 * need: LEB128 integers, names, sections, the module header, and the instructions every kernel uses (locals,
 * `i32.const`, the SIMD prefix). Each kernel writes the rest of its instructions.
 * @module
 */

/** Unsigned LEB128 of a non-negative integer. */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

/** Signed LEB128 of an integer. */
export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

/** A length-prefixed UTF-8 name. */
export function name(s: string): number[] {
  return [...uleb(s.length), ...new TextEncoder().encode(s)];
}

/** A section: id, byte length, body. */
export function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

/** Magic number and version 1: the first eight bytes of every module. */
export const WASM_HEADER: readonly number[] = [0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0];

/** `local.get l`. */
export function localGet(l: number): number[] {
  return [0x20, ...uleb(l)];
}

/** `local.set l`. */
export function localSet(l: number): number[] {
  return [0x21, ...uleb(l)];
}

/** `local.tee l`. */
export function localTee(l: number): number[] {
  return [0x22, ...uleb(l)];
}

/** `i32.const v`. */
export function i32Const(v: number): number[] {
  return [0x41, ...sleb(v)];
}

/** A SIMD instruction: the 0xfd prefix, opcode `op` (LEB128), then its immediates. */
export function simdOp(op: number, ...imm: number[]): number[] {
  return [0xfd, ...uleb(op), ...imm];
}
