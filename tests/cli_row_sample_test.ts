/** The diagnosis sample of a capture run (cli/capture_run.ts RowSample): what it keeps of each stream, and why. */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import {
  ENVELOPE_KEYED_ROWS,
  readCaptures,
  rowBytes,
  RowSample,
  rowsByQuery,
  streamHash,
} from "../cli/capture_run.ts";
import { diagnose, renderDiagnosis, type RunFacts } from "../report/diagnosis.ts";
import { parseConfigText } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import type { Row } from "../pixie/row.ts";
import { encodeSamples } from "../audio/decode/codecs.ts";
import { encodeBase64 } from "../audio/decode/encoding.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const enc = new TextEncoder();

const row = (i: number, body: string | Uint8Array): Row => ({
  query: "m/relay",
  node: "n",
  time: BigInt(i),
  columns: { time_: BigInt(i), pod: "p", req_body: body },
});

function config(text: string): Config {
  return parseConfigText(text, "test.yaml", {}).config;
}

const CONFIG = config(`
measurements:
  - name: m
    signature_rules:
      stream_filter: |
        df = px.DataFrame(table='http_events')
      stream_key: [pod, remote_port]
      columns: { payload: req_body }
`);

/** A Twilio-style body of 20 ms of a tone at 8 kHz μ-law. */
const BODY = (() => {
  const s = new Float32Array(160);
  for (let i = 0; i < 160; i++) s[i] = 0.3 * Math.sin((2 * Math.PI * 440 * i) / 8000);
  return enc.encode(
    JSON.stringify({ event: "media", media: { payload: encodeBase64(encodeSamples("mulaw", s)) } }),
  );
})();

/** Message `k` (20 ms apart) of stream `port` of `m/source`. */
function sourceRow(port: number, k: number, body: Uint8Array = BODY): Row {
  const time = 1_700_000_000_000_000_000n + BigInt(k) * 20_000_000n + BigInt(port);
  return {
    query: "m/source",
    node: "n1",
    time,
    columns: { time_: time, pod: "voice/tel-0", remote_port: port, req_body: body },
  };
}

/** `streams` concurrent streams of `messages` messages each, in time order (stream `late` starts at `from`). */
function concurrent(
  streams: number,
  messages: number,
  late?: { port: number; from: number; body: Uint8Array },
) {
  const rows: Row[] = [];
  for (let k = 0; k < messages; k++) {
    for (let p = 0; p < streams; p++) rows.push(sourceRow(10000 + p, k));
    if (late && k >= late.from) rows.push(sourceRow(late.port, k, late.body));
  }
  return rows;
}

const byStream = (rows: readonly Row[]) => {
  const n = new Map<number, number>();
  for (const r of rows) {
    n.set(r.columns["remote_port"] as number, (n.get(r.columns["remote_port"] as number) ?? 0) + 1);
  }
  return n;
};

Deno.test("without the config: the first rows of each query up to the budget, counted by what they hold", () => {
  const text = "x".repeat(1000);
  equal(rowBytes(row(0, text)), rowBytes(row(0, new Uint8Array(1000))));
  // Capture bodies are strings: counted as 16 bytes each, a sample held ten times its budget of them.
  const sample = new RowSample(undefined, { perQueryBytes: 10_000 });
  for (let i = 0; i < 100; i++) sample.add(row(i, text));
  equal(sample.rowsOf("m/relay").length, Math.ceil(10_000 / rowBytes(row(0, text))));
});

Deno.test("each query has its own budget, and queries past the cap are not sampled", () => {
  const sample = new RowSample(undefined, { perQueryBytes: 2_000, maxQueries: 1 });
  for (let i = 0; i < 10; i++) sample.add(row(i, new Uint8Array(900)));
  sample.add({ ...row(0, "a"), query: "m/other" });
  equal(sample.rowsOf("m/relay").length, 2);
  equal(sample.rowsOf("m/other").length, 0);
});

Deno.test("1,000 concurrent streams: every stream is represented, the first 8 in depth, in half the budget", () => {
  const rows = concurrent(1000, 60);
  const sample = new RowSample(CONFIG);
  for (const r of rows) sample.add(r);
  const kept = sample.rowsOf("m/source");
  const n = byStream(kept);
  equal(n.size, 1000, "every stream");
  for (let p = 0; p < 8; p++) equal(n.get(10000 + p), 60, `deep stream ${p}: all its 60 messages`);
  for (let p = 8; p < 1000; p++) equal(n.get(10000 + p), 2, `stream ${p}: its first 2 messages`);
  ok(kept.reduce((a, r) => a + rowBytes(r), 0) <= 2 << 20);
  // Longer streams: the other streams' first rows fill their quarter of the budget, and the deep streams stop at
  // the quarter left them (three quarters less twice what the others hold).
  const wide = new RowSample(CONFIG);
  const pad = new Uint8Array(BODY.length + 200).fill(0x20);
  pad.set(BODY);
  const longRows = concurrent(1000, 400).map((r) => ({ ...r, columns: { ...r.columns, req_body: pad } }));
  for (const r of longRows) wide.add(r);
  const size = rowBytes(longRows[0]!);
  const w = byStream(wide.rowsOf("m/source"));
  const deep = [0, 1, 2, 3, 4, 5, 6, 7].map((p) => w.get(10000 + p)!);
  const other = [...w.values()].slice(8).reduce((a, b) => a + b, 0);
  ok(other * size >= 1 << 20 && other * size < (1 << 20) + size, `${other} rows of the other streams`);
  const deepRows = deep.reduce((a, b) => a + b, 0);
  ok(deepRows * size >= 1 << 20 && deepRows * size < (1 << 20) + size, `${deep}`);
  ok(Math.max(...deep) - Math.min(...deep) <= 1, `${deep}`);
  // Rebuilt in the order they came.
  deepEqual(kept.slice(0, 3), rows.slice(0, 3));
  // The old rule (the first rows of the query up to 8 MiB) held 17 rows of each stream, none deeper.
  const old = new RowSample(undefined, { perQueryBytes: 8 << 20 });
  for (const r of rows) old.add(r);
  const o = byStream(old.rowsOf("m/source"));
  equal(Math.max(...o.values()), Math.ceil((8 << 20) / rowBytes(rows[0]!) / 1000));
});

Deno.test("deep streams keep up to 3,000 rows (60 s), few streams all of them within the budget", () => {
  const sample = new RowSample(CONFIG);
  const body = enc.encode('{"media":{"payload":"AAAA"}}');
  const rows = concurrent(3, 4000).map((r) => ({ ...r, columns: { ...r.columns, req_body: body } }));
  for (const r of rows) sample.add(r);
  deepEqual([...byStream(sample.rowsOf("m/source")).values()], [3000, 3000, 3000]);
  // The budget bounds them: a quarter is kept for the first rows of streams that start later.
  const small = new RowSample(CONFIG, { perQueryBytes: 400 * rowBytes(rows[0]!) });
  for (const r of rows) small.add(r);
  deepEqual([...byStream(small.rowsOf("m/source")).values()], [100, 100, 100]);
  for (const r of concurrent(0, 3, { port: 20000, from: 0, body })) small.add(r);
  equal(byStream(small.rowsOf("m/source")).get(20000), 2, "a stream starting later still finds room");
});

Deno.test("a stream's integer cells hash as their decimal text does", () => {
  const a = sourceRow(10000, 0);
  for (const n of [0, 1, 9, 10, 99, 100, 20060, 65535, 1e9, 2 ** 31 - 1, 2 ** 31, -1, 0.5, 1e21]) {
    equal(
      streamHash({ ...a, columns: { ...a.columns, port: n } }, ["port"]),
      streamHash({ ...a, columns: { ...a.columns, port: String(n) } }, ["port"]),
      String(n),
    );
  }
});

Deno.test("a stream is the node and the stream key's columns", () => {
  const a = sourceRow(10000, 0);
  equal(streamHash(a, ["pod", "remote_port"]), streamHash(sourceRow(10000, 7), ["pod", "remote_port"]));
  ok(streamHash(a, ["pod", "remote_port"]) !== streamHash(sourceRow(10001, 0), ["pod", "remote_port"]));
  ok(streamHash(a, ["pod", "remote_port"]) !== streamHash({ ...a, node: "n2" }, ["pod", "remote_port"]));
  const bytes = { ...a, columns: { ...a.columns, pod: enc.encode("voice/tel-0") } };
  equal(
    streamHash(bytes, ["pod"]),
    streamHash({ ...a, columns: { ...a.columns, pod: "voice/tel-0" } }, ["pod"]),
  );
});

function facts(over: Partial<RunFacts>): RunFacts {
  return {
    configFile: "test.yaml",
    rowsByQuery: {},
    decodeErrors: [],
    signaturesByMeasurement: {},
    matchesByStage: {},
    ...over,
  };
}

Deno.test("diagnosis: a stream that starts late and fails to decode has its example (the old sample had none)", () => {
  const rows = concurrent(1000, 50, { port: 30000, from: 40, body: enc.encode("not json") });
  const f = facts({
    rowsByQuery: { "m/source": rows.length },
    decodeErrors: [{ measurement: "m", stream: "source", reason: "bad_json", count: 10 }],
    signaturesByMeasurement: { m: 1000 },
  });
  const sample = new RowSample(CONFIG);
  for (const r of rows) sample.add(r);
  const d = diagnose(CONFIG, f, { rowsOf: sample.rowsOf });
  const dec = d.findings.find((x) => x.kind === "decode_errors")!;
  match(dec.detail[0]!, /^example: node n1, pod voice\/tel-0, time_ \d+: not json/);
  const old = new RowSample(undefined, { perQueryBytes: 8 << 20 });
  for (const r of rows) old.add(r);
  deepEqual(
    diagnose(CONFIG, f, { rowsOf: old.rowsOf }).findings.find((x) => x.kind === "decode_errors")!.detail,
    [],
  );
});

Deno.test("diagnosis: the levels of a silent stream among 1,000 come from 1.2 s of it (the old sample: 0.3 s)", () => {
  const silent = new Uint8Array(
    enc.encode(
      JSON.stringify({ event: "media", media: { payload: encodeBase64(new Uint8Array(160).fill(0xff)) } }),
    ),
  );
  const rows: Row[] = [];
  for (let k = 0; k < 60; k++) {
    rows.push(sourceRow(9999, k, silent));
    for (let p = 0; p < 999; p++) rows.push(sourceRow(10000 + p, k));
  }
  const f = facts({ rowsByQuery: { "m/source": rows.length }, signaturesByMeasurement: {} });
  const levels = (s: RowSample) => {
    for (const r of rows) s.add(r);
    return diagnose(CONFIG, f, { rowsOf: s.rowsOf }).findings.find((x) => x.kind === "no_onset")!.detail[0]!;
  };
  match(levels(new RowSample(CONFIG)), /stream voice\/tel-0\|9999 \(60 messages, 1\.2 s\): silent/);
  match(levels(new RowSample(undefined, { perQueryBytes: 8 << 20 })), /\(\d\d messages, 0\.[34] s\): silent/);
});

Deno.test("diagnosis on the demo captures: the same from the sample as from every row", async () => {
  const DEMO = await Deno.readTextFile(`${ROOT}fixtures/demo/config.yaml`);
  const caps = await readCaptures([`${ROOT}fixtures/demo/node-a.jsonl`, `${ROOT}fixtures/demo/node-c.jsonl`]);
  const cases: [string, Partial<RunFacts>][] = [
    [DEMO.replace("path: media.payload", "path: media.paylaod"), {
      rowsByQuery: { "call_audio/source": 4309, "call_audio/relay": 1438 },
      decodeErrors: [{ measurement: "call_audio", stream: "source", reason: "missing_path", count: 4309 }],
    }],
    [DEMO.replace("codec: pcm16le, sample_rate: 16000", "codec: pcm16le, sample_rate: 8000"), {
      rowsByQuery: { "call_audio/source": 4309, "call_audio/relay": 1438, "call_audio/asr": 667 },
      signaturesByMeasurement: { call_audio: 30 },
      matchesByStage: { "call_audio/relay": 30 },
      matchedSignaturesByStage: { "call_audio/relay": 30 },
    }],
    [DEMO, { rowsByQuery: { "call_audio/source": 4309 } }],
  ];
  for (const [text, over] of cases) {
    const cfg = config(text);
    const sample = new RowSample(cfg);
    for (const c of caps) for (const r of c.rows) sample.add(r);
    const want = renderDiagnosis(diagnose(cfg, facts(over), { rowsOf: rowsByQuery(caps) }));
    ok(want !== "");
    equal(renderDiagnosis(diagnose(cfg, facts(over), { rowsOf: sample.rowsOf })), want);
  }
});

Deno.test("streams told apart by an envelope field are sampled apart, over the query's first 100,000 rows", () => {
  const cfg = config(`
measurements:
  - name: m
    signature_rules:
      stream_filter: |
        df = px.DataFrame(table='http_events')
      stream_key: [pod, "$.streamSid"]
      columns: { payload: req_body }
`);
  const bodies = ["MZa", "MZb", "MZc"].map((sid) =>
    enc.encode(JSON.stringify({ streamSid: sid, media: { payload: "AAAA" } }))
  );
  const sample = new RowSample(cfg, { deepRows: 10, deepStreams: 2 });
  const rows: Row[] = [];
  for (let k = 0; k < ENVELOPE_KEYED_ROWS / 3 + 10; k++) {
    for (let s = 0; s < 3; s++) rows.push(sourceRow(10000, k, bodies[s]!));
  }
  for (const r of rows) sample.add(r);
  const sids = (rs: readonly Row[]) =>
    rs.map((r) => new TextDecoder().decode(r.columns["req_body"] as Uint8Array).slice(14, 17));
  const kept = sids(sample.rowsOf("m/source"));
  deepEqual([
    kept.filter((s) => s === "MZa").length,
    kept.filter((s) => s === "MZb").length,
    kept.filter((s) => s === "MZc").length,
  ], [10, 10, 2]);
  // A stream that starts past the first 100,000 rows is not keyed (its body would be read for it).
  sample.add(
    sourceRow(10000, 0, enc.encode(JSON.stringify({ streamSid: "MZd", media: { payload: "AAAA" } }))),
  );
  ok(!sids(sample.rowsOf("m/source")).includes("MZd"));
});
