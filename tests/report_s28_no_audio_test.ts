/**
 * Rows that are not audio by design (a Twilio stream's `start`, `mark` and `stop` events; text replies on a
 * binary-audio connection, counted `not_audio`) are told apart from payloads that failed to decode. `analyze`
 * printed "45 payload(s) failed to decode" for the packet demo, which decodes every audio message, and `run` and
 * `demo` listed those rows under "Why".
 * Real parts: the demo's recorded captures, the diagnosis, and `deno task analyze` on the packet demo.
 */
import assert from "node:assert/strict";
import { decodeErrorLines, diagnose, renderDiagnosis, type RunFacts } from "../report/diagnosis.ts";
import { parseConfigText } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import { readCapture } from "../pixie/capture.ts";
import type { Row } from "../pixie/row.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const DEMO_CONFIG = await Deno.readTextFile(`${ROOT}fixtures/demo/config.yaml`);
const demoA = await readCapture(`${ROOT}fixtures/demo/node-a.jsonl`);
const SOURCE = "call_audio/source";

function config(text: string): Config {
  return parseConfigText(text, "test.yaml", {}).config;
}

/** The demo's source rows, with `body` put in place of the payload of every tenth row from the second. */
function sourceRows(body: (i: number) => string): Row[] {
  const rows = demoA.rows.filter((r) => r.query === SOURCE).slice(0, 150);
  return rows.map((r, i) => i % 10 === 1 ? { ...r, columns: { ...r.columns, req_body: body(i) } } : r);
}

function facts(rows: readonly Row[], reason: string, count: number): RunFacts {
  return {
    configFile: "test.yaml",
    rowsByQuery: { [SOURCE]: rows.length },
    decodeErrors: [{ measurement: "call_audio", stream: "source", reason, count }],
    signaturesByMeasurement: { call_audio: 0 },
    matchesByStage: {},
  };
}

const twilioEvent = (i: number) =>
  JSON.stringify(
    i === 1
      ? { event: "start", sequenceNumber: "1", start: { callSid: "CA1", streamSid: "MZ1" }, streamSid: "MZ1" }
      : { event: "mark", sequenceNumber: String(i), mark: { name: `m${i}` }, streamSid: "MZ1" },
  );

Deno.test("diagnosis: a stream's events without media are rows without audio, not decode errors", () => {
  const rows = sourceRows(twilioEvent);
  const d = diagnose(config(DEMO_CONFIG), facts(rows, "missing_path", 15), { rowsOf: () => rows });
  const f = d.findings.find((x) => x.kind === "no_audio");
  assert.ok(f, JSON.stringify(d.findings));
  assert.equal(f.rows, 15);
  assert.equal(f.query, SOURCE);
  assert.match(
    f.text,
    /^15 rows of call_audio\/source \(10\.0%\) carry no audio: the stream's other messages/,
  );
  assert.match(f.text, /event start, event mark/);
  assert.ok(!d.findings.some((x) => x.kind === "decode_errors"), "not a decode error");
  // 0 signatures: not because messages failed to decode.
  assert.ok(d.findings.some((x) => x.kind === "no_signatures" && /gave no onset/.test(x.text)));
  assert.doesNotMatch(renderDiagnosis(d), /carry no audio/);
  assert.match(decodeErrorLines(d).join("\n"), /carry no audio/);
});

Deno.test("diagnosis: a path missing from rows of the audio's own shape stays a decode error", () => {
  // `media` is there, its payload is not: the audio's message, broken (or a path that is wrong for it).
  const rows = sourceRows((i) =>
    JSON.stringify({ event: "media", media: { track: "inbound", chunk: String(i) } })
  );
  const d = diagnose(config(DEMO_CONFIG), facts(rows, "missing_path", 15), { rowsOf: () => rows });
  assert.ok(!d.findings.some((x) => x.kind === "no_audio"));
  assert.match(
    d.findings.find((x) => x.kind === "decode_errors")!.text,
    /^missing_path media\.payload in 15 rows/,
  );
});

Deno.test("diagnosis: rows that are not JSON objects, or a query where nothing decodes, stay decode errors", () => {
  const arrays = sourceRows(() => "[1, 2]");
  const d = diagnose(config(DEMO_CONFIG), facts(arrays, "missing_path", 15), { rowsOf: () => arrays });
  assert.ok(!d.findings.some((x) => x.kind === "no_audio"));
  // Every row without the path (a wrong first key in the config): the hint names the fields there.
  const wrong = demoA.rows.filter((r) => r.query === SOURCE).slice(0, 50);
  const cfg = config(DEMO_CONFIG.replace("path: media.payload", "path: meda.payload"));
  const d2 = diagnose(cfg, facts(wrong, "missing_path", 50), { rowsOf: () => wrong });
  assert.ok(!d2.findings.some((x) => x.kind === "no_audio"));
  const dec = d2.findings.find((x) => x.kind === "decode_errors")!;
  assert.ok(dec.detail.some((x) => x.startsWith("did you mean media.payload?")), dec.detail.join("\n"));
});

Deno.test("diagnosis: a large body without the path is not taken for one of the stream's events", () => {
  const rows = sourceRows((i) => JSON.stringify({ event: "transcript", text: "x".repeat(70_000), seq: i }));
  const d = diagnose(config(DEMO_CONFIG), facts(rows, "missing_path", 15), { rowsOf: () => rows });
  assert.ok(!d.findings.some((x) => x.kind === "no_audio"));
  assert.ok(d.findings.some((x) => x.kind === "decode_errors"));
});

Deno.test("diagnosis: not_audio rows carry no audio by design", () => {
  const rows = demoA.rows.filter((r) => r.query === SOURCE).slice(0, 20);
  const d = diagnose(config(DEMO_CONFIG), facts(rows, "not_audio", 3), { rowsOf: () => rows });
  assert.match(d.findings.find((x) => x.kind === "no_audio")!.text, /3 rows .* carry no audio: not_audio/);
  assert.ok(!d.findings.some((x) => x.kind === "decode_errors"));
});

Deno.test("analyze: the packet demo's events and text replies are messages without audio, not failed decodes", async () => {
  const out = await new Deno.Command("deno", {
    args: [
      "task",
      "analyze",
      "--config",
      "fixtures/demo_packets/config.yaml",
      "fixtures/demo_packets/node-ws.pcap",
      "fixtures/demo_packets/node-rtp.pcap",
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  assert.match(
    text,
    /0 payload\(s\) failed to decode; 45 message\(s\) without audio \(the streams' events, text\):/,
  );
  assert.match(
    text,
    /31 rows of ws_call\/source \(4\.1%\) carry no audio: the stream's other messages, without media/,
  );
  assert.match(text, /14 rows of ws_call\/asr \(8\.8%\) carry no audio: not_audio/);
  assert.doesNotMatch(text, /^\s+- .*carry no audio/m, "not a reason under Why");
});
