import { equal } from "node:assert/strict";
import { fromBase64, toBase64, toBase64Portable } from "../report/records.ts";

Deno.test("records' base64: the engine's encoder and the portable one write the same text, which reads back", () => {
  let seed = 7;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  // Every padding case, and lengths past the portable encoder's 32 KiB pieces.
  for (const n of [0, 1, 2, 3, 4, 5, 255, 1024, 0x8000 - 1, 0x8000, 0x8000 + 1, 0x8000 * 2 + 2, 100_003]) {
    const bytes = new Uint8Array(n);
    for (let i = 0; i < n; i++) bytes[i] = next() >>> 24;
    const text = toBase64(bytes);
    equal(text, toBase64Portable(bytes), `length ${n}`);
    equal(text.length, Math.ceil(n / 3) * 4);
    const back = fromBase64(text)!;
    equal(back.length, n);
    equal(back.every((b, i) => b === bytes[i]), true, `length ${n}`);
  }
  // A view into a larger buffer encodes only its own bytes.
  const whole = Uint8Array.from([9, 1, 2, 3, 9]);
  equal(toBase64(whole.subarray(1, 4)), btoa("\x01\x02\x03"));
});
