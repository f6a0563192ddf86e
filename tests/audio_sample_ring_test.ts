import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { ALAW_TO_LINEAR, MULAW_TO_LINEAR } from "../audio/decode/codecs.ts";
import { coldReadStats, feedRing, RING_SCALE, SampleRing } from "../audio/decode/sample_ring.ts";
import { Fingerprinter, FrameAnalyzer, FrameStore } from "../audio/fingerprint/fingerprint.ts";
import { rng } from "./support/rng.ts";

/** `n` samples as a G.711 decoder delivers them (table / 32768), a slowly varying "speech-like" code walk. */
function g711(table: Int16Array, n: number, seed: number, gain = 1): Float32Array {
  const rnd = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const level = 0.5 + 0.5 * Math.sin(i / 900);
    out[i] = (table[Math.floor(rnd() * 256 * level) & 0xff]! / 32768) * gain;
  }
  return out;
}

/** Writes `x` in random chunks of 10..1200 samples to both rings. */
function writeBoth(a: SampleRing, b: SampleRing, x: Float32Array, seed: number): void {
  const rnd = rng(seed);
  for (let at = 0; at < x.length;) {
    const n = Math.min(x.length - at, 10 + Math.floor(rnd() * 1190));
    const chunk = x.subarray(at, at + n);
    strictEqual(a.write(at, chunk, 1 << 20), b.write(at, chunk, 1 << 20));
    at += n;
  }
}

/** Sample `i` read the way the engine's readers do: `has` first, then `data[i & mask]`. */
function readVia(ring: SampleRing, from: number, n: number): Int16Array {
  ok(ring.has(from, n));
  const out = new Int16Array(n);
  const data = ring.data, mask = ring.mask;
  for (let i = 0; i < n; i++) out[i] = data[(from + i) & mask]!;
  return out;
}

Deno.test("two tiers: μ-law and A-law audio come back bit for bit from the 8-bit tier", () => {
  for (const [name, table] of [["mulaw", MULAW_TO_LINEAR], ["alaw", ALAW_TO_LINEAR]] as const) {
    const x = g711(table, 100_000, name === "mulaw" ? 1 : 2);
    const ref = new SampleRing(65_536);
    const tiered = new SampleRing(65_536, { hotSamples: 4096 });
    writeBoth(ref, tiered, x, 3);
    strictEqual(tiered.start, ref.start);
    strictEqual(tiered.end, ref.end);
    const rnd = rng(4);
    for (let k = 0; k < 200; k++) {
      const n = 1 + Math.floor(rnd() * 20_000);
      const from = ref.start + Math.floor(rnd() * (ref.end - ref.start - n));
      deepStrictEqual(readVia(tiered, from, n), readVia(ref, from, n), `${name} [${from}, +${n})`);
    }
    for (let i = ref.start; i < ref.end; i += 7) strictEqual(tiered.at(i), ref.at(i), `${name} at(${i})`);
  }
});

Deno.test("two tiers: audio louder than G.711's range keeps its shape (a shift per block, not clipping)", () => {
  // +12 dB over μ-law full scale: ring values up to ~32,000, four times what a G.711 code holds.
  const x = g711(MULAW_TO_LINEAR, 40_000, 5, 3.9);
  const ref = new SampleRing(32_768);
  const tiered = new SampleRing(32_768, { hotSamples: 4096 });
  writeBoth(ref, tiered, x, 6);
  const from = ref.start, n = ref.end - ref.start - 8192;
  const a = readVia(ref, from, n), b = readVia(tiered, from, n);
  let peak = 0;
  for (let i = 0; i < n; i++) {
    peak = Math.max(peak, Math.abs(a[i]!));
    // G.711's coarsest step is 1/16 of its segment: the error stays within ~3.2% of the value (+ the finest step).
    ok(Math.abs(a[i]! - b[i]!) <= Math.abs(a[i]!) * 0.032 + 8, `sample ${from + i}: ${a[i]} vs ${b[i]}`);
  }
  ok(peak > 3 * 8031, `peak ${peak} beyond G.711's range`);
});

Deno.test("two tiers: other audio (PCM16) comes back at G.711 precision, the newest samples exactly", () => {
  const rnd = rng(7);
  const x = Float32Array.from({ length: 60_000 }, (_, i) => 0.3 * Math.sin(i / 7) * (0.2 + rnd()));
  const ref = new SampleRing(32_768);
  const tiered = new SampleRing(32_768, { hotSamples: 8192 });
  writeBoth(ref, tiered, x, 8);
  const a = readVia(ref, ref.start, 32_768), b = readVia(tiered, ref.start, 32_768);
  let noise = 0, signal = 0;
  for (let i = 0; i < a.length; i++) {
    signal += a[i]! * a[i]!;
    noise += (a[i]! - b[i]!) ** 2;
  }
  const snr = 10 * Math.log10(signal / noise);
  ok(snr > 35, `SNR ${snr.toFixed(1)} dB`);
});

/** The first index where two reads differ, or -1. */
function firstDiff(a: Int16Array, b: Int16Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : a.length;
}

Deno.test("two tiers: a range reads the same while in the Int16 tier, its newest block unfinished, and once 8-bit", () => {
  // Whether the forward search (samples still Int16) or the backward search (a late signature: 8-bit) verifies
  // a match depends on actor scheduling; what it reads, and so the match's ber, must not.
  const rnd = rng(5);
  const pcm = Float32Array.from({ length: 120_000 }, (_, i) => 0.3 * Math.sin(i / 7) * (0.2 + rnd()));
  for (const [name, x] of [["PCM16", pcm], ["μ-law", g711(MULAW_TO_LINEAR, 120_000, 3)]] as const) {
    const ring = new SampleRing(65_536, { hotSamples: 8192 });
    const reads: { from: number; n: number; hot: Int16Array }[] = [];
    const w = rng(6);
    for (let at = 0; at < x.length;) {
      const n = Math.min(x.length - at, 10 + Math.floor(w() * 700));
      ring.write(at, x.subarray(at, at + n), 1 << 20);
      at += n;
      // The newest 2,000 samples, as a forward search reads them (often ending inside an unfinished block).
      if (ring.end > 70_000 && reads.length < 40) {
        const from = ring.end - 2000;
        reads.push({ from, n: 2000, hot: readVia(ring, from, 2000) });
      }
    }
    for (const r of reads) {
      ok(
        r.from >= ring.start && r.from + r.n < ring.end - ring.hotCapacity,
        "read again from the 8-bit tier",
      );
      const cold = readVia(ring, r.from, r.n);
      strictEqual(firstDiff(r.hot, cold), -1, `${name} [${r.from}, +${r.n})`);
    }
  }
});

Deno.test("two tiers: μ-law audio reads back exactly from its second block on, while Int16 and once 8-bit", () => {
  const x = g711(MULAW_TO_LINEAR, 40_000, 12);
  const ref = new SampleRing(32_768);
  const tiered = new SampleRing(32_768, { hotSamples: 4096 });
  writeBoth(ref, tiered, x, 13);
  // The newest samples (Int16 tier) and older ones (8-bit tier) alike.
  for (const from of [ref.end - 3000, ref.start + 256]) {
    strictEqual(firstDiff(readVia(tiered, from, 2000), readVia(ref, from, 2000)), -1, `from ${from}`);
  }
});

Deno.test("two tiers: ranges read one after another stay readable together; a write returns to the Int16 tier", () => {
  const x = g711(MULAW_TO_LINEAR, 70_000, 9);
  const ref = new SampleRing(65_536);
  const tiered = new SampleRing(65_536, { hotSamples: 4096 });
  writeBoth(ref, tiered, x, 10);
  const r1 = [ref.start + 1000, 3000] as const, r2 = [ref.end - 2000, 2000] as const;
  ok(tiered.has(...r1));
  ok(tiered.has(...r2));
  // r1 was decoded before r2 was asked for; a reader may still be reading it (align.ts does).
  const data = tiered.data, mask = tiered.mask;
  for (let i = r1[0]; i < r1[0] + r1[1]; i++) strictEqual(data[i & mask], Math.round(ref.at(i) * RING_SCALE));
  tiered.write(tiered.end, new Float32Array(10), 0);
  strictEqual(tiered.mask, 4095);
  strictEqual(tiered.data.length, 4096);
});

Deno.test("two tiers: memory grows with the stream, not with the capacity", () => {
  const ring = new SampleRing(262_144, { hotSamples: 32_768 });
  ring.write(0, new Float32Array(8000), 0);
  ok(ring.bytes <= 16_384 * 2, `1 s held in ${ring.bytes} bytes`);
  for (let at = 8000; at < 400_000; at += 8000) ring.write(at, new Float32Array(8000), 0);
  strictEqual(ring.end - ring.start, 262_144);
  // Int16 tier (64 KiB) + one byte per older sample, with a block's slack and one header byte per block.
  ok(ring.bytes <= 65_536 + (262_144 - 32_768) * (1 + 1 / 256) + 2 * 257, `full: ${ring.bytes} bytes`);
  ok(ring.bytes < 262_144 * 2 * 0.6);
});

Deno.test("two tiers: a full ring reuses its oldest 8-bit block, never reallocating the tier per block", () => {
  const ring = new SampleRing(262_144, { hotSamples: 4096 });
  const chunk = g711(MULAW_TO_LINEAR, 8000, 21);
  for (let at = 0; at < 300_000; at += 8000) ring.write(at, chunk, 0);
  strictEqual(ring.end - ring.start, 262_144);
  const grown = coldReadStats.grown, bytes = ring.bytes;
  for (let at = 304_000; at < 700_000; at += 8000) ring.write(at, chunk, 0);
  strictEqual(coldReadStats.grown - grown, 0, "reallocations once full");
  strictEqual(ring.bytes, bytes);
  // What was written last is what is read (the reused slots hold the new blocks).
  const from = ring.end - 3 * 8000;
  deepStrictEqual(readVia(ring, from, 4000), Int16Array.from(chunk.subarray(0, 4000), (v) => v * RING_SCALE));
});

Deno.test("feedRing: frames over a zero-filled gap are the same with a small Int16 tier", () => {
  const rnd = rng(11);
  const x = Float32Array.from({ length: 48_000 }, () => 0.2 * (rnd() - 0.5));
  const run = (hot: number) => {
    const ring = new SampleRing(65_536, { hotSamples: hot });
    const store = new FrameStore(512);
    const fp = new Fingerprinter(ring, store, new FrameAnalyzer());
    const bits: number[] = [];
    const push = (start: number, s: Float32Array) =>
      feedRing(ring, start, s, (reset) => {
        if (reset) fp.restart(ring.start);
        const from = store.end;
        fp.advance();
        for (let f = from; f < store.end; f++) bits.push(store.bits[f & store.mask]!);
      });
    push(0, x.subarray(0, 16_000));
    // 20,000 samples missing: filled with zeros (under half the capacity), longer than the small Int16 tier.
    push(36_000, x.subarray(16_000));
    return bits;
  };
  const big = run(65_536), small = run(4096);
  ok(big.length > 300);
  deepStrictEqual(small, big);
});
