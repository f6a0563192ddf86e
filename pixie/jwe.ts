/**
 * Pixie's end-to-end encryption of row batches: compact JWE with RSA-OAEP-256 key wrapping, A256GCM content
 * encryption and optional DEF (raw DEFLATE) compression, done with WebCrypto and (De)CompressionStream. The
 * private key never leaves this process, so Pixie Cloud relays only ciphertext.
 * @module
 */

import type { EncryptionOptions } from "./messages.ts";

/** A JWE that cannot be decrypted or is not in the expected form. */
export class JweError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "JweError";
  }
}

/** The key pair a client generates per connection. */
export interface JweKeyPair {
  /** Never exported. */
  privateKey: CryptoKey;
  /** Public key as JWK JSON, sent to Vizier in `encryption_options.jwk_key`. */
  publicJwk: string;
}

const RSA_PARAMS = { name: "RSA-OAEP", hash: "SHA-256" } as const;

/** Largest plaintext accepted after inflation: a decompression bomb is rejected, not buffered. */
export const MAX_PLAINTEXT_BYTES = 64 * 1024 * 1024;

/** Base64url without padding. */
export function b64urlEncode(data: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < data.length; i += 0x8000) {
    bin += String.fromCharCode(...data.subarray(i, i + 0x8000));
  }
  return btoa(bin).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** Decodes base64url (padding optional); throws {@link JweError} on bad input. */
export function b64urlDecode(text: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new JweError("invalid base64url");
  const b64 = text.replaceAll("-", "+").replaceAll("_", "/") + "===".slice((text.length + 3) % 4);
  let bin: string;
  try {
    bin = atob(b64);
  } catch {
    throw new JweError("invalid base64url");
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Generates an RSA-OAEP-256 key pair (2048-bit modulus unless told otherwise). */
export async function generateJweKeyPair(modulusLength = 2048): Promise<JweKeyPair> {
  const pair = await crypto.subtle.generateKey(
    { ...RSA_PARAMS, modulusLength, publicExponent: new Uint8Array([1, 0, 1]) },
    true,
    ["encrypt", "decrypt"],
  );
  const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey);
  const publicJwk = JSON.stringify({ kty: "RSA", alg: "RSA-OAEP-256", use: "enc", n: jwk.n, e: jwk.e });
  return { privateKey: pair.privateKey, publicJwk };
}

/** The `encryption_options` Pixie needs to encrypt for this key pair. */
export function encryptionOptionsFor(keys: JweKeyPair): EncryptionOptions {
  return { jwkKey: keys.publicJwk, keyAlg: "RSA-OAEP-256", contentAlg: "A256GCM", compressionAlg: "DEF" };
}

async function pump(
  data: Uint8Array,
  stream: CompressionStream | DecompressionStream,
  limit: number,
): Promise<Uint8Array> {
  const readable = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(stream);
  const reader = readable.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel();
      throw new JweError(`plaintext exceeds ${limit} bytes`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** Raw DEFLATE (JWE "DEF"). */
export function deflateRaw(data: Uint8Array): Promise<Uint8Array> {
  return pump(data, new CompressionStream("deflate-raw"), Number.MAX_SAFE_INTEGER);
}

/** Raw INFLATE with an output cap. */
export async function inflateRaw(data: Uint8Array, limit = MAX_PLAINTEXT_BYTES): Promise<Uint8Array> {
  try {
    return await pump(data, new DecompressionStream("deflate-raw"), limit);
  } catch (e) {
    if (e instanceof JweError) throw e;
    throw new JweError(`bad DEF payload: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

const ascii = new TextEncoder();

/** Decrypts a compact JWE (RSA-OAEP-256 / A256GCM, optional zip DEF) to its plaintext bytes. */
export async function decryptCompactJwe(
  jwe: string | Uint8Array,
  privateKey: CryptoKey,
): Promise<Uint8Array> {
  const text = typeof jwe === "string" ? jwe : new TextDecoder().decode(jwe);
  const parts = text.trim().split(".");
  if (parts.length !== 5) throw new JweError(`compact JWE has ${parts.length} parts, expected 5`);
  const [protectedB64, keyB64, ivB64, ctB64, tagB64] = parts as [string, string, string, string, string];
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(b64urlDecode(protectedB64)));
  } catch (e) {
    throw new JweError(`bad protected header: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (header.alg !== "RSA-OAEP-256") throw new JweError(`unsupported alg ${String(header.alg)}`);
  if (header.enc !== "A256GCM") throw new JweError(`unsupported enc ${String(header.enc)}`);
  if (header.zip !== undefined && header.zip !== "DEF") {
    throw new JweError(`unsupported zip ${String(header.zip)}`);
  }
  const iv = b64urlDecode(ivB64);
  const tag = b64urlDecode(tagB64);
  if (iv.length !== 12) throw new JweError(`A256GCM IV is ${iv.length} bytes, expected 12`);
  if (tag.length !== 16) throw new JweError(`A256GCM tag is ${tag.length} bytes, expected 16`);
  let cekRaw: ArrayBuffer;
  try {
    cekRaw = await crypto.subtle.decrypt(
      RSA_PARAMS,
      privateKey,
      b64urlDecode(keyB64) as Uint8Array<ArrayBuffer>,
    );
  } catch {
    throw new JweError("cannot unwrap the content key (not encrypted for this key?)");
  }
  if (cekRaw.byteLength !== 32) throw new JweError(`content key is ${cekRaw.byteLength} bytes, expected 32`);
  const cek = await crypto.subtle.importKey("raw", cekRaw, "AES-GCM", false, ["decrypt"]);
  let plain: ArrayBuffer;
  try {
    plain = await crypto.subtle.decrypt(
      {
        name: "AES-GCM",
        iv: iv as Uint8Array<ArrayBuffer>,
        additionalData: ascii.encode(protectedB64),
        tagLength: 128,
      },
      cek,
      concat(b64urlDecode(ctB64), tag),
    );
  } catch {
    throw new JweError("content authentication failed");
  }
  const bytes = new Uint8Array(plain);
  return header.zip === "DEF" ? await inflateRaw(bytes) : bytes;
}

/** Encrypts `plaintext` for a public JWK as a compact JWE (what Vizier does; the fake Vizier uses it in tests). */
export async function encryptCompactJwe(
  plaintext: Uint8Array,
  publicJwk: string,
  opts: { compress?: boolean } = {},
): Promise<string> {
  const jwk = JSON.parse(publicJwk) as JsonWebKey;
  const { use: _use, ...importable } = jwk as JsonWebKey & { use?: string };
  const pub = await crypto.subtle.importKey("jwk", importable, RSA_PARAMS, false, ["encrypt"]);
  const compress = opts.compress ?? true;
  const header: Record<string, string> = { alg: "RSA-OAEP-256", enc: "A256GCM" };
  if (compress) header.zip = "DEF";
  const protectedB64 = b64urlEncode(ascii.encode(JSON.stringify(header)));
  const cek = crypto.getRandomValues(new Uint8Array(32));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const wrapped = new Uint8Array(await crypto.subtle.encrypt(RSA_PARAMS, pub, cek));
  const key = await crypto.subtle.importKey("raw", cek, "AES-GCM", false, ["encrypt"]);
  const body = compress ? await deflateRaw(plaintext) : plaintext;
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: "AES-GCM", iv, additionalData: ascii.encode(protectedB64), tagLength: 128 },
      key,
      body as Uint8Array<ArrayBuffer>,
    ),
  );
  const ct = sealed.subarray(0, sealed.length - 16);
  const tag = sealed.subarray(sealed.length - 16);
  return [protectedB64, b64urlEncode(wrapped), b64urlEncode(iv), b64urlEncode(ct), b64urlEncode(tag)].join(
    ".",
  );
}
