import { deepStrictEqual, equal, ok, throws } from "node:assert/strict";
import {
  type ColumnInfo,
  DataType,
  decodeExecuteScriptResponse,
  decodeRowBatch,
  encodeExecuteScriptResponse,
  encodeRowBatch,
  longToBigInt,
  type RowBatch,
  uuidFromParts,
  uuidToParts,
} from "../pixie/messages.ts";
import { batchToRows, PixieDecodeError } from "../pixie/columns.ts";

const RELATION: ColumnInfo[] = [
  { name: "time_", type: DataType.TIME64NS },
  { name: "upid", type: DataType.UINT128 },
  { name: "req_body", type: DataType.STRING },
  { name: "count", type: DataType.INT64 },
  { name: "ratio", type: DataType.FLOAT64 },
  { name: "ok", type: DataType.BOOLEAN },
];

const INVALID_UTF8 = new Uint8Array([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x80]);
const MAX_U64 = (1n << 64n) - 1n;
const UPID = (0x0123456789abcdefn << 64n) | 0xfedcba9876543210n;

function batch(): RowBatch {
  return {
    tableId: "tbl-1",
    numRows: 2,
    eow: false,
    eos: true,
    cols: [
      { type: "time64ns", data: [1_700_000_000_123_456_789n, 9_223_372_036_854_775_807n] },
      { type: "uint128", data: [UPID, (MAX_U64 << 64n) | MAX_U64] },
      { type: "string", data: [INVALID_UTF8, new TextEncoder().encode("héllo")] },
      { type: "int64", data: [-9_223_372_036_854_775_808n, 9_007_199_254_740_993n] },
      { type: "float64", data: [0.1, -1e300] },
      { type: "boolean", data: [true, false] },
    ],
  };
}

Deno.test("row batches survive the wire without losing 64-bit precision or bytes", () => {
  const back = decodeRowBatch(encodeRowBatch(batch()));
  deepStrictEqual(back, batch());
  // Through a whole response too.
  const resp = decodeExecuteScriptResponse(encodeExecuteScriptResponse({ queryId: "q", batch: batch() }));
  equal(resp.queryId, "q");
  deepStrictEqual(resp.batch, batch());
});

Deno.test("batchToRows decodes every column type into Row cells", () => {
  const rows = batchToRows(decodeRowBatch(encodeRowBatch(batch())), RELATION, {
    query: "m/source",
    node: "n1",
  });
  equal(rows.length, 2);
  const [a, b] = rows as [typeof rows[0], typeof rows[0]];
  equal(a!.query, "m/source");
  equal(a!.node, "n1");
  equal(a!.time, 1_700_000_000_123_456_789n);
  equal(b!.time, 9_223_372_036_854_775_807n);
  equal(a!.columns.time_, a!.time);
  equal(a!.columns.upid, "01234567-89ab-cdef-fedc-ba9876543210");
  equal(b!.columns.upid, "ffffffff-ffff-ffff-ffff-ffffffffffff");
  deepStrictEqual(a!.columns.req_body, INVALID_UTF8);
  ok(a!.columns.req_body instanceof Uint8Array);
  equal(new TextDecoder().decode(b!.columns.req_body as Uint8Array), "héllo");
  equal(a!.columns.count, -9_223_372_036_854_775_808n);
  equal(b!.columns.count, 9_007_199_254_740_993n);
  equal(a!.columns.ratio, 0.1);
  equal(a!.columns.ok, true);
  equal(b!.columns.ok, false);
});

Deno.test("batchToRows with the payload cells' hashes: each row carries its cell's beside that very cell", () => {
  const rows = batchToRows(decodeRowBatch(encodeRowBatch(batch())), RELATION, {
    query: "m/source",
    node: "n1",
    payloadHashes: { column: 2, hashes: new Int32Array([-1, 7]) },
  });
  equal(rows[0]!.payloadHash, -1);
  equal(rows[1]!.payloadHash, 7);
  for (const r of rows) equal(r.hashedPayload, r.columns.req_body);
  equal(batchToRows(batch(), RELATION, { query: "m/s", node: "n" })[0]!.payloadHash, undefined);
});

Deno.test("a keep-alive batch gives no rows; a batch that disagrees with its relation is refused", () => {
  deepStrictEqual(
    batchToRows({ ...batch(), numRows: 0, cols: [] }, RELATION, { query: "m/s", node: "n" }),
    [],
  );
  throws(() => batchToRows(batch(), RELATION.slice(1), { query: "m/s", node: "n" }), PixieDecodeError);
  const wrongType = RELATION.map((c, i) => (i === 3 ? { ...c, type: DataType.STRING } : c));
  throws(() => batchToRows(batch(), wrongType, { query: "m/s", node: "n" }), /count is int64/);
  throws(
    () => batchToRows({ ...batch(), numRows: 3 }, RELATION, { query: "m/s", node: "n" }),
    /has 2 values/,
  );
  const noTime = RELATION.map((c, i) => (i === 0 ? { ...c, name: "t" } : c));
  throws(() => batchToRows(batch(), noTime, { query: "m/s", node: "n" }), /no time_ time column/);
  equal(batchToRows(batch(), noTime, { query: "m/s", node: "n", timeColumn: "t" }).length, 2);
});

Deno.test("UUIDs and 64-bit halves convert both ways", () => {
  const id = "8ba7b810-9dad-11d1-80b4-00c04fd430c8";
  const p = uuidToParts(id)!;
  equal(uuidFromParts(p.high, p.low), id);
  equal(uuidToParts("not-a-uuid"), undefined);
  equal(longToBigInt({ high: -1, low: -1, unsigned: true }, true), MAX_U64);
  equal(longToBigInt({ high: -1, low: -1, unsigned: false }), -1n);
  equal(longToBigInt("18446744073709551615", true), MAX_U64);
});
