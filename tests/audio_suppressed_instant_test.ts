import { ok, strictEqual } from "node:assert/strict";
import { ALIGN_RANGE, INSTANT_OFFSET } from "../audio/align/align.ts";
import { MULAW_TO_LINEAR } from "../audio/decode/codecs.ts";
import { EnvelopeScratch, envelopeShift, sourceEnvelope } from "../audio/align/level_envelope.ts";
import { FP_PARAMS } from "../audio/fingerprint/fingerprint.ts";
import { inSuppressedOnset, SUPPRESSED_BEFORE_GAP, SUPPRESSED_LOUDER_DB } from "../audio/align/gap_hints.ts";
import { SampleRing } from "../audio/decode/sample_ring.ts";

const FIXTURES = new URL("../fixtures/audio_fp/", import.meta.url);

function speech(): Float32Array {
  return Float32Array.from(
    Deno.readFileSync(new URL("speech_8k.ul", FIXTURES)),
    (b) => MULAW_TO_LINEAR[b]! / 32768,
  );
}

function ringOf(x: Float32Array): SampleRing {
  const ring = new SampleRing(1 << 17);
  ring.write(0, x, 0);
  return ring;
}

/** `x` without samples [a, b): what a tap carries when that stretch was never sent. */
function without(x: Float32Array, a: number, b: number): Float32Array {
  const y = new Float32Array(x.length - (b - a));
  y.set(x.subarray(0, a));
  y.set(x.subarray(b), a);
  return y;
}

Deno.test("envelopeShift: an instant inside audio missing from the target (capture-time gap) is said so", () => {
  const x = speech();
  const k = 300 * FP_PARAMS.hop + INSTANT_OFFSET;
  const env = sourceEnvelope(ringOf(x), k)!;
  // 50 ms missing, the instant 5 ms into it: no target sample carries the instant.
  const target = ringOf(without(x, k - 40, k + 360));
  const gap = { at: k - 40, len: 400 };
  const r = envelopeShift(target, env, k - 40, 1024, new EnvelopeScratch(), [gap])!;
  strictEqual(r.instantInGap, true, `corr ${r.corr}`);
  // Without the capture-time evidence the envelope names a neighbour, as before.
  const blind = envelopeShift(target, env, k - 40, 1024, new EnvelopeScratch(), [])!;
  strictEqual(blind.instantInGap, undefined);
  // An instant 125 ms before the same missing stretch is present: aligned, not claimed by the gap.
  const k2 = k - 1000;
  const env2 = sourceEnvelope(ringOf(x), k2)!;
  const r2 = envelopeShift(target, env2, k2 + 30, ALIGN_RANGE, new EnvelopeScratch(), [gap])!;
  strictEqual(r2.instantInGap, undefined);
  strictEqual(r2.shift, -30);
});

Deno.test("inSuppressedOnset: just before a gap after which the audio is much louder (DTX resuming at an onset)", () => {
  const gaps = [{ at: 10_000, len: 1120 }];
  // Comfort noise before the gap at -40 dB, speech after at -10 dB.
  const dtx = (a: number, _b: number) => (a >= 10_000 ? -10 : -40);
  ok(inSuppressedOnset(10_000 - 10, gaps, dtx));
  ok(inSuppressedOnset(10_000 - SUPPRESSED_BEFORE_GAP, gaps, dtx));
  // Where the bench's DTX chain put such instants once the block was scored in parts: up to 116 samples before.
  ok(inSuppressedOnset(10_000 - 116, gaps, dtx));
  ok(
    !inSuppressedOnset(10_000 - SUPPRESSED_BEFORE_GAP - 1, gaps, dtx),
    "farther before: the envelope decides",
  );
  ok(!inSuppressedOnset(10_000, gaps, dtx), "on the gap's first sample: present");
  // A message lost inside speech: loud on both sides, the instant stays where the envelope put it.
  const loss = (a: number, _b: number) => (a >= 10_000 ? -10 : -10 - SUPPRESSED_LOUDER_DB + 1);
  ok(!inSuppressedOnset(10_000 - 10, gaps, loss));
  ok(!inSuppressedOnset(10_000 - 10, [], dtx), "no gap, no claim");
});
