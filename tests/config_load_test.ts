import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { join } from "node:path";
import type { AudioCriteria, AudioFormat } from "../audio/types.ts";
import { ConfigError } from "../config/errors.ts";
import { loadConfig, parseConfigText, resolveConfigPath } from "../config/load.ts";

const FIXTURES = new URL("./fixtures_config/", import.meta.url);
const fixture = (name: string) => new URL(name, FIXTURES).pathname;
const EXAMPLE = new URL("../example-config.yaml", import.meta.url).pathname;

const MINIMAL = `measurements:
  - name: m
    signature_rules:
      stream_filter: "df = px.DataFrame(table='http_events')"
`;

Deno.test("quickstart loads with the documented defaults and a default match rule", async () => {
  // The corrected Quick Start of the README; the seed's own (socket_data, pod_name) is bad_seed_quickstart.yaml.
  const { config, file } = await loadConfig(fixture("quickstart.yaml"), { NODE_NAME: "node-a" });
  equal(file, fixture("quickstart.yaml"));
  equal(config.node, "node-a");
  equal(config.log_level, "info");
  deepEqual(config.pixie, {
    cloud_addr: "work.withpixie.ai:443",
    api_key: "",
    cluster: "",
    direct_addr: "",
    encryption: true,
    ca_file: "",
    scope: "node",
  });
  equal(config.nats.url, "");
  equal(config.nats.stream, "FSMPX");
  equal(config.nats.replicas, 1);
  equal(config.nats.retention, "168h");
  equal(config.nats.retention_ms, 168 * 3600 * 1000);
  equal(config.nats.duplicate_window_ms, 120_000);
  equal(config.nats.max_bytes, 2 ** 30);
  equal(config.nats.outbox_size, 10000);
  equal(config.nats.clock_skew_warn_ms, 50);
  deepEqual(config.metrics, {
    listen: "0.0.0.0:9464",
    exemplars: true,
    latency_last_series: 1000,
    latency_last_ttl_seconds: 300,
  });
  deepEqual(config.engine, {
    lookback_seconds: 30,
    max_active_signatures: 10000,
    match_threshold_ber: 0.35,
    match_margin: 0.08,
    max_streams: 1000,
    clock_window_seconds: 30,
    search_before_source_seconds: 2,
    late_row_seconds: 5,
  });

  equal(config.measurements.length, 1);
  const m = config.measurements[0]!;
  equal(m.name, "call_start_latency");
  equal(m.ttl_seconds, 120);
  const sig = m.signature_rules;
  equal(
    sig.stream_filter,
    "df = px.DataFrame(table='http_events', start_time='-30s')\ndf = df[px.contains(df.ctx['pod'], 'telephony')]\n",
  );
  // No columns: the payload is the body column of the table the filter reads; an http_events request body's time
  // is time_ less latency (time_ is the response's).
  deepEqual(sig.columns, { time: "time_", pod: "pod", payload: "req_body", latency: "latency" });
  deepEqual(sig.stream_key, ["pod"]);
  const audio: AudioFormat = sig.audio;
  deepEqual(audio, {
    envelope: "json",
    path: "media.payload",
    encoding: "base64",
    codec: "mulaw",
    sample_rate: 8000,
    channels: 1,
    channel: 0,
    skip_bytes: 0,
  });
  const criteria: AudioCriteria = sig.audio_criteria;
  deepEqual(criteria, {
    vad_mode: "energy",
    vad_aggressiveness: 2,
    energy_threshold: 0.3,
    min_duration_ms: 500,
    min_silence_ms: 300,
    reanchor_ms: 3000,
  });
  // No match_rules: every node searches the whole source table, minus the source streams.
  deepEqual(m.match_rules, [{
    stage: "downstream",
    stream_filter: "df = px.DataFrame(table='http_events', start_time='-30s')",
    columns: { time: "time_", pod: "pod", payload: "req_body", latency: "latency" },
    stream_key: ["pod"],
    audio: sig.audio,
    exclude_source_streams: true,
    after: "source",
  }]);
  const ids = m.metadata_extraction.id_patterns;
  equal(ids.length, 1);
  equal(ids[0]!.id_type, "interval_id");
  equal(ids[0]!.pattern, 'interval_id":"([a-f0-9-]{36})');
  const id = "0b4f6a52-8d0e-4a65-9d0a-2f3c8a1b7e44";
  equal(ids[0]!.regex.exec(`{"interval_id":"${id}","x":1}`)?.[1], id);
});

Deno.test("the contract example loads with every key as written", async () => {
  const { config } = await loadConfig(fixture("contract.yaml"), {
    NODE_NAME: "worker-1",
    PIXIE_API_KEY: "px-api-0123456789abcdef",
    PIXIE_CLUSTER: "9b3c1e0a-52f4-4f7e-9a8e-1c2d3e4f5a6b",
  });
  equal(config.node, "worker-1");
  equal(config.pixie.api_key, "px-api-0123456789abcdef");
  equal(config.pixie.cluster, "9b3c1e0a-52f4-4f7e-9a8e-1c2d3e4f5a6b");
  const m = config.measurements[0]!;
  // As written, and latency filled in (an http_events request body: s31).
  deepEqual(m.signature_rules.columns, {
    time: "time_",
    pod: "pod",
    payload: "req_body",
    latency: "latency",
  });
  deepEqual(m.signature_rules.stream_key, ["pod", "remote_addr", "remote_port", "$.streamSid"]);
  equal(m.signature_rules.audio_criteria.vad_aggressiveness, 2);
  equal(m.match_rules.length, 1);
  const asr = m.match_rules[0]!;
  equal(asr.stage, "asr");
  equal(asr.exclude_source_streams, false);
  // A partial columns mapping is merged over the defaults, not over the source's columns.
  deepEqual(asr.columns, { time: "time_", pod: "pod", payload: "req_body", latency: "latency" });
  deepEqual(asr.stream_key, ["pod", "remote_addr", "remote_port"]);
  const asrAudio: AudioFormat = asr.audio;
  deepEqual(asrAudio, {
    envelope: "json",
    path: "data",
    encoding: "base64",
    codec: "pcm16le",
    sample_rate: 16000,
    channels: 1,
    channel: 0,
    skip_bytes: 0,
  });
});

Deno.test("example-config.yaml loads cleanly with an empty environment", async () => {
  const { config } = await loadConfig(EXAMPLE, {});
  ok(config.node.length > 0);
  equal(config.pixie.api_key, "");
  equal(config.nats.password, "");
  equal(config.measurements[0]!.signature_rules.columns.body_size, "req_body_size");
  equal(config.measurements[0]!.match_rules[0]!.stage, "asr");
});

Deno.test("node: the file, else $NODE_NAME, else the hostname", () => {
  equal(parseConfigText(`node: n1\n${MINIMAL}`, "c.yaml", { NODE_NAME: "n2" }).config.node, "n1");
  equal(parseConfigText(MINIMAL, "c.yaml", { NODE_NAME: "n2" }).config.node, "n2");
  equal(parseConfigText(`node: \${NODE_NAME:-}\n${MINIMAL}`, "c.yaml", {}).config.node, Deno.hostname());
});

Deno.test("interpolation: defaults, empty values, escapes, and typed whole-value expressions", () => {
  const text = `
pixie:
  cloud_addr: \${PX_HOST:-cloud.example.com}:\${PX_PORT:-443}
  cluster: \${PX_CLUSTER:-123}
  encryption: \${PX_ENCRYPT:-false}
  ca_file: \${PX_CA}
nats:
  replicas: \${NATS_REPLICAS:-3}
  max_bytes: \${NATS_MAX:-512MiB}
measurements:
  - name: m
    signature_rules:
      stream_filter: |
        df = px.DataFrame(table='http_events')
        df = df[px.contains(df.req_body, '$\${literal}')]
`;
  const { config } = parseConfigText(text, "c.yaml", { PX_PORT: "8443", PX_CA: "", NATS_MAX: "" });
  equal(config.pixie.cloud_addr, "cloud.example.com:8443");
  // A whole-value expression becomes a number only where the option takes one.
  equal(config.pixie.cluster, "123");
  equal(config.pixie.encryption, false);
  // ${VAR} with VAR set to "" is "", not an error.
  equal(config.pixie.ca_file, "");
  equal(config.nats.replicas, 3);
  equal(config.nats.max_bytes, 512 * 2 ** 20);
  ok(config.measurements[0]!.signature_rules.stream_filter!.includes("'${literal}')"));

  const fromEnv = parseConfigText(text, "c.yaml", {
    PX_CA: "/ca.pem",
    NATS_REPLICAS: "5",
    PX_ENCRYPT: "true",
  });
  equal(fromEnv.config.nats.replicas, 5);
  equal(fromEnv.config.pixie.encryption, true);
  equal(fromEnv.config.pixie.ca_file, "/ca.pem");
});

Deno.test("interpolation: an empty variable with :- takes the default", () => {
  const text = `nats:\n  stream: \${S:-FROMDEFAULT}\n${MINIMAL}`;
  equal(parseConfigText(text, "c.yaml", { S: "" }).config.nats.stream, "FROMDEFAULT");
  equal(parseConfigText(text, "c.yaml", { S: "X1" }).config.nats.stream, "X1");
});

Deno.test("durations, byte sizes and partial sections are parsed and merged with defaults", () => {
  const text = `nats:
  retention: 1h30m
  duplicate_window: 90s
  max_bytes: 1000000
  tls: { ca_file: /ca.pem }
metrics: { listen: "127.0.0.1:0" }
engine: { lookback_seconds: 12.5 }
${MINIMAL}`;
  const { config } = parseConfigText(text, "c.yaml", { NODE_NAME: "n" });
  equal(config.nats.retention, "1h30m");
  equal(config.nats.retention_ms, 5_400_000);
  equal(config.nats.duplicate_window_ms, 90_000);
  equal(config.nats.max_bytes, 1_000_000);
  deepEqual(config.nats.tls, { ca_file: "/ca.pem", cert_file: "", key_file: "" });
  equal(config.metrics.listen, "127.0.0.1:0");
  equal(config.metrics.exemplars, true);
  equal(config.engine.lookback_seconds, 12.5);
  equal(config.engine.match_margin, 0.08);
});

Deno.test("default match rule: only the first px.DataFrame call, source columns and stream key kept", () => {
  const text = `measurements:
  - name: m
    signature_rules:
      stream_filter: |
        src = px.DataFrame(table='http_events', select=['time_', 'upid', 'req_body'], start_time='-30s')
        df = src[px.contains(src.ctx['pod'], 'telephony (edge)')]
      columns: { payload: req_body }
      stream_key: [pod, "$.streamSid"]
      audio: { codec: alaw, channels: 2, channel: mix }
`;
  const m = parseConfigText(text, "c.yaml", { NODE_NAME: "n" }).config.measurements[0]!;
  const rule = m.match_rules[0]!;
  equal(rule.stage, "downstream");
  equal(
    rule.stream_filter,
    "df = px.DataFrame(table='http_events', select=['time_', 'upid', 'req_body'], start_time='-30s')",
  );
  deepEqual(rule.columns, { time: "time_", pod: "pod", payload: "req_body" });
  deepEqual(rule.stream_key, ["pod", "$.streamSid"]);
  equal(rule.audio.codec, "alaw");
  equal(rule.audio.channel, "mix");
  equal(rule.exclude_source_streams, true);
});

Deno.test("an empty match_rules list also gets the default rule; explicit rules are kept as they are", () => {
  const empty = parseConfigText(`${MINIMAL}    match_rules: []\n`, "c.yaml", { NODE_NAME: "n" });
  equal(empty.config.measurements[0]!.match_rules[0]!.stage, "downstream");
  const explicit = parseConfigText(
    `${MINIMAL}    match_rules:\n      - stage: tts\n        stream_filter: "df = px.DataFrame(table='http_events')"\n`,
    "c.yaml",
    { NODE_NAME: "n" },
  );
  const rules = explicit.config.measurements[0]!.match_rules;
  equal(rules.length, 1);
  equal(rules[0]!.stage, "tts");
  equal(rules[0]!.exclude_source_streams, false);
});

Deno.test("audio: regex and raw envelopes keep their own path semantics", () => {
  const text = `measurements:
  - name: m
    signature_rules:
      stream_filter: "df = px.DataFrame(table='http_events')"
      audio: { envelope: regex, path: 'payload=([A-Za-z0-9+/=]+)', encoding: base64 }
    match_rules:
      - stage: raw_tap
        stream_filter: "df = px.DataFrame(table='http_events')"
        audio: { envelope: raw, encoding: binary, codec: pcm16le, skip_bytes: 12 }
`;
  const m = parseConfigText(text, "c.yaml", { NODE_NAME: "n" }).config.measurements[0]!;
  equal(m.signature_rules.audio.path, "payload=([A-Za-z0-9+/=]+)");
  equal(m.match_rules[0]!.audio.path, "");
  equal(m.match_rules[0]!.audio.skip_bytes, 12);
});

Deno.test("YAML anchors and merge keys resolve", () => {
  const text = `measurements:
  - name: m
    signature_rules:
      stream_filter: "df = px.DataFrame(table='http_events')"
      audio: &tw { codec: mulaw, sample_rate: 8000 }
    match_rules:
      - stage: a
        stream_filter: "df = px.DataFrame(table='nats_events.beta')"
        audio: { <<: *tw, sample_rate: 16000 }
`;
  const m = parseConfigText(text, "c.yaml", { NODE_NAME: "n" }).config.measurements[0]!;
  equal(m.match_rules[0]!.audio.codec, "mulaw");
  equal(m.match_rules[0]!.audio.sample_rate, 16000);
});

Deno.test("default path: config.yaml, then example-config.yaml, else an exit-2 error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fsmpx_config_" });
  try {
    await rejects(loadConfig(undefined, {}, { cwd: dir }), (e: unknown) => {
      ok(e instanceof ConfigError);
      equal(e.exitCode, 2);
      equal(
        e.format(),
        "config.yaml or example-config.yaml: expected a config file (or pass --config FILE), found neither file",
      );
      return true;
    });

    await Deno.writeTextFile(join(dir, "example-config.yaml"), `node: from-example\n${MINIMAL}`);
    let loaded = await loadConfig(undefined, {}, { cwd: dir });
    equal(loaded.file, "example-config.yaml");
    equal(loaded.config.node, "from-example");

    await Deno.writeTextFile(join(dir, "config.yaml"), `node: from-config\n${MINIMAL}`);
    loaded = await loadConfig(undefined, {}, { cwd: dir });
    equal(loaded.file, "config.yaml");
    equal(loaded.config.node, "from-config");
    equal(await resolveConfigPath(undefined, dir), "config.yaml");

    // An explicit path wins, and is resolved against cwd.
    await Deno.writeTextFile(join(dir, "other.yaml"), `node: from-other\n${MINIMAL}`);
    loaded = await loadConfig("other.yaml", {}, { cwd: dir });
    equal(loaded.config.node, "from-other");

    // Without a cwd option the process cwd is used.
    const before = Deno.cwd();
    Deno.chdir(dir);
    try {
      equal((await loadConfig(undefined, {})).config.node, "from-config");
    } finally {
      Deno.chdir(before);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an explicit path that does not exist is a ConfigError naming the file", async () => {
  await rejects(loadConfig("/nonexistent/fsmpx.yaml", {}), (e: unknown) => {
    ok(e instanceof ConfigError);
    equal(e.format(), "/nonexistent/fsmpx.yaml: expected a readable config file, found NotFound");
    return true;
  });
});
