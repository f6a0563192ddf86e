import { equal as assertEquals, match as assertMatch, ok as assert } from "node:assert/strict";
import { FsmMetrics } from "../http/metrics.ts";
import { startHttpServer } from "../http/server.ts";
import type { Match } from "../audio/types.ts";
import { parseOpenMetrics, promtoolCheckMetrics } from "./support/promtool.ts";
import { gatedTest } from "./support/tools.ts";

const promtoolTest = await gatedTest(import.meta.url, ["promtool"]);
const openMetricsTest = await gatedTest(import.meta.url, ["python3-prometheus-client"]);

function match(latencyS: number, interval: string, stage = "asr"): Match {
  return {
    measurement: "call_start_latency",
    stage,
    signatureId: "0123456789abcdef",
    ids: { interval_id: interval },
    source: { node: "node-a", pod: "voice/telephony-0", stream: "s1", timeNs: 1n, offsetMs: 0 },
    target: { node: "node-b", pod: "voice/asr-0", stream: "t1", timeNs: 2n, offsetMs: 0 },
    latencyS,
    ber: 0.05,
  };
}

async function withServer(metrics: FsmMetrics, fn: (base: string) => Promise<void>, ready = true) {
  const server = startHttpServer({
    listen: "127.0.0.1:0",
    metrics,
    healthz: () => ({ ok: true, detail: "actors running" }),
    readyz: () => ({ ok: ready, detail: ready ? "pixie healthy" : "pixie unreachable" }),
  });
  try {
    await fn(`http://${server.addr}`);
  } finally {
    await server.close();
  }
}

promtoolTest(
  "/metrics over HTTP passes promtool check metrics and carries the seed's four metrics",
  async () => {
    const m = new FsmMetrics();
    m.signatureDetected("call_start_latency");
    m.activeSignatures("call_start_latency", 3);
    m.match(match(0.42, "11111111-2222-3333-4444-555555555555"));
    m.rowsRead("call_start_latency/source", 10);
    m.decodeErrors("call_start_latency", "source", "bad_base64");
    m.mailboxDepth("matcher", 2);
    await withServer(m, async (base) => {
      const res = await fetch(`${base}/metrics`);
      assertEquals(res.status, 200);
      assertMatch(res.headers.get("content-type") ?? "", /text\/plain; version=0\.0\.4/);
      const text = await res.text();
      const check = await promtoolCheckMetrics(text);
      assertEquals(check.code, 0, check.output);
      for (
        const line of [
          'signatures_detected_total{measurement="call_start_latency"} 1',
          'signatures_matched_total{measurement="call_start_latency",stage="asr"} 1',
          'active_signatures{measurement="call_start_latency"} 3',
          'audio_latency_seconds_bucket{le="0.5",measurement="call_start_latency",stage="asr",source_pod="voice/telephony-0",target_pod="voice/asr-0"} 1',
          'audio_latency_seconds_bucket{le="0.25",measurement="call_start_latency",stage="asr",source_pod="voice/telephony-0",target_pod="voice/asr-0"} 0',
          'audio_latency_last_seconds{measurement="call_start_latency",stage="asr",interval_id="11111111-2222-3333-4444-555555555555"} 0.42',
        ]
      ) assert(text.includes(line), `missing: ${line}\n${text}`);
    });
  },
);

openMetricsTest(
  "OpenMetrics with exemplars when the scraper asks for it, parsed by a strict parser",
  async () => {
    const m = new FsmMetrics();
    m.match(match(1.5, "aaaaaaaa-2222-3333-4444-555555555555"));
    m.signatureDetected("call_start_latency");
    await withServer(m, async (base) => {
      const res = await fetch(`${base}/metrics`, {
        headers: { accept: "application/openmetrics-text; version=1.0.0" },
      });
      assertMatch(res.headers.get("content-type") ?? "", /application\/openmetrics-text/);
      const text = await res.text();
      assert(text.endsWith("# EOF\n"));
      const parsed = await parseOpenMetrics(text);
      assertEquals(parsed.code, 0, parsed.output + "\n" + text);
      assertMatch(
        parsed.output,
        /exemplar audio_latency_seconds_bucket \{'signature_id': '0123456789abcdef', 'interval_id': 'aaaaaaaa-2222-3333-4444-555555555555'\}/,
      );
    });
  },
);

Deno.test("per-interval gauge is bounded and its series expire", async () => {
  let now = 0;
  const m = new FsmMetrics({ lastSeries: 2, lastTtlMs: 1000, now: () => now });
  m.match(match(0.1, "i1"));
  m.match(match(0.2, "i2"));
  m.match(match(0.3, "i3")); // evicts i1
  let text = await m.text();
  assert(!text.includes('interval_id="i1"'));
  assert(text.includes('interval_id="i2"') && text.includes('interval_id="i3"'));
  now = 500;
  m.match(match(0.4, "i2")); // refreshes i2
  now = 1200; // i3 (t=0) expired, i2 (t=500) still alive
  text = await m.text();
  assert(!text.includes('interval_id="i3"'), text);
  assert(text.includes('interval_id="i2"} 0.4'), text);
});

Deno.test("a peer's clock offset series goes when the peer is forgotten (node churn does not grow the series)", async () => {
  const m = new FsmMetrics();
  m.clockOffset("node-old", 0.01);
  m.clockOffset("node-new", -0.02);
  m.clockOffsetGone("node-old");
  const text = await m.text();
  assert(!text.includes('node_clock_offset_seconds{peer="node-old"}'), text);
  assert(text.includes('node_clock_offset_seconds{peer="node-new"} -0.02'), text);
});

Deno.test("Pixie stream lag keeps growing on scrape while nothing arrives; the last answer is a timestamp", async () => {
  let now = 1_800_000_000_000;
  const m = new FsmMetrics({ now: () => now });
  let text = await m.text();
  assert(!/^fsmpx_pixie_last_response_timestamp_seconds /m.test(text), "no Pixie stream: no series");
  m.pixieStreamOpened();
  text = await m.text();
  assert(/^fsmpx_pixie_last_response_timestamp_seconds 0$/m.test(text), "no answer yet: 0");
  m.streamLag("m/source", 0.5);
  m.pixieResponded();
  now += 90_000; // the stream went silent: no batch, no keep-alive
  text = await m.text();
  assert(text.includes('fsmpx_pixie_stream_lag_seconds{query="m/source"} 90.5'), text);
  assert(text.includes("fsmpx_pixie_last_response_timestamp_seconds 1800000000"), text);
  m.streamLag("m/source", 0.25);
  m.pixieResponded();
  text = await m.text();
  assert(text.includes('fsmpx_pixie_stream_lag_seconds{query="m/source"} 0.25'), text);
  assert(text.includes("fsmpx_pixie_last_response_timestamp_seconds 1800000090"), text);
});

Deno.test("trace export outcomes are counted from the exporter's own counters on each scrape", async () => {
  const m = new FsmMetrics();
  assert(!(await m.text()).includes("fsmpx_otlp_spans_total"), "no trace export: no series");
  const stats = { sent: 5, failed: 2, dropped: 0 };
  m.otlpOpened(() => stats);
  let text = await m.text();
  assert(text.includes('fsmpx_otlp_spans_total{outcome="sent"} 5'), text);
  assert(text.includes('fsmpx_otlp_spans_total{outcome="failed"} 2'), text);
  stats.sent = 9;
  stats.dropped = 1;
  text = await m.text();
  assert(text.includes('fsmpx_otlp_spans_total{outcome="sent"} 9'), text);
  assert(text.includes('fsmpx_otlp_spans_total{outcome="dropped"} 1'), text);
});

Deno.test("/healthz and /readyz report 200 or 503 with a reason", async () => {
  await withServer(new FsmMetrics(), async (base) => {
    const h = await fetch(`${base}/healthz`);
    assertEquals(h.status, 200);
    assertEquals(await h.text(), "ok: actors running\n");
    const r = await fetch(`${base}/readyz`);
    assertEquals(r.status, 503);
    assertEquals(await r.text(), "not ok: pixie unreachable\n");
    const nf = await fetch(`${base}/nope`);
    assertEquals(nf.status, 404);
    await nf.body?.cancel();
  }, false);
});

Deno.test("metrics: every metric a sensor registers is in the README's Metrics section", async () => {
  // Metric names are a contract users build dashboards on: one missing from the table is one they cannot find
  // (fsmpx_signatures_lookback_short_total was).
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const section = readme.slice(readme.indexOf("\n## Metrics\n"), readme.indexOf("\n## Reliability\n"));
  assert(section.length > 100, "README has a Metrics section before Reliability");
  const names = (await new FsmMetrics().registry.getMetricsAsJSON()).map((m) => m.name);
  assert(names.length > 20, `${names.length} metrics registered`);
  assertEquals(names.filter((n) => !section.includes(`\`${n}\``)).join(", "), "");
});
