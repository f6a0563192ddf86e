import { ok } from "node:assert/strict";
import { ALIGN_RANGE, INSTANT_OFFSET } from "../audio/align/align.ts";
import { MULAW_TO_LINEAR } from "../audio/decode/codecs.ts";
import { EnvelopeScratch, envelopeShift, sourceEnvelope } from "../audio/align/level_envelope.ts";
import { SampleRing } from "../audio/decode/sample_ring.ts";

const FIXTURES = new URL("../fixtures/audio_fp/", import.meta.url);

function speech(): Float32Array {
  return Float32Array.from(
    Deno.readFileSync(new URL("speech_8k.ul", FIXTURES)),
    (b) => MULAW_TO_LINEAR[b]! / 32768,
  );
}

/**
 * What a voice pipeline's noise suppression and AGC do to a call, in code (deterministic): noise 25 dB under
 * the loudest 20 ms, a noise reducer's pre-echo (an anticausal 30 ms smear, `preEcho` of the level), then a
 * compander with a 5 ms attack and 150 ms release on the bench chain's curve (-40 dB lifted to -22, -20 to
 * -12, 0 to -5).
 */
function agc(x: Float32Array, preEcho: number): Float32Array {
  let s = 1;
  const rnd = () => (s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32 - 0.5;
  let peak = 0;
  for (let i = 0; i + 160 <= x.length; i += 80) {
    let e = 0;
    for (let j = 0; j < 160; j++) e += x[i + j]! ** 2;
    peak = Math.max(peak, e / 160);
  }
  const noise = Math.sqrt(peak * 10 ** (-25 / 10) * 12) * 3;
  let b = 0;
  const noisy = Float32Array.from(x, (v) => {
    b = 0.9 * b + 0.1 * rnd();
    return v + noise * b;
  });
  const smeared = new Float32Array(noisy.length);
  const a = Math.exp(-1 / 240);
  let acc = 0;
  for (let i = noisy.length - 1; i >= 0; i--) {
    acc = a * acc + (1 - a) * Math.abs(noisy[i]!);
    smeared[i] = noisy[i]! + preEcho * acc * rnd() * 4;
  }
  const pts: [number, number][] = [[-100, -100], [-60, -60], [-40, -22], [-20, -12], [0, -5]];
  const curve = (db: number) => {
    for (let k = 1; k < pts.length; k++) {
      const [x0, y0] = pts[k - 1]!, [x1, y1] = pts[k]!;
      if (db <= x1) return y0 + ((y1 - y0) * (db - x0)) / (x1 - x0);
    }
    return -5;
  };
  const attack = 1 - Math.exp(-1 / 40), release = 1 - Math.exp(-1 / 1200);
  let level = 0;
  return Float32Array.from(smeared, (v) => {
    level += (v * v > level ? attack : release) * (v * v - level);
    const db = 10 * Math.log10(level + 1e-12);
    return v * 10 ** ((curve(db) - db) / 20);
  });
}

function ring(x: Float32Array, lead: number): SampleRing {
  const r = new SampleRing(1 << 17);
  const y = new Float32Array(x.length + lead);
  y.set(x, lead);
  r.write(0, y, 0);
  return r;
}

// Before the levels were compared less their ±16 ms mean, these onsets were placed 5 ms early (no pre-echo)
// and 26 ms early (pre-echo 0.3): the compander lifts the quiet stretch before each onset into a ramp.
Deno.test("envelopeShift: speech onsets through noise suppression and AGC stay within a millisecond", () => {
  const x = speech();
  const src = ring(x, 0);
  const lead = 300;
  for (const preEcho of [0, 0.1, 0.3]) {
    const tgt = ring(agc(x, preEcho), lead);
    let onsets = 0;
    for (let n = 20; n < Math.floor(x.length / 128) - 40; n++) {
      const k = n * 128 + INSTANT_OFFSET;
      const env = sourceEnvelope(src, k)!;
      // Onsets after a pause: the first 60 ms quiet, speech right after the instant.
      if (!(env.subarray(0, 60).every((v) => v <= 1) && env.subarray(64, 100).some((v) => v >= 5))) continue;
      onsets++;
      const r = envelopeShift(tgt, env, k + lead + 37, ALIGN_RANGE, new EnvelopeScratch())!;
      ok(Math.abs(r.shift + 37) <= 8, `pre-echo ${preEcho}, frame ${n}: ${(r.shift + 37) / 8} ms off`);
    }
    ok(onsets >= 4, `${onsets} onsets in the fixture`);
  }
});
