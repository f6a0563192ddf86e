import { ok, strictEqual } from "node:assert/strict";
import { ALIGN_RANGE, FineAligner, INSTANT_OFFSET } from "../audio/align/align.ts";
import { MULAW_TO_LINEAR } from "../audio/decode/codecs.ts";
import { EnvelopeScratch, envelopeShift, sourceEnvelope } from "../audio/align/level_envelope.ts";
import { Fingerprinter, FP_PARAMS, FrameAnalyzer, FrameStore } from "../audio/fingerprint/fingerprint.ts";
import { initAudioEngine } from "../audio/pipeline.ts";
import { Rephaser } from "../audio/align/rephase.ts";
import { SampleRing } from "../audio/decode/sample_ring.ts";
import { buildSignature } from "../audio/fingerprint/signature.ts";
import { popcount32 } from "../audio/match/signature_index.ts";

const FIXTURES = new URL("../fixtures/audio_fp/", import.meta.url);
const HOP = FP_PARAMS.hop;
const BLOCK = 128;

await initAudioEngine();

function samples(name: string): Float32Array {
  return Float32Array.from(Deno.readFileSync(new URL(name, FIXTURES)), (b) => MULAW_TO_LINEAR[b]! / 32768);
}

function analysed(x: Float32Array, lead = 0): { ring: SampleRing; store: FrameStore } {
  const y = new Float32Array(x.length + lead);
  y.set(x, lead);
  const ring = new SampleRing(1 << 17);
  const store = new FrameStore(2048);
  ring.write(0, y, 0);
  new Fingerprinter(ring, store).advance();
  return { ring, store };
}

function signatureAt(src: { ring: SampleRing; store: FrameStore }, n: number) {
  return buildSignature({
    measurement: "m",
    node: "a",
    pod: "p",
    stream: "s",
    timeNs: BigInt(n) * 16_000_000n,
    offsetMs: 1,
    fingerprint: src.store.bits.slice(n, n + BLOCK),
    levelEnvelope: sourceEnvelope(src.ring, n * HOP + INSTANT_OFFSET)!,
    ids: {},
  });
}

function bitErrors(a: Uint32Array, store: FrameStore, from: number): number {
  let e = 0;
  for (let j = 0; j < a.length; j++) e += popcount32((a[j]! ^ store.bits[(from + j) & store.mask]!) >>> 0);
  return e / (a.length * 32);
}

Deno.test("rephase: a target on another grid phase gets the source's own sub-fingerprints back", () => {
  const x = samples("speech_8k.ul");
  const src = analysed(x);
  const rp = new Rephaser(new FrameAnalyzer(), BLOCK);
  for (const lead of [40, 64, 90, 1040]) {
    const tgt = analysed(x, lead);
    for (const n of [40, 250]) {
      const sig = signatureAt(src, n);
      const coarse = Math.round((n * HOP + lead) / HOP);
      const r = rp.run(tgt.ring, sig, coarse)!;
      ok(r, `lead ${lead}: rephased`);
      // The grid where the source's frame n starts: the same audio, so (up to the envelope's one-sample
      // precision) the same bits.
      const origin = r.frame * HOP + r.offset;
      ok(Math.abs(origin - (n * HOP + lead)) <= 1, `lead ${lead} anchor ${n}: grid origin ${origin}`);
      const on = bitErrors(sig.fingerprint, r.store, r.frame);
      const off = bitErrors(sig.fingerprint, tgt.store, coarse);
      ok(on < 0.01, `lead ${lead} anchor ${n}: rephased BER ${on}`);
      ok(off > on, `lead ${lead} anchor ${n}: the stream's own grid is worse (${off} vs ${on})`);
    }
  }
});

Deno.test("rephase: nothing to do on the source's own phase, without an envelope, or before the samples", () => {
  const x = samples("speech_8k.ul");
  const src = analysed(x);
  const tgt = analysed(x, 3 * HOP);
  const rp = new Rephaser(new FrameAnalyzer(), BLOCK);
  const sig = signatureAt(src, 40);
  strictEqual(rp.run(tgt.ring, sig, 43), undefined, "same phase: the stream's frames are already right");
  strictEqual(rp.run(analysed(x, 3 * HOP + 3).ring, sig, 43), undefined, "3 samples off: not worth it");
  strictEqual(rp.run(tgt.ring, { ...sig, levelEnvelope: undefined }, 43), undefined, "no envelope");
  const short = analysed(x.subarray(0, 60 * HOP), 17);
  strictEqual(rp.run(short.ring, sig, 40), undefined, "block not held yet");
});

Deno.test("envelopeShift: a shift beyond a hop is found, and a noise floor in the target does not move it", () => {
  const x = samples("speech_8k.ul");
  const src = analysed(x);
  const k = 250 * HOP + INSTANT_OFFSET;
  const env = sourceEnvelope(src.ring, k)!;
  // White noise 20 dB below the speech's RMS fills the pauses the source envelope is shaped by.
  let p = 0;
  for (const v of x) p += v * v;
  const rms = Math.sqrt(p / x.length);
  let seed = 7;
  const noisy = x.map((v) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return v + (seed / 2 ** 32 - 0.5) * Math.sqrt(12) * rms * 0.1;
  });
  const tgt = analysed(noisy, 500);
  const r = envelopeShift(tgt.ring, env, k + 500 - 700, 1024, new EnvelopeScratch())!;
  ok(Math.abs(r.shift - 700) <= 8, `shift ${r.shift} (700 expected)`);
  ok(r.corr > 0.8, `corr ${r.corr}`);
  const near = envelopeShift(tgt.ring, env, k + 500 - 20, 1024, new EnvelopeScratch())!;
  ok(Math.abs(near.shift - 20) <= 8, `shift ${near.shift} (20 expected)`);
});

Deno.test("envelopeShift: with gap hints, messages lost right after the instant do not move it", () => {
  const x = samples("speech_8k.ul");
  const src = analysed(x);
  const n = 250;
  const k = n * HOP + INSTANT_OFFSET;
  const env = sourceEnvelope(src.ring, k)!;
  // The target lost 20 ms at 48 ms after the instant and 40 ms at 120 ms after it.
  const cut1 = k + 384, cut2 = k + 960;
  const y = new Float32Array(x.length - 480);
  y.set(x.subarray(0, cut1), 0);
  y.set(x.subarray(cut1 + 160, cut2), cut1);
  y.set(x.subarray(cut2 + 320), cut2 - 160);
  const tgt = analysed(y);
  const gaps = [{ at: cut1, len: 160 }, { at: cut2 - 160, len: 320 }];
  // The block's coarse alignment follows most of its audio: the part after both losses, 480 samples early.
  const hinted = envelopeShift(tgt.ring, env, k - 480, 1024, new EnvelopeScratch(), gaps)!;
  ok(Math.abs(hinted.shift - 480) <= 1, `with hints: shift ${hinted.shift} (480 expected)`);
  const wrong = envelopeShift(tgt.ring, env, k - 480, 1024, new EnvelopeScratch(), [{
    at: k - 4000,
    len: 800,
  }])!;
  ok(Math.abs(wrong.shift - 480) <= 8, `a hint far off the audio is ignored: shift ${wrong.shift}`);
});

Deno.test("rephase: a run a frame after the last on the same grid reuses its frames and gets the same store", () => {
  const x = samples("speech_8k.ul");
  const src = analysed(x);
  const tgt = analysed(x, 90);
  const again = new Rephaser(new FrameAnalyzer(), BLOCK);
  let reused = 0;
  for (const n of [40, 250]) {
    const sig = signatureAt(src, n);
    const coarse = Math.round((n * HOP + 90) / HOP);
    for (const frame of [coarse - 1, coarse, coarse + 1, coarse]) {
      const a = again.run(tgt.ring, sig, frame)!;
      const b = new Rephaser(new FrameAnalyzer(), BLOCK).run(tgt.ring, sig, frame)!;
      strictEqual(a.frame, b.frame);
      strictEqual(a.offset, b.offset);
      strictEqual(a.store.start, b.store.start);
      strictEqual(a.store.end, b.store.end);
      for (let f = b.store.start; f < b.store.end; f++) {
        const i = f & a.store.mask, j = f & b.store.mask;
        strictEqual(a.store.bits[i], b.store.bits[j]);
        strictEqual(a.store.weak[i], b.store.weak[j]);
        strictEqual(a.store.strong[i], b.store.strong[j]);
        strictEqual(a.store.energy[i], b.store.energy[j]);
      }
      reused++;
    }
  }
  strictEqual(reused, 8);
});

Deno.test("rephase and the envelope search recompute what read samples that aged to the 4-bit tier since", () => {
  const x = samples("speech_8k.ul");
  const src = analysed(x);
  const lead = 90;
  const y = new Float32Array(x.length + lead);
  y.set(x, lead);
  // A ring that ages its samples to 4 bits 8,192 samples after they arrive, as a target's does after ~10 s.
  const ring = new SampleRing(1 << 17, { hotSamples: 4096, warmSamples: 4096 });
  const n = 40;
  const sig = signatureAt(src, n);
  const frame = Math.round((n * HOP + lead) / HOP);
  // The envelope search reads samples ~18,400 to ~21,300: newer than the 4-bit tier at first, not after.
  const late = signatureAt(src, 150);
  const center = 150 * HOP + lead + INSTANT_OFFSET;
  const upTo = 26_000;
  ring.write(0, y.subarray(0, upTo), 0);
  const rp = new Rephaser(new FrameAnalyzer(), BLOCK);
  const scratch = new EnvelopeScratch();
  ok(rp.run(ring, sig, frame), "first run");
  ok(envelopeShift(ring, late.levelEnvelope!, center, 400, scratch), "first search");
  const before = ring.finalBefore;
  ring.write(upTo, y.subarray(upTo, upTo + 16_384), 0);
  // The runs read samples up to ~23,900: some were newer than the 4-bit tier before, none are after.
  ok(before < 20_000 && ring.finalBefore >= upTo, `aged ${before} -> ${ring.finalBefore}`);
  const again = rp.run(ring, sig, frame)!;
  const fresh = new Rephaser(new FrameAnalyzer(), BLOCK).run(ring, sig, frame)!;
  strictEqual(again.frame, fresh.frame);
  strictEqual(again.offset, fresh.offset);
  strictEqual(again.store.start, fresh.store.start);
  strictEqual(again.store.end, fresh.store.end);
  for (let f = fresh.store.start; f < fresh.store.end; f++) {
    const i = f & again.store.mask, j = f & fresh.store.mask;
    strictEqual(again.store.bits[i], fresh.store.bits[j], `frame ${f} bits`);
    strictEqual(again.store.energy[i], fresh.store.energy[j], `frame ${f} energy`);
  }
  const kept = envelopeShift(ring, late.levelEnvelope!, center, 400, scratch)!;
  const recomputed = envelopeShift(ring, late.levelEnvelope!, center, 400, new EnvelopeScratch())!;
  strictEqual(kept.shift, recomputed.shift);
  strictEqual(kept.corr, recomputed.corr);
});

Deno.test("rephase reads through one has() the samples of every frame it computes, and only those", () => {
  const x = samples("speech_8k.ul");
  const src = analysed(x);
  const lead = 90;
  const y = new Float32Array(x.length + lead);
  y.set(x, lead);
  /** A ring that records the ranges readers declare (a cold range is decoded only by has()). */
  class Spy extends SampleRing {
    calls: [number, number][] = [];
    override has(from: number, n: number): boolean {
      this.calls.push([from, from + n]);
      return super.has(from, n);
    }
  }
  const ring = new Spy(1 << 17, { hotSamples: 4096 });
  const n = 40;
  const sig = signatureAt(src, n);
  const coarse = Math.round((n * HOP + lead) / HOP);
  const rp = new Rephaser(new FrameAnalyzer(), BLOCK);
  let computedFrom = -Infinity;
  // The block's end arrives between the two runs: the second computes the frames after the first's.
  const cut = (coarse + BLOCK + 4) * HOP;
  ring.write(0, y.subarray(0, cut), 0);
  for (const frame of [coarse, coarse + 1]) {
    if (frame > coarse) ring.write(cut, y.subarray(cut), 0);
    ring.calls = [];
    const r = rp.run(ring, sig, frame)!;
    ok(r, `run at ${frame}`);
    // Frames from computedFrom on were computed by this run (the first computes all, the next the new ones).
    const first = Math.max(r.store.start, computedFrom);
    const lo = (first - 1) * HOP + r.offset, hi = (r.store.end - 1) * HOP + r.offset + FP_PARAMS.frame;
    ok(r.store.end - first > 4, `frames ${first}..${r.store.end} computed`);
    ok(ring.calls.some(([a, b]) => a <= lo && b >= hi), `frames ${first}..${r.store.end} declared`);
    // Frames reused from the last run are not declared again (their samples are not read).
    const whole = (r.store.start - 1) * HOP + r.offset;
    if (computedFrom > -Infinity) ok(!ring.calls.some(([a, b]) => a <= whole && b >= hi), "no re-read");
    computedFrom = r.store.end;
  }
});

Deno.test("a re-scoring and a fine alignment sharing one envelope scratch answer as with their own", () => {
  const x = samples("speech_8k.ul");
  const src = analysed(x);
  const tgt = analysed(x, 90);
  const scratch = new EnvelopeScratch();
  const rp = new Rephaser(new FrameAnalyzer(), BLOCK, scratch);
  const al = new FineAligner(new FrameAnalyzer(), scratch);
  const a = signatureAt(src, 40), b = signatureAt(src, 250);
  const at = (n: number) => Math.round((n * HOP + 90) / HOP);
  let kept = 0;
  // Interleaved as a stream's verifications and alignments come: the same signature after a re-scoring of it
  // or of another one.
  for (const [sig, n] of [[a, 40], [b, 250], [a, 40], [a, 40], [b, 250], [b, 250]] as const) {
    const frame = at(n);
    const generation = scratch.sources.generation;
    const r = rp.run(tgt.ring, sig, frame)!;
    const fresh = new Rephaser(new FrameAnalyzer(), BLOCK).run(tgt.ring, sig, frame)!;
    strictEqual(r.frame, fresh.frame);
    strictEqual(r.offset, fresh.offset);
    const afterRephase = scratch.sources.generation;
    const args = [sig.fingerprint, sig.mask, sig.levelEnvelope, frame, ALIGN_RANGE, ALIGN_RANGE] as const;
    const got = al.align(tgt.ring, tgt.store, ...args)!;
    const own = new FineAligner(new FrameAnalyzer()).align(tgt.ring, tgt.store, ...args)!;
    strictEqual(got.sample, own.sample);
    strictEqual(got.shift, own.shift);
    strictEqual(got.ber, own.ber);
    // The alignment of the signature just re-scored keeps the re-scoring's source sides and kernels.
    strictEqual(scratch.sources.generation, afterRephase);
    if (afterRephase === generation) kept++;
  }
  strictEqual(kept, 2);
});
