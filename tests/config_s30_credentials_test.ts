/**
 * A credential with a line break (a Kubernetes Secret made from a file keeps the file's last newline) is a config
 * error at its position, naming its variable and the fix, never its value. Before, it loaded: with
 * `PIXIE_API_KEY=$'px-api-…\n'` every Pixie query failed with 'Metadata string value "[redacted]" contains illegal
 * characters' (gRPC refuses the header; `record` blamed an unreachable Pixie, `run` stayed silent), and with
 * `NATS_PASSWORD=$'…\n'` a real nats-server refused the sensor ("Authorization Violation").
 */
import { equal, match, ok } from "node:assert/strict";
import { parseConfigText } from "../config/load.ts";
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

const KEY = "px-api-0123456789abcdefSECRET";

Deno.test("pixie.api_key from a variable ending in a line break: error at its position, variable named, value hidden", () => {
  const e = configErrorOf(BASE + "pixie:\n  api_key: ${PIXIE_API_KEY}\n", { PIXIE_API_KEY: KEY + "\n" });
  equal(e.issues.length, 1, e.format());
  match(
    e.format(),
    /^c\.yaml:8:12: pixie\.api_key: expected a Pixie API key without line breaks .*found <from \$PIXIE_API_KEY> \(it has a line break at its end, which gRPC refuses.*--from-literal/,
  );
  ok(!e.format().includes("SECRET"), e.format());
});

Deno.test("nats.password, token and user with a line break, tab or CR are refused with where it is", () => {
  const cases: [string, string, RegExp][] = [
    [
      "password",
      "s3cretPassw0rd\n",
      /nats\.password: .*<from \$NATS_PASSWORD> \(it has a line break at its end/,
    ],
    ["token", "\ts3cretT0ken", /nats\.token: .*<from \$NATS_TOKEN> \(it has a tab at its start/],
    ["user", "fsm\r\nx", /nats\.user: .*found "fsm\\r"… \(it has a line break inside it/],
  ];
  for (const [key, value, expected] of cases) {
    const variable = `NATS_${key.toUpperCase()}`;
    const e = configErrorOf(BASE + `nats:\n  ${key}: \${${variable}}\n`, { [variable]: value });
    equal(e.issues.length, 1, e.format());
    match(e.format(), expected);
    ok(!/s3cret/.test(e.format()), e.format());
  }
});

Deno.test("credentials without control characters load as they are (spaces and symbols included)", () => {
  const loaded = parseConfigText(
    BASE + "pixie:\n  api_key: ${PIXIE_API_KEY}\nnats:\n  user: fsm\n  password: ${NATS_PASSWORD}\n",
    "c.yaml",
    { PIXIE_API_KEY: KEY, NATS_PASSWORD: 'p@ss w"rd\\+/=' },
  );
  equal(loaded.config.pixie.api_key, KEY);
  equal(loaded.config.nats.password, 'p@ss w"rd\\+/=');
});
