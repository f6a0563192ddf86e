import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { decodeBlock, encodeBlock, encodeBlockPair, HEADER_BYTES } from "../audio/decode/adpcm4.ts";
import { rng } from "./support/rng.ts";

function roundTrip(x: Int16Array): Int16Array {
  const codes = new Uint8Array(Math.ceil(x.length / 2)), head = new Uint8Array(HEADER_BYTES);
  encodeBlock(x, 0, x.length, codes, 0, head, 0);
  const out = new Int16Array(x.length);
  decodeBlock(codes, 0, head, 0, 0, x.length, out, 0, 0xffff);
  return out;
}

function snrDb(x: Int16Array, y: Int16Array): number {
  let s = 0, e = 0;
  for (let i = 0; i < x.length; i++) {
    s += x[i]! ** 2;
    e += (x[i]! - y[i]!) ** 2;
  }
  return 10 * Math.log10(s / Math.max(e, 1e-9));
}

Deno.test("adpcm4: any part of a block decodes to what the whole block decodes to", () => {
  const rnd = rng(1);
  const x = Int16Array.from(
    { length: 256 },
    (_, i) => Math.round(3000 * Math.sin(i / 5) + 500 * (rnd() - 0.5)),
  );
  const codes = new Uint8Array(128), head = new Uint8Array(HEADER_BYTES);
  encodeBlock(x, 0, 256, codes, 0, head, 0);
  const whole = new Int16Array(256);
  decodeBlock(codes, 0, head, 0, 0, 256, whole, 0, 255);
  strictEqual(whole[0], x[0], "the first value is exact");
  // Into a ring at another base: only [lo, hi) is written.
  const ring = new Int16Array(1024).fill(7);
  decodeBlock(codes, 0, head, 0, 100, 180, ring, 1000, 1023);
  for (let k = 0; k < 256; k++) {
    const slot = (1000 + k) & 1023;
    strictEqual(ring[slot], k >= 100 && k < 180 ? whole[k] : 7, `k ${k}`);
  }
  ok(snrDb(x, whole) > 20, `SNR ${snrDb(x, whole)}`);
});

Deno.test("adpcm4: silence is exact; full-scale jumps are followed within a few samples, clamped", () => {
  deepStrictEqual(roundTrip(new Int16Array(256)), new Int16Array(256));
  // Jumps of the whole Int16 range every 16 samples: the step needs ~8 samples to grow that far.
  const square = Int16Array.from({ length: 256 }, (_, i) => (i & 16 ? 32767 : -32768));
  const y = roundTrip(square);
  let settled = 0;
  for (let i = 0; i < 256; i++) if ((i & 15) >= 10 && Math.abs(square[i]! - y[i]!) < 4000) settled++;
  strictEqual(settled, 16 * 6, "within 1/8 of full scale 10 samples after each jump");
});

Deno.test("adpcm4: the block's own predictor codes a resonance far better than white noise", () => {
  // Noise through a 500 Hz resonance (poles at radius 0.95): what a second-order predictor removes, ~17 dB
  // better than white noise of the same coder.
  const rnd = rng(3);
  const x = new Int16Array(256);
  let y1 = 0, y2 = 0;
  for (let i = -100; i < 256; i++) {
    const y = 1.9 * Math.cos((2 * Math.PI * 500) / 8000) * y1 - 0.9025 * y2 + 300 * (rnd() - 0.5);
    if (i >= 0) x[i] = Math.round(y);
    y2 = y1;
    y1 = y;
  }
  const white = Int16Array.from({ length: 256 }, () => Math.round(3000 * (rnd() - 0.5)));
  const resonance = snrDb(x, roundTrip(x)), noise = snrDb(white, roundTrip(white));
  ok(resonance > 32, `resonance: SNR ${resonance.toFixed(1)} dB`);
  ok(noise > 15 && noise < 25, `white noise: SNR ${noise.toFixed(1)} dB`);
});

Deno.test("adpcm4: codes, headers and decoded values are bit for bit the reference coder's", async () => {
  const ref = await import("./support/adpcm4_reference.ts");
  const rnd = rng(7);
  // Signals the ring sees and the edges of the coder: silence, speech-like resonances at every level, white
  // noise, full-scale squares (clamping), a lone spike, and random counts and offsets (odd counts, one value).
  const kinds = [
    () => 0,
    (i: number) => Math.round(20000 * Math.sin(i / 3)),
    () => Math.round(65535 * rnd() - 32768),
    (i: number) => (i & 8 ? 32767 : -32768),
    (i: number) => (i === 100 ? 32767 : 0),
    // A quiet lead (the smallest step) then full-scale jumps: errors whose quantiser product needs the cap.
    (i: number) => (i % 64 < 12 ? -32768 : i & 1 ? 32767 : -32768),
    // A slow full-scale tone: the predictor overshoots past Int16 near its peaks (clamped predictions).
    (i: number) => Math.max(-32768, Math.min(32767, Math.round(40000 * Math.sin(i / 40)))),
    (i: number) => (i % 50 < 25 ? 32767 : -32768),
    // A flat lead on one rail (the smallest step), a jump to the other, a growing fall back: an error of
    // 65,535 at the smallest step, whose quantiser product needs the cap to stay an int32.
    (i: number) => {
      const k = i % 256;
      return k < 12 ? -32768 : k === 12 ? 32767 : Math.max(-32768, Math.round(-100 * 1.08 ** (k - 12)));
    },
    // Exponential growth into a rail: a predictor gain above 1 predicts past it (clamped predictions).
    (i: number) => Math.min(32767, Math.round(32767 * 1.1 ** ((i % 256) - 20))),
    (i: number) => -Math.min(32768, Math.round(32768 * 1.1 ** ((i % 256) - 20))),
  ];
  const src = new Int16Array(4096);
  for (let trial = 0; trial < 3000; trial++) {
    const kind = trial % (kinds.length + 1);
    let y1 = 0, y2 = 0;
    const gain = 2 ** (16 * rnd());
    for (let i = 0; i < src.length; i++) {
      let v: number;
      if (kind < kinds.length) v = kinds[kind]!(i);
      else {
        const r = 2 * rnd() * Math.cos(Math.PI * rnd());
        v = Math.max(-1, Math.min(1, 0.9 * r * y1 - 0.8 * y2 + 0.2 * (rnd() - 0.5)));
        y2 = y1;
        y1 = v;
        v = Math.round(v * gain);
      }
      src[i] = v;
    }
    const n = trial % 7 === 0 ? 1 + ((trial / 7) % 9) : trial % 7 === 1 ? 1 + Math.floor(rnd() * 256) : 256;
    // Every other trial starts at a period of the periodic signals (their designed edge case in full).
    const from = trial & 1 ? 256 * Math.floor(rnd() * 8) : Math.floor(rnd() * (src.length - n));
    const at = Math.floor(rnd() * 64), h = Math.floor(rnd() * 16);
    // Both buffers start with the same stale bytes: a ring slot reused by another block.
    const stale = Uint8Array.from({ length: 256 }, () => Math.floor(rnd() * 256));
    const codesA = stale.slice(), codesB = stale.slice();
    const headsA = stale.slice(0, 32), headsB = stale.slice(0, 32);
    encodeBlock(src, from, n, codesA, at, headsA, h);
    ref.encodeBlock(src, from, n, codesB, at, headsB, h);
    deepStrictEqual(codesA, codesB, `trial ${trial}: codes`);
    deepStrictEqual(headsA, headsB, `trial ${trial}: header`);
    const lo = Math.floor(rnd() * n), hi = lo + Math.floor(rnd() * (n - lo + 1));
    const outA = new Int16Array(512).fill(-5), outB = new Int16Array(512).fill(-5);
    decodeBlock(codesA, at, headsA, h, lo, hi, outA, 300, 511);
    ref.decodeBlock(codesA, at, headsA, h, lo, hi, outB, 300, 511);
    deepStrictEqual(outA, outB, `trial ${trial}: decoded [${lo}, ${hi})`);
    // Two blocks coded together, this one in either lane (the other a noise block: lanes must not leak).
    const other = Int16Array.from({ length: 256 }, () => Math.round(65535 * rnd() - 32768) >> (trial % 16));
    const refO = stale.slice().reverse(), refHo = stale.slice(32, 64);
    ref.encodeBlock(other, 0, n, refO, 3, refHo, 7);
    for (const thisFirst of [true, false]) {
      const codesT = stale.slice(), headsT = stale.slice(0, 32);
      const codesO = stale.slice().reverse(), headsO = stale.slice(32, 64);
      const lane = (first: boolean) =>
        first ? [src, from, codesT, at, headsT, h] as const : [other, 0, codesO, 3, headsO, 7] as const;
      encodeBlockPair(n, ...lane(thisFirst), ...lane(!thisFirst));
      const where = `trial ${trial}: pair, this block ${thisFirst ? "first" : "second"}`;
      deepStrictEqual(codesT, codesB, `${where}: its codes`);
      deepStrictEqual(headsT, headsB, `${where}: its header`);
      deepStrictEqual(codesO, refO, `${where}: the other's codes`);
      deepStrictEqual(headsO, refHo, `${where}: the other's header`);
    }
  }
});
