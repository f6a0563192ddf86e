import { ok, strictEqual } from "node:assert/strict";
import { FineAligner, INSTANT_OFFSET } from "../audio/align/align.ts";
import { MULAW_TO_LINEAR } from "../audio/decode/codecs.ts";
import { sourceEnvelope } from "../audio/align/level_envelope.ts";
import {
  sourceWaveSigns,
  WAVE_FROM,
  WAVE_SIGN_SAMPLES,
  WAVE_TO,
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
