import { equal, ok } from "node:assert/strict";
import { base64Kernel } from "../audio/decode/base64_simd.ts";
import { bytePath, BYTES_BAD, BYTES_MISSING, scanJsonPathBytes } from "../audio/decode/json_scan_bytes.ts";
import { compileJsonPath } from "../audio/decode/payload.ts";
import { rng } from "./support/rng.ts";

// The kernel's JSON field finder answers "found" only where the JS scanner finds a plain string at the same
// bytes; anything else is left to the scanner.

const enc = new TextEncoder();
const kernel = base64Kernel()!;

/** Checks the kernel's answer for `body` against the scanner's; returns whether the kernel found it. */
function agree(body: Uint8Array, path: string): boolean {
  const p = bytePath(compileJsonPath(path));
  const k = kernel.field(body, p);
  const hit = scanJsonPathBytes(body, p);
  if (k === undefined) return false;
  ok(
    hit !== BYTES_BAD && hit !== BYTES_MISSING,
    `kernel found what the scanner did not: ${new TextDecoder().decode(body)}`,
  );
  ok(hit.string && !hit.escaped);
  equal(k.start, hit.start + 1);
  equal(k.end, hit.end - 1);
  return true;
}

const TWILIO =
  '{"event":"media","sequenceNumber":"2","media":{"track":"inbound","chunk":"1","timestamp":"0",' +
  '"payload":"e/t5fH3+evv+e/57fPx1+377+vf9e3l7fHh9/Hf9/P/+fn58/Ht4fH5+/fp8/X59e3z7fn3+9v17fXJ6e/r//Xp++v79=="},' +
  '"streamSid":"MZ4548aea25378c84453577118559f53bb"}';

Deno.test("json field kernel: finds the audio field of the usual envelopes where the scanner does", () => {
  ok(agree(enc.encode(TWILIO), "media.payload"));
  ok(
    agree(
      enc.encode(
        '{"data":"UddV19fR1FRXVFRWVdRW1NTV1VVVVNRUVlRVVdTXVNRVVVRU11VV1dHUVFVTV1TX1dRXVdfV1NXU19dU1NRV1FTUVFXR19VV19ZU11VUVFTQ19VWV9fX1FTV1NVUVtTUV1dUVVTX1dXV19bXVNdW1VRU19dUVNXUVlVV1FVVV9fV1FTWVddV0VVV1FRU1dXU1FVW1VdU1VRVV9XXVVTWVA=="}',
      ),
      "data",
    ),
  );
  ok(
    agree(
      enc.encode(
        ' {\n"a" : [1, -2.5e+3, true, false, null, {"payload": 0}, []], "b":{}, "media" :\t{"x":{"payload":"no"},"payload" : "QUJD"} } ',
      ),
      "media.payload",
    ),
  );
  ok(agree(enc.encode('{"media":{"payload":"x"},"media":{"payload":"QUJD"}}'), "$.media.payload"));
  ok(agree(enc.encode('{"k\u00e9y":"\u00e9","data":"\u00e9QUJD"}'), "data"));
});

Deno.test("json field kernel: leaves to the scanner what is not a plain string found in well-formed JSON", () => {
  for (
    const [body, path] of ([
      ['{"media":{"payload":"QU\\nJD"}}', "media.payload"], // an escape
      ['{"media":{"payload":"QUJD"},"media":{"other":1}}', "media.payload"], // a later duplicate wins
      ['{"media":{"payload":1}}', "media.payload"],
      ['{"media":["payload"]}', "media.payload"],
      ['{"media":{"payload":"QUJD"}', "media.payload"],
      ['{"media":{"payload":"QUJD"}},', "media.payload"],
      ['{"media":{"payload":"QUJD"},}', "media.payload"],
      ['{"a":01,"data":"QUJD"}', "data"],
      ['{"a":1.,"data":"QUJD"}', "data"],
      ['{"a":tru,"data":"QUJD"}', "data"],
      ['{"a":"\u0001","data":"QUJD"}', "data"],
      ['\ufeff{"data":"QUJD"}', "data"],
      ['{"data":"QUJD"}', "data.0"],
      ['{"d\\u0061ta":"QUJD"}', "data"],
      ['"QUJD"', "data"],
      ["", "data"],
      ['{"data":"QUJD"', "data"],
      ['{"data":"QUJD}', "data"],
    ] as const)
  ) equal(agree(enc.encode(body), path), false, body);
});

Deno.test("json field kernel: agrees with the scanner on mutated and generated bodies", () => {
  const r = rng(3);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const noise = [
    '"',
    "\\",
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    " ",
    "\n",
    "0",
    "1",
    "-",
    ".",
    "e",
    "+",
    "t",
    "n",
    "f",
    "\u0001",
    "\u00e9",
    "a",
    "payload",
    "media",
  ];
  let found = 0;
  const bases = [
    TWILIO,
    '{"data":"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="}',
    '{"media":{"payload":"QUJD"},"x":[1,{"y":null}]}',
  ];
  for (let i = 0; i < 20000; i++) {
    let s = pick(bases);
    for (let m = Math.floor(r() * 3); m > 0; m--) {
      const at = Math.floor(r() * (s.length + 1));
      const op = r();
      if (op < 0.4) s = s.slice(0, at) + pick(noise) + s.slice(at);
      else if (op < 0.7) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(r() * 3));
      else s = s.slice(0, at) + pick(noise) + s.slice(at + 1);
    }
    if (agree(enc.encode(s), pick(["media.payload", "data", "media.payload", "x"]))) found++;
  }
  for (let i = 0; i < 3000; i++) {
    const gen = (depth: number): string => {
      const k = r();
      if (depth > 3 || k < 0.3) {
        return pick(['"QUJD"', "12", "-0.5E-7", "true", "null", "false", '"x\\"y"', '""']);
      }
      if (k < 0.45) return `[${Array.from({ length: Math.floor(r() * 3) }, () => gen(depth + 1)).join(",")}]`;
      const keys = Array.from(
        { length: Math.floor(r() * 4) },
        () => `"${pick(["media", "payload", "data", "x"])}":${gen(depth + 1)}`,
      );
      return `{${keys.join(pick([",", " , "]))}}`;
    };
    if (agree(enc.encode(gen(0)), pick(["media.payload", "data", "x.media"]))) found++;
  }
  ok(found > 2000, `found ${found}`);
});

Deno.test("json field kernel: more audio paths than it keeps in memory are written again, and still agree", () => {
  // Streams of different paths interleave message by message; past the kept paths, memory is reused.
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 20; i++) {
      ok(agree(enc.encode(`{"a${i}":{"p${i}":"QUJD"},"b":"x"}`), `a${i}.p${i}`));
      equal(agree(enc.encode(`{"a${i}":{"p${i}":"QUJD"},"b":"x"}`), `a${i}.p${i + 1}`), false);
    }
  }
});
