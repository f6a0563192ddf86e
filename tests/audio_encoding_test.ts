import { deepEqual, equal, ok } from "node:assert/strict";
import {
  decodeBase64,
  decodeBase64Portable,
  decodeBase64Span,
  decodeBinary,
  decodedLengthEstimate,
  decodeField,
  decodeHex,
  encodeBase64,
  encodeHex,
} from "../audio/decode/encoding.ts";
import { base64Kernel } from "../audio/decode/base64_simd.ts";
import { rng } from "./support/rng.ts";

const enc = new TextEncoder();

function arr(u: Uint8Array | undefined): number[] | undefined {
  return u ? Array.from(u) : undefined;
}

/** Every decoder entry point must agree: native and portable, text and bytes input. */
function allWays(text: string): (number[] | undefined)[] {
  return [
    arr(decodeBase64(text)),
    arr(decodeBase64(enc.encode(text))),
    arr(decodeBase64Portable(text)),
    arr(decodeBase64Portable(enc.encode(text))),
  ];
}

Deno.test("base64: standard and url-safe alphabets, padding optional, whitespace ignored", () => {
  const cases: [string, number[]][] = [
    ["AQID", [1, 2, 3]],
    ["AQI=", [1, 2]],
    ["AQI", [1, 2]],
    ["AQ==", [1]],
    ["AQ", [1]],
    ["", []],
    ["+/8=", [251, 255]],
    ["-_8", [251, 255]],
    ["-_8=", [251, 255]],
    ["AQID\r\nBA==", [1, 2, 3, 4]],
    [" AQ ID ", [1, 2, 3]],
    ["AQ = =", [1]],
    // Non-zero bits in the last digit are tolerated, as most decoders do.
    ["AR==", [1]],
  ];
  for (const [text, want] of cases) {
    for (const got of allWays(text)) deepEqual(got, want, JSON.stringify(text));
  }
});

Deno.test("base64: malformed values are rejected by every path", () => {
  for (
    const text of ["A", "AQIDB", "AQ=", "AQ==AQ==", "AQ=x", "====", "AQ===", "AQ*D", "AQ\u00e9D", "AQ\u0100D"]
  ) {
    for (const got of allWays(text)) equal(got, undefined, JSON.stringify(text));
  }
});

Deno.test("base64: a value mixing both alphabets decodes", () => {
  deepEqual(arr(decodeBase64("+_8-")), arr(decodeBase64("+/8+")));
  deepEqual(arr(decodeBase64(enc.encode("+_8-"))), arr(decodeBase64("+/8+")));
});

Deno.test("base64: random round trips through encodeBase64 in every variant", () => {
  const r = rng(5);
  for (let trial = 0; trial < 300; trial++) {
    const bytes = Uint8Array.from({ length: Math.floor(r() * 70) }, () => Math.floor(r() * 256));
    const url = r() < 0.5;
    const pad = r() < 0.5;
    const text = encodeBase64(bytes, url, pad);
    if (!pad) ok(!text.includes("="));
    ok(url ? !/[+/]/.test(text) : !/[-_]/.test(text));
    equal(
      btoa(String.fromCharCode(...bytes)).replace(/=+$/, ""),
      text.replace(/=+$/, "").replace(/-/g, "+").replace(/_/g, "/"),
    );
    for (const got of allWays(text)) deepEqual(got, Array.from(bytes));
  }
});

Deno.test("base64: transient results share a scratch buffer, plain ones do not", () => {
  const a = decodeBase64("AQID", true)!;
  const b = decodeBase64("BAUG", true)!;
  equal(a.buffer, b.buffer);
  deepEqual(Array.from(b), [4, 5, 6]);
  const c = decodeBase64("AQID")!;
  const d = decodeBase64("BAUG")!;
  ok(c.buffer !== d.buffer);
  deepEqual(Array.from(c), [1, 2, 3]);
});

Deno.test("base64: a long value decodes past any scratch growth", () => {
  const bytes = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 31) & 0xff);
  deepEqual(arr(decodeBase64(encodeBase64(bytes), true)), Array.from(bytes));
});

Deno.test("hex: either case, text or bytes; odd length and non-hex characters rejected", () => {
  deepEqual(arr(decodeHex("00ff7Fa0")), [0, 255, 127, 160]);
  deepEqual(arr(decodeHex(enc.encode("00FF7fA0"))), [0, 255, 127, 160]);
  deepEqual(arr(decodeHex("")), []);
  equal(decodeHex("abc"), undefined);
  equal(decodeHex("zz"), undefined);
  equal(decodeHex("0 1"), undefined);
  equal(decodeHex("\u0130\u0130"), undefined);
  equal(decodeHex(enc.encode("0g")), undefined);
  const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
  deepEqual(arr(decodeHex(encodeHex(bytes))), Array.from(bytes));
});

Deno.test("binary: bytes pass through, text maps code units to bytes", () => {
  const bytes = new Uint8Array([0, 128, 255]);
  equal(decodeBinary(bytes), bytes);
  deepEqual(arr(decodeBinary("\u0000\u0080\u00ff")), [0, 128, 255]);
  equal(decodeBinary("\u0100"), undefined);
});

Deno.test("decodeField reports the counter reason of each encoding", () => {
  deepEqual(decodeField("A", "base64"), { ok: false, reason: "bad_base64" });
  deepEqual(decodeField("a", "hex"), { ok: false, reason: "bad_hex" });
  deepEqual(decodeField("\u2603", "binary"), { ok: false, reason: "bad_binary" });
  const r = decodeField("AQID", "base64");
  ok(r.ok);
  deepEqual(Array.from(r.bytes), [1, 2, 3]);
});

Deno.test("decodedLengthEstimate inverts each encoding's size ratio", () => {
  equal(decodedLengthEstimate(216, "base64"), 162);
  equal(decodedLengthEstimate(320, "hex"), 160);
  equal(decodedLengthEstimate(160, "binary"), 160);
  equal(decodedLengthEstimate(-5, "binary"), 0);
});

Deno.test("base64: native and JS decoders agree on random text, short and past the bytes threshold", () => {
  const r = rng(17);
  const digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const odd = ["=", " ", "\n", "-", "_", "*", "\u00e9"];
  for (let t = 0; t < 4000; t++) {
    // Mostly valid digits with a little noise, either side of the 864-character switch for bytes.
    const n = t % 2 === 0 ? Math.floor(r() * 16) : 850 + Math.floor(r() * 40);
    let text = "";
    for (let i = 0; i < n; i++) {
      text += r() < (t % 2 === 0 ? 0.2 : 0.002)
        ? odd[Math.floor(r() * odd.length)]!
        : digits[Math.floor(r() * 64)]!;
    }
    const ways = allWays(text);
    for (const got of ways.slice(1)) deepEqual(got, ways[0], JSON.stringify(text.slice(0, 40)));
  }
});

Deno.test("base64: long values (the engine's decoder for bytes too) agree with the portable decoder", () => {
  // Past the length from which bytes go to the engine's decoder: the same cases, well-formed and not, behind a
  // long run of digits.
  const lead = "AAAA".repeat(100);
  const cases = [
    "AQID",
    "AQI=",
    "AQI",
    "AQ==",
    "AQ",
    "+/8=",
    "-_8",
    "AQID\r\nBA==",
    " AQ ID ",
    "AQ = =",
    "AR==",
  ];
  const bad = ["A", "AQIDB", "AQ=", "AQ==AQ==", "AQ=x", "AQ===", "AQ*D", "AQ\u00e9D", "+_8-"];
  for (const text of [...cases, ...bad]) {
    const want = arr(decodeBase64Portable(lead + text));
    for (const got of allWays(lead + text)) deepEqual(got, want, JSON.stringify(text));
  }
  const r = rng(9);
  for (let trial = 0; trial < 200; trial++) {
    const bytes = Uint8Array.from({ length: 150 + Math.floor(r() * 700) }, () => Math.floor(r() * 256));
    const text = encodeBase64(bytes, r() < 0.5, r() < 0.5);
    for (const got of allWays(text)) deepEqual(got, Array.from(bytes));
  }
});

Deno.test("base64 SIMD kernel: each byte value at each place of a block stops it unless a digit, values exact", () => {
  const kernel = base64Kernel();
  if (kernel === undefined) return; // no WebAssembly SIMD here: the JS decoder does it all
  const digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_";
  const r = rng(23);
  for (let c = 0; c < 256; c++) {
    const digit = digits.includes(String.fromCharCode(c));
    for (let at = 0; at < 16; at++) {
      // Three blocks: the byte in the second; the kernel decodes the first, and the second only if it is a digit.
      const block = Uint8Array.from({ length: 48 }, () => digits.charCodeAt(Math.floor(r() * 66)));
      block[16 + at] = c;
      const done = kernel.decode(block);
      equal(done, digit ? 48 : 16, `0x${c.toString(16)} at ${at}`);
      deepEqual(
        Array.from(kernel.out.subarray(0, (done / 4) * 3)),
        arr(decodeBase64Portable(block.subarray(0, done))),
        `0x${c.toString(16)} at ${at}`,
      );
    }
  }
  // A partial last block is left to the JS decoder.
  equal(kernel.decode(enc.encode("A".repeat(47))), 32);
});

Deno.test("base64: bytes through the SIMD kernel agree with the portable decoder, and plain results are kept", () => {
  const r = rng(29);
  const digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_";
  const odd = ["=", " ", "\n", "*", "\u00e9", "=="];
  for (let t = 0; t < 3000; t++) {
    const n = 40 + Math.floor(r() * 300);
    let text = "";
    for (let i = 0; i < n; i++) {
      text += r() < 0.003 ? odd[Math.floor(r() * odd.length)]! : digits[Math.floor(r() * 66)]!;
    }
    if (r() < 0.3) text += "=".repeat(Math.floor(r() * 3));
    const bytes = enc.encode(text);
    const want = arr(decodeBase64Portable(text));
    deepEqual(arr(decodeBase64(bytes, true)), want, text);
    deepEqual(arr(decodeBase64(bytes)), want, text);
  }
  // A plain (not transient) result is its own: the next decode does not overwrite it.
  const a = decodeBase64(enc.encode(encodeBase64(new Uint8Array(300).fill(7))))!;
  decodeBase64(enc.encode(encodeBase64(new Uint8Array(300).fill(9))), true);
  decodeBase64(enc.encode(encodeBase64(new Uint8Array(300).fill(9))));
  ok(a.every((v) => v === 7));
});

Deno.test("base64 from bytes, transient: messages of one size get the same view, each with its own bytes", () => {
  const enc = new TextEncoder();
  const b64 = (bytes: number[]) => enc.encode(btoa(String.fromCharCode(...bytes)));
  // Long enough for the SIMD kernel where it runs, padded (the tail decoded in place).
  const one = Array.from({ length: 100 }, (_, i) => i), two = one.map((v) => 255 - v);
  const a = decodeBase64(b64(one), true)!;
  deepEqual([...a], one);
  const b = decodeBase64(b64(two), true)!;
  ok(a === b, "one view for messages of one size");
  deepEqual([...b], two);
  const c = decodeBase64(b64(one.slice(0, 40)), true)!;
  ok(c !== b);
  deepEqual([...c], one.slice(0, 40));
  // Not transient: arrays of their own, never shared.
  const d = decodeBase64(b64(one))!, e = decodeBase64(b64(one))!;
  ok(d !== e && d.buffer !== e.buffer);
  deepEqual([...d], one);
});

Deno.test("decodeField, transient: one result object, holding each decode's bytes; failures and owned results apart", () => {
  const a = decodeField("AQID", "base64", true);
  ok(a.ok);
  deepEqual([...a.bytes], [1, 2, 3]);
  const b = decodeField("0405", "hex", true);
  ok(a === b, "the transient result is reused");
  ok(b.ok);
  deepEqual([...b.bytes], [4, 5]);
  deepEqual(decodeField("A", "base64", true), { ok: false, reason: "bad_base64" });
  const c = decodeField("AQID", "base64"), d = decodeField("AQID", "base64");
  ok(c !== d && c !== a);
});

Deno.test("decodeBase64Span: the digits of a body decoded where they lie, as decodeBase64 decodes them", () => {
  const r = rng(31);
  const digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_";
  const odd = ["=", " ", "*", "\u00e9", "=="];
  let decoded = 0;
  for (let t = 0; t < 2000; t++) {
    const n = Math.floor(r() * 400);
    let text = "";
    for (let i = 0; i < n; i++) {
      text += r() < 0.002 ? odd[Math.floor(r() * odd.length)]! : digits[Math.floor(r() * 66)]!;
    }
    if (r() < 0.3) text += "=".repeat(Math.floor(r() * 3));
    const head = '{"seq":"' + "x".repeat(Math.floor(r() * 40)) + '","payload":"';
    const body = enc.encode(head + text + '"}');
    const start = enc.encode(head).length, end = start + enc.encode(text).length;
    const got = decodeBase64Span(body, start, end);
    const want = decodeBase64(body.subarray(start, end), true);
    // Undefined only where decodeField must decide: too few digits for the kernel, or digits that do not decode.
    if (got === undefined) ok(end - start < 48 || base64Kernel() === undefined || want === undefined, text);
    else {
      deepEqual(arr(got), arr(want), text);
      decoded++;
    }
  }
  ok(base64Kernel() === undefined || decoded > 500, `${decoded} decoded`);
});
