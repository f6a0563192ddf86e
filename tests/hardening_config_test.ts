/**
 * Issue 15, config hardening and smaller items: size and string caps, unknown-key errors in linear time, long
 * error lists cut, a token in nats.url masked, nested `${A:-${B}}`, telephony codec aliases.
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import {
  configIssue,
  loadConfig,
  MAX_CONFIG_BYTES,
  MAX_CONFIG_STRING,
  parseConfigText,
} from "../config/load.ts";
import { ConfigError, MAX_SHOWN_ISSUES } from "../config/errors.ts";
import { redact } from "../util/log.ts";
import { configErrorOf } from "./support/config_errors.ts";

const BASE = [
  "node: n1",
  "measurements:",
  "  - name: m",
  "    signature_rules:",
  "      stream_filter: |",
  "        df = px.DataFrame(table='http_events', start_time='-30s')",
  "      columns: { payload: req_body }",
  "",
].join("\n");

const errorOf = configErrorOf;

Deno.test("64k unknown keys: every one reported at its line, the printout cut after 100", () => {
  // Before: yaml's uniqueKeys and a search of the mapping per key made this quadratic (133 s for 64k keys).
  const n = 65_536;
  const text = BASE + Array.from({ length: n }, (_, i) => `k${i}: 1`).join("\n") + "\n";
  const e = errorOf(text);
  equal(e.issues.length, n);
  equal(e.issues[0]!.line, 8);
  equal(e.issues[n - 1]!.line, 7 + n);
  equal(e.issues[n - 1]!.path, `k${n - 1}`);
  const lines = e.format().split("\n");
  equal(lines.length, MAX_SHOWN_ISSUES + 1);
  equal(lines[MAX_SHOWN_ISSUES], `... and ${n - MAX_SHOWN_ISSUES} more problems`);
  match(lines[0]!, /^c\.yaml:8:1: k0: expected one of the keys /);
});

Deno.test("duplicate keys are still found, at the repeated key, in nested mappings too", () => {
  const e = errorOf(BASE + "metrics:\n  listen: 127.0.0.1:1\n  listen: 127.0.0.1:2\n");
  // The key's path and the line of its first setting say which two lines to reconcile (s30: before, neither).
  deepEqual(
    e.format(),
    "c.yaml:10:3: metrics.listen: expected valid YAML, found DUPLICATE_KEY: Map keys must be unique " +
      "(listen is set at line 9 already: keep one of the two)",
  );
  const inList = errorOf(
    BASE.replace("  - name: m\n", "  - name: m\n    ttl_seconds: 5\n    ttl_seconds: 6\n"),
  );
  deepEqual(
    inList.format(),
    "c.yaml:5:5: measurements[0].ttl_seconds: expected valid YAML, found DUPLICATE_KEY: Map keys must be unique " +
      "(ttl_seconds is set at line 4 already: keep one of the two)",
  );
  // A number and a string that read alike are different keys in YAML: not duplicates.
  const e2 = errorOf(BASE + 'extra:\n  1: a\n  "1": b\n');
  ok(!e2.format().includes("DUPLICATE_KEY"), e2.format());
});

Deno.test("a config file over 1 MiB is refused before it is read whole", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/big.yaml`;
    await Deno.writeTextFile(path, BASE + `x: "${"a".repeat(MAX_CONFIG_BYTES)}"\n`);
    let err: unknown;
    try {
      await loadConfig(path, {});
    } catch (e) {
      err = e;
    }
    ok(err instanceof ConfigError);
    equal(err.exitCode, 2);
    match(err.format(), /big\.yaml: expected a config file of at most 1048576 bytes, found \d+ bytes/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a string over 64 KiB, from the file or from the environment, is an error at its position", () => {
  const fromFile = errorOf(BASE + `pixie:\n  cluster: "${"a".repeat(MAX_CONFIG_STRING + 1)}"\n`);
  equal(
    fromFile.format(),
    `c.yaml:9:12: pixie.cluster: expected a string of at most ${MAX_CONFIG_STRING} characters, found ${
      MAX_CONFIG_STRING + 1
    } characters`,
  );
  // 50 MB in a variable: refused before the schema copies it around.
  const big = "b".repeat(50_000_000);
  const fromEnv = errorOf(BASE + "pixie:\n  cluster: ${BIG}\n", { BIG: big });
  match(fromEnv.format(), /^c\.yaml:9:12: pixie\.cluster: expected a string of at most 65536 characters/);
  ok(fromEnv.format().length < 300);
  // An implicit key is at most 1024 characters in YAML; an explicit one (`? key`) can be longer.
  const longKey = errorOf(BASE + `? ${"k".repeat(MAX_CONFIG_STRING + 1)}\n: 1\n`);
  match(longKey.format(), /^c\.yaml:8:3: expected a key of at most 65536 characters/);
});

Deno.test("a token in nats.url (nats://TOKEN@host) is masked in errors and logs, like user:pass@", () => {
  const token = "s3cretT0kenValue";
  const e = errorOf(BASE + `nats:\n  url: "nats://${token}@host:4222 oops"\n`);
  ok(!e.format().includes(token), e.format());
  match(e.format(), /nats\.url: .*found <secret>/);
  const withPass = errorOf(BASE + `nats:\n  url: "nats://user:${token}x@host:4222 oops"\n`);
  ok(!withPass.format().includes(token), withPass.format());
  const loaded = parseConfigText(BASE + `nats:\n  url: "nats://${token}2@host:4222"\n`, "c.yaml", {});
  equal(loaded.config.nats.url, `nats://${token}2@host:4222`);
  ok(!redact(`connecting to nats://${token}2@host:4222`).includes(`${token}2`));
});

Deno.test("a literal password holding / @ or : in nats.url, or one without a scheme, is masked in the error", () => {
  for (
    const url of [
      "nats://fsmpx:Sup3r/Secr3tPw@nats:4222",
      "nats://fsmpx:Sup3r@Secr3tPw@nats:4222",
      "nats://fsmpx:Sup3r:Secr3tPw@nats:4222 oops",
      "fsmpx:Sup3rSecr3tPw@nats:4222 oops",
    ]
  ) {
    const e = errorOf(BASE + `nats:\n  url: "${url}"\n`);
    ok(!/Secr3t/.test(e.format()), e.format());
  }
  // A valid URL whose password holds a `:`: all of it is hidden in logs, not only its part before the `:`.
  const url = "nats://fsmpx:Sup3r:Secr3tPw@nats:4222";
  equal(parseConfigText(BASE + `nats:\n  url: "${url}"\n`, "c.yaml", {}).config.nats.url, url);
  ok(!/Secr3t/.test(redact(`connecting to ${url}`)), redact(`connecting to ${url}`));
  ok(!/Secr3t/.test(redact("auth failed with password Sup3r:Secr3tPw")), "the password on its own too");
});

Deno.test("${A:-${B}} nests: the default is interpolated too; an unset inner variable is an error", () => {
  const cluster = (line: string, env: Record<string, string>) =>
    parseConfigText(BASE + `pixie:\n  cluster: ${line}\n`, "c.yaml", env).config.pixie.cluster;
  equal(cluster('"${A:-${B}}"', { B: "from-b" }), "from-b");
  equal(cluster('"${A:-${B}}"', { A: "from-a", B: "from-b" }), "from-a");
  equal(cluster('"${A:-${B:-c-${C:-dflt}}}"', {}), "c-dflt");
  // $${ stays a literal ${ (cluster names cannot hold it, so the error shows what interpolation made).
  match(errorOf(BASE + 'pixie:\n  cluster: "x-$${A:-${B}}"\n', { B: "b" }).format(), /found "x-\$\{A:-b\}"/);
  equal(
    errorOf(BASE + 'pixie:\n  cluster: "${A:-${B}}"\n').format(),
    "c.yaml:9:13: pixie.cluster: expected environment variable B to be set (in the default of A), found it " +
      "unset (write ${B:-} to make it optional)",
  );
  match(errorOf(BASE + 'pixie:\n  cluster: "${A:-${1x}}"\n').format(), /in the default, found "\$\{1x\}"/);
  // A number from a nested default is still a number where the schema wants one.
  const n = parseConfigText(BASE + "engine:\n  lookback_seconds: ${L:-${M:-45}}\n", "c.yaml", {});
  equal(n.config.engine.lookback_seconds, 45);
});

Deno.test("telephony codec names are aliases: pcmu, PCMU, g711u -> mulaw; pcma, g711a -> alaw", () => {
  for (
    const [name, codec] of [
      ["pcmu", "mulaw"],
      ["PCMU", "mulaw"],
      ["g711u", "mulaw"],
      ["G711A", "alaw"],
      [
        "pcma",
        "alaw",
      ],
      ["g711a", "alaw"],
      ["MULAW", "mulaw"],
    ] as const
  ) {
    const text = BASE.replace("      columns:", `      audio: { codec: ${name} }\n      columns:`);
    const loaded = parseConfigText(text, "c.yaml", {});
    equal(loaded.config.measurements[0]!.signature_rules.audio.codec, codec, name);
  }
  const bad = errorOf(BASE.replace("      columns:", "      audio: { codec: g729 }\n      columns:"));
  match(bad.format(), /audio\.codec: expected one of mulaw\|alaw\|pcm16le\|pcm16be\|float32le, found "g729"/);
});

Deno.test("pixie.cloud_addr as an IP address is an error that says why (TLS server names cannot be IPs)", () => {
  for (const addr of ["10.0.0.7:443", "[::1]:443"]) {
    const e = errorOf(BASE + `pixie:\n  cloud_addr: "${addr}"\n`);
    match(
      e.format(),
      /^c\.yaml:9:15: pixie\.cloud_addr: expected host:port with a host name \(TLS sends the host/,
    );
    match(e.format(), /pixie\.direct_addr for a standalone PEM/);
  }
  parseConfigText(BASE + "pixie:\n  cloud_addr: localhost:443\n", "c.yaml", {});
});

Deno.test("configIssue: a setting a command cannot use (empty pixie.api_key) is an exit-2 error at its position", () => {
  const loaded = parseConfigText(BASE + 'pixie:\n  api_key: ""\nnats:\n  url: ""\n', "c.yaml", {});
  const e = configIssue(
    loaded.config,
    ["pixie", "api_key"],
    "a Pixie API key ($PIXIE_API_KEY)",
    "an empty value",
    "or pixie.direct_addr for a standalone PEM",
  );
  equal(e.exitCode, 2);
  equal(
    e.format(),
    "c.yaml:9:12: pixie.api_key: expected a Pixie API key ($PIXIE_API_KEY), found an empty value " +
      "(or pixie.direct_addr for a standalone PEM)",
  );
  // Not written in the file: the deepest part that is (here the whole document).
  const absent = parseConfigText(BASE, "c.yaml", {});
  match(
    configIssue(absent.config, ["nats", "url"], "a NATS URL", "nothing").format(),
    /^c\.yaml:1:1: nats\.url:/,
  );
});
