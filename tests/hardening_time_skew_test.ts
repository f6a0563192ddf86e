/**
 * Issue 15, "Time", against real `run` processes over a real nats-server: the relay node's clock is 5 s behind
 * the source node's, its capture (replayed in arrival order, as a live sensor receives rows) holds one row 130 s
 * in the future in the middle of the calls and one row with `time_` 0 first. Before the fix the future row
 * expired every signature on the node and ended its streams (relay matches 10 -> 1), the skewed clock left no
 * match at all (the search stopped 2 s before the source), and the `time_` 0 row broke pacing
 * (TimeoutOverflowWarning, the rest unpaced). Now: every relay match is found, at the skewed latency, and each
 * odd row is counted.
 */
import { equal, ok } from "node:assert/strict";
import { parse, stringify } from "yaml";
import { NatsServer } from "./support/nats_server.ts";
import { killAll, ROOT, SensorProcess, writeSensorConfig } from "./support/sensor_process.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

const E2E = `${ROOT}fixtures/e2e/`;
const SKEW_NS = 5_000_000_000n;
const ROGUE_AHEAD_NS = 130_000_000_000n;

/** node-b's capture with its clock 5 s behind, a `time_` 0 row first and a row from the future mid-way. */
async function skewedCapture(path: string): Promise<number> {
  const lines = (await Deno.readTextFile(`${E2E}node-b.jsonl`)).split("\n").filter((l) => l.trim() !== "");
  const out: string[] = [];
  let rows = 0;
  for (const line of lines) {
    const rec = JSON.parse(line) as { row?: Record<string, unknown> };
    if (!rec.row) {
      out.push(line);
      continue;
    }
    const t = BigInt(rec.row["time_"] as string);
    if (rows === 0) out.push(JSON.stringify({ ...rec, row: { ...rec.row, time_: "0" } }));
    out.push(JSON.stringify({ ...rec, row: { ...rec.row, time_: String(t - SKEW_NS) } }));
    if (rows === 120) {
      out.push(JSON.stringify({ ...rec, row: { ...rec.row, time_: String(t - SKEW_NS + ROGUE_AHEAD_NS) } }));
    }
    rows++;
  }
  await Deno.writeTextFile(path, out.join("\n") + "\n");
  return rows;
}

natsTest({
  name:
    "run: a relay node 5 s behind, with one future row and one time_ 0 row, still finds every relay match",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "fsmpx-skew-" });
    const nats = await NatsServer.start();
    const sensors: SensorProcess[] = [];
    try {
      const rows = await skewedCapture(`${dir}/node-b.jsonl`);
      ok(rows > 200, "node-b's capture has enough rows for a row 120 mid-call");
      const configA = await writeSensorConfig({
        base: `${E2E}config.yaml`,
        dir,
        node: "node-a",
        natsUrl: nats.url,
      });
      const configB = await writeSensorConfig({
        base: `${E2E}config.yaml`,
        dir,
        node: "node-b",
        natsUrl: nats.url,
      });
      // Both sensors run on this machine, so the skew estimator sees no offset: the configured window stands in.
      const doc = parse(await Deno.readTextFile(configB)) as Record<string, unknown>;
      doc["engine"] = { search_before_source_seconds: 6 };
      await Deno.writeTextFile(configB, stringify(doc));

      const b = await SensorProcess.start({
        node: "node-b",
        config: configB,
        capture: `${dir}/node-b.jsonl`,
        speed: 4,
      });
      sensors.push(b);
      const a = await SensorProcess.start({
        node: "node-a",
        config: configA,
        capture: `${E2E}node-a.jsonl`,
        speed: 4,
      });
      sensors.push(a);
      await Promise.all([a.waitReplayed(), b.waitReplayed()]);

      equal(await a.metric("signatures_detected_total"), 10);
      equal(await b.metric("signatures_matched_total", { stage: "relay" }), 10, b.stderr.slice(-3000));
      equal(await b.metric("fsmpx_rows_clock_outliers_total"), 1, "the future row is counted, not followed");
      equal(await b.metric("fsmpx_signatures_expired_total", { reason: "ttl" }), 0);
      equal(await b.metric("fsmpx_signatures_expired_total", { reason: "future" }), 0);
      equal(
        await b.metric("fsmpx_rows_skipped_total", { reason: "no_time" }),
        1,
        "the time_ 0 row is counted",
      );
      ok(!b.stderr.includes("TimeoutOverflowWarning"), "pacing never asks for an impossible timer");
      // The skew is not hidden: node-b's relay latencies are ~5 s negative, in the histogram's first bucket.
      const sum = await b.metric("audio_latency_seconds_sum", { stage: "relay" });
      ok(sum < -10 * 4.5 && sum > -10 * 5, `relay latency sum ${sum}`);
      for (const s of sensors) equal((await s.stop()).code, 0, `${s.node} exits 0 on SIGTERM`);
    } finally {
      await killAll(sensors);
      await nats.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
