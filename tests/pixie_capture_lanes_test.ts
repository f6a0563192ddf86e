import { deepEqual, equal, ok } from "node:assert/strict";
import { encodeCaptureHeader, encodeCaptureLine, openCapture, parseCapture } from "../pixie/capture.ts";
import { type LaneAhead, scanLanesAhead } from "../pixie/capture_lanes.ts";
import { mergeByTime, type MergeStats, mergeStreams, type NodeRowStream } from "../pixie/replay.ts";
import type { Row } from "../pixie/row.ts";
import { join } from "node:path";
import { loadConfig } from "../config/load.ts";
import { openCaptures, runCaptureSources } from "../cli/capture_run.ts";
import { setSlabPoison } from "../pixie/capture_slabs.ts";
import { setLogLevel } from "../util/log.ts";

const ROOT = new URL("../", import.meta.url).pathname;

const S = 1_000_000_000n;

function row(query: string, node: string, time: bigint, tag: number): Row {
  return { query, node, time, columns: { time_: time, tag } };
}

/** What {@link scanLanesAhead} should find in rows: each query's count and first time. */
function lanesOf(rows: readonly Row[]): Map<string, LaneAhead> {
  const m = new Map<string, LaneAhead>();
  for (const r of rows) {
    const l = m.get(r.query);
    if (l === undefined) m.set(r.query, { first: r.time, rows: 1 });
    else l.rows++;
  }
  return m;
}

Deno.test("scanLanesAhead counts each query's rows and its first time from an offset, as the reader reads them", async () => {
  const lines = [encodeCaptureHeader("node-x")];
  for (let i = 0; i < 400; i++) {
    const q = i % 7 === 0 ? "m/asr" : i % 3 === 0 ? "m/relay" : "m/source";
    lines.push(encodeCaptureLine(row(q, "node-x", 5n * S + BigInt(i) * 20_000_000n, i)));
    // Lines of other shapes: keys in another order, blank, not JSON, a malformed row of the usual shape (counted:
    // a count may be high, never low), a query that shows up only as a malformed line, then as a row.
    if (i % 50 === 1) lines.push(`{"row":{"time_":"${9n * S + BigInt(i)}","n":1},"query":"m/late"}`);
    if (i % 61 === 0) lines.push("   ");
    if (i % 67 === 0) lines.push("not json");
    if (i === 120) lines.push('{"query":"m/relay","row":{"time_":"oops"}}');
    if (i === 130) lines.push('{"query":"m/rare","row":{"time_":12}}');
    if (i === 131) lines.push('{"query":"m/rare","row":{"time_":"7"}}');
  }
  // The last line without its newline, lines ending in CRLF.
  const text = lines.join("\r\n");
  const path = await Deno.makeTempFile({ suffix: ".jsonl" });
  try {
    await Deno.writeTextFile(path, text);
    const bytes = new TextEncoder().encode(text);
    const rows = parseCapture(text, path).rows;
    for (const from of [0, bytes.indexOf(0x0a) + 1, text.indexOf('"tag":200') - 1]) {
      // From the start of a line: the rows parseCapture reads from there.
      const start = bytes.lastIndexOf(0x0a, from - 1) + 1;
      const rest = parseCapture(new TextDecoder().decode(bytes.subarray(start)), path).rows;
      const want = lanesOf(rest);
      // The malformed usual line of m/relay counts as a row when it lies ahead.
      if (start <= text.indexOf('"time_":"oops"')) want.get("m/relay")!.rows++;
      for (const chunk of [7, 1000, 1 << 20]) {
        deepEqual(
          await scanLanesAhead(path, start, "node-x", chunk),
          want,
          `from ${start}, chunks of ${chunk}`,
        );
      }
    }
    ok(rows.some((r) => r.query === "m/rare" && r.time === 7n));
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("CaptureReader.unreadAt: a scan from there counts exactly the rows not handed on yet", async () => {
  const lines = [encodeCaptureHeader("n")];
  for (let i = 0; i < 300; i++) lines.push(encodeCaptureLine(row(`m/q${i % 4}`, "n", BigInt(1000 + i), i)));
  const path = await Deno.makeTempFile({ suffix: ".jsonl" });
  try {
    await Deno.writeTextFile(path, lines.join("\n") + "\n");
    const reader = await openCapture(path, { chunkBytes: 97, batchRows: 16 });
    const seen: Row[] = [];
    const all = parseCapture(await Deno.readTextFile(path), path).rows;
    for await (const b of reader.batches()) {
      seen.push(...b);
      if (seen.length === 64 || seen.length === 288) {
        deepEqual(await scanLanesAhead(path, reader.unreadAt!, "n"), lanesOf(all.slice(seen.length)));
      }
    }
    equal(seen.length, 300);
    // A file handed over already open (a pipe) cannot be read again from an offset.
    const f = await Deno.open(path);
    const head = new Uint8Array(4);
    await f.read(head);
    const piped = await openCapture(path, { opened: { file: f, head } });
    equal(piped.unreadAt, undefined);
    piped.close();
  } finally {
    await Deno.remove(path);
  }
});

async function* batchesOf(rows: readonly Row[], size: number, at?: { n: number }): AsyncGenerator<Row[]> {
  for (let i = 0; i < rows.length; i += size) {
    const b = rows.slice(i, i + size);
    if (at) at.n = i + b.length;
    yield b;
  }
}

/** An input whose scan counts the rows after those it has handed on (what a capture file's scan finds). */
function scanned(
  node: string,
  rows: readonly Row[],
  size: number,
  lie?: (m: Map<string, LaneAhead>) => void,
) {
  const at = { n: 0 };
  return {
    node,
    batches: batchesOf(rows, size, at),
    lanesAhead: () => {
      const m = lanesOf(rows.slice(at.n));
      lie?.(m);
      return Promise.resolve(m);
    },
  } satisfies NodeRowStream;
}

const freshStats = (): MergeStats => ({ rows: 0, late: 0, forced: 0, peakBuffered: 0 });

Deno.test("mergeStreams with lanes ahead: mergeByTime's order, rows going on as soon as every query is past them", async () => {
  let seed = 3;
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let round = 0; round < 20; round++) {
    // Two or three inputs; each query steps back by up to 0.8 s (inside the window), some end early, some start
    // late, ties across inputs.
    const inputs = Array.from({ length: 2 + (round % 2) }, (_, n) => {
      const rows: Row[] = [];
      for (let i = 0; i < 600; i++) {
        const q = i % 3;
        if (q === 2 && (i < 100 * n || i > 400 + 50 * n)) continue;
        const back = rand() < 0.3 ? BigInt(Math.floor(rand() * 800)) * 1_000_000n : 0n;
        rows.push(
          row(`m/q${n}${q}`, `node${n}`, BigInt(i) * 20_000_000n - back + BigInt(n % 2), 1000 * n + i),
        );
      }
      return { node: `node${n}`, rows };
    });
    const want = mergeByTime(inputs).map((x) => x.row.columns["tag"]);
    const stats = freshStats();
    const got: unknown[] = [];
    const merged = mergeStreams(inputs.map((i, k) => scanned(i.node, i.rows, 5 + 3 * k)), {
      windowNs: S,
      scanAfter: round % 4,
    }, stats);
    for await (const b of merged) for (const x of b) got.push(x.row.columns["tag"]);
    deepEqual(got, want, `round ${round}`);
    equal(stats.late, 0);
    equal(stats.scanned, inputs.length);
    ok((stats.early ?? 0) > 0);
    equal(stats.lanesBroken, undefined);
  }
});

Deno.test("mergeStreams with lanes ahead holds what the queries' lag needs, not the window's worth of rows", async () => {
  // One node, one query, 50 rows a second stepping back by up to 0.9 s: the window holds ~50 rows and more, the
  // lanes only the rows at the query's newest time.
  let seed = 5;
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const rows = Array.from(
    { length: 3000 },
    (_, i) => row("m/relay", "b", BigInt(i) * 20_000_000n - BigInt(Math.floor(rand() * 900)) * 1_000_000n, i),
  );
  const run = async (lanes: boolean) => {
    const stats = freshStats();
    const input = lanes ? scanned("b", rows, 8) : { node: "b", batches: batchesOf(rows, 8) };
    const out: Row[] = [];
    for await (const b of mergeStreams([input], { windowNs: 10n * S, scanAfter: 16 }, stats)) {
      for (const x of b) out.push(x.row);
    }
    return { out, stats };
  };
  const window = await run(false), lanes = await run(true);
  deepEqual(lanes.out, window.out);
  ok(window.stats.peakBuffered > 400, `window held ${window.stats.peakBuffered}`);
  ok(lanes.stats.peakBuffered <= 24, `lanes held ${lanes.stats.peakBuffered}`);
});

Deno.test("mergeStreams: a scan that missed rows, or an input that cannot be scanned, falls back to the window", async () => {
  const a = Array.from({ length: 400 }, (_, i) => row(`m/a${i % 2}`, "a", BigInt(i) * 10_000_000n, i));
  const b = Array.from({ length: 400 }, (_, i) => row("m/b", "b", BigInt(i) * 10_000_000n + 1n, 1000 + i));
  const want = mergeByTime([{ node: "a", rows: a }, { node: "b", rows: b }]).map((x) => x.row.columns["tag"]);
  const run = async (inputs: NodeRowStream[]) => {
    const stats = freshStats();
    const got: unknown[] = [];
    for await (const batch of mergeStreams(inputs, { windowNs: S, scanAfter: 8 }, stats)) {
      for (const x of batch) got.push(x.row.columns["tag"]);
    }
    return { got, stats };
  };
  // Counted one row short: the last row of m/a1 is not expected, so the merge stops handing rows on early.
  const short = await run([scanned("a", a, 4, (m) => void m.get("m/a1")!.rows--), scanned("b", b, 4)]);
  deepEqual(short.got, want);
  ok(short.stats.lanesBroken?.includes('"m/a1"'), String(short.stats.lanesBroken));
  // A query the scan did not see at all.
  const missed = await run([scanned("a", a, 4, (m) => void m.delete("m/a0")), scanned("b", b, 4)]);
  deepEqual(missed.got, want);
  ok(missed.stats.lanesBroken?.includes('"m/a0"'), String(missed.stats.lanesBroken));
  // Input b cannot tell what lies ahead (a pipe): nothing goes early.
  const pipe = await run([
    scanned("a", a, 4),
    { node: "b", batches: batchesOf(b, 4), lanesAhead: () => Promise.resolve(undefined) },
  ]);
  deepEqual(pipe.got, want);
  equal(pipe.stats.early ?? 0, 0);
  ok(pipe.stats.lanesBroken?.includes("cannot be scanned"));
  // Below scanAfter, no input is scanned.
  const stats = freshStats();
  for await (
    const _ of mergeStreams([scanned("a", a, 4)], { windowNs: S, scanAfter: 1000 }, stats)
  ) { /* drain */ }
  equal(stats.scanned, undefined);
});

Deno.test("analyze with every capture scanned and rows handed on early: the same records as by the window", async () => {
  setLogLevel("error");
  const { config } = await loadConfig(join(ROOT, "fixtures/demo/config.yaml"));
  const files = ["node-a", "node-b", "node-c"].map((n) => join(ROOT, `fixtures/demo/${n}.jsonl`));
  // Without `hop`: which of another node's matches a match's hop finds depends on which node's rows a merge step
  // delivers first (3 of the demo's 90 records differ in it), and early steps are smaller.
  const records = (r: { signatures: unknown[]; matches: unknown[] }) =>
    [...r.signatures, ...r.matches].map((x) => JSON.stringify({ ...(x as object), hop: undefined })).sort();
  const windowed = await runCaptureSources(config, await openCaptures(files, config), {
    scanAfter: Infinity,
  });
  equal(windowed.merge.scanned, undefined);
  // Batches go back to their readers as soon as their rows went on: poisoned, a row read after would show.
  setSlabPoison(true);
  try {
    const early = await runCaptureSources(config, await openCaptures(files, config), { scanAfter: 0 });
    equal(early.merge.scanned, 3);
    ok((early.merge.early ?? 0) > early.rows / 2, `early ${early.merge.early} of ${early.rows}`);
    ok(early.merge.peakBuffered < windowed.merge.peakBuffered);
    ok(windowed.matches.length > 0);
    deepEqual(records(early), records(windowed));
  } finally {
    setSlabPoison(false);
  }
});
