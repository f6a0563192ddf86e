import { deepEqual, equal, ok } from "node:assert/strict";
import {
  compileJsonPath,
  detectPixieMarker,
  type EnvelopeFormat,
  extractAudioField,
  jsonPathValue,
  PayloadEnvelope,
  regexGroupCount,
  walkJsonPath,
} from "../audio/decode/payload.ts";

const enc = new TextEncoder();
const json = (path: string): EnvelopeFormat => ({ envelope: "json", path, skip_bytes: 0 });

Deno.test("Pixie markers are recognised from the bytes at the ends", () => {
  equal(detectPixieMarker(enc.encode('{"media":{"payload":"AAAA... [TRUNCATED]')), "truncated");
  equal(detectPixieMarker(enc.encode("... [TRUNCATED]")), "truncated");
  equal(detectPixieMarker(enc.encode("<removed: unsupported content>")), "removed");
  equal(detectPixieMarker(enc.encode("<removed:>")), "removed");
  const binaryHead = new Uint8Array([0xff, 0x00, 0x80, ...enc.encode("... [TRUNCATED]")]);
  equal(detectPixieMarker(binaryHead), "truncated");
  for (
    const plain of ['{"a":"... [TRUNCATED]"}', "<removed: x", "removed: x>", "<b>hi</b>", "", "[TRUNCATED]"]
  ) {
    equal(detectPixieMarker(enc.encode(plain)), undefined, plain);
  }
});

Deno.test("json envelope: dotted paths, $. prefix, array indices", () => {
  const p = enc.encode(
    '{"event":"media","media":{"track":"inbound","payload":"AQID"},"list":[{"b":"x"},{"b":"y"}]}',
  );
  deepEqual(extractAudioField(p, json("media.payload")), { ok: true, data: "AQID", overhead: p.length - 4 });
  deepEqual(extractAudioField(p, json("$.media.payload")), {
    ok: true,
    data: "AQID",
    overhead: p.length - 4,
  });
  deepEqual(extractAudioField(p, json("list.1.b")), { ok: true, data: "y", overhead: p.length - 1 });
  const top = enc.encode('"AQID"');
  deepEqual(extractAudioField(top, json("$")), { ok: true, data: "AQID", overhead: 2 });
});

Deno.test("json envelope: failure reasons", () => {
  const p = enc.encode('{"media":{"payload":12,"obj":{},"nil":null},"list":[1]}');
  deepEqual(extractAudioField(p, json("media.missing")), { ok: false, reason: "missing_path" });
  deepEqual(extractAudioField(p, json("media.payload.deeper")), { ok: false, reason: "missing_path" });
  deepEqual(extractAudioField(p, json("list.1")), { ok: false, reason: "missing_path" });
  deepEqual(extractAudioField(p, json("list.x")), { ok: false, reason: "missing_path" });
  deepEqual(extractAudioField(p, json("media.payload")), { ok: false, reason: "not_a_string" });
  deepEqual(extractAudioField(p, json("media.obj")), { ok: false, reason: "not_a_string" });
  deepEqual(extractAudioField(p, json("media.nil")), { ok: false, reason: "not_a_string" });
  for (
    const bad of [
      '{"media":{"payload":"AQID"}',
      '{"media":',
      "not json",
      "",
      '{"a":1}}',
      '{"a":tru}',
      "\xff\xfe",
    ]
  ) {
    deepEqual(
      extractAudioField(enc.encode(bad), json("media.payload")),
      { ok: false, reason: "bad_json" },
      bad,
    );
  }
});

Deno.test("json envelope: escapes, duplicate keys, whitespace and unicode behave as in JSON.parse", () => {
  const cases: [string, string, unknown][] = [
    ['{"p":"AQ\\/D"}', "p", "AQ/D"],
    ['{"p":"a\\"b"}', "p", 'a"b'],
    ['{"p":"a\\\\"}', "p", "a\\"],
    ['{"p\\u0061":"v"}', "pa", "v"],
    ['{"p":"first","p":"second"}', "p", "second"],
    ['{"m":{"p":"x"},"m":{"q":"y"}}', "m.p", undefined],
    ['{"m":{"q":"y"},"m":{"p":"x"}}', "m.p", "x"],
    [' \n{ "m" : { "p" : "spaced" } }\n ', "m.p", "spaced"],
    ['{"é":"ü","p":"\u00e9\u2603"}', "p", "\u00e9\u2603"],
    ['{"a":[1,-2.5e3,true,false,null,{"p":"deep"}]}', "a.5.p", "deep"],
    ['{"0":"key zero"}', "0", "key zero"],
  ];
  for (const [text, path, want] of cases) {
    equal(jsonPathValue(enc.encode(text), path), want, text);
    equal(walkJsonPath(JSON.parse(text), compileJsonPath(path)), want, text);
  }
});

Deno.test("PayloadEnvelope: the field scan does not parse; a parse, once made, is reused", () => {
  const env = new PayloadEnvelope(enc.encode('{"streamSid":"MZ1","media":{"payload":"AQID"}}'));
  deepEqual(extractAudioField(env, json("media.payload")), {
    ok: true,
    data: "AQID",
    overhead: env.bytes.length - 4,
  });
  equal(jsonPathValue(env, "$.streamSid"), "MZ1");
  equal(env.parsed, false);
  const parsed = env.json();
  ok(parsed.ok);
  equal(env.parsed, true);
  const again = env.json();
  ok(again.ok && again.value === parsed.value);
  deepEqual(extractAudioField(env, json("media.payload")), {
    ok: true,
    data: "AQID",
    overhead: env.bytes.length - 4,
  });
  equal(jsonPathValue(env, "$.streamSid"), "MZ1");
});

Deno.test("regex envelope: group 1 of the latin1 text", () => {
  const fmt: EnvelopeFormat = { envelope: "regex", path: "audio=([0-9a-f]+)", skip_bytes: 0 };
  const p = enc.encode("id=7&audio=00ff10&x=1");
  deepEqual(extractAudioField(p, fmt), { ok: true, data: "00ff10", overhead: p.length - 6 });
  deepEqual(extractAudioField(enc.encode("id=7"), fmt), { ok: false, reason: "no_regex_match" });
  // Every byte is one character, 0x80-0x9F included, so a binary group keeps the exact bytes.
  const bin: EnvelopeFormat = { envelope: "regex", path: "^HDR(.*)$", skip_bytes: 0 };
  const bytes = new Uint8Array([0x48, 0x44, 0x52, 0x80, 0x9f, 0xff, 0x00]);
  const r = extractAudioField(bytes, bin);
  ok(r.ok && typeof r.data === "string");
  deepEqual(Array.from(r.data as string, (c) => c.charCodeAt(0)), [0x80, 0x9f, 0xff, 0x00]);
  const optional: EnvelopeFormat = { envelope: "regex", path: "a(b)?", skip_bytes: 0 };
  deepEqual(extractAudioField(enc.encode("a"), optional), { ok: false, reason: "no_regex_match" });
});

Deno.test("raw envelope: bytes after the header", () => {
  const fmt: EnvelopeFormat = { envelope: "raw", path: "", skip_bytes: 2 };
  const r = extractAudioField(new Uint8Array([9, 9, 1, 2, 3]), fmt);
  ok(r.ok);
  deepEqual(Array.from(r.data as Uint8Array), [1, 2, 3]);
  equal(r.overhead, 2);
  const empty = extractAudioField(new Uint8Array([9, 9]), fmt);
  ok(empty.ok && (empty.data as Uint8Array).length === 0);
  deepEqual(extractAudioField(new Uint8Array([9]), fmt), { ok: false, reason: "short_payload" });
});

Deno.test("regexGroupCount and compileJsonPath", () => {
  equal(regexGroupCount("a(b)(c)"), 2);
  equal(regexGroupCount("(?:x)"), 0);
  equal(regexGroupCount("(unclosed"), undefined);
  deepEqual(compileJsonPath("$.a.b"), ["a", "b"]);
  deepEqual(compileJsonPath("a.0.b"), ["a", "0", "b"]);
  deepEqual(compileJsonPath("$"), []);
});
