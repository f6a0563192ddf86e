import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { ALAW_TO_LINEAR, MULAW_TO_LINEAR } from "../audio/decode/codecs.ts";
import { decodeBlock, encodeBlock, HEADER_BYTES } from "../audio/decode/adpcm4.ts";
import { disableAdpcm4Octet, LANES } from "../audio/decode/adpcm4_simd.ts";
import { disableG711Block } from "../audio/decode/g711_simd.ts";
import { COLD_BLOCK, coldReadStats, feedRing, RING_SCALE, SampleRing } from "../audio/decode/sample_ring.ts";
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

/** The fixture's μ-law speech (7.4 s) as a G.711 decoder delivers it, `times` times over. */
function speechTimes(times: number): Float32Array {
  const ul = Deno.readFileSync(new URL("../fixtures/audio_fp/speech_8k.ul", import.meta.url));
  const out = new Float32Array(ul.length * times);
  for (let i = 0; i < out.length; i++) out[i] = MULAW_TO_LINEAR[ul[i % ul.length]!]! / 32768;
  return out;
}

/** What the 4-bit tier gives back for the block of `ref` (an all-8-bit ring's reads) at absolute sample `base`. */
function fourBit(ref: SampleRing, base: number): Int16Array {
  const values = readVia(ref, base, COLD_BLOCK);
  const codes = new Uint8Array(COLD_BLOCK / 2),
    head = new Uint8Array(HEADER_BYTES),
    out = new Int16Array(COLD_BLOCK);
  encodeBlock(values, 0, COLD_BLOCK, codes, 0, head, 0);
  decodeBlock(codes, 0, head, 0, 0, COLD_BLOCK, out, 0, COLD_BLOCK - 1);
  return out;
}

Deno.test("three tiers: a sample reads 8-bit until it is hotCapacity + warmCapacity old, then 4-bit, coded from its block alone", () => {
  // The boundary is the ring's own: a block goes to the 4-bit tier when the 8-bit tier has warmCapacity samples
  // after it, so a reader sees a sample's 8-bit value while the ring's end is less than hot + warm - 256 samples
  // past it and its 4-bit value once more than hot + warm past it. The 4-bit value is a function of the block's
  // 8-bit values only: it does not depend on how the stream was chunked, nor on when or how often it was read.
  const pcm = (() => {
    const rnd = rng(31);
    return Float32Array.from({ length: 90_000 }, (_, i) => 0.3 * Math.sin(i / 7) * (0.2 + rnd()));
  })();
  for (const [name, x] of [["μ-law speech", speechTimes(2).subarray(0, 90_000)], ["PCM16", pcm]] as const) {
    const ref = new SampleRing(65_536, { hotSamples: 4096, warmSamples: 1 << 20 });
    const tiered = new SampleRing(65_536, { hotSamples: 4096, warmSamples: 8192 });
    strictEqual(tiered.warmCapacity, 8192);
    const hot = tiered.hotCapacity, warm = tiered.warmCapacity;
    const other = new SampleRing(65_536, { hotSamples: 4096, warmSamples: 8192 });
    writeBoth(ref, tiered, x, 32);
    // Written in other chunks, and read all along (the reads decode, and must not change what the tier holds).
    const w = rng(33);
    for (let at = 0; at < x.length;) {
      const n = Math.min(x.length - at, 1 + Math.floor(w() * 3000));
      other.write(at, x.subarray(at, at + n), 1 << 20);
      at += n;
      if (other.end - other.start > 20_000) readVia(other, other.start, 20_000);
    }
    const end = ref.end;
    const all = readVia(tiered, ref.start, end - ref.start);
    deepStrictEqual(readVia(other, ref.start, end - ref.start), all, `${name}: chunking and reads`);
    let old = 0, eight = 0;
    for (
      let base = Math.ceil(ref.start / COLD_BLOCK) * COLD_BLOCK;
      base + COLD_BLOCK <= end;
      base += COLD_BLOCK
    ) {
      const got = all.subarray(base - ref.start, base - ref.start + COLD_BLOCK);
      if (end - (base + COLD_BLOCK) >= hot + warm) {
        deepStrictEqual(got, fourBit(ref, base), `${name}: block at ${base} 4-bit`);
        old++;
      } else if (end - base <= hot + warm - COLD_BLOCK) {
        deepStrictEqual(got, readVia(ref, base, COLD_BLOCK), `${name}: block at ${base} 8-bit`);
        eight++;
      }
    }
    ok(old > 100 && eight > 40, `${old} 4-bit blocks, ${eight} 8-bit`);
  }
});

Deno.test("three tiers: a range reads the same while Int16 and 8-bit; older than the 8-bit tier it reads 4-bit", () => {
  // The forward search and normally late signatures read within hot + warm samples of the newest: the values of
  // the 8-bit tier whatever the scheduling. Ranges read again once older read the 4-bit tier's values.
  const x = speechTimes(3).subarray(0, 150_000);
  const ring = new SampleRing(100_000, { hotSamples: 4096, warmSamples: 16_384 });
  const ref = new SampleRing(100_000, { hotSamples: 4096, warmSamples: 1 << 20 });
  const reads: { from: number; hot: Int16Array }[] = [];
  const w = rng(34);
  for (let at = 0; at < x.length;) {
    const n = Math.min(x.length - at, 10 + Math.floor(w() * 700));
    ring.write(at, x.subarray(at, at + n), 1 << 20);
    ref.write(at, x.subarray(at, at + n), 1 << 20);
    at += n;
    if (ring.end > 60_000 && reads.length < 60) {
      reads.push({ from: ring.end - 2000, hot: readVia(ring, ring.end - 2000, 2000) });
    }
    // Half the reads again when still within the 8-bit tier's reach.
    const r = reads[Math.floor(reads.length / 2)];
    if (r && ring.end - r.from < ring.hotCapacity + ring.warmCapacity - COLD_BLOCK) {
      strictEqual(firstDiff(readVia(ring, r.from, 2000), r.hot), -1, `[${r.from}, +2000) while 8-bit`);
    }
  }
  let snrMin = Infinity;
  for (const r of reads) {
    ok(ring.end - (r.from + 2000) > ring.hotCapacity + ring.warmCapacity, "read again from the 4-bit tier");
    strictEqual(firstDiff(r.hot, readVia(ref, r.from, 2000)), -1, "what was read then is the 8-bit value");
    const old = readVia(ring, r.from, 2000);
    let s = 0, e = 0;
    for (let i = 0; i < 2000; i++) {
      s += r.hot[i]! ** 2;
      e += (r.hot[i]! - old[i]!) ** 2;
    }
    if (s > 2000 * 100 ** 2) snrMin = Math.min(snrMin, 10 * Math.log10(s / e));
  }
  ok(snrMin > 12 && snrMin < 60, `4-bit reads of speech: SNR ≥ ${snrMin.toFixed(1)} dB`);
});

Deno.test("three tiers: speech comes back from the 4-bit tier at ~22 dB SNR", () => {
  const x = speechTimes(4);
  const ref = new SampleRing(262_144, { hotSamples: 4096, warmSamples: 1 << 20 });
  const tiered = new SampleRing(262_144, { hotSamples: 4096, warmSamples: 8000 });
  writeBoth(ref, tiered, x, 35);
  const n = tiered.end - tiered.start - tiered.hotCapacity - tiered.warmCapacity - COLD_BLOCK;
  const a = readVia(ref, ref.start, n), b = readVia(tiered, ref.start, n);
  let signal = 0, noise = 0;
  for (let i = 0; i < n; i++) {
    signal += a[i]! ** 2;
    noise += (a[i]! - b[i]!) ** 2;
  }
  const snr = 10 * Math.log10(signal / noise);
  ok(snr > 19 && snr < 40, `SNR ${snr.toFixed(1)} dB`);
});

Deno.test("three tiers: 30 s of lookback in ~half the bytes of the 8-bit tier, capacity not a power of two", () => {
  // The pipeline's target ring: 30 s + a signature block + a frame; 0.5 s Int16, 10 s 8-bit, the rest 4-bit.
  const keep = 240_000 + 19_456 + 1024;
  const ring = new SampleRing(keep, { hotSamples: 4096, warmSamples: 80_000 });
  strictEqual(ring.capacity, Math.ceil(keep / COLD_BLOCK) * COLD_BLOCK);
  const chunk = speechTimes(1).subarray(0, 8000);
  for (let at = 0; at < 400_000; at += 8000) ring.write(at, chunk, 0);
  strictEqual(ring.end - ring.start, ring.capacity);
  const old = ring.capacity - 4096 - 80_000;
  const bound = 8192 + 80_000 * (1 + 1 / COLD_BLOCK) +
    // One block more, and the blocks coded ahead of their turn (adpcm4_simd.ts's lanes but the first).
    (old / COLD_BLOCK + 1 + (LANES - 1)) * (COLD_BLOCK / 2 + HEADER_BYTES) + 257;
  ok(ring.bytes <= bound, `${ring.bytes} bytes > ${bound}`);
  ok(ring.bytes < 185_000, `${ring.bytes} bytes`);
  // A full ring reuses its oldest 4-bit (and 8-bit) slots: no reallocation, and what was written last is read.
  const grown = coldReadStats.grown, bytes = ring.bytes;
  for (let at = 400_000; at < 800_000; at += 8000) ring.write(at, chunk, 0);
  strictEqual(coldReadStats.grown - grown, 0, "reallocations once full");
  strictEqual(ring.bytes, bytes);
  const ref = new SampleRing(keep, { hotSamples: 4096, warmSamples: 1 << 20 });
  for (let at = 0; at < 800_000; at += 8000) ref.write(at, chunk, 0);
  for (
    const base of [ring.start + 256 - (ring.start % 256), ring.end - 200_000 - ((ring.end - 200_000) % 256)]
  ) {
    deepStrictEqual(readVia(ring, base, COLD_BLOCK), fourBit(ref, base), `block at ${base}`);
  }
});

Deno.test("three tiers: a restart inside a block codes its held samples only; at() reads every tier", () => {
  const x = speechTimes(3);
  const ring = new SampleRing(65_536, { hotSamples: 4096, warmSamples: 4096 });
  const ref = new SampleRing(65_536, { hotSamples: 4096, warmSamples: 1 << 20 });
  for (const r of [ring, ref]) {
    r.write(0, x.subarray(0, 10_000), 0);
    // A gap longer than the fill: the ring restarts at 20,100, inside a block.
    strictEqual(r.write(20_100, x.subarray(20_100, 70_000), 0), "reset");
  }
  strictEqual(ring.start, 20_100);
  const a = readVia(ref, 20_100, 20_000), b = readVia(ring, 20_100, 20_000);
  let signal = 0, noise = 0;
  for (let i = 0; i < a.length; i++) {
    signal += a[i]! ** 2;
    noise += (a[i]! - b[i]!) ** 2;
    strictEqual(ring.at(20_100 + i), b[i]! / RING_SCALE);
  }
  ok(10 * Math.log10(signal / noise) > 18, `SNR ${10 * Math.log10(signal / noise)}`);
  for (let i = ring.end - 7900; i < ring.end; i += 13) {
    strictEqual(ring.at(i), ref.at(i), `at(${i}) 8-bit or Int16`);
  }
});

Deno.test("three tiers: every block reads back its own 8-bit values' 4-bit coding, blocks coded in pairs or not", () => {
  // The ring codes a block together with the next when that one is 8-bit already, and keeps the next one's
  // codes for its turn. Whatever the capacity (down to the least a 4-bit tier allows), chunking and restarts
  // (the block a restart falls in ages partly held, paired with the next), each block must read back what
  // coding its own 8-bit values alone gives (the first held one standing in for samples not held when it aged).
  const x = speechTimes(4);
  let blocks = 0, partial = 0;
  for (const warm of [1024, 2048]) {
    for (const short of [0, 100, 256, 300, 384, 450, 500, 700]) {
      const ring = new SampleRing(4096 + warm - short, { hotSamples: 4096, warmSamples: warm });
      if (ring.warmCapacity >= ring.capacity) continue;
      const rnd = rng(warm + short);
      const eight = new Map<number, Int16Array>();
      let at = 0, aged = ring.finalBefore;
      while (at < x.length) {
        // Now and then a gap past the fill: a restart, inside a block.
        if (rnd() < 0.003) at += 20_000 + Math.floor(rnd() * 300);
        const n = Math.min(x.length - at, 1 + Math.floor(rnd() * 1500));
        if (n <= 0) break;
        const startBefore = ring.start;
        ring.write(at, x.subarray(at, at + n), 4096);
        at += n;
        if (ring.start > startBefore + n + 4096) aged = ring.finalBefore;
        for (; aged < ring.finalBefore; aged += COLD_BLOCK) {
          const values = eight.get(aged);
          if (values === undefined || aged + COLD_BLOCK <= ring.start) continue;
          // As the block was when it aged: held from the ring's start before this write.
          const held = Math.max(0, startBefore - aged);
          const input = values.slice();
          input.fill(input[held]!, 0, held);
          const codes = new Uint8Array(COLD_BLOCK / 2), head = new Uint8Array(HEADER_BYTES);
          const want = new Int16Array(COLD_BLOCK);
          encodeBlock(input, 0, COLD_BLOCK, codes, 0, head, 0);
          decodeBlock(codes, 0, head, 0, 0, COLD_BLOCK, want, 0, COLD_BLOCK - 1);
          const from = Math.max(aged, ring.start);
          deepStrictEqual(
            readVia(ring, from, aged + COLD_BLOCK - from),
            want.subarray(from - aged),
            `warm ${warm}, capacity ${ring.capacity}: block at ${aged} (held from ${held})`,
          );
          blocks++;
          if (held > 0) partial++;
        }
        for (const b of eight.keys()) if (b < aged) eight.delete(b);
        // The 8-bit values of every block not yet aged (final once the block is complete).
        const lo = Math.max(ring.start, ring.finalBefore), values = readVia(ring, lo, ring.end - lo);
        for (let b = Math.floor(lo / COLD_BLOCK) * COLD_BLOCK; b + COLD_BLOCK <= ring.end; b += COLD_BLOCK) {
          const v = eight.get(b) ?? new Int16Array(COLD_BLOCK);
          for (let i = Math.max(b, lo); i < b + COLD_BLOCK; i++) v[i - b] = values[i - lo]!;
          eight.set(b, v);
        }
      }
    }
  }
  ok(blocks > 1000 && partial > 0, `${blocks} blocks checked, ${partial} of them aged partly held`);
});

Deno.test("ring values are Math.round(x · RING_SCALE) clamped to Int16, NaN 0: across float32, at every half", () => {
  // Float32 bit patterns across the whole range (a prime stride), the float32s next to each value that is a
  // half in ring units, the infinities and NaN.
  const f = new Float32Array(1);
  const bits = new Uint32Array(f.buffer);
  const xs: number[] = [NaN, Infinity, -Infinity, 0, -0, 1e-45, -1e-45];
  for (let u = 0; u < 2 ** 32; u += 65_521) {
    bits[0] = u;
    xs.push(f[0]!);
  }
  for (let k = -65_600; k <= 65_600; k++) {
    const half = (k + 0.5) / RING_SCALE;
    f[0] = half;
    const at = bits[0]!;
    for (const d of [-2, -1, 0, 1, 2]) {
      bits[0] = at + d;
      xs.push(f[0]!);
    }
  }
  const x = Float32Array.from(xs);
  const ring = new SampleRing(1 << 20);
  ring.write(0, x, 0);
  ok(ring.has(0, x.length));
  for (let i = 0; i < x.length; i++) {
    const r = Math.round(x[i]! * RING_SCALE);
    const want = r !== r ? 0 : Math.max(-32768, Math.min(32767, r)) | 0;
    strictEqual(ring.data[i & ring.mask], want, `x = ${x[i]}`);
  }
});

Deno.test("two tiers: a block's law follows the block before it, μ-law first when it is both, whatever its own law", () => {
  // A-law audio with one block of a value both laws hold (ring value 2: A-law's 8, μ-law's 8): the block is μ-law
  // by the verdict's order, so the A-law block after it is coded μ-law (not exact), and the one after that A-law.
  const two = 8 / 32768;
  const b = COLD_BLOCK;
  const alaw = g711(ALAW_TO_LINEAR, 12 * b, 5);
  alaw.fill(two, 4 * b, 5 * b);
  // PCM16-like audio (lossy), turning μ-law and then A-law at block boundaries.
  const lossy = Float32Array.from({ length: 12 * b }, (_, i) => Math.sin(i / 7) * 0.3 + 0.0001 * (i % 13));
  lossy.set(g711(MULAW_TO_LINEAR, 3 * b, 6), 4 * b);
  lossy.set(g711(ALAW_TO_LINEAR, 3 * b, 7), 7 * b);
  const exact = (ring: SampleRing, x: Float32Array, k: number) => {
    const got = readVia(ring, k * b, b);
    return got.every((v, i) => v === Math.round(x[k * b + i]! * RING_SCALE));
  };
  for (const x of [alaw, lossy]) {
    const ring = new SampleRing(65_536, { hotSamples: 4096 });
    // Older than the Int16 tier: every block 8-bit.
    const all = new Float32Array(x.length + 8192);
    all.set(x);
    for (let at = 0; at < all.length; at += 160) ring.write(at, all.subarray(at, at + 160), 1 << 20);
    ok(ring.has(0, x.length));
    const got = Array.from({ length: 11 }, (_, k) => exact(ring, x, k + 1));
    if (x === alaw) {
      deepStrictEqual(got, [true, true, true, true, false, true, true, true, true, true, true]);
    } else {
      // Lossy blocks 1-3, the first μ-law block (coded after a lossy one), μ-law 5-6, the first A-law block
      // (after a μ-law one), A-law 8-9, lossy 10-11 (the first coded A-law: not exact either).
      deepStrictEqual(got, [false, false, false, false, true, true, false, true, true, false, false]);
    }
  }
});

Deno.test("ring values written as Int16 (whole chunks, views, wrapping, overlapping) read as the same floats do", () => {
  const rnd = rng(21);
  const x = g711(MULAW_TO_LINEAR, 60_000, 22);
  const values = Int16Array.from(x, (v) => Math.round(v * RING_SCALE));
  const floats = new SampleRing(65_536, { hotSamples: 4096 });
  const ints = new SampleRing(65_536, { hotSamples: 4096 });
  for (let at = 0; at < x.length;) {
    const n = Math.min(x.length - at, 1 + Math.floor(rnd() * 700));
    // Now and then a chunk repeating the last samples written (dropped), or a view into a longer array.
    const back = rnd() < 0.1 ? Math.min(at, Math.floor(rnd() * 50)) : 0;
    const chunk = rnd() < 0.5 ? values.slice(at - back, at + n) : values.subarray(at - back, at + n);
    strictEqual(
      ints.write(at - back, chunk, 1 << 20),
      floats.write(at - back, x.subarray(at - back, at + n), 1 << 20),
    );
    at += n;
  }
  strictEqual(ints.end, floats.end);
  deepStrictEqual(
    readVia(ints, ints.start, ints.end - ints.start),
    readVia(floats, floats.start, floats.end - floats.start),
  );
  const hot = readVia(ints, ints.end - 4096, 4096);
  deepStrictEqual(hot, values.subarray(ints.end - 4096, ints.end));
});

Deno.test("three tiers: a long lookback's 4-bit tier grows, and every block still reads its own 4-bit coding", () => {
  // A 4-bit tier too large to allocate whole doubles from its first array. A block is coded ahead (with the
  // block before it) straight into its slot only when that slot's block is no longer held: never into a slot a
  // held block is in, nor into an array replaced before its turn.
  const ring = new SampleRing(8000 * 300, { hotSamples: 4096, warmSamples: 2048 });
  const x = speechTimes(12);
  // Each repetition of the speech at its own level: no two blocks alike.
  for (let i = 0; i < x.length; i++) x[i] = x[i]! * (0.3 + 0.6 * ((Math.floor(i / 3001) * 7919) % 101) / 101);
  const eight = new Map<number, Int16Array>();
  const grown = coldReadStats.grown;
  const four = new Map<number, Int16Array>();
  let recorded = 0, aged = 0, blocks = 0;
  for (let at = 0; at < x.length; at += 160) {
    ring.write(at, x.subarray(at, Math.min(x.length, at + 160)), 0);
    for (; recorded + COLD_BLOCK <= ring.end; recorded += COLD_BLOCK) {
      eight.set(recorded, readVia(ring, recorded, COLD_BLOCK).slice());
    }
    for (; aged < ring.finalBefore; aged += COLD_BLOCK) {
      const codes = new Uint8Array(COLD_BLOCK / 2), head = new Uint8Array(HEADER_BYTES);
      const want = new Int16Array(COLD_BLOCK);
      encodeBlock(eight.get(aged)!, 0, COLD_BLOCK, codes, 0, head, 0);
      decodeBlock(codes, 0, head, 0, 0, COLD_BLOCK, want, 0, COLD_BLOCK - 1);
      four.set(aged, want);
      eight.delete(aged);
      blocks++;
    }
    // Every 4-bit block held, now and then: none overwritten since it aged.
    if (at % 96_000 === 0 || at + 160 >= x.length) {
      for (const [b, want] of four) {
        const got = readVia(ring, b, COLD_BLOCK);
        if (got.some((v, k) => v !== want[k])) throw new Error(`block at ${b}: not its own 4-bit coding`);
      }
    }
  }
  ok(
    blocks > 2048 && coldReadStats.grown - grown >= 4,
    `${blocks} blocks, ${coldReadStats.grown - grown} growths`,
  );
});

Deno.test("three tiers: blocks age to 4 bits sixteen at a time in the WebAssembly kernel, the values the JS coder's", () => {
  const keep = 240_000 + 19_456 + 1024;
  const x = speechTimes(4);
  const pcm = Float32Array.from(x, (v) => 0.9 * v);
  for (const [name, audio] of [["μ-law speech", x], ["PCM16", pcm]] as const) {
    const seen: number[][] = [];
    for (const off of [false, true]) {
      disableAdpcm4Octet(off);
      const before = coldReadStats.octetBlocks;
      const ring = new SampleRing(keep, { hotSamples: 4096, warmSamples: 80_000 });
      const values: number[] = [];
      for (let at = 0; at < 700_000; at += 160) {
        const from = at % (audio.length - 160);
        feedRing(ring, at, audio.subarray(from, from + 160), () => {});
        if (at % 100_000 === 0 && ring.has(ring.start, ring.end - ring.start)) {
          for (let i = ring.start; i < ring.end; i++) values.push(ring.data[i & ring.mask]!);
        }
      }
      const octets = coldReadStats.octetBlocks - before;
      // All but the blocks after a restart's first few: the tier's extra slots let the next fifteen go ahead.
      if (off) strictEqual(octets, 0, `${name}: the JS coder only`);
      else {ok(
          octets > 0.9 * (700_000 - 80_000 - 4096) / COLD_BLOCK,
          `${name}: ${octets} blocks by the kernel`,
        );}
      seen.push(values);
    }
    disableAdpcm4Octet(false);
    ok(seen[0]!.length > 1_000_000, name);
    deepStrictEqual(seen[0], seen[1], `${name}: the same values with and without the kernel`);
  }
});

Deno.test("two tiers: a block coded at its law's level with values not of the law gets their nearest codes", () => {
  // The block's codes are looked up by the law's own values first (a table of them alone); a value between two
  // of them is coded again with the nearest, as a reader saw it while it was hot.
  for (const table of [MULAW_TO_LINEAR, ALAW_TO_LINEAR]) {
    const ring = new SampleRing(1 << 16, { hotSamples: 4096 });
    const x = g711(table, 12_000, 5);
    // Block 20 holds a value of neither law: beyond their range (its nearest code is the loudest), and a
    // ring value next to one of theirs.
    x[20 * COLD_BLOCK + 17] = 12_000 / RING_SCALE;
    x[20 * COLD_BLOCK + 200] = (table[40]! + 4) / 32768;
    const hotView = new Int16Array(2 * COLD_BLOCK);
    let seen = false;
    for (let at = 0; at < x.length; at += 160) {
      ring.write(at, x.subarray(at, at + 160), 0);
      if (!seen && ring.end >= 22 * COLD_BLOCK && ring.end - 4096 < 20 * COLD_BLOCK) {
        hotView.set(readVia(ring, 20 * COLD_BLOCK, 2 * COLD_BLOCK));
        seen = true;
      }
    }
    ok(seen);
    deepStrictEqual(readVia(ring, 20 * COLD_BLOCK, 2 * COLD_BLOCK), hotView);
  }
});

Deno.test("two tiers: the G.711 kernel codes blocks at their law's level as the JS tables do, misses included", () => {
  for (const table of [MULAW_TO_LINEAR, ALAW_TO_LINEAR]) {
    const x = g711(table, 200_000, 7);
    // Now and then a value of neither law (beyond their range, or next to one of theirs): its block is coded
    // with the nearest codes, and the next one at shift 2.
    for (let i = 3000; i < x.length; i += 9_001) {
      x[i] = i % 2 ? 12_000 / RING_SCALE : (table[40]! + 4) / 32768;
    }
    const seen: number[][] = [];
    for (const off of [false, true]) {
      disableG711Block(off);
      const ring = new SampleRing(1 << 16, { hotSamples: 4096 });
      const values: number[] = [];
      for (let at = 0; at < x.length; at += 160) {
        ring.write(at, x.subarray(at, at + 160), 0);
        if (at % 40_000 === 0) values.push(...readVia(ring, ring.start, ring.end - ring.start));
      }
      seen.push(values);
    }
    disableG711Block(false);
    ok(seen[0]!.length > 100_000);
    deepStrictEqual(seen[0], seen[1], "the same values with and without the kernel");
  }
});

Deno.test("one tier: the Int16 tier doubles with every held sample where it was, wherever the ring wraps", () => {
  const rnd = rng(23);
  for (const start of [0, 1000, 4095, 4096, 12_345, 1 << 20]) {
    const ring = new SampleRing(32_000);
    const x = Int16Array.from({ length: 60_000 }, () => Math.floor(65536 * rnd()) - 32768);
    for (let at = 0; at < x.length;) {
      const n = Math.min(x.length - at, 1 + Math.floor(3000 * rnd()));
      ring.write(start + at, x.subarray(at, at + n), 0);
      at += n;
      const held = Math.min(at, ring.capacity);
      strictEqual(ring.start, start + at - held);
      deepStrictEqual(readVia(ring, ring.start, held), x.slice(at - held, at), `start ${start}, at ${at}`);
    }
  }
});

Deno.test("two tiers: a stream starting inside a block, its Int16 tier still growing, reads its first block the same once 8-bit", () => {
  // A write longer than the Int16 tier's room past a partly held first block (a tier that is still 4,096 of its
  // 16,384 samples): the block may go 8-bit only once its samples are written, not from what its slots held.
  const x = g711(MULAW_TO_LINEAR, 40_000, 31);
  for (const [first, start] of [[0, 100], [1000, 20_100]] as const) {
    const ring = new SampleRing(65_536, { hotSamples: 16_384 });
    if (first > 0) ring.write(0, x.subarray(0, first), 0);
    ring.write(start, x.subarray(0, 4000), 0);
    const hot = readVia(ring, start, 2000);
    for (let at = 4000; at < x.length; at += 1000) ring.write(start + at, x.subarray(at, at + 1000), 0);
    ok(start + 2000 < ring.end - ring.hotCapacity, "read again from the 8-bit tier");
    strictEqual(firstDiff(hot, readVia(ring, start, 2000)), -1, `stream from ${start}`);
  }
});

Deno.test("three tiers: a stream past sample 2^31 (~75 h at 8 kHz) reads what it reads from sample 0", () => {
  // Block numbers of absolute samples: `i >> 8` turned negative from 2^31 on (at() read zeros, has() never returned).
  const x = speechTimes(5).subarray(0, 300_000);
  for (const opts of [{ hotSamples: 4096 }, { hotSamples: 4096, warmSamples: 80_000 }]) {
    const rings = [0, 2 ** 31 - 400 * COLD_BLOCK].map((base) => {
      const ring = new SampleRing(240_000, opts);
      for (let at = 0; at < x.length; at += 160) ring.write(base + at, x.subarray(at, at + 160), 4096);
      return { base, ring };
    });
    const [a, b] = rings as [(typeof rings)[0], (typeof rings)[0]];
    strictEqual(b.ring.start - b.base, a.ring.start);
    for (let i = a.ring.start; i < a.ring.end; i += 97) {
      strictEqual(b.ring.at(b.base + i), a.ring.at(i), `at(${b.base} + ${i})`);
    }
    for (const from of [a.ring.start, 150_000, a.ring.end - 20_000]) {
      strictEqual(
        firstDiff(readVia(b.ring, b.base + from, 20_000), readVia(a.ring, from, 20_000)),
        -1,
        `from ${from}`,
      );
    }
  }
});
