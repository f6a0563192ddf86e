/**
 * The re-run dedupe's compact keys: a row is known again by its time and every cell, a difference in any cell
 * of any type makes another row, pruning forgets by time only, and the table keeps every key as it grows.
 */
import { equal, notEqual, ok } from "node:assert/strict";
import { type ColumnData, type ColumnInfo, DataType } from "../pixie/messages.ts";
import { DeliveredRows, hashRows } from "../pixie/delivered_rows.ts";
import { batchToRows } from "../pixie/columns.ts";
import { hash32 } from "../util/xxhash32.ts";
import { rng } from "./support/rng.ts";

const te = new TextEncoder();
const RELATION: ColumnInfo[] = [
  { name: "time_", type: DataType.TIME64NS },
  { name: "upid", type: DataType.UINT128 },
  { name: "req_body", type: DataType.STRING },
  { name: "count", type: DataType.INT64 },
  { name: "ratio", type: DataType.FLOAT64 },
  { name: "ok", type: DataType.BOOLEAN },
];

/** One row's columns. */
function cols(over: Partial<Record<string, unknown>> = {}): ColumnData[] {
  const v = {
    time_: 5n,
    upid: 7n << 64n,
    req_body: te.encode("body"),
    count: -3n,
    ratio: 0.5,
    ok: true,
    ...over,
  };
  return [
    { type: "time64ns", data: [v.time_ as bigint] },
    { type: "uint128", data: [v.upid as bigint] },
    { type: "string", data: [v.req_body as Uint8Array] },
    { type: "int64", data: [v.count as bigint] },
    { type: "float64", data: [v.ratio as number] },
    { type: "boolean", data: [v.ok as boolean] },
  ];
}

function key(c: ColumnData[], relation = RELATION): [number, number] {
  const h = hashRows(c, relation, 1);
  return [h.h1[0]!, h.h2[0]!];
}

Deno.test("a row is the same row by its time and every cell; any cell changed makes another row", () => {
  const set = new DeliveredRows();
  const [a1, a2] = key(cols());
  equal(set.seenOrAdd(5n, a1, a2, true), false);
  equal(
    set.seenOrAdd(5n, ...key(cols({ req_body: te.encode("body") })), true),
    true,
    "equal bytes, other array",
  );
  equal(set.seenOrAdd(6n, a1, a2, false), false, "same cells at another time");
  const changed: Partial<Record<string, unknown>>[] = [
    { upid: 8n << 64n },
    { upid: (7n << 64n) | 1n },
    { req_body: te.encode("bodz") },
    { req_body: te.encode("body ") },
    { req_body: new Uint8Array(0) },
    { count: 3n },
    { count: -3n + (1n << 32n) },
    { ratio: 0.25 },
    { ok: false },
  ];
  for (const c of changed) equal(set.seenOrAdd(5n, ...key(cols(c)), false), false, Object.keys(c).join());
  // As the string fingerprint rendered them: 0 and -0 alike, every NaN alike.
  equal(key(cols({ ratio: 0 })).join(), key(cols({ ratio: -0 })).join());
  equal(key(cols({ ratio: NaN })).join(), key(cols({ ratio: -NaN })).join());
  // Bytes do not slide from one column into the next.
  const two: ColumnInfo[] = [
    { name: "time_", type: DataType.TIME64NS },
    { name: "a", type: DataType.STRING },
    { name: "b", type: DataType.STRING },
  ];
  const split = (a: string, b: string): ColumnData[] => [
    { type: "time64ns", data: [1n] },
    { type: "string", data: [te.encode(a)] },
    { type: "string", data: [te.encode(b)] },
  ];
  ok(key(split("ab", "c"), two).join() !== key(split("a", "bc"), two).join());
  // Another relation (a column renamed) never matches the old rows.
  const renamed = RELATION.map((c, i) => (i === 3 ? { ...c, name: "n" } : c));
  ok(key(cols(), renamed).join() !== key(cols()).join());
});

Deno.test("the table keeps every key as it grows, and pruning forgets exactly the rows before the bound", () => {
  const set = new DeliveredRows();
  const n = 5000;
  const body = (i: number) => te.encode(`row-${i}`);
  const batch: ColumnData[] = [
    { type: "time64ns", data: Array.from({ length: n }, (_, i) => BigInt(i) - 100n) },
    { type: "uint128", data: Array.from({ length: n }, () => 0n) },
    { type: "string", data: Array.from({ length: n }, (_, i) => body(i)) },
    { type: "int64", data: Array.from({ length: n }, () => 0n) },
    { type: "float64", data: Array.from({ length: n }, () => 0) },
    { type: "boolean", data: Array.from({ length: n }, () => false) },
  ];
  const h = hashRows(batch, RELATION, n);
  const times = batch[0]!.data as bigint[];
  for (let i = 0; i < n; i++) equal(set.seenOrAdd(times[i]!, h.h1[i]!, h.h2[i]!, true), false);
  equal(set.size, n);
  for (let i = 0; i < n; i++) ok(set.seenOrAdd(times[i]!, h.h1[i]!, h.h2[i]!, false), `row ${i} kept`);
  set.prune(0n);
  equal(set.size, n - 100, "negative times are before 0");
  for (let i = 0; i < n; i++) equal(set.seenOrAdd(times[i]!, h.h1[i]!, h.h2[i]!, false), i >= 100);
  set.prune(4000n);
  equal(set.size, n - 4100);
  // The rows batchToRows builds carry the same cells the hashes were taken from.
  const rows = batchToRows({ tableId: "t", cols: batch, numRows: n, eow: false, eos: false }, RELATION, {
    query: "m/source",
    node: "n",
  });
  equal(new TextDecoder().decode(rows[42]!.columns.req_body as Uint8Array), "row-42");
});

Deno.test("batchToRows builds each row's record with the relation's names, odd names included", () => {
  const relation: ColumnInfo[] = [
    { name: "time_", type: DataType.TIME64NS },
    { name: 'a "quoted" \\ name', type: DataType.INT64 },
    { name: "__proto__", type: DataType.INT64 },
  ];
  const rows = batchToRows(
    {
      tableId: "t",
      cols: [{ type: "time64ns", data: [1n] }, { type: "int64", data: [2n] }, { type: "int64", data: [3n] }],
      numRows: 1,
      eow: false,
      eos: false,
    },
    relation,
    { query: "m/source", node: "n" },
  );
  equal(rows[0]!.columns['a "quoted" \\ name'], 2n);
  equal(rows[0]!.columns.time_, 1n);
  equal(Object.getOwnPropertyDescriptor(rows[0]!.columns, "__proto__")?.value, 3n, "a column, as before");
  const plain = batchToRows(
    {
      tableId: "t",
      cols: [{ type: "time64ns", data: [1n] }, { type: "int64", data: [2n] }],
      numRows: 1,
      eow: false,
      eos: false,
    },
    relation.slice(0, 2),
    { query: "m/source", node: "n" },
  );
  equal(Object.keys(plain[0]!.columns).join("|"), 'time_|a "quoted" \\ name');
});

Deno.test("rows later than every row held are only appended; rows back in time are looked up, as a set would", () => {
  const set = new DeliveredRows();
  // In time order (a live table): no index is built, the log alone holds them.
  for (let i = 0; i < 3000; i++) equal(set.seenOrAdd(BigInt(i), i, ~i, true), false);
  equal(set.size, 3000);
  equal(set.bytes, 4096 * 16, "no index for rows in time order");
  // A re-run's overlap: every row is known again, at the cost of an index.
  for (let i = 2000; i < 3000; i++) ok(set.seenOrAdd(BigInt(i), i, ~i, true), `row ${i}`);
  ok(set.bytes > 4096 * 16);
  // Against a plain set of keys: random steps forward, back in time, repeats, prunes.
  const r = rng(3);
  const model = new Map<string, bigint>();
  const live = new DeliveredRows();
  let now = 1_000_000n;
  for (let step = 0; step < 60_000; step++) {
    const x = r();
    if (x < 0.002) {
      const bound = now - BigInt(Math.floor(r() * 200));
      live.prune(bound);
      for (const [k, t] of model) if (t < bound) model.delete(k);
      continue;
    }
    if (x < 0.7) now += BigInt(Math.floor(r() * 3));
    const t = x < 0.85 ? now : now - BigInt(Math.floor(r() * 300));
    const h1 = Math.floor(r() * 4) | 0, h2 = x < 0.95 ? 7 : Math.floor(r() * 2);
    const add = r() < 0.9;
    const k = `${t}/${h1}/${h2}`;
    const had = model.has(k);
    equal(live.seenOrAdd(t, h1, h2, add), had, `step ${step}`);
    if (!had && add) model.set(k, t);
    equal(live.size, model.size);
  }
});

Deno.test("long cells: the same bytes hash alike at any offset of any buffer; one byte changed anywhere differs", () => {
  const relation: ColumnInfo[] = [{ name: "time_", type: DataType.TIME64NS }, {
    name: "b",
    type: DataType.STRING,
  }];
  const body = new Uint8Array(100).map((_, i) => (i * 37 + 11) & 0xff);
  const at = (off: number, bytes: Uint8Array) => {
    const buf = new Uint8Array(off + bytes.length + 3);
    buf.set(bytes, off);
    return buf.subarray(off, off + bytes.length);
  };
  const hash = (cell: Uint8Array) => {
    const h = hashRows([{ type: "time64ns", data: [1n] }, { type: "string", data: [cell] }], relation, 1);
    return `${h.h1[0]},${h.h2[0]}`;
  };
  for (const n of [16, 17, 31, 32, 33, 64, 100]) {
    const want = hash(body.slice(0, n));
    for (let off = 0; off < 4; off++) equal(hash(at(off, body.subarray(0, n))), want, `${n} bytes at ${off}`);
    const seen = new Set([want]);
    for (let i = 0; i < n; i++) {
      const other = body.slice(0, n);
      other[i]! ^= 0x40;
      seen.add(hash(at(i & 3, other)));
    }
    equal(seen.size, n + 1, `${n} bytes: every change another hash`);
    // Words trading places, within a 16-byte stripe (other lanes) or across stripes (the same lane), differ too.
    for (const [a, b] of [[0, 4], [0, 16], [4, 12], [8, 24]] as const) {
      if (b + 4 > n) continue;
      const other = body.slice(0, n);
      other.set(body.subarray(a, a + 4), b);
      other.set(body.subarray(b, b + 4), a);
      notEqual(hash(other), want, `${n} bytes: words at ${a} and ${b} swapped`);
    }
  }
});

Deno.test("a payload column's cells: each one's hash32 comes out beside the rows' hashes, at any offset and length", () => {
  const relation: ColumnInfo[] = [
    { name: "time_", type: DataType.TIME64NS },
    { name: "pod", type: DataType.STRING },
    { name: "b", type: DataType.STRING },
  ];
  const random = rng(7);
  const buf = new Uint8Array(4096).map(() => Math.floor(random() * 256));
  const cells: Uint8Array[] = [];
  for (let n = 0; n <= 70; n++) {
    for (let off = 0; off < 4; off++) cells.push(buf.subarray(off + 8 * n, off + 9 * n));
  }
  const times = cells.map((_, i) => BigInt(i));
  const pods = cells.map(() => te.encode("pod-0"));
  const c: ColumnData[] = [
    { type: "time64ns", data: times },
    { type: "string", data: pods },
    { type: "string", data: cells },
  ];
  const plain = hashRows(c, relation, cells.length);
  // Reused from a smaller batch hashed without them: the cells' hashes come with the rows' grown.
  const h = hashRows(c, relation, cells.length, hashRows(c, relation, 1), 2);
  for (let i = 0; i < cells.length; i++) {
    equal(
      h.cell![i]! >>> 0,
      hash32(cells[i]!),
      `cell ${i}: ${cells[i]!.length} bytes at ${cells[i]!.byteOffset}`,
    );
    equal(h.h1[i], plain.h1[i]);
    equal(h.h2[i], plain.h2[i]);
  }
});
