/**
 * Review 27 of config/: settings the loader accepted that then failed or misbehaved at run time, and errors that
 * showed what they should hide.
 */
import { equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { parseConfigText } from "../config/load.ts";
import { RUN_TASK_VARIABLES } from "../config/interpolate.ts";
import { denoTasks, taskAllowsEnv } from "./support/deno_tasks.ts";
import { ROOT } from "./support/sensor_process.ts";
import { configErrorOf } from "./support/config_errors.ts";

const BASE = [
  "node: n1",
  "measurements:",
  "  - name: m",
  "    signature_rules:",
  "      stream_filter: |",
  "        df = px.DataFrame(table='http_events', start_time='-30s')",
  "",
].join("\n");

const errorOf = configErrorOf;

Deno.test("nats.url over WebSocket (ws://, wss://) is a config error at its position, not a start-up failure", () => {
  // The NATS client (transport-node) refuses WebSocket servers when it connects: `run` and `replay` exited 1 with
  // "node client doesn't support websockets, use the 'wsconnect' function instead".
  for (const url of ["ws://nats:8080", "nats://a:4222,wss://b:443"]) {
    const e = errorOf(BASE + `nats:\n  url: "${url}"\n`);
    equal(e.issues.length, 1, e.format());
    match(
      e.format(),
      /^c\.yaml:8:8: nats\.url: expected nats:\/\/host:port .*\(NATS over WebSocket is not supported/,
    );
  }
  // A password in such a URL stays hidden.
  const secret = errorOf(BASE + "nats:\n  url: ${NATS_URL}\n", { NATS_URL: "wss://u:Secr3tPw@nats:443" });
  ok(!secret.format().includes("Secr3tPw"), secret.format());
  // nats:// and tls:// still load.
  const loaded = parseConfigText(BASE + 'nats:\n  url: "nats://a:4222, tls://b:4222"\n', "c.yaml", {});
  equal(loaded.config.nats.url, "nats://a:4222, tls://b:4222");
});

Deno.test("otlp.endpoint that is no URL is a config error, and a password in it is never shown", () => {
  // Both loaded before; every export then failed with "Invalid URL: '<endpoint>/v1/traces'", logged with the
  // password (a `/` in it ends the host part, so the exporter could not take it out).
  for (const endpoint of ["https://tempo:Secr3t/Pw@tempo:4318", "http://tempo:99999"]) {
    const e = errorOf(BASE + `otlp:\n  endpoint: "${endpoint}"\n`);
    equal(e.issues.length, 1, e.format());
    match(e.format(), /^c\.yaml:8:13: otlp\.endpoint: expected an http\(s\) URL such as http:\/\/tempo:4318/);
    ok(!e.format().includes("Secr3t"), e.format());
  }
  match(
    errorOf(BASE + 'otlp:\n  endpoint: "https://u:a/b@tempo:4318"\n').format(),
    /write \/ @ : as %2F %40 %3A/,
  );
  // No scheme: an error as before, now without the password in it.
  const bare = errorOf(BASE + "otlp:\n  endpoint: tempo-user:Secr3tPw@tempo:4318\n");
  ok(!bare.format().includes("Secr3t"), bare.format());
  match(bare.format(), /otlp\.endpoint: expected an http\(s\) URL .*found <secret>/);
  // Percent-encoded, the same password loads.
  const loaded = parseConfigText(
    BASE + 'otlp:\n  endpoint: "https://tempo:Secr3t%2FPw@tempo:4318"\n',
    "c.yaml",
    {},
  );
  equal(loaded.config.otlp.endpoint, "https://tempo:Secr3t%2FPw@tempo:4318");
});

Deno.test("otlp.headers fetch would refuse are config errors that describe the value without showing it", () => {
  // They loaded; every export then failed, logged with fetch's message, which quotes the value: a token often.
  const e = errorOf(
    BASE + "otlp:\n  endpoint: http://tempo:4318\n  headers:\n" +
      '    "X Tenant": t1\n    Authorization: ${AUTH}\n    X-Scope-OrgID: "équipe-€"\n',
    { AUTH: "Bearer Secr3t\nToken" },
  );
  const lines = e.format().split("\n");
  equal(lines.length, 3, e.format());
  match(lines[0]!, /^c\.yaml:10:17: otlp\.headers\["X Tenant"\]: expected a header name .*found "X Tenant"/);
  match(
    lines[1]!,
    /^c\.yaml:11:20: otlp\.headers\.Authorization: expected a header value on one line, .*a line break/,
  );
  match(lines[2]!, /^c\.yaml:12:20: otlp\.headers\.X-Scope-OrgID: .*found a value holding U\+20AC/);
  ok(!e.format().includes("Secr3t"), e.format());
  // What the loader accepts, fetch accepts: the same values as Headers takes them, ends trimmed.
  const values = ["Bearer ok\n", " t1 ", "équipe", "a\tb", "a\u0000b", "a\rb", "x\u2028", "\u2028x"];
  for (const value of values) {
    let fetchTakes = true;
    try {
      new Headers([["x-h", value]]);
    } catch {
      fetchTakes = false;
    }
    let loads = true;
    try {
      parseConfigText(BASE + "otlp:\n  headers:\n    X-H: ${V}\n", "c.yaml", { V: value });
    } catch {
      loads = false;
    }
    equal(loads, fetchTakes, JSON.stringify(value));
  }
});

/** The run task's `--allow-env` flag as deno.json writes it. */
async function runTaskEnvFlag(): Promise<string> {
  const flag = /--allow-env=\S+/.exec((await denoTasks()).run ?? "")?.[0];
  ok(flag, "the run task names the variables it reads");
  return flag;
}

Deno.test("a ${VAR} the task may not read is named as such, not as unset, with the names deno task run reads", async () => {
  // Under --ignore-env and an --allow-env list (every deno task) a variable outside the list reads as unset: the
  // error said "found it unset" of a variable that was set (the README's own ${TEMPO_TENANT} did this).
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "c.yaml");
    await Deno.writeTextFile(
      file,
      BASE + 'otlp:\n  endpoint: http://tempo:4318\n  headers: { X-Scope-OrgID: "${TEMPO_TENANT}" }\n',
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--ignore-env",
        await runTaskEnvFlag(),
        "--allow-read",
        ROOT + "/main.ts",
        "check",
        "-c",
        file,
      ],
      env: { TEMPO_TENANT: "team-a" },
      stdout: "null",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stderr);
    equal(out.code, 2, text);
    match(
      text,
      /c\.yaml:9:30: otlp\.headers\.X-Scope-OrgID: expected environment variable TEMPO_TENANT to be set, found it unreadable here .*rename it, e\.g\. FSMPX_TEMPO_TENANT/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("every ${VAR} the README and example-config suggest is one deno task run can read", async () => {
  const run = (await denoTasks()).run ?? "";
  for (const doc of ["README.md", "example-config.yaml"]) {
    const text = await Deno.readTextFile(join(ROOT, doc));
    const vars = [...text.matchAll(/(?<!\$)\$\{([A-Za-z_]\w*)(?::-[^}]*)?\}/g)].map((m) => m[1]!);
    ok(vars.length > 0, doc);
    // Placeholders of the syntax (${VAR}, ${NAME:-default}, ${A:-${B}}) name no variable.
    const unreadable = vars.filter((v) => !taskAllowsEnv(run, v) && !/^(?:VAR|NAME|[A-Z])$/.test(v));
    equal(unreadable.join(", "), "", `${doc}: variables deno task run cannot read: ${unreadable.join(", ")}`);
  }
  // The loader's list of what the run task reads is deno.json's.
  for (
    const v of ["NODE_NAME", "HOSTNAME", "PIXIE_API_KEY", "NATS_PASSWORD", "FSMPX_X", "TEMPO_TENANT", "HOME"]
  ) {
    equal(RUN_TASK_VARIABLES.test(v), taskAllowsEnv(run, v), v);
  }
});

Deno.test("pixie.scope: pods with pixie.direct_addr is a config error at load (check said OK, run refused it)", () => {
  const e = errorOf(BASE + "pixie:\n  direct_addr: 127.0.0.1:12345\n  scope: pods\n");
  equal(e.issues.length, 1, e.format());
  match(e.format(), /^c\.yaml:9:10: pixie\.scope: expected node with pixie\.direct_addr .*found pods/);
  // Either alone loads.
  parseConfigText(BASE + "pixie:\n  direct_addr: 127.0.0.1:12345\n", "c.yaml", {});
  parseConfigText(BASE + "pixie:\n  scope: pods\n", "c.yaml", {});
});
