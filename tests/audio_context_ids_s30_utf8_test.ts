/**
 * Context ids that are not ASCII: the message is read as latin1 (one character a byte, so binary bodies never
 * throw), and an id was handed on as those characters: "Zoë 😀 Ünal" in a Twilio-style message was the id
 * "ZoÃ« ð\u009f\u0098\u0080 Ã\u009cnal" in every signature and match record of `analyze --out` (and twice its
 * bytes against the wire's 64-byte cap on an id, so an id of 33-64 bytes was dropped from the signature).
 */
import { deepEqual, equal } from "node:assert/strict";
import { compileIdPatterns, extractIds } from "../audio/decode/context_ids.ts";
import { PayloadEnvelope } from "../audio/decode/payload.ts";
import { decodeSignature, encodeSignature, initSignatureHasher } from "../audio/fingerprint/signature.ts";
import { buildSignature } from "../audio/fingerprint/signature.ts";

await initSignatureHasher();

const utf8 = new TextEncoder();

Deno.test("context ids: an id in UTF-8 is the text it spells, in both regex engines", () => {
  const patterns = compileIdPatterns([
    { pattern: '"caller":"([^"]+)"', id_type: "caller" }, // the scan engine's shape
    { pattern: '"agent":"(\\S+ [^"]+)"', id_type: "agent" }, // re2js
  ]);
  const body = utf8.encode('{"caller":"Zoë 😀 Ünal","agent":"Jürgen Straße","media":{"payload":"//8="}}');
  deepEqual(extractIds(new PayloadEnvelope(body), patterns), {
    caller: "Zoë 😀 Ünal",
    agent: "Jürgen Straße",
  });
});

Deno.test("context ids: bytes that are not UTF-8 become U+FFFD, and never throw", () => {
  const patterns = compileIdPatterns([{ pattern: "id=([^;]+);", id_type: "id" }]);
  const body = new Uint8Array([...utf8.encode("id=ab"), 0xff, 0xc3, ...utf8.encode("cd;")]);
  deepEqual(extractIds(new PayloadEnvelope(body), patterns), { id: "ab\ufffd\ufffdcd" });
});

Deno.test("context ids: a 60-byte UTF-8 id fits the wire and reads back the same on another node", () => {
  const patterns = compileIdPatterns([{ pattern: '"caller":"([^"]+)"', id_type: "caller" }]);
  const caller = "Ünal-😀".repeat(6); // 60 bytes of UTF-8; 108 as latin1 characters re-encoded
  equal(utf8.encode(caller).length, 60);
  const ids = extractIds(new PayloadEnvelope(utf8.encode(`{"caller":"${caller}"}`)), patterns);
  const sig = buildSignature({
    measurement: "m",
    node: "a",
    pod: "p",
    stream: "s",
    timeNs: 1n,
    offsetMs: 0,
    fingerprint: new Uint32Array(128),
    ids,
  });
  deepEqual(decodeSignature(encodeSignature(sig)).ids, { caller });
});
