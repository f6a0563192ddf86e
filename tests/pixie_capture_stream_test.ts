import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { openCapture, parseCapture } from "../pixie/capture.ts";
import { mergeByTime, mergeStreams, type NodeRowStream, replayStream } from "../pixie/replay.ts";
import type { Row } from "../pixie/row.ts";
import { openFilesTo } from "./support/open_files.ts";

const S = 1_000_000_000n;

function row(query: string, node: string, time: bigint, tag: number): Row {
  return { query, node, time, columns: { time_: time, tag } };
}

async function* batchesOf(rows: readonly Row[], size: number): AsyncGenerator<Row[]> {
  for (let i = 0; i < rows.length; i += size) yield rows.slice(i, i + size);
}

async function collect(
  it: AsyncIterable<{ node: string; row: Row }[]>,
): Promise<{ node: string; row: Row }[]> {
  const out: { node: string; row: Row }[] = [];
  for await (const b of it) out.push(...b);
  return out;
}

Deno.test("openCapture streams a file in small chunks into the same rows and problems as parseCapture", async () => {
  const lines = ['{"capture": 1, "node": "node-x"}'];
  for (let i = 0; i < 500; i++) {
    lines.push(
      JSON.stringify({ query: "m/source", row: { time_: String(1000 + i), req_body: `héllo ${i}` } }),
    );
    if (i % 97 === 0) lines.push("not json at all");
    if (i % 131 === 0) lines.push("");
  }
  const text = lines.join("\r\n") + "\n";
  const path = await Deno.makeTempFile({ suffix: ".jsonl" });
  try {
    await Deno.writeTextFile(path, text);
    const whole = parseCapture(text, path);
    // 61 bytes per read: lines and multi-byte characters are cut across reads.
    const reader = await openCapture(path, { chunkBytes: 61, batchRows: 7, keepProblems: 3 });
    equal(reader.node, "node-x");
    const rows: Row[] = [];
    let batches = 0;
    for await (const b of reader.batches()) {
      ok(b.length <= 7);
      batches++;
      rows.push(...b);
    }
    ok(batches > 70);
    deepEqual(rows, whole.rows);
    equal(reader.problemCount, whole.problems.length);
    deepEqual(reader.problems, whole.problems.slice(0, 3));
    equal(reader.bytesRead, new TextEncoder().encode(text).length);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("mergeStreams gives mergeByTime's order: running max per query, ties in input order", async () => {
  // Node a: two queries interleaved, one row of q1 captured 300 ms earlier than the one before it (kept behind
  // it by the running max); node b: rows at the same times as a's (a's come first on ties).
  const a: Row[] = [];
  const b: Row[] = [];
  for (let i = 0; i < 300; i++) {
    const t = BigInt(i) * 100_000_000n;
    a.push(row("m/q1", "a", i === 150 ? t - 300_000_000n : t, i));
    if (i % 3 === 0) a.push(row("m/q2", "a", t + 50_000_000n, i));
    b.push(row("m/q3", "b", t, i));
  }
  const expected = mergeByTime([{ node: "a", rows: a }, { node: "b", rows: b }]).map((x) => x.row);
  const inputs: NodeRowStream[] = [
    { node: "a", batches: batchesOf(a, 5) },
    { node: "b", batches: batchesOf(b, 11) },
  ];
  const stats = { rows: 0, late: 0, forced: 0, peakBuffered: 0 };
  const got = (await collect(mergeStreams(inputs, { windowNs: S }, stats))).map((x) => x.row);
  deepEqual(got, expected);
  equal(stats.late, 0);
  equal(stats.rows, a.length + b.length);
  // Lazily: only about the window's worth of rows (1 s = ~25 rows here) plus a batch is ever held.
  ok(stats.peakBuffered < 60, `held ${stats.peakBuffered}`);
});

Deno.test("mergeStreams: a row further back than the window is counted late; the buffer bound holds", async () => {
  const a: Row[] = [];
  for (let i = 0; i < 100; i++) a.push(row(`m/q${i === 60 ? "late" : "x"}`, "a", BigInt(i) * S, i));
  // A new query whose first row is 50 s behind everything read so far.
  a.splice(80, 0, row("m/other", "a", 10n * S, -1));
  const b = Array.from({ length: 100 }, (_, i) => row("m/y", "b", BigInt(i) * S, i));
  const stats = { rows: 0, late: 0, forced: 0, peakBuffered: 0 };
  const got = await collect(
    mergeStreams([{ node: "a", batches: batchesOf(a, 4) }, { node: "b", batches: batchesOf(b, 4) }], {
      windowNs: 2n * S,
    }, stats),
  );
  equal(got.length, 201);
  equal(stats.late, 1);
  // A window longer than the capture: without the bound the merge would hold all of it.
  const bounded = { rows: 0, late: 0, forced: 0, peakBuffered: 0 };
  const long = Array.from({ length: 1000 }, (_, i) => row("m/z", "c", BigInt(i) * S, i));
  const all = await collect(
    mergeStreams([{ node: "c", batches: batchesOf(long, 10) }], {
      windowNs: 1_000_000n * S,
      maxBuffered: 100,
    }, bounded),
  );
  deepEqual(all.map((x) => x.row), long);
  ok(bounded.forced > 0);
  ok(bounded.peakBuffered <= 110, `held ${bounded.peakBuffered}`);
  equal(bounded.late, 0);
});

Deno.test("mergeStreams: the same order when times lie further apart than a number holds exactly", async () => {
  // 2^60 ns apart (36 years): number keys lose nanoseconds there, so the merge compares the times themselves.
  const far = 1n << 60n;
  const t = (i: number) => (i % 3 === 0 ? far : 0n) + BigInt(i % 5) + 7n * S * BigInt(Math.floor(i / 10));
  const a = Array.from({ length: 60 }, (_, i) => row(`m/q${i % 3}`, "a", t(i), i));
  const b = Array.from({ length: 60 }, (_, i) => row(`m/q${i % 2}`, "b", t(i + 1) + 1n, 100 + i));
  const want = mergeByTime([{ node: "a", rows: a }, { node: "b", rows: b }]).map((x) => x.row);
  const got = (await collect(mergeStreams(
    [{ node: "a", batches: batchesOf(a, 7) }, { node: "b", batches: batchesOf(b, 5) }],
    { windowNs: far * 2n },
  ))).map((x) => x.row);
  deepEqual(got.map((r) => r.columns["tag"]), want.map((r) => r.columns["tag"]));
});

Deno.test("mergeStreams: times near and beyond the int64 range, negative ones, and more than 16 queries", async () => {
  // Keys are taken from a time's two 32-bit words while it fits an int64, and by the bigint difference otherwise;
  // an input's queries are looked for in a list, then (past 16) in a map.
  const edges = [-(1n << 63n), -1n, 0n, 1n << 62n, (1n << 63n) - 2n, (1n << 63n) - 1n, 1n << 63n, 1n << 64n];
  // Node b 2^64 ns after node a: its times' words are a's (an int64 would wrap), yet its rows come after all of a's.
  for (const [start, apart] of [...edges.map((e): [bigint, bigint] => [e, 0n]), [0n, 1n << 64n] as const]) {
    let seed = 11;
    const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const inputs = ["a", "b"].map((node, n) => {
      const rows: Row[] = [];
      for (let i = 0; i < 300; i++) {
        const t = start + BigInt(n) * apart + BigInt(i) * 10_000_000n -
          (rand() < 0.3 ? BigInt(Math.floor(rand() * 500)) * 1_000_000n : 0n);
        // A query string made anew for each row (not the same object): the same query by its text.
        rows.push(row(["m/q", String(n), String(i % 20)].join(""), node, t, 1000 * n + i));
      }
      return { node, rows };
    });
    const want = mergeByTime(inputs).map((x) => x.row.columns["tag"]);
    const stats = { rows: 0, late: 0, forced: 0, peakBuffered: 0 };
    const got = await collect(
      mergeStreams(inputs.map((i, k) => ({ node: i.node, batches: batchesOf(i.rows, 7 + k) })), {
        windowNs: S,
      }, stats),
    );
    deepEqual(got.map((x) => x.row.columns["tag"]), want, `from ${start}`);
    equal(stats.late, 0);
  }
});

Deno.test("mergeStreams: inputs that step back often, across queries, keep mergeByTime's order", async () => {
  // Rows in time order wait in a queue per input and rows that step back in a heap: three inputs whose queries
  // step back by up to 0.8 s (inside the window) at random, with ties across inputs, must come out as sorted.
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const inputs = ["a", "b", "c"].map((node, n) => {
    const rows: Row[] = [];
    for (let i = 0; i < 400; i++) {
      const base = BigInt(i) * 50_000_000n;
      const back = rand() < 0.3 ? BigInt(Math.floor(rand() * 800)) * 1_000_000n : 0n;
      rows.push(row(`m/q${n}${i % 3}`, node, base - back + (rand() < 0.2 ? 0n : BigInt(n)), 1000 * n + i));
    }
    return { node, rows };
  });
  const want = mergeByTime(inputs).map((x) => x.row.columns["tag"]);
  const stats = { rows: 0, late: 0, forced: 0, peakBuffered: 0 };
  const got = await collect(
    mergeStreams(inputs.map((i, k) => ({ node: i.node, batches: batchesOf(i.rows, 3 + 4 * k) })), {
      windowNs: S,
    }, stats),
  );
  deepEqual(got.map((x) => x.row.columns["tag"]), want);
  equal(stats.late, 0);
});

Deno.test("replayStream, unpaced: each batch goes to deliver node by node, every node's rows in order", async () => {
  const merged = [
    [
      { node: "a", row: row("m/q", "a", 1n, 1) },
      { node: "b", row: row("m/r", "b", 2n, 2) },
      { node: "a", row: row("m/q", "a", 3n, 3) },
      { node: "b", row: row("m/r", "b", 4n, 4) },
      { node: "a", row: row("m/q", "a", 5n, 5) },
    ],
    [{ node: "b", row: row("m/r", "b", 6n, 6) }, { node: "a", row: row("m/q", "a", 7n, 7) }],
  ];
  async function* batches() {
    for (const b of merged) yield b;
  }
  const calls: [string, unknown[]][] = [];
  const n = await replayStream(batches(), (node, rows) => {
    calls.push([node, rows.map((r) => r.columns["tag"])]);
    return Promise.resolve();
  });
  equal(n, 7);
  // One call per node and batch (not per run of one node's rows), in the order the nodes first appear.
  deepEqual(calls, [["a", [1, 3, 5]], ["b", [2, 4]], ["b", [6]], ["a", [7]]]);
});

Deno.test("openCapture reads lines from the file's bytes as parseCapture reads the decoded text, at any chunking", async () => {
  const enc = new TextEncoder();
  const usual = (i: number) =>
    JSON.stringify({
      query: "m/source",
      row: {
        time_: String(1763900000000000000n + BigInt(i)),
        pod: "ns/p",
        port: i,
        req_body: `{"a":"x\\"${i}"}`,
      },
    });
  const parts: Uint8Array[] = [
    Uint8Array.of(0xef, 0xbb, 0xbf), // a byte-order mark opens the file
    enc.encode('{"capture": 1, "node": "node-y"}\n'),
    enc.encode(usual(1) + "\n"),
    Uint8Array.of(0xef, 0xbb, 0xbf), // one further on is part of its line (whitespace to trim)
    enc.encode(usual(2) + "\r\n  \n\t\n"),
    enc.encode('\v{"query":"m/source","row":{"time_":"3","b":{"base64":"AAEC"},"t":true,"f":false}}\n'),
    enc.encode('{"query":"m/source","row":{"time_":"4","x":"caf'),
    Uint8Array.of(0xc3, 0xa9, 0x22, 0x7d, 0x7d, 0x0a), // é, then the line ends
    enc.encode('{"query":"m/source","row":{"time_":"5","x":"bad '),
    Uint8Array.of(0xff, 0xc3, 0x22, 0x7d, 0x7d, 0x0a), // invalid UTF-8: U+FFFD in the text
    enc.encode('{"query":"m/source","row":{"time_":"6","x":"cut '),
    Uint8Array.of(0xe2, 0x82, 0x0a), // a sequence cut by the newline: not JSON
    enc.encode(
      '{"query":"m/source","row":{"time_":"-0070","n":-0,"big":123456789012345678901,"e":1e3,"l":"' +
        "z".repeat(300) + '"}}\n',
    ),
    enc.encode(usual(7)), // no newline at the end
  ];
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) bytes.set(p, (at += p.length) - p.length);
  const path = await Deno.makeTempFile({ suffix: ".jsonl" });
  try {
    await Deno.writeFile(path, bytes);
    const whole = parseCapture(new TextDecoder().decode(bytes), path);
    equal(whole.node, "node-y");
    ok(whole.rows.length >= 7 && whole.problems.length >= 1, JSON.stringify(whole.problems));
    for (const chunkBytes of [1, 2, 3, 5, 61, 1 << 20]) {
      const reader = await openCapture(path, { chunkBytes, keepProblems: 100 });
      equal(reader.node, "node-y", `chunk ${chunkBytes}`);
      const rows: Row[] = [];
      for await (const b of reader.batches()) rows.push(...b);
      deepEqual(rows, whole.rows, `chunk ${chunkBytes}`);
      deepEqual(reader.problems, whole.problems, `chunk ${chunkBytes}`);
      equal(reader.bytesRead, bytes.length);
    }
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("a capture whose first read fails rejects and leaves no file open", async () => {
  // A directory opens for reading on Linux; its first read fails (EISDIR).
  const dir = await Deno.makeTempDir();
  try {
    for (let i = 0; i < 3; i++) await rejects(() => openCapture(dir), /directory/);
    equal(openFilesTo([dir]), 0);
  } finally {
    await Deno.remove(dir);
  }
});
