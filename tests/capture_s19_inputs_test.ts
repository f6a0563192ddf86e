import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { join } from "node:path";
import { loadConfig } from "../config/load.ts";
import { openCaptures, readCaptures, runCaptureSources } from "../cli/capture_run.ts";
import { setLogLevel } from "../util/log.ts";
import { readCapture } from "../pixie/capture.ts";
import { openFilesTo } from "./support/open_files.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/**
 * Signatures and matches of a run, as sorted JSON. Without `hop`: which earlier stage's match a match finds
 * depends on how far the nodes ran apart, which the files' batches change (analyze's `--out` recomputes hops
 * from all matches).
 */
function records(r: { signatures: unknown[]; matches: unknown[] }): string[] {
  return [...r.signatures, ...r.matches].map((x) => JSON.stringify({ ...(x as object), hop: undefined }))
    .sort();
}

Deno.test("two captures of one node are merged by time, whatever order the command line gives them in", async () => {
  setLogLevel("error");
  const { config } = await loadConfig(join(ROOT, "fixtures/demo/config.yaml"));
  const dir = await Deno.makeTempDir();
  try {
    const lines = (await Deno.readTextFile(join(ROOT, "fixtures/demo/node-a.jsonl"))).trimEnd().split("\n");
    const [header, ...rows] = lines;
    const half = rows.length >> 1;
    // One node recorded in two runs (hourly files, say): each file has the node's header.
    const first = join(dir, "node-a-1.jsonl"), second = join(dir, "node-a-2.jsonl");
    await Deno.writeTextFile(first, [header, ...rows.slice(0, half)].join("\n") + "\n");
    await Deno.writeTextFile(second, [header, ...rows.slice(half)].join("\n") + "\n");
    const others = ["node-b", "node-c"].map((n) => join(ROOT, `fixtures/demo/${n}.jsonl`));
    const whole = await runCaptureSources(
      config,
      await openCaptures([join(ROOT, "fixtures/demo/node-a.jsonl"), ...others], config),
    );
    ok(whole.matches.length > 0);
    for (const order of [[first, second], [second, first]]) {
      const split = await runCaptureSources(config, await openCaptures([...order, ...others], config));
      equal(split.rows, whole.rows);
      deepEqual(records(split), records(whole), `order ${order.map((p) => p.slice(dir.length + 1))}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rows in two captures of one node (overlapping recordings) are not doubled", async () => {
  setLogLevel("error");
  const { config } = await loadConfig(join(ROOT, "fixtures/demo/config.yaml"));
  const files = ["node-a", "node-b", "node-c"].map((n) => join(ROOT, `fixtures/demo/${n}.jsonl`));
  const once = await runCaptureSources(config, await openCaptures(files, config));
  // node-a's capture given twice: each of its rows comes twice, and the node's row dedupe drops the repeat once
  // it comes beside the first (read one file after the other, the whole second copy came as new rows).
  const twice = await runCaptureSources(config, await openCaptures([files[0]!, ...files], config));
  deepEqual(records(twice), records(once));
});

/** A FIFO fed `text` by a writer in the background (as `<(cat file)` gives one); resolves once written. */
async function fifoOf(
  dir: string,
  name: string,
  text: string,
): Promise<{ path: string; written: Promise<void> }> {
  const path = join(dir, name);
  const mk = await new Deno.Command("mkfifo", { args: [path] }).output();
  ok(mk.success, "mkfifo");
  // Opening a FIFO for writing waits for a reader; the writer is only started here.
  const written = (async () => {
    const f = await Deno.open(path, { write: true });
    try {
      const bytes = new TextEncoder().encode(text);
      for (let off = 0; off < bytes.length;) off += await f.write(bytes.subarray(off));
    } finally {
      f.close();
    }
  })();
  return { path, written };
}

Deno.test("a capture read from a pipe keeps its first bytes: the header's node and the first row", async () => {
  setLogLevel("error");
  const { config } = await loadConfig(join(ROOT, "fixtures/demo/config.yaml"));
  const dir = await Deno.makeTempDir();
  try {
    const text = await Deno.readTextFile(join(ROOT, "fixtures/demo/node-b.jsonl"));
    const rows = text.trimEnd().split("\n").length - 1;
    // With its header (the node comes from it), and without (the first line is a row).
    const headless = text.slice(text.indexOf("\n") + 1);
    const a = await fifoOf(dir, "63", text);
    const b = await fifoOf(dir, "62", headless);
    const caps = await openCaptures([a.path, b.path], config);
    equal(caps[0]!.node, "node-b");
    equal(caps[1]!.node, "62");
    const counts: number[] = [];
    for (const c of caps) {
      let n = 0;
      for await (const batch of c.batches()) n += batch.length;
      counts.push(n);
      equal(c.problemCount(), 0, `${c.file}: ${JSON.stringify(c.problems[0])}`);
    }
    deepEqual(counts, [rows, rows]);
    await Promise.all([a.written, b.written]);
    // Read whole (check, discover, demo) too.
    const c = await fifoOf(dir, "61", headless);
    const [cap] = await readCaptures([c.path], config);
    await c.written;
    equal(cap!.rows.length, rows);
    equal(cap!.problems.length, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a compressed capture is refused with what it is, not read as thousands of malformed lines", async () => {
  setLogLevel("error");
  const { config } = await loadConfig(join(ROOT, "fixtures/demo/config.yaml"));
  const dir = await Deno.makeTempDir();
  try {
    const gz = join(dir, "node-b.jsonl.gz");
    const text = await Deno.open(join(ROOT, "fixtures/demo/node-b.jsonl"));
    await text.readable.pipeThrough(new CompressionStream("gzip")).pipeTo((await Deno.create(gz)).writable);
    for (const read of [openCaptures, readCaptures]) {
      await rejects(
        read([gz], config),
        /cannot read capture .*node-b\.jsonl\.gz: is gzip-compressed: decompress it first/,
      );
    }
    await rejects(openCaptures([dir], config), /is a directory/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a header line after the first says what it is, not that its query is missing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "joined.jsonl");
    const row = '{"query":"m/source","row":{"time_":"1","req_body":"x"}}';
    await Deno.writeTextFile(path, `{"capture":1,"node":"a"}\n${row}\n{"capture":1,"node":"b"}\n${row}\n`);
    const cap = await readCapture(path);
    equal(cap.node, "a");
    equal(cap.rows.length, 2);
    equal(cap.problems.length, 1);
    equal(cap.problems[0]!.line, 3);
    match(cap.problems[0]!.reason, /^a header line after the first line \(captures joined into one file\?/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("discover reads a capture from a pipe whole: its first row too", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const text = await Deno.readTextFile(join(ROOT, "fixtures/demo/node-b.jsonl"));
    const rows = text.trimEnd().split("\n").length - 1;
    const fifo = await fifoOf(dir, "63", text.slice(text.indexOf("\n") + 1));
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", join(ROOT, "main.ts"), "discover", "--format", "json", fifo.path],
      stdout: "piped",
      stderr: "piped",
    }).output();
    await fifo.written;
    const stderr = new TextDecoder().decode(r.stderr);
    equal(r.code, 0, stderr);
    ok(!stderr.includes("malformed"), stderr);
    equal(JSON.parse(new TextDecoder().decode(r.stdout)).rows, rows);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("captures opened and not read to their end are closed: a later one that fails, a run stopped or failed early", async () => {
  setLogLevel("error");
  const { config } = await loadConfig(join(ROOT, "fixtures/demo/config.yaml"));
  const files = ["node-a", "node-b"].map((n) => join(ROOT, `fixtures/demo/${n}.jsonl`));
  const openFds = () => openFilesTo(files);
  const before = 0;
  await rejects(() => openCaptures([...files, join(ROOT, "fixtures/demo/no-such-node.jsonl")], config));
  equal(openFds(), before, "the captures opened before the one that failed are closed");
  const stop = new AbortController();
  stop.abort();
  const run = await runCaptureSources(config, await openCaptures(files, config), {
    speed: 1,
    signal: stop.signal,
  });
  equal(run.rows, 0);
  equal(openFds(), before, "a run stopped before it read its captures closes them");
  const refuse = () => {
    throw new Error("refused");
  };
  const sources = await openCaptures(files, config);
  await rejects(() => runCaptureSources(config, sources, { onNodes: refuse }), /refused/);
  equal(openFds(), before, "a run that failed before it read its captures closes them");
});
