import { deepEqual, equal, ok, throws } from "node:assert/strict";
import {
  ANALYSIS_RATE,
  analysisIndexOf,
  checkNativeRate,
  designResampler,
  Resampler,
  STOPBAND_DB,
  STOPBAND_HZ,
} from "../audio/decode/resample.ts";
import { rng } from "./support/rng.ts";

function tone(rate: number, hz: number, seconds: number, amp = 0.5): Float32Array {
  const n = Math.round(rate * seconds);
  // A quarter-cycle phase keeps a tone at the output Nyquist from sampling its zero crossings.
  return Float32Array.from(
    { length: n },
    (_, i) => amp * Math.sin((2 * Math.PI * hz * i) / rate + Math.PI / 4),
  );
}

function resampleAll(rate: number, x: Float32Array, chunks?: number[]): Float32Array {
  const r = new Resampler(rate);
  const parts: Float32Array[] = [];
  let off = 0;
  for (const c of chunks ?? [x.length]) {
    parts.push(r.push(x.subarray(off, off + c)));
    off += c;
  }
  if (off < x.length) parts.push(r.push(x.subarray(off)));
  parts.push(r.flush());
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Output level of a tone relative to its input level, dB, over the middle of the output. */
function gainDb(rate: number, hz: number): number {
  const y = resampleAll(rate, tone(rate, hz, 1));
  let s = 0;
  let c = 0;
  for (let k = 1000; k < y.length - 1000; k++) {
    s += y[k]! ** 2;
    c++;
  }
  return 20 * Math.log10(Math.sqrt(s / c) / (0.5 / Math.SQRT2));
}

const RATES = [11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000];

Deno.test("resampler: 1 kHz passes within 0.5 dB at every common rate", () => {
  for (const rate of RATES) {
    const g = gainDb(rate, 1000);
    ok(Math.abs(g) <= 0.5, `${rate} Hz: 1 kHz at ${g.toFixed(2)} dB`);
  }
});

Deno.test(`resampler: tones from ${STOPBAND_HZ} Hz up are attenuated by >= ${STOPBAND_DB} dB`, () => {
  for (const rate of [16000, 48000, 44100, 11025]) {
    const tones = [3900, 3950, 4000, 4050, 4100, 4500, 5000, 6000, 7900, 11000, 15000, 20000, 23900];
    for (const hz of tones.filter((f) => f < rate / 2 - 20)) {
      const g = gainDb(rate, hz);
      ok(g <= -STOPBAND_DB, `${rate} Hz input: ${hz} Hz tone at ${g.toFixed(1)} dB`);
    }
  }
});

Deno.test("resampler: analysis sample k is the signal at k/8000 s (delay compensated)", () => {
  for (const rate of [11025, 16000, 22050, 44100, 48000]) {
    const hz = 500;
    const y = resampleAll(rate, tone(rate, hz, 0.5));
    let worst = 0;
    for (let k = 200; k < y.length - 200; k++) {
      const want = 0.5 * Math.sin((2 * Math.PI * hz * k) / ANALYSIS_RATE + Math.PI / 4);
      worst = Math.max(worst, Math.abs(y[k]! - want));
    }
    // One native sample of misalignment at 48 kHz would already be an error of about 0.033 here.
    ok(worst < 0.005, `${rate} Hz: worst deviation ${worst}`);
  }
});

Deno.test("resampler: 8 kHz is a passthrough", () => {
  const r = new Resampler(8000);
  ok(r.passthrough);
  const x = new Float32Array([0.1, 0.2, 0.3]);
  equal(r.push(x), x);
  equal(r.outputLength, 3);
  equal(r.flush().length, 0);
});

Deno.test("resampler: after flush there is one output per 1/8000 s of input", () => {
  const r = rng(4);
  for (const rate of [11025, 16000, 44100, 48000, 8001, 47999]) {
    const n = 1 + Math.floor(r() * 5000);
    const y = resampleAll(rate, new Float32Array(n));
    const d = designResampler(rate);
    equal(y.length, Math.ceil((n * d.up) / d.down), `${rate} Hz, ${n} samples`);
  }
});

Deno.test("resampler: output is bit-identical under any chunking", () => {
  const r = rng(8);
  for (const rate of [11025, 16000, 44100, 48000, 12345]) {
    const x = Float32Array.from({ length: rate * 3 }, () => r() * 2 - 1);
    const whole = resampleAll(rate, x);
    for (let trial = 0; trial < 4; trial++) {
      const chunks: number[] = [];
      for (let left = x.length; left > 0;) {
        // Empty, single-sample, typical and block-crossing chunks.
        const c = Math.min(left, [0, 1, 7, 160, 441, 30_000][Math.floor(r() * 6)]!);
        chunks.push(c);
        left -= c;
      }
      const y = resampleAll(rate, x, chunks);
      equal(y.length, whole.length);
      deepEqual(
        new Uint8Array(y.buffer, y.byteOffset, y.byteLength),
        new Uint8Array(whole.buffer),
        `${rate}`,
      );
    }
  }
});

/** The kernel's arithmetic in scalar JS: 8 lanes (two f32x4 accumulators) summed as (a+b) then pairwise. */
function reference(rate: number, x: Float32Array): Float32Array {
  const d = designResampler(rate);
  const f = Math.fround;
  const total = Math.ceil((x.length * d.up) / d.down);
  const out = new Float32Array(total);
  const at = (n: number) => (n >= 0 && n < x.length ? x[n]! : 0);
  for (let j = 0; j < total; j++) {
    const idx = Math.floor((j * d.down) / d.up);
    const frac = (j * d.down) % d.up;
    const first = idx - (d.halfTaps - 1);
    const lanes = new Array(8).fill(0);
    for (let i = 0; i < d.taps; i++) {
      const l = i % 8;
      lanes[l] = f(lanes[l] + f(d.bank[frac * d.taps + i]! * at(first + i)));
    }
    const s = [0, 1, 2, 3].map((l) => f(lanes[l] + lanes[l + 4]));
    out[j] = f(f(s[0]! + s[1]!) + f(s[2]! + s[3]!));
  }
  return out;
}

Deno.test("resampler: the SIMD kernel computes exactly the documented sums", () => {
  const r = rng(21);
  for (const rate of [16000, 44100, 11025]) {
    const x = Float32Array.from({ length: 4000 }, () => r() * 2 - 1);
    deepEqual(Array.from(resampleAll(rate, x)), Array.from(reference(rate, x)), `${rate}`);
  }
});

Deno.test("resampler: filter design shape", () => {
  const d16 = designResampler(16000);
  deepEqual([d16.up, d16.down], [1, 2]);
  equal(d16.taps % 8, 0);
  equal(d16.taps, 2 * d16.halfTaps);
  const d44 = designResampler(44100);
  deepEqual([d44.up, d44.down], [80, 441]);
  equal(d44.bank.length, 80 * d44.taps);
  // Every phase has unit DC gain.
  for (let p = 0; p < d44.up; p++) {
    let s = 0;
    for (let i = 0; i < d44.taps; i++) s += d44.bank[p * d44.taps + i]!;
    ok(Math.abs(s - 1) < 1e-5);
  }
  equal(designResampler(16000), d16);
});

Deno.test("resampler: rates outside 8000..48000 are refused", () => {
  throws(() => new Resampler(7999), RangeError);
  throws(() => new Resampler(48001), RangeError);
  throws(() => new Resampler(16000.5), RangeError);
  ok(checkNativeRate(96000));
  equal(checkNativeRate(16000), undefined);
});

Deno.test("resampler: push after flush is a programming error", () => {
  const r = new Resampler(16000);
  r.flush();
  throws(() => r.push(new Float32Array(1)));
});

Deno.test("analysisIndexOf is ceil(n*up/down) exactly", () => {
  const r = rng(2);
  for (const rate of [11025, 16000, 44100, 47999, 8001]) {
    const d = designResampler(rate);
    for (let t = 0; t < 2000; t++) {
      const n = Math.floor(r() * 2 ** 40);
      const num = BigInt(n) * BigInt(d.up);
      const den = BigInt(d.down);
      const want = Number((num + den - 1n) / den);
      equal(analysisIndexOf(n, d.up, d.down), want, `${rate} ${n}`);
    }
  }
  equal(analysisIndexOf(5, 1, 1), 5);
});

/** The sample ring's rounding of a float sample (sample_ring.ts #put), as pushPcm16Ring must give it. */
function ringValue(x: number): number {
  const v = x * 8192;
  return v >= -32768.5 && v < 32767.5 ? Math.floor(v + 0.5) : v < 0 ? -32768 : v > 0 ? 32767 : 0;
}

Deno.test("resampler: pushPcm16Ring gives push's outputs of the same samples as ring values, any chunking", () => {
  const r = rng(5);
  for (const rate of [16000, 11025, 44100, 48000]) {
    const a = new Resampler(rate), b = new Resampler(rate);
    for (let msg = 0; msg < 400; msg++) {
      // Empty messages, short ones that complete no output, and long ones.
      const m = msg % 25 === 0 ? 0 : Math.floor(r() * (msg % 7 === 0 ? 3000 : 300));
      const pcm = new Int16Array(m);
      for (let i = 0; i < m; i++) pcm[i] = Math.round((r() - 0.5) * 65535);
      const floats = a.push(Float32Array.from(pcm, (v) => v / 32768));
      const ring = b.pushPcm16Ring(new Uint8Array(pcm.buffer));
      ok(ring !== undefined);
      deepEqual(Array.from(ring), Array.from(floats, ringValue));
      equal(b.outputLength, a.outputLength);
      equal(b.inputLength, a.inputLength);
    }
    deepEqual(b.flush(), a.flush());
  }
});

Deno.test("resampler: pushPcm16Ring declines a passthrough and a message longer than one kernel call", () => {
  equal(new Resampler(8000).pushPcm16Ring(new Uint8Array(320)), undefined);
  const r = new Resampler(16000);
  equal(r.pushPcm16Ring(new Uint8Array(2 * 40000)), undefined);
  equal(r.inputLength, 0);
  equal(r.pushPcm16Ring(new Uint8Array(640))!.length, r.outputLength);
});

Deno.test("resampler: pushPcm16Ring's first message of a rate whose bank grows the kernel's memory keeps its history", () => {
  // 8001 Hz reduces to up = 8000: a bank of 8000 phases (1 MB) that the kernel's memory grows for on first use,
  // in the middle of the first pushPcm16Ring.
  const r = rng(11);
  const a = new Resampler(8001), b = new Resampler(8001);
  for (let msg = 0; msg < 6; msg++) {
    const pcm = new Int16Array(400);
    for (let i = 0; i < pcm.length; i++) pcm[i] = Math.round((r() - 0.5) * 65535);
    // The ring path first: its call is the one that grows the memory.
    const ring = Array.from(b.pushPcm16Ring(new Uint8Array(pcm.buffer)) ?? [NaN]);
    const floats = a.push(Float32Array.from(pcm, (v) => v / 32768));
    deepEqual(ring, Array.from(floats, ringValue), `message ${msg}`);
  }
  deepEqual(b.flush(), a.flush());
});
