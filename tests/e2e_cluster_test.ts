/**
 * Across nodes, as deployed: one nats-server, three sensor processes (one per node of the committed e2e
 * captures, replayed in real time) and a real Prometheus scraping all three. What Prometheus stored must be what
 * `analyze` finds on the same captures (count exactly, sum within 1e-6 s per match, per stage and series), and
 * the records the sensors left in JetStream must be read back by `replay` after every sensor has exited.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { NatsServer } from "./support/nats_server.ts";
import { PrometheusServer } from "./support/prometheus.ts";
import {
  analyzeCaptures,
  compareStored,
  killAll,
  replayRecords,
  ROOT,
  SensorProcess,
  writeSensorConfig,
} from "./support/sensor_process.ts";
import type { MatchRecord } from "../report/records.ts";
import { LATENCY_BUCKETS } from "../http/metrics.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server", "prometheus"]);

const E2E = `${ROOT}fixtures/e2e/`;
const CONFIG = `${E2E}config.yaml`;
const NODES = ["node-a", "node-b", "node-c"] as const;
const capture = (node: string) => `${E2E}${node}.jsonl`;

/** The series key Prometheus groups by: stage, scraped node (target label), source and target pod. */
function seriesKey(l: Record<string, string>): string {
  return [l["stage"], l["node"], l["source_pod"], l["target_pod"]].join(" ");
}

function expectedSeries(matches: readonly MatchRecord[]): Map<string, { count: number; sum: number }> {
  const out = new Map<string, { count: number; sum: number }>();
  for (const m of matches) {
    const k = seriesKey({
      stage: m.stage,
      node: m.target.node,
      source_pod: m.source.pod,
      target_pod: m.target.pod,
    });
    const e = out.get(k) ?? { count: 0, sum: 0 };
    e.count++;
    e.sum += m.latency_s;
    out.set(k, e);
  }
  return out;
}

natsTest({
  name:
    "3 sensor processes + nats-server + Prometheus, real time: scraped latency histograms equal analyze's matches",
  async fn() {
    const truth = await analyzeCaptures(CONFIG, NODES.map(capture));
    const stages = [...new Set(truth.matches.map((m) => m.stage))].sort();
    deepEqual(stages, ["asr", "relay"], "analyze must find matches at both stages of the e2e captures");
    ok(truth.signatures.length >= 8, `too few signatures to mean anything: ${truth.signatures.length}`);

    const dir = await Deno.makeTempDir({ prefix: "fsmpx-e2e-cluster-" });
    const sensors: SensorProcess[] = [];
    let nats: NatsServer | undefined;
    let prom: PrometheusServer | undefined;
    try {
      nats = await NatsServer.start();
      const configs = new Map<string, string>();
      for (const node of NODES) {
        configs.set(node, await writeSensorConfig({ base: CONFIG, dir, node, natsUrl: nats.url }));
      }
      // All three at once, as a DaemonSet rolls out; each paces its capture in real time from its own start.
      const started = await Promise.allSettled(
        NODES.map((node) =>
          SensorProcess.start({ node, config: configs.get(node)!, capture: capture(node), speed: 1 })
        ),
      );
      for (const s of started) if (s.status === "fulfilled") sensors.push(s.value);
      for (const s of started) if (s.status === "rejected") throw s.reason;

      prom = await PrometheusServer.start({
        groups: sensors.map((s) => ({ targets: [s.addr], labels: { node: s.node } })),
      });
      await Promise.all(sensors.map((s) => s.waitReplayed(90_000)));
      const finishedAt = Date.now();
      await prom.waitScrapedAfter(finishedAt, sensors.length);

      const up = await prom.query('up{job="fsmpx"}');
      deepEqual(up.map((u) => [u.metric["node"], u.value]).sort(), NODES.map((n) => [n, 1]));

      // Per series: Prometheus' view of every sensor's histogram against analyze's matches.
      const want = expectedSeries(truth.matches);
      const counts = await prom.query(
        'sum by (stage, node, source_pod, target_pod) (audio_latency_seconds_count{job="fsmpx"})',
      );
      const sums = await prom.query(
        'sum by (stage, node, source_pod, target_pod) (audio_latency_seconds_sum{job="fsmpx"})',
      );
      const have = new Map(counts.map((c) => [seriesKey(c.metric), { count: c.value, sum: NaN }]));
      for (const s of sums) {
        const h = have.get(seriesKey(s.metric));
        if (h) h.sum = s.value;
      }
      deepEqual([...have.keys()].sort(), [...want.keys()].sort(), "latency series scraped vs analyze's");
      for (const [k, w] of want) {
        const h = have.get(k)!;
        equal(h.count, w.count, `count of ${k}`);
        ok(Math.abs(h.sum - w.sum) <= 1e-6 * w.count, `sum of ${k}: prometheus ${h.sum}, analyze ${w.sum}`);
      }
      // Per stage, as a dashboard sums them.
      for (const stage of stages) {
        const ms = truth.matches.filter((m) => m.stage === stage);
        const [c] = await prom.query(`sum(audio_latency_seconds_count{job="fsmpx",stage="${stage}"})`);
        const [s] = await prom.query(`sum(audio_latency_seconds_sum{job="fsmpx",stage="${stage}"})`);
        equal(c?.value, ms.length, `count at ${stage}`);
        const sum = ms.reduce((a, m) => a + m.latency_s, 0);
        ok(Math.abs((s?.value ?? NaN) - sum) <= 1e-6 * ms.length, `sum at ${stage}: ${s?.value} vs ${sum}`);
        const [matched] = await prom.query(`sum(signatures_matched_total{job="fsmpx",stage="${stage}"})`);
        equal(matched?.value, ms.length, `signatures_matched_total at ${stage}`);
      }
      const [detected] = await prom.query('sum(signatures_detected_total{job="fsmpx"})');
      equal(detected?.value, truth.signatures.length, "signatures_detected_total");

      // Exemplars (OpenMetrics scrape): each names a match analyze found at that stage, with its latency, in
      // the bucket that holds it.
      const byStageSig = new Map(truth.matches.map((m) => [`${m.stage} ${m.signature_id}`, m]));
      const series = await prom.exemplars('audio_latency_seconds_bucket{job="fsmpx"}', 300);
      const seenStages = new Set<string>();
      for (const s of series) {
        const stage = s.seriesLabels["stage"] ?? "";
        const le = Number(s.seriesLabels["le"]);
        for (const e of s.exemplars) {
          const m = byStageSig.get(`${stage} ${e.labels["signature_id"]}`);
          ok(m !== undefined, `exemplar ${JSON.stringify(e.labels)} at ${stage} is no match of analyze`);
          ok(Math.abs(e.value - m.latency_s) <= 1e-6, `exemplar value ${e.value} vs ${m.latency_s}`);
          equal(e.labels["interval_id"], m.ids["interval_id"]);
          const lower = [0, ...LATENCY_BUCKETS].filter((b) => b < le).at(-1) ?? 0;
          ok(e.value <= le && e.value > lower, `exemplar ${e.value} in bucket le=${le}`);
          seenStages.add(stage);
        }
      }
      deepEqual([...seenStages].sort(), stages, "exemplars at every stage");

      // SIGTERM: each drains and exits 0.
      for (const s of sensors) equal((await s.stop()).code, 0, `${s.node} exit code\n${s.stderr}`);

      // The sensors have left; the server still has what they published.
      const stored = await replayRecords(configs.get("node-a")!);
      deepEqual(compareStored(truth, stored), []);
    } finally {
      await killAll(sensors);
      await prom?.stop();
      await nats?.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
