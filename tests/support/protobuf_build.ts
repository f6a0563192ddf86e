/**
 * Protocol Buffers wire-format pieces, HTTP/2 frames and gRPC messages built by hand, for tests of the `protobuf`
 * envelope and gRPC capture.
 * @module
 */

/** A varint's bytes. */
export function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 128) {
    out.push((n % 128) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/** Field `f` of wire type 2 (length-delimited) holding `b`. */
export function bytesField(f: number, b: Uint8Array | readonly number[]): number[] {
  return [...varint(f * 8 + 2), ...varint(b.length), ...b];
}

/** An HTTP/2 frame. */
export function frame(type: number, flags: number, id: number, payload: Uint8Array | number[]): number[] {
  const n = payload.length;
  return [
    n >> 16,
    (n >> 8) & 255,
    n & 255,
    type,
    flags,
    (id >>> 24) & 127,
    (id >> 16) & 255,
    (id >> 8) & 255,
    id & 255,
    ...payload,
  ];
}
/** A gRPC length-prefixed message. */
export function grpcMessage(body: Uint8Array | number[], compressed = false): number[] {
  const n = body.length;
  return [compressed ? 1 : 0, n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255, ...body];
}
