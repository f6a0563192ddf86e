import { deepEqual, equal, ok } from "node:assert/strict";
import {
  ALAW_TO_LINEAR,
  allocSamples,
  bytesPerSample,
  type Codec,
  decodeSamples,
  encodeSamples,
  FLOAT_LIMIT,
  floatToInt16,
  linearToAlaw,
  linearToMulaw,
  MULAW_TO_LINEAR,
} from "../audio/decode/codecs.ts";
import { Resampler } from "../audio/decode/resample.ts";
import { rng } from "./support/rng.ts";

Deno.test("G.711 mu-law decode: known answers from the ITU-T tables", () => {
  // Code words are transmitted inverted; 0xFF/0x7F are +0/-0, 0x80/0x00 the extremes (8031 * 4 in 16-bit).
  equal(MULAW_TO_LINEAR[0xff], 0);
  equal(MULAW_TO_LINEAR[0x7f], 0);
  equal(MULAW_TO_LINEAR[0x00], -32124);
  equal(MULAW_TO_LINEAR[0x80], 32124);
  // Segment 0 step is 2 in 14-bit units (8 in 16-bit); segment 7 step is 256 (1024).
  equal(MULAW_TO_LINEAR[0xfe], 8);
  equal(MULAW_TO_LINEAR[0xf0], 120);
  equal(MULAW_TO_LINEAR[0xef], 132);
  equal(MULAW_TO_LINEAR[0x81], 31100);
  equal(MULAW_TO_LINEAR[0x7e], -8);
  // Positive codes fall monotonically from 0x80 to 0xFF; the negative half mirrors them.
  for (let c = 0x80; c < 0xff; c++) ok(MULAW_TO_LINEAR[c]! > MULAW_TO_LINEAR[c + 1]!);
  for (let c = 0; c < 0x80; c++) equal(MULAW_TO_LINEAR[c], -MULAW_TO_LINEAR[c | 0x80]!);
});

Deno.test("G.711 A-law decode: known answers from the ITU-T tables", () => {
  // Even bits are inverted on the line (xor 0x55); 0xD5/0x55 are the smallest magnitudes, +-1 in 13-bit units.
  equal(ALAW_TO_LINEAR[0xd5], 8);
  equal(ALAW_TO_LINEAR[0x55], -8);
  equal(ALAW_TO_LINEAR[0xaa], 32256);
  equal(ALAW_TO_LINEAR[0x2a], -32256);
  equal(ALAW_TO_LINEAR[0xd4], 24);
  equal(ALAW_TO_LINEAR[0xc5], 264);
  for (let c = 0; c < 0x80; c++) equal(ALAW_TO_LINEAR[c], -ALAW_TO_LINEAR[c | 0x80]!);
  const magnitudes = Array.from({ length: 128 }, (_, i) => ALAW_TO_LINEAR[(i ^ 0x55) | 0x80]!);
  for (let i = 1; i < 128; i++) ok(magnitudes[i]! > magnitudes[i - 1]!);
});

Deno.test("G.711 encode: known answers and round trip of every code", () => {
  equal(linearToMulaw(0), 0xff);
  equal(linearToMulaw(32767), 0x80);
  equal(linearToMulaw(-32768), 0x00);
  equal(linearToMulaw(8), 0xfe);
  equal(linearToAlaw(0), 0xd5);
  equal(linearToAlaw(-1), 0x55);
  equal(linearToAlaw(32767), 0xaa);
  equal(linearToAlaw(-32768), 0x2a);
  for (let c = 0; c < 256; c++) {
    // -0 (0x7F) re-encodes as +0: the only mu-law code that does not survive a round trip.
    if (c !== 0x7f) equal(linearToMulaw(MULAW_TO_LINEAR[c]!), c, `mu-law ${c}`);
    equal(linearToAlaw(ALAW_TO_LINEAR[c]!), c, `A-law ${c}`);
  }
});

Deno.test("G.711 encode picks the nearer of the two neighbouring levels away from decision points", () => {
  // Positive half: on the negative half the reference's arithmetic shifts round toward -inf, moving decision
  // points by up to one 14-bit unit.
  for (const [table, enc] of [[MULAW_TO_LINEAR, linearToMulaw], [ALAW_TO_LINEAR, linearToAlaw]] as const) {
    const levels = [...new Set(Array.from(table))].filter((v) => v > 0).sort((a, b) => a - b);
    for (let i = 0; i + 1 < levels.length; i++) {
      const lo = levels[i]!;
      const hi = levels[i + 1]!;
      if (hi - lo < 8) continue;
      // A quarter of the way from each level, the encoder must land on that level.
      equal(table[enc(lo + Math.floor((hi - lo) / 4))], lo);
      equal(table[enc(hi - Math.floor((hi - lo) / 4))], hi);
    }
  }
});

Deno.test("decodeSamples: G.711 bytes scale by 1/32768", () => {
  const r = decodeSamples("mulaw", new Uint8Array([0xff, 0x80, 0x00]));
  ok(r.ok);
  deepEqual(Array.from(r.samples), [0, 32124 / 32768, -32124 / 32768]);
  const a = decodeSamples("alaw", new Uint8Array([0xd5, 0x2a]));
  ok(a.ok);
  deepEqual(Array.from(a.samples), [8 / 32768, -32256 / 32768]);
});

Deno.test("decodeSamples: PCM16 byte orders and float32le", () => {
  const le = decodeSamples("pcm16le", new Uint8Array([0x01, 0x80, 0xff, 0x7f, 0x00, 0x00]));
  ok(le.ok);
  deepEqual(Array.from(le.samples), [-32767 / 32768, 32767 / 32768, 0]);
  const be = decodeSamples("pcm16be", new Uint8Array([0x80, 0x01, 0x7f, 0xff]));
  ok(be.ok);
  deepEqual(Array.from(be.samples), [-32767 / 32768, 32767 / 32768]);
  const f = new Uint8Array(new Float32Array([0.5, -0.25]).buffer);
  const fl = decodeSamples("float32le", f);
  ok(fl.ok);
  deepEqual(Array.from(fl.samples), [0.5, -0.25]);
});

Deno.test("decodeSamples: misaligned views decode like aligned ones", () => {
  const r = rng(7);
  for (const codec of ["pcm16le", "pcm16be", "float32le"] as Codec[]) {
    const x = Float32Array.from({ length: 100 }, () => r() * 2 - 1);
    const bytes = encodeSamples(codec, x);
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const a = decodeSamples(codec, bytes);
    const b = decodeSamples(codec, shifted.subarray(1));
    ok(a.ok && b.ok);
    deepEqual(Array.from(b.samples), Array.from(a.samples), codec);
  }
});

Deno.test("decodeSamples: a byte count that is not whole frames is odd_byte_count", () => {
  deepEqual(decodeSamples("pcm16le", new Uint8Array(3)), { ok: false, reason: "odd_byte_count" });
  deepEqual(decodeSamples("pcm16be", new Uint8Array(1)), { ok: false, reason: "odd_byte_count" });
  deepEqual(decodeSamples("float32le", new Uint8Array(6)), { ok: false, reason: "odd_byte_count" });
  // Stereo PCM16: 6 bytes are three samples, one and a half frames.
  deepEqual(decodeSamples("pcm16le", new Uint8Array(6), 2), { ok: false, reason: "odd_byte_count" });
  deepEqual(decodeSamples("mulaw", new Uint8Array(3), 2), { ok: false, reason: "odd_byte_count" });
  const empty = decodeSamples("pcm16le", new Uint8Array(0));
  ok(empty.ok && empty.samples.length === 0);
});

Deno.test("decodeSamples: non-finite float32 samples become silence", () => {
  const bytes = new Uint8Array(new Float32Array([NaN, Infinity, -Infinity, 0.75]).buffer);
  const r = decodeSamples("float32le", bytes);
  ok(r.ok);
  deepEqual(Array.from(r.samples), [0, 0, 0, 0.75]);
});

Deno.test("decodeSamples writes into a caller's buffer when it is long enough", () => {
  const into = new Float32Array(8).fill(9);
  const r = decodeSamples("mulaw", new Uint8Array([0xff, 0x80]), 1, into);
  ok(r.ok);
  equal(r.samples.buffer, into.buffer);
  deepEqual(Array.from(into.subarray(0, 3)), [0, 32124 / 32768, 9]);
});

Deno.test("encodeSamples/decodeSamples round trip: exact for PCM16 and float32le", () => {
  const r = rng(3);
  const ints = Float32Array.from({ length: 1000 }, () => (Math.floor(r() * 65536) - 32768) / 32768);
  for (const codec of ["pcm16le", "pcm16be", "float32le"] as Codec[]) {
    const d = decodeSamples(codec, encodeSamples(codec, ints));
    ok(d.ok);
    deepEqual(Array.from(d.samples), Array.from(ints), codec);
  }
  equal(bytesPerSample("mulaw"), 1);
  equal(bytesPerSample("pcm16be"), 2);
  equal(bytesPerSample("float32le"), 4);
});

Deno.test("encodeSamples: G.711 quantisation error stays within half a step", () => {
  const r = rng(11);
  const x = Float32Array.from({ length: 2000 }, () => (r() * 2 - 1) * 0.9);
  for (const [codec, table] of [["mulaw", MULAW_TO_LINEAR], ["alaw", ALAW_TO_LINEAR]] as const) {
    const levels = [...new Set(Array.from(table))].sort((a, b) => a - b);
    const d = decodeSamples(codec, encodeSamples(codec, x));
    ok(d.ok);
    for (let i = 0; i < x.length; i++) {
      const v = x[i]! * 32768;
      const got: number = d.samples[i]! * 32768;
      const j = levels.indexOf(got);
      ok(j >= 0);
      // The decoded level must be one of the two levels bracketing the input.
      const below = levels.filter((l) => l <= v).at(-1) ?? levels[0]!;
      const above = levels.find((l) => l >= v) ?? levels.at(-1)!;
      ok(got === below || got === above, `${codec} ${v} -> ${got} not in [${below}, ${above}]`);
    }
  }
});

Deno.test("floatToInt16 saturates and maps NaN to 0", () => {
  equal(floatToInt16(1), 32767);
  equal(floatToInt16(-1), -32768);
  equal(floatToInt16(-2), -32768);
  equal(floatToInt16(NaN), 0);
  equal(floatToInt16(0.5), 16384);
});

Deno.test("allocSamples hands out zeroed, non-overlapping arrays", () => {
  const a = allocSamples(100);
  const b = allocSamples(100);
  a.fill(1);
  ok(b.every((v) => v === 0));
  equal(a.length, 100);
  const big = allocSamples(100_000);
  equal(big.length, 100_000);
  ok(big.every((v) => v === 0));
});

Deno.test("decodeSamples: finite float32 samples near the type's limit are clipped, and resample to finite values", () => {
  const big = new Float32Array(960);
  for (let i = 0; i < big.length; i++) big[i] = i % 2 ? 3e38 : -3.4e38;
  const r = decodeSamples("float32le", new Uint8Array(big.buffer));
  ok(r.ok);
  deepEqual(new Set(r.samples), new Set([-FLOAT_LIMIT, FLOAT_LIMIT]));
  // Summed by the resampler's filter they overflowed float32 to ±Infinity (and NaN in any level after).
  for (const rate of [16000, 48000]) {
    const rs = new Resampler(rate);
    const out: number[] = [...rs.push(r.samples), ...rs.flush()];
    ok(out.length > 0);
    ok(out.every(Number.isFinite), `${rate} Hz`);
    ok(Number.isFinite(out.reduce((a, v) => a + v * v, 0)), `${rate} Hz energy`);
  }
  const edge = decodeSamples(
    "float32le",
    new Uint8Array(new Float32Array([FLOAT_LIMIT, -FLOAT_LIMIT, 1e5]).buffer),
  );
  ok(edge.ok);
  deepEqual(Array.from(edge.samples), [FLOAT_LIMIT, -FLOAT_LIMIT, FLOAT_LIMIT]);
});
