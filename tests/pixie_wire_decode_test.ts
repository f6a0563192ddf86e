/**
 * The hand-written decoder of row batches agrees with protobufjs on every message, takes the fast path on what
 * Pixie sends, and hands out plain Uint8Array views (never Buffers) for STRING cells.
 */
import { deepStrictEqual, equal, notEqual, ok, throws } from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  type ColumnData,
  DataType,
  decodeExecuteScriptResponse,
  decodeExecuteScriptResponseReference,
  decodeRowBatch,
  decodeRowBatchReference,
  encodeExecuteScriptResponse,
  encodeRowBatch,
  type RowBatch,
} from "../pixie/messages.ts";
import { fastDecodeExecuteScriptResponse, fastDecodeRowBatch } from "../pixie/wire_decode.ts";
import { mulberry32 } from "./support/fake_vizier.ts";

const te = new TextEncoder();
const MAX_U64 = (1n << 64n) - 1n;

function randomBatch(random: () => number, rows: number): RowBatch {
  const big = () =>
    BigInt.asIntN(64, BigInt(Math.floor(random() * 2 ** 32)) << BigInt(Math.floor(random() * 33)));
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)]!;
  const n = Array.from({ length: rows }, (_, i) => i);
  const cols: ColumnData[] = [
    { type: "time64ns", data: n.map(() => pick([0n, -1n, 1_780_000_000_000_000_000n, big()])) },
    { type: "int64", data: n.map(() => pick([0n, 1n, -1n, -(1n << 63n), (1n << 63n) - 1n, big()])) },
    {
      type: "uint128",
      data: n.map(() => pick([0n, (MAX_U64 << 64n) | MAX_U64, (BigInt.asUintN(64, big()) << 64n) | 5n])),
    },
    { type: "float64", data: n.map(() => pick([0, -0, 0.1, -1e300, Infinity, random()])) },
    { type: "boolean", data: n.map(() => random() < 0.5) },
    {
      type: "string",
      data: n.map(() =>
        pick([
          new Uint8Array(0),
          te.encode("héllo"),
          new Uint8Array([0xff, 0xfe, 0x00, 0x80]),
          te.encode("x".repeat(Math.floor(random() * 400))),
        ])
      ),
    },
  ];
  return {
    tableId: `t-${Math.floor(random() * 9)}`,
    cols,
    numRows: rows,
    eow: random() < 0.5,
    eos: random() < 0.5,
  };
}

Deno.test("row batches: the fast decoder gives what protobufjs gives, for every column type and edge value", () => {
  const random = mulberry32(16);
  for (let k = 0; k < 200; k++) {
    const b = randomBatch(random, Math.floor(random() * 20));
    const bytes = encodeRowBatch(b);
    const fast = fastDecodeRowBatch(bytes);
    ok(fast, "a batch as Pixie sends it takes the fast path");
    deepStrictEqual(fast, decodeRowBatchReference(bytes));
    deepStrictEqual(decodeRowBatch(bytes), b);
    const resp = encodeExecuteScriptResponse({ queryId: `q-${k}`, batch: b });
    const r = fastDecodeExecuteScriptResponse(Buffer.from(resp));
    ok(r);
    deepStrictEqual(r, decodeExecuteScriptResponseReference(resp));
  }
});

Deno.test("STRING cells are plain Uint8Array views into the message, never Buffers", () => {
  const b = randomBatch(mulberry32(3), 5);
  const msg = Buffer.from(encodeExecuteScriptResponse({ queryId: "q", batch: b }));
  const r = decodeExecuteScriptResponse(msg)!;
  const col = r.batch!.cols[5]!;
  ok(col.type === "string");
  for (const cell of col.data) {
    equal(Object.getPrototypeOf(cell), Uint8Array.prototype);
    if (cell.length > 0) equal(cell.buffer, msg.buffer, "a view, not a copy");
  }
});

Deno.test("a short STRING cell equal to the one before it is that cell's view again; others are views of their own", () => {
  const cells = [
    "pod-a",
    "pod-a",
    "pod-a",
    "pod-b",
    "pod-a",
    "",
    "",
    "y".repeat(64),
    "y".repeat(64),
    "z".repeat(65),
  ];
  cells.push("z".repeat(65));
  const data = cells.map((c) => te.encode(c));
  const b: RowBatch = {
    tableId: "t",
    cols: [{ type: "string", data }],
    numRows: data.length,
    eow: false,
    eos: false,
  };
  const msg = Buffer.from(encodeExecuteScriptResponse({ queryId: "q", batch: b }));
  const got = decodeExecuteScriptResponse(msg).batch!.cols[0]!.data as Uint8Array[];
  deepStrictEqual(got.map((c) => new TextDecoder().decode(c)), cells);
  const same = got.map((c, i) => i > 0 && c === got[i - 1]);
  // The same bytes in a row share a view up to 64 bytes; a change (or a longer cell) makes a new one.
  deepStrictEqual(same, [false, true, true, false, false, false, true, false, true, false, false]);
  for (const c of got) equal(Object.getPrototypeOf(c), Uint8Array.prototype);
});

/** Encodes a varint. */
function varint(v: bigint): number[] {
  const out: number[] = [];
  let x = BigInt.asUintN(64, v);
  do {
    const b = Number(x & 0x7fn);
    x >>= 7n;
    out.push(x > 0n ? b | 0x80 : b);
  } while (x > 0n);
  return out;
}
const field = (n: number, wt: number) => varint(BigInt((n << 3) | wt));
const ld = (n: number, body: number[]) => [...field(n, 2), ...varint(BigInt(body.length)), ...body];

Deno.test("unpacked repeated values, unknown fields and a last value that wins decode as protobufjs decodes them", () => {
  const cases: number[][] = [
    // int64 column unpacked, then an unknown varint field 9 and an unknown length-delimited field 12.
    [
      ...ld(1, ld(2, [...field(1, 0), ...varint(-5n), ...field(1, 0), ...varint(1n << 62n)])),
      ...field(2, 0),
      ...varint(2n),
      ...field(9, 0),
      ...varint(7n),
      ...ld(12, [1, 2, 3]),
    ],
    // bool column unpacked with a value whose low 32 bits are 0 (still true), float64 unpacked.
    [
      ...ld(1, ld(1, [...field(1, 0), ...varint(1n << 32n), ...field(1, 0), ...varint(3n)])),
      ...ld(
        1,
        ld(5, [...field(1, 1), 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, ...field(1, 1), 0, 0, 0, 0, 0, 0, 0, 0x80]),
      ),
      ...field(2, 0),
      ...varint(2n),
      ...field(4, 0),
      ...varint(1n),
      ...field(4, 0),
      ...varint(0n),
    ],
    // table_id twice (last wins), uint128 with high before low and an unknown field inside.
    [
      ...ld(5, [...te.encode("a")]),
      ...ld(5, [...te.encode("bb")]),
      ...ld(
        1,
        ld(3, ld(1, [...field(2, 0), ...varint(7n), ...field(1, 0), ...varint(9n), ...field(3, 0), 1])),
      ),
      ...field(2, 0),
      ...varint(1n),
    ],
  ];
  for (const c of cases) {
    const bytes = new Uint8Array(c);
    const fast = fastDecodeRowBatch(bytes);
    ok(fast, "handled by the fast path");
    deepStrictEqual(fast, decodeRowBatchReference(bytes));
  }
});

Deno.test("anything else is left to protobufjs: status, metadata, stats, odd encodings, broken messages", () => {
  const meta = encodeExecuteScriptResponse({
    queryId: "q",
    metaData: { id: "t", name: "m/source", relation: [{ name: "time_", type: DataType.TIME64NS }] },
  });
  const status = encodeExecuteScriptResponse({
    queryId: "q",
    status: { code: 3, message: "x", compilerErrors: [] },
  });
  const stats = encodeExecuteScriptResponse({
    queryId: "q",
    stats: { executionTimeNs: 1n, compilationTimeNs: 2n, bytesProcessed: 3n, recordsProcessed: 4n },
  });
  for (const m of [meta, status, stats]) {
    equal(fastDecodeExecuteScriptResponse(m), undefined);
    deepStrictEqual(decodeExecuteScriptResponse(m), decodeExecuteScriptResponseReference(m));
  }
  const odd: number[][] = [
    // A column with no data (protobufjs' path names the error), two oneof members, non-ASCII table id.
    [...ld(1, [])],
    [...ld(1, [...ld(2, []), ...ld(6, [])])],
    [...ld(5, [0xc3, 0xa9])],
    // num_rows negative and past 2^53.
    [...field(2, 0), ...varint(-1n)],
    [...field(2, 0), ...varint(1n << 53n)],
    // A known field with the wrong wire type.
    [...field(2, 2), 0],
  ];
  for (const c of odd) equal(fastDecodeRowBatch(new Uint8Array(c)), undefined, JSON.stringify(c));
  throws(() => decodeRowBatch(new Uint8Array([...ld(1, [])])), /column without data/);
  throws(() => decodeRowBatch(new Uint8Array([...field(2, 0), ...varint(-1n)])), /bad num_rows/);
  // Cut short: both decoders refuse it.
  const whole = encodeRowBatch(randomBatch(mulberry32(1), 4));
  const cut = whole.subarray(0, whole.length - 3);
  equal(fastDecodeRowBatch(cut), undefined);
  throws(() => decodeRowBatch(cut));
  // An encrypted batch is a view of its bytes; an empty one is none.
  const enc = encodeExecuteScriptResponse({ queryId: "q", encryptedBatch: te.encode("a.b.c.d.e") });
  const r = fastDecodeExecuteScriptResponse(enc);
  ok(r);
  deepStrictEqual(r, decodeExecuteScriptResponseReference(enc));
  const none = new Uint8Array([...ld(2, [...te.encode("q")]), ...ld(3, ld(3, []))]);
  deepStrictEqual(fastDecodeExecuteScriptResponse(none), { queryId: "q" });
  deepStrictEqual(decodeExecuteScriptResponseReference(none), { queryId: "q" });
  notEqual(fastDecodeExecuteScriptResponse(encodeExecuteScriptResponse({ queryId: "q" })), undefined);
});
