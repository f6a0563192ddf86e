import { deepEqual, equal, ok, rejects, throws } from "node:assert/strict";
import { ConfigError } from "../config/errors.ts";
import { loadConfig, parseConfigText } from "../config/load.ts";
import { logger, redact, setLogSink } from "../util/log.ts";

const FIXTURES = new URL("./fixtures_config/", import.meta.url).pathname;

/** Loads a fixture by its bare name (so messages start with it) and returns the formatted error lines. */
async function errorLines(name: string, env: Record<string, string> = {}): Promise<string[]> {
  let lines: string[] = [];
  await rejects(loadConfig(name, env, { cwd: FIXTURES }), (e: unknown) => {
    ok(e instanceof ConfigError, String(e));
    equal(e.exitCode, 2);
    equal(e.message, e.format());
    lines = e.format().split("\n");
    return true;
  });
  return lines;
}

function textErrors(text: string, env: Record<string, string | undefined> = {}): ConfigError {
  let error: ConfigError | undefined;
  throws(() => parseConfigText(text, "config.yaml", env), (e: unknown) => {
    ok(e instanceof ConfigError, String(e));
    error = e;
    return true;
  });
  return error!;
}

Deno.test("unknown keys: position of the key, allowed keys, did-you-mean", async () => {
  deepEqual(await errorLines("bad_unknown_key.yaml"), [
    'bad_unknown_key.yaml:2:3: pixie.clustr: expected one of the keys cloud_addr|api_key|cluster|direct_addr|encryption|ca_file|scope, found unknown key "clustr" (did you mean "cluster"?)',
    'bad_unknown_key.yaml:8:9: measurements[0].signature_rules.audio.sample_rte: expected one of the keys envelope|path|encoding|codec|sample_rate|channels|channel|skip_bytes, found unknown key "sample_rte" (did you mean "sample_rate"?)',
  ]);
});

Deno.test("unknown key far from any known one gets no suggestion", () => {
  const e = textErrors("colour: blue\n");
  deepEqual(e.issues.map((i) => i.path).sort(), ["colour", "measurements"]);
  const colour = e.issues.find((i) => i.path === "colour")!;
  equal(colour.hint, undefined);
  deepEqual([colour.line, colour.col], [1, 1]);
});

Deno.test("wrong enum values: expected options, did-you-mean when close", async () => {
  deepEqual(await errorLines("bad_enum.yaml"), [
    'bad_enum.yaml:1:12: log_level: expected one of debug|info|warn|error, found "verbose"',
    'bad_enum.yaml:7:16: measurements[0].signature_rules.audio.codec: expected one of mulaw|alaw|pcm16le|pcm16be|float32le, found "ulaw" (did you mean "mulaw"?)',
    'bad_enum.yaml:8:19: measurements[0].signature_rules.audio.envelope: expected one of json|regex|raw|protobuf, found "xml"',
  ]);
});

Deno.test("wrong types and missing required keys, all reported at once in file order", async () => {
  deepEqual(await errorLines("bad_type.yaml"), [
    'bad_type.yaml:2:13: nats.replicas: expected an integer from 1 to 5, found "three"',
    'bad_type.yaml:3:8: nats.tls: expected a mapping, found "yes please"',
    'bad_type.yaml:5:14: metrics.exemplars: expected true or false, found "true"',
    "bad_type.yaml:8:18: measurements[0].ttl_seconds: expected an integer >= 1, found 1.5",
    'bad_type.yaml:11:19: measurements[0].signature_rules.stream_key: expected a list, found "pod"',
    "bad_type.yaml:12:5: measurements[1].name: expected a string, found nothing (the key is required)",
    "bad_type.yaml:12:22: measurements[1].signature_rules: expected stream_filter (a Pixie tap) or packets (a packet-capture tap), exactly one, found neither",
  ]);
});

Deno.test("id_patterns: compiled at load, exactly one capture group", async () => {
  deepEqual(await errorLines("bad_regex.yaml"), [
    'bad_regex.yaml:7:20: measurements[0].metadata_extraction.id_patterns[0].pattern: expected a regular expression with exactly one capture group, found "interval_id\\":\\"([a-f0-9-]{36}" (Unterminated group)',
    'bad_regex.yaml:9:20: measurements[0].metadata_extraction.id_patterns[1].pattern: expected a regular expression with exactly one capture group, found "interval_id" with 0 capture groups (put the id in ( ))',
    'bad_regex.yaml:11:20: measurements[0].metadata_extraction.id_patterns[2].pattern: expected a regular expression with exactly one capture group, found "(call|interval)_id=([0-9]+)" with 2 capture groups (make the other groups non-capturing: (?: ))',
  ]);
});

Deno.test("unset variables and bad expressions: the variable, at its own position", async () => {
  deepEqual(await errorLines("bad_env.yaml", { FSMPX_TEST_REGION: "eu" }), [
    "bad_env.yaml:1:7: node: expected environment variable FSMPX_TEST_NODE to be set, found it unset (write ${FSMPX_TEST_NODE:-} to make it optional)",
    'bad_env.yaml:5:17: pixie.direct_addr: expected ${NAME} or ${NAME:-default}, found "${ broken }" (write $${ for a literal ${)',
    "bad_env.yaml:11:39: measurements[0].signature_rules.stream_filter: expected environment variable FSMPX_TEST_POD to be set, found it unset (write ${FSMPX_TEST_POD:-} to make it optional)",
  ]);
  // cluster needs FSMPX_TEST_REGION too; with it unset there is one more error, at the expression.
  const lines = await errorLines("bad_env.yaml");
  equal(lines.length, 4);
  equal(
    lines[1],
    "bad_env.yaml:3:18: pixie.cluster: expected environment variable FSMPX_TEST_REGION to be set, found it unset (write ${FSMPX_TEST_REGION:-} to make it optional)",
  );
});

Deno.test("YAML syntax errors carry file:line:col", async () => {
  deepEqual(await errorLines("bad_syntax.yaml"), [
    "bad_syntax.yaml:5:3: expected valid YAML, found BAD_INDENT: Flow map in block collection must be sufficiently indented and end with a }",
  ]);
  const dup = textErrors("log_level: info\nlog_level: debug\n");
  deepEqual(
    dup.format(),
    "config.yaml:2:1: log_level: expected valid YAML, found DUPLICATE_KEY: Map keys must be unique " +
      "(log_level is set at line 1 already: keep one of the two)",
  );
  equal(
    textErrors("").format(),
    "config.yaml:1:1: expected a mapping of config keys, found an empty document",
  );
  equal(
    textErrors("- a\n- b\n").format(),
    "config.yaml:1:1: expected a mapping of config keys, found a list",
  );
});

Deno.test("cross-field rules: unique names, reserved stage, envelope paths, channels, TLS pairs", async () => {
  deepEqual(await errorLines("bad_cross.yaml"), [
    "bad_cross.yaml:3:5: nats.tls.key_file: expected key_file set too (a client certificate needs both cert_file and key_file), found nothing",
    'bad_cross.yaml:8:39: measurements[0].signature_rules.audio.path: expected a regular expression with exactly one capture group (envelope regex), found "payload=([A-Za-z0-9+/=]+)&(x)" with 2 capture groups',
    'bad_cross.yaml:8:94: measurements[0].signature_rules.audio.channel: expected a channel index below channels (2) or "mix", found 2',
    'bad_cross.yaml:10:16: measurements[0].match_rules[0].stage: expected a stage name other than "source", found "source", which names the signature_rules query',
    'bad_cross.yaml:14:40: measurements[0].match_rules[1].audio.path: expected a dotted path to the audio field such as media.payload (envelope json), found "media..payload"',
    'bad_cross.yaml:15:16: measurements[0].match_rules[2].stage: expected a stage name unique in this measurement, found "asr", already the stage of match_rules[1]',
    "bad_cross.yaml:17:16: measurements[0].match_rules[2].audio.path: expected a regular expression with exactly one capture group (envelope regex), found nothing",
    'bad_cross.yaml:18:11: measurements[1].name: expected a unique measurement name, found "call_start_latency", already the name of measurements[0]',
  ]);
});

Deno.test("errors of every kind in one file are all reported together", () => {
  const text = `log_levl: info
nats:
  replicas: \${REPLICAS}
  retention: 7 days
metrics: { listen: "localhost" }
measurements:
  - name: Call-Start
    signature_rules:
      stream_filter: "select * from http_events"
      audio: { codec: ulaw, sample_rate: 4000 }
    metadata_extraction:
      id_patterns: [{ pattern: "x", id_type: x }]
`;
  const e = textErrors(text);
  deepEqual(e.issues.map((i) => `${i.line}:${i.col} ${i.path}`), [
    "1:1 log_levl",
    "3:13 nats.replicas",
    "4:14 nats.retention",
    "5:20 metrics.listen",
    "7:11 measurements[0].name",
    "9:22 measurements[0].signature_rules.stream_filter",
    "10:23 measurements[0].signature_rules.audio.codec",
    "10:42 measurements[0].signature_rules.audio.sample_rate",
    "12:32 measurements[0].metadata_extraction.id_patterns[0].pattern",
  ]);
  equal(e.issues[0]!.hint, 'did you mean "log_level"?');
  equal(e.issues[3]!.expected, "host:port");
  equal(e.issues[7]!.expected, "an integer from 8000 to 48000");
});

Deno.test("no measurements is an error", () => {
  equal(
    textErrors("log_level: info\n").format(),
    "config.yaml:1:1: measurements: expected a list, found nothing (the key is required)",
  );
  equal(
    textErrors("measurements: []\n").format(),
    "config.yaml:1:15: measurements: expected at least one measurement, found a list",
  );
});

Deno.test("secrets never appear in error text; they are registered for log masking", () => {
  const apiKey = "pxk-live-7f3a9c2e5b1d4a68";
  const password = "n4ts-s3cret-pass";
  const text = `pixie:
  api_key: \${PIXIE_API_KEY}
  direct_addr: \${PIXIE_API_KEY}
  cluster: "\${SERVICE_TOKEN}!"
nats:
  url: nats://fsmpx:\${NATS_PASSWORD}@nats bad:4222
  password: ["\${NATS_PASSWORD}"]
  token: 123456789
  user: \${OTHER_PASSWORD}
  stream: \${STREAM_SECRET:-default-secret-stream!}
measurements:
  - name: m
    signature_rules:
      stream_filter: "df = px.DataFrame(table='http_events')"
`;
  const e = textErrors(text, {
    PIXIE_API_KEY: apiKey,
    NATS_PASSWORD: password,
    SERVICE_TOKEN: "tok-abcdef123456",
  });
  const out = e.format();
  for (const secret of [apiKey, password, "tok-abcdef123456", "123456789", "default-secret-stream"]) {
    ok(!out.includes(secret), `${secret} leaked:\n${out}`);
    ok(!e.message.includes(secret));
    ok(!JSON.stringify(e.issues).includes(secret));
  }
  deepEqual(out.split("\n"), [
    "config.yaml:3:16: pixie.direct_addr: expected host:port, or empty, found <from $PIXIE_API_KEY>",
    "config.yaml:4:12: pixie.cluster: expected a cluster UUID or name, found <from $SERVICE_TOKEN>",
    "config.yaml:6:8: nats.url: expected nats://host:port (several separated by commas), or empty, found <from $NATS_PASSWORD>",
    "config.yaml:7:13: nats.password: expected a string, found a list",
    "config.yaml:8:10: nats.token: expected a string, found <secret>",
    "config.yaml:9:9: nats.user: expected environment variable OTHER_PASSWORD to be set, found it unset (write ${OTHER_PASSWORD:-} to make it optional)",
    "config.yaml:10:11: nats.stream: expected a stream name (letters, digits, _ and -), found <from $STREAM_SECRET>",
  ]);

  const lines: string[] = [];
  const previous = setLogSink((line) => lines.push(line));
  try {
    logger("test").error("server said", { detail: `bad key ${apiKey}`, pw: password });
  } finally {
    setLogSink(previous);
  }
  ok(!lines.join("\n").includes(apiKey));
  ok(!lines.join("\n").includes(password));
  ok(!redact(`x ${apiKey} y`).includes(apiKey));
});

Deno.test("a secret loaded successfully is registered for masking", () => {
  const key = "pxk-ok-0d9e8f7a6b5c4d3e";
  const text = `pixie: { api_key: "\${PIXIE_API_KEY}" }
measurements:
  - name: m
    signature_rules: { stream_filter: "df = px.DataFrame(table='http_events')" }
`;
  equal(parseConfigText(text, "c.yaml", { PIXIE_API_KEY: key, NODE_NAME: "n" }).config.pixie.api_key, key);
  equal(redact(`Authorization: ${key}`), "Authorization: [redacted]");
});

Deno.test("a literal secret in the file is never echoed either", () => {
  const e = textErrors(`pixie: { api_key: [hunter2-literal-key] }\nmeasurements: []\n`);
  ok(!e.format().includes("hunter2"));
});
