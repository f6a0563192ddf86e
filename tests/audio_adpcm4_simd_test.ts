import { deepStrictEqual, ok } from "node:assert/strict";
import { encodeBlock } from "../audio/decode/adpcm4.ts";
import { adpcm4Octet, G711_LAWS, LANES, OCTET_BLOCK } from "../audio/decode/adpcm4_simd.ts";
import { ALAW_TO_LINEAR, MULAW_TO_LINEAR } from "../audio/decode/codecs.ts";
import { ringValues } from "../audio/decode/sample_ring.ts";
import { rng } from "./support/rng.ts";

Deno.test("adpcm4 kernel: the lanes code each block bit for bit as encodeBlock", () => {
  const octet = adpcm4Octet();
  ok(octet, "WebAssembly SIMD runs here");
  const rnd = rng(11);
  const heads = new Uint8Array(5 * LANES);
  for (let trial = 0; trial < 300; trial++) {
    const blocks: Int16Array[] = [];
    for (let l = 0; l < LANES; l++) {
      const kind = (trial + l) % 4;
      const gain = 2 ** (16 * rnd());
      let y1 = 0, y2 = 0;
      blocks.push(Int16Array.from({ length: OCTET_BLOCK }, (_, i) => {
        // Full-scale noise (errors beyond 8 steps, clamped values), silence, a loud tone, resonant noise.
        if (kind === 0) return Math.round(65535 * rnd() - 32768);
        if (kind === 1) return 0;
        if (kind === 2) return Math.round(32767 * Math.sin(i * (0.05 + l * 0.3)));
        const v = Math.max(-1, Math.min(1, 1.8 * y1 - 0.9 * y2 + 0.1 * (rnd() - 0.5)));
        y2 = y1;
        y1 = v;
        return Math.max(-32768, Math.min(32767, Math.round(v * gain)));
      }));
    }
    const want: Uint8Array[] = [];
    for (let l = 0; l < LANES; l++) {
      const codes = new Uint8Array(OCTET_BLOCK >> 1);
      encodeBlock(blocks[l]!, 0, OCTET_BLOCK, codes, 0, heads, 5 * l);
      want.push(codes);
      for (let k = 0; k < OCTET_BLOCK; k++) octet.values[LANES * k + l] = blocks[l]![k]!;
      octet.params[l] = (heads[5 * l + 3]! << 24) >> 24;
      octet.params[LANES + l] = (heads[5 * l + 4]! << 24) >> 24;
      octet.params[2 * LANES + l] = heads[5 * l + 2]!;
    }
    octet.run();
    for (let l = 0; l < LANES; l++) deepStrictEqual(octet.codes[l], want[l], `trial ${trial}, lane ${l}`);
  }
});

Deno.test("adpcm4 kernel: each lane's G.711 codes decoded at its law and shift, and writeHeader's sums", () => {
  const octet = adpcm4Octet();
  ok(octet, "WebAssembly SIMD runs here");
  const rnd = rng(12);
  // The ring's values of the laws' codes, as sample_ring.ts makes them.
  const laws = [MULAW_TO_LINEAR, ALAW_TO_LINEAR].map(ringValues);
  for (let trial = 0; trial < 60; trial++) {
    const want: number[][] = [];
    for (let l = 0; l < LANES; l++) {
      // Every code of both laws at every shift in the first trials, random codes after.
      const codes = Uint8Array.from(
        { length: OCTET_BLOCK },
        (_, k) => trial < 8 ? k : Math.floor(256 * rnd()),
      );
      const law = trial < 8 ? (trial + l) % G711_LAWS : Math.floor(G711_LAWS * rnd());
      const shift = trial < 8 ? (trial >> 1) % 4 : Math.floor(3 * rnd());
      octet.laneCodes[l]!.set(codes);
      octet.lanes[l] = law;
      octet.lanes[LANES + l] = shift;
      const values = Int16Array.from(codes, (c) => laws[law]![c]! << shift);
      // writeHeader's sums, as it makes them.
      let v2 = values[0]! >> 4, v1 = values[1]! >> 4;
      let s0 = (v2 * v2 + v1 * v1) | 0, s1 = (v1 * v2) | 0, s2 = 0;
      for (let i = 2; i < OCTET_BLOCK; i++) {
        const v = values[i]! >> 4;
        s0 = (s0 + v * v) | 0;
        s1 = (s1 + v * v1) | 0;
        s2 = (s2 + v * v2) | 0;
        v2 = v1;
        v1 = v;
      }
      want.push([...values, s0, s1, s2]);
    }
    octet.decode();
    for (let l = 0; l < LANES; l++) {
      const got: number[] = Array.from({ length: OCTET_BLOCK }, (_, k) => octet.values[LANES * k + l]!);
      got.push(octet.sums[l]!, octet.sums[LANES + l]!, octet.sums[2 * LANES + l]!);
      deepStrictEqual(got, want[l], `trial ${trial}, lane ${l}`);
    }
  }
});
