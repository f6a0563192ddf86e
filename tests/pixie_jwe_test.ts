import { deepStrictEqual, equal, rejects } from "node:assert/strict";
import {
  b64urlDecode,
  b64urlEncode,
  decryptCompactJwe,
  deflateRaw,
  encryptCompactJwe,
  generateJweKeyPair,
  inflateRaw,
  JweError,
} from "../pixie/jwe.ts";

const keys = await generateJweKeyPair();
const other = await generateJweKeyPair();
const payload = new Uint8Array(5000).map((_, i) => (i * 7) & 0xff);

Deno.test("the public JWK is an RSA-OAEP-256 encryption key without private parts", () => {
  const jwk = JSON.parse(keys.publicJwk);
  equal(jwk.kty, "RSA");
  equal(jwk.alg, "RSA-OAEP-256");
  equal(jwk.d, undefined);
  equal(typeof jwk.n, "string");
});

Deno.test("compact JWE round trip, compressed (zip DEF) and not", async () => {
  for (const compress of [true, false]) {
    const jwe = await encryptCompactJwe(payload, keys.publicJwk, { compress });
    equal(jwe.split(".").length, 5);
    const header = JSON.parse(new TextDecoder().decode(b64urlDecode(jwe.split(".")[0]!)));
    equal(header.zip, compress ? "DEF" : undefined);
    deepStrictEqual(await decryptCompactJwe(jwe, keys.privateKey), payload);
    deepStrictEqual(await decryptCompactJwe(new TextEncoder().encode(jwe), keys.privateKey), payload);
  }
});

Deno.test("tampering, the wrong key and malformed input are refused with JweError", async () => {
  const jwe = await encryptCompactJwe(payload, keys.publicJwk);
  const parts = jwe.split(".");
  await rejects(decryptCompactJwe(jwe, other.privateKey), JweError);
  const ct = b64urlDecode(parts[3]!);
  ct[0]! ^= 1;
  await rejects(
    decryptCompactJwe([parts[0], parts[1], parts[2], b64urlEncode(ct), parts[4]].join("."), keys.privateKey),
    /authentication/,
  );
  // The header is authenticated (it is the AAD).
  const forged = b64urlEncode(
    new TextEncoder().encode(JSON.stringify({ alg: "RSA-OAEP-256", enc: "A256GCM" })),
  );
  await rejects(decryptCompactJwe([forged, ...parts.slice(1)].join("."), keys.privateKey), JweError);
  await rejects(decryptCompactJwe("a.b.c", keys.privateKey), /3 parts/);
  const bad = b64urlEncode(new TextEncoder().encode(JSON.stringify({ alg: "RSA1_5", enc: "A256GCM" })));
  await rejects(decryptCompactJwe([bad, ...parts.slice(1)].join("."), keys.privateKey), /unsupported alg/);
});

Deno.test("inflate is capped so a decompression bomb is refused", async () => {
  const zeros = await deflateRaw(new Uint8Array(1 << 20));
  equal((await inflateRaw(zeros)).length, 1 << 20);
  await rejects(inflateRaw(zeros, 1000), /exceeds 1000 bytes/);
  await rejects(inflateRaw(new Uint8Array([0xff, 0xff, 0xff])), JweError);
});
