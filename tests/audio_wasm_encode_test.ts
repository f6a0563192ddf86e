import { deepEqual, ok } from "node:assert/strict";
import { name, section, sleb, uleb, WASM_HEADER } from "../util/wasm_encode.ts";

Deno.test("wasm_encode: LEB128 known answers (the format's own examples) and edges", () => {
  deepEqual(uleb(0), [0]);
  deepEqual(uleb(127), [0x7f]);
  deepEqual(uleb(128), [0x80, 0x01]);
  deepEqual(uleb(624485), [0xe5, 0x8e, 0x26]);
  deepEqual(sleb(63), [0x3f]);
  deepEqual(sleb(64), [0xc0, 0x00]);
  deepEqual(sleb(-1), [0x7f]);
  deepEqual(sleb(-64), [0x40]);
  deepEqual(sleb(-123456), [0xc0, 0xbb, 0x78]);
});

Deno.test("wasm_encode: a module of one exported function built from the pieces validates and runs", () => {
  // (func (export "k") (result i32) i32.const -2)
  const body = [0, 0x41, ...sleb(-2), 0x0b];
  const bytes = new Uint8Array([
    ...WASM_HEADER,
    ...section(1, [1, 0x60, 0, 1, 0x7f]),
    ...section(3, [1, 0]),
    ...section(7, [1, ...name("k"), 0x00, 0]),
    ...section(10, [1, ...uleb(body.length), ...body]),
  ]);
  ok(WebAssembly.validate(bytes));
  const k = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports.k as () => number;
  deepEqual(k(), -2);
});
