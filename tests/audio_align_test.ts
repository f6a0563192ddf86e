import { ok, strictEqual } from "node:assert/strict";
import { ALIGN_RANGE, FineAligner, INSTANT_OFFSET } from "../audio/align/align.ts";
import { MULAW_TO_LINEAR } from "../audio/decode/codecs.ts";
import { ENV_VALUES, EnvelopeScratch, envelopeShift, sourceEnvelope } from "../audio/align/level_envelope.ts";
import { Fingerprinter, FP_PARAMS, FrameAnalyzer, FrameStore } from "../audio/fingerprint/fingerprint.ts";
import { SampleRing } from "../audio/decode/sample_ring.ts";

const FIXTURES = new URL("../fixtures/audio_fp/", import.meta.url);
const HOP = FP_PARAMS.hop;

function samples(name: string): Float32Array {
  return Float32Array.from(Deno.readFileSync(new URL(name, FIXTURES)), (b) => MULAW_TO_LINEAR[b]! / 32768);
}

function shifted(x: Float32Array, lead: number): Float32Array {
  const y = new Float32Array(x.length + lead);
  y.set(x, lead);
  return y;
}

function analysed(x: Float32Array): { ring: SampleRing; store: FrameStore } {
  const ring = new SampleRing(1 << 17);
  const store = new FrameStore(2048);
  ring.write(0, x, 0);
  new Fingerprinter(ring, store).advance();
  return { ring, store };
}

/** Source anchors of the fixture: grid frames where speech is loud (both prompts). */
const ANCHORS = [40, 60, 80, 250, 280, 310];

Deno.test("envelope: quantised levels of the instant's surroundings, 0..7", () => {
  const src = analysed(samples("speech_8k.ul"));
  const env = sourceEnvelope(src.ring, 40 * HOP + INSTANT_OFFSET)!;
  strictEqual(env.length, ENV_VALUES);
  ok(env.every((v) => v >= 0 && v <= 7));
  ok(env.some((v) => v === 7) && env.some((v) => v <= 2));
  strictEqual(sourceEnvelope(src.ring, 10), undefined, "samples before the stream are not held");
});

Deno.test("fine alignment finds the instant within a sample on the same audio, from any coarse frame error", () => {
  const x = samples("speech_8k.ul");
  const src = analysed(x);
  for (const lead of [0, 37, 100, 1234]) {
    const tgt = analysed(shifted(x, lead));
    const al = new FineAligner(new FrameAnalyzer());
    for (const n of ANCHORS) {
      const instant = n * HOP + INSTANT_OFFSET;
      const env = sourceEnvelope(src.ring, instant)!;
      const truth = n * HOP + lead;
      const coarse = Math.round(truth / HOP);
      const fp = src.store.bits.slice(n, n + 128);
      const r = al.align(tgt.ring, tgt.store, fp, undefined, env, coarse)!;
      strictEqual(r.by, "envelope");
      // The source envelope is quantised to 3 bits, so even identical audio may peak one sample off.
      ok(Math.abs(r.sample - truth) <= 1, `lead ${lead} anchor ${n}: ${r.sample - truth} samples`);
      ok(r.ber < 0.02, `ber ${r.ber}`);
      // Without the envelope the sub-fingerprints alone get within a millisecond.
      const f = al.align(tgt.ring, tgt.store, fp, undefined, undefined, coarse)!;
      strictEqual(f.by, "fingerprint");
      ok(Math.abs(f.sample - truth) <= 8, `fingerprint-only: ${f.sample - truth} samples`);
      ok(f.ber < 0.02, `aligned-grid BER ${f.ber}`);
    }
  }
});

Deno.test("fine alignment through GSM 06.10 stays within a millisecond", () => {
  const src = analysed(samples("speech_8k.ul"));
  const lead = 555;
  const tgt = analysed(shifted(samples("speech_gsm_8k.ul"), lead));
  const al = new FineAligner(new FrameAnalyzer());
  for (const n of ANCHORS.slice(0, 3)) {
    const env = sourceEnvelope(src.ring, n * HOP + INSTANT_OFFSET)!;
    const truth = n * HOP + lead;
    const r = al.align(
      tgt.ring,
      tgt.store,
      src.store.bits.slice(n, n + 128),
      undefined,
      env,
      Math.round(truth / HOP),
    )!;
    ok(Math.abs(r.sample - truth) <= 8, `anchor ${n}: ${r.sample - truth} samples`);
  }
});

Deno.test("envelopeShift: gain does not matter and a 150-sample shift is found", () => {
  const x = samples("speech_8k.ul");
  const src = analysed(x);
  const k = 300 * HOP + INSTANT_OFFSET;
  const env = sourceEnvelope(src.ring, k)!;
  const quiet = analysed(shifted(x.map((v) => v * 0.1), 200));
  const r = envelopeShift(quiet.ring, env, k + 200 - 150, ALIGN_RANGE, new EnvelopeScratch())!;
  strictEqual(r.shift, 150);
  // The correlation is of levels less their ±16 ms mean, where the 3-bit source quantisation weighs more.
  ok(r.corr > 0.8, `corr ${r.corr}`);
  strictEqual(envelopeShift(quiet.ring, env, 100, ALIGN_RANGE, new EnvelopeScratch()), undefined, "not held");
});
