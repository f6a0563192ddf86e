/**
 * A JSON string cell's bytes copied and unescaped sixteen at a time in a tiny WebAssembly SIMD kernel: a capture
 * line's body cell (a JSON message in a JSON string: an escaped quote every few bytes, then a few hundred base64
 * digits) was most of the cost of reading a line in JS, which finds runs and copies them a byte or a word at a
 * time. The kernel reads a capture file's bytes where the reader put them, in the kernel's own memory
 * ({@link cellKernelBuffer}), and writes the cell's bytes to an area of that memory, from where the line reader
 * copies them to its slab in one move.
 *
 * The kernel copies plain bytes (printable ASCII but the quote and the backslash) and the single-character escapes
 * (`\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`), and stops at anything else: the closing quote, a `\u` escape,
 * a control byte, a byte above 0x7f, a backslash it does not know, or its end. The line reader takes it from there
 * as before (capture_line_fast.ts), so it decides every case the kernel leaves.
 *
 * Memory: the escape table at byte 0 (128 bytes), the kernel's output end at {@link OUT_END_AT}, the output from
 * {@link OUT_AT} ({@link OUT_ROOM} bytes and 16 more for the last 16-byte store), the file's bytes from
 * {@link DATA_AT}.
 * @module
 */

import { name, section, sleb, uleb, WASM_HEADER } from "../util/wasm_encode.ts";

/** Where the kernel leaves the end of its output (an i32). */
const OUT_END_AT = 128;
/** Where the kernel writes a cell's bytes. */
const OUT_AT = 256;
/** Most input bytes one call reads (so its output fits the output area). */
export const OUT_ROOM = 32768;
/** Where the file's bytes go. */
const DATA_AT = OUT_AT + OUT_ROOM + 256;

const I32 = 0x7f, V128 = 0x7b;
const [BLOCK, LOOP, IF, BR, BRIF, END, VOID] = [0x02, 0x03, 0x04, 0x0c, 0x0d, 0x0b, 0x40];
const [I32CONST, I32EQZ, I32EQ, I32NE, I32LTU, I32GTS, I32GEU] = [0x41, 0x45, 0x46, 0x47, 0x49, 0x4a, 0x4f];
const [I32CTZ, I32ADD, I32SUB, I32LOAD8U, I32STORE8, I32STORE] = [0x68, 0x6a, 0x6b, 0x2d, 0x3a, 0x36];
const get = (l: number) => [0x20, ...uleb(l)];
const set = (l: number) => [0x21, ...uleb(l)];
const tee = (l: number) => [0x22, ...uleb(l)];
const simd = (op: number, ...imm: number[]) => [0xfd, ...uleb(op), ...imm];
const i32 = (n: number) => [I32CONST, ...sleb(n)];
const [V128LOAD, V128STORE, I8SPLAT, I8EQ, I8LTS, V128OR, I8BITMASK] = [
  0x00,
  0x0b,
  0x0f,
  0x23,
  0x25,
  0x50,
  0x64,
];

/**
 * (func (export "cell") (param $p i32) (param $end i32) (param $o i32) (result i32)): copies and unescapes from
 * `p` (after a string's opening quote) to `o` until a byte it leaves (see the module doc) or `end`; returns where
 * it stopped and stores the output's end at {@link OUT_END_AT}.
 */
function kernelBytes(): Uint8Array<ArrayBuffer> {
  const [P, END_, O, V, M, C, QV, BV, SV] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const splat = (c: number, l: number) => [...i32(c), ...simd(I8SPLAT), ...set(l)];
  /** local += n */
  const add = (l: number, n: number) => [...get(l), ...i32(n), I32ADD, ...set(l)];
  /** Stores byte C at O, then O += 1 and P += step (the input bytes the output byte took). */
  const putByte = (step: number) => [...get(O), ...get(C), I32STORE8, 0, 0, ...add(O, 1), ...add(P, step)];
  const body = [
    // locals: v (v128), m and c (i32), the three splats (v128)
    ...[3, 1, V128, 2, I32, 3, V128],
    ...splat(0x22, QV),
    ...splat(0x5c, BV),
    ...splat(0x20, SV),
    ...[BLOCK, VOID, LOOP, VOID],
    // Sixteen bytes at a time while sixteen are left: stored whole, then the first special one (if any) decides.
    ...[BLOCK, VOID, LOOP, VOID],
    ...get(P),
    ...i32(16),
    I32ADD,
    ...get(END_),
    I32GTS,
    ...[BRIF, 1],
    ...get(O),
    ...get(P),
    ...simd(V128LOAD, 0, 0),
    ...tee(V),
    ...simd(V128STORE, 0, 0),
    // Special: a quote, a backslash, or below 0x20 as a signed byte (a control byte or one above 0x7f).
    ...get(V),
    ...get(QV),
    ...simd(I8EQ),
    ...get(V),
    ...get(BV),
    ...simd(I8EQ),
    ...simd(V128OR),
    ...get(V),
    ...get(SV),
    ...simd(I8LTS),
    ...simd(V128OR),
    ...simd(I8BITMASK),
    ...tee(M),
    I32EQZ,
    ...[IF, VOID],
    ...add(P, 16),
    ...add(O, 16),
    ...[BR, 1],
    END,
    ...get(M),
    I32CTZ,
    ...tee(C),
    ...get(P),
    I32ADD,
    ...set(P),
    ...get(O),
    ...get(C),
    I32ADD,
    ...set(O),
    END,
    END,
    // One byte: the end, an escape, a plain byte, or one the kernel leaves.
    ...get(P),
    ...get(END_),
    I32GEU,
    ...[BRIF, 1],
    ...get(P),
    I32LOAD8U,
    0,
    0,
    ...tee(C),
    ...i32(0x5c),
    I32EQ,
    ...[IF, VOID],
    // An escape of the table (its second byte below 0x80 and its value not 0), both bytes there.
    ...get(P),
    ...i32(1),
    I32ADD,
    ...get(END_),
    I32GEU,
    ...[BRIF, 2],
    ...get(P),
    I32LOAD8U,
    0,
    1,
    ...tee(C),
    ...i32(0x80),
    I32GEU,
    ...[BRIF, 2],
    ...get(C),
    I32LOAD8U,
    0,
    0,
    ...tee(C),
    I32EQZ,
    ...[BRIF, 2],
    ...putByte(2),
    ...[BR, 1],
    END,
    // Plain: 0x20..0x7f but the quote.
    ...get(C),
    ...i32(0x20),
    I32SUB,
    ...i32(0x60),
    I32LTU,
    ...get(C),
    ...i32(0x22),
    I32NE,
    0x71, // i32.and
    I32EQZ,
    ...[BRIF, 1],
    ...putByte(1),
    ...[BR, 0],
    END,
    END,
    ...i32(OUT_END_AT),
    ...get(O),
    I32STORE,
    2,
    0,
    ...get(P),
    END,
  ];
  const nl = newlineBody();
  return new Uint8Array([
    ...WASM_HEADER,
    ...section(1, [2, 0x60, 3, I32, I32, I32, 1, I32, 0x60, 2, I32, I32, 1, I32]),
    ...section(2, [1, ...name("m"), ...name("mem"), 0x02, 0x00, 1]),
    ...section(3, [2, 0, 1]),
    ...section(7, [2, ...name("cell"), 0x00, 0, ...name("newline"), 0x00, 1]),
    ...section(10, [2, ...uleb(body.length), ...body, ...uleb(nl.length), ...nl]),
  ]);
}

/**
 * (func (export "newline") (param $p i32) (param $end i32) (result i32)): where the first newline at or after
 * `p` is, or `end` if none is before it; sixteen bytes a step (the capture reader's deferred lines,
 * capture_line_fast.ts peekCaptureLine: `indexOf` a byte at a time cost ~0.6 µs a line).
 */
function newlineBody(): number[] {
  const [P, END_, LFV, M] = [0, 1, 2, 3];
  const RETURN = 0x0f;
  return [
    ...[2, 1, V128, 1, I32],
    ...i32(0x0a),
    ...simd(I8SPLAT),
    ...set(LFV),
    ...[BLOCK, VOID, LOOP, VOID],
    ...get(P),
    ...i32(16),
    I32ADD,
    ...get(END_),
    I32GTS,
    ...[BRIF, 1],
    ...get(P),
    ...simd(V128LOAD, 0, 0),
    ...get(LFV),
    ...simd(I8EQ),
    ...simd(I8BITMASK),
    ...tee(M),
    ...[IF, VOID],
    ...get(P),
    ...get(M),
    I32CTZ,
    I32ADD,
    RETURN,
    END,
    ...get(P),
    ...i32(16),
    I32ADD,
    ...set(P),
    ...[BR, 0],
    END,
    END,
    ...[BLOCK, VOID, LOOP, VOID],
    ...get(P),
    ...get(END_),
    I32GEU,
    ...[BRIF, 1],
    ...get(P),
    I32LOAD8U,
    0,
    0,
    ...i32(0x0a),
    I32EQ,
    ...[IF, VOID],
    ...get(P),
    RETURN,
    END,
    ...get(P),
    ...i32(1),
    I32ADD,
    ...set(P),
    ...[BR, 0],
    END,
    END,
    ...get(END_),
    END,
  ];
}

/** The byte each single-character escape stands for, by the character after the backslash; 0 for the rest. */
const ESCAPES: Readonly<Record<string, number>> = {
  '"': 0x22,
  "\\": 0x5c,
  "/": 0x2f,
  b: 0x08,
  f: 0x0c,
  n: 0x0a,
  r: 0x0d,
  t: 0x09,
};

/** The kernel of one memory, and the views the line reader uses. */
export interface CellKernel {
  /**
   * Copies and unescapes `bytes[p..)` (a view of {@link memory}) into {@link out} from {@link OUT_AT}, reading at
   * most up to `end` and {@link OUT_ROOM} bytes; returns where it stopped (relative to `bytes`, like `p`).
   */
  run(bytes: Uint8Array, p: number, end: number): number;
  /** Where the first newline of `bytes[p..end)` (a view of the kernel's memory) is, or `end`. */
  newline(bytes: Uint8Array, p: number, end: number): number;
  /** Where the output of the last {@link run} ends in {@link out}. */
  outEnd(): number;
  /** The kernel's whole memory: the output is at {@link outAt}. */
  readonly out: Uint8Array;
  readonly outAt: number;
  /** The whole memory as 32-bit words (the line reader's word scans). */
  readonly words: Uint32Array;
  /**
   * The line reader's views of the output area by size class, kept with the kernel: a reader that alternates
   * between kernels (a file's bytes, the line arena's chunks) makes each view once, not at every switch.
   */
  readonly views: Uint8Array[];
}

let module: WebAssembly.Module | null | undefined;
const kernels = new WeakMap<ArrayBufferLike, CellKernel>();

/**
 * A buffer of `bytes` bytes for a capture file's bytes, in the memory of a kernel of its own (so two files read at
 * once do not share one); a plain array where WebAssembly SIMD is unavailable.
 */
export function cellKernelBuffer(bytes: number): Uint8Array {
  if (module === undefined) {
    try {
      module = new WebAssembly.Module(kernelBytes());
    } catch {
      module = null;
    }
  }
  if (module === null) return new Uint8Array(bytes);
  const memory = new WebAssembly.Memory({ initial: Math.ceil((DATA_AT + bytes) / 65536) });
  const instance = new WebAssembly.Instance(module, { m: { mem: memory } });
  const fn = instance.exports.cell as (p: number, end: number, o: number) => number;
  const nl = instance.exports.newline as (p: number, end: number) => number;
  const buf = memory.buffer;
  const all = new Uint8Array(buf);
  for (const [c, v] of Object.entries(ESCAPES)) all[c.charCodeAt(0)] = v;
  const ends = new Int32Array(buf, OUT_END_AT, 1);
  const kernel: CellKernel = {
    run(view, p, end) {
      const base = view.byteOffset;
      const to = end - p > OUT_ROOM ? p + OUT_ROOM : end;
      return fn(base + p, base + to, OUT_AT) - base;
    },
    newline(view, p, end) {
      const base = view.byteOffset;
      return nl(base + p, base + end) - base;
    },
    outEnd: () => ends[0]!,
    out: all,
    outAt: OUT_AT,
    words: new Uint32Array(buf, 0, buf.byteLength >>> 2),
    views: [],
  };
  kernels.set(buf, kernel);
  return new Uint8Array(buf, DATA_AT, bytes);
}

/** The kernel whose memory holds `bytes`, if any. */
export function cellKernelOf(bytes: Uint8Array): CellKernel | undefined {
  return kernels.get(bytes.buffer);
}
