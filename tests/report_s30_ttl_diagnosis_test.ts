/**
 * A stage whose latencies come near what `ttl_seconds` leaves a match (a signature leaves ttl_seconds after its
 * instant, and a match needs the ~2.2 s of audio after the instant too) loses its slowest instants. On the demo
 * (asr latencies up to 2.6 s) with ttl_seconds 4, asr found 26 of 30 signatures with its slowest latencies gone
 * from the percentiles and the run said nothing; with 3, 11 of 30, and the finding blamed the stage's audio.
 */
import assert from "node:assert/strict";
import { diagnose, renderDiagnosis } from "../report/diagnosis.ts";
import { parseConfigText } from "../config/load.ts";
import { readCaptures, rowsByQuery, runCaptures, runFacts } from "../cli/capture_run.ts";
import { setLogLevel } from "../util/log.ts";

setLogLevel("error");
const ROOT = new URL("../", import.meta.url).pathname;
const DEMO_CONFIG = await Deno.readTextFile(`${ROOT}fixtures/demo/config.yaml`);
const caps = await readCaptures(["a", "b", "c"].map((n) => `${ROOT}fixtures/demo/node-${n}.jsonl`));

async function diagnosisWithTtl(ttl: number | undefined) {
  const text = ttl === undefined
    ? DEMO_CONFIG
    : DEMO_CONFIG.replace("    metadata_extraction:", `    ttl_seconds: ${ttl}\n    metadata_extraction:`);
  const cfg = parseConfigText(text, "demo.yaml", {}).config;
  const result = await runCaptures(cfg, caps);
  const facts = await runFacts("demo.yaml", result.metrics.values(), result, result.problems);
  return { result, d: diagnose(cfg, facts, { rowsOf: rowsByQuery(caps) }) };
}

Deno.test("diagnosis: a stage whose latencies reach what ttl_seconds leaves is named, with the setting", async () => {
  const { result, d } = await diagnosisWithTtl(4);
  const asr = result.matches.filter((m) => m.stage === "asr").length;
  assert.ok(asr > 0 && asr < 30, `ttl_seconds 4 costs asr matches: ${asr} of 30`);
  const f = d.findings.find((x) => x.kind === "ttl_short");
  assert.ok(f, renderDiagnosis(d));
  assert.match(f.text, /^stage call_audio\/asr: latencies reach 2\.\d s, near the 1\.8 s a match has/);
  assert.match(f.text, /recall \(\d+ of 30\) and latency percentiles are low/);
  assert.match(f.detail[0]!, /^demo\.yaml:\d+:\d+: measurements\[0\]\.ttl_seconds: raise it/);
  assert.equal(d.poor, true);
  assert.match(d.headline, /stage asr: latencies near ttl_seconds/);
  // Not blamed on the stage's audio.
  assert.ok(!d.findings.some((x) => x.kind === "few_matches" || x.kind === "no_matches"), renderDiagnosis(d));
});

Deno.test("diagnosis: the default ttl_seconds leaves the demo's stages alone", async () => {
  const { d } = await diagnosisWithTtl(undefined);
  assert.ok(!d.findings.some((x) => x.kind === "ttl_short"), renderDiagnosis(d));
  assert.equal(d.poor, false);
});
