/**
 * A live node whose rows stop (a night, the last call of a scaled-down deployment): event time is carried on by the
 * runtime's clock from the last row, so the call's last signature is published and matched, and every signature
 * expires by its TTL, as a capture's end and the next call's rows would do. Before, only rows moved event time: the
 * call's last signature (its 2 s block short at the call's end) and its matches never came, and
 * `active_signatures` held the call's signatures for good (tmp run of `run` against the fake Vizier: 3 of 4
 * signatures, 6 of 8 matches, active 3, none expired, 150 s after the call).
 *
 * A real SensorNode in live mode on one synthetic call (tests/support/live_calls.ts: a Twilio-style source tap, a
 * relay 160 ms and an ASR 800 ms later), its actors' clock virtual and its wall clock tied to it.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { finishNodes, SensorNode } from "../actors/node.ts";
import type { RowSource } from "../actors/pixie_reader.ts";
import { VirtualClock } from "../actors/clock.ts";
import { InProcessBus } from "../bus/in_process.ts";
import { FsmMetrics } from "../http/metrics.ts";
import { parseConfigText } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import type { Row } from "../pixie/row.ts";
import type { MatchRecord, SignatureRecord } from "../report/records.ts";
import { liveCallsConfig, oneCallRows } from "./support/live_calls.ts";
import { matchKey, parseMetricsText, sleep, sumSamples } from "./support/sensor_process.ts";
import { setLogSink } from "../util/log.ts";

setLogSink(() => {});

const NODE = "quiet-node";
/** 9.6 s of one call, speaking at its end (seed 5): its last signature's block is short when the rows stop. */
const TICKS = 480;
const START_NS = 1_800_000_000_000_000_000n;
function callRows(): Row[] {
  return oneCallRows({ node: NODE, startNs: START_NS, ticks: TICKS, seed: 5 });
}

function config(): Config {
  const text = liveCallsConfig({ pixieAddr: "127.0.0.1:1", metricsListen: "127.0.0.1:0", node: NODE });
  return parseConfigText(text.replace("log_level: info", "log_level: error"), "test.yaml", {}).config;
}

interface Records {
  signatures: string[];
  matches: string[];
}

function sink(into: Records) {
  return {
    signature: (r: SignatureRecord) => void into.signatures.push(r.signature_id),
    match: (r: MatchRecord) => void into.matches.push(matchKey(r)),
  };
}

/** What a capture's end gives on the rows (analyze: replay, then finishNodes). */
async function atCaptureEnd(rows: readonly Row[]): Promise<Records> {
  const bus = new InProcessBus();
  const recs: Records = { signatures: [], matches: [] };
  const node = await SensorNode.start({
    config: config(),
    node: NODE,
    bus,
    metrics: new FsmMetrics(),
    mode: "replay",
    sinks: [sink(recs)],
  });
  for (const r of rows) await node.ingest(r);
  await finishNodes([node], bus);
  await node.shutdown(5000);
  return { signatures: recs.signatures.sort(), matches: recs.matches.sort() };
}

/** A live node whose wall clock is the virtual clock's, starting just after the call's last row. */
async function liveNode(source?: RowSource) {
  const clock = new VirtualClock();
  const wallMs = () => Number(START_NS / 1_000_000n) + 10_000 + clock.now();
  const metrics = new FsmMetrics();
  const recs: Records = { signatures: [], matches: [] };
  const node = await SensorNode.start({
    config: config(),
    node: NODE,
    bus: new InProcessBus(),
    metrics,
    mode: "live",
    clock,
    wallMs,
    lateClockMs: wallMs,
    sinks: [sink(recs)],
    source,
  });
  const settle = async () => {
    // The actors' turns and the in-process bus run on real macrotasks.
    for (let i = 0; i < 3; i++) {
      await node.system.settled();
      await sleep(5);
    }
  };
  /** Lets `seconds` pass on the runtime's clock, a second at a time, each followed by what it caused. */
  const pass = async (seconds: number, each?: () => void) => {
    for (let s = 0; s < seconds; s++) {
      each?.();
      await clock.advance(1000);
      await settle();
    }
  };
  const metric = async (name: string, labels?: Record<string, string>) =>
    sumSamples(parseMetricsText(await metrics.text()), name, labels);
  return { node, recs, settle, pass, metric };
}

Deno.test("quiet live node: a call's last signature is published and matched, and signatures expire, without more rows", async () => {
  const rows = callRows();
  const want = await atCaptureEnd(rows);
  const { node, recs, settle, pass, metric } = await liveNode();
  try {
    for (const r of rows) await node.ingest(r);
    await settle();
    const before = recs.signatures.length;
    ok(
      before < want.signatures.length,
      `${before} signatures before the quiet, ${want.signatures.length} at the end`,
    );
    // The idle time (60 s) and a few seconds: the streams end, the source's first.
    await pass(70);
    deepEqual(recs.signatures.toSorted(), want.signatures);
    deepEqual(recs.matches.toSorted(), want.matches);
    equal(await metric("active_signatures"), want.signatures.length);
    // The TTL (120 s after each signature's instant; the call was 9.6 s long).
    await pass(65);
    equal(await metric("active_signatures"), 0);
    equal(await metric("fsmpx_signatures_expired_total", { reason: "ttl" }), want.signatures.length);
    equal(await metric("fsmpx_signatures_expired_total", { reason: "late" }), 0);
  } finally {
    await node.shutdown(5000);
  }
});

Deno.test("quiet live node: event time is not carried on while the source does not answer (its rows come later)", async () => {
  const rows = callRows();
  const want = await atCaptureEnd(rows);
  let responses = 0;
  let emitted = 0;
  const source: RowSource = {
    async runBatches(emit, signal) {
      responses++;
      await emit(rows);
      emitted = rows.length;
      await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
    },
    run: () => Promise.reject(new Error("runBatches is used")),
    responses: () => responses,
  };
  const { node, recs, settle, pass, metric } = await liveNode(source);
  try {
    for (let i = 0; i < 100 && emitted < rows.length; i++) await settle();
    equal(emitted, rows.length);
    await settle();
    const before = { signatures: recs.signatures.length, matches: recs.matches.length };
    // No answer (a Pixie stream lost and being re-run) for longer than the idle time: no stream ends. (Carried on,
    // the call's streams would end here, and a re-run's rows of the outage would start them again mid-call.)
    await pass(65);
    deepEqual({ signatures: recs.signatures.length, matches: recs.matches.length }, before);
    equal(await metric("active_signatures"), before.signatures);
    // Keep-alives again, no rows: the quiet is real from here.
    await pass(70, () => void responses++);
    deepEqual(recs.signatures.toSorted(), want.signatures);
    deepEqual(recs.matches.toSorted(), want.matches);
  } finally {
    await node.shutdown(5000);
  }
});
