/** The command line as a user meets it: help, exit codes, configuration errors. */
import { equal, match, ok } from "node:assert/strict";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const dec = new TextDecoder();

async function cli(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("cli: every command has --help (exit 0); no command or an unknown one is a usage error (exit 2)", async () => {
  for (const cmd of ["run", "demo", "analyze", "record", "replay", "schema"]) {
    const r = await cli([cmd, "--help"]);
    equal(r.code, 0, `${cmd}: ${r.stderr}`);
    match(r.stdout, new RegExp(`usage: deno task ${cmd}`));
  }
  const none = await cli([]);
  equal(none.code, 2);
  match(none.stdout, /commands:/);
  const unknown = await cli(["frobnicate"]);
  equal(unknown.code, 2);
  match(unknown.stderr, /unknown command "frobnicate"/);
});

Deno.test("cli: bad options are usage errors (exit 2) that point at --help", async () => {
  const r = await cli(["analyze", "--bogus"]);
  equal(r.code, 2);
  match(r.stderr, /run 'deno task analyze --help'/);
  const noFiles = await cli(["analyze", "--config", "fixtures/e2e/config.yaml"]);
  equal(noFiles.code, 2);
  match(noFiles.stderr, /at least one capture file/);
  const fmt = await cli(["replay", "--since", "forever"]);
  equal(fmt.code, 2);
  match(fmt.stderr, /duration/);
});

Deno.test("cli: a config error names file:line:col and exits 2, secrets not shown", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/bad.yaml`;
    await Deno.writeTextFile(
      path,
      [
        "pixie:",
        "  api_key: ${PIXIE_API_KEY}",
        "  encryptoin: true",
        "measurements:",
        "  - name: m",
        "    signature_rules:",
        "      stream_filter: |",
        "        df = px.DataFrame(table='http_events')",
        "      audio: { codec: ulaw }",
        "",
      ].join("\n"),
    );
    const r = await cli(["analyze", "--config", path, "x.jsonl"], { PIXIE_API_KEY: "px-secret-123456" });
    equal(r.code, 2, r.stderr);
    match(r.stderr, /bad\.yaml:3:3: pixie\.encryptoin: .*did you mean "encryption"/);
    match(r.stderr, /bad\.yaml:9:\d+: measurements\[0\]\.signature_rules\.audio\.codec: expected one of/);
    ok(!r.stderr.includes("px-secret-123456"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: schema writes a JSON Schema for editors", async () => {
  const r = await cli(["schema", "--out", "-"]);
  equal(r.code, 0, r.stderr);
  const schema = JSON.parse(r.stdout);
  equal(schema.type, "object");
  ok("measurements" in schema.properties);
});

Deno.test("cli: analyze on a missing capture is a runtime failure (exit 1) with a clear message", async () => {
  const r = await cli(["analyze", "--config", "fixtures/e2e/config.yaml", "/nonexistent/node.jsonl"]);
  equal(r.code, 1);
  match(r.stderr, /cannot read capture \/nonexistent\/node\.jsonl/);
});
