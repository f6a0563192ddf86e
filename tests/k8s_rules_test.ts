/**
 * The alert rules (k8s/prometheusrule.yaml) and the Grafana dashboard (k8s/grafana/fsm-px-dashboard.json):
 * promtool parses and unit-tests the rules, every query parses as PromQL, and every metric they query is one the
 * exporter exposes.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import {
  EXPOSED_METRICS,
  grafanaQueryMetricNames,
  parseManifests,
  promqlMetricNames,
  readKustomization,
  SCRAPE_SERIES,
  seriesNames,
  substituteGrafanaVariables,
} from "./support/k8s_validate.ts";
import { gatedTest } from "./support/tools.ts";

const promtoolTest = await gatedTest(import.meta.url, ["promtool"]);

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const RULE_FILE = join(ROOT, "k8s/prometheusrule.yaml");
const DASHBOARD_FILE = join(ROOT, "k8s/grafana/fsm-px-dashboard.json");
const KNOWN_SERIES = new Set([...seriesNames(EXPOSED_METRICS), ...SCRAPE_SERIES]);

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleGroup {
  name: string;
  rules: Rule[];
}

async function ruleGroups(): Promise<RuleGroup[]> {
  const { docs, problems } = parseManifests(await Deno.readTextFile(RULE_FILE), "k8s/prometheusrule.yaml");
  deepEqual(problems, []);
  const spec = (docs[0]?.value as { spec?: { groups?: RuleGroup[] } } | undefined)?.spec;
  ok(spec?.groups && spec.groups.length > 0, "PrometheusRule has rule groups");
  return spec.groups;
}

async function promtool(args: string[], cwd: string): Promise<{ code: number; output: string }> {
  const out = await new Deno.Command("promtool", { args, cwd, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: out.code, output: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "fsmpx-k8s-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

promtoolTest("rules: promtool check rules passes on the PrometheusRule's groups", async () => {
  const groups = await ruleGroups();
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "rules.yaml"), stringify({ groups }));
    const res = await promtool(["check", "rules", "rules.yaml"], dir);
    equal(res.code, 0, res.output);
    const count = groups.reduce((n, g) => n + g.rules.length, 0);
    ok(res.output.includes(`SUCCESS: ${count} rules found`), res.output);
  });
});

Deno.test("rules: the alerts users need, each with a severity and a summary and description", async () => {
  const alerts = (await ruleGroups()).flatMap((g) => g.rules).filter((r) => r.alert);
  const names = alerts.map((r) => r.alert);
  for (
    const needed of [
      "FsmPxStageLatencyP99OverSLO",
      "FsmPxMatchRateCollapse",
      "FsmPxSensorDown",
      "FsmPxPixieStreamLag",
      "FsmPxOutboxOverflow",
    ]
  ) ok(names.includes(needed), `missing alert ${needed}`);
  for (const r of alerts) {
    ok(["warning", "critical"].includes(r.labels?.severity ?? ""), `${r.alert}: severity`);
    ok(r.annotations?.summary && r.annotations.description, `${r.alert}: summary and description`);
  }
  const p99 = alerts.find((r) => r.alert === "FsmPxStageLatencyP99OverSLO");
  ok(/histogram_quantile\(0\.99,/.test(p99?.expr ?? ""), "p99 from the latency histogram");
  ok(/by \(measurement, stage, le\)/.test(p99?.expr ?? ""), "per measurement and stage");
});

Deno.test("rules: every metric the rules query is one the exporter exposes", async () => {
  const used = (await ruleGroups()).flatMap((g) => g.rules).flatMap((r) => promqlMetricNames(r.expr));
  ok(used.length >= 13, `found ${used.length} metric references`);
  deepEqual([...new Set(used)].filter((n) => !KNOWN_SERIES.has(n)), []);
});

/** Unit tests for `promtool test rules`: input series, and which alerts fire with which labels when. */
function unitTests(): unknown[] {
  const expect = (eval_time: string, alertname: string, labels: Record<string, string>[]) => ({
    eval_time,
    alertname,
    exp_alerts: labels.map((exp_labels) => ({ exp_labels })),
  });
  const bucket = (stage: string, le: string, values: string) => ({
    series: `audio_latency_seconds_bucket{measurement="m",stage="${stage}",le="${le}"}`,
    values,
  });
  return [
    {
      name: "p99 over the SLO fires for a slow stage with enough matches only",
      interval: "1m",
      input_series: [
        // asr: one match per second, all between 0.5 s and 1 s.
        ...["0.1", "0.25", "0.5"].map((le) => bucket("asr", le, "0+0x30")),
        ...["1", "+Inf"].map((le) => bucket("asr", le, "0+60x30")),
        { series: 'audio_latency_seconds_count{measurement="m",stage="asr"}', values: "0+60x30" },
        // fast: one match per second, all under 0.1 s.
        ...["0.1", "0.25", "0.5", "1", "+Inf"].map((le) => bucket("fast", le, "0+60x30")),
        { series: 'audio_latency_seconds_count{measurement="m",stage="fast"}', values: "0+60x30" },
        // rare: slow, but one match a minute is too few for a p99.
        ...["0.1", "0.25", "0.5"].map((le) => bucket("rare", le, "0+0x30")),
        ...["1", "+Inf"].map((le) => bucket("rare", le, "0+1x30")),
        { series: 'audio_latency_seconds_count{measurement="m",stage="rare"}', values: "0+1x30" },
      ],
      alert_rule_test: [
        expect("5m", "FsmPxStageLatencyP99OverSLO", []),
        expect("20m", "FsmPxStageLatencyP99OverSLO", [{
          severity: "warning",
          measurement: "m",
          stage: "asr",
        }]),
      ],
    },
    {
      name: "match rate collapse fires when a stage loses most of its matches",
      interval: "1m",
      input_series: [
        { series: 'signatures_detected_total{measurement="m",node="n1"}', values: "0+60x540" },
        // asr finds 90% of the signatures for 7 hours, then 10%.
        {
          series: 'signatures_matched_total{measurement="m",stage="asr",node="n2"}',
          values: "0+54x419 22632+6x120",
        },
        { series: 'signatures_matched_total{measurement="m",stage="tts",node="n2"}', values: "0+54x540" },
      ],
      alert_rule_test: [
        expect("6h50m", "FsmPxMatchRateCollapse", []),
        expect("7h45m", "FsmPxMatchRateCollapse", [{ severity: "warning", measurement: "m", stage: "asr" }]),
      ],
    },
    {
      name: "a sensor that cannot be scraped is down; sensors are not absent while some are scraped",
      interval: "1m",
      input_series: [
        { series: 'up{job="fsm-px",node="n1",pod="fsm-px-sensor-a"}', values: "1 1 0+0x18" },
        { series: 'up{job="fsm-px",node="n2",pod="fsm-px-sensor-b"}', values: "1+0x20" },
      ],
      alert_rule_test: [
        expect("4m", "FsmPxSensorDown", []),
        expect("9m", "FsmPxSensorDown", [{
          severity: "critical",
          job: "fsm-px",
          node: "n1",
          pod: "fsm-px-sensor-a",
        }]),
        expect("15m", "FsmPxSensorsAbsent", []),
      ],
    },
    {
      name: "no sensor scraped at all",
      interval: "1m",
      input_series: [{ series: 'up{job="other"}', values: "1+0x20" }],
      alert_rule_test: [expect("15m", "FsmPxSensorsAbsent", [{ severity: "critical", job: "fsm-px" }])],
    },
    {
      name: "Pixie unhealthy and lagging",
      interval: "1m",
      input_series: [
        { series: 'fsmpx_pixie_healthy{job="fsm-px",node="n1"}', values: "1 1 0+0x13" },
        { series: 'fsmpx_pixie_healthy{job="fsm-px",node="n2"}', values: "1+0x15" },
        // A sensor reads Pixie when it serves the last-response gauge (http/metrics.ts pixieStreamOpened).
        { series: 'fsmpx_pixie_last_response_timestamp_seconds{job="fsm-px",node="n1"}', values: "0+60x15" },
        { series: 'fsmpx_pixie_last_response_timestamp_seconds{job="fsm-px",node="n2"}', values: "0+60x15" },
        // n3 captures packets only (no Pixie tap): its fsmpx_pixie_healthy stays 0 (the gauge is always served)
        // and it has no last-response gauge. Its Pixie is not unhealthy: it has none.
        { series: 'fsmpx_pixie_healthy{job="fsm-px",node="n3"}', values: "0+0x15" },
        // n1 is 60 s behind while rows arrive: lag. n2 is 60 s "behind" because its tap is quiet: not lag.
        { series: 'fsmpx_pixie_stream_lag_seconds{node="n1",query="m/source"}', values: "60+0x15" },
        { series: 'fsmpx_rows_read_total{node="n1",query="m/source"}', values: "0+100x15" },
        { series: 'fsmpx_pixie_stream_lag_seconds{node="n2",query="m/source"}', values: "60+0x15" },
        { series: 'fsmpx_rows_read_total{node="n2",query="m/source"}', values: "0+0x15" },
      ],
      alert_rule_test: [
        expect("10m", "FsmPxPixieUnhealthy", [{ severity: "warning", job: "fsm-px", node: "n1" }]),
        expect("12m", "FsmPxPixieStreamLag", [{ severity: "warning", node: "n1", query: "m/source" }]),
      ],
    },
    {
      name: "a Pixie query stream silent for minutes warns; one answering or keeping alive does not",
      interval: "1m",
      input_series: [
        // n1 answers until minute 3, then nothing (not even keep-alives); n2 keeps answering; n3 never answered.
        {
          series: 'fsmpx_pixie_last_response_timestamp_seconds{job="fsm-px",node="n1"}',
          values: "0+60x3 180+0x12",
        },
        { series: 'fsmpx_pixie_last_response_timestamp_seconds{job="fsm-px",node="n2"}', values: "0+60x15" },
        { series: 'fsmpx_pixie_last_response_timestamp_seconds{job="fsm-px",node="n3"}', values: "0+0x15" },
      ],
      alert_rule_test: [
        expect("5m", "FsmPxPixieStreamSilent", []),
        expect("9m", "FsmPxPixieStreamSilent", [{ severity: "warning", job: "fsm-px", node: "n3" }]),
        expect("12m", "FsmPxPixieStreamSilent", [
          { severity: "warning", job: "fsm-px", node: "n1" },
          { severity: "warning", job: "fsm-px", node: "n3" },
        ]),
      ],
    },
    {
      name: "outbox overflow fires at once and clears; a long backlog warns",
      interval: "1m",
      input_series: [
        { series: 'fsmpx_bus_outbox_overflow_total{node="n1"}', values: "0 0 0 5+0x12" },
        { series: 'fsmpx_bus_outbox_overflow_total{node="n2"}', values: "0+0x15" },
        { series: 'fsmpx_bus_outbox_depth{node="n1"}', values: "5000+0x15" },
        { series: 'fsmpx_bus_outbox_depth{node="n2"}', values: "10+0x15" },
      ],
      alert_rule_test: [
        expect("4m", "FsmPxOutboxOverflow", [{ severity: "critical", node: "n1" }]),
        expect("14m", "FsmPxOutboxOverflow", []),
        expect("8m", "FsmPxOutboxBacklog", [{ severity: "warning", node: "n1" }]),
      ],
    },
    {
      name: "clock offset, decode errors, truncation",
      interval: "1m",
      input_series: [
        { series: 'node_clock_offset_seconds{node="n1",peer="n2"}', values: "-0.05+0x30" },
        { series: 'node_clock_offset_seconds{node="n2",peer="n1"}', values: "0.001+0x30" },
        {
          series:
            'fsmpx_payload_decode_errors_total{node="n1",measurement="m",stream="s",reason="bad_base64"}',
          values: "0+10x30",
        },
        { series: 'fsmpx_rows_read_total{node="n1",query="m/source"}', values: "0+100x30" },
        // n3: healthy Twilio traffic, 7% of its rows control events or text (no audio): no alert.
        {
          series:
            'fsmpx_payload_decode_errors_total{node="n3",measurement="m",stream="s",reason="missing_path"}',
          values: "0+4x30",
        },
        {
          series:
            'fsmpx_payload_decode_errors_total{node="n3",measurement="m",stream="s",reason="not_audio"}',
          values: "0+2x30",
        },
        { series: 'fsmpx_rows_read_total{node="n3",query="m/source"}', values: "0+100x30" },
        // n4: a tap whose path matches nothing: every row missing_path.
        {
          series:
            'fsmpx_payload_decode_errors_total{node="n4",measurement="m",stream="s",reason="missing_path"}',
          values: "0+90x30",
        },
        { series: 'fsmpx_rows_read_total{node="n4",query="m/source"}', values: "0+100x30" },
        { series: 'fsmpx_rows_read_total{node="n2",query="m/asr"}', values: "0+100x30" },
        { series: 'fsmpx_payloads_truncated_total{node="n2",query="m/asr"}', values: "0+80x30" },
      ],
      alert_rule_test: [
        expect("12m", "FsmPxClockOffsetHigh", [{ severity: "warning", node: "n1", peer: "n2" }]),
        expect("28m", "FsmPxDecodeErrors", [{ severity: "warning", node: "n1" }, {
          severity: "warning",
          node: "n4",
        }]),
        expect("28m", "FsmPxPayloadsTruncated", [{ severity: "warning", node: "n2", query: "m/asr" }]),
      ],
    },
    {
      name: "restarting actors and dropping mailboxes (but not drops while stopping)",
      interval: "1m",
      input_series: [
        { series: 'fsmpx_actor_restarts_total{node="n1",actor="matcher"}', values: "0+1x20" },
        { series: 'fsmpx_actor_restarts_total{node="n2",actor="matcher"}', values: "0+0x20" },
        {
          series: 'fsmpx_mailbox_dropped_total{node="n1",actor="detector",reason="overflow"}',
          values: "0+5x20",
        },
        {
          series: 'fsmpx_mailbox_dropped_total{node="n1",actor="detector",reason="stopping"}',
          values: "0+5x20",
        },
      ],
      alert_rule_test: [
        expect("18m", "FsmPxActorRestarting", [{ severity: "warning", node: "n1", actor: "matcher" }]),
        expect("15m", "FsmPxMailboxDropping", [
          { severity: "warning", node: "n1", actor: "detector", reason: "overflow" },
        ]),
      ],
    },
  ];
}

promtoolTest(
  "rules: promtool unit tests: each alert fires when it should, with the labels it should",
  async () => {
    const groups = await ruleGroups();
    const tests = unitTests();
    // Every alert must be shown to fire at least once, or a typo in a label or metric could leave it dead.
    const fired = new Set(
      tests.flatMap((t) =>
        (t as { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }).alert_rule_test
      )
        .filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname),
    );
    const alerts = groups.flatMap((g) => g.rules).flatMap((r) => (r.alert ? [r.alert] : []));
    deepEqual(alerts.filter((a) => !fired.has(a)), [], "alerts without a firing unit test");
    await withTempDir(async (dir) => {
      // Annotations are templates checked by `promtool check rules`; the unit tests compare labels only.
      const bare = groups.map((g) => ({ ...g, rules: g.rules.map(({ annotations: _a, ...r }) => r) }));
      await Deno.writeTextFile(join(dir, "rules.yaml"), stringify({ groups: bare }));
      await Deno.writeTextFile(
        join(dir, "rules_test.yaml"),
        stringify({ rule_files: ["rules.yaml"], evaluation_interval: "1m", tests }),
      );
      const res = await promtool(["test", "rules", "rules_test.yaml"], dir);
      equal(res.code, 0, res.output);
      ok(res.output.includes("SUCCESS"), res.output);
    });
  },
);

promtoolTest("rules: promtool unit tests can fail (an alert expected on the wrong node)", async () => {
  const groups = await ruleGroups();
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "rules.yaml"),
      stringify({
        groups: groups.map((g) => ({ ...g, rules: g.rules.map(({ annotations: _a, ...r }) => r) })),
      }),
    );
    const test = {
      interval: "1m",
      input_series: [{ series: 'fsmpx_bus_outbox_overflow_total{node="n1"}', values: "0 0 0 5+0x12" }],
      alert_rule_test: [
        {
          eval_time: "4m",
          alertname: "FsmPxOutboxOverflow",
          exp_alerts: [{ exp_labels: { severity: "critical", node: "n2" } }],
        },
      ],
    };
    await Deno.writeTextFile(join(dir, "t.yaml"), stringify({ rule_files: ["rules.yaml"], tests: [test] }));
    const res = await promtool(["test", "rules", "t.yaml"], dir);
    equal(res.code, 1, res.output);
    ok(res.output.includes("FAILED"), res.output);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Dashboard

interface Target {
  expr?: string;
  refId?: string;
  exemplar?: boolean;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  repeat?: string;
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query?: unknown }[] };
}

async function dashboard(): Promise<Dashboard> {
  return JSON.parse(await Deno.readTextFile(DASHBOARD_FILE));
}

function allPanels(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

function variableQuery(q: unknown): string {
  if (typeof q === "string") return q;
  const inner = (q as { query?: unknown } | undefined)?.query;
  return typeof inner === "string" ? inner : "";
}

Deno.test("dashboard: well-formed panels on a 24-column grid, all on the datasource variable", async () => {
  const d = await dashboard();
  ok(d.uid && d.title);
  const panels = allPanels(d);
  const ids = panels.map((p) => p.id);
  equal(new Set(ids).size, ids.length, "unique panel ids");
  const boxes = panels.filter((p) => p.type !== "row").map((p) => p.gridPos);
  for (const p of panels) {
    const g = p.gridPos;
    ok(g.x >= 0 && g.w > 0 && g.x + g.w <= 24 && g.h > 0, `${p.title}: gridPos ${JSON.stringify(g)}`);
    if (p.type !== "row") equal(p.datasource?.uid, "${datasource}", `${p.title}: datasource`);
    for (const t of p.targets ?? []) ok(t.expr && t.refId, `${p.title}: every target has a query`);
  }
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i];
      const b = boxes[j];
      if (!a || !b) continue;
      const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
      ok(!overlap, `panels ${panels[i]?.title} and ${panels[j]?.title} overlap`);
    }
  }
  const vars = d.templating.list.map((v) => v.name);
  for (const v of ["datasource", "measurement", "stage", "node", "interval_id"]) {
    ok(vars.includes(v), `variable ${v}`);
  }
});

promtoolTest(
  "dashboard: every query parses as PromQL (promtool) and selects metrics the exporter exposes",
  async () => {
    const d = await dashboard();
    const exprs = allPanels(d).flatMap((p) =>
      (p.targets ?? []).map((t) => ({ where: `${p.title}/${t.refId}`, expr: t.expr ?? "" }))
    );
    const varQueries = d.templating.list.filter((v) => v.type === "query").map((v) => variableQuery(v.query));
    const used = [
      ...exprs.flatMap((e) => promqlMetricNames(e.expr)),
      ...varQueries.flatMap(grafanaQueryMetricNames),
    ];
    deepEqual([...new Set(used)].filter((n) => !KNOWN_SERIES.has(n)), []);
    // Everything the exporter exposes is on the dashboard somewhere.
    const shown = new Set(used.map((n) => n.replace(/_(bucket|sum|count)$/, "")));
    deepEqual([...EXPOSED_METRICS.keys()].filter((n) => !shown.has(n)), [], "metrics not on the dashboard");

    await withTempDir(async (dir) => {
      const rules = exprs.map((e, i) => ({
        record: `dashboard:query_${i}`,
        expr: substituteGrafanaVariables(e.expr),
      }));
      await Deno.writeTextFile(
        join(dir, "dashboard.yaml"),
        stringify({ groups: [{ name: "dashboard", rules }] }),
      );
      const res = await promtool(["check", "rules", "dashboard.yaml"], dir);
      equal(
        res.code,
        0,
        `${res.output}\nqueries:\n${exprs.map((e, i) => `${i} ${e.where}: ${e.expr}`).join("\n")}`,
      );
    });
  },
);

Deno.test("dashboard: latency heatmap and p50/p99 per stage, per-interval waterfall, rates, health", async () => {
  const d = await dashboard();
  const panels = allPanels(d);
  const exprsOf = (p: Panel) => (p.targets ?? []).map((t) => t.expr ?? "").join("\n");
  const heatmap = panels.find((p) => p.type === "heatmap" && /audio_latency_seconds_bucket/.test(exprsOf(p)));
  equal(heatmap?.repeat, "stage", "one latency heatmap per stage");
  const quantiles = panels.find((p) =>
    /histogram_quantile\(0\.5,/.test(exprsOf(p)) && /histogram_quantile\(0\.99,/.test(exprsOf(p))
  );
  ok(quantiles && /by \(measurement, stage, le\)/.test(exprsOf(quantiles)), "p50 and p99 per stage");
  ok(quantiles?.targets?.some((t) => t.exemplar), "exemplars on the quantiles");
  ok(
    panels.some((p) => /audio_latency_last_seconds/.test(exprsOf(p)) && /\$interval_id/.test(exprsOf(p))),
    "a per-interval waterfall of the latest latency per stage",
  );
  ok(
    panels.some((p) =>
      /signatures_detected_total/.test(exprsOf(p)) && /signatures_matched_total/.test(exprsOf(p))
    ),
  );
  const rows = d.panels.filter((p) => p.type === "row").map((p) => p.title);
  ok(rows.some((t) => /operational health/i.test(t)), `rows: ${rows.join(", ")}`);

  // The kustomization ships it as a ConfigMap for Grafana's dashboard sidecar.
  const tree = await readKustomization(ROOT, join(ROOT, "k8s"));
  const cm = tree.configMaps.find((c) => [...c.files.values()].includes("k8s/grafana/fsm-px-dashboard.json"));
  equal(cm?.labels.grafana_dashboard, "1");
});
