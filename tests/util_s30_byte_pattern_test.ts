/**
 * A user pattern with a non-ASCII character never matched (session 30's detector review): patterns run on a
 * message read as latin1, one character per byte, where `é` is two characters, so `"clé":"([^"]+)"` found nothing
 * in `{"clé":"abc"}` and nothing said why. Such a character outside a class is now matched as its UTF-8 bytes; one
 * inside a class, which cannot be one member of it, is a config error naming the fix.
 */
import { deepEqual, equal, match } from "node:assert/strict";
import { compileIdPatterns, extractIds } from "../audio/decode/context_ids.ts";
import { compileEnvelopeRegex, PayloadEnvelope } from "../audio/decode/payload.ts";
import { asBytePattern } from "../util/linear_regex.ts";
import { configErrorOf } from "./support/config_errors.ts";

const utf8 = new TextEncoder();
const latin1 = (s: string) => String.fromCharCode(...utf8.encode(s));

Deno.test("byte patterns: a non-ASCII key or value in an id pattern matches, in both engines", () => {
  const patterns = compileIdPatterns([
    { pattern: '"clé":"([^"]+)"', id_type: "cle" }, // the scan engine's shape
    { pattern: "(😀+) ici", id_type: "emoji" }, // re2js, a quantifier on a four-byte character
    { pattern: "durée=(\\d+)", id_type: "duree" },
  ]);
  const body = utf8.encode('{"clé":"Zoë","x":"😀😀 ici","n":"durée=42"}');
  deepEqual(extractIds(new PayloadEnvelope(body), patterns), { cle: "Zoë", emoji: "😀😀", duree: "42" });
  equal(compileEnvelopeRegex('"données":"([^"]+)"').capture(latin1('{"données":"AAAA"}')), "AAAA");
  equal(asBytePattern("a(b)c"), "a(b)c", "an ASCII pattern is left as written");
  equal(asBytePattern("\\é"), latin1("é"), "an escaped one means itself");
});

Deno.test("byte patterns: a non-ASCII character inside [ ] is a config error at the pattern, with the fix", () => {
  const e = configErrorOf(
    [
      "node: n1",
      "measurements:",
      "  - name: m",
      "    signature_rules:",
      "      stream_filter: |",
      "        df = px.DataFrame(table='http_events', start_time='-30s')",
      "    metadata_extraction:",
      "      id_patterns:",
      "        - pattern: 'caller=([éa-z]+)'",
      "          id_type: caller",
      "",
    ].join("\n"),
  );
  match(e.message, /c\.yaml:9:\d+/);
  match(e.message, /inside \[ \].*outside the class/);
});
