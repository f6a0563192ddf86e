/**
 * Base64 digits decoded sixteen at a time in a tiny WebAssembly SIMD kernel (the nibble-table method of Muła and
 * Lemire): every audio message of a JSON tap is a base64 field of a few hundred digits, which the JS decoder
 * reads at about 1 ns a digit (four table loads and three byte stores per four digits), the largest cost of
 * finding a message's audio after the capture line is read.
 *
 * The kernel decodes whole blocks of 16 digits of either alphabet (even mixed) and stops before the first block
 * holding anything else (padding, whitespace, a bad character) or before the last partial block: it returns how
 * many digits it decoded (a multiple of 16), three bytes for each four, and the JS decoder takes the rest, which
 * decides about padding and bad values (encoding.ts). A digit's value: its high nibble picks an offset (`A`-`Z`
 * -65, `a`-`z` -71, `0`-`9` +4, `+` +19), with `-` `/` `_` set right by comparison; it is a digit when the
 * class bits of its low nibble and of its high nibble meet.
 *
 * The module also holds the JSON scanner's search for a string's end (json_scan_bytes.ts, {@link
 * Base64Kernel.special}): the digits a live row's keying scans past are most of its body, read sixteen bytes a
 * step here where the JS read eight.
 *
 * Memory (one page): the digits at byte 0 (up to {@link B64_MAX_IN}), the bytes from {@link B64_OUT_AT}.
 * @module
 */

import {
  i32Const,
  localGet as get,
  localSet as set,
  name,
  section,
  simdOp as simd,
  uleb,
  WASM_HEADER,
} from "../../util/wasm_encode.ts";
import type { BytePath } from "./json_scan_bytes.ts";
import {
  FIELD_END_AT,
  FIELD_MAX_SEGMENTS,
  FIELD_PATH_BYTES,
  FIELD_PATHS,
  FIELD_PATHS_AT,
  FIELD_SEGMENT_BYTES,
  jsonFieldBody,
} from "./json_field_simd.ts";

/** Most digits one call decodes. */
export const B64_MAX_IN = 32768;
/** Byte offset of the decoded bytes (3/4 of the digits, and the 4 bytes the last 16-byte store spills). */
export const B64_OUT_AT = B64_MAX_IN;

const I32 = 0x7f, V128 = 0x7b;
const [BLOCK, LOOP, BR, BRIF, END, VOID] = [0x02, 0x03, 0x0c, 0x0d, 0x0b, 0x40];
const [I32CONST, I32ADD, I32SUB, I32GTS] = [0x41, 0x6a, 0x6b, 0x4a];
const v128 = (bytes: readonly number[]) => simd(0x0c, ...bytes.map((b) => b & 0xff));
const splat8 = (b: number) => v128(new Array(16).fill(b));
const splat16 = (h: number) => v128(Array.from({ length: 16 }, (_, i) => (i & 1 ? h >> 8 : h)));
const splat32 = (w: number) => v128(Array.from({ length: 16 }, (_, i) => w >> (8 * (i & 3))));
const i32 = (n: number) => [I32CONST, n];
const [LOAD, STORE, SHUFFLE, SWIZZLE, I8EQ, AND, OR, ANY_TRUE] = [
  0x00,
  0x0b,
  0x0d,
  0x0e,
  0x23,
  0x4e,
  0x50,
  0x53,
];
const [I8SHR_U, I8ADD, I16SHL, I16SHR_U, I32SHL, I32SHR_U] = [0x6d, 0x6e, 0x8b, 0x8d, 0xab, 0xad];

/** Class bits by low nibble: which high nibbles make it a digit (see {@link HI_CLASS}). */
const LO_CLASS = [26, 30, 30, 30, 30, 30, 30, 30, 30, 30, 28, 5, 4, 5, 4, 13];
/**
 * Class of each high nibble: 2 (`+` `-` `/`: low B, D, F) 1; 3 (`0`-`9`: 0-9) 2; 4 and 6 (letters: 1-F) 4; 5
 * (`P`-`Z` and `_`: 0-A, F) 8; 7 (`p`-`z`: 0-A) 16; none for the rest (a byte above 0x7f too).
 */
const HI_CLASS = [0, 0, 1, 2, 4, 8, 4, 16, 0, 0, 0, 0, 0, 0, 0, 0];
/** Offset from a digit to its value by high nibble (`+` for 2, `A`-`Z` for 5; `-` `/` `_` corrected after). */
const HI_OFFSET = [0, 0, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0];

/**
 * (func (export "decode") (param $in i32) (param $n i32) (param $out i32) (result i32)): decodes the blocks of
 * 16 digits at `in` while they are all digits, 12 bytes each to `out` (a 16-byte store: 4 bytes spill past each
 * block's 12); returns the digits decoded.
 */
function kernelBytes(): Uint8Array<ArrayBuffer> {
  const [IN, N, OUT, P, Q, LAST, V, HI, T] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  // The constants, each in a local set before the loop (the loop would otherwise make them on every block).
  const constants = [
    v128(LO_CLASS),
    v128(HI_CLASS),
    v128(HI_OFFSET),
    splat8(0x0f),
    splat8(0),
    splat8(0x2d),
    splat8(-2),
    splat8(0x2f),
    splat8(-3),
    splat8(0x5f),
    splat8(33),
    splat16(0x0fc0),
    splat32(0x00fff000),
  ];
  const [LO_CLASS_V, HI_CLASS_V, HI_OFFSET_V, NIBBLE, ZERO, DASH, DASH_FIX, SLASH, SLASH_FIX, LOW, LOW_FIX] =
    [
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
      19,
    ];
  const [PAIR_MASK, QUAD_MASK] = [20, 21];
  const fix = (c: number, add: number) => [...get(V), ...get(c), ...simd(I8EQ), ...get(add), ...simd(AND)];
  const body = [
    ...[2, 3, I32, 3 + constants.length, V128],
    ...constants.flatMap((c, i) => [...c, ...set(9 + i)]),
    // p = in, q = out, last = in + n - 16 (the last position a whole block starts at)
    ...get(IN),
    ...set(P),
    ...get(OUT),
    ...set(Q),
    ...get(IN),
    ...get(N),
    I32ADD,
    ...i32(16),
    I32SUB,
    ...set(LAST),
    ...[BLOCK, VOID, LOOP, VOID],
    ...get(P),
    ...get(LAST),
    I32GTS,
    ...[BRIF, 1],
    ...get(P),
    ...simd(LOAD, 0, 0),
    ...set(V),
    ...get(V),
    ...i32(4),
    ...simd(I8SHR_U),
    ...set(HI),
    // A block with anything but digits stops the kernel: (LO_CLASS[lo] & HI_CLASS[hi]) == 0 in some lane.
    ...get(LO_CLASS_V),
    ...get(V),
    ...get(NIBBLE),
    ...simd(AND),
    ...simd(SWIZZLE),
    ...get(HI_CLASS_V),
    ...get(HI),
    ...simd(SWIZZLE),
    ...simd(AND),
    ...get(ZERO),
    ...simd(I8EQ),
    ...simd(ANY_TRUE),
    ...[BRIF, 1],
    // Values: the digit plus its high nibble's offset, '-' 62 (+17: -2 on '+''s 19), '/' 63 (+16: -3), '_' 63
    // (-32: +33 on 'P'-'Z''s -65).
    ...get(V),
    ...get(HI_OFFSET_V),
    ...get(HI),
    ...simd(SWIZZLE),
    ...simd(I8ADD),
    ...fix(DASH, DASH_FIX),
    ...simd(I8ADD),
    ...fix(SLASH, SLASH_FIX),
    ...simd(I8ADD),
    ...fix(LOW, LOW_FIX),
    ...simd(I8ADD),
    ...set(T),
    // Pairs of 6-bit values into 12 bits (d0 << 6 | d1 in each 16-bit lane), pairs of those into 24 bits.
    ...get(T),
    ...i32(6),
    ...simd(I16SHL),
    ...get(PAIR_MASK),
    ...simd(AND),
    ...get(T),
    ...i32(8),
    ...simd(I16SHR_U),
    ...simd(OR),
    ...set(T),
    ...get(T),
    ...i32(12),
    ...simd(I32SHL),
    ...get(QUAD_MASK),
    ...simd(AND),
    ...get(T),
    ...i32(16),
    ...simd(I32SHR_U),
    ...simd(OR),
    ...set(T),
    // The three bytes of each 32-bit lane, high first, packed into the first 12 bytes.
    ...get(Q),
    ...get(T),
    ...get(T),
    ...simd(SHUFFLE, 2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, 3, 7, 11, 15),
    ...simd(STORE, 0, 0),
    ...get(P),
    ...i32(16),
    I32ADD,
    ...set(P),
    ...get(Q),
    ...i32(12),
    I32ADD,
    ...set(Q),
    ...[BR, 0],
    END,
    END,
    ...get(P),
    ...get(IN),
    I32SUB,
    END,
  ];
  const field = jsonFieldBody();
  const special = specialBody();
  return new Uint8Array([
    ...WASM_HEADER,
    ...section(1, [1, 0x60, 3, I32, I32, I32, 1, I32]),
    ...section(2, [1, ...name("m"), ...name("mem"), 0x02, 0x00, 2]),
    ...section(3, [3, 0, 0, 0]),
    ...section(7, [3, ...name("decode"), 0x00, 0, ...name("field"), 0x00, 1, ...name("special"), 0x00, 2]),
    ...section(10, [
      3,
      ...uleb(body.length),
      ...body,
      ...uleb(field.length),
      ...field,
      ...uleb(special.length),
      ...special,
    ]),
  ]);
}

/**
 * (func (export "special") (param $p i32) (param $len i32) (param i32) (result i32)): the first position at or
 * after `p` of the body at byte 0 (followed by 16 zero bytes) that holds a quote, a backslash or a byte below
 * 0x20, sixteen bytes a step: `len` or past it when there is none (a zero of the padding stops it).
 */
function specialBody(): number[] {
  const [P, V] = [0, 3];
  const [I8SPLAT, I8LTU, BITMASK, CTZ] = [0x0f, 0x26, 0x64, 0x68];
  const is = (c: number, op: number) => [...get(V), ...i32Const(c), ...simd(I8SPLAT), ...simd(op)];
  return [
    ...[1, 1, V128],
    ...[BLOCK, VOID, LOOP, VOID],
    ...get(P),
    ...simd(LOAD, 0, 0),
    ...set(V),
    ...is(0x22, I8EQ),
    ...is(0x5c, I8EQ),
    ...simd(OR),
    ...is(0x20, I8LTU),
    ...simd(OR),
    ...set(V),
    ...get(V),
    ...simd(ANY_TRUE),
    ...[BRIF, 1],
    ...get(P),
    ...i32(16),
    I32ADD,
    ...set(P),
    ...[BR, 0],
    END,
    END,
    ...get(P),
    ...get(V),
    ...simd(BITMASK),
    CTZ,
    I32ADD,
    END,
  ];
}

/** The kernel and views of its memory. */
export interface Base64Kernel {
  /**
   * Decodes the leading blocks of 16 digits of `digits` (at most {@link B64_MAX_IN} of them) into {@link out};
   * returns how many digits it decoded (a multiple of 16; three bytes each four).
   */
  decode(digits: Uint8Array): number;
  /**
   * {@link decode} of the digits at [start, end) of `body` (at most {@link B64_MAX_IN} bytes), copied whole into
   * {@link input}: the digits decoded from `start` on. A field found in a body takes no view of it.
   */
  decodeAt(body: Uint8Array, start: number, end: number): number;
  /** The decoded bytes (and room for the JS decoder to go on: 3/4 of B64_MAX_IN and a few more). */
  readonly out: Uint8Array;
  /**
   * Finds the plain string at `path` in the JSON `body` (json_field_simd.ts) and decodes the leading blocks of
   * its digits in place into {@link out}: the string's first digit's position in {@link input} and its end,
   * and the digits decoded (as {@link decode}); undefined where the JS scanner must decide (see that module),
   * for a body longer than {@link FIELD_MAX_BODY} and for a path the function does not follow.
   */
  field(body: Uint8Array, path: BytePath): FieldDigits | undefined;
  /** The memory's bytes: the body {@link field} was given, from 0. */
  readonly input: Uint8Array;
  /**
   * The first position at or after `from` in `body` (at most {@link FIELD_MAX_BODY} bytes) holding a quote, a
   * backslash or a control character, or `body.length`: json_scan_bytes.ts's special byte, sixteen bytes a step.
   * `load`: copy the body in first (else the body the last call copied is read: the same bytes).
   */
  special(body: Uint8Array, from: number, load: boolean): number;
}

/** Where {@link Base64Kernel.field} found the digits, and how many of them it decoded. */
export interface FieldDigits {
  start: number;
  end: number;
  done: number;
}

/** Longest body {@link Base64Kernel.field} reads (the rest of the digits' area is its zero padding). */
export const FIELD_MAX_BODY = B64_MAX_IN - 16;

/** A path the field function follows: where its segments are in memory, and their count. */
interface LoadedPath {
  at: number;
  segments: number;
}

/** The paths written to the kernel's memory (see {@link Base64Kernel.field}); a segment count of -1: not followed. */
const loaded = new Map<BytePath, LoadedPath>();
/** The one asked last (streams of one path follow each other). */
let lastPath: BytePath | undefined;
let lastLoaded: LoadedPath = { at: 0, segments: -1 };
/** The result object of {@link Base64Kernel.field}, reused (read at once). */
const fieldResult: FieldDigits = { start: 0, end: 0, done: 0 };

/**
 * `path` as the field function reads it, written to memory on first use: its segments' place and count, the
 * count -1 for a path it does not follow (an array index, a non-ASCII or long segment, too many, none).
 */
function loadPath(mem: Uint8Array, path: BytePath): LoadedPath {
  let p = loaded.get(path);
  if (p !== undefined) return p;
  const n = path.segs.length;
  let follow = n > 0 && n <= FIELD_MAX_SEGMENTS;
  for (let i = 0; follow && i < n; i++) {
    follow = path.index[i]! < 0 && path.ascii[i]! && path.bytes[i]!.length <= FIELD_SEGMENT_BYTES - 4;
  }
  // Past the slots (more audio paths than taps have), start over: the evicted paths are written again.
  if (loaded.size >= FIELD_PATHS) loaded.clear();
  p = { at: FIELD_PATHS_AT + loaded.size * FIELD_PATH_BYTES, segments: follow ? n : -1 };
  if (follow) {
    const view = new DataView(mem.buffer);
    for (let i = 0; i < n; i++) {
      const at = p.at + i * FIELD_SEGMENT_BYTES, b = path.bytes[i]!;
      view.setInt32(at, b.length, true);
      mem.set(b, at + 4);
    }
  }
  loaded.set(path, p);
  return p;
}

let kernel: Base64Kernel | null | undefined;

/** The shared kernel, or undefined where WebAssembly SIMD is unavailable (the JS decoder does it all). */
export function base64Kernel(): Base64Kernel | undefined {
  if (kernel === undefined) {
    try {
      const memory = new WebAssembly.Memory({ initial: 2 });
      const instance = new WebAssembly.Instance(new WebAssembly.Module(kernelBytes()), {
        m: { mem: memory },
      });
      const fn = instance.exports.decode as (at: number, n: number, out: number) => number;
      const find = instance.exports.field as (len: number, segments: number, path: number) => number;
      const special = instance.exports.special as (p: number, len: number, unused: number) => number;
      const mem = new Uint8Array(memory.buffer);
      const input = new Uint8Array(memory.buffer, 0, B64_MAX_IN);
      const ends = new Int32Array(memory.buffer, FIELD_END_AT, 1);
      kernel = {
        decode(digits) {
          input.set(digits);
          return fn(0, digits.length, B64_OUT_AT);
        },
        decodeAt(body, start, end) {
          input.set(body);
          return fn(start, end - start, B64_OUT_AT);
        },
        field(body, path) {
          const len = body.length;
          if (len > FIELD_MAX_BODY) return undefined;
          if (path !== lastPath) {
            lastLoaded = loadPath(mem, path);
            lastPath = path;
          }
          const p = lastLoaded;
          if (p.segments < 0) return undefined;
          input.set(body);
          // A read past the body sees control characters: every string and token stops there. (A loop: the
          // builtin fill costs more for 16 bytes.)
          for (let i = len; i < len + 16; i++) input[i] = 0;
          const quote = find(len, p.segments, p.at);
          if (quote < 0) return undefined;
          const r = fieldResult;
          r.start = quote + 1;
          r.end = ends[0]! - 1;
          r.done = fn(r.start, r.end - r.start, B64_OUT_AT);
          return r;
        },
        special(body, from, load) {
          const len = body.length;
          if (load) {
            input.set(body);
            for (let i = len; i < len + 16; i++) input[i] = 0;
          }
          const q = special(from, len, 0);
          return q < len ? q : len;
        },
        out: new Uint8Array(memory.buffer, B64_OUT_AT, 65536 - B64_OUT_AT),
        input,
      };
    } catch {
      kernel = null;
    }
  }
  return kernel ?? undefined;
}
