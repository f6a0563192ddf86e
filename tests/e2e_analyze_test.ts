/**
 * End to end on generated captures of real speech (fixtures/e2e, fixtures/demo): `analyze` as a user runs it,
 * every match checked against the ground truth, and the per-node /metrics of the same run scraped over HTTP.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { loadConfig } from "../config/load.ts";
import { readCaptures, runCaptures } from "../cli/capture_run.ts";
import { startHttpServer } from "../http/server.ts";
import { type AnyRecord, type MatchRecord, parseRecord } from "../report/records.ts";
import type { MeasurementSummary } from "../report/summary.ts";
import { parseCapture } from "../pixie/capture.ts";
import {
  locate,
  parseTruth,
  type ScenarioTruth,
  type TruthCall,
  TruthIndex,
  type TruthStream,
} from "../fixtures/gen/scenario_truth.ts";
import { checkMatches, maxAbs, type TruthCheck } from "./support/truth.ts";
import { promtoolCheckMetrics } from "./support/promtool.ts";
import { setLogLevel } from "../util/log.ts";
import { gatedTest } from "./support/tools.ts";

const promtoolTest = await gatedTest(import.meta.url, ["promtool"]);

const ROOT = new URL("../", import.meta.url).pathname;
const E2E = `${ROOT}fixtures/e2e/`;
const DEMO = `${ROOT}fixtures/demo/`;

async function captureFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.endsWith(".jsonl")) files.push(dir + e.name);
  }
  return files.sort();
}

async function readTruth(dir: string): Promise<ScenarioTruth> {
  return parseTruth(await Deno.readTextFile(`${dir}truth.json`));
}

function parseRecords(text: string): AnyRecord[] {
  return text.split("\n").filter((l) => l.trim() !== "").map((l) => {
    const r = parseRecord(JSON.parse(l));
    if (typeof r === "string") throw new Error(`bad record ${r}: ${l}`);
    return r;
  });
}

/** The assertions every scenario run must pass; returns the check for further assertions. */
function assertExact(truth: ScenarioTruth, records: readonly AnyRecord[], label: string): TruthCheck {
  const c = checkMatches(truth, records);
  const matches = records.filter((r) => r.kind === "match").length;
  const summary = `${label}: ${JSON.stringify({ ...c, offsetErrorsMs: maxAbs(c.offsetErrorsMs) })}`;
  deepEqual(c.unknown, [], summary);
  ok(c.signatures >= 8, `${label}: too few signatures to mean anything (${c.signatures})`);
  equal(c.checked, matches, summary);
  equal(c.decoyMatches, 0, `${label}: decoy streams matched; ${summary}`);
  equal(c.wrongCall, 0, summary);
  equal(c.wrongMessage, 0, summary);
  equal(c.instantMissing, 0, summary);
  equal(c.offsetErrorsMs.length, matches, summary);
  ok(maxAbs(c.offsetErrorsMs) <= 1, `${label}: offset error ${maxAbs(c.offsetErrorsMs)} ms > 1 ms`);
  equal(c.latencyErrorsS.length, matches, summary);
  ok(maxAbs(c.latencyErrorsS) <= 1e-6, `${label}: latency error ${maxAbs(c.latencyErrorsS)} s`);
  equal(c.missingIds, 0, summary);
  equal(c.wrongIds, 0, summary);
  equal(c.duplicates, 0, summary);
  for (const stage of ["relay", "asr"]) {
    const st = c.stages[stage];
    ok(st !== undefined, `${label}: no match at ${stage}`);
    console.log(`${label} ${stage}: ${st.matchedSignatures}/${c.signatures} signatures matched`);
    ok(st.recall >= 0.9, `${label}: recall at ${stage} ${st.recall} < 0.9`);
  }
  return c;
}

function streamsOf(truth: ScenarioTruth, stage: string): TruthStream[] {
  return truth.streams.filter((s) => s.stage === stage);
}

Deno.test("analyze on the e2e captures: every match on the right message, offset within 1 ms, latency exact; decoys silent", async () => {
  const truth = await readTruth(E2E);
  const out = await Deno.makeTempFile({ suffix: ".jsonl" });
  try {
    const files = await captureFiles(E2E);
    deepEqual(files.map((f) => f.slice(E2E.length)), ["node-a.jsonl", "node-b.jsonl", "node-c.jsonl"]);
    const run = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        "main.ts",
        "analyze",
        "--config",
        `${E2E}config.yaml`,
        "--out",
        out,
        "--format",
        "json",
        ...files,
      ],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(run.stderr);
    equal(run.code, 0, stderr);
    const records = parseRecords(await Deno.readTextFile(out));
    const c = assertExact(truth, records, "e2e");

    // The decoy streams were replayed (so "no match" means something): they are in the capture with audio.
    const decoys = streamsOf(truth, "asr").filter((s) => s.decoy);
    ok(decoys.length >= 1 && decoys.every((s) => s.messages.length > 40));

    const json = JSON.parse(new TextDecoder().decode(run.stdout)) as {
      rows: number;
      malformed_lines: number;
      measurements: MeasurementSummary[];
    };
    equal(json.malformed_lines, 0);
    equal(json.rows, truth.streams.reduce((a, s) => a + s.messages.length, 0));
    equal(json.measurements.length, 1);
    const m = json.measurements[0]!;
    equal(m.measurement, truth.measurement);
    equal(m.signatures, c.signatures);
    deepEqual(m.stages.map((s) => s.stage), ["relay", "asr"]);
    equal(m.id_type, "interval_id");
    // One waterfall row per interval that produced a signature, showing where delay comes from: the relay
    // adds its ~0.1 s, the ASR its growing backlog.
    deepEqual(new Set(m.waterfall.map((r) => r.id)), new Set(c.signatureIntervals));
    const idx = new TruthIndex(truth);
    const intervalOf = new Map<string, { call: TruthCall; k: number }>();
    for (const call of truth.calls) call.intervals.forEach((iv, k) => intervalOf.set(iv.id, { call, k }));
    for (const row of m.waterfall) {
      const where = intervalOf.get(row.id);
      ok(where !== undefined && !where.call.decoy, `waterfall row for unknown interval ${row.id}`);
      const relay = truth.streams.find((s) => s.stage === "relay" && s.call === where.call.id)!;
      const asrDelay = where.call.intervals[where.k]!.asrDelayMs / 1000;
      const prevDelay = where.call.intervals[Math.max(0, where.k - 1)]!.asrDelayMs / 1000;
      const r = row.latency_s_by_stage["relay"], a = row.latency_s_by_stage["asr"];
      ok(typeof r === "number" && typeof a === "number", `interval ${row.id} misses a stage`);
      // latency = target capture - source capture: the stage delay, minus up to one source chunk (20 ms),
      // plus up to one target chunk and its jitter.
      ok(r >= relay.delayMs / 1000 - 0.021 && r <= relay.delayMs / 1000 + 0.065, `relay ${r} s`);
      ok(a >= prevDelay - 0.021 && a <= asrDelay + 0.2 + 0.011, `asr ${a} s vs delay ${asrDelay} s`);
    }
    ok(idx.truth.calls.some((call) => !call.decoy && call.intervals.length >= 3));
  } finally {
    await Deno.remove(out);
  }
});

function parseSamples(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  const out: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]!] = l[2]!;
    }
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

promtoolTest(
  "runCaptures on the e2e captures: each node's /metrics, scraped over HTTP, counts what analyze reports",
  async () => {
    const truth = await readTruth(E2E);
    const { config } = await loadConfig(`${E2E}config.yaml`);
    setLogLevel(config.log_level);
    const caps = await readCaptures(await captureFiles(E2E));
    const result = await runCaptures(config, caps);
    assertExact(truth, [...result.signatures, ...result.matches], "e2e in-process");
    const mName = truth.measurement;
    const sourceNode = streamsOf(truth, "source")[0]!.node;
    for (const [node, metrics] of result.metrics) {
      const server = startHttpServer({
        listen: "127.0.0.1:0",
        metrics,
        healthz: () => ({ ok: true, detail: "test" }),
        readyz: () => ({ ok: true, detail: "test" }),
      });
      let text: string;
      try {
        const res = await fetch(`http://${server.addr}/metrics`);
        equal(res.status, 200);
        text = await res.text();
      } finally {
        await server.close();
      }
      const check = await promtoolCheckMetrics(text);
      equal(check.code, 0, `${node}: promtool: ${check.output}`);
      const samples = parseSamples(text);
      const value = (name: string, labels: Record<string, string>) =>
        samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
          .reduce((a, s) => a + s.value, 0);
      const has = (name: string, labels: Record<string, string>) =>
        samples.some((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));

      equal(
        value("signatures_detected_total", { measurement: mName }),
        node === sourceNode ? result.signatures.length : 0,
        `${node}: signatures_detected_total`,
      );
      ok(has("active_signatures", { measurement: mName }), `${node}: active_signatures missing`);
      const here = result.matches.filter((m) => m.target.node === node);
      equal(
        value("audio_latency_seconds_count", { measurement: mName }),
        here.length,
        `${node}: histogram count`,
      );
      const stages = [...new Set(here.map((m) => m.stage))];
      for (const stage of stages) {
        const atStage = here.filter((m) => m.stage === stage);
        equal(value("signatures_matched_total", { measurement: mName, stage }), atStage.length);
        equal(value("audio_latency_seconds_count", { measurement: mName, stage }), atStage.length);
        // The per-interval waterfall: one series per interval seen at this stage, holding its latest latency.
        const last = new Map<string, MatchRecord>();
        for (const m of atStage) last.set(m.ids["interval_id"]!, m);
        const series = samples.filter((s) =>
          s.name === "audio_latency_last_seconds" && s.labels["measurement"] === mName &&
          s.labels["stage"] === stage
        );
        deepEqual(
          new Set(series.map((s) => s.labels["interval_id"])),
          new Set(last.keys()),
          `${node}/${stage}`,
        );
        for (const s of series) equal(s.value, last.get(s.labels["interval_id"]!)!.latency_s);
      }
      const expectedStages = [
        ...new Set(truth.streams.filter((s) => s.node === node && s.stage !== "source").map((s) => s.stage)),
      ];
      deepEqual(stages.sort(), expectedStages.sort(), `${node}: stages with matches`);
    }
  },
);

Deno.test("the bundled demo captures: every match exact against their truth, decoys silent", async () => {
  const truth = await readTruth(DEMO);
  const { config } = await loadConfig(`${DEMO}config.yaml`);
  setLogLevel(config.log_level);
  const result = await runCaptures(config, await readCaptures(await captureFiles(DEMO)));
  const c = assertExact(truth, [...result.signatures, ...result.matches], "demo");
  equal(new Set(truth.calls.filter((x) => !x.decoy).map((x) => x.id)).size, 3);
  ok(truth.streams.filter((s) => s.decoy).length >= 2);
  ok(c.signatureIntervals.length >= 9, `only ${c.signatureIntervals.length} intervals have signatures`);
});

Deno.test("committed captures agree with their truth: every row is a truth message of its stream, with its interval id", async () => {
  for (const dir of [E2E, DEMO]) {
    const truth = await readTruth(dir);
    const idx = new TruthIndex(truth);
    const byQueryNode = new Map<string, TruthStream[]>();
    for (const s of truth.streams) {
      const k = `${s.node} ${s.query}`;
      byQueryNode.set(k, [...(byQueryNode.get(k) ?? []), s]);
    }
    let rows = 0;
    const dec = new TextDecoder();
    for (const file of await captureFiles(dir)) {
      const cap = parseCapture(await Deno.readTextFile(file), file);
      deepEqual(cap.problems, []);
      for (const row of cap.rows) {
        const body = dec.decode(row.columns["req_body"] as Uint8Array);
        const id = /interval_id":"([a-f0-9-]{36})"/.exec(body)?.[1];
        const candidates = byQueryNode.get(`${cap.node} ${row.query}`) ?? [];
        const hits = candidates.flatMap((s) => {
          const i = idx.messageAt(s, row.time.toString());
          return i === undefined ? [] : [{ s, i }];
        });
        equal(hits.length, 1, `${file}: row at ${row.time} is in ${hits.length} truth streams`);
        equal(id, idx.intervalId(hits[0]!.s, hits[0]!.i), `${file}: interval id of row at ${row.time}`);
        rows++;
      }
    }
    equal(rows, truth.streams.reduce((a, s) => a + s.messages.length, 0), dir);
  }
});

/** A perfect match for source message `i` at `offsetMs`, built from the truth alone. */
function perfectMatch(truth: ScenarioTruth, stage: string, i: number, offsetMs: number): MatchRecord {
  const idx = new TruthIndex(truth);
  const src = streamsOf(truth, "source")[0]!;
  const tgt = truth.streams.find((s) => s.stage === stage && s.call === src.call)!;
  const [t, start] = src.messages[i]!;
  const at = locate(tgt, start + offsetMs / 1000);
  if (at.kind !== "present") throw new Error("instant not in target");
  const ids = { interval_id: idx.intervalId(src, i)! };
  return {
    kind: "match",
    measurement: truth.measurement,
    stage,
    signature_id: "00000000000000aa",
    ids,
    source: { node: src.node, pod: src.pod, stream: src.key, time_ns: t, offset_ms: offsetMs },
    target: {
      node: tgt.node,
      pod: tgt.pod,
      stream: tgt.key,
      time_ns: at.timeNs.toString(),
      offset_ms: at.offsetMs,
    },
    latency_s: Number(at.timeNs - BigInt(t)) / 1e9,
    ber: 0.1,
  };
}

Deno.test("the truth check catches a wrong message, offset, latency, id, decoy and other call", async () => {
  const truth = await readTruth(E2E);
  const src = streamsOf(truth, "source")[0]!;
  const sig: AnyRecord = {
    kind: "signature",
    measurement: truth.measurement,
    signature_id: "00000000000000aa",
    node: src.node,
    pod: src.pod,
    stream: src.key,
    time_ns: src.messages[300]![0],
    offset_ms: 7.5,
    ids: { interval_id: new TruthIndex(truth).intervalId(src, 300)! },
    bytes: 500,
  };
  const good = perfectMatch(truth, "asr", 300, 7.5);
  const clean = checkMatches(truth, [sig, good, perfectMatch(truth, "relay", 300, 7.5)]);
  deepEqual([clean.checked, clean.wrongMessage, clean.missingIds, clean.wrongIds, clean.duplicates], [
    2,
    0,
    0,
    0,
    0,
  ]);
  ok(maxAbs(clean.offsetErrorsMs) < 1e-9 && maxAbs(clean.latencyErrorsS) < 1e-9);
  equal(clean.stages["asr"]!.recall, 1);

  const tgt = truth.streams.find((s) => s.key === good.target.stream)!;
  const idx = new TruthIndex(truth);
  const ti = idx.messageAt(tgt, good.target.time_ns)!;
  const next = tgt.messages[ti + 1]!;
  const shifted = { ...good, target: { ...good.target, time_ns: next[0], offset_ms: 0 } };
  const c1 = checkMatches(truth, [sig, shifted]);
  equal(c1.wrongMessage, 1);
  ok(
    Math.abs(c1.offsetErrorsMs[0]! - (next[1] - tgt.messages[ti]![1]) * 1000 + good.target.offset_ms) < 1e-6,
  );

  const c2 = checkMatches(truth, [sig, {
    ...good,
    target: { ...good.target, offset_ms: good.target.offset_ms + 2 },
  }]);
  ok(Math.abs(c2.offsetErrorsMs[0]! - 2) < 1e-6);
  const c3 = checkMatches(truth, [sig, { ...good, latency_s: good.latency_s + 0.001 }]);
  ok(Math.abs(c3.latencyErrorsS[0]! - 0.001) < 1e-9);
  equal(checkMatches(truth, [sig, { ...good, ids: {} }]).missingIds, 1);
  equal(checkMatches(truth, [sig, { ...good, ids: { interval_id: "x" } }]).wrongIds, 1);
  const decoy = truth.streams.find((s) => s.decoy)!;
  const onDecoy = { ...good, target: { ...good.target, stream: decoy.key, time_ns: decoy.messages[5]![0] } };
  equal(checkMatches(truth, [sig, onDecoy]).decoyMatches, 1);
  const other = truth.streams.find((s) => s.stage === "asr" && !s.decoy && s.call !== src.call)!;
  const onOther = { ...good, target: { ...good.target, stream: other.key, time_ns: other.messages[5]![0] } };
  equal(checkMatches(truth, [sig, onOther]).wrongCall, 1);
  equal(checkMatches(truth, [sig, good, good]).duplicates, 1);
  equal(
    checkMatches(truth, [sig, { ...good, target: { ...good.target, stream: "nope" } }]).unknown.length,
    1,
  );
});

const SOUNDS = "/usr/share/asterisk/sounds/en_US_f_Allison";
const canRegenerate = await (async () => {
  try {
    await Deno.stat(SOUNDS);
    return (await new Deno.Command("sox", { args: ["--version"], stdout: "null", stderr: "null" }).output())
      .success;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "fixtures/e2e is what `fixtures/gen/scenario.ts e2e` writes (needs sox and the Asterisk sounds)",
  ignore: !canRegenerate,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const run = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          "--allow-write",
          "--allow-run",
          "fixtures/gen/scenario.ts",
          "e2e",
          "--out",
          dir,
        ],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output();
      equal(run.code, 0, new TextDecoder().decode(run.stderr));
      for (const name of ["node-a.jsonl", "node-b.jsonl", "node-c.jsonl", "config.yaml", "truth.json"]) {
        const [fresh, committed] = await Promise.all([
          Deno.readTextFile(`${dir}/${name}`),
          Deno.readTextFile(`${E2E}${name}`),
        ]);
        ok(fresh === committed, `${name} differs from a fresh generation`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
