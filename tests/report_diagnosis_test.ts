import assert from "node:assert/strict";
import {
  audioDiff,
  decodeFailure,
  diagnose,
  payloadPreview,
  renderDiagnosis,
  type RunFacts,
  tapOf,
} from "../report/diagnosis.ts";
import { parseConfigText } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import { readCapture } from "../pixie/capture.ts";
import type { Row } from "../pixie/row.ts";
import { encodeSamples } from "../audio/decode/codecs.ts";
import { encodeBase64 } from "../audio/decode/encoding.ts";
import { readCaptures, rowsByQuery, runCaptures, runFacts } from "../cli/capture_run.ts";
import { setLogLevel } from "../util/log.ts";

setLogLevel("error");
const ROOT = new URL("../", import.meta.url).pathname;
const DEMO_CONFIG = await Deno.readTextFile(`${ROOT}fixtures/demo/config.yaml`);
const enc = new TextEncoder();

function config(text: string): Config {
  return parseConfigText(text, "test.yaml", {}).config;
}

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

const demoA = await readCapture(`${ROOT}fixtures/demo/node-a.jsonl`);
const demoC = await readCapture(`${ROOT}fixtures/demo/node-c.jsonl`);
const rowsOf = (rows: readonly Row[]) => (q: string) => rows.filter((r) => r.query === q);

Deno.test("diagnosis: a path typo is named with its count, a safe example and the field it meant", () => {
  const cfg = config(DEMO_CONFIG.replace("path: media.payload", "path: media.paylaod"));
  const d = diagnose(
    cfg,
    facts({
      rowsByQuery: { "call_audio/source": 4309, "call_audio/relay": 1438 },
      decodeErrors: [{ measurement: "call_audio", stream: "source", reason: "missing_path", count: 4309 }],
      signaturesByMeasurement: {},
    }),
    { rowsOf: rowsOf(demoA.rows) },
  );
  assert.equal(d.poor, true);
  assert.match(d.headline, /call_audio: no signatures/);
  const dec = d.findings.find((f) => f.kind === "decode_errors")!;
  assert.equal(dec.text, "missing_path media.paylaod in 4,309 rows of call_audio/source (100%)");
  const example = dec.detail.find((x) => x.startsWith("example:"))!;
  assert.match(example, /pod voice\/telephony-0, time_ 1763910000020440945/);
  assert.match(example, /"payload":<216 chars>/, "the audio itself is not printed");
  assert.ok(dec.detail.some((x) => x.startsWith("did you mean media.payload?")), dec.detail.join("\n"));
  // The guess from the bodies says the same, as a config diff.
  const mismatch = d.findings.find((f) => f.kind === "audio_mismatch")!;
  assert.match(mismatch.text, /path: "media.paylaod" -> "media.payload"/);
  assert.ok(d.findings.some((f) => f.kind === "no_signatures" && /failed to decode/.test(f.text)));
  assert.ok(d.findings.some((f) => f.kind === "no_matches" && /relay: 1,438 rows, 0 matches/.test(f.text)));
  const text = renderDiagnosis(d);
  assert.match(text, /^Why \(call_audio: no signatures\); config test\.yaml:/);
  // Decode errors come first: they are the cause of the rest.
  assert.ok(text.indexOf("missing_path") < text.indexOf("0 signatures"));
});

Deno.test("diagnosis: queries no measurement names, and configured queries without rows", () => {
  const cfg = config(DEMO_CONFIG.replaceAll("name: call_audio", "name: call_start"));
  const d = diagnose(cfg, facts({ rowsByQuery: { "call_audio/source": 4309, "call_audio/asr": 667 } }));
  const unnamed = d.findings.find((f) => f.kind === "unnamed_query")!;
  assert.equal(
    unnamed.text,
    "rows of queries no measurement names: call_audio/source (4,309 rows), call_audio/asr (667 rows)",
  );
  assert.match(unnamed.detail[0]!, /call_start \(source, relay, asr\)/);
  assert.match(d.findings.find((f) => f.kind === "missing_query")!.text, /call_start\/source/);
  assert.match(d.findings.find((f) => f.kind === "no_signatures")!.text, /0 source rows: no source rows/);
});

/** Twilio-style rows of `seconds` of `signal(t)` at 8 kHz μ-law, 20 ms per message. */
function twilioRows(seconds: number, signal: (i: number) => number, query = "m/source"): Row[] {
  const rows: Row[] = [];
  for (let k = 0; k < seconds * 50; k++) {
    const s = new Float32Array(160);
    for (let i = 0; i < 160; i++) s[i] = signal(k * 160 + i);
    const body = JSON.stringify({
      event: "media",
      media: { payload: encodeBase64(encodeSamples("mulaw", s)) },
    });
    const time = 1_700_000_000_000_000_000n + BigInt(k) * 20_000_000n;
    rows.push({
      query,
      node: "n1",
      time,
      columns: { time_: time, pod: enc.encode("voice/tel-0"), req_body: enc.encode(body) },
    });
  }
  return rows;
}

const SMALL = `
measurements:
  - name: m
    signature_rules:
      stream_filter: |
        df = px.DataFrame(table='http_events')
      columns: { payload: req_body }
      audio_criteria: { energy_threshold: 0.3 }
`;

Deno.test("diagnosis: source streams that decode but give no onset: silent, or too quiet for energy_threshold", () => {
  const cfg = config(SMALL);
  const silent = twilioRows(3, () => 0);
  let d = diagnose(cfg, facts({ rowsByQuery: { "m/source": silent.length } }), { rowsOf: rowsOf(silent) });
  let f = d.findings.find((x) => x.kind === "no_onset")!;
  assert.ok(f, JSON.stringify(d.findings));
  assert.match(f.detail[0]!, /voice\/tel-0 stream voice\/tel-0 \(150 messages, 3\.0 s\): silent/);

  // A steady tone: loud, but never above its own floor by the 9 dB that energy_threshold 0.3 asks for.
  const tone = twilioRows(3, (i) => 0.3 * Math.sin((2 * Math.PI * 440 * i) / 8000));
  d = diagnose(cfg, facts({ rowsByQuery: { "m/source": tone.length } }), { rowsOf: rowsOf(tone) });
  f = d.findings.find((x) => x.kind === "no_onset")!;
  assert.match(f.detail[0]!, /too quiet for energy_threshold 0\.3: .* it needs 9 dB/);

  // With records, streams that did give signatures are not examined.
  d = diagnose(
    cfg,
    facts({
      rowsByQuery: { "m/source": tone.length },
      signaturesByMeasurement: { m: 1 },
      signatureStreams: new Set(["m\u0000n1\u0000voice/tel-0"]),
    }),
    { rowsOf: rowsOf(tone) },
  );
  assert.equal(d.findings.find((x) => x.kind === "no_onset"), undefined);
});

Deno.test("diagnosis: a stage with rows but no matches, and what its bodies look like instead", () => {
  const cfg = config(
    DEMO_CONFIG.replace("codec: pcm16le, sample_rate: 16000", "codec: pcm16le, sample_rate: 8000"),
  );
  const d = diagnose(
    cfg,
    facts({
      rowsByQuery: { "call_audio/source": 4309, "call_audio/relay": 1438, "call_audio/asr": 667 },
      signaturesByMeasurement: { call_audio: 30 },
      matchesByStage: { "call_audio/relay": 30 },
      matchedSignaturesByStage: { "call_audio/relay": 30 },
    }),
    { rowsOf: rowsOf(demoC.rows) },
  );
  assert.equal(d.poor, true);
  assert.equal(d.headline, "stage asr: no matches");
  const f = d.findings.find((x) => x.kind === "no_matches")!;
  assert.equal(f.text, "stage call_audio/asr: 667 rows, 0 matches of 30 signatures");
  assert.ok(
    f.detail.some((x) => x === "its bodies look like: sample_rate: 8000 -> 16000 (configured -> seen)"),
  );
  // Few: a stage that found a fifth of the signatures.
  const few = diagnose(
    config(DEMO_CONFIG),
    facts({
      rowsByQuery: { "call_audio/source": 10, "call_audio/relay": 10, "call_audio/asr": 10 },
      signaturesByMeasurement: { call_audio: 30 },
      matchesByStage: { "call_audio/relay": 30, "call_audio/asr": 6 },
      matchedSignaturesByStage: { "call_audio/relay": 30, "call_audio/asr": 6 },
    }),
  );
  assert.equal(
    few.findings.find((x) => x.kind === "few_matches")!.text,
    "stage call_audio/asr: 6 of 30 signatures found (20.0%)",
  );
});

Deno.test("diagnosis: a healthy run says nothing", () => {
  const d = diagnose(
    config(DEMO_CONFIG),
    facts({
      rowsByQuery: { "call_audio/source": 4309, "call_audio/relay": 1438, "call_audio/asr": 667 },
      signaturesByMeasurement: { call_audio: 30 },
      matchesByStage: { "call_audio/relay": 30, "call_audio/asr": 30 },
      matchedSignaturesByStage: { "call_audio/relay": 30, "call_audio/asr": 30 },
    }),
  );
  assert.equal(d.poor, false);
  assert.deepEqual(d.findings, []);
  assert.equal(renderDiagnosis(d), "");
});

Deno.test("diagnosis: examples never print secrets or audio, and name the reason the engine would", () => {
  const p = payloadPreview(
    enc.encode(JSON.stringify({ auth_token: "s3cr3t-value", media: { payload: "A".repeat(300) } })),
  );
  assert.ok(!p.includes("s3cr3t"), p);
  assert.match(p, /"auth_token":<hidden, 12 chars>/);
  assert.match(p, /"payload":<300 chars>/);
  assert.match(payloadPreview(Uint8Array.of(0xff, 0xfe, 0, 1)), /^<4 binary bytes: ff fe 00 01>$/);
  assert.match(payloadPreview(enc.encode("x ... [TRUNCATED]")), /Pixie truncated marker/);

  const cfg = config(SMALL.replace("audio_criteria", "audio: { codec: pcm16le }\n      audio_criteria"));
  const tap = tapOf(cfg, "m/source")!.tap;
  const row = (body: string | Uint8Array, column = "req_body"): Row => ({
    query: "m/source",
    node: "n",
    time: 1n,
    columns: { time_: 1n, [column]: typeof body === "string" ? enc.encode(body) : body },
  });
  assert.equal(decodeFailure(row("not json"), tap), "bad_json");
  assert.equal(decodeFailure(row('{"media":{}}'), tap), "missing_path");
  assert.equal(decodeFailure(row('{"media":{"payload":1}}'), tap), "not_a_string");
  assert.equal(decodeFailure(row('{"media":{"payload":"@@@"}}'), tap), "bad_base64");
  assert.equal(decodeFailure(row('{"media":{"payload":"AA=="}}'), tap), "odd_byte_count");
  assert.equal(decodeFailure(row('{"media":{"payload":"AAAA"}}'), tap), "odd_byte_count");
  assert.equal(decodeFailure(row('{"media":{"payload":"AAAAAA=="}}'), tap), undefined);
  assert.equal(decodeFailure(row("{}", "body"), tap), "missing_payload_column");
  assert.deepEqual(audioDiff(tap.audio, { ...tap.audio, codec: "mulaw", sample_rate: 16000 }), [
    'codec: "pcm16le" -> "mulaw"',
    "sample_rate: 8000 -> 16000",
  ]);
});

Deno.test("diagnosis: runFacts reads the engine's own counts after a real run (path typo on the demo)", async () => {
  const cfg = config(DEMO_CONFIG.replace("path: media.payload", "path: media.paylaod"));
  const caps = await readCaptures([`${ROOT}fixtures/demo/node-a.jsonl`, `${ROOT}fixtures/demo/node-c.jsonl`]);
  const result = await runCaptures(cfg, caps);
  const f = await runFacts("bad.yaml", result.metrics.values(), result, result.problems);
  assert.deepEqual(f.decodeErrors, [
    { measurement: "call_audio", stream: "source", reason: "missing_path", count: 4309 },
  ]);
  assert.equal(f.rowsByQuery["call_audio/source"], 4309);
  assert.equal(f.rowsByQuery["call_audio/asr"], 667);
  assert.deepEqual(f.signaturesByMeasurement, {});
  const d = diagnose(cfg, f, { rowsOf: rowsByQuery(caps) });
  assert.equal(d.findings[0]!.text, "missing_path media.paylaod in 4,309 rows of call_audio/source (100%)");
});

Deno.test("diagnosis: a node whose stages matched other nodes' signatures (run of one node's capture) is not told there were none", () => {
  // What `run --capture fixtures/demo/node-b.jsonl` with nats.url counted beside a node-a and a node-c sensor: no
  // source rows and no signature of its own, 30 relay matches of node-a's signatures from the bus. It said
  // "Why (call_audio: no signatures)" and "stage call_audio/relay: 1,438 rows, 0 matches: there were no
  // signatures to find".
  const cfg = config(DEMO_CONFIG);
  const nodeB = diagnose(
    cfg,
    facts({ rowsByQuery: { "call_audio/relay": 1438 }, matchesByStage: { "call_audio/relay": 30 } }),
  );
  assert.ok(!/no signatures/.test(nodeB.headline), nodeB.headline);
  assert.ok(
    !nodeB.findings.some((f) => f.kind === "no_signatures" || f.kind === "no_matches"),
    renderDiagnosis(nodeB),
  );
  // A stage of such a node that matched nothing is still named, without the claim.
  const both = diagnose(
    cfg,
    facts({
      rowsByQuery: { "call_audio/relay": 1438, "call_audio/asr": 667 },
      matchesByStage: { "call_audio/relay": 30 },
    }),
  );
  const asr = both.findings.find((f) => f.kind === "no_matches")!;
  assert.match(asr.text, /^stage call_audio\/asr: 667 rows, 0 matches of the other nodes' signatures/);
  assert.match(both.headline, /stage asr: no matches/);
  assert.ok(!/no signatures/.test(both.headline), both.headline);
  // A node that detected none and matched none still hears that there were none to find.
  const none = diagnose(cfg, facts({ rowsByQuery: { "call_audio/relay": 1438 } }));
  assert.match(none.headline, /call_audio: no signatures/);
  assert.ok(none.findings.some((f) => /0 matches: there were no signatures to find/.test(f.text)));
});
