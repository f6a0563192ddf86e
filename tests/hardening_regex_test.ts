/**
 * Issue 15, "one message can freeze the node": user regexes (`metadata_extraction.id_patterns`, `envelope:
 * regex`) run in a linear-time engine. Unit tests compare it with RegExp on random input; a real `run` process
 * is fed catastrophic bodies for `(a+)+$` (V8's backtracking takes 2^n steps on them) and must finish its capture
 * and keep answering.
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { stringify } from "yaml";
import { compileLinearRegex, type LinearRegex, MAX_REGEX_INPUT } from "../util/linear_regex.ts";
import { compileEnvelopeRegex, extractAudioField } from "../audio/decode/payload.ts";
import { extractIds } from "../audio/decode/context_ids.ts";
import { PayloadEnvelope } from "../audio/decode/payload.ts";
import { parseConfigText } from "../config/load.ts";
import { ConfigError } from "../config/errors.ts";
import { SensorProcess, sumSamples } from "./support/sensor_process.ts";
import { rng } from "./support/rng.ts";

function compiled(pattern: string): LinearRegex {
  const c = compileLinearRegex(pattern);
  if ("error" in c) throw new Error(c.error);
  return c;
}

/** Random text over an alphabet, with pieces of the pattern's literals so that matches happen. */
function randomText(r: () => number, alphabet: string, pieces: readonly string[], length: number): string {
  let s = "";
  while (s.length < length) {
    s += r() < 0.15 && pieces.length > 0
      ? pieces[Math.floor(r() * pieces.length)]!
      : alphabet[Math.floor(r() * alphabet.length)]!;
  }
  return s;
}

const SCAN_CASES: { pattern: string; alphabet: string; pieces: string[] }[] = [
  {
    pattern: 'interval_id":"([a-f0-9-]{36})',
    alphabet: 'abf09-"x:',
    pieces: ['interval_id":"', "0123abcd-"],
  },
  { pattern: '"payload":"([^"]*)"', alphabet: 'ab"\\:+/=', pieces: ['"payload":"'] },
  { pattern: "id=(\\d{2,4});", alphabet: "id=0123;x", pieces: ["id=", "12", ";"] },
  { pattern: "a(b+)", alphabet: "abc", pieces: ["ab"] },
  { pattern: "ab(.?)\\n", alphabet: "abc\n", pieces: ["ab"] },
  { pattern: "k\\.(\\w{3,})\\t", alphabet: "k.abc_\t ", pieces: ["k."] },
  { pattern: "aa([b]{2,})x", alphabet: "abx", pieces: ["aa", "bb"] },
];

Deno.test("the scan engine takes the common id and envelope shapes and agrees with RegExp", () => {
  const r = rng(15);
  for (const c of SCAN_CASES) {
    const lin = compiled(c.pattern);
    equal(lin.engine, "scan", c.pattern);
    const js = new RegExp(c.pattern);
    for (let i = 0; i < 3000; i++) {
      const text = randomText(r, c.alphabet, c.pieces, Math.floor(r() * 80));
      const want = js.exec(text);
      equal(lin.capture(text), want?.[1], `${c.pattern} on ${JSON.stringify(text)}`);
      deepEqual(lin.exec(text)?.[0], want?.[0], `${c.pattern} on ${JSON.stringify(text)}`);
    }
  }
});

Deno.test("other patterns run in re2js and agree with RegExp", () => {
  const r = rng(7);
  const cases = [
    { pattern: "(a+)+$", alphabet: "ab", pieces: ["aaa"] },
    { pattern: "x(?:y|z)+(\\d)", alphabet: "xyz12", pieces: ["xy"] },
    { pattern: "^(\\w+)=", alphabet: "ab=_ ", pieces: [] },
    { pattern: "(?<id>[A-Z]{2})-\\d", alphabet: "AB-1 ", pieces: ["AB-"] },
    { pattern: "\\u0041(b*)", alphabet: "Ab", pieces: [] },
  ];
  for (const c of cases) {
    const lin = compiled(c.pattern);
    equal(lin.engine, "re2js", c.pattern);
    const js = new RegExp(c.pattern);
    for (let i = 0; i < 1000; i++) {
      const text = randomText(r, c.alphabet, c.pieces, Math.floor(r() * 30));
      equal(lin.capture(text), js.exec(text)?.[1], `${c.pattern} on ${JSON.stringify(text)}`);
    }
  }
});

Deno.test("catastrophic patterns return at once on the bodies that make RegExp backtrack", () => {
  // RegExp needs about 2^n steps here: with n = 4096 these calls would never return without the linear engine.
  const body = "a".repeat(4096) + "!";
  equal(compiled("(a+)+$").capture(body), undefined);
  equal(compiled("(x+x+)+y").capture("x".repeat(4096)), undefined);
  equal(compiled("(a|aa)+$").capture(body), undefined);
  const env = new PayloadEnvelope(new TextEncoder().encode(body));
  deepEqual(extractAudioField(env, { envelope: "regex", path: "(a+)+$", skip_bytes: 0 }), {
    ok: false,
    reason: "no_regex_match",
  });
  deepEqual(extractIds(env, [{ idType: "x", regex: compiled("(a+)+$") }]), {});
});

Deno.test("patterns that need backtracking are refused with the reason", () => {
  for (const p of ["(?=a)(b)", "(a)\\1", "(?<=a)(b)", "(a{100}){100}"]) {
    const c = compileLinearRegex(p);
    ok("error" in c, p);
    match(c.error, /linear-time engine/);
  }
  const long = compileLinearRegex("a".repeat(2000));
  ok("error" in long);
  match(long.error, /longer than 1024/);
  // Syntax errors are JavaScript's, as the config documents JavaScript syntax.
  const bad = compileLinearRegex("(unclosed");
  ok("error" in bad);
  match(bad.error, /Unterminated group/);
});

Deno.test("a pattern sees the first MAX_REGEX_INPUT characters of a message", () => {
  const id = "0123abcd-0123-0123-0123-0123456789ab";
  const lin = compiled('interval_id":"([a-f0-9-]{36})');
  const near = `${" ".repeat(MAX_REGEX_INPUT - 100)}"interval_id":"${id}"`;
  const far = `${" ".repeat(MAX_REGEX_INPUT)}"interval_id":"${id}"`;
  equal(lin.capture(near), id);
  equal(lin.capture(far), undefined);
  const re = compiled('interval_(?:id)":"([a-f0-9-]{36})');
  equal(re.engine, "re2js");
  equal(re.capture(near), id);
  equal(re.capture(far), undefined);
});

Deno.test("config: an id pattern or envelope regex with a lookahead is an error at its file:line:col", () => {
  const text = [
    "node: n1",
    "measurements:",
    "  - name: m",
    "    signature_rules:",
    "      stream_filter: |",
    "        df = px.DataFrame(table='http_events', start_time='-30s')",
    "      columns: { payload: req_body }",
    '      audio: { envelope: regex, path: "(?=x)(y)" }',
    "    metadata_extraction:",
    "      id_patterns:",
    '        - pattern: "(?!a)(b)"',
    "          id_type: x",
    "",
  ].join("\n");
  try {
    parseConfigText(text, "c.yaml", {});
    throw new Error("loaded");
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    const lines = e.format().split("\n");
    ok(lines.some((l) => /^c\.yaml:8:\d+: .*audio\.path: .*linear-time engine/.test(l)), e.format());
    ok(
      lines.some((l) => /^c\.yaml:11:\d+: .*id_patterns\[0\]\.pattern: .*linear-time engine/.test(l)),
      e.format(),
    );
  }
});

Deno.test("loaded id patterns and envelope regexes run in the linear engine", () => {
  const { config } = parseConfigText(
    [
      "node: n1",
      "measurements:",
      "  - name: m",
      "    signature_rules:",
      "      stream_filter: |",
      "        df = px.DataFrame(table='http_events', start_time='-30s')",
      "      columns: { payload: req_body }",
      "    metadata_extraction:",
      "      id_patterns:",
      '        - pattern: "(a+)+$"',
      "          id_type: x",
      "",
    ].join("\n"),
    "c.yaml",
    {},
  );
  const p = config.measurements[0]!.metadata_extraction.id_patterns[0]!;
  equal(p.regex.engine, "re2js");
  equal(p.regex.capture("a".repeat(10_000) + "!"), undefined);
  equal(compileEnvelopeRegex("(a+)+$").engine, "re2js");
});

/** A capture of `rows` source rows with hostile bodies, then normal silence-free JSON. */
function hostileCapture(rows: number): string {
  const lines = [JSON.stringify({ capture: 1, node: "regex-node" })];
  const t0 = 1_763_900_000_000_000_000n;
  for (let i = 0; i < rows; i++) {
    // (a+)+$ fails on a run of a's followed by "!" only after trying every split of the run.
    const body = i % 2 === 0 ? "a".repeat(64) + "!" : JSON.stringify({ payload: "a".repeat(64) + "!" });
    lines.push(JSON.stringify({
      query: "hostile/source",
      row: { time_: String(t0 + BigInt(i) * 20_000_000n), pod: "voice/p-0", req_body: body },
    }));
  }
  return lines.join("\n") + "\n";
}

async function runHostile(audio: Record<string, unknown>, idPattern: string): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "fsmpx-regex-" });
  let sensor: SensorProcess | undefined;
  try {
    const config = `${dir}/regex-node.yaml`;
    await Deno.writeTextFile(
      config,
      stringify({
        node: "regex-node",
        log_level: "info",
        metrics: { listen: "127.0.0.1:0" },
        nats: { url: "" },
        measurements: [{
          name: "hostile",
          signature_rules: {
            stream_filter: "df = px.DataFrame(table='http_events', start_time='-30s')\n",
            columns: { payload: "req_body" },
            audio,
          },
          metadata_extraction: { id_patterns: [{ pattern: idPattern, id_type: "x" }] },
        }],
      }),
    );
    const capture = `${dir}/capture.jsonl`;
    await Deno.writeTextFile(capture, hostileCapture(40));
    sensor = await SensorProcess.start({ node: "regex-node", config, capture, speed: 1000 });
    // Without the linear engine the first row never finishes (2^64 steps) and the capture is never replayed.
    await sensor.waitReplayed(60_000);
    const samples = await sensor.scrape();
    equal(sumSamples(samples, "fsmpx_rows_read_total", { query: "hostile/source" }), 40);
    ok(
      sumSamples(samples, "fsmpx_payload_decode_errors_total") >= 20,
      "hostile bodies counted as decode errors",
    );
    const health = await fetch(`http://${sensor.addr}/healthz`);
    equal(health.status, 200);
    await health.body?.cancel();
    equal((await sensor.stop()).code, 0);
  } finally {
    await sensor?.kill();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name:
    "a real run process: (a+)+$ as id pattern and as envelope regex over hostile bodies finishes its capture",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await runHostile({ envelope: "regex", path: "(a+)+$", encoding: "base64", codec: "mulaw" }, "(a+)+$");
    await runHostile({ envelope: "json", path: "payload", encoding: "base64", codec: "mulaw" }, "(a|aa)+$");
  },
});
