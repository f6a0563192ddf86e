/**
 * stream_filter problems reported by the loader at file:line:col of the YAML text (inside the block or quoted
 * scalar), with the corrected line, exit code 2; the payload column defaults to the table's body column.
 */
import { deepEqual, equal, match, ok, rejects, throws } from "node:assert/strict";
import { ConfigError } from "../config/errors.ts";
import { loadConfig, parseConfigText } from "../config/load.ts";
import { setLogSink } from "../util/log.ts";

const FIXTURES = new URL("./fixtures_config/", import.meta.url).pathname;
const MAIN = new URL("../main.ts", import.meta.url).pathname;

function errorsOf(text: string, env: Record<string, string> = {}): ConfigError {
  let error: ConfigError | undefined;
  throws(() => parseConfigText(text, "c.yaml", { NODE_NAME: "n", ...env }), (e: unknown) => {
    ok(e instanceof ConfigError, String(e));
    error = e;
    return true;
  });
  return error!;
}

/** `line:col` of every issue. */
function at(e: ConfigError): string[] {
  return e.issues.map((i) => `${i.line}:${i.col}`);
}

/** The 1-based column of `needle` in line `line` of `text`. */
function colOf(text: string, line: number, needle: string): number {
  const l = text.split("\n")[line - 1]!;
  const i = l.indexOf(needle);
  ok(i >= 0, `${needle} not on line ${line}: ${l}`);
  return i + 1;
}

Deno.test("the seed's Quick Start: socket_data is no table, the tables with bodies, how to write it", async () => {
  let lines: string[] = [];
  await rejects(loadConfig("bad_seed_quickstart.yaml", {}, { cwd: FIXTURES }), (e: unknown) => {
    ok(e instanceof ConfigError);
    equal(e.exitCode, 2);
    lines = e.format().split("\n");
    return true;
  });
  equal(lines.length, 3, lines.join("\n"));
  const [table, column, method] = lines;
  match(table!, /^bad_seed_quickstart\.yaml:7:33: measurements\[0\]\.signature_rules\.stream_filter: /);
  match(table!, /found 'socket_data', which is no Pixie table/);
  match(table!, /http_events \(req_body[^)]*\), nats_events\.beta \(body[^)]*\), redis_events \(req_args/);
  match(table!, /\(did you mean: df = px\.DataFrame\(table='http_events'\)\)$/);
  match(column!, /^bad_seed_quickstart\.yaml:8:20: .*found pod_name, which no Pixie table has/);
  match(column!, /did you mean: df = df\[px\.contains\(df\.ctx\['pod'\], 'telephony'\)\]\)$/);
  match(method!, /^bad_seed_quickstart\.yaml:8:28: .*column expressions have no methods in PxL/);
  match(method!, /did you mean: df = df\[px\.contains\(df\.ctx\['pod'\], 'telephony'\)\]\)$/);
});

Deno.test("positions inside quoted scalars: escapes and doubled quotes are counted as written", () => {
  const dq = `measurements:
  - name: m
    signature_rules:
      stream_filter: "df = px.DataFrame(table='http_events')\\ndf = df[df.pod_name == 'x']"
`;
  const e1 = errorsOf(dq);
  deepEqual(at(e1), [`4:${colOf(dq, 4, "pod_name")}`]);
  equal(e1.issues[0]!.hint, "did you mean: df = df[df.ctx['pod'] == 'x']");

  const sq = `measurements:
  - name: m
    signature_rules:
      stream_filter: 'df = px.DataFrame(table=''http_events'')
        df = df[df.ctx[''pods''] == ''x'']'
`;
  // A single-quoted scalar folds its line break into a space: the filter is one line, which Pixie rejects too.
  const e2 = errorsOf(sq);
  ok(e2.issues.length >= 1);
  equal(e2.issues[0]!.line, 5, e2.format());

  const plain = `measurements:
  - name: m
    signature_rules:
      stream_filter: df = px.DataFrame(table='http_evnts')
`;
  const e3 = errorsOf(plain);
  deepEqual(at(e3), [`4:${colOf(plain, 4, "'http_evnts'")}`]);
  equal(e3.issues[0]!.hint, "did you mean: df = px.DataFrame(table='http_events')");
});

Deno.test("positions inside block scalars: |, |-, comments, CRLF, deeper indentation, interpolated values", () => {
  const block = `measurements:
  - name: m
    signature_rules:
      stream_filter: |-
        # the source tap
        df = px.DataFrame(table='http_events',
                          start_time='-30s')
        df = df[df.ctx['namespace'] == '\${NS}' and df.req_metod == 'POST']
      columns: { payload: req_body }
`;
  const e = errorsOf(block, { NS: "a-much-longer-namespace-than-the-expression" });
  deepEqual(at(e), [`8:${colOf(block, 8, "req_metod")}`]);
  equal(
    e.issues[0]!.hint,
    "did you mean: df = df[df.ctx['namespace'] == 'a-much-longer-namespace-than-the-expression' and " +
      "df.req_method == 'POST']",
  );
  const crlf = errorsOf(block.replaceAll("\n", "\r\n"), { NS: "x" });
  deepEqual(at(crlf), [`8:${colOf(block, 8, "req_metod")}`]);

  const nested = `measurements:
  - name: m
    match_rules:
      - stage: asr
        stream_filter: |
          df = px.DataFrame(table='http_events')
          df = df[df.ctx['pod'].contains('asr') & (df.req_method == 'POST')]
    signature_rules:
      stream_filter: |
        df = px.DataFrame(table='http_events')
`;
  const n = errorsOf(nested);
  deepEqual(at(n), [`7:${colOf(nested, 7, ".contains")}`, `7:${colOf(nested, 7, "&")}`]);
  equal(n.issues[0]!.path, "measurements[0].match_rules[0].stream_filter");
});

Deno.test("configured columns must exist in the table the filter reads", () => {
  const text = `measurements:
  - name: m
    signature_rules:
      stream_filter: |
        df = px.DataFrame(table='http_events', start_time='-30s')
      columns: { payload: payload, body_size: body_size }
      stream_key: [pod, remote_adr, "$.streamSid"]
`;
  const e = errorsOf(text);
  deepEqual(e.issues.map((i) => `${i.line}:${i.col} ${i.path} ${i.hint}`), [
    `6:${
      colOf(text, 6, "payload,")
    } measurements[0].signature_rules.columns.payload did you mean "req_body"?`,
    `6:${
      colOf(text, 6, "body_size }")
    } measurements[0].signature_rules.columns.body_size did you mean "req_body_size"?`,
    `7:${
      colOf(text, 7, "remote_adr")
    } measurements[0].signature_rules.stream_key[1] did you mean "remote_addr"?`,
  ]);
  ok(e.issues[0]!.expected.includes("req_body or resp_body"));

  const noBody = errorsOf(`measurements:
  - name: m
    signature_rules:
      stream_filter: "df = px.DataFrame(table='conn_stats')"
`);
  const payload = noBody.issues.find((i) => i.path === "measurements[0].signature_rules.columns.payload");
  ok(payload, noBody.format());
  match(payload!.expected, /conn_stats has none/);
});

Deno.test("the payload column defaults to the body column of each tap's table", () => {
  const text = `measurements:
  - name: http_src
    signature_rules:
      stream_filter: "df = px.DataFrame(table='http_events')"
    match_rules:
      - stage: nats
        stream_filter: "df = px.DataFrame(table='nats_events.beta')"
      - stage: redis
        stream_filter: "df = px.DataFrame(table='redis_events')"
      - stage: own
        stream_filter: "df = px.DataFrame(table='http_events')"
        columns: { payload: resp_body }
  - name: derived
    signature_rules:
      stream_filter: "df = px.DataFrame(table='nats_events.beta')"
  - name: derived_set
    signature_rules:
      stream_filter: "df = px.DataFrame(table='http_events')"
      columns: { payload: resp_body }
`;
  const { config } = parseConfigText(text, "c.yaml", { NODE_NAME: "n" });
  const [m0, m1, m2] = config.measurements;
  equal(m0!.signature_rules.columns.payload, "req_body");
  deepEqual(m0!.match_rules.map((r) => r.columns.payload), ["body", "req_args", "resp_body"]);
  equal(m1!.signature_rules.columns.payload, "body");
  // The derived default match rule reads the source's table with the source's columns.
  equal(m1!.match_rules[0]!.stage, "downstream");
  equal(m1!.match_rules[0]!.columns.payload, "body");
  equal(m2!.match_rules[0]!.columns.payload, "resp_body");
});

Deno.test("warnings load, are logged with their position, and are returned", () => {
  const text = `measurements:
  - name: m
    signature_rules:
      stream_filter: |
        df = px.DataFrame(table='kafka_events.beta', start_time='-30s')
        df = df[px.contains(px.upid_to_podname(df.upid), 'transcoder')]
`;
  const logged: string[] = [];
  const previous = setLogSink((line) => logged.push(line));
  let warnings: { line: number; col: number; expected: string; found: string }[] = [];
  try {
    warnings = parseConfigText(text, "c.yaml", { NODE_NAME: "n" }).warnings;
  } finally {
    setLogSink(previous);
  }
  deepEqual(warnings.map((w) => `${w.line}:${w.col}`), [
    `5:${colOf(text, 5, "'kafka")}`,
    `6:${colOf(text, 6, "upid_to_podname")}`,
  ]);
  match(warnings[0]!.found, /drops Kafka record values/);
  match(warnings[1]!.found, /px\.upid_to_podname, which Pixie .* does not define/);
  match(warnings[1]!.expected, /px\.upid_to_pod_name/);
  equal(logged.length, 2, logged.join("\n"));
  ok(logged.every((l) => l.includes("c.yaml:")), logged.join("\n"));
});

Deno.test("a filter whose ${VAR} is unset is reported for the variable only", () => {
  const e = errorsOf(`measurements:
  - name: m
    signature_rules:
      stream_filter: |
        df = px.DataFrame(table='socket_data')
        df = df[df.pod_name == '\${UNSET_POD_VAR}']
`);
  equal(e.issues.length, 1, e.format());
  match(e.issues[0]!.expected, /UNSET_POD_VAR/);
});

Deno.test("cli: a command that talks to Pixie refuses the seed's Quick Start with exit 2, before connecting", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        MAIN,
        "record",
        "--config",
        `${FIXTURES}bad_seed_quickstart.yaml`,
        "--out",
        `${dir}/x.jsonl`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    equal(out.code, 2, stderr);
    match(stderr, /bad_seed_quickstart\.yaml:7:33: .*'socket_data', which is no Pixie table/);
    match(stderr, /did you mean: df = df\[px\.contains\(df\.ctx\['pod'\], 'telephony'\)\]/);
    // Nothing was recorded: the config error came first.
    await rejects(Deno.stat(`${dir}/x.jsonl`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
