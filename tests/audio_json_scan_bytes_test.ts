import { deepEqual, equal, ok } from "node:assert/strict";
import {
  type EnvelopeFormat,
  extractAudioField,
  extractAudioFieldView,
  fieldAsText,
  jsonPathValue,
  PayloadEnvelope,
} from "../audio/decode/payload.ts";
import { bytePath, BYTES_BAD, scanJsonPathBytes } from "../audio/decode/json_scan_bytes.ts";
import { decodeField } from "../audio/decode/encoding.ts";
import { StreamDecoder } from "../audio/decode/stream_decoder.ts";

const enc = new TextEncoder();

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** The text route: an envelope whose text is already decoded scans the text, as before the byte scanner. */
function textEnvelope(bytes: Uint8Array): PayloadEnvelope {
  const env = new PayloadEnvelope(bytes);
  env.text();
  return env;
}

const PATHS = ["media.payload", "data", "$.streamSid", "a.0.b", "$", "k\u00e9y", "media"];
const BASE = [
  '{"event":"media","media":{"track":"inbound","payload":"AQIDBA=="},"streamSid":"MZ1"}',
  '{"data":"AQIDBAUG","k\u00e9y":"AQ","a":[{"b":"00ff"}]}',
  '{"media":{"payload":"AQ\\/ID"},"data":"\u00e9AQ","streamSid":7}',
];

/** Bytes that move a document between shapes: structure, escapes, UTF-8 lead/continuation, a BOM. */
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
  0x61,
  0x30,
  0xc3,
  0xa9,
  0xff,
  0xef,
  0xbb,
  0xbf,
];

function mutate(r: () => number, bytes: Uint8Array): Uint8Array {
  const out = [...bytes];
  for (let m = 1 + Math.floor(r() * 3); m > 0; m--) {
    const at = Math.floor(r() * (out.length + 1));
    const b = NOISE[Math.floor(r() * NOISE.length)]!;
    const op = Math.floor(r() * 4);
    if (op === 0) out.splice(at, 0, b);
    else if (op === 1) out.splice(at, 1);
    else if (op === 2) out[at] = b;
    else out.splice(0, 0, 0xef, 0xbb, 0xbf);
  }
  return new Uint8Array(out);
}

Deno.test("byte scanner: the same values as the text scanner on every mutation of real payloads", () => {
  const r = rng(5);
  let viewed = 0;
  for (let t = 0; t < 6000; t++) {
    const bytes = mutate(r, enc.encode(BASE[Math.floor(r() * BASE.length)]!));
    for (const path of PATHS) {
      deepEqual(jsonPathValue(new PayloadEnvelope(bytes), path), jsonPathValue(textEnvelope(bytes), path));
      const fmt = { envelope: "json", path, skip_bytes: 0, encoding: "base64" } as const;
      const view = extractAudioFieldView(new PayloadEnvelope(bytes), fmt);
      const text = extractAudioField(textEnvelope(bytes), fmt);
      if (view.ok && text.ok) {
        // The view's bytes are the text's UTF-8: they decode to the same audio, or fail alike.
        equal(fieldAsText(view.data, "json"), text.data);
        deepEqual(decodeField(view.data, "base64"), decodeField(text.data, "base64"));
        deepEqual(decodeField(view.data, "hex"), decodeField(text.data, "hex"));
        if (view.data instanceof Uint8Array) viewed++;
      } else deepEqual(view, text);
    }
  }
  ok(viewed > 1000, `fields handed on as views: ${viewed}`);
});

Deno.test("byte scanner: a usual payload is read from its bytes, its text never decoded", () => {
  const env = new PayloadEnvelope(enc.encode(BASE[0]!));
  const fmt = { envelope: "json", path: "media.payload", skip_bytes: 0, encoding: "base64" } as const;
  const r = extractAudioFieldView(env, fmt);
  ok(r.ok && r.data instanceof Uint8Array);
  equal(new TextDecoder().decode(r.data as Uint8Array), "AQIDBA==");
  equal(jsonPathValue(env, "$.streamSid"), "MZ1");
  equal(env.hasText, false);
  // A byte-order mark (dropped by the text decoder) is left to the text path.
  equal(scanJsonPathBytes(enc.encode("\ufeff" + BASE[0]!), bytePath(["data"])), BYTES_BAD);
});

Deno.test("decoder: a field that fails to decode is sized by its text, as before the byte view", () => {
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
  const run = (payload: Uint8Array) => {
    const d = new StreamDecoder(fmt, { keepTimeline: true });
    d.push({ timeNs: 1n, payload: enc.encode('{"data":"AAAAAAAA"}') });
    const o = d.push({ timeNs: 2n, payload });
    return o.kind === "gap" ? o.gapFrames : -1;
  };
  const body = enc.encode('{"data":"AAAA\u00e9AAAAAAA"}');
  const viaText = (() => {
    const d = new StreamDecoder(fmt, { keepTimeline: true });
    d.push({ timeNs: 1n, payload: enc.encode('{"data":"AAAAAAAA"}') });
    const o = d.push({ timeNs: 2n, payload: textEnvelope(body) });
    return o.kind === "gap" ? o.gapFrames : -1;
  })();
  equal(run(body), viaText);
  equal(viaText, Math.floor((12 * 3) / 4));
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

Deno.test("json envelope: a bad escape in the field is bad JSON, not an exception (either route)", () => {
  const body = enc.encode('{"data":"AQ\\xID","streamSid":"M\\q"}');
  const fmt = { envelope: "json", path: "data", skip_bytes: 0, encoding: "base64" } as const;
  deepEqual(extractAudioFieldView(new PayloadEnvelope(body), fmt), { ok: false, reason: "bad_json" });
  deepEqual(extractAudioField(textEnvelope(body), fmt), { ok: false, reason: "bad_json" });
  equal(jsonPathValue(new PayloadEnvelope(body), "$.streamSid"), undefined);
  equal(jsonPathValue(textEnvelope(body), "$.streamSid"), undefined);
});

Deno.test("byte scanner: a key with invalid UTF-8 matches as its decoded text does", () => {
  // The text decoder turns 0xFF into U+FFFD, so this key is "k\ufffdy" to the text route.
  const body = new Uint8Array([...enc.encode('{"k'), 0xff, ...enc.encode('y":"AQID"}')]);
  equal(jsonPathValue(new PayloadEnvelope(body), "k\ufffdy"), "AQID");
  equal(jsonPathValue(textEnvelope(body), "k\ufffdy"), "AQID");
});
