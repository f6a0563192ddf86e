import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { openCapture, parseCapture } from "../pixie/capture.ts";
import { lineEnd, peekCaptureLine, peeked, readCaptureLine } from "../pixie/capture_line_fast.ts";
import { HeldRows } from "../pixie/held_rows.ts";
import {
  ARENA_CHUNK_BYTES,
  type ArenaChunk,
  arenaCounts,
  DeferredRow,
  LineArena,
} from "../pixie/line_arena.ts";
import { mergeByTime, mergeStreams, type NodeRowStream } from "../pixie/replay.ts";
import type { Row } from "../pixie/row.ts";
import { cellKernelBuffer, cellKernelOf } from "../pixie/string_cell_simd.ts";
import { SlabCarver, slabCounts } from "../pixie/capture_slabs.ts";
import { base64ToBytes } from "../pixie/capture.ts";

/** A small deterministic generator. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

Deno.test("HeldRows hands rows on in (key, input, seq) order, whatever order they came in", () => {
  const r = rng(7);
  for (let round = 0; round < 20; round++) {
    const held = new HeldRows<undefined>();
    const ref: { key: bigint; input: number; seq: number; row: Row }[] = [];
    const seqs = [0, 0, 0];
    const taken: Row[] = [];
    const expected: Row[] = [];
    for (let i = 0; i < 3000; i++) {
      if (r() < 0.6 || held.size === 0) {
        const input = Math.floor(r() * 3);
        // Mostly rising keys per input, some steps back and ties; a few beyond int64 and below zero.
        const x = r();
        const key = x < 0.01
          ? (1n << 70n) + BigInt(Math.floor(r() * 5))
          : x < 0.02
          ? -BigInt(Math.floor(r() * 1e12))
          : BigInt(Math.floor(i * 1e6 + (r() < 0.2 ? -r() * 5e8 : 0))) + 5_000_000_000n;
        const seq = seqs[input]!++;
        const row: Row = { query: "m/q", node: "n", time: key, columns: { i } };
        held.push(key, input, seq, row, undefined);
        ref.push({ key, input, seq, row });
      } else {
        ref.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.input - b.input || a.seq - b.seq));
        const want = ref.shift()!;
        const s = held.peek();
        equal(held.keyOf(s), want.key);
        equal(held.inputOf(s), want.input);
        equal(held.seqOf(s), want.seq);
        taken.push(held.rowOf(s)!);
        expected.push(want.row);
        held.take(s);
      }
      equal(held.size, ref.length);
    }
    deepEqual(taken, expected);
  }
});

Deno.test("HeldRows: keyBelow, and beforeLast against the row marked last", () => {
  const held = new HeldRows<undefined>();
  const big = (1n << 64n) + 3n;
  for (const [k, input, seq] of [[10n, 0, 0], [10n, 1, 0], [big, 0, 1], [-5n, 1, 1]] as const) {
    held.push(k, input, seq, { query: "m/q", node: "n", time: k, columns: {} }, undefined);
  }
  const order: bigint[] = [];
  let s = held.peek();
  equal(held.beforeLast(s), false, "no row marked yet");
  while ((s = held.peek()) >= 0) {
    ok(held.keyBelow(s, held.keyOf(s) + 1n) && !held.keyBelow(s, held.keyOf(s)));
    ok(held.keyBelow(s, big + 1n));
    order.push(held.keyOf(s));
    held.markLast(s);
    held.take(s);
  }
  deepEqual(order, [-5n, 10n, 10n, big]);
  held.push(10n, 0, 9, { query: "m/q", node: "n", time: 10n, columns: {} }, undefined);
  ok(held.beforeLast(held.peek()), "a key below the big key marked last");
  held.markLast(held.peek());
  held.take(held.peek());
  held.push(10n, 0, 8, { query: "m/q", node: "n", time: 10n, columns: {} }, undefined);
  ok(held.beforeLast(held.peek()), "the same key and input, an earlier seq");
  held.push(10n, 1, 0, { query: "m/q", node: "n", time: 10n, columns: {} }, undefined);
  held.take(held.peek());
  ok(!held.beforeLast(held.peek()), "the same key, a later input");
});

Deno.test("the newline kernel finds the first newline sixteen bytes a step, at every alignment", () => {
  const buf = cellKernelBuffer(4096);
  const k = cellKernelOf(buf);
  if (k === undefined) return; // no WebAssembly SIMD here: the reader searches with indexOf
  const r = rng(3);
  for (let t = 0; t < 400; t++) {
    for (let i = 0; i < 300; i++) buf[i] = 32 + Math.floor(r() * 90);
    const from = Math.floor(r() * 40), end = from + Math.floor(r() * 250);
    const nl = r() < 0.8 ? from + Math.floor(r() * 260) : -1;
    if (nl >= 0 && nl < 300) buf[nl] = 0x0a;
    const want = buf.subarray(0, end).indexOf(0x0a, from);
    equal(k.newline(buf, from, end), want < 0 ? end : want, `from ${from} end ${end} newline ${nl}`);
  }
});

Deno.test("peekCaptureLine reads the query, time and end readCaptureLine reads; anything else it leaves", () => {
  const carver = new SlabCarver();
  const lines = [
    '{"query":"m/source","row":{"time_":"1763900000390647160","pod":"a","req_body":"x"}}',
    '{"query":"m/asr","row":{"time_":"-12","n":3}}',
    '{ "query" : "m/asr" , "row" : { "time_" : "7" , "n" : 3 } }',
    '{"query":"m/source","row":{"time_":"123456789012345678901234567890","pod":"b"}}',
    '{"query":"m/source","row":{"time_":"5","pod":"trailing"}}   \r',
  ];
  const text = lines.join("\n");
  const bytes = new TextEncoder().encode(text + "\n");
  const buf = cellKernelBuffer(bytes.length);
  buf.set(bytes);
  let at = 0;
  for (const line of lines) {
    ok(peekCaptureLine(buf, at, bytes.length, false), line);
    const row = readCaptureLine(buf, at, bytes.length, false, "n", carver, base64ToBytes)!;
    equal(peeked.query, row.query);
    equal(peeked.time, row.time);
    equal(peeked.end, lineEnd());
    at = peeked.end + 1;
  }
  const other = [
    '{"row":{"time_":"1"},"query":"m/q"}', // row first
    '{"query":"m/q","row":{"pod":"a","time_":"1"}}', // time_ not first
    '{"query":"noslash","row":{"time_":"1"}}',
    '{"query":"m/q","row":{"time_":1}}',
    '{"capture":1,"node":"x"}',
    '{"query":"m/q","row":{"time_":"12"', // no newline before the limit, not the last line
  ];
  for (const line of other) {
    const b = new TextEncoder().encode(line);
    ok(!peekCaptureLine(b, 0, b.length, false), line);
  }
  const last = new TextEncoder().encode('{"query":"m/q","row":{"time_":"12"}}');
  ok(peekCaptureLine(last, 0, last.length, true), "the file's last line, without a newline");
  equal(peeked.end, last.length);
});

Deno.test("LineArena: a chunk is reused once every line in it is read and no more go in; a line is read once", () => {
  const arena = new LineArena();
  const line = new Uint8Array(1000).fill(65);
  const chunks: ArenaChunk[] = [];
  const per = Math.floor(ARENA_CHUNK_BYTES / line.length);
  for (let i = 0; i < per + 1; i++) chunks.push(arena.put(line, 0, line.length));
  equal(chunks[0], chunks[per - 1]);
  ok(chunks[per] !== chunks[0], "a full chunk gives way to the next");
  const free0 = arenaCounts().free;
  for (let i = 0; i < per; i++) arena.done(chunks[i]!);
  equal(arenaCounts().free, free0 + 1, "the first chunk is free once its lines are read");
  throws(() => arena.done(chunks[0]!), /read twice/);
  arena.done(chunks[per]!);
  equal(arenaCounts().free, free0 + 1, "the current chunk stays while lines may still go in");
  arena.close();
  equal(arenaCounts().free, free0 + 2, "and goes once the arena is closed");
  throws(() => new LineArena().put(new Uint8Array(ARENA_CHUNK_BYTES + 1), 0, ARENA_CHUNK_BYTES + 1));
});

Deno.test("a deferred capture read gives the rows, problems and line numbers of the eager read", async () => {
  const lines = ['{"capture": 1, "node": "node-x"}'];
  for (let i = 0; i < 600; i++) {
    lines.push(
      JSON.stringify({ query: "m/source", row: { time_: String(1000 + i), req_body: `héllo ${i}` } }),
    );
    // The usual start, then a cell the direct reader leaves (JSON.parse decides), or a malformed one.
    if (i % 53 === 0) lines.push(`{"query":"m/source","row":{"time_":"${2000 + i}","n":1.5e3}}`);
    if (i % 71 === 0) lines.push(`{"query":"m/source","row":{"time_":"${3000 + i}","bad":[1]}}`);
    if (i % 97 === 0) lines.push("not json at all");
  }
  const text = lines.join("\r\n") + "\n";
  const path = await Deno.makeTempFile({ suffix: ".jsonl" });
  try {
    await Deno.writeTextFile(path, text);
    const whole = parseCapture(text, path);
    // All problems kept, and only the first few: those are the first lines by number either way.
    for (const keep of [1000, 5]) {
      const reader = await openCapture(path, { chunkBytes: 977, batchRows: 13, keepProblems: keep });
      const rows: Row[] = [];
      let deferred = 0;
      for await (const b of reader.batches({ deferred: true })) {
        const step: Row[] = [];
        for (const x of b) {
          if (x instanceof DeferredRow) {
            deferred++;
            const r = reader.materialize(x.chunk, x.at, x.len, x.line);
            if (r !== undefined) step.push(r);
          } else step.push(x);
        }
        reader.sealRows(step);
        rows.push(...step);
      }
      ok(deferred > 600);
      deepEqual(rows, whole.rows);
      equal(reader.problemCount, whole.problems.length);
      deepEqual(
        reader.problems,
        whole.problems.slice(0, keep),
        "a line found malformed when it is read is kept with its line number, in line order",
      );
    }
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("mergeStreams of deferred inputs: mergeByTime's rows in its order, each line read once", async () => {
  const r = rng(11);
  const dir = await Deno.makeTempDir();
  try {
    const inputs: { path: string; rows: Row[] }[] = [];
    for (const node of ["a", "b"]) {
      const lines = [JSON.stringify({ capture: 1, node })];
      let t = 1_000_000_000;
      for (let i = 0; i < 3000; i++) {
        t += Math.floor(r() * 3e6);
        const q = r() < 0.5 ? "m/source" : "m/asr";
        // Some rows step back in time (within the window), as Pixie's batches per query do.
        const time = r() < 0.1 ? t - Math.floor(r() * 4e8) : t;
        lines.push(JSON.stringify({ query: q, row: { time_: String(time), body: `${node}${i}` } }));
      }
      const path = `${dir}/${node}.jsonl`;
      await Deno.writeTextFile(path, lines.join("\n") + "\n");
      inputs.push({ path, rows: parseCapture(lines.join("\n"), path).rows });
    }
    const want = mergeByTime(inputs.map((x, i) => ({ node: ["a", "b"][i]!, rows: x.rows })));
    const streams: NodeRowStream[] = [];
    for (const x of inputs) {
      const reader = await openCapture(x.path, { batchRows: 64 });
      streams.push({
        node: reader.node,
        batches: reader.batches({ deferred: true }),
        release: (b) => reader.release(b),
        materialize: (chunk, at, len, line) => reader.materialize(chunk, at, len, line),
        sealRows: (rows) => reader.sealRows(rows),
      });
    }
    const got: { node: string; row: Row }[] = [];
    for await (const step of mergeStreams(streams, { windowNs: 1_000_000_000n })) {
      for (const x of step) {
        ok(!(x.row instanceof DeferredRow));
        got.push({ node: x.node, row: { ...x.row, columns: { ...x.row.columns } } });
      }
    }
    deepEqual(
      got.map((x) => [x.node, x.row.columns["body"]]),
      want.map((x) => [x.node, x.row.columns["body"]]),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the last deferred rows of a capture, carving nothing, do not put the reader's slab in the pool twice", async () => {
  // Cells that carve nothing (numbers): the reader's carver closes as the last line is read, before the merge
  // seals the step's rows.
  const lines = ['{"capture":1,"node":"n"}'];
  for (let i = 0; i < 3; i++) lines.push(`{"query":"m/q","row":{"time_":"${i + 1}","n":${i}}}`);
  const path = await Deno.makeTempFile({ suffix: ".jsonl" });
  try {
    await Deno.writeTextFile(path, lines.join("\n") + "\n");
    const reader = await openCapture(path);
    const held: DeferredRow[] = [];
    for await (const b of reader.batches({ deferred: true })) {
      for (const x of b) held.push(x as DeferredRow);
      reader.release(b);
    }
    const before = slabCounts().recycled;
    const rows: Row[] = [];
    for (const x of held) rows.push(reader.materialize(x.chunk, x.at, x.len, x.line)!);
    reader.sealRows(rows);
    reader.release(rows);
    equal(slabCounts().recycled, before + 1, "the reader's one slab is recycled once");
    // Twice in the pool, two carvers would carve from the same bytes.
    const a = new SlabCarver(), b = new SlabCarver();
    ok(a.reserve(1) !== b.reserve(1), "two carvers never share a slab");
    a.close();
    b.close();
  } finally {
    await Deno.remove(path);
  }
});
