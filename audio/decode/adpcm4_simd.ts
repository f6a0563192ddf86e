/**
 * adpcm4.ts's coder for {@link LANES} blocks of {@link OCTET_BLOCK} values at once, one per lane of four i32x4
 * vectors of a tiny WebAssembly SIMD kernel. Each block's coding is one chain of dependent operations (a value's
 * prediction needs the value decoded before it): in JS two chains side by side (encodeBlockPair) ran at ~4.5 ns a
 * value, three or four spilled registers and ran slower; eight chains in lanes run at ~2.5 ns a value (in a loop,
 * on the 2-core bench host; with their values written in, ~3.3), and sixteen at ~1.5: a step of a chain waits on
 * the one before it (its step gathered lane by lane, its prediction multiplied), so more chains fill the waits
 * (540 -> 378 ns a block, interleaved in one process; 32 lanes spill more registers and ran at ~420).
 *
 * The lanes compute exactly encodeBlock's integers: the step and its reciprocal are gathered per lane from one
 * packed table (`step | reciprocal << 16`), the reconstruction level is `((2m + 1) · step) >> 3` (LEVELS'
 * definition), the next step index `clamp(index + INDEX_STEP[m])` (NEXT's), `INDEX_STEP[m]` being `2m − 6` for
 * m ≥ 4 and −1 below. Codes gather eight a lane in a word (low nibble first), stored per lane every eight values.
 *
 * Memory (bytes): the values at 0, interleaved (value k of lane l at 2·(LANES·k + l), Int16); the lanes' first
 * coefficients, second coefficients and start indices after them (three rows of LANES i32); each lane's
 * OCTET_BLOCK / 2 bytes of codes; the packed table; decode8's input (each lane's 8-bit codes, its law and
 * shift) and constants (per law), and its sums.
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
import { COEF_SHIFT, RECIPROCAL, STEPS } from "./adpcm4_format.ts";

/** Values a block has (sample_ring.ts's COLD_BLOCK). */
export const OCTET_BLOCK = 256;
/** Blocks coded at once: four vectors of four lanes. */
export const LANES = 16;
const VECTORS = LANES >> 2;
const PARAMS_AT = 2 * LANES * OCTET_BLOCK;
const OUT_AT = PARAMS_AT + 12 * LANES;
const TABLE_AT = OUT_AT + LANES * (OCTET_BLOCK >> 1);
const CODES_AT = (TABLE_AT + 4 * STEPS.length + 15) & ~15;
const LANE_AT = CODES_AT + LANES * OCTET_BLOCK;
/** Laws the lanes choose from (μ-law 0, A-law 1). */
export const G711_LAWS = 2;
/** Per law (v128 each): X (i8: the code's xor), ADD and POW (i8, by segment), OFF (i16); see decodeBody. */
const LAW_AT = LANE_AT + 8 * LANES;
const SUMS_AT = LAW_AT + 64 * G711_LAWS;
const MEMORY_BYTES = SUMS_AT + 12 * LANES;

const I32 = 0x7f, V128 = 0x7b;
const [LOOP, END, BRIF, IF, VOID] = [0x03, 0x0b, 0x0d, 0x04, 0x40];
const [I32LOAD, I32STORE, I32ADD, I32AND, I32SHL, I32SHRU, I32LTU, I32EQ] = [
  0x28,
  0x36,
  0x6a,
  0x71,
  0x74,
  0x76,
  0x49,
  0x46,
];
const splat = (v: number) => [...i32c(v), ...simd(0x11)];
const [V_LOAD, V_LOAD16X4S, V_STORE, V_AND, V_OR, V_XOR, V_BITSELECT] = [
  0x00,
  0x03,
  0x0b,
  0x4e,
  0x50,
  0x51,
  0x52,
];
const [SWIZZLE, I8_SPLAT, V_STORE16_LANE, I8_SHL, I8_SHR_S, I8_SHR_U, I8_ADD] = [
  0x0e,
  0x0f,
  0x59,
  0x6b,
  0x6c,
  0x6d,
  0x6e,
];
const [I16_EXT_LO_S, I16_EXT_HI_S, I16_EXT_LO_U, I16_EXT_HI_U, I16_SHL, I16_SUB, I16_MUL] = [
  0x87,
  0x88,
  0x89,
  0x8a,
  0x8b,
  0x91,
  0x95,
];
const [GT_S, ABS, SHL, SHR_S, SHR_U, ADD, SUB, MUL, MIN_S, MIN_U, MAX_S] = [
  0x3b,
  0xa0,
  0xab,
  0xac,
  0xad,
  0xae,
  0xb1,
  0xb5,
  0xb6,
  0xb7,
  0xb8,
];

/**
 * A counted loop over local `k`: from `from`, `body` then `k += step`, again while `k < limit` (the body runs at
 * least once).
 */
function countedLoop(k: number, from: number, step: number, limit: number, body: number[]): number[] {
  return [
    ...[...i32c(from), ...set(k)],
    ...[LOOP, VOID, ...body],
    ...[...get(k), ...i32c(step), I32ADD, ...set(k)],
    ...[...get(k), ...i32c(limit), I32LTU, BRIF, 0, END],
  ];
}

/** (func (export "encode8")): the lanes' blocks, as described in the module doc. */
function kernelBytes(): Uint8Array<ArrayBuffer> {
  const K = 0;
  // Per vector v: its locals from 1 + 11·v.
  const L = (v: number) => {
    const o = 1 + 11 * v;
    return {
      Y1: o,
      Y2: o + 1,
      IX: o + 2,
      K1: o + 3,
      K2: o + 4,
      ACC: o + 5,
      P: o + 6,
      D: o + 7,
      S: o + 8,
      G: o + 9,
      Q: o + 10,
    };
  };
  const clamp16 = [...splat(32767), ...simd(MIN_S), ...splat(-32768), ...simd(MAX_S)];
  const init = (v: number) => {
    const { Y1, Y2, IX, K1, K2 } = L(v);
    return [
      ...[...i32c(0), ...simd(V_LOAD, 4, ...uleb(PARAMS_AT + 16 * v)), ...set(K1)],
      ...[...i32c(0), ...simd(V_LOAD, 4, ...uleb(PARAMS_AT + 4 * LANES + 16 * v)), ...set(K2)],
      ...[...i32c(0), ...simd(V_LOAD, 4, ...uleb(PARAMS_AT + 8 * LANES + 16 * v)), ...set(IX)],
      ...[...i32c(0), ...simd(V_LOAD16X4S, 3, ...uleb(8 * v)), ...set(Y1)],
      ...[...get(Y1), ...set(Y2)],
    ];
  };
  const step = (v: number) => {
    const { Y1, Y2, IX, K1, K2, ACC, P, D, S, G, Q } = L(v);
    /** The packed table entry of lane `l`'s step index. */
    const gathered = (l: number) => [
      ...get(IX),
      ...simd(0x1b, l), // i32x4.extract_lane
      ...i32c(2),
      I32SHL,
      I32LOAD,
      2,
      ...uleb(TABLE_AT),
    ];
    return [
      // p = clamp((k1·y1 + k2·y2) >> COEF_SHIFT)
      ...get(K1),
      ...get(Y1),
      ...simd(MUL),
      ...get(K2),
      ...get(Y2),
      ...simd(MUL),
      ...simd(ADD),
      ...i32c(COEF_SHIFT),
      ...simd(SHR_S),
      ...clamp16,
      ...set(P),
      // d = value − p, s its sign
      ...get(K),
      ...i32c(Math.log2(2 * LANES)),
      I32SHL,
      ...simd(V_LOAD16X4S, 3, ...uleb(8 * v)),
      ...get(P),
      ...simd(SUB),
      ...set(D),
      ...get(D),
      ...i32c(31),
      ...simd(SHR_S),
      ...set(S),
      // g = the lanes' packed step and reciprocal
      ...gathered(0),
      ...simd(0x11),
      ...gathered(1),
      ...simd(0x1c, 1), // i32x4.replace_lane
      ...gathered(2),
      ...simd(0x1c, 2),
      ...gathered(3),
      ...simd(0x1c, 3),
      ...set(G),
      // m = min((|d| · reciprocal) >>> 16 (uint32), 7)
      ...get(D),
      ...simd(ABS),
      ...get(G),
      ...i32c(16),
      ...simd(SHR_U),
      ...simd(MUL),
      ...i32c(16),
      ...simd(SHR_U),
      ...splat(7),
      ...simd(MIN_U),
      ...set(Q),
      // y1, y2 = clamp(p ± ((2m + 1) · step) >> 3), y1
      ...get(Y1),
      ...set(Y2),
      ...get(P),
      ...get(Q),
      ...i32c(1),
      ...simd(SHL),
      ...splat(1),
      ...simd(ADD),
      ...get(G),
      ...splat(0xffff),
      ...simd(V_AND),
      ...simd(MUL),
      ...i32c(3),
      ...simd(SHR_S),
      ...get(S),
      ...simd(V_XOR),
      ...get(S),
      ...simd(SUB),
      ...simd(ADD),
      ...clamp16,
      ...set(Y1),
      // index = clamp(index + (m > 3 ? 2m − 6 : −1), 0, MAX_INDEX)
      ...get(IX),
      ...get(Q),
      ...i32c(1),
      ...simd(SHL),
      ...splat(-6),
      ...simd(ADD),
      ...splat(-1),
      ...get(Q),
      ...splat(3),
      ...simd(GT_S),
      ...simd(V_BITSELECT),
      ...simd(ADD),
      ...splat(STEPS.length - 1),
      ...simd(MIN_S),
      ...splat(0),
      ...simd(MAX_S),
      ...set(IX),
      // acc |= (m | (s & 8)) << 4·(k & 7)
      ...get(ACC),
      ...get(Q),
      ...get(S),
      ...splat(8),
      ...simd(V_AND),
      ...simd(V_OR),
      ...get(K),
      ...i32c(7),
      I32AND,
      ...i32c(2),
      I32SHL,
      ...simd(SHL),
      ...simd(V_OR),
      ...set(ACC),
    ];
  };
  /** Every eighth value: each lane's word of codes to its block's, and the vector's accumulator cleared. */
  const flush = (v: number) => [
    ...[0, 1, 2, 3].flatMap((l) => [
      ...get(K),
      ...i32c(3),
      I32SHRU,
      ...i32c(2),
      I32SHL,
      ...get(L(v).ACC),
      ...simd(0x1b, l),
      I32STORE,
      2,
      ...uleb(OUT_AT + (4 * v + l) * (OCTET_BLOCK >> 1)),
    ]),
    ...splat(0),
    ...set(L(v).ACC),
  ];
  const vs = Array.from({ length: VECTORS }, (_, v) => v);
  const body = [
    ...[2, 1, I32, ...uleb(11 * VECTORS), V128],
    ...vs.flatMap(init),
    ...countedLoop(K, 1, 1, OCTET_BLOCK, [
      ...vs.flatMap(step),
      ...get(K),
      ...i32c(7),
      I32AND,
      ...i32c(7),
      I32EQ,
      IF,
      VOID,
      ...vs.flatMap(flush),
      END,
    ]),
    END,
  ];
  const decode = decodeBody();
  return new Uint8Array([
    ...WASM_HEADER,
    ...section(1, [1, 0x60, 0, 0]),
    ...section(2, [1, ...name("m"), ...name("mem"), 0x02, 0x00, 1]),
    ...section(3, [2, 0, 0]),
    ...section(7, [2, ...name("encode8"), 0x00, 0, ...name("decode8"), 0x00, 1]),
    ...section(10, [2, ...uleb(body.length), ...body, ...uleb(decode.length), ...decode]),
  ]);
}

/**
 * (func (export "decode8")): each lane's G.711 codes to their ring values (G.711 linear / 4) `<< shift`, its
 * law (0 μ-law, 1 A-law) and its shift at LANE_AT, interleaved as encode8 reads them, then per lane the sums
 * adpcm4_format.ts's writeHeaderFromSums takes (over `value >> 4`: Σ v², Σ v·v₋₁, Σ v·v₋₂, int32, wrapping as
 * `| 0` does), at SUMS_AT: a row of LANES i32 each.
 *
 * A lane's codes are decoded sixteen a turn by G.711's formula rather than looked up one by one in a table
 * (wasm has no gather: a load, a table load and a store a value took ~60% of the kernel): with x = code ^ X
 * (0xff μ-law, 0xd5 A-law), e = (x >> 4) & 7 and m = x & 15, the magnitude is `(2m + ADD[e]) · POW[e] − OFF`
 * (μ-law: ADD 33, POW 2^e, OFF 33; A-law: ADD 1 for e = 0 else 33, POW 2^max(e, 1), OFF 0), negative when x's
 * top bit is set: sample_ring.ts's tables exactly (every code of both laws; tests/audio_adpcm4_simd_test.ts).
 * ADD and POW are looked up by e in a vector (i8x16.swizzle); the values go to their interleaved slots a lane
 * at a time (v128.store16_lane). Magnitudes are at most 8,064, so `<< shift` (≤ 2) fits an Int16 as before.
 */
function decodeBody(): number[] {
  const [K, L, SH, LB, AD] = [0, 1, 2, 3, 4];
  const [X, ADDV, POWV, OFF, F7, F15, C, E, SG, T, P, M] = [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
  // v128 locals of the sums, after the decoder's: per vector v, S0 S1 S2 Y1 Y2 Y.
  const V = (v: number, i: number) => 17 + 6 * v + i;
  const vs = Array.from({ length: VECTORS }, (_, v) => v);
  const loopK = (inner: number[]) => countedLoop(K, 0, 1, OCTET_BLOCK, inner);
  /** Eight values (`half` 0: codes 0-7 of the turn, 1: 8-15) to their slots, from T, P, SG. */
  const half = (h: number) => [
    ...get(T),
    ...simd(h ? I16_EXT_HI_U : I16_EXT_LO_U),
    ...get(P),
    ...simd(h ? I16_EXT_HI_U : I16_EXT_LO_U),
    ...simd(I16_MUL),
    ...get(OFF),
    ...simd(I16_SUB),
    ...get(SH),
    ...simd(I16_SHL),
    ...get(SG),
    ...simd(h ? I16_EXT_HI_S : I16_EXT_LO_S),
    ...set(M),
    ...get(M),
    ...simd(V_XOR),
    ...get(M),
    ...simd(I16_SUB),
    ...set(M),
    ...Array.from({ length: 8 }, (_, i) => [
      ...get(AD),
      ...get(M),
      ...simd(V_STORE16_LANE, 1, ...uleb(2 * LANES * (8 * h + i)), i),
    ]).flat(),
  ];
  return [
    ...[3, 5, I32, 12, V128, ...uleb(6 * VECTORS), V128],
    ...[...i32c(7), ...simd(I8_SPLAT), ...set(F7)],
    ...[...i32c(15), ...simd(I8_SPLAT), ...set(F15)],
    ...countedLoop(L, 0, 1, LANES, [
      // The lane's law constants and shift.
      ...get(L),
      ...i32c(2),
      I32SHL,
      I32LOAD,
      2,
      ...uleb(LANE_AT),
      ...i32c(6),
      I32SHL,
      ...set(LB),
      ...get(L),
      ...i32c(2),
      I32SHL,
      I32LOAD,
      2,
      ...uleb(LANE_AT + 4 * LANES),
      ...set(SH),
      ...[X, ADDV, POWV, OFF].flatMap((local, c) => [
        ...get(LB),
        ...simd(V_LOAD, 4, ...uleb(LAW_AT + 16 * c)),
        ...set(local),
      ]),
      ...countedLoop(K, 0, 16, OCTET_BLOCK, [
        // x = code ^ X; e, the sign, 2m + ADD[e], POW[e]
        ...get(L),
        ...i32c(Math.log2(OCTET_BLOCK)),
        I32SHL,
        ...get(K),
        I32ADD,
        ...simd(V_LOAD, 4, ...uleb(CODES_AT)),
        ...get(X),
        ...simd(V_XOR),
        ...set(C),
        ...get(C),
        ...i32c(4),
        ...simd(I8_SHR_U),
        ...get(F7),
        ...simd(V_AND),
        ...set(E),
        ...get(C),
        ...i32c(7),
        ...simd(I8_SHR_S),
        ...set(SG),
        ...get(C),
        ...get(F15),
        ...simd(V_AND),
        ...i32c(1),
        ...simd(I8_SHL),
        ...get(ADDV),
        ...get(E),
        ...simd(SWIZZLE),
        ...simd(I8_ADD),
        ...set(T),
        ...get(POWV),
        ...get(E),
        ...simd(SWIZZLE),
        ...set(P),
        // value k of lane l at 2·(LANES·k + l)
        ...get(K),
        ...i32c(Math.log2(2 * LANES)),
        I32SHL,
        ...get(L),
        ...i32c(1),
        I32SHL,
        I32ADD,
        ...set(AD),
        ...half(0),
        ...half(1),
      ]),
    ]),
    ...loopK(vs.flatMap((v) => [
      ...get(K),
      ...i32c(Math.log2(2 * LANES)),
      I32SHL,
      ...simd(V_LOAD16X4S, 3, ...uleb(8 * v)),
      ...i32c(4),
      ...simd(SHR_S),
      ...set(V(v, 5)),
      ...[0, 3, 4].flatMap((other, i) => [
        ...get(V(v, i)),
        ...get(V(v, 5)),
        ...get(i === 0 ? V(v, 5) : V(v, other)),
        ...simd(MUL),
        ...simd(ADD),
        ...set(V(v, i)),
      ]),
      ...get(V(v, 3)),
      ...set(V(v, 4)),
      ...get(V(v, 5)),
      ...set(V(v, 3)),
    ])),
    ...vs.flatMap((v) =>
      [0, 1, 2].flatMap((i) => [
        ...i32c(0),
        ...get(V(v, i)),
        ...simd(V_STORE, 4, ...uleb(SUMS_AT + 4 * LANES * i + 16 * v)),
      ])
    ),
    END,
  ];
}

/**
 * The kernel over its memory: fill `values` and `params`, `run`, read `codes`. Or fill `laneCodes`, `lanes`
 * and `decode` the values into `values` with their header sums in `sums`.
 */
export interface Adpcm4Octet {
  /** The blocks' values interleaved: value k of lane l at LANES · k + l. */
  readonly values: Int16Array;
  /** Lane l's first coefficient at l, second at LANES + l, start step index at 2 · LANES + l (its header's). */
  readonly params: Int32Array;
  /** Lane l's codes (OCTET_BLOCK / 2 bytes, as encodeBlock writes them). */
  readonly codes: readonly Uint8Array[];
  /** Codes the blocks, as encodeBlock with their headers would. */
  run(): void;
  /** Lane l's 8-bit codes (OCTET_BLOCK), for {@link decode}. */
  readonly laneCodes: readonly Uint8Array[];
  /** All lanes' 8-bit codes, lane after lane (`laneCodes` one after the other): one copy for blocks in a row. */
  readonly allLaneCodes: Uint8Array;
  /** All lanes' codes, lane after lane (`codes` one after the other): one copy for slots in a row. */
  readonly allCodes: Uint8Array;
  /** Lane l's G.711 law (0 μ-law, 1 A-law: G711_LAWS of them) at l, its shift at LANES + l. */
  readonly lanes: Int32Array;
  /** Per lane: Σ v², Σ v·v₋₁, Σ v·v₋₂ over `value >> 4` (rows of LANES), as writeHeaderFromSums takes them. */
  readonly sums: Int32Array;
  /** Each lane's values from its codes into `values`, and their sums into `sums`. */
  decode(): void;
}

let octet: Adpcm4Octet | null | undefined;

/** The process's kernel (the engine is synchronous), or undefined where WebAssembly SIMD is unavailable. */
export function adpcm4Octet(): Adpcm4Octet | undefined {
  if (octet === undefined) {
    try {
      const memory = new WebAssembly.Memory({ initial: Math.ceil(MEMORY_BYTES / 65536) });
      const instance = new WebAssembly.Instance(new WebAssembly.Module(kernelBytes()), {
        m: { mem: memory },
      });
      const table = new Uint32Array(memory.buffer, TABLE_AT, STEPS.length);
      for (let i = 0; i < STEPS.length; i++) table[i] = (STEPS[i]! | (RECIPROCAL[i]! << 16)) >>> 0;
      // Each law's decoding constants (decodeBody): X, ADD and POW by segment, OFF.
      const law = new Uint8Array(memory.buffer, LAW_AT, 64 * G711_LAWS);
      [[0xff, 0, 33], [0xd5, 1, 0]].forEach(([x, least, off], l) => {
        const at = 64 * l;
        law.fill(x!, at, at + 16);
        for (let e = 0; e < 16; e++) {
          law[at + 16 + e] = e === 0 && least ? 1 : 33;
          law[at + 32 + e] = 1 << Math.max(e & 7, least!);
        }
        new Int16Array(memory.buffer, LAW_AT + at + 48, 8).fill(off!);
      });
      const codes = Array.from(
        { length: LANES },
        (_, l) => new Uint8Array(memory.buffer, OUT_AT + l * (OCTET_BLOCK >> 1), OCTET_BLOCK >> 1),
      );
      octet = {
        values: new Int16Array(memory.buffer, 0, LANES * OCTET_BLOCK),
        params: new Int32Array(memory.buffer, PARAMS_AT, 3 * LANES),
        codes,
        run: instance.exports.encode8 as () => void,
        laneCodes: Array.from(
          { length: LANES },
          (_, l) => new Uint8Array(memory.buffer, CODES_AT + l * OCTET_BLOCK, OCTET_BLOCK),
        ),
        allLaneCodes: new Uint8Array(memory.buffer, CODES_AT, LANES * OCTET_BLOCK),
        allCodes: new Uint8Array(memory.buffer, OUT_AT, LANES * (OCTET_BLOCK >> 1)),
        lanes: new Int32Array(memory.buffer, LANE_AT, 2 * LANES),
        sums: new Int32Array(memory.buffer, SUMS_AT, 3 * LANES),
        decode: instance.exports.decode8 as () => void,
      };
    } catch {
      octet = null;
    }
  }
  return octet ?? undefined;
}

/** Turns the kernel off for tests of the JS path (`true`), or on again. */
export function disableAdpcm4Octet(off: boolean): void {
  octet = off ? null : undefined;
}
