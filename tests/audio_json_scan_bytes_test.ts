import { deepEqual, equal, ok } from "node:assert/strict";
import {
  type EnvelopeFormat,
  extractAudioField,
  extractAudioFieldView,
  fieldAsText,
  jsonPathValue,
  PayloadEnvelope,
  walkJsonPath,
} from "../audio/decode/payload.ts";
import {
  bytePath,
  BYTES_BAD,
  BYTES_MISSING,
  disableSpecialKernel,
  hitValue,
  scanCounts,
  scanJsonPathBytes,
  scanJsonPathsBytes,
} from "../audio/decode/json_scan_bytes.ts";
import { decodeField } from "../audio/decode/encoding.ts";
import { StreamDecoder } from "../audio/decode/stream_decoder.ts";
import { rng } from "./support/rng.ts";

const enc = new TextEncoder();
/** The envelope's own view of a body: UTF-8, a leading byte-order mark dropped. */
const bodyText = new TextDecoder("utf-8");

function pick<T>(r: () => number, items: readonly T[]): T {
  return items[Math.floor(r() * items.length)]!;
}

/** Containers around the deepest value: beyond the scanner's 128 it may leave a body to JSON.parse. */
function nesting(v: unknown): number {
  if (Array.isArray(v)) return 1 + Math.max(0, ...v.map(nesting));
  if (v !== null && typeof v === "object") return 1 + Math.max(0, ...Object.values(v).map(nesting));
  return 0;
}

const BOM = [0xef, 0xbb, 0xbf];
const hasBom = (b: Uint8Array) => b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf;

/**
 * The scanner against JSON.parse + path lookup on one body and path, then the payload functions (which add the
 * fallback) against the same oracle. Returns what the scanner said.
 */
function check(bytes: Uint8Array, segs: readonly string[]): "hit" | "missing" | "bad" {
  const label = `${JSON.stringify(bodyText.decode(bytes).slice(0, 300))} @ ${JSON.stringify(segs)}`;
  let parses = true;
  let root: unknown;
  try {
    root = JSON.parse(bodyText.decode(bytes));
  } catch {
    parses = false;
  }
  const want = parses ? walkJsonPath(root, segs) : undefined;
  const got = scanJsonPathBytes(bytes, bytePath(segs));
  let said: "hit" | "missing" | "bad";
  if (got === BYTES_BAD) {
    said = "bad";
    ok(!parses || hasBom(bytes) || nesting(root) > 120, `scanner gave up on JSON that parses: ${label}`);
  } else {
    ok(parses, `scanner accepted what JSON.parse refuses: ${label}`);
    if (got === BYTES_MISSING) {
      said = "missing";
      equal(want, undefined, `scanner found nothing where JSON.parse finds a value: ${label}`);
    } else {
      said = "hit";
      ok(want !== undefined, `scanner found a value where JSON.parse finds none: ${label}`);
      deepEqual(hitValue(bytes, got), want, label);
    }
  }
  // Paths the dotted form cannot spell are for the scanner alone.
  if (segs.some((s) => s === "" || s.includes(".")) || segs[0] === "$") return said;
  const path = segs.length ? segs.join(".") : "$";
  deepEqual(jsonPathValue(new PayloadEnvelope(bytes), path), want, label);
  const fmt = { envelope: "json", path, skip_bytes: 0, encoding: "base64" } as const;
  const field = extractAudioField(new PayloadEnvelope(bytes), fmt);
  if (!parses) deepEqual(field, { ok: false, reason: "bad_json" }, label);
  else if (want === undefined) deepEqual(field, { ok: false, reason: "missing_path" }, label);
  else if (typeof want !== "string") deepEqual(field, { ok: false, reason: "not_a_string" }, label);
  else deepEqual(field, { ok: true, data: want, overhead: Math.max(0, bytes.length - want.length) }, label);
  const view = extractAudioFieldView(new PayloadEnvelope(bytes), fmt);
  if (view.ok && field.ok) {
    // A view's bytes are the field's UTF-8: the same text, and the same audio (or the same failure).
    equal(fieldAsText(view.data, "json"), field.data, label);
    deepEqual(decodeField(view.data, "base64"), decodeField(field.data, "base64"), label);
  } else deepEqual(view, field, label);
  return said;
}

// Random documents, written as text so that they can hold what JSON.stringify never writes: duplicate keys,
// escapes of any character, every spelling of a number, whitespace anywhere.

const STRING_PIECES = [
  "a",
  "b",
  "0",
  " ",
  "{",
  "]",
  ",",
  ":",
  "\u00e9",
  "\u2603",
  "\u{1f600}",
  "\ufeff",
  '\\"',
  "\\\\",
  "\\/",
  "\\n",
  "\\t",
  "\\b",
  "\\u0000",
  "\\u00e9",
  "\\u00E9",
  "\\ud83d\\ude00",
  "\\ud800",
  "\\u0061",
];
const KEYS = ["a", "b", "p", "media", "payload", "0", "1", "__proto__", "\u00e9", "k.y", ""];
const NUMBERS = [
  "0",
  "-0",
  "7",
  "-12",
  "3.25",
  "-0.5",
  "1e5",
  "2E-3",
  "-4.5e+2",
  "1e400",
  "123456789012345678901",
];
const SPACE = ["", "", "", " ", "\n", "\t", "\r\n  "];

function randomString(r: () => number): string {
  let s = '"';
  for (let i = Math.floor(r() * 5); i > 0; i--) s += pick(r, STRING_PIECES);
  return s + '"';
}

/** A key spelled plainly or with its characters escaped (the scanner then compares it decoded). */
function randomKey(r: () => number, earlier: string[]): string {
  const key = earlier.length && r() < 0.3 ? pick(r, earlier) : r() < 0.8 ? pick(r, KEYS) : "";
  if (r() < 0.15) {
    return '"' + [...key].map((c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0")).join("") + '"';
  }
  return key === "" && r() < 0.5 ? randomString(r) : JSON.stringify(key);
}

/** A random JSON text; every path in it (duplicates included) goes to `paths`. */
function randomJson(r: () => number, depth: number, path: string[], paths: string[][]): string {
  paths.push(path);
  const ws = () => pick(r, SPACE);
  const kind = depth > 3 ? Math.floor(r() * 3) : Math.floor(r() * 5);
  if (kind === 0) return pick(r, NUMBERS);
  if (kind === 1) return r() < 0.5 ? randomString(r) : pick(r, ["true", "false", "null"]);
  if (kind === 2) return randomString(r);
  if (kind === 3) {
    const items: string[] = [];
    for (let i = 0, n = Math.floor(r() * 4); i < n; i++) {
      items.push(ws() + randomJson(r, depth + 1, [...path, String(i)], paths) + ws());
    }
    return "[" + ws() + items.join(",") + "]";
  }
  const members: string[] = [];
  const keys: string[] = [];
  for (let i = 0, n = Math.floor(r() * 4); i < n; i++) {
    const keyText = randomKey(r, keys);
    const key = JSON.parse(keyText) as string;
    keys.push(key);
    members.push(ws() + keyText + ws() + ":" + ws() + randomJson(r, depth + 1, [...path, key], paths) + ws());
  }
  return "{" + ws() + members.join(",") + "}";
}

/** Paths that are not there: a step past a leaf, a key no document uses, an index past the end. */
function missingPaths(paths: string[][]): string[][] {
  const last = paths[paths.length - 1]!;
  return [[...last, "nope"], ["zz"], [...last, "9"]];
}

Deno.test("byte scanner agrees with JSON.parse on random documents: values, escapes, duplicates, numbers", () => {
  const r = rng(99);
  const said = { hit: 0, missing: 0, bad: 0 };
  let duplicates = 0;
  for (let doc = 0; doc < 1500; doc++) {
    const paths: string[][] = [];
    const text = pick(r, SPACE) + randomJson(r, 0, [], paths) + pick(r, SPACE);
    const seen = new Set<string>();
    for (const segs of [...paths, ...missingPaths(paths)]) {
      const key = JSON.stringify(segs);
      if (seen.has(key)) duplicates++;
      seen.add(key);
      said[check(enc.encode(text), segs)]++;
    }
  }
  // Valid documents are read by the scanner itself, not handed to JSON.parse; duplicate keys are exercised.
  equal(said.bad, 0);
  ok(said.hit > 3000 && said.missing > 3000, JSON.stringify(said));
  ok(duplicates > 100, `duplicate paths: ${duplicates}`);
});

/** Bytes that break or reshape a document: structure, escapes, number spelling, control and UTF-8 bytes. */
const NOISE = [
  0x22,
  0x5c,
  0x7b,
  0x7d,
  0x5b,
  0x5d,
  0x3a,
  0x2c,
  0x20,
  0x0a,
  0x00,
  0x1f,
  0x61,
  0x75,
  0x30,
  0x31,
];
const NOISE_MORE = [0x2d, 0x2b, 0x2e, 0x65, 0x45, 0xc3, 0xa9, 0xff, 0xef, 0xbb, 0xbf, 0x74, 0x6e];

function mutate(r: () => number, bytes: Uint8Array): Uint8Array {
  const out = [...bytes];
  for (let m = 1 + Math.floor(r() * 3); m > 0; m--) {
    const at = Math.floor(r() * (out.length + 1));
    const b = r() < 0.6 ? pick(r, NOISE) : pick(r, NOISE_MORE);
    const op = Math.floor(r() * 7);
    if (op <= 1) out.splice(at, 0, b);
    else if (op <= 3) out.splice(at, 1);
    else if (op <= 5) out[at] = b;
    else out.splice(0, 0, ...BOM);
  }
  return new Uint8Array(out);
}

Deno.test("byte scanner agrees with JSON.parse (or defers to it) on every mutation of random documents", () => {
  const r = rng(5);
  const said = { hit: 0, missing: 0, bad: 0 };
  const real = [
    '{"event":"media","media":{"track":"inbound","payload":"AQIDBA=="},"streamSid":"MZ1","seq":-12.5e2}',
    '{"data":"AQIDBAUG","k\u00e9y":"AQ","a":[{"b":"00ff"},[1,[2,{}]],true,null]}',
  ];
  for (let t = 0; t < 6000; t++) {
    let paths: string[][] = [["media", "payload"], ["data"], ["streamSid"], ["a", "0", "b"], ["seq"], []];
    let text = pick(r, real);
    if (r() < 0.7) {
      paths = [];
      text = randomJson(r, 0, [], paths);
    }
    const bytes = mutate(r, enc.encode(text));
    for (const segs of paths.slice(-8)) said[check(bytes, segs)]++;
  }
  // Both sides of the contract are exercised: refused bodies, and bodies the scanner reads itself.
  ok(said.bad > 5000 && said.hit > 1500 && said.missing > 700, JSON.stringify(said));
});

Deno.test("byte scanner: edge cases agree with JSON.parse", () => {
  const cases: [string | Uint8Array, string[]][] = [
    ['{"p":"first","p":"second"}', ["p"]],
    ['{"m":{"p":"x"},"m":{"q":"y"}}', ["m", "p"]],
    ['{"m":{"q":"y"},"m":{"p":"x"}}', ["m", "p"]],
    ['{"m":{"p":"x"},"m":5}', ["m", "p"]],
    ['{"m":[0,"a"],"m":["b"]}', ["m", "1"]],
    ['{"p\\u0061":"v"}', ["pa"]],
    ['{"p\\u0061":"v","pa":"w"}', ["pa"]],
    ['{"\\u00e9":"v"}', ["\u00e9"]],
    ['{"p":"\\ud800"}', ["p"]],
    ['{"p":"\ufeffAQ"}', ["p"]],
    ['\ufeff{"p":"AQ"}', ["p"]],
    ['{"0":"key zero","1":[]}', ["0"]],
    ['["a",["b",["c"]]]', ["1", "1", "0"]],
    ['["a"]', ["01"]],
    ['"AQID"', []],
    [" \n\t\r 5 \n", []],
    ['{"a":[1,-2.5e3,true,false,null,{"p":"deep"}]}', ["a", "5", "p"]],
    ['{"a":-0.0e-0}', ["a"]],
    ['{"__proto__":"x"}', ["__proto__"]],
    // JSON.parse refuses all of these; the scanner must not read a value out of them.
    ['{"a":01}', ["a"]],
    ['{"a":1.}', ["a"]],
    ['{"a":.5}', ["a"]],
    ['{"a":-}', ["a"]],
    ['{"a":1e}', ["a"]],
    ['{"a":+1}', ["a"]],
    ['{"a":0x1}', ["a"]],
    ['{"a":1,"p":"\\x"}', ["a"]],
    ['{"a":1,"p":"\\u12"}', ["a"]],
    ['{"a":1,"p":"\\u12g4"}', ["a"]],
    ['{"a":1,"p":"tab\there"}', ["a"]],
    ['{"a":1,"p":"nl\nhere"}', ["a"]],
    ['{"a":"b"', ["a"]],
    ['{"a" "b"}', ["a"]],
    ['{"a":"b",}', ["a"]],
    ['{"a":"b"}x', ["a"]],
    ['{a:"b"}', ["a"]],
    ['["a",]', ["0"]],
    ['["a" "b"]', ["0"]],
    ['{"a":[}', ["a"]],
    ['{"a":nul}', ["a"]],
    ['{"a":truex}', ["a"]],
    ['{"a":"\\"}', ["a"]],
    ["", []],
    ["   ", []],
    [new Uint8Array([...enc.encode('{"k'), 0xff, ...enc.encode('y":"AQID"}')]), ["k\ufffdy"]],
    [new Uint8Array([...enc.encode('{"p":"A'), 0xc3, ...enc.encode('Q"}')]), ["p"]],
    ['{"a":' + "[".repeat(3000) + '"x"' + "]".repeat(3000) + ',"p":"AQID"}', ["p"]],
  ];
  for (const [body, segs] of cases) check(typeof body === "string" ? enc.encode(body) : body, segs);
  // The scanner itself reads a duplicate key, an escaped key and a leading U+FEFF inside a string.
  for (
    const [body, segs, want] of [['{"p":"1","p":"2"}', ["p"], "2"], [
      '{"p\\u0061":"v"}',
      ["pa"],
      "v",
    ]] as const
  ) {
    const hit = scanJsonPathBytes(enc.encode(body), bytePath(segs));
    ok(hit !== BYTES_BAD && hit !== BYTES_MISSING);
    equal(hitValue(enc.encode(body), hit), want);
  }
  equal(jsonPathValue(enc.encode('{"p":"\ufeffAQ"}'), "p"), "\ufeffAQ");
  // Deep nesting and a byte-order mark are left to JSON.parse, which reads them.
  const deep = enc.encode('{"a":' + "[".repeat(3000) + '"x"' + "]".repeat(3000) + ',"p":"AQID"}');
  equal(scanJsonPathBytes(deep, bytePath(["p"])), BYTES_BAD);
  equal(jsonPathValue(deep, "p"), "AQID");
  equal(scanJsonPathBytes(enc.encode('\ufeff{"p":"AQ"}'), bytePath(["p"])), BYTES_BAD);
  equal(jsonPathValue(enc.encode('\ufeff{"p":"AQ"}'), "p"), "AQ");
});

Deno.test("byte scanner: long strings end, escape and refuse at every position and alignment", () => {
  // Past its first bytes a string is read a word at a time: each special byte at every position, every
  // alignment of the payload's view, and plain bytes around the special values that must not stop the read.
  const head = enc.encode('{"p":"');
  const tail = enc.encode('","q":1}');
  const variants: [number[], boolean][] = [
    [[0x00], true],
    [[0x09], true],
    [[0x1f], true],
    [[0x22], true], // ends the string early: what follows is not JSON
    [[0x5c], true], // an escape of "A" (or of the closing quote)
    [[0x5c, 0x6e], false],
    [[0x5c, 0x75, 0x30, 0x30, 0x65, 0x39], false],
    [[0x20], false],
    [[0x21], false],
    [[0x23], false],
    [[0x5b], false],
    [[0x5d], false],
    [[0x7f], false],
    [[0x80], false],
    [[0xa2], false],
    [[0xdc], false],
    [[0xff], false],
  ];
  const said = { hit: 0, missing: 0, bad: 0 };
  for (let shift = 0; shift < 4; shift++) {
    for (const len of [31, 36, 63, 64, 67, 80]) {
      for (let at = 0; at < len; at++) {
        for (const [bytes, refused] of variants) {
          if (at + bytes.length > len) continue;
          const field = new Uint8Array(len).fill(0x41);
          field.set(bytes, at);
          const buf = new Uint8Array(shift + head.length + len + tail.length);
          buf.set(head, shift);
          buf.set(field, shift + head.length);
          buf.set(tail, shift + head.length + len);
          const body = buf.subarray(shift);
          for (const segs of [["q"], ["p"]]) {
            const r = check(body, segs);
            said[r]++;
            equal(r === "bad", refused, `${JSON.stringify(bodyText.decode(body))} @ ${segs}`);
          }
        }
      }
    }
  }
  ok(said.hit > 10000 && said.bad > 5000, JSON.stringify(said));
});

Deno.test("byte scanner: a usual payload is read from its bytes, its text never decoded", () => {
  const env = new PayloadEnvelope(
    enc.encode('{"event":"media","media":{"payload":"AQIDBA=="},"streamSid":"MZ1"}'),
  );
  const fmt = { envelope: "json", path: "media.payload", skip_bytes: 0, encoding: "base64" } as const;
  const r = extractAudioFieldView(env, fmt);
  ok(r.ok && r.data instanceof Uint8Array);
  equal(new TextDecoder().decode(r.data as Uint8Array), "AQIDBA==");
  equal(jsonPathValue(env, "$.streamSid"), "MZ1");
  equal(env.hasText, false);
  equal(env.parsed, false);
});

Deno.test("decoder: a field that fails to decode is sized by its text, not its UTF-8 bytes", () => {
  // "é" is one character of text and two bytes: the gap the repair inserts follows the text's length.
  const fmt = {
    envelope: "json",
    path: "data",
    encoding: "base64",
    codec: "mulaw",
    sample_rate: 8000,
    channels: 1,
    channel: 0,
    skip_bytes: 0,
  } as const;
  const d = new StreamDecoder(fmt, { keepTimeline: true });
  d.push({ timeNs: 1n, payload: enc.encode('{"data":"AAAAAAAA"}') });
  const o = d.push({ timeNs: 2n, payload: enc.encode('{"data":"AAAA\u00e9AAAAAAA"}') });
  equal(o.kind === "gap" ? o.gapFrames : -1, Math.floor((12 * 3) / 4));
});

Deno.test("byte view: binary fields keep the text route (code units, not UTF-8 bytes)", () => {
  const fmt: EnvelopeFormat & { encoding: "binary" } = {
    envelope: "json",
    path: "d",
    skip_bytes: 0,
    encoding: "binary",
  };
  const r = extractAudioFieldView(new PayloadEnvelope(enc.encode('{"d":"\u00e9"}')), fmt);
  deepEqual(r, { ok: true, data: "\u00e9", overhead: 9 });
});

Deno.test("json envelope: a bad escape anywhere is bad JSON, not an exception", () => {
  const body = enc.encode('{"data":"AQ\\xID","streamSid":"M\\q"}');
  const fmt = { envelope: "json", path: "data", skip_bytes: 0, encoding: "base64" } as const;
  deepEqual(extractAudioFieldView(new PayloadEnvelope(body), fmt), { ok: false, reason: "bad_json" });
  deepEqual(extractAudioField(new PayloadEnvelope(body), fmt), { ok: false, reason: "bad_json" });
  equal(jsonPathValue(new PayloadEnvelope(body), "$.streamSid"), undefined);
});

Deno.test("byte scanner: bodies in one buffer (a capture slab) read right as the buffer's bytes and size change", () => {
  // The word view of a buffer is kept from one body to the next: it must see rewritten bytes, other bodies of
  // the same buffer, and a resizable buffer at its new size.
  const long = "A".repeat(100);
  const bodies = [`{"p":"${long}","q":1}`, `{"p":"${long.slice(0, 60)}\\"${long.slice(61)}","q":2}`];
  const slab = new Uint8Array(4096);
  let at = 0;
  const views: Uint8Array[] = [];
  for (const text of [...bodies, ...bodies]) {
    const b = enc.encode(text);
    slab.set(b, at);
    views.push(slab.subarray(at, at + b.length));
    at += b.length + 1;
  }
  for (const v of views) for (const segs of [["q"], ["p"]]) equal(check(v, segs), "hit");
  // Rewritten in place: a quote now ends the long string early (bad JSON), then it is made whole again.
  const first = views[0]!;
  equal(check(first, ["q"]), "hit");
  first[50] = 0x22;
  equal(check(first, ["q"]), "bad");
  first[50] = 0x41;
  equal(check(first, ["q"]), "hit");
  // A resizable buffer that grows: a body past its old end is read whole.
  const rab = new ArrayBuffer(256, { maxByteLength: 4096 });
  const before = enc.encode(`{"p":"${long}","q":3}`);
  new Uint8Array(rab).set(before);
  equal(check(new Uint8Array(rab, 0, before.length), ["q"]), "hit");
  rab.resize(4096);
  const big = enc.encode(`{"p":"${long}${long}","q":4}`);
  new Uint8Array(rab).set(big, 1000);
  equal(check(new Uint8Array(rab, 1000, big.length), ["q"]), "hit");
  new Uint8Array(rab)[1000 + 80] = 0x22;
  equal(check(new Uint8Array(rab, 1000, big.length), ["q"]), "bad");
});

Deno.test("byte scanner: keys match path segments as JSON.parse reads them, ASCII or not, valid UTF-8 or not", () => {
  // Keys by their bytes: ASCII, non-ASCII, invalid UTF-8 (U+FFFD to the text decoder), escaped.
  const keys: Uint8Array[] = [
    enc.encode("data"),
    enc.encode("dat"),
    enc.encode("datä"),
    Uint8Array.of(0x64, 0x61, 0x74, 0xff),
    Uint8Array.of(0x64, 0x61, 0x74, 0x61, 0xc3),
    enc.encode("\\u0064ata"),
    enc.encode("d\u00e4ta"),
    enc.encode("\ufffd"),
    Uint8Array.of(0xff),
    Uint8Array.of(0xef, 0xbf, 0xbd),
  ];
  for (const segment of ["data", "datä", "\ufffd", "d\u00e4ta", "dat\ufffd"]) {
    const path = bytePath([segment]);
    for (const key of keys) {
      const body = new Uint8Array([...enc.encode('{"'), ...key, ...enc.encode('":"AQID","x":1}')]);
      const text = bodyText.decode(body);
      let want: unknown;
      try {
        want = walkJsonPath(JSON.parse(text), [segment]);
      } catch {
        want = BYTES_BAD;
      }
      const hit = scanJsonPathBytes(body, path);
      const got = hit === BYTES_MISSING ? undefined : hit === BYTES_BAD ? BYTES_BAD : hitValue(body, hit);
      if (got !== BYTES_BAD) equal(got, want, `${segment} ${Array.from(key)}`);
    }
  }
});

Deno.test("byte scanner: several paths in one pass answer as each path alone, on random and broken documents", () => {
  const r = rng(17);
  let hits = 0, bad = 0;
  for (let t = 0; t < 3000; t++) {
    const paths: string[][] = [];
    const text = randomJson(r, 0, [], paths);
    const bytes = r() < 0.3 ? mutate(r, enc.encode(text)) : enc.encode(text);
    // Up to 8 paths, overlapping (a path and its prefix), duplicated and missing ones among them.
    const all = [...paths, ...missingPaths(paths)];
    const chosen = Array.from({ length: 1 + Math.floor(r() * 8) }, () => pick(r, all));
    const together = scanJsonPathsBytes(bytes, chosen.map((s) => bytePath(s)));
    const alone = chosen.map((s) => scanJsonPathBytes(bytes, bytePath(s)));
    if (together === BYTES_BAD) {
      bad++;
      for (const a of alone) equal(a, BYTES_BAD);
      continue;
    }
    deepEqual(together, alone, `${bodyText.decode(bytes)} @ ${JSON.stringify(chosen)}`);
    hits += together.filter((h) => h !== BYTES_MISSING).length;
  }
  ok(hits > 3000 && bad > 300, `${hits} hits, ${bad} refused`);
});

/** Bodies alike but for the content of their plain string values (`v[i]`), and paths into them (some missing). */
const SHAPED: { body: (v: readonly string[]) => string; paths: string[][] }[] = [
  {
    body: (v) =>
      `{"event":"media","sequenceNumber":"${v[0]}","media":{"track":"${v[1]}","chunk":"${v[2]}",` +
      `"timestamp":"${v[3]}","payload":"${v[4]}"},"streamSid":"${v[5]}"}`,
    paths: [["media", "payload"], ["streamSid"], ["media"], ["event"], ["media", "nope"], ["zz"]],
  },
  {
    body: (v) =>
      ` { "a" : [ "${v[0]}" , 1.5e3, {"b":"${v[1]}"}, true ], "a\\u0062":"${v[2]}", "é":"${v[3]}",` +
      ` "p":"${v[4]}", "p":"${v[5]}", "q":"x\\ty" }\n`,
    paths: [["a", "0"], ["a", "2", "b"], ["a", "1"], ["ab"], ["é"], ["p"], ["q"], ["a", "9"]],
  },
  { body: (v) => `"${v[0]}"`, paths: [[], ["x"]] },
  {
    body: (v) => `["${v[0]}","${v[1]}",["${v[2]}",""]]`,
    paths: [["0"], ["1"], ["2", "0"], ["2", "1"], ["3"]],
  },
];

/** String content without a quote, backslash or control character: ASCII, multi-byte, empty or long. */
function plainText(r: () => number): string {
  const n = r() < 0.1 ? 0 : r() < 0.2 ? 200 + Math.floor(r() * 300) : Math.floor(r() * 12);
  let s = "";
  for (let i = 0; i < n; i++) {
    s += pick(r, ["a", "Z", "0", "9", "=", "+", "/", " ", "é", "€", "😀", "{", "}", ":", ","]);
  }
  return s;
}

Deno.test("byte scanner: the SIMD search for a string's end answers as the JS one, shaped bodies and scans alike", () => {
  // The kernel (base64_simd.ts) finds long strings' ends past their first 16 bytes: a special byte at every
  // position of a base64-like audio value (twice each: scanned, then matched by the shape the scan made), in a
  // body at every alignment, and a body longer than the kernel takes; the answers must be the JS search's.
  const digits = enc.encode("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
  const specials = [
    [0x22],
    [0x5c],
    [0x5c, 0x2f],
    [0x5c, 0x75, 0x30, 0x30, 0x34, 0x31],
    [0x00],
    [0x0a],
    [0x1f],
    [
      0x3d,
    ],
    [0x20],
    [0x80],
  ];
  const paths = [bytePath(["streamSid"]), bytePath(["media", "payload"])];
  const answers = (body: Uint8Array) => {
    const out = [];
    for (let k = 0; k < 2; k++) {
      out.push(scanJsonPathsBytes(body, paths));
      out.push(scanJsonPathBytes(body, paths[1]!));
    }
    return out;
  };
  let compared = 0;
  for (const len of [40, 216, 300, 40000]) {
    for (let at = 0; at < len; at += len > 1000 ? 997 : 1) {
      const special = specials[at % specials.length]!;
      if (at + special.length > len) continue;
      const field = new Uint8Array(len);
      for (let i = 0; i < len; i++) field[i] = digits[(i * 7 + at) & 63]!;
      field.set(special, at);
      const head = enc.encode(
        `{"event":"media","streamSid":"MZ${"0123456789abcdef".repeat(2)}","media":{"payload":"`,
      );
      const tail = enc.encode('"}}');
      const shift = at & 3;
      const buf = new Uint8Array(shift + head.length + len + tail.length);
      buf.set(head, shift);
      buf.set(field, shift + head.length);
      buf.set(tail, shift + head.length + len);
      const body = buf.subarray(shift);
      const simd = answers(body);
      disableSpecialKernel(true);
      try {
        deepEqual(answers(body), simd, `${len} bytes, special at ${at}`);
      } finally {
        disableSpecialKernel(false);
      }
      compared++;
    }
  }
  ok(compared > 500, `${compared} bodies compared`);
});

Deno.test("byte scanner: a body shaped like one read before is read by its shape, answering as JSON.parse", () => {
  const r = rng(23);
  const before = scanCounts.shaped;
  let mutated = 0;
  for (let t = 0; t < 4000; t++) {
    const { body, paths } = pick(r, SHAPED);
    const values = Array.from({ length: 6 }, () => plainText(r));
    let bytes: Uint8Array = enc.encode(body(values));
    // Near misses too: a quote, a backslash, a control character or a byte order mark where the shape has
    // plain text or fixed bytes (a scan then decides).
    if (r() < 0.4) {
      bytes = mutate(r, bytes);
      mutated++;
    }
    for (const segs of paths) check(bytes, segs);
    const together = scanJsonPathsBytes(bytes, paths.map((s) => bytePath(s)));
    const alone = paths.map((s) => scanJsonPathBytes(bytes, bytePath(s)));
    deepEqual(together, together === BYTES_BAD ? BYTES_BAD : alone);
  }
  const shaped = scanCounts.shaped - before;
  ok(shaped > 5000 && mutated > 1000, `${shaped} bodies read by a shape`);
});

Deno.test("byte scanner: bodies that never repeat a shape make few shapes, and leave those that match", () => {
  const path = [bytePath(["media", "payload"])];
  const media = (i: number) =>
    enc.encode(`{"event":"media","streamSid":"MZ${i % 7}","media":{"payload":"A${i}=="}}`);
  // A number that changes: every body a shape of its own, which no other body matches.
  const counted = (i: number) => enc.encode(`{"n":${i},"media":{"payload":"B${i}=="}}`);
  const before = { ...scanCounts };
  for (let i = 0; i < 3200; i++) {
    for (const [body, want] of [[media(i), `A${i}==`], [counted(i), `B${i}==`]] as const) {
      const hits = scanJsonPathsBytes(body, path);
      ok(hits !== BYTES_BAD && hits[0] !== BYTES_MISSING);
      equal(hitValue(body, hits[0]!), want);
    }
  }
  const shaped = scanCounts.shaped - before.shaped, made = scanCounts.shapes - before.shapes;
  ok(shaped >= 3190, `${shaped} of 3,200 media bodies read by their shape`);
  ok(made <= 3200 / 16 + 4, `${made} shapes made`);
});

Deno.test("byte scans of one envelope: the stream key's field and the audio field are found in one pass", () => {
  const body = (sid: string) =>
    enc.encode(`{"event":"media","streamSid":"${sid}","media":{"payload":"AQIDBA=="}}`);
  const fmt = { envelope: "json", path: "media.payload", skip_bytes: 0, encoding: "base64" } as const;
  // The first message teaches the scans both paths; every later one is read once for both.
  const first = new PayloadEnvelope(body("MZ0"));
  equal(jsonPathValue(first, "$.streamSid"), "MZ0");
  ok(extractAudioFieldView(first, fmt).ok);
  for (let i = 1; i < 5; i++) {
    const env = new PayloadEnvelope(body(`MZ${i}`));
    equal(jsonPathValue(env, "$.streamSid"), `MZ${i}`);
    const f = extractAudioFieldView(env, fmt);
    ok(f.ok);
    equal(bodyText.decode(f.data as Uint8Array), "AQIDBA==");
    equal(env.scans.passes, 1);
  }
  // A path the pass did not look for is scanned for then, and answered right.
  const env = new PayloadEnvelope(enc.encode('{"streamSid":"MZ7","media":{"payload":"AQ==","track":"in"}}'));
  equal(jsonPathValue(env, "$.streamSid"), "MZ7");
  equal(env.scans.passes, 1);
  equal(jsonPathValue(env, "media.track"), "in");
  equal(env.scans.passes, 2);
  // A body the scanner refuses is refused for every path after one pass (JSON.parse then decides).
  const broken = new PayloadEnvelope(enc.encode('{"streamSid":"MZ9","media":{"payload":"AQ=="}'));
  equal(jsonPathValue(broken, "$.streamSid"), undefined);
  deepEqual(extractAudioFieldView(broken, fmt), { ok: false, reason: "bad_json" });
  equal(broken.scans.passes, 1);
});

Deno.test("byte scans: streams of two audio paths interleaved row by row share one list of paths, each answered", () => {
  const a = { envelope: "json", path: "media.payload", skip_bytes: 0, encoding: "base64" } as const;
  const b = { envelope: "json", path: "data", skip_bytes: 0, encoding: "base64" } as const;
  const bodyA = (v: string) => enc.encode(`{"event":"media","media":{"payload":"${v}"}}`);
  const bodyB = (v: string) => enc.encode(`{"data":"${v}"}`);
  // Both paths asked once; from then on no body makes a new list (one was three arrays a message).
  extractAudioFieldView(new PayloadEnvelope(bodyA("AQ==")), a);
  extractAudioFieldView(new PayloadEnvelope(bodyB("Ag==")), b);
  let list: unknown;
  for (let i = 0; i < 6; i++) {
    const env = new PayloadEnvelope(i % 2 === 0 ? bodyA(`A${i}==`) : bodyB(`B${i}==`));
    const f = extractAudioFieldView(env, i % 2 === 0 ? a : b);
    ok(f.ok);
    equal(bodyText.decode(f.data as Uint8Array), i % 2 === 0 ? `A${i}==` : `B${i}==`);
    equal(env.scans.passes, 1);
    if (i > 0) equal(env.scans.paths, list);
    list = env.scans.paths;
  }
});

Deno.test("extractAudioFieldView: a found field's result is one object, holding each message's view", () => {
  const fmt = { envelope: "json", path: "media.payload", skip_bytes: 0, encoding: "base64" } as const;
  const body = (v: string) => new PayloadEnvelope(enc.encode(`{"media":{"payload":"${v}"},"x":1}`));
  const a = extractAudioFieldView(body("AQID"), fmt);
  ok(a.ok);
  equal(bodyText.decode(a.data as Uint8Array), "AQID");
  equal(a.overhead, 30);
  const b = extractAudioFieldView(body("BAUGBw=="), fmt);
  ok(a === b, "the result object is reused");
  ok(b.ok);
  equal(bodyText.decode(b.data as Uint8Array), "BAUGBw==");
  equal(b.overhead, 30);
});
