/**
 * The stream_filter checker: what Pixie's compiler rejects is found with its line and column in the filter and the
 * corrected line; valid PxL passes untouched; the schemas are Pixie's own.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import {
  checkStreamFilter,
  CTX_KEYS,
  defaultPayloadColumn,
  type FilterCheck,
  PIXIE_SCHEMA_VERSION,
  PX_NAMES,
  type PxlProblem,
  TABLES,
} from "../pixie/pxl_check.ts";

/** Problems as `line:col code severity`, for compact assertions. */
function brief(check: FilterCheck): string[] {
  return check.problems.map((p) => `${p.line}:${p.col} ${p.code} ${p.severity}`);
}

function errors(check: FilterCheck): PxlProblem[] {
  return check.problems.filter((p) => p.severity === "error");
}

/** The corrected text must itself check clean of errors. */
function assertCorrectedClean(text: string): string {
  const check = checkStreamFilter(text);
  ok(check.corrected !== undefined, `no corrected text for:\n${text}`);
  const again = checkStreamFilter(check.corrected!);
  deepEqual(errors(again), [], `corrected text still has errors:\n${check.corrected}`);
  return check.corrected!;
}

Deno.test("the seed's Quick Start filter: no table socket_data, no column pod_name, no methods on columns", () => {
  const text = "df = px.DataFrame(table='socket_data')\ndf = df[df.pod_name.contains('telephony')]\n";
  const check = checkStreamFilter(text);
  deepEqual(brief(check), [
    "1:25 unknown-table error",
    "2:12 unknown-column error",
    "2:20 column-method error",
  ]);
  const [table, column, method] = check.problems;
  ok(table!.found.includes("'socket_data', which is no Pixie table"), table!.found);
  for (const t of ["http_events (req_body", "nats_events.beta (body", "redis_events (req_args"]) {
    ok(table!.expected.includes(t), `${t} missing from: ${table!.expected}`);
  }
  equal(table!.fix, "df = px.DataFrame(table='http_events')");
  ok(column!.expected.includes("df.ctx['pod']"));
  equal(column!.fix, "df = df[px.contains(df.ctx['pod'], 'telephony')]");
  equal(method!.fix, "df = df[px.contains(df.ctx['pod'], 'telephony')]");
  equal(
    check.corrected,
    "df = px.DataFrame(table='http_events')\ndf = df[px.contains(df.ctx['pod'], 'telephony')]\n",
  );
  assertCorrectedClean(text);
});

Deno.test("pandas conveniences are errors with the PxL line, not silent rewrites: .contains and &", () => {
  const text = "df = px.DataFrame(table='http_events', start_time='-30s')\n" +
    "df = df[df.ctx['pod'].contains('media-relay') & (df.req_method == 'POST')]\n";
  const check = checkStreamFilter(text);
  deepEqual(brief(check), ["2:22 column-method error", "2:47 operator error"]);
  const line = "df = df[px.contains(df.ctx['pod'], 'media-relay') and (df.req_method == 'POST')]";
  equal(check.problems[0]!.fix, line);
  equal(check.problems[1]!.fix, line);
  equal(check.problems[1]!.found, "&");
  equal(check.table, "http_events");
  assertCorrectedClean(text);
});

Deno.test("& and | keep Python's meaning in the fix: precedence, chained comparisons, not", () => {
  const head = "df = px.DataFrame(table='http_events')\n";
  const fixOf = (line: string) => checkStreamFilter(head + line).corrected!.split("\n")[1];
  // Python reads `a == 'x' & b == 200` as `a == ('x' & b) == 200`: the fix splits the chain.
  const chained = checkStreamFilter(head + "df = df[df.req_method == 'POST' & df.resp_status == 200]");
  deepEqual(brief(chained), ["2:33 operator error"]);
  ok(chained.problems[0]!.expected.includes("tighter"));
  equal(chained.problems[0]!.fix, "df = df[df.req_method == 'POST' and df.resp_status == 200]");
  // `|` inside `and` needs parentheses once it becomes `or`.
  equal(
    fixOf("df = df[(df.resp_status == 200) and (df.local_port == 80) | (df.local_port == 8080)]"),
    "df = df[(df.resp_status == 200) and ((df.local_port == 80) or (df.local_port == 8080))]",
  );
  // `not a & b` is `not (a & b)`.
  equal(
    fixOf("df.x = not (df.local_port == 80) & (df.remote_port == 80)"),
    "df.x = not ((df.local_port == 80) and (df.remote_port == 80))",
  );
  // Chains of & stay flat.
  equal(
    fixOf("df = df[(df.local_port == 1) & (df.remote_port == 2) & (df.trace_role == 2)]"),
    "df = df[(df.local_port == 1) and (df.remote_port == 2) and (df.trace_role == 2)]",
  );
  for (
    const line of [
      "df = df[df.req_method == 'POST' & df.resp_status == 200]",
      "df = df[(df.resp_status == 200) and (df.local_port == 80) | (df.local_port == 8080)]",
    ]
  ) assertCorrectedClean(head + line);
});

Deno.test("string methods map to the px functions Pixie has", () => {
  const head = "df = px.DataFrame(table='http_events')\n";
  const cases: [string, string][] = [
    ["df = df[df.req_path.startswith('/media')]", "df = df[px.find(df.req_path, '/media') == 0]"],
    ["df = df[df.req_path.endswith('.wav')]", "df = df[px.regex_match('.*\\\\.wav', df.req_path)]"],
    [
      "df = df[df.ctx['pod'].lower().contains('asr')]",
      "df = df[px.contains(px.tolower(df.ctx['pod']), 'asr')]",
    ],
    ["df = df[df.req_method.upper() == 'POST']", "df = df[px.toupper(df.req_method) == 'POST']"],
    ["df = df[df.req_path.str.contains('audio')]", "df = df[px.contains(df.req_path, 'audio')]"],
    [
      "df = df[df.req_method.isin(['POST', 'PUT'])]",
      "df = df[px.equals_any(df.req_method, ['POST', 'PUT'])]",
    ],
    ["df = df[df.req_method in ['POST', 'PUT']]", "df = df[px.equals_any(df.req_method, ['POST', 'PUT'])]"],
    ["df = df[df.req_method not in ['GET']]", "df = df[not px.equals_any(df.req_method, ['GET'])]"],
    ["df.n = len(df.req_body)", "df.n = px.length(df.req_body)"],
    ["df.p = df.req_path.strip()", "df.p = px.trim(df.req_path)"],
  ];
  for (const [line, want] of cases) {
    const check = checkStreamFilter(head + line);
    ok(errors(check).length > 0, line);
    ok(
      check.problems.every((p) => p.line === 2 && p.fix === want),
      `${line}\n${JSON.stringify(check.problems)}`,
    );
    equal(check.corrected!.split("\n")[1], want, line);
    assertCorrectedClean(head + line);
  }
  // A method with no PxL equivalent is still an error, without a made-up fix.
  const other = checkStreamFilter(head + "df = df[df.req_path.split('/')[1] == 'a']");
  deepEqual(brief(other), ["2:20 column-method error"]);
  equal(other.problems[0]!.fix, undefined);
});

Deno.test("unknown tables: the close name, or the tables that carry bodies", () => {
  const cases: [string, string][] = [
    ["nats_events", "nats_events.beta"],
    ["kafka_events", "kafka_events.beta"],
    ["http_event", "http_events"],
    ["redis", "redis_events"],
    ["socket_data", "http_events"],
  ];
  for (const [table, want] of cases) {
    const check = checkStreamFilter(`df = px.DataFrame(table='${table}', start_time='-30s')\n`);
    deepEqual(brief(check), ["1:25 unknown-table error"], table);
    equal(check.problems[0]!.fix, `df = px.DataFrame(table='${want}', start_time='-30s')`);
  }
  // Positional table argument.
  deepEqual(brief(checkStreamFilter("df = px.DataFrame('sockets')")), ["1:19 unknown-table error"]);
});

Deno.test("columns: Kubernetes names → df.ctx, payload → the table's body, typos → the close column", () => {
  const nats = checkStreamFilter(
    "df = px.DataFrame(table='nats_events.beta')\ndf = df[px.contains(df.payload, 'x')]",
  );
  deepEqual(brief(nats), ["2:24 unknown-column error"]);
  equal(nats.problems[0]!.fix, "df = df[px.contains(df.body, 'x')]");
  ok(nats.problems[0]!.expected.includes("the message body of nats_events.beta is body"));

  const redis = checkStreamFilter("df = px.DataFrame(table='redis_events')\ndf = df[df['payload'] != '']");
  equal(redis.problems[0]!.fix, "df = df[df.req_args != '']");

  const head = "df = px.DataFrame(table='http_events')\n";
  const ns = checkStreamFilter(head + "df = df[df.namespace == 'voice']");
  equal(ns.problems[0]!.fix, "df = df[df.ctx['namespace'] == 'voice']");
  const typo = checkStreamFilter(head + "df = df[df.req_metod == 'POST']");
  equal(typo.problems[0]!.fix, "df = df[df.req_method == 'POST']");
  const far = checkStreamFilter(head + "df = df[df.zzzzzz == 1]");
  deepEqual(brief(far), ["2:12 unknown-column error"]);
  equal(far.problems[0]!.fix, undefined);
  ok(far.problems[0]!.expected.includes("req_body"), "lists the table's columns");

  // Columns the filter adds are known afterwards; a projection keeps only what it names.
  deepEqual(
    checkStreamFilter(head + "df.media = px.pluck(df.req_body, 'media')\ndf = df[df.media != '']").problems,
    [],
  );
  const projected = checkStreamFilter(
    head + "df = df[['time_', 'upid', 'req_body']]\ndf = df[df.req_path == '/']",
  );
  deepEqual(brief(projected), ["3:12 unknown-column error"]);
  deepEqual([...projected.columns ?? []].sort(), ["req_body", "time_", "upid"]);
});

Deno.test("df.ctx keys are the compiler's metadata names", () => {
  const head = "df = px.DataFrame(table='http_events')\n";
  for (
    const key of ["pod", "pod_name", "namespace", "node", "node_name", "service", "container", "cmd"]
  ) {
    deepEqual(checkStreamFilter(`${head}df = df[df.ctx['${key}'] != '']`).problems, [], key);
  }
  deepEqual(checkStreamFilter(`${head}df = df[df.ctx['pid'] != 0]`).problems, []);
  deepEqual(brief(checkStreamFilter(`${head}df = df[df.ctx['pid'] != '']`)), ["2:26 type error"]);
  const pods = checkStreamFilter(head + "df = df[df.ctx['pods'] == 'x']");
  deepEqual(brief(pods), ["2:16 unknown-ctx-key error"]);
  equal(pods.problems[0]!.fix, "df = df[df.ctx['pod'] == 'x']");
  const attr = checkStreamFilter(head + "df = df[df.ctx.namespace == 'x']");
  equal(attr.problems[0]!.fix, "df = df[df.ctx['namespace'] == 'x']");
  const upid = checkStreamFilter(head + "df.u = df.ctx['upid']");
  equal(upid.problems[0]!.fix, "df.u = df.upid");
  // A standalone PEM has no Kubernetes metadata: reported with the requested severity.
  const standalone = checkStreamFilter(head + "df = df[df.ctx['pod'] == 'x' and df.ctx['cmd'] != '']", {
    standalone: "error",
  });
  deepEqual(brief(standalone), ["2:16 kubernetes-metadata error"]);
  ok(standalone.problems[0]!.expected.includes("ports, paths, addresses"));
});

Deno.test("structure: brackets, quotes, indentation, df, px.display, upid", () => {
  deepEqual(brief(checkStreamFilter("df = px.DataFrame(table='http_events'\ndf = df[df.x == 1]")), [
    "1:18 unbalanced error",
  ]);
  deepEqual(brief(checkStreamFilter("df = px.DataFrame(table='http_events')\ndf = df[df.req_path == 'a)]")), [
    "2:8 unbalanced error",
    "2:24 unterminated-string error",
  ]);
  deepEqual(brief(checkStreamFilter("df = px.DataFrame(table='http_events'))")), ["1:39 unbalanced error"]);
  deepEqual(brief(checkStreamFilter("df = px.DataFrame(table='http_events')\ndf = df[(df.x == 1]")), [
    "2:19 unbalanced error",
  ]);
  const indented = checkStreamFilter(
    "df = px.DataFrame(table='http_events')\n  df = df[df.local_port == 80]\n",
  );
  deepEqual(brief(indented), ["2:1 indent error"]);
  equal(indented.corrected, "df = px.DataFrame(table='http_events')\ndf = df[df.local_port == 80]\n");

  const noDf = checkStreamFilter(
    "src = px.DataFrame(table='http_events')\nsrc = src[src.local_port == 80]\n",
  );
  deepEqual(brief(noDf), ["1:1 no-df error"]);
  equal(noDf.problems[0]!.fix, "df = src");
  equal(
    noDf.corrected,
    "src = px.DataFrame(table='http_events')\nsrc = src[src.local_port == 80]\ndf = src\n",
  );
  const bare = checkStreamFilter("px.DataFrame(table='http_events', start_time='-30s')");
  equal(bare.problems[0]!.fix, "df = px.DataFrame(table='http_events', start_time='-30s')");

  const display = checkStreamFilter("df = px.DataFrame(table='http_events')\npx.display(df, 'x')\n");
  deepEqual(brief(display), ["2:1 display error"]);
  equal(display.problems[0]!.fix, "");
  equal(display.corrected, "df = px.DataFrame(table='http_events')\n");

  const upid = checkStreamFilter("df = px.DataFrame(table='http_events', select=['time_', 'req_body'])");
  deepEqual(brief(upid), ["1:47 upid-dropped error"]);
  equal(
    upid.problems[0]!.fix,
    "df = px.DataFrame(table='http_events', select=['time_', 'req_body', 'upid'])",
  );

  const sql = checkStreamFilter("select req_body from http_events");
  deepEqual(brief(sql), ["1:1 no-dataframe error"]);
  const syntax = checkStreamFilter("df = px.DataFrame(table='http_events')\ndf = df[df.local_port == == 80]");
  deepEqual(brief(syntax), ["2:26 syntax error"]);
});

Deno.test("types: a column compared with a literal of the wrong type", () => {
  const head = "df = px.DataFrame(table='http_events')\n";
  const role = checkStreamFilter(head + "df = df[df.trace_role == 'server']");
  deepEqual(brief(role), ["2:26 type error"]);
  equal(role.problems[0]!.fix, "df = df[df.trace_role == 2]");
  equal(
    checkStreamFilter(head + "df = df[df.resp_status == '200']").problems[0]!.fix,
    "df = df[df.resp_status == 200]",
  );
  equal(
    checkStreamFilter(head + "df = df[df.req_method == 1]").problems[0]!.fix,
    "df = df[df.req_method == '1']",
  );
  deepEqual(checkStreamFilter(head + "df = df[df.resp_status >= 200 and df.resp_status < 300]").problems, []);
});

Deno.test("warnings: tables without audio, px names Pixie does not define", () => {
  const kafka = checkStreamFilter("df = px.DataFrame(table='kafka_events.beta', start_time='-30s')");
  deepEqual(brief(kafka), ["1:25 no-audio-table warning"]);
  ok(kafka.problems[0]!.found.includes("drops Kafka record values"));
  const amqp = checkStreamFilter("df = px.DataFrame(table='amqp_events')");
  ok(amqp.problems[0]!.found.includes("content-body frames"));
  const unknownFn = checkStreamFilter(
    "df = px.DataFrame(table='http_events')\ndf.x = px.frobnicate(df.req_body)",
  );
  deepEqual(brief(unknownFn), ["2:11 unknown-px warning"]);
  const pandasFn = checkStreamFilter(
    "df = px.DataFrame(table='http_events')\ndf = df[px.startswith(df.req_path, 'a')]",
  );
  deepEqual(brief(pandasFn), ["2:12 unknown-px error"]);
  ok(pandasFn.problems[0]!.expected.includes("px.find(col, 'x') == 0"));
});

Deno.test("valid PxL passes without a problem", () => {
  const valid = [
    "df = px.DataFrame(table='http_events', start_time='-30s')\ndf = df[px.contains(df.ctx['pod'], 'telephony')]\n",
    // Pixie's own docstring example.
    "df = px.DataFrame('http_events', start_time='-5m')\ndf.service = df.ctx['service']\n" +
    "df = df[df.service == 'pl/vizier-metadata']",
    "# audio chunks POSTed to the relay\ndf = px.DataFrame(table='http_events', start_time='-30s')\n\n" +
    "df = df[(df.req_method == 'POST') and\n         px.contains(df.req_path, '/media')]  # trailing comment\n" +
    "df = df[not px.contains(df.ctx['namespace'], 'kube-')]\n",
    "df = px.DataFrame(table='nats_events.beta', start_time='-30s')\ndf = df[df.cmd == 'PUB']\n",
    "df = px.DataFrame(table='redis_events', start_time='-30s')\ndf = df[px.equals_any(df.req_cmd, ['PUBLISH', 'XADD'])]",
    "df = px.DataFrame(table='http_events', select=['time_', 'upid', 'req_body', 'req_body_size'])\n",
    "df = px.DataFrame(table='http_events', start_time=px.now() - px.minutes(5))\n" +
    "df.event = px.pluck(df.req_body, 'event')\ndf = df[df.event == 'media' or df.event == \"start\"]\n",
    "df = px.DataFrame(table='http_events')\ndf = df[df.local_port == 8080]\ndf = df.drop(['resp_body'])\n",
    "df = px.DataFrame(table='http_events')\ndf = df[df.resp_body_size > 1024 * 4]\ndf = df.head(100)",
  ];
  for (const text of valid) {
    const check = checkStreamFilter(text);
    deepEqual(check.problems, [], text);
    equal(check.corrected, undefined);
    ok(check.schema !== undefined && check.columns !== undefined, text);
  }
});

Deno.test("the schemas are Pixie's: tables, columns and types from the socket tracer, with their version", () => {
  ok(/^[0-9a-f]{40}$/.test(PIXIE_SCHEMA_VERSION.commit));
  ok(PIXIE_SCHEMA_VERSION.vizier.startsWith("release/vizier/v0.14"));
  for (
    const t of [
      "http_events",
      "nats_events.beta",
      "redis_events",
      "kafka_events.beta",
      "amqp_events",
      "mysql_events",
      "pgsql_events",
      "dns_events",
      "cql_events",
      "mongodb_events",
      "conn_stats",
      "process_stats",
    ]
  ) ok(TABLES.has(t), t);
  ok(!TABLES.has("socket_data"));
  const http = TABLES.get("http_events")!;
  equal(http.source, "src/stirling/source_connectors/socket_tracer/http_table.h");
  deepEqual(http.columns.filter((c) => !c.debug_only).map((c) => `${c.name}:${c.type}`), [
    "time_:TIME64NS",
    "upid:UINT128",
    "remote_addr:STRING",
    "remote_port:INT64",
    "local_addr:STRING",
    "local_port:INT64",
    "trace_role:INT64",
    "encrypted:BOOLEAN",
    "major_version:INT64",
    "minor_version:INT64",
    "content_type:INT64",
    "req_headers:STRING",
    "req_method:STRING",
    "req_path:STRING",
    "req_body:STRING",
    "req_body_size:INT64",
    "resp_headers:STRING",
    "resp_status:INT64",
    "resp_message:STRING",
    "resp_body:STRING",
    "resp_body_size:INT64",
    "latency:INT64",
  ]);
  equal(defaultPayloadColumn("http_events"), "req_body");
  equal(defaultPayloadColumn("nats_events.beta"), "body");
  equal(defaultPayloadColumn("redis_events"), "req_args");
  equal(defaultPayloadColumn("conn_stats"), undefined);
  // Every default payload column is a real STRING column of its table.
  for (const t of TABLES.values()) {
    if (!t.body) continue;
    for (const col of [t.body.payload, ...t.body.others]) {
      equal(t.columns.find((c) => c.name === col)?.type, "STRING", `${t.name}.${col}`);
    }
  }
  for (
    const key of ["pod", "namespace", "node", "node_name", "service", "container", "container_name", "pid"]
  ) {
    ok(CTX_KEYS.has(key), key);
  }
  ok(!CTX_KEYS.has("upid"));
  for (
    const fn of ["contains", "find", "tolower", "toupper", "trim", "length", "regex_match", "equals_any"]
  ) {
    ok(PX_NAMES.has(fn), fn);
  }
  for (const fn of ["startswith", "endswith", "lower", "isin"]) ok(!PX_NAMES.has(fn), fn);
});

Deno.test("bad input never throws, and every position is inside the text", () => {
  let seed = 0x2545f491;
  const rand = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const pieces = [
    "df",
    " = ",
    "px.DataFrame(",
    "table='http_events'",
    ")",
    "(",
    "[",
    "]",
    "'",
    '"',
    "\n",
    "  ",
    ".contains(",
    " & ",
    " | ",
    "df.ctx[",
    "'pod'",
    " == ",
    "1",
    ",",
    "#",
    "\\",
    "lambda x: ",
    " for ",
    " in ",
    "not ",
    ":",
    "**",
    "px.display(df)",
    "\t",
    "{",
    "}",
  ];
  for (let n = 0; n < 3000; n++) {
    let text = "";
    const len = Math.floor(rand() * 24);
    for (let i = 0; i < len; i++) text += pieces[Math.floor(rand() * pieces.length)];
    const check = checkStreamFilter(text);
    const lines = text.split("\n");
    for (const p of check.problems) {
      ok(p.line >= 1 && p.line <= lines.length, `${JSON.stringify(text)}: ${JSON.stringify(p)}`);
      ok(
        p.col >= 1 && p.col <= lines[p.line - 1]!.length + 1,
        `${JSON.stringify(text)}: ${JSON.stringify(p)}`,
      );
    }
  }
});
