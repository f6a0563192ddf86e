/**
 * Protocol Buffers wire-format pieces built by hand, for tests of the `protobuf` envelope and gRPC capture.
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
