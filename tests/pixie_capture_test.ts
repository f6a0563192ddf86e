import { deepEqual, equal, ok } from "node:assert/strict";
import {
  CaptureWriter,
  encodeCaptureHeader,
  encodeCaptureLine,
  nodeFromPath,
  openCapture,
  parseCapture,
  parseCaptureLine,
  readCapture,
} from "../pixie/capture.ts";
import type { Row } from "../pixie/row.ts";
import { DeferredRow } from "../pixie/line_arena.ts";

const enc = new TextEncoder();

Deno.test("capture line encodes every Pixie type per the contract", () => {
  const row: Row = {
    query: "m/source",
    node: "n1",
    time: 1_700_000_000_123_456_789n,
    columns: {
      time_: 1_700_000_000_123_456_789n,
      pod: enc.encode("voice/telephony-0"),
      req_body: new Uint8Array([0xff, 0x00, 0x80]), // not UTF-8
      remote_port: 40000n, // INT64 safe
      big: 9_007_199_254_740_993n, // INT64 beyond 2^53
      ratio: 0.5,
      encrypted: false,
      upid: "00000001-0000-0002-0000-000000000003",
    },
  };
  const line = JSON.parse(encodeCaptureLine(row));
  deepEqual(line, {
    query: "m/source",
    row: {
      time_: "1700000000123456789",
      pod: "voice/telephony-0",
      req_body: { base64: "/wCA" },
      remote_port: 40000,
      big: "9007199254740993",
      ratio: 0.5,
      encrypted: false,
      upid: "00000001-0000-0002-0000-000000000003",
    },
  });
});

Deno.test("capture parsing: header names the node, bytes round-trip, malformed lines are reported and skipped", () => {
  const text = [
    '{"capture": 1, "node": "node-a"}',
    '{"query":"m/source","row":{"time_":"100","pod":"p","req_body":{"base64":"/wCA"}}}',
    "not json",
    '{"query":"nostream","row":{"time_":"1"}}',
    '{"query":"m/asr","row":{"time_":12}}',
    '{"query":"m/asr","row":{"time_":"200","req_body":"héllo"}}',
    "",
  ].join("\n");
  const cap = parseCapture(text, "/some/where/ignored.jsonl");
  equal(cap.node, "node-a");
  equal(cap.rows.length, 2);
  deepEqual(cap.rows[0]!.columns["req_body"], new Uint8Array([0xff, 0x00, 0x80]));
  equal(cap.rows[0]!.time, 100n);
  equal(cap.rows[1]!.node, "node-a");
  deepEqual(cap.rows[1]!.columns["req_body"], enc.encode("héllo"));
  deepEqual(cap.problems.map((p) => p.line), [3, 4, 5]);
  ok(cap.problems[2]!.reason.includes("time_"));
});

Deno.test("without a header the node is the file name without extension", () => {
  equal(nodeFromPath("/tmp/x/node-b.jsonl"), "node-b");
  const cap = parseCapture('{"query":"m/source","row":{"time_":"1"}}', "captures/node-c.jsonl");
  equal(cap.node, "node-c");
  equal(cap.rows.length, 1);
});

Deno.test("a bad header is reported, not fatal", () => {
  const cap = parseCapture(
    '{"capture": 2, "node": "x"}\n{"query":"m/source","row":{"time_":"1"}}',
    "n.jsonl",
  );
  equal(cap.problems.length, 1);
  ok(cap.problems[0]!.reason.includes("unsupported capture version"));
  equal(cap.rows.length, 1);
});

Deno.test("CaptureWriter writes a file readCapture reads back identically", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/anything.jsonl`;
    const w = await CaptureWriter.create(path, "node-z");
    const rows: Row[] = [1n, 2n, 3n].map((t) => ({
      query: "m/source",
      node: "node-z",
      time: t,
      columns: { time_: t, pod: enc.encode("ns/pod"), req_body: new Uint8Array([t === 2n ? 0xfe : 0x41]) },
    }));
    for (const r of rows) await w.write(r);
    equal(w.rows, 3);
    await w.close();
    const cap = await readCapture(path);
    equal(cap.node, "node-z");
    deepEqual(cap.rows, rows);
    deepEqual(cap.problems, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseCaptureLine rejects unsupported cell values", () => {
  const r = parseCaptureLine('{"query":"m/s","row":{"time_":"1","x":[1,2]}}', "n");
  ok(typeof r === "string" && r.includes('column "x"'));
  const b = parseCaptureLine('{"query":"m/s","row":{"time_":"1","x":{"base64":"!!"}}}', "n");
  ok(typeof b === "string");
});

Deno.test("float cells JSON has no number for (NaN, ±Infinity) are written and read back, eagerly and deferred", async () => {
  const row: Row = {
    query: "m/source",
    node: "n",
    time: 5n,
    columns: { time_: 5n, nan: NaN, inf: Infinity, ninf: -Infinity, x: 1.5 },
  };
  const line = encodeCaptureLine(row);
  ok(!line.includes("null"), line);
  const text =
    [encodeCaptureHeader("n"), line, line.replace('"NaN"', '"nan"'), line.replace('"NaN"', '"1.5"')]
      .join("\n") + "\n";
  const whole = parseCapture(text, "n.jsonl");
  equal(whole.rows.length, 1);
  const cols = whole.rows[0]!.columns;
  ok(Number.isNaN(cols["nan"]));
  equal(cols["inf"], Infinity);
  equal(cols["ninf"], -Infinity);
  equal(cols["x"], 1.5);
  deepEqual(whole.problems.map((p) => p.line), [3, 4], "only those three spellings are floats");
  const path = await Deno.makeTempFile({ suffix: ".jsonl" });
  try {
    await Deno.writeTextFile(path, text);
    for (const deferred of [false, true]) {
      const reader = await openCapture(path);
      const rows: Row[] = [];
      for await (const b of reader.batches({ deferred })) {
        for (const x of b) {
          const r = x instanceof DeferredRow ? reader.materialize(x.chunk, x.at, x.len, x.line) : x;
          if (r !== undefined) rows.push(r);
        }
      }
      deepEqual(rows, whole.rows);
      equal(reader.problemCount, 2);
    }
  } finally {
    await Deno.remove(path);
  }
});
