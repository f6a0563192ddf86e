import { ok, strictEqual } from "node:assert/strict";
import { FineAligner, INSTANT_OFFSET } from "../audio/align/align.ts";
import { MULAW_TO_LINEAR } from "../audio/decode/codecs.ts";
import { sourceEnvelope } from "../audio/align/level_envelope.ts";
import {
  sourceWaveSigns,
  WAVE_FAR,
  WAVE_FROM,
  WAVE_SIGN_SAMPLES,
  WAVE_TO,
  type WaveSigns,
  waveSignScores,
  waveSignShift,
} from "../audio/align/wave_signs.ts";
import { Fingerprinter, FP_PARAMS, FrameAnalyzer, FrameStore } from "../audio/fingerprint/fingerprint.ts";
import { SampleRing } from "../audio/decode/sample_ring.ts";

const FIXTURES = new URL("../fixtures/audio_fp/", import.meta.url);
const HOP = FP_PARAMS.hop;
const ANCHORS = [40, 60, 80, 250, 280, 310];

function samples(name: string): Float32Array {
  return Float32Array.from(Deno.readFileSync(new URL(name, FIXTURES)), (b) => MULAW_TO_LINEAR[b]! / 32768);
}

function analysed(x: Float32Array, lead = 0): { ring: SampleRing; store: FrameStore } {
  const ring = new SampleRing(1 << 17);
  const store = new FrameStore(2048);
  const y = new Float32Array(x.length + lead);
  y.set(x, lead);
  ring.write(0, y, 0);
  new Fingerprinter(ring, store).advance();
  return { ring, store };
}

Deno.test("wave signs: the loudest 512 samples near the instant, one bit per sample", () => {
  const { ring } = analysed(samples("speech_8k.ul"));
  const k = 40 * HOP + INSTANT_OFFSET;
  const w = sourceWaveSigns(ring, k)!;
  ok(w.offset >= WAVE_FROM && w.offset + WAVE_SIGN_SAMPLES <= WAVE_TO, `offset ${w.offset}`);
  strictEqual(w.bits.length, WAVE_SIGN_SAMPLES / 8);
  for (let i = 0; i < WAVE_SIGN_SAMPLES; i++) {
    strictEqual((w.bits[i >> 3]! >> (7 - (i & 7))) & 1, ring.at(k + w.offset + i) >= 0 ? 1 : 0);
  }
  strictEqual(sourceWaveSigns(ring, 100), undefined, "samples before the stream are not held");
});

Deno.test("waveSignShift: a few samples off on quieter audio is found, with near-full agreement", () => {
  const x = samples("speech_8k.ul");
  const src = analysed(x);
  const tgt = analysed(x.map((v) => v * 0.5), 300);
  for (const n of ANCHORS) {
    const k = n * HOP + INSTANT_OFFSET;
    const w = sourceWaveSigns(src.ring, k)!;
    for (const off of [-13, -5, 0, 3, 11]) {
      const r = waveSignShift(tgt.ring, w, k + 300 + off)!;
      strictEqual(r.shift + off, 0);
      ok(r.agreement > 0.9, `agreement ${r.agreement}`);
    }
  }
});

Deno.test("fine alignment: the waveform signs put an envelope answer a few samples off back on the instant", () => {
  const x = samples("speech_8k.ul");
  const src = analysed(x);
  const lead = 555;
  const tgt = analysed(x, lead);
  const al = new FineAligner(new FrameAnalyzer());
  for (const n of ANCHORS) {
    const k = n * HOP + INSTANT_OFFSET;
    const truth = n * HOP + lead;
    // An envelope taken 6 samples late stands for one a codec's smeared onsets put late.
    const env = sourceEnvelope(src.ring, k + 6)!;
    const fp = src.store.bits.slice(n, n + 128);
    const coarse = Math.round(truth / HOP);
    const plain = al.align(tgt.ring, tgt.store, fp, undefined, env, coarse)!;
    ok(Math.abs(plain.sample - truth - 6) <= 1, `envelope alone: ${plain.sample - truth}`);
    const signs = sourceWaveSigns(src.ring, k)!;
    const r = al.align(tgt.ring, tgt.store, fp, undefined, env, coarse, undefined, undefined, [], signs)!;
    strictEqual(r.sample, truth, `anchor ${n}`);
    ok(r.ber < 0.02, `ber ${r.ber}`);
  }
});

Deno.test("fine alignment: signs are not used across a capture-time gap between the instant and their window", () => {
  const x = samples("speech_8k.ul");
  const src = analysed(x);
  const al = new FineAligner(new FrameAnalyzer());
  let across = 0;
  for (const n of ANCHORS) {
    const k = n * HOP + INSTANT_OFFSET;
    const signs = sourceWaveSigns(src.ring, k)!;
    // A 20 ms message lost between the instant and the signs' window (or the window and the instant).
    const cut = k + Math.round(signs.offset / 2);
    if (Math.abs(cut - k) < 40) continue;
    across++;
    const lead = 555;
    const y = new Float32Array(x.length - 160);
    y.set(x.subarray(0, cut));
    y.set(x.subarray(cut + 160), cut);
    const tgt = analysed(y, lead);
    const gapAt = cut + lead;
    const truth = (cut < k ? k - 160 : k) + lead - INSTANT_OFFSET;
    const env = sourceEnvelope(src.ring, k)!;
    const fp = src.store.bits.slice(n, n + 128);
    const gaps = [{ at: gapAt, len: 160 }];
    const coarse = Math.round(truth / HOP);
    const r = al.align(tgt.ring, tgt.store, fp, undefined, env, coarse, undefined, 1024, gaps, signs)!;
    ok(
      Math.abs(r.sample - truth) <= 8,
      `anchor ${n}, gap ${cut - k} samples from the instant: ${r.sample - truth}`,
    );
  }
  ok(across >= 3, `${across} anchors with a gap to test`);
});

/** A ring holding `x` from sample 0. */
function ringOf(x: Float32Array): SampleRing {
  const ring = new SampleRing(1 << 17);
  ring.write(0, x, 0);
  return ring;
}

/** The signs of `x` from sample `at`, as a signature carries them (window starting `offset` after the instant). */
function signsOf(x: Float32Array, at: number, offset: number): WaveSigns {
  const bits = new Uint8Array(WAVE_SIGN_SAMPLES / 8);
  for (let i = 0; i < WAVE_SIGN_SAMPLES; i++) if (x[at + i]! >= 0) bits[i >> 3]! |= 0x80 >> (i & 7);
  return { offset, bits };
}

Deno.test("waveSignShift: another pitch period wins only when signs and envelope together favour it by the margin", () => {
  // A strictly periodic voice (40 samples, 5 ms): every period agrees with the signs alike, so only the
  // envelope's correlation can tell them apart.
  const period = 40;
  const x = new Float32Array(8192);
  for (let t = 0; t < x.length; t++) {
    let v = 0;
    for (let h = 1; h <= 6; h++) v += Math.cos((2 * Math.PI * h * t) / period + h * h) / h;
    x[t] = 0.2 * v;
  }
  const ring = ringOf(x);
  const k = 3000;
  const signs = signsOf(x, k + 100, 100);
  // The envelope favours the next period by `by` correlation (ENVELOPE_WEIGHT × by on the joint score).
  const favour = (by: number) => (d: number) => (d === period ? 0.6 + by : 0.6 - 0.001 * Math.abs(d));
  strictEqual(waveSignShift(ring, signs, k)!.shift, 0, "signs alone stay within ±WAVE_RANGE");
  strictEqual(waveSignShift(ring, signs, k, favour(0.04))!.shift, 0, "better by 0.02 < FAR_MARGIN: stays");
  strictEqual(waveSignShift(ring, signs, k, favour(0.3))!.shift, period, "better by 0.15: the next period");
  ok(WAVE_FAR >= period + 8, "a pitch period and more is searched");
});

Deno.test("waveSignScores: samples a noise reducer gated to near silence have no say", () => {
  const x = samples("speech_8k.ul");
  const k = 80 * HOP + INSTANT_OFFSET;
  const signs = sourceWaveSigns(ringOf(x), k)!;
  // The target: the same audio with every quiet sample replaced by a faint residue of random sign.
  let s = 7;
  const gated = x.map((v) => {
    s = (s * 1103515245 + 12345) >>> 0;
    return Math.abs(v) < 0.03 ? (s & 0x10000 ? 1e-4 : -1e-4) : v;
  });
  const range = 8;
  const out = new Float64Array(2 * range + 1);
  ok(waveSignScores(ringOf(gated), signs, k, range, out));
  // Counted sign by sign, the residue's random signs took the agreement at the instant down to 0.86.
  ok(out[range]! > 0.99, `agreement at the instant ${out[range]}`);
  for (let d = 0; d <= 2 * range; d++) if (d !== range) ok(out[d]! < out[range]!, `shift ${d - range}`);
});

Deno.test("fine alignment: an envelope a pitch period off is put back where the waveform agrees decisively", () => {
  const x = samples("speech_8k.ul");
  const src = analysed(x);
  const lead = 555;
  const tgt = analysed(x, lead);
  const al = new FineAligner(new FrameAnalyzer());
  let back = 0, tried = 0;
  for (const n of ANCHORS) {
    const k = n * HOP + INSTANT_OFFSET;
    const truth = n * HOP + lead;
    const fp = src.store.bits.slice(n, n + 128);
    const signs = sourceWaveSigns(src.ring, k)!;
    for (const off of [-40, -36, -32, -28, 28, 32, 36, 40]) {
      // An envelope taken 3.5–5 ms off stands for one that AGC made peak a pitch period away.
      const env = sourceEnvelope(src.ring, k + off)!;
      const coarse = Math.round(truth / HOP);
      const plain = al.align(tgt.ring, tgt.store, fp, undefined, env, coarse)!;
      strictEqual(plain.sample - truth, off, "the envelope alone is that far off");
      const r = al.align(tgt.ring, tgt.store, fp, undefined, env, coarse, undefined, undefined, [], signs)!;
      tried++;
      if (r.sample === truth) back++;
    }
  }
  // Measured: 18 of 48 (anchors 60, 250 and 280); searched within ±2 ms only, none.
  ok(back >= 16, `${back} of ${tried} put back on the instant`);
});

Deno.test("fine alignment: the aligned grid's BER is taken once, where the waveform signs put the instant", () => {
  const x = samples("speech_8k.ul");
  const src = analysed(x);
  const tgt = analysed(x, 555);
  /** Counts frame analyses (a pair of frames through the kernel: two). */
  class Spy extends FrameAnalyzer {
    count = 0;
    override analyze(ring: SampleRing, pos: number, out: Float64Array): number {
      this.count++;
      return super.analyze(ring, pos, out);
    }
    override pairBits(ring: SampleRing, pos: Float64Array, count: number, bits: Uint32Array): boolean {
      const done = super.pairBits(ring, pos, count, bits);
      if (done) this.count += 2 * count;
      return done;
    }
  }
  const spy = new Spy();
  const al = new FineAligner(spy);
  let moved = 0;
  for (const n of ANCHORS) {
    const k = n * HOP + INSTANT_OFFSET;
    // The envelope 6 samples late: the signs move the answer (as in the test above).
    const env = sourceEnvelope(src.ring, k + 6)!;
    const fp = src.store.bits.slice(n, n + 128);
    const coarse = Math.round((n * HOP + 555) / HOP);
    const plain = al.align(tgt.ring, tgt.store, fp, undefined, env, coarse)!;
    spy.count = 0;
    const signs = sourceWaveSigns(src.ring, k)!;
    const r = al.align(tgt.ring, tgt.store, fp, undefined, env, coarse, undefined, undefined, [], signs)!;
    if (r.shift !== plain.shift) moved++;
    // 24 frames and their previous ones: once, not also at the envelope's answer the signs moved away from.
    strictEqual(spy.count, 48, `anchor ${n}`);
  }
  ok(moved >= 3, `${moved} anchors moved by the signs`);
});

Deno.test("waveSignScores: the same agreements, bit for bit, as summing one shift at a time", () => {
  const x = samples("speech_8k.ul");
  const ring = ringOf(x);
  for (const n of ANCHORS) {
    const k = n * HOP + INSTANT_OFFSET;
    const signs = sourceWaveSigns(ring, k + 37)!;
    // ±16 and ±48 shifts: 33 and 97 of them, four a pass and the rest one by one.
    for (const range of [16, WAVE_FAR, 5]) {
      const out = new Float64Array(2 * range + 1);
      ok(waveSignScores(ring, signs, k, range, out));
      for (let d = 0; d <= 2 * range; d++) {
        let num = 0, den = 0;
        for (let i = 0; i < WAVE_SIGN_SAMPLES; i++) {
          const v = ring.data[(k + signs.offset - range + d + i) & ring.mask]!;
          num += ((signs.bits[i >> 3]! >> (7 - (i & 7))) & 1 ? 1 : -1) * v;
        }
        // The magnitudes as the function sums them: a running sum over the whole span.
        let before = 0, upTo = 0;
        for (let i = 0; i < d + WAVE_SIGN_SAMPLES; i++) {
          const v = Math.abs(ring.data[(k + signs.offset - range + i) & ring.mask]!);
          upTo += v;
          if (i < d) before += v;
        }
        den = upTo - before;
        strictEqual(out[d], den > 0 ? num / den : 0, `anchor ${n}, range ${range}, shift ${d - range}`);
      }
    }
  }
});

Deno.test("waveSignScores: the SIMD sums are the JS sums, to the bit, at full scale too", () => {
  // Square waves at full scale (every product ±32,767 or ±32,768) and random samples: integer sums far below
  // 2^53, so the kernel's order of additions cannot change them.
  let seed = 7;
  const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const square = Float32Array.from({ length: 8000 }, (_, i) => ((i >> 3) & 1 ? 32767 : -32768) / 32768);
  const noise = Float32Array.from({ length: 8000 }, () => Math.round((rnd() * 2 - 1) * 32767) / 32768);
  for (const x of [square, noise]) {
    const ring = ringOf(x);
    const bits = Uint8Array.from({ length: WAVE_SIGN_SAMPLES / 8 }, () => Math.floor(rnd() * 256));
    const signs: WaveSigns = { offset: 0, bits };
    for (const range of [WAVE_FAR, 16, 5]) {
      const simd = new Float64Array(2 * range + 1), js = new Float64Array(2 * range + 1);
      ok(waveSignScores(ring, signs, 3000, range, simd));
      ok(waveSignScores(ring, signs, 3000, range, js, { simd: false }));
      for (let d = 0; d <= 2 * range; d++) strictEqual(simd[d], js[d], `shift ${d - range}`);
      ok(js.some((v) => v !== 0), "some agreement");
    }
  }
});
