import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { ConfigError } from "../config/errors.ts";
import { parseConfigText } from "../config/load.ts";

const Q = "\n        stream_filter: |\n          df = px.DataFrame(table='http_events')\n";

/** A config with one measurement whose match rules are `stage[:after]` items. */
function config(rules: string[]): string {
  return `measurements:
  - name: m
    signature_rules:
      stream_filter: |
        df = px.DataFrame(table='http_events')
    match_rules:
${
    rules.map((r) => {
      const [stage, after] = r.split(":");
      return `      - stage: ${stage}${after !== undefined ? `\n        after: ${after}` : ""}${Q}`;
    }).join("")
  }`;
}

function errors(text: string): string[] {
  let lines: string[] = [];
  throws(() => parseConfigText(text, "c.yaml", {}), (e: unknown) => {
    ok(e instanceof ConfigError, String(e));
    lines = e.format().split("\n");
    return true;
  });
  return lines;
}

Deno.test("match_rules[].after: defaults to source, keeps what is given", () => {
  const c = parseConfigText(config(["relay", "asr:relay"]), "c.yaml", {}).config;
  deepEqual(c.measurements[0]!.match_rules.map((r) => [r.stage, r.after]), [["relay", "source"], [
    "asr",
    "relay",
  ]]);
});

Deno.test("match_rules[].after: the derived default rule comes after the source", () => {
  const text = `measurements:
  - name: m
    signature_rules:
      stream_filter: |
        df = px.DataFrame(table='http_events')
`;
  const c = parseConfigText(text, "c.yaml", {}).config;
  equal(c.measurements[0]!.match_rules[0]!.after, "source");
});

Deno.test("match_rules[].after: unknown stage, itself and cycles are errors at file:line:col", () => {
  deepEqual(errors(config(["relay:asr", "asr:relay", "tts:rely", "x:x"])), [
    'c.yaml:8:16: measurements[0].match_rules[0].after: expected a path of stages that leads back to source, found a cycle: "relay" after "asr" after "relay"',
    'c.yaml:12:16: measurements[0].match_rules[1].after: expected a path of stages that leads back to source, found a cycle: "asr" after "relay" after "asr"',
    'c.yaml:16:16: measurements[0].match_rules[2].after: expected a stage of this measurement or source (source|relay|asr|x), found "rely" (did you mean "relay"?)',
    'c.yaml:20:16: measurements[0].match_rules[3].after: expected the stage before this one (source|relay|asr|tts), found "x", this stage itself',
  ]);
});

Deno.test("match_rules[].after: a stage of another measurement is not a stage of this one", () => {
  const text = config(["relay"]) + `  - name: n
    signature_rules:
      stream_filter: |
        df = px.DataFrame(table='http_events')
    match_rules:
      - stage: asr
        after: relay${Q}`;
  const lines = errors(text);
  equal(lines.length, 1);
  ok(
    lines[0]!.includes(
      "measurements[1].match_rules[0].after: expected a stage of this measurement or source",
    ),
  );
});
