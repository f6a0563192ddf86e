import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import {
  Fingerprinter,
  FP_PARAMS,
  FrameAnalyzer,
  FrameStore,
  subFingerprint,
  SUBFP_BITS,
  weakMask,
} from "../audio/fingerprint/fingerprint.ts";
import { MULAW_TO_LINEAR } from "../audio/decode/codecs.ts";
import { SampleRing } from "../audio/decode/sample_ring.ts";
import { rng } from "./support/rng.ts";

const FIXTURES = new URL("../fixtures/audio_fp/", import.meta.url);

function speech(): Float32Array {
  const bytes = Deno.readFileSync(new URL("speech_8k.ul", FIXTURES));
  return Float32Array.from(bytes, (b) => MULAW_TO_LINEAR[b]! / 32768);
}

interface Frames {
  start: number;
  bits: number[];
  weak: number[];
  strong: number[];
  energy: number[];
}

/** Fingerprints `x` (first sample at absolute index `start`) pushed in the given chunk sizes. */
function fingerprint(x: Float32Array, chunks: number[], start = 0): Frames {
  const ring = new SampleRing(1 << 17);
  const store = new FrameStore(4096);
  const fp = new Fingerprinter(ring, store);
  let at = 0;
  for (const c of chunks) {
    ring.write(start + at, x.subarray(at, at + c), 0);
    fp.advance();
    at += c;
  }
  const out: Frames = { start: store.start, bits: [], weak: [], strong: [], energy: [] };
  for (let n = store.start; n < store.end; n++) {
    const i = n & store.mask;
    out.bits.push(store.bits[i]!);
    out.weak.push(store.weak[i]!);
    out.strong.push(store.strong[i]!);
    out.energy.push(store.energy[i]!);
  }
  return out;
}

function randomChunks(total: number, rnd: () => number, min = 1, max = 2000): number[] {
  const out: number[] = [];
  for (let left = total; left > 0;) {
    const c = Math.min(left, min + Math.floor(rnd() * (max - min + 1)));
    out.push(c);
    left -= c;
  }
  return out;
}

Deno.test("subFingerprint: bit m is the sign of the band-and-time energy difference, MSB = band 0", () => {
  const prev = new Float64Array(33);
  const cur = new Float64Array(33);
  for (let b = 0; b < 33; b++) cur[b] = b % 3; // E[m]-E[m+1]: -1, -1, 2, -1, -1, 2, ...
  const res = new Uint32Array(3);
  subFingerprint(cur, prev, res, new Float64Array(32), 1);
  let want = 0;
  for (let m = 0; m < 32; m++) want = (want << 1) | (cur[m]! - cur[m + 1]! > 0 ? 1 : 0);
  strictEqual(res[0], want >>> 0);
  // The previous frame's difference is subtracted: the same shape in both frames gives no positive bit.
  subFingerprint(cur, cur, res, new Float64Array(32), 1);
  strictEqual(res[0], 0);
});

Deno.test("subFingerprint: weak bits are the smallest |difference| per half, strong bits the large ones", () => {
  const prev = new Float64Array(33);
  const cur = new Float64Array(33);
  // Differences d[m] = cur[m] - cur[m+1]; build cur backwards from chosen |d|.
  const d = Array.from({ length: 32 }, (_, m) => (m % 2 ? 1 : -1) * (10 + m));
  d[5] = 0.5; // weakest in the high half
  d[9] = -0.7; // second weakest in the high half
  d[20] = 0.1; // weakest in the low half
  d[31] = 0.2; // second weakest in the low half
  for (let m = 31; m >= 0; m--) cur[m] = cur[m + 1]! + d[m]!;
  const res = new Uint32Array(3);
  subFingerprint(cur, prev, res, new Float64Array(32), 1);
  strictEqual(weakMask(res[1]!, 0), (1 << (31 - 5)) >>> 0);
  strictEqual(weakMask(res[1]!, 1), (1 << (31 - 9)) >>> 0);
  strictEqual(weakMask(res[1]!, 2), (1 << (31 - 20)) >>> 0);
  strictEqual(weakMask(res[1]!, 3), (1 << (31 - 31)) >>> 0);
  for (const m of [5, 9, 20, 31]) strictEqual((res[2]! >>> (31 - m)) & 1, 0, `bit ${m} is not strong`);
  strictEqual((res[2]! >>> (31 - 30)) & 1, 1, "bit 30 (|d| = 40) is strong");
});

Deno.test("subFingerprint: ties and random energies give what a plain sort-based reading of the rule gives", () => {
  // The rule read literally: the sign of each difference; per half, the two smallest |difference| by a stable
  // sort (the earlier band first on ties); strong when |difference| >= alpha × the mean.
  const reference = (cur: Float64Array, prev: Float64Array, alpha: number): number[] => {
    const d = Array.from({ length: 32 }, (_, m) => cur[m]! - cur[m + 1]! - (prev[m]! - prev[m + 1]!));
    const a = d.map(Math.abs);
    let bits = 0, strong = 0;
    for (let m = 0; m < 32; m++) bits = (bits << 1) | (d[m]! > 0 ? 1 : 0);
    const two = (from: number) =>
      Array.from({ length: 16 }, (_, i) => from + i).sort((x, y) => a[x]! - a[y]! || x - y).slice(0, 2);
    const [h1, h2] = two(0), [l1, l2] = two(16);
    const thr = (a.reduce((s, v) => s + v, 0) / 32) * alpha;
    if (thr > 0) { for (let m = 0; m < 32; m++) strong = (strong << 1) | (a[m]! >= thr ? 1 : 0); }
    return [bits >>> 0, (h1! | (h2! << 4) | ((l1! - 16) << 8) | ((l2! - 16) << 12)) >>> 0, strong >>> 0];
  };
  const rnd = rng(7);
  const res = new Uint32Array(3);
  for (let trial = 0; trial < 2000; trial++) {
    // Coarse levels make equal differences (ties) common; every tenth pair is flat (no difference at all).
    const levels = trial % 3 === 0 ? 3 : 1e6;
    const cur = new Float64Array(33).map(() => Math.floor(rnd() * levels));
    const prev = trial % 10 === 0 ? cur.slice() : new Float64Array(33).map(() => Math.floor(rnd() * levels));
    const alpha = trial % 2 ? 1 : 0.5;
    subFingerprint(cur, prev, res, new Float64Array(32), alpha);
    deepStrictEqual([...res], reference(cur, prev, alpha), `trial ${trial}`);
  }
});

Deno.test("Fingerprinter: any chunking of the same audio gives bit-identical frames (property)", () => {
  const x = speech();
  const whole = fingerprint(x, [x.length]);
  ok(whole.bits.length > 400, `frames: ${whole.bits.length}`);
  const rnd = rng(42);
  for (let trial = 0; trial < 12; trial++) {
    const chunks = trial % 3 === 0 ? randomChunks(x.length, rnd, 1, 7) : randomChunks(x.length, rnd, 1, 3000);
    deepStrictEqual(fingerprint(x, chunks), whole, `trial ${trial}`);
  }
});

Deno.test("Fingerprinter: each frame is subFingerprint of analyze's band energies over the previous frame's, silence first", () => {
  // FrameAnalyzer.fingerprint computes the sub-fingerprint in the float32 kernel where it runs (RealFft.bandBits):
  // on speech (every kind of sign and near-tie) it must give what the JS rule gives.
  const x = speech();
  const got = fingerprint(x, [x.length]);
  const ring = new SampleRing(1 << 17);
  ring.write(0, x, 0);
  const analyzer = new FrameAnalyzer();
  let prev = new Float64Array(33), cur = new Float64Array(33);
  const res = new Uint32Array(3);
  for (let n = 0; n < got.bits.length; n++) {
    const energy = analyzer.analyze(ring, n * FP_PARAMS.hop, cur);
    subFingerprint(cur, prev, res, new Float64Array(SUBFP_BITS), FP_PARAMS.strongAlpha);
    deepStrictEqual(
      [got.bits[n], got.weak[n], got.strong[n]],
      [res[0], res[1]! & 0xffff, res[2]],
      `frame ${n}`,
    );
    strictEqual(got.energy[n], Math.fround(energy), `frame ${n} energy`);
    [prev, cur] = [cur, prev];
  }
});

Deno.test("Fingerprinter: the grid is absolute, frame n starts at sample n·hop of the stream", () => {
  const x = speech();
  const hop = FP_PARAMS.hop;
  const a = fingerprint(x, [x.length], 0);
  // The same audio starting at absolute sample 3·hop: its frame n is the first stream's frame n-3.
  const b = fingerprint(x, [x.length], 3 * hop);
  strictEqual(b.start, 3);
  deepStrictEqual(b.bits.slice(1, 200), a.bits.slice(1, 200));
  // Starting off the grid, the first frame is the next grid point.
  const c = fingerprint(x, [x.length], 3 * hop + 5);
  strictEqual(c.start, 4);
});

Deno.test("Fingerprinter: gain changes no bit beyond a few weak ones, and moves the energy by the gain", () => {
  const x = speech();
  const y = x.map((v) => v * 0.5);
  const a = fingerprint(x, [x.length]);
  const b = fingerprint(y, [y.length]);
  let errors = 0, bits = 0;
  for (let n = 0; n < a.bits.length; n++) {
    if (a.energy[n]! < -50) continue;
    let v = (a.bits[n]! ^ b.bits[n]!) >>> 0;
    for (; v; v &= v - 1) errors++;
    bits += SUBFP_BITS;
    ok(Math.abs(a.energy[n]! - b.energy[n]! - 6.02) < 0.1, `frame ${n}: ${a.energy[n]} vs ${b.energy[n]}`);
  }
  ok(errors / bits < 0.005, `BER ${errors / bits}`);
});

Deno.test("Fingerprinter: a gap is filled with silence on the same grid; a long one restarts the grid", () => {
  const x = speech().subarray(0, 16000);
  const ring = new SampleRing(1 << 15);
  const store = new FrameStore(1024);
  const fp = new Fingerprinter(ring, store);
  strictEqual(ring.write(0, x.subarray(0, 8000), 4000), "ok");
  fp.advance();
  strictEqual(ring.write(9000, x.subarray(8000), 4000), "gap_filled");
  fp.advance();
  strictEqual(ring.end, 17000);
  strictEqual(store.end, Math.floor((17000 - FP_PARAMS.frame) / FP_PARAMS.hop) + 1);
  strictEqual(ring.write(30000, x.subarray(0, 4000), 4000), "reset");
  fp.restart(ring.start);
  strictEqual(store.start, Math.ceil(30000 / FP_PARAMS.hop));
  strictEqual(ring.write(100, x.subarray(0, 10), 4000), "overlap_dropped");
});

Deno.test("FrameAnalyzer: a full-scale tone in the bands is about 0 dB, digital silence is the floor", () => {
  const an = new FrameAnalyzer();
  const ring = new SampleRing(4096);
  const tone = new Float32Array(2048).map((_, i) => Math.sin((2 * Math.PI * 1000 * i) / 8000));
  ring.write(0, tone, 0);
  const bands = new Float64Array(33);
  const db = an.analyze(ring, 0, bands);
  ok(Math.abs(db) < 1.5, `tone: ${db} dB`);
  const silent = new SampleRing(4096);
  silent.write(0, new Float32Array(2048), 0);
  ok(an.analyze(silent, 0, bands) < -150);
});

/** What Fingerprinter.advance computed frame by frame before runs (FrameAnalyzer.fingerprint, one frame a call). */
class PerFrame {
  readonly store: FrameStore;
  readonly #prev = new Float64Array(33);
  readonly #res = new Uint32Array(3);
  readonly #an = new FrameAnalyzer();
  #next = -1;
  constructor(readonly ring: SampleRing, capacity: number) {
    this.store = new FrameStore(capacity);
  }
  restart(sample: number): void {
    this.#next = Math.ceil(sample / FP_PARAMS.hop);
    this.#prev.fill(0);
    this.store.reset(this.#next);
  }
  advance(): void {
    const { hop, frame } = FP_PARAMS;
    if (this.#next < 0 || this.#next * hop < this.ring.start) this.restart(this.ring.start);
    for (; this.#next * hop + frame <= this.ring.end; this.#next++) {
      const energy = this.#an.fingerprint(this.ring, this.#next * hop, this.#prev, this.#res);
      this.store.push(this.#res[0]!, this.#res[1]!, energy, this.#res[2]!);
    }
  }
}

/** Frames [from, to) of `store` as [bits, weak, strong, energy] (throws if one is not held). */
function held(store: FrameStore, from: number, to: number): number[][] {
  ok(store.has(from, to - from), `frames ${from}..${to} held (${store.start}..${store.end})`);
  const out: number[][] = [];
  for (let n = from; n < to; n++) {
    const i = n & store.mask;
    out.push([store.bits[i]!, store.weak[i]!, store.strong[i]!, store.energy[i]!]);
  }
  return out;
}

Deno.test("Fingerprinter: runs of frames (one kernel call each) give the per-frame path's frames across ring wrap, overruns, resets and run boundaries", () => {
  const s = speech();
  const x = new Float32Array(4 * s.length);
  for (let k = 0; k < 4; k++) x.set(s, k * s.length);
  const rnd = rng(7);
  // A target's ring (an Int16 tier of 4,096 samples: runs of at most 25 frames) and a source's (no cold tier:
  // runs as long as the kernel takes), a store smaller than some runs, chunks from a sample to past the ring.
  const rings = [
    () => new SampleRing(40000, { hotSamples: 4096, warmSamples: 16000 }),
    () => new SampleRing(1 << 14),
  ];
  for (const [r, makeRing] of rings.entries()) {
    for (const capacity of [64, 4096]) {
      const ring = makeRing(), ringRef = makeRing();
      const fp = new Fingerprinter(ring, new FrameStore(capacity));
      const ref = new PerFrame(ringRef, capacity);
      let at = 0, pos = 0, writes = 0;
      while (at < x.length) {
        const u = rnd();
        const c = Math.min(x.length - at, u < 0.4 ? 1 + Math.floor(rnd() * 300) : Math.floor(rnd() * 20000));
        if (u > 0.97) pos += 50000; // a jump: the rings reset, the grid restarts
        const piece = x.subarray(at, at + c);
        ring.write(pos, piece, 4000);
        ringRef.write(pos, piece, 4000);
        fp.advance();
        ref.advance();
        writes++;
        strictEqual(fp.store.start, ref.store.start, `ring ${r} capacity ${capacity} write ${writes}: start`);
        strictEqual(fp.store.end, ref.store.end, `ring ${r} capacity ${capacity} write ${writes}: end`);
        const from = Math.max(fp.store.start, fp.store.end - 200);
        deepStrictEqual(
          held(fp.store, from, fp.store.end),
          held(ref.store, from, ref.store.end),
          `write ${writes}`,
        );
        at += c;
        pos += c;
      }
      ok(writes > 20);
    }
  }
});

Deno.test("Fingerprinter.advanceRange: runs over ranges give advance's frames, seeded after a jump", () => {
  const x = speech();
  const ring = new SampleRing(1 << 17);
  ring.write(0, x, 0);
  const all = new Fingerprinter(ring, new FrameStore(4096));
  all.advance();
  const part = new Fingerprinter(ring, new FrameStore(4096));
  part.restart(0);
  const rnd = rng(11);
  for (let from = 0; from < all.store.end;) {
    const to = Math.min(all.store.end, from + 1 + Math.floor(rnd() * 300));
    part.advanceRange(from, to);
    deepStrictEqual(held(part.store, from, to), held(all.store, from, to), `frames ${from}..${to}`);
    // Sometimes go on from the last frame, sometimes skip some (a new run seeded from the frame before).
    from = rnd() < 0.5 ? to : to + Math.floor(rnd() * 50);
  }
});

Deno.test("FrameAnalyzer.pairBits: each frame's bits over the frame a hop before it, as analyze's energies give them, in and across kernel calls and ring wrap", () => {
  const x = speech();
  const an = new FrameAnalyzer();
  const { hop, frame } = FP_PARAMS;
  // A ring smaller than the audio, so the pairs' span wraps in it.
  const ring = new SampleRing(1 << 15);
  const start = 20000;
  ring.write(start, x.subarray(0, 40000), 0);
  const prev = new Float64Array(SUBFP_BITS + 1), cur = new Float64Array(SUBFP_BITS + 1);
  const expected = (p: number) => {
    an.analyze(ring, p - hop, prev);
    an.analyze(ring, p, cur);
    let b = 0;
    for (let m = 0; m < SUBFP_BITS; m++) {
      b = (b << 1) | (cur[m]! - cur[m + 1]! - (prev[m]! - prev[m + 1]!) > 0 ? 1 : 0);
    }
    return b >>> 0;
  };
  const r = rng(5);
  // Spacings from a hop (consecutive frames) to two hops: 150 pairs span two calls' scratch.
  const pos = new Float64Array(150);
  let at = ring.start + hop + 3;
  for (let p = 0; p < pos.length; p++, at += hop + Math.floor(r() * 3) * hop / 2) pos[p] = at;
  ok(pos[pos.length - 1]! + frame <= ring.end);
  ok(ring.has(pos[0]! - hop, pos[pos.length - 1]! + frame - pos[0]! + hop));
  const bits = new Uint32Array(pos.length);
  if (!an.pairBits(ring, pos, pos.length, bits)) return; // no float32 kernel here: the caller analyses frames
  const want = Array.from(pos, expected);
  deepStrictEqual(Array.from(bits), want);
  // One pair alone, as a call's only one.
  const one = new Uint32Array(1);
  ok(an.pairBits(ring, pos.subarray(7), 1, one));
  strictEqual(one[0], want[7]);
});
