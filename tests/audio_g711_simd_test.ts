import { ok, strictEqual } from "node:assert/strict";
import { ALAW_TO_LINEAR, MULAW_TO_LINEAR } from "../audio/decode/codecs.ts";
import { G711_BLOCK, g711Block, type G711Law } from "../audio/decode/g711_simd.ts";
import { rng } from "./support/rng.ts";

/** Each law's ring values (linear / 4) by code. */
const LAWS = [MULAW_TO_LINEAR, ALAW_TO_LINEAR].map((t) => Int16Array.from(t, (v) => v / 4));

Deno.test("g711 kernel: every Int16 value is the law's own exactly when it is, with the code whose value it is", () => {
  const k = g711Block();
  ok(k, "WebAssembly SIMD runs here");
  for (const law of [0, 1] as G711Law[]) {
    const dec = LAWS[law]!;
    const own = new Map<number, number>();
    // The last code of a value, as the ring's nearest-code table ties (μ-law's zero: 0xff).
    dec.forEach((v, c) => own.set(v, c));
    for (let v = -32768; v <= 32767; v++) {
      k.values.fill(v);
      const miss: number = k.encode(law);
      const want = own.get(v);
      strictEqual(miss === 0, want !== undefined, `law ${law}, value ${v}`);
      if (want !== undefined) {
        for (let i = 0; i < G711_BLOCK; i++) strictEqual(k.codes[i], want, `law ${law}, value ${v}`);
      }
    }
  }
});

Deno.test("g711 kernel: a block of the law's own values coded lane by lane; one value off anywhere is seen", () => {
  const k = g711Block();
  ok(k, "WebAssembly SIMD runs here");
  const rnd = rng(17);
  for (const law of [0, 1] as G711Law[]) {
    const dec = LAWS[law]!;
    for (let trial = 0; trial < 200; trial++) {
      const codes = Uint8Array.from({ length: G711_BLOCK }, () => Math.floor(256 * rnd()));
      // μ-law's 0x7f is zero too: the ring codes zero as 0xff.
      if (law === 0) codes.forEach((c, i) => c === 0x7f && (codes[i] = 0xff));
      k.values.set(Int16Array.from(codes, (c) => dec[c]!));
      strictEqual(k.encode(law), 0, `law ${law}, trial ${trial}`);
      for (let i = 0; i < G711_BLOCK; i++) {
        strictEqual(k.codes[i], codes[i], `law ${law}, trial ${trial}, ${i}`);
      }
      const at = Math.floor(G711_BLOCK * rnd());
      k.values[at] = k.values[at]! + (rnd() < 0.5 ? 1 : -1);
      ok(k.encode(law) !== 0, `law ${law}, trial ${trial}: value ${at} off by one`);
    }
  }
});
