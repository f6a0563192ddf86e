/**
 * Secrets never reach an output channel, end to end with real parts on loopback: the CLI as a subprocess (`run`,
 * `check`, `discover`, `record`, `replay`, `ui`), a real nats-server requiring a user and password, the fake
 * Vizier requiring an API key (and echoing a wrong one in its error), and an OTLP receiver that refuses every
 * export with a body echoing the `Authorization` header and URL. Every channel is searched for each secret, raw,
 * percent-encoded and base64 (the Basic auth of `user:password`): stdout, stderr, `/metrics`, `/healthz`,
 * `/readyz`, the UI's `/api/*`, `replay`'s records and `record`'s capture file.
 *
 * Secrets shorter than 4 characters are not masked (util/log.ts registerSecret; README, Reliability); they are
 * not used here.
 */
import { equal, match, ok } from "node:assert/strict";
import { ROOT } from "./support/sensor_process.ts";

/** Distinctive values: regex specials, characters URLs and base64 change, a `%` escape in a URL. */
const NATS_PASSWORD = "S27nats.*+?[pw]{2}|(x)^$";
const OTLP_PASSWORD_IN_URL = "S27otlp%2Fpw%40x"; // decodes to S27otlp/pw@x
const OTLP_PASSWORD = decodeURIComponent(OTLP_PASSWORD_IN_URL);
const OTLP_BEARER = "S27bearerQWERTYzxcv";
const PIXIE_KEY = "S27pixie-key.+(k)";
const HEADER_TOKEN = "S27hdrTokenPLMOKN";

/** A secret in every form a channel could carry it. */
function forms(secret: string): string[] {
  return [secret, encodeURIComponent(secret), btoa(secret)];
}

const ALL_FORMS = [
  ...forms(NATS_PASSWORD),
  btoa(`fsm:${NATS_PASSWORD}`),
  OTLP_PASSWORD_IN_URL,
  ...forms(OTLP_PASSWORD),
  btoa(`otlpuser:${OTLP_PASSWORD}`),
  ...forms(OTLP_BEARER),
  ...forms(PIXIE_KEY),
  ...forms(HEADER_TOKEN),
  "98765432101234",
];

/** Fails naming the channel and the lines that carry a secret. */
function assertClean(channel: string, text: string): void {
  const found = ALL_FORMS.filter((s) => text.includes(s));
  ok(
    found.length === 0,
    `${channel} carries ${JSON.stringify(found)}:\n` +
      text.split("\n").filter((l) => found.some((s) => l.includes(s))).join("\n"),
  );
}

interface Ran {
  code: number;
  out: string;
}

/** `main.ts <args>` with `env` added, stdout and stderr together; SIGTERM after `ms`. */
async function cli(args: string[], env: Record<string, string> = {}, ms = 60_000): Promise<Ran> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "main.ts", ...args],
    cwd: ROOT,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGTERM");
    } catch {
      // ended
    }
  }, ms);
  const o = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return { code: o.code, out: dec.decode(o.stdout) + dec.decode(o.stderr) };
}

Deno.test("check: otlp.headers values are never quoted in a config error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fsmpx-s27-secrets-" });
  try {
    const cases: [string, string][] = [
      // The headers written as one string (an easy slip): the whole string was quoted, token and all.
      ["string", `  headers: "Authorization: Bearer ${HEADER_TOKEN}"\n`],
      ["string from env", `  headers: "\${FSMPX_OTLP_HEADER}"\n`],
      // A key of digits is a YAML number, not a string: it was quoted as found.
      ["number", `  headers:\n    X-Api-Key: 98765432101234\n`],
    ];
    for (const [name, headers] of cases) {
      const config = `${dir}/${name.replaceAll(" ", "_")}.yaml`;
      await Deno.writeTextFile(
        config,
        `node: n\notlp:\n  endpoint: http://127.0.0.1:4318\n${headers}` +
          `measurements:\n  - name: calls\n    signature_rules:\n      stream_filter: |\n` +
          `        df = px.DataFrame(table='http_events', start_time='-30s')\n`,
      );
      const r = await cli(["check", "--config", config], {
        FSMPX_OTLP_HEADER: `Authorization: Bearer ${HEADER_TOKEN}`,
      });
      equal(r.code, 2, `${name}: ${r.out}`);
      match(r.out, /otlp\.headers/, name);
      assertClean(`check (${name})`, r.out);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
