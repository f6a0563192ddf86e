/**
 * A key written at the wrong level is an unknown key whose error says where it belongs (the fix), not only which
 * keys the level allows. Before, `audio_criteria` one level too high was "expected one of the keys
 * name|ttl_seconds|signature_rules|match_rules|metadata_extraction, found unknown key "audio_criteria"", with no
 * hint, and `listen:` at the top level did not point to `metrics`.
 */
import { equal, match } from "node:assert/strict";
import { configErrorOf } from "./support/config_errors.ts";

const MEASUREMENT = [
  "measurements:",
  "  - name: m",
  "    signature_rules:",
  "      stream_filter: |",
  "        df = px.DataFrame(table='http_events', start_time='-30s')",
  "",
].join("\n");

Deno.test("a key one level too high names the mapping it belongs under, at the key's position", () => {
  const e = configErrorOf(
    "node: n1\n" + MEASUREMENT + "    audio_criteria:\n      min_duration_ms: 500\n",
  );
  equal(e.issues.length, 1, e.format());
  match(
    e.format(),
    /^c\.yaml:7:5: measurements\[0\]\.audio_criteria: expected one of the keys .*\(audio_criteria belongs under measurements\[0\]\.signature_rules\)$/,
  );
});

Deno.test("a section's key at the top level, and a key too deep, name where they go", () => {
  const top = configErrorOf("node: n1\nlisten: 0.0.0.0:9464\ninterface: any\n" + MEASUREMENT);
  match(top.format(), /c\.yaml:2:1: listen: .*\(listen belongs under metrics\)/);
  match(top.format(), /c\.yaml:3:1: interface: .*\(interface belongs under packets\)/);
  const deep = configErrorOf("node: n1\nnats:\n  tls:\n    password: x\n" + MEASUREMENT);
  match(deep.format(), /c\.yaml:4:5: nats\.tls\.password: .*\(password belongs under nats\)/);
});

Deno.test("a key that fits several places names the nearest ones; a list item's index is kept where known", () => {
  const e = configErrorOf(
    "node: n1\n" + MEASUREMENT.replace("    signature_rules:", "    stream_key: [pod]\n    signature_rules:"),
  );
  match(
    e.format(),
    /measurements\[0\]\.stream_key: .*\(stream_key belongs under measurements\[0\]\.signature_rules or measurements\[0\]\.match_rules\[…\]\)/,
  );
  const stage = configErrorOf(
    "node: n1\n" + MEASUREMENT.replace("      stream_filter:", "      stage: relay\n      stream_filter:"),
  );
  match(stage.format(), /\(stage belongs under measurements\[0\]\.match_rules\[…\]\)/);
});

Deno.test("a misspelt key keeps its did-you-mean, and a key the config has nowhere gets no placement", () => {
  const typo = configErrorOf("node: n1\nmetrics:\n  lisen: 0.0.0.0:1\n" + MEASUREMENT);
  match(typo.format(), /\(did you mean "listen"\?\)$/);
  const none = configErrorOf("node: n1\nmetrics:\n  zzz_qqq: 1\n" + MEASUREMENT);
  match(none.format(), /found unknown key "zzz_qqq"$/);
});
