import { deepEqual, equal, ok } from "node:assert/strict";
import { decodeBase64, decodeBase64Portable, encodeBase64 } from "../audio/decode/encoding.ts";
import { PayloadEnvelope } from "../audio/decode/payload.ts";
import { StreamDecoder } from "../audio/decode/stream_decoder.ts";
import { DEFAULT_AUDIO } from "../config/defaults.ts";

const enc = new TextEncoder();

Deno.test("base64 text: whitespace after the last whole block is ignored, as anywhere else in the value", () => {
  // 48 bytes: 64 digits and no padding, the shape the engine's decoder stops short of trailing whitespace on.
  for (const n of [3, 48, 480, 960]) {
    const audio = Uint8Array.from({ length: n }, (_, i) => (i * 37) & 0xff);
    const digits = encodeBase64(audio);
    for (const tail of [" ", "\n", "\r\n", "\t \n"]) {
      for (const text of [digits + tail, digits.slice(0, 4) + "\n" + digits.slice(4) + tail]) {
        deepEqual(decodeBase64(text), audio, `${n} bytes, ${JSON.stringify(tail)} after the digits`);
        deepEqual(decodeBase64Portable(text), audio);
      }
    }
  }
  equal(decodeBase64("AAAA B"), undefined, "a lone digit after whitespace is still invalid");
  equal(decodeBase64("AAAA *"), undefined, "so is anything but whitespace");
});

Deno.test("stream decoder: a base64 field ending in an escaped newline (MIME-style encoders) decodes, no gap", () => {
  for (const n of [160, 240, 480, 960]) {
    const audio = Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff);
    const body = enc.encode(`{"streamSid":"MZ1","media":{"payload":"${encodeBase64(audio)}\\n"}}`);
    const d = new StreamDecoder(DEFAULT_AUDIO, { keepTimeline: true });
    const o = d.push({ timeNs: 1n, payload: new PayloadEnvelope(body) });
    // Before: 240, 480 and 960 bytes (whole blocks, no padding) were bad_base64, their audio a gap of silence.
    ok(o.kind === "audio", `${n} bytes: ${o.kind} ${"reason" in o ? o.reason : ""}`);
    equal(o.frames, n);
    equal(d.stats().errors.bad_base64, 0);
  }
});
