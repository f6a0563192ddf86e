/**
 * The `protobuf` envelope: audio in a length-delimited field of a Protocol Buffers message (a gRPC streaming
 * recognizer's `audio_content`, a message on NATS or a WebSocket), named by field numbers: `2` is field 2 of the
 * message, `1.3` field 3 of the message in field 1. The wire format is read directly (no schema): varints,
 * 64- and 32-bit fixed fields and groups (with the fields inside them) are stepped over, and the first occurrence
 * of each field on the path is taken (the one a oneof's sender writes). Bounded by the message: a length past its
 * end is malformed, never read.
 * @module
 */

/** Why a path could not be followed. */
export type ProtobufPathError = "bad_protobuf" | "missing_path";

/** Largest field number (2^29 − 1). */
export const MAX_FIELD_NUMBER = 536_870_911;

/** Field numbers of a `protobuf` path (`2`, `1.3`); undefined when it is not one. */
export function parseProtobufPath(path: string): number[] | undefined {
  if (!/^[1-9][0-9]{0,8}(\.[1-9][0-9]{0,8})*$/.test(path)) return undefined;
  const fields = path.split(".").map(Number);
  return fields.every((f) => f <= MAX_FIELD_NUMBER) ? fields : undefined;
}

const cache = new Map<string, number[] | undefined>();

/** {@link parseProtobufPath}, remembered (a path per tap, asked per message). */
function fieldsOf(path: string): number[] | undefined {
  let f = cache.get(path);
  if (f === undefined && !cache.has(path)) {
    f = parseProtobufPath(path);
    if (cache.size > 256) cache.clear();
    cache.set(path, f);
  }
  return f;
}

/**
 * A varint at `at` of `b` below `end`: its value (as a number: lengths and tags fit in 2^53) and the index after
 * it; undefined when it runs past `end` or over 10 bytes.
 */
function varint(b: Uint8Array, at: number, end: number): [number, number] | undefined {
  let v = 0, scale = 1;
  for (let i = 0; i < 10 && at < end; i++) {
    const x = b[at++]!;
    v += (x & 0x7f) * scale;
    if ((x & 0x80) === 0) return [v, at];
    scale *= 128;
  }
  return undefined;
}

/** Groups nested deeper than this make a message malformed (protobuf's own parsers stop at 100 too). */
const MAX_GROUP_DEPTH = 100;

/**
 * Walks the fields of the message `b[from, end)`, calling `bytes` for each length-delimited field of the message
 * itself (not those inside a group: a group's fields are its own, as a nested message's are) until it returns
 * true. Varints and fixed fields are stepped over; a group's start and end tags must pair up. "found" when `bytes`
 * returned true, "end" when the message ended, "bad_protobuf" when it is not a well-formed message.
 */
function walkFields(
  b: Uint8Array,
  from: number,
  end: number,
  bytes: (field: number, start: number, end: number) => boolean,
): "found" | "end" | "bad_protobuf" {
  /** Field numbers of the groups open here, innermost last. */
  const groups: number[] = [];
  let at = from;
  while (at < end) {
    const tag = varint(b, at, end);
    if (tag === undefined) return "bad_protobuf";
    at = tag[1];
    const number = Math.floor(tag[0] / 8), wire = tag[0] % 8;
    if (number === 0) return "bad_protobuf";
    switch (wire) {
      case 0: {
        const v = varint(b, at, end);
        if (v === undefined) return "bad_protobuf";
        at = v[1];
        break;
      }
      case 1:
        at += 8;
        break;
      case 5:
        at += 4;
        break;
      case 2: {
        const len = varint(b, at, end);
        if (len === undefined || len[0] > end - len[1]) return "bad_protobuf";
        if (groups.length === 0 && bytes(number, len[1], len[1] + len[0])) return "found";
        at = len[1] + len[0];
        break;
      }
      case 3:
        // A group (deprecated) has no length: its fields follow, up to the end tag of the same number.
        if (groups.length >= MAX_GROUP_DEPTH) return "bad_protobuf";
        groups.push(number);
        break;
      case 4:
        if (groups.pop() !== number) return "bad_protobuf";
        break;
      default:
        return "bad_protobuf";
    }
    if (at > end) return "bad_protobuf";
  }
  return groups.length === 0 ? "end" : "bad_protobuf";
}

/**
 * The first field `field` of wire type 2 (length-delimited) in the message `b[from, end)`: its bytes' start and
 * end; "missing_path" when the message has none, "bad_protobuf" when it is not a well-formed message.
 */
function findField(
  b: Uint8Array,
  from: number,
  end: number,
  field: number,
): [number, number] | ProtobufPathError {
  let found: [number, number] | undefined;
  const r = walkFields(b, from, end, (number, start, stop) => {
    if (number !== field) return false;
    found = [start, stop];
    return true;
  });
  return found ?? (r === "bad_protobuf" ? r : "missing_path");
}

/** The bytes at `path` in the message `b` (a view), or why not. `path` must be a valid path. */
export function protobufField(b: Uint8Array, path: string): Uint8Array | ProtobufPathError {
  const fields = fieldsOf(path);
  if (fields === undefined) return "missing_path";
  let from = 0, end = b.length;
  for (const f of fields) {
    const r = findField(b, from, end, f);
    if (typeof r === "string") return r;
    [from, end] = r;
  }
  return b.subarray(from, end);
}

/** A length-delimited field of a message: its number and its bytes' place. */
export interface ProtobufBytesField {
  field: number;
  start: number;
  end: number;
}

/**
 * The length-delimited fields of the message `b[from, end)` in order (other wire types stepped over), or
 * undefined when it is not a well-formed message (for guessing where audio sits: `discover`).
 */
export function protobufBytesFields(
  b: Uint8Array,
  from = 0,
  end = b.length,
): ProtobufBytesField[] | undefined {
  const out: ProtobufBytesField[] = [];
  const r = walkFields(b, from, end, (field, start, stop) => {
    out.push({ field, start, end: stop });
    return false;
  });
  return r === "bad_protobuf" ? undefined : out;
}
