/**
 * A live sensor stopped while a call is in progress, as a DaemonSet rolling update stops every pod: a real `run`
 * process reads one call live from the fake Vizier (a standalone PEM: the Twilio-style source tap, a relay 160 ms
 * and an ASR 800 ms later) and publishes to a real nats-server. The call is still going when SIGTERM comes (no
 * end, no silence after its last words). The sensor must finish its streams as a capture's end does before it
 * drains: the source stream's last signatures (their 2 s blocks not complete) are published, and the target
 * streams verify what is pending with the frames there are (the ASR stage lacks the call's last 800 ms). What
 * JetStream holds afterwards must be exactly what `analyze` finds in the same rows at a capture's end, and the
 * sensor exits 0. Before, every signature and match the end of a capture adds were lost at a live stop.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { FakeVizier } from "./support/fake_vizier.ts";
import { liveCallsConfig, oneCallRows, TAP_DELAY_MS } from "./support/live_calls.ts";
import { batchOf, displayNames, relationOf } from "./support/capture_vizier.ts";
import { NatsServer } from "./support/nats_server.ts";
import { requireTools, toolGate } from "./support/tools.ts";
import {
  analyzeCaptures,
  compareStored,
  type LogLine,
  matchKey,
  parseMetricsText,
  replayRecords,
  ROOT,
  sleep,
  sumSamples,
} from "./support/sensor_process.ts";
import { encodeCaptureHeader, encodeCaptureLine } from "../pixie/capture.ts";
import type { Row } from "../pixie/row.ts";

const gate = await toolGate(import.meta.url, ["nats-server"]);

const NODE = "stop-node";
/** 20 ms ticks of the call before the stop: 9.6 s. */
const TICKS = 480;
const TICK_NS = 20_000_000n;
/** How often the fake pushes the rows that are due, ms (Stirling pushes every 200 ms at these loads). */
const PUSH_MS = 100;
/** A signature's block: 128 frames of 16 ms (audio/pipeline.ts SIGNATURE_FRAMES). */
const BLOCK_NS = 2_048_000_000n;
const ASR_DELAY_NS = BigInt(TAP_DELAY_MS.asr!) * 1_000_000n;
/** The call's voice (tests/support/live_calls.ts): speaking in its last 2 s, so blocks are pending at the stop. */
const SEED = 5;

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** The call's rows from `startNs` on, every tap's in tick order: what the fake serves and the capture holds. */
function callRows(startNs: bigint): Row[] {
  return oneCallRows({ node: NODE, startNs, ticks: TICKS, seed: SEED });
}

function logLines(stderr: string): LogLine[] {
  return stderr.split("\n").filter((l) => l.startsWith("{")).flatMap((l) => {
    try {
      return [JSON.parse(l) as LogLine];
    } catch {
      return [];
    }
  });
}

Deno.test({
  name:
    "live stop: SIGTERM during a call publishes its last signatures and the matches verified with the frames there are, as analyze at a capture's end; exit 0",
  ignore: gate.ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    requireTools(gate);
    const dir = await Deno.makeTempDir({ prefix: "fsmpx-live-stop-" });
    const nats = await NatsServer.start();
    const fake = await FakeVizier.start({ standalone: true, pems: [{ node: NODE }] });
    let rows: Row[] = [];
    /** Wall ms when the last row was handed to the fake's stream. */
    let lastSentMs = 0;
    let reruns = 0;
    fake.onExecute = async (call) => {
      // One query, served once: a re-run would see rows twice or miss some; the test says so instead.
      if (call.index > 0) {
        reruns++;
        return void await call.cancelled;
      }
      const startNs = BigInt(Date.now() + 500) * 1_000_000n;
      rows = callRows(startNs);
      const relation = relationOf(rows[0]!);
      const tables = new Map<string, string>();
      for (const name of displayNames(call.request.queryStr)) {
        const id = `table-${tables.size}`;
        tables.set(name, id);
        await call.meta(id, name, relation);
      }
      // Live: each push carries the rows whose time has come, as Pixie pushes what it captured.
      let next = 0;
      while (next < rows.length && !call.isCancelled()) {
        await sleep(PUSH_MS);
        const nowNs = BigInt(Date.now()) * 1_000_000n;
        let end = next;
        while (end < rows.length && rows[end]!.time <= nowNs) end++;
        for (const [name, id] of tables) {
          const due = rows.slice(next, end).filter((r) => r.query === name);
          if (due.length > 0) await call.batch(batchOf(id, relation, due));
        }
        next = end;
      }
      lastSentMs = Date.now();
      // The call goes on (no end, no silence): only keep-alives until the sensor stops.
      while (!call.isCancelled()) {
        await Promise.race([call.cancelled, sleep(1000)]);
        if (!call.isCancelled()) { for (const id of tables.values()) await call.keepAlive(id, relation); }
      }
    };
    const addr = `127.0.0.1:${freePort()}`;
    const config = `${dir}/config.yaml`;
    await Deno.writeTextFile(
      config,
      liveCallsConfig({ pixieAddr: fake.address, metricsListen: addr, node: NODE, maxStreams: 16 }) +
        `nats:\n  url: ${nats.url}\n`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "main.ts", "run", "--config", config],
      cwd: ROOT,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let stderr = "";
    const stderrDone = (async () => {
      for await (const c of child.stderr.pipeThrough(new TextDecoderStream())) stderr += c;
    })();
    let exited = false;
    const status = child.status.then((s) => {
      exited = true;
      return s;
    });
    const metric = async (name: string) => {
      const res = await fetch(`http://${addr}/metrics`, { signal: AbortSignal.timeout(10_000) });
      return sumSamples(parseMetricsText(await res.text()), name);
    };
    try {
      // The whole call is served, and the sensor's Pixie stream has answered since (keep-alives come after it).
      const until = Date.now() + 90_000;
      for (;;) {
        ok(!exited, `the sensor exited early:\n${stderr}`);
        ok(Date.now() < until, `the call was not served and read in time:\n${stderr}`);
        if (lastSentMs > 0) {
          const at = await metric("fsmpx_pixie_last_response_timestamp_seconds").catch(() => 0);
          if (at * 1000 > lastSentMs) break;
        }
        await sleep(200);
      }
      // The rows the client has read reach the reader within milliseconds; a second is ample.
      await sleep(1000);
      equal(reruns, 0, `the query was re-run: the sensor may have missed rows\n${stderr}`);
      ok(await metric("signatures_detected_total") > 0, "signatures before the stop: the sensor works live");

      child.kill("SIGTERM");
      const s = await status;
      await stderrDone;
      equal(s.code, 0, `exit code after SIGTERM\n${stderr}`);

      // What analyze finds in the same rows, ending as a capture does.
      const capture = `${dir}/call.jsonl`;
      await Deno.writeTextFile(
        capture,
        [encodeCaptureHeader(NODE), ...rows.map(encodeCaptureLine)].join("\n") + "\n",
      );
      const truth = await analyzeCaptures(config, [capture]);
      const stored = await replayRecords(config);

      // The preconditions that make this test mean something: the call was speaking at its end, so its last
      // signature's 2 s block was not complete at the stop, and some match was decided on frames short of a block.
      const endNs = rows[rows.length - 1]!.time + TICK_NS;
      const instant = (t: { time_ns: string; offset_ms: number }) =>
        BigInt(t.time_ns) + BigInt(Math.round(t.offset_ms * 1e6));
      const last = truth.signatures.reduce((a, b) => (instant(a) > instant(b) ? a : b));
      ok(
        endNs - instant(last) < BLOCK_NS,
        `the last signature (${instant(last)}) is anchored within a block of the call's end (${endNs})`,
      );
      const asrLate = truth.matches.filter((m) =>
        m.stage === "asr" && instant(m.source) + BLOCK_NS + ASR_DELAY_NS > endNs
      );
      ok(asrLate.length > 0, "an ASR match whose block reaches past the ASR tap's last frame");

      // Exactly analyze's records: no signature or match missing, none extra, none twice, same latencies.
      deepEqual(compareStored(truth, stored), []);
      ok(
        stored.signatures.some((x) => x.signature_id === last.signature_id),
        "the call's last signature stored",
      );
      const storedKeys = new Set(stored.matches.map(matchKey));
      for (const m of asrLate) ok(storedKeys.has(matchKey(m)), `ASR match ${matchKey(m)} stored`);
      const logs = logLines(stderr);
      ok(logs.some((l) => l.msg === "streams in progress finished"), stderr);
      deepEqual(logs.filter((l) => l.level === "warn" || l.level === "error").map((l) => l.msg), []);
    } finally {
      if (!exited) {
        child.kill("SIGKILL");
        await status;
      }
      await stderrDone.catch(() => {});
      await fake.stop();
      await nats.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
