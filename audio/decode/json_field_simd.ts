/**
 * A WebAssembly function that finds the string at a JSON path in a payload's bytes (the base64 kernel's module
 * holds it, so the digits it finds are decoded where they lie: base64_simd.ts). It is the JS scanner
 * (json_scan_bytes.ts) for the usual audio envelope only, and never decides alone: it answers "found" only where
 * that scanner finds a plain string (no escape) at the same bytes, and "ask the scanner" for everything else
 * (a backslash or a control character in any string, an array index or a non-ASCII key in the path, a
 * non-string at the path, nesting deeper than {@link FIELD_MAX_DEPTH}, no value at the path, anything
 * malformed). The grammar it accepts is JSON's (objects, arrays, strings, numbers, literals, whitespace) as
 * JSON.parse reads it; a later duplicate key wins, as there. Strings are skipped sixteen bytes a step.
 *
 * Memory: the body at byte 0 followed by 16 zero bytes (a read past its end sees control characters, which
 * stop every string and token), the path's segments from {@link FIELD_PATHS_AT} (each: its length as an i32,
 * then its bytes, {@link FIELD_SEGMENT_BYTES} a segment), the containers' stack from {@link FIELD_STACK_AT}, and the
 * string's end at {@link FIELD_END_AT}.
 * @module
 */

import {
  localGet as get,
  localSet as set,
  localTee as tee,
  simdOp as simd,
  sleb,
  uleb,
} from "../../util/wasm_encode.ts";

/** Byte address of the paths' segments: {@link FIELD_PATHS} paths of {@link FIELD_PATH_BYTES} each. */
export const FIELD_PATHS_AT = 65536;
/** Bytes of one segment's slot: its length (an i32) and up to 60 bytes. */
export const FIELD_SEGMENT_BYTES = 64;
/** Most segments the function follows. */
export const FIELD_MAX_SEGMENTS = 8;
/** Bytes of one path's segments. */
export const FIELD_PATH_BYTES = FIELD_MAX_SEGMENTS * FIELD_SEGMENT_BYTES;
/** Paths kept in memory at once (the taps' audio paths, each written once). */
export const FIELD_PATHS = 16;
/** Deepest nesting it reads (deeper: ask the scanner). */
export const FIELD_MAX_DEPTH = 64;
/** Byte address of the containers' stack (a byte each: 1 an array, 2 an object on the path). */
export const FIELD_STACK_AT = FIELD_PATHS_AT + FIELD_PATHS * FIELD_PATH_BYTES;
/** Where the string's end (after its closing quote) is stored. */
export const FIELD_END_AT = FIELD_STACK_AT + FIELD_MAX_DEPTH + 16;

const [BLOCK, LOOP, IF, ELSE, END, BR, BR_IF, RETURN, VOID] = [
  0x02,
  0x03,
  0x04,
  0x05,
  0x0b,
  0x0c,
  0x0d,
  0x0f,
  0x40,
];
const [LOAD, LOAD8, STORE, STORE8] = [0x28, 0x2d, 0x36, 0x3a];
const [EQZ, EQ, NE, LT_U, LE_U, GE_U] = [0x45, 0x46, 0x47, 0x49, 0x4d, 0x4f];
const [ADD, SUB, MUL, AND, OR, CTZ, SELECT] = [0x6a, 0x6b, 0x6c, 0x71, 0x72, 0x68, 0x1b];
const i32 = (n: number) => [0x41, ...sleb(n)];
const [V128_LOAD, I8_SPLAT, I8_EQ, I8_LT_U, V128_OR, ANY_TRUE, I8_BITMASK] = [
  0x00,
  0x0f,
  0x23,
  0x26,
  0x50,
  0x53,
  0x64,
];

// Parameters and locals.
const [LEN, SEGS, PATH, POS, C, D, MODE, ONP, TGT, HIT, P, E, TOP, V] = [
  0,
  1,
  2,
  3,
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
];
/** What the main loop expects next. */
const [VALUE, AFTER, KEY, COLON, KEY_OR_CLOSE, VALUE_OR_CLOSE] = [0, 1, 2, 3, 4, 5];
const ARRAY = 1, ON_PATH = 2;

/** `byte at local l (+ offset)`. */
const byteAt = (l: number, offset = 0) => [...get(l), LOAD8, 0, ...uleb(offset)];
const bail = [...i32(-1), RETURN];
/** if (cond) bail. */
const bailIf = (cond: number[]) => [...cond, IF, VOID, ...bail, END];
const isChar = (l: number, ch: string) => [...get(l), ...i32(ch.charCodeAt(0)), EQ];
const isDigit = (l: number) => [...get(l), ...i32(0x30), SUB, ...i32(10), LT_U];
/** p = first position at or after p not holding a digit. */
const skipDigits = [
  ...[BLOCK, VOID, LOOP, VOID],
  ...byteAt(P),
  ...set(C),
  ...[...isDigit(C), EQZ, BR_IF, 1],
  ...[...get(P), ...i32(1), ADD, ...set(P), BR, 0, END, END],
];
/** p += 1 when the byte at p is `ch`. */
const skipIf = (ch: string) => [
  ...byteAt(P),
  ...set(C),
  ...isChar(C, ch),
  ...[...get(P), ADD, ...set(P)],
];

/**
 * e = the closing quote of the string whose first byte is at p; bails on a backslash, a control character or
 * the body's end first. Sixteen bytes a step: the first lane holding a quote, a backslash or a byte below 0x20.
 */
const stringEnd = [
  ...[BLOCK, VOID, LOOP, VOID],
  ...[...get(P), ...simd(V128_LOAD, 0, 0), ...set(V)],
  ...[...get(V), ...i32(0x22), ...simd(I8_SPLAT), ...simd(I8_EQ)],
  ...[...get(V), ...i32(0x5c), ...simd(I8_SPLAT), ...simd(I8_EQ), ...simd(V128_OR)],
  ...[...get(V), ...i32(0x20), ...simd(I8_SPLAT), ...simd(I8_LT_U), ...simd(V128_OR), ...set(V)],
  ...[...get(V), ...simd(ANY_TRUE), BR_IF, 1],
  ...[...get(P), ...i32(16), ADD, ...tee(P), ...get(LEN), GE_U, BR_IF, 1, BR, 0, END, END],
  ...[...get(P), ...get(V), ...simd(I8_BITMASK), CTZ, ADD, ...set(E)],
  ...bailIf([...get(E), ...get(LEN), GE_U]),
  ...bailIf([...byteAt(E), ...i32(0x22), NE]),
];

/** The value at pos (its first byte in c): mode becomes AFTER, or the container's first state. */
const value = [
  // A string: the target's is the hit.
  ...isChar(C, '"'),
  ...[IF, VOID],
  ...[...get(POS), ...i32(1), ADD, ...set(P), ...stringEnd],
  ...[...get(TGT), IF, VOID, ...get(POS), ...set(HIT), ...i32(FIELD_END_AT), ...get(E), ...i32(1), ADD],
  ...[STORE, 2, 0, END],
  ...[...get(E), ...i32(1), ADD, ...set(POS), ...i32(AFTER), ...set(MODE)],
  ...[ELSE],
  // Anything else at the target: ask the scanner (not a string).
  ...bailIf(get(TGT)),
  ...[...isChar(C, "{"), ...isChar(C, "["), OR, IF, VOID],
  ...bailIf([...get(D), ...i32(FIELD_MAX_DEPTH), GE_U]),
  ...[...get(D), ...isChar(C, "["), ...i32(ON_PATH), ...i32(0), ...get(ONP), SELECT, OR],
  ...[STORE8, 0, ...uleb(FIELD_STACK_AT)],
  ...[...get(D), ...i32(1), ADD, ...set(D)],
  ...[...i32(KEY_OR_CLOSE), ...i32(VALUE_OR_CLOSE), ...isChar(C, "{"), SELECT, ...set(MODE)],
  ...[...get(POS), ...i32(1), ADD, ...set(POS)],
  ...[ELSE],
  ...[...get(POS), ...set(P)],
  ...[...isChar(C, "-"), ...isDigit(C), OR, IF, VOID],
  // A number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
  ...skipIf("-"),
  ...byteAt(P),
  ...set(C),
  ...[...isChar(C, "0"), IF, VOID, ...get(P), ...i32(1), ADD, ...set(P), ELSE],
  ...[...bailIf([...isDigit(C), EQZ]), ...skipDigits, END],
  ...[...byteAt(P), ...set(C), ...isChar(C, "."), IF, VOID, ...get(P), ...i32(1), ADD, ...set(P)],
  ...[...byteAt(P), ...set(C), ...bailIf([...isDigit(C), EQZ]), ...skipDigits, END],
  ...[...byteAt(P), ...set(C), ...isChar(C, "e"), ...isChar(C, "E"), OR, IF, VOID],
  ...[
    ...get(P),
    ...i32(1),
    ADD,
    ...set(P),
    ...byteAt(P),
    ...set(C),
    ...isChar(C, "+"),
    ...isChar(C, "-"),
    OR,
  ],
  ...[...get(P), ADD, ...set(P)],
  ...[...byteAt(P), ...set(C), ...bailIf([...isDigit(C), EQZ]), ...skipDigits, END],
  ...[ELSE],
  // A literal: its four bytes (and false's fifth) as one load.
  ...[...get(P), LOAD, 0, 0, ...set(E)],
  ...[...get(E), ...i32(0x65757274), EQ, ...get(E), ...i32(0x6c6c756e), EQ, OR, IF, VOID],
  ...[...get(P), ...i32(4), ADD, ...set(P), ELSE],
  ...bailIf([...get(E), ...i32(0x736c6166), NE, ...byteAt(P, 4), ...i32(0x65), NE, OR]),
  ...[...get(P), ...i32(5), ADD, ...set(P), END],
  ...[END],
  ...[...get(P), ...set(POS), ...i32(AFTER), ...set(MODE)],
  ...[END, END],
];

/** After a value: a comma, or the container's close (then after that container's value), or the body's end. */
const after = [
  // Anything after the top value but whitespace (the loop returns at the end).
  ...bailIf([...get(D), EQZ]),
  ...[...get(D), ...i32(1), SUB, LOAD8, 0, ...uleb(FIELD_STACK_AT), ...set(TOP)],
  ...[...get(POS), ...i32(1), ADD, ...set(POS)],
  ...isChar(C, ","),
  ...[IF, VOID, ...i32(VALUE), ...i32(KEY), ...get(TOP), ...i32(ARRAY), AND, SELECT, ...set(MODE)],
  ...[...i32(0), ...set(ONP), ...i32(0), ...set(TGT), ELSE],
  ...bailIf([...isChar(C, "]"), ...isChar(C, "}"), ...get(TOP), ...i32(ARRAY), AND, SELECT, EQZ]),
  ...[...get(D), ...i32(1), SUB, ...set(D), END],
];

/** A key: compared with the path's segment when its object is on the path, then a colon. */
const key = [
  ...bailIf([...isChar(C, '"'), EQZ]),
  ...[...get(POS), ...i32(1), ADD, ...set(P), ...stringEnd],
  ...[...i32(0), ...set(ONP), ...i32(0), ...set(TGT)],
  ...[...get(D), ...i32(1), SUB, LOAD8, 0, ...uleb(FIELD_STACK_AT), ...i32(ON_PATH), AND, ...i32(0), NE],
  ...[...get(D), ...get(SEGS), LE_U, AND, IF, VOID],
  // Segment d - 1: its length, then its bytes.
  ...[...get(D), ...i32(1), SUB, ...i32(FIELD_SEGMENT_BYTES), MUL, ...get(PATH), ADD, ...set(TOP)],
  ...[BLOCK, VOID, ...get(E), ...get(POS), SUB, ...i32(1), SUB, ...get(TOP), LOAD, 2, 0, NE, BR_IF, 0],
  ...[...get(POS), ...i32(1), ADD, ...set(P)],
  ...[BLOCK, VOID, LOOP, VOID, ...get(P), ...get(E), GE_U, BR_IF, 1],
  ...[...byteAt(P), ...get(P), ...get(POS), SUB, ...get(TOP), ADD, LOAD8, 0, 3, NE, BR_IF, 2],
  ...[...get(P), ...i32(1), ADD, ...set(P), BR, 0, END, END],
  // A matching key forgets what an earlier duplicate led to.
  ...[...i32(-1), ...set(HIT), ...i32(1), ...set(ONP), ...get(D), ...get(SEGS), EQ, ...set(TGT)],
  ...[END, END],
  ...[...get(E), ...i32(1), ADD, ...set(POS), ...i32(COLON), ...set(MODE)],
];

/**
 * The function's body: (func (export "field") (param $len i32) (param $segs i32) (param $path i32) (result i32)):
 * the position of the opening quote of the string at the path of `segs` segments at byte `path` (its end at
 * {@link FIELD_END_AT}), or -1 (ask the scanner).
 */
export function jsonFieldBody(): number[] {
  const code = [
    ...[...i32(0), ...set(POS), ...i32(0), ...set(D), ...i32(VALUE), ...set(MODE)],
    ...[...i32(1), ...set(ONP), ...i32(0), ...set(TGT), ...i32(-1), ...set(HIT)],
    ...[LOOP, VOID],
    // Whitespace, then the end of the body: done after the top value, malformed anywhere else.
    ...[BLOCK, VOID, LOOP, VOID, ...byteAt(POS), ...set(C)],
    ...[
      ...isChar(C, " "),
      ...isChar(C, "\n"),
      OR,
      ...isChar(C, "\r"),
      OR,
      ...isChar(C, "\t"),
      OR,
      EQZ,
      BR_IF,
      1,
    ],
    ...[...get(POS), ...i32(1), ADD, ...set(POS), BR, 0, END, END],
    ...[...get(POS), ...get(LEN), GE_U, IF, VOID],
    ...[...get(POS), ...get(LEN), EQ, ...get(MODE), ...i32(AFTER), EQ, AND, ...get(D), EQZ, AND, IF, VOID],
    ...[...get(HIT), RETURN, END, ...bail, END],
    ...[...get(MODE), ...i32(VALUE_OR_CLOSE), EQ, IF, VOID],
    ...[
      ...isChar(C, "]"),
      IF,
      VOID,
      ...get(D),
      ...i32(1),
      SUB,
      ...set(D),
      ...get(POS),
      ...i32(1),
      ADD,
      ...set(POS),
    ],
    ...[...i32(AFTER), ...set(MODE), BR, 2, END, ...i32(0), ...set(ONP), ...i32(VALUE), ...set(MODE), END],
    ...[...get(MODE), ...i32(KEY_OR_CLOSE), EQ, IF, VOID],
    ...[
      ...isChar(C, "}"),
      IF,
      VOID,
      ...get(D),
      ...i32(1),
      SUB,
      ...set(D),
      ...get(POS),
      ...i32(1),
      ADD,
      ...set(POS),
    ],
    ...[...i32(AFTER), ...set(MODE), BR, 2, END, ...i32(KEY), ...set(MODE), END],
    ...[...get(MODE), ...i32(VALUE), EQ, IF, VOID, ...value, BR, 1, END],
    ...[...get(MODE), ...i32(AFTER), EQ, IF, VOID, ...after, BR, 1, END],
    ...[...get(MODE), ...i32(KEY), EQ, IF, VOID, ...key, BR, 1, END],
    // COLON
    ...bailIf([...isChar(C, ":"), EQZ]),
    ...[...get(POS), ...i32(1), ADD, ...set(POS), ...i32(VALUE), ...set(MODE), BR, 0],
    ...[END],
    ...bail,
  ];
  return [2, 10, 0x7f, 1, 0x7b, ...code, END];
}
