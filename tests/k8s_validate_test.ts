/**
 * The manifest validator itself: it must find schema errors and unknown keys at the right file:line:col, and the
 * PromQL extractor must find exactly the metric names of an expression.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import {
  dockerIgnored,
  formatProblem,
  grafanaQueryMetricNames,
  metricTypesFromExposition,
  parseManifests,
  podSpecProblems,
  promqlMetricNames,
  seriesNames,
  substituteGrafanaVariables,
  validateManifest,
} from "./support/k8s_validate.ts";

function problemsOf(text: string, file = "bad.yaml"): string[] {
  const { docs, problems } = parseManifests(text, file);
  for (const d of docs) problems.push(...validateManifest(d));
  return problems.map(formatProblem);
}

Deno.test("validator: schema errors and unknown keys of a DaemonSet at file:line:col", () => {
  const text = `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: x
spec:
  selector: {matchLabels: {a: b}}
  updateStrategy:
    type: RollingUpdate
    rollingUpdat: {maxUnavailable: 1}
  template:
    metadata: {labels: {a: b}}
    spec:
      tolerations: [{operator: Exists, efect: NoSchedule}]
      containers:
        - name: 1
          image: x
          imagePullPolcy: Always
          ports: [{containerPort: "9464"}]
          livenessProbe: {httpGet: {path: /healthz, port: metrics, sheme: HTTP}}
`;
  deepEqual(
    problemsOf(text).sort(),
    [
      'bad.yaml:13:40: spec.template.spec.tolerations[0].efect: unknown key "efect" (did you mean "effect"?)',
      "bad.yaml:15:17: spec.template.spec.containers[0].name: schema: must be string",
      'bad.yaml:17:11: spec.template.spec.containers[0].imagePullPolcy: unknown key "imagePullPolcy" ' +
      '(did you mean "imagePullPolicy"?)',
      "bad.yaml:18:35: spec.template.spec.containers[0].ports[0].containerPort: schema: must be integer",
      'bad.yaml:19:68: spec.template.spec.containers[0].livenessProbe.httpGet.sheme: unknown key "sheme" ' +
      '(did you mean "scheme"?)',
      'bad.yaml:9:5: spec.updateStrategy.rollingUpdat: unknown key "rollingUpdat" (did you mean "rollingUpdate"?)',
    ].sort(),
  );
});

Deno.test("validator: a missing required field is reported at its parent", () => {
  const text = `apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  ports:
    - name: metrics
      targetPort: metrics
`;
  deepEqual(problemsOf(text), ["bad.yaml:6:7: spec.ports[0]: schema: must have required property port"]);
});

Deno.test("validator: Prometheus Operator kinds get the same checks", () => {
  const text = `apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: r}
spec:
  groups:
    - name: g
      rules:
        - alert: A
          expr: up == 0
          lables: {severity: warning}
---
apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata: {name: m}
spec:
  selector: {matchLabels: {a: b}}
  podMetricsEndpoints:
    - port: metrics
      relabelings:
        - sourceLabel: [__meta_kubernetes_pod_node_name]
          targetLabel: node
`;
  deepEqual(problemsOf(text), [
    'bad.yaml:10:11: spec.groups[0].rules[0].lables: unknown key "lables" (did you mean "labels"?)',
    'bad.yaml:20:11: spec.podMetricsEndpoints[0].relabelings[0].sourceLabel: unknown key "sourceLabel" ' +
    '(did you mean "sourceLabels"?)',
  ]);
});

Deno.test("validator: maps and open objects accept any key; an unknown kind is an error", () => {
  const text = `apiVersion: v1
kind: ConfigMap
metadata:
  name: c
  labels: {anything: goes, grafana_dashboard: "1"}
  annotations: {x/y: z}
data: {config.yaml: "a: 1"}
---
apiVersion: v1
kind: Secret
metadata: {name: s}
stringData: {password: hunter2}
`;
  const problems = problemsOf(text);
  equal(problems.length, 1);
  ok(
    problems[0]?.startsWith('bad.yaml:10:7: kind: no schema for apiVersion "v1" kind "Secret"'),
    String(problems[0]),
  );
});

Deno.test("validator: YAML syntax errors carry their position", () => {
  const problems = problemsOf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n");
  ok(problems.length > 0);
  ok(problems.every((p) => /^bad\.yaml:\d+:\d+: YAML: /.test(p)), problems.join("\n"));
});

Deno.test("validator: restricted pod security and the workload requirements", () => {
  const text = `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: x}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      hostNetwork: true
      volumes: [{name: h, hostPath: {path: /var}}]
      containers:
        - name: c
          image: x
          securityContext:
            capabilities: {add: [SYS_ADMIN]}
`;
  const { docs } = parseManifests(text, "bad.yaml");
  const problems = podSpecProblems(docs[0]!, ["spec", "template", "spec"]).map(formatProblem);
  const expected = [
    "hostNetwork is not allowed",
    "hostPath volumes are not allowed",
    "runAsNonRoot must be true",
    "seccompProfile.type must be RuntimeDefault or Localhost",
    "allowPrivilegeEscalation must be false",
    'capabilities.drop must include "ALL"',
    "capability SYS_ADMIN may not be added",
    "readOnlyRootFilesystem must be true",
    "cpu and memory requests are required",
    "a memory limit is required",
    "a livenessProbe is required",
    "a readinessProbe is required",
  ];
  for (const e of expected) {
    ok(problems.some((p) => p.includes(e)), `missing "${e}" in:\n${problems.join("\n")}`);
  }
  equal(problems.length, expected.length, problems.join("\n"));
  ok(
    problems.includes(
      "bad.yaml:9:20: spec.template.spec.hostNetwork: hostNetwork is not allowed (restricted)",
    ),
  );
});

Deno.test("promql: metric names, not functions, keywords, labels, durations or strings", () => {
  deepEqual(
    promqlMetricNames(
      `histogram_quantile(0.99, sum by (measurement, stage, le) (rate(audio_latency_seconds_bucket{stage=~"a|b"}[5m])))
       > 0.5 and on (measurement, stage) sum without (pod) (increase(audio_latency_seconds_count[5m] offset 1h)) >= 20`,
    ),
    ["audio_latency_seconds_bucket", "audio_latency_seconds_count"],
  );
  deepEqual(
    promqlMetricNames(
      `sum(rate(signatures_matched_total[15m])) by (measurement) / on (measurement) group_left (stage)
       sum(rate(signatures_detected_total[15m]))`,
    ),
    ["signatures_detected_total", "signatures_matched_total"],
  );
  deepEqual(promqlMetricNames('up{job="fsm-px"} == 0'), ["up"]);
  deepEqual(promqlMetricNames("absent(up{job='fsm-px'})"), ["up"]);
  deepEqual(promqlMetricNames("max by (node, peer) (abs(node_clock_offset_seconds)) > 0.01"), [
    "node_clock_offset_seconds",
  ]);
  deepEqual(promqlMetricNames("fsmpx_bus_outbox_depth > bool 1e3 unless fsmpx_pixie_healthy"), [
    "fsmpx_bus_outbox_depth",
    "fsmpx_pixie_healthy",
  ]);
  deepEqual(promqlMetricNames('rate(a_total[$__rate_interval]) / rate(b_total{node=~"${node}"}[1h30m:1m])'), [
    "a_total",
    "b_total",
  ]);
  deepEqual(promqlMetricNames('{__name__="x"}'), []);
});

Deno.test("promql: Grafana variable queries and variables", () => {
  deepEqual(grafanaQueryMetricNames('label_values(signatures_matched_total{measurement=~"$m"}, stage)'), [
    "signatures_matched_total",
  ]);
  deepEqual(grafanaQueryMetricNames("label_values(node)"), []);
  deepEqual(grafanaQueryMetricNames("query_result(topk(5, fsmpx_mailbox_depth))"), ["fsmpx_mailbox_depth"]);
  equal(
    substituteGrafanaVariables('rate(x{a=~"$a", b=~"${b}"}[$__rate_interval])'),
    'rate(x{a=~".*", b=~".*"}[5m])',
  );
});

Deno.test("exposition: TYPE lines give the series names a scrape holds", () => {
  const text = `# HELP h x\n# TYPE h histogram\nh_bucket{le="1"} 1\n# TYPE c_total counter\nc_total 2\n`;
  const types = metricTypesFromExposition(text);
  deepEqual([...types], [["h", "histogram"], ["c_total", "counter"]]);
  deepEqual([...seriesNames(types)].sort(), ["c_total", "h", "h_bucket", "h_count", "h_sum"]);
});

Deno.test("dockerignore: last match wins, directories exclude their contents, ! re-includes", () => {
  const rules = "# comment\n.git\nnode_modules\n*.log\ntests\n!tests/keep.ts\nconfig.yaml\n**/*.tmp\n";
  equal(dockerIgnored(rules, ".git/HEAD"), true);
  equal(dockerIgnored(rules, "node_modules/.deno/x/index.js"), true);
  equal(dockerIgnored(rules, "a.log"), true);
  equal(dockerIgnored(rules, "logs/a.log"), false);
  equal(dockerIgnored(rules, "tests/x_test.ts"), true);
  equal(dockerIgnored(rules, "tests/keep.ts"), false);
  equal(dockerIgnored(rules, "config.yaml"), true);
  equal(dockerIgnored(rules, "config/load.ts"), false);
  equal(dockerIgnored(rules, "deep/er/x.tmp"), true);
  equal(dockerIgnored(rules, "main.ts"), false);
});
