/**
 * The merge of captures (pixie/replay.ts, what `analyze`, `demo` and `run --capture` read through) against a lone
 * row from the far future (review of session 29). Each query's rows are sorted by the running maximum of their
 * times, so that a row captured a little earlier than the one before it keeps its place; a single row a day ahead
 * raised that maximum for good: every later row of its query sorted at its time, behind every row of every other
 * capture (an `analyze` of the e2e calls repeated 8 times found 50 relay matches instead of 210 with one such
 * row in the source capture). Now a row far ahead of its query joins the maximum only once the next row follows
 * on from it.
 */
import { deepEqual, equal } from "node:assert/strict";
import { mergeByTime, mergeStreams, type NodeRowStream } from "../pixie/replay.ts";
import type { Row } from "../pixie/row.ts";

const S = 1_000_000_000n;
const T0 = 1_763_900_000n * S;
const DAY = 86_400n * S;

function row(query: string, node: string, time: bigint, tag: string): Row {
  return { query, node, time, columns: { time_: time, tag } };
}

async function* batchesOf(rows: readonly Row[], size: number): AsyncGenerator<Row[]> {
  for (let i = 0; i < rows.length; i += size) yield rows.slice(i, i + size);
}

async function streamed(a: Row[], b: Row[]): Promise<{ tags: string[]; late: number }> {
  const inputs: NodeRowStream[] = [
    { node: "a", batches: batchesOf(a, 4) },
    { node: "b", batches: batchesOf(b, 3) },
  ];
  const stats = { rows: 0, late: 0, forced: 0, peakBuffered: 0 };
  const tags: string[] = [];
  for await (const step of mergeStreams(inputs, { windowNs: S }, stats)) {
    for (const x of step) tags.push(String(x.row.columns.tag));
  }
  equal(stats.rows, a.length + b.length);
  return { tags, late: stats.late };
}

/** A source capture (a row a second) and a relay capture (half a second later), 30 s each. */
function calls(): { a: Row[]; b: Row[] } {
  const a: Row[] = [], b: Row[] = [];
  for (let i = 0; i < 30; i++) {
    a.push(row("m/source", "a", T0 + BigInt(i) * S, `a${i}`));
    b.push(row("m/relay", "b", T0 + BigInt(i) * S + S / 2n, `b${i}`));
  }
  return { a, b };
}

/** The tags in time order, `last` put at the end. */
function byTime(rows: Row[], last: string[] = []): string[] {
  return rows.filter((r) => !last.includes(String(r.columns.tag)))
    .sort((x, y) => (x.time < y.time ? -1 : x.time > y.time ? 1 : 0))
    .map((r) => String(r.columns.tag)).concat(last);
}

Deno.test("merge: a lone row a day ahead sorts at its own time; its query's later rows stay in time order", async () => {
  const { a, b } = calls();
  a.splice(5, 0, row("m/source", "a", T0 + 4n * S + DAY, "spike"));
  const want = byTime([...a, ...b], ["spike"]);
  deepEqual(
    mergeByTime([{ node: "a", rows: a }, { node: "b", rows: b }]).map((x) => x.row.columns.tag),
    want,
  );
  const got = await streamed(a, b);
  deepEqual(got.tags, want, "before: a5..a29 after every relay row");
  equal(got.late, 0);
});

Deno.test("merge: a burst of rows a day ahead (a batch with a clock gone wrong) does not either", async () => {
  const { a, b } = calls();
  const burst = Array.from(
    { length: 5 },
    (_, k) => row("m/source", "a", T0 + 4n * S + DAY + BigInt(k), `s${k}`),
  );
  a.splice(5, 0, ...burst);
  const tags = burst.map((r) => String(r.columns.tag));
  const want = byTime([...a, ...b], tags);
  deepEqual(
    mergeByTime([{ node: "a", rows: a }, { node: "b", rows: b }]).map((x) => x.row.columns.tag),
    want,
  );
  const got = await streamed(a, b);
  deepEqual(got.tags, want, "before: a5..a29 after every relay row");
  equal(got.late, 0);
});

Deno.test("merge: a query's first row a day ahead does not hold its later rows back either", async () => {
  const { a, b } = calls();
  a.unshift(row("m/source", "a", T0 + DAY, "spike"));
  const want = byTime([...a, ...b], ["spike"]);
  deepEqual(
    mergeByTime([{ node: "a", rows: a }, { node: "b", rows: b }]).map((x) => x.row.columns.tag),
    want,
  );
  deepEqual((await streamed(a, b)).tags, want);
});

Deno.test("merge: a real step forward (rows that follow on) and rows a little behind the one before keep the old order", async () => {
  const { a, b } = calls();
  // A minute's pause in the source, then rows again; and a row 300 ms earlier than the one before it, which keeps
  // its place behind it (the running maximum), as before.
  for (let i = 20; i < 30; i++) a[i] = row("m/source", "a", a[i]!.time + 60n * S, `a${i}`);
  a[10] = row("m/source", "a", a[9]!.time - 300_000_000n, "a10");
  const merged = mergeByTime([{ node: "a", rows: a }, { node: "b", rows: b }]).map((x) => x.row.columns.tag);
  const want = [
    ...byTime([...a.slice(0, 10), ...a.slice(11, 20), ...b]),
    ...a.slice(20).map((r) => r.columns.tag),
  ];
  // a10 (captured at 8.7 s) right after a9 (9 s): after the relay's 8.5 s row, before its 9.5 s one.
  want.splice(want.indexOf("b9"), 0, "a10");
  deepEqual(merged, want);
  deepEqual((await streamed(a, b)).tags, want);
});
