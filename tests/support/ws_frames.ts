/**
 * RFC 6455 frame and handshake bytes for tests (built by hand, independent of the parser under test).
 * @module
 */
import { constants, createDeflateRaw } from "node:zlib";

/** Frame fields. */
export interface FrameSpec {
  op: number;
  payload: Uint8Array | string;
  fin?: boolean;
  /** A 4-byte masking key: the frame is masked (client to server). */
  mask?: [number, number, number, number];
  rsv1?: boolean;
  /** Force the 64-bit length form even for a short payload (not minimal: invalid per RFC). */
  force64?: boolean;
}

/** Encodes one frame. */
export function frame(f: FrameSpec): Uint8Array {
  const p = typeof f.payload === "string" ? new TextEncoder().encode(f.payload) : f.payload;
  const len = p.length;
  const ext = f.force64 || len > 0xffff ? 8 : len >= 126 ? 2 : 0;
  const out = new Uint8Array(2 + ext + (f.mask ? 4 : 0) + len);
  out[0] = ((f.fin ?? true) ? 0x80 : 0) | (f.rsv1 ? 0x40 : 0) | f.op;
  out[1] = (f.mask ? 0x80 : 0) | (ext === 8 ? 127 : ext === 2 ? 126 : len);
  const dv = new DataView(out.buffer);
  if (ext === 2) dv.setUint16(2, len);
  if (ext === 8) dv.setBigUint64(2, BigInt(len));
  let o = 2 + ext;
  if (f.mask) {
    out.set(f.mask, o);
    o += 4;
    for (let i = 0; i < len; i++) out[o + i] = p[i]! ^ f.mask[i & 3]!;
  } else out.set(p, o);
  return out;
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A client's upgrade request. */
export function upgradeRequest(path = "/media", extra = ""): string {
  return `GET ${path} HTTP/1.1\r\nHost: bot.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;
}

/** The server's 101 response. */
export function upgradeResponse(extensions?: string): string {
  return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n` +
    (extensions ? `Sec-WebSocket-Extensions: ${extensions}\r\n` : "") + "\r\n";
}

/** A Twilio-style media event as JSON text. */
export function twilioMedia(seq: number, payloadB64: string, streamSid = "MZ0123456789abcdef"): string {
  return JSON.stringify({
    event: "media",
    sequenceNumber: String(seq),
    media: { track: "inbound", chunk: String(seq), timestamp: String(seq * 20), payload: payloadB64 },
    streamSid,
  });
}

/** A deterministic base64 μ-law-looking payload of `n` bytes for message `seq`. */
export function mulawB64(seq: number, n = 160): string {
  const b = new Uint8Array(n);
  let x = (seq * 2654435761) >>> 0;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  let s = "";
  for (const v of b) s += String.fromCharCode(v);
  return btoa(s);
}

/** A permessage-deflate compressor with context takeover: each message ends with a sync flush, tail removed. */
export function deflater(): (b: Uint8Array) => Promise<Uint8Array> {
  const d = createDeflateRaw();
  const chunks: Uint8Array[] = [];
  d.on("data", (c: Uint8Array) => chunks.push(c));
  return async (b: Uint8Array) => {
    d.write(b);
    await new Promise<void>((r) => d.flush(constants.Z_SYNC_FLUSH, () => r()));
    const all = concat(...chunks.splice(0));
    return all.subarray(0, all.length - 4);
  };
}

/** `n` bytes that do not compress (a fixed pseudo-random sequence for `seed`). */
export function noise(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}
