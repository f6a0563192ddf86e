/**
 * The `protobuf` envelope's walk over groups (proto2's deprecated length-less nesting): a group's fields belong to
 * the group, so a field of the same number inside it is not the message's own, and start and end tags must pair.
 */
import { deepEqual, equal } from "node:assert/strict";
import { protobufBytesFields, protobufField } from "../audio/decode/protobuf_path.ts";
import { bytesField, varint } from "./support/protobuf_build.ts";

const te = new TextEncoder();
const START = 3, END = 4;

Deno.test("s31 protobuf groups: a field inside a group is not the message's field of that number", () => {
  // proto2: `optional group Meta = 1 { optional bytes label = 2; }  optional bytes audio = 2;`
  const msg = new Uint8Array([
    ...varint(1 * 8 + START),
    ...bytesField(2, te.encode("label")),
    ...varint(1 * 8 + END),
    ...bytesField(2, te.encode("AUDIO")),
  ]);
  deepEqual(protobufField(msg, "2"), te.encode("AUDIO"));
  deepEqual(protobufBytesFields(msg)?.map((f) => [f.field, f.end - f.start]), [[2, 5]]);
  // Nested groups, and a group holding a message field.
  const nested = new Uint8Array([
    ...varint(1 * 8 + START),
    ...varint(5 * 8 + START),
    ...bytesField(2, [1]),
    ...varint(5 * 8 + END),
    ...bytesField(3, bytesField(2, [2])),
    ...varint(1 * 8 + END),
    ...bytesField(2, [3, 3]),
  ]);
  deepEqual(protobufField(nested, "2"), new Uint8Array([3, 3]));
  equal(protobufField(nested, "3"), "missing_path");
});

Deno.test("s31 protobuf groups: unpaired tags, and nesting past 100, are malformed", () => {
  // An end tag with no start, one of another number, a group never ended.
  equal(protobufField(new Uint8Array([...varint(1 * 8 + END), ...bytesField(3, [1])]), "2"), "bad_protobuf");
  equal(
    protobufField(
      new Uint8Array([...varint(1 * 8 + START), ...varint(2 * 8 + END), ...bytesField(3, [1])]),
      "2",
    ),
    "bad_protobuf",
  );
  equal(
    protobufField(new Uint8Array([...varint(1 * 8 + START), ...bytesField(3, [1])]), "2"),
    "bad_protobuf",
  );
  equal(protobufBytesFields(new Uint8Array([...varint(1 * 8 + START), ...bytesField(3, [1])])), undefined);
  // 100 deep is taken, 101 is not (a megabyte of start tags holds nothing per tag).
  const deep = (n: number) =>
    new Uint8Array([
      ...new Array(n).fill(1 * 8 + START),
      ...new Array(n).fill(1 * 8 + END),
      ...bytesField(2, [7]),
    ]);
  deepEqual(protobufField(deep(100), "2"), new Uint8Array([7]));
  equal(protobufField(deep(101), "2"), "bad_protobuf");
  equal(protobufField(new Uint8Array(1 << 20).fill(1 * 8 + START), "2"), "bad_protobuf");
});
