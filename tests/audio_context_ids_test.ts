import { deepEqual } from "node:assert/strict";
import { compileIdPatterns, extractIds } from "../audio/decode/context_ids.ts";
import { PayloadEnvelope } from "../audio/decode/payload.ts";

Deno.test("context ids: each pattern's group from the payload text; binary bodies never throw", () => {
  const pats = compileIdPatterns([
    { pattern: 'interval_id":"([a-f0-9-]{36})', id_type: "interval_id" },
    { pattern: 'callSid":"(CA[0-9a-f]+)', id_type: "call_sid" },
  ]);
  const body = new TextEncoder().encode(
    '{"interval_id":"0f8fad5b-d9cb-469f-a165-70867728950e","callSid":"CA12ab","media":{"payload":"//8="}}',
  );
  deepEqual(extractIds(new PayloadEnvelope(body), pats), {
    interval_id: "0f8fad5b-d9cb-469f-a165-70867728950e",
    call_sid: "CA12ab",
  });
  deepEqual(extractIds(new PayloadEnvelope(new Uint8Array([0xff, 0xfe, 0x00])), pats), {});
  deepEqual(extractIds(new PayloadEnvelope(body), []), {});
});

Deno.test("context ids: an id named like an Object.prototype member (constructor, __proto__) is extracted too", () => {
  // Valid id names (letters, digits, _): a plain object already "has" constructor, and __proto__ set its prototype.
  const patterns = compileIdPatterns([
    { pattern: 'ctor":"([a-z0-9]+)', id_type: "constructor" },
    { pattern: 'proto":"([a-z0-9]+)', id_type: "__proto__" },
    { pattern: 'other":"([a-z0-9]+)', id_type: "constructor" },
  ]);
  const ids = extractIds(
    new PayloadEnvelope(new TextEncoder().encode('{"ctor":"c1","proto":"p1","other":"o1"}')),
    patterns,
  );
  deepEqual(Object.entries(ids), [["constructor", "c1"], ["__proto__", "p1"]]);
  deepEqual(Object.getPrototypeOf(ids), Object.prototype);
});
