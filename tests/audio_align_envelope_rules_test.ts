// Tuned rules of the envelope search (audio/align/level_envelope.ts) that no test failed without: the noise
// floor's percentile, the far shifts' handicap, the runner-up's margin and separation, and the margin the
// "instant in a gap" hypothesis must win by; and FineAligner.align's choice between the two peaks by the
// sub-fingerprints (audio/align/align.ts).
import { ok, strictEqual } from "node:assert/strict";
import { ALIGN_RANGE, ENVELOPE_RANGE, FineAligner, INSTANT_OFFSET } from "../audio/align/align.ts";
import type { GapHint } from "../audio/align/gap_hints.ts";
import {
  ENV_FROM,
  ENV_TO,
  type EnvelopeFit,
  EnvelopeScratch,
  envelopeShift,
  sourceEnvelope,
} from "../audio/align/level_envelope.ts";
import { MULAW_TO_LINEAR } from "../audio/decode/codecs.ts";
import { SampleRing } from "../audio/decode/sample_ring.ts";
import { Fingerprinter, FP_PARAMS, FrameAnalyzer, FrameStore } from "../audio/fingerprint/fingerprint.ts";
import { sourceWaveSigns } from "../audio/align/wave_signs.ts";
import { centeredRng, rng } from "./support/rng.ts";

const HOP = FP_PARAMS.hop;

/** The fixture's μ-law speech as analysis samples. */
function speech(): Float32Array {
  const bytes = Deno.readFileSync(new URL("../fixtures/audio_fp/speech_8k.ul", import.meta.url));
  return Float32Array.from(bytes, (b) => MULAW_TO_LINEAR[b]! / 32768);
}

/** A ring holding `x` from analysis sample 0. */
function ringOf(x: Float32Array): SampleRing {
  const ring = new SampleRing(1 << 17);
  ring.write(0, x, 0);
  return ring;
}

/** The envelope search for `env` in `target` around `center` over ±`range` samples, with a scratch of its own. */
function fit(
  target: SampleRing,
  env: Uint8Array,
  center: number,
  range: number,
  gaps: readonly GapHint[] = [],
): EnvelopeFit {
  const r = envelopeShift(target, env, center, range, new EnvelopeScratch(), gaps);
  if (r === undefined) throw new Error("no fit: samples not held or a flat envelope");
  return r;
}

/** `x` plus white noise `snrDb` below its RMS (seeded). */
function withNoise(x: Float32Array, snrDb: number, seed: number): Float32Array {
  let p = 0;
  for (const v of x) p += v * v;
  const a = Math.sqrt((12 * p) / x.length) * 10 ** (-snrDb / 20);
  const r = centeredRng(seed);
  return x.map((v) => v + a * r());
}

/** `x` without samples [a, b): what a tap carries when that stretch was never sent. */
function without(x: Float32Array, a: number, b: number): Float32Array {
  const y = new Float32Array(x.length - (b - a));
  y.set(x.subarray(0, a));
  y.set(x.subarray(b), a);
  return y;
}

/** The instant of the tests built on {@link periodic} sounds, and their length. */
const K = 8000, N = 16_000;

/** `n` samples of a sound repeating every `period` samples: noise whose level changes every 1 ms over 40 dB. */
function periodic(period: number, n: number): Float32Array {
  const r = rng(5);
  const one = new Float32Array(period);
  let amp = 0;
  for (let i = 0; i < period; i++) {
    if (i % 8 === 0) amp = 0.3 * 10 ** (-2 * r());
    one[i] = amp * (2 * r() - 1);
  }
  return Float32Array.from({ length: n }, (_, i) => one[i % period]!);
}

/**
 * A target carrying `sound` only where the envelope of instant {@link K} reads it at shifts 0 and `period` (near
 * silence around), with noise of amplitude `noise` added on [from, from + period): what one of the two shifts
 * reads and the other does not.
 */
function periodicTarget(sound: Float32Array, period: number, from: number, noise: number): SampleRing {
  const r = centeredRng(9);
  const x = Float32Array.from(
    sound,
    (v, i) => (i >= K + ENV_FROM && i < K + ENV_TO + period ? v : 1e-3 * r()),
  );
  for (let i = from; i < from + period; i++) x[i] = x[i]! + 2 * noise * r();
  return ringOf(x);
}

Deno.test("envelopeShift: the target's noise floor is its levels' 5th percentile, not its quietest window", () => {
  // White noise 10-15 dB below the speech fills the target's pauses, and 10 ms of digital silence (a lost
  // message the ring filled with zeros: ~65 of the ~4,100 window levels searched) lies 30 ms past the instant's
  // envelope. Both sides clamped at the noise's 5th percentile, the instant is found; a floor at the quietest
  // window (the zeros) is no floor at all, and the noise in the target's pauses moves this instant 42 samples.
  const x = speech();
  const src = ringOf(x);
  const k = 245 * HOP + INSTANT_OFFSET;
  const env = sourceEnvelope(src, k)!;
  for (const snr of [10, 15]) {
    for (const seed of [1, 2]) {
      const y = withNoise(x, snr, seed);
      y.fill(0, k + 1800, k + 1880);
      const r = fit(ringOf(y), env, k + 37, ENVELOPE_RANGE);
      ok(Math.abs(r.shift + 37) <= 1, `${snr} dB SNR, seed ${seed}: ${r.shift + 37} samples off`);
    }
  }
});

Deno.test("envelopeShift: a far shift must correlate 0.03 better than a near one to win", () => {
  // A sound repeating every 404 samples (50.5 ms) fits at shift 0 and one period later alike; noise on the
  // period only shift 0 reads tips the balance. Far shifts are needed only when a long message was lost after
  // the instant: by a little, noise alone (without the handicap it made far peaks win on 1% of instants at
  // 10 dB SNR); by a lot, that loss.
  const period = 404;
  const sound = periodic(period, N);
  const env = sourceEnvelope(ringOf(sound), K)!;
  const slight = fit(periodicTarget(sound, period, K + ENV_FROM, 0.03), env, K, ENVELOPE_RANGE);
  const gain = slight.corrAt(period) - slight.corrAt(0);
  ok(gain > 0.005 && gain < 0.02, `the far fit is better by ${gain}`);
  strictEqual(slight.shift, 0);
  const clear = fit(periodicTarget(sound, period, K + ENV_FROM, 0.1), env, K, ENVELOPE_RANGE);
  ok(
    clear.corrAt(period) - clear.corrAt(0) > 0.04,
    `the far fit is better by ${clear.corrAt(period) - clear.corrAt(0)}`,
  );
  strictEqual(clear.shift, period);
});

Deno.test("envelopeShift: a runner-up a period away within 0.01 is returned, a worse one or the same peak's not", () => {
  // A sound periodic at 5 ms (as voiced speech is at its pitch) fits a period later nearly as well: under GSM
  // the envelope alone put some instants a pitch period early, so a second peak within ALT_MARGIN is returned for
  // the sub-fingerprints to decide. Noise on what only the later shift reads costs it a little, or more.
  const period = 40;
  const sound = periodic(period, N);
  const env = sourceEnvelope(ringOf(sound), K)!;
  const near = fit(periodicTarget(sound, period, K + ENV_TO, 0.1), env, K, ALIGN_RANGE);
  strictEqual(near.shift, 0);
  strictEqual(near.alt?.shift, period);
  ok(
    near.alt.corr < near.corr && near.alt.corr > near.corr - 0.01,
    `runner-up ${near.alt.corr} of ${near.corr}`,
  );
  const worse = fit(periodicTarget(sound, period, K + ENV_TO, 0.3), env, K, ALIGN_RANGE);
  strictEqual(worse.shift, 0);
  ok(worse.corr - worse.corrAt(period) > 0.015, `runner-up ${worse.corrAt(period)} of ${worse.corr}`);
  strictEqual(worse.alt, undefined);
  // Speech against itself: one peak, whose neighbouring shifts (refined from neighbouring coarse shifts) score
  // nearly as well: not a runner-up.
  const x = speech();
  const ring = ringOf(x);
  for (let n = 110; n <= 170; n += 10) {
    const k = n * HOP + INSTANT_OFFSET;
    for (const miss of [0, 37]) {
      const r = fit(ring, sourceEnvelope(ring, k)!, k + miss, ALIGN_RANGE);
      strictEqual(r.shift + miss, 0);
      strictEqual(r.alt, undefined, `anchor ${n}, miss ${miss}: runner-up at ${r.alt?.shift}`);
    }
  }
});

Deno.test("align: of two envelope peaks nearly as good, the sub-fingerprints pick the right one", () => {
  // The runner-up of the test above, end to end: a sound periodic at 5 ms (voiced speech at its pitch) only
  // around the instant, quiet noise elsewhere; the target is the source 37 samples late with slight noise on the
  // 5 ms that only the right shift's envelope reads. The envelope then peaks a period late with the right shift
  // 0.004 behind; the sub-fingerprints' frames (2 s from the instant, over the noise after the sound too) agree
  // with the right grid alone, and align() takes it. Without the choice (align.ts's `if (e.alt)`): 40 samples
  // late, aligned-grid BER 0.096. The waveform signs do not tell them apart (both peaks read the same periods,
  // and the envelope's correlation weighs for the late one), so the answer is the same with them.
  const period = 40, lead = 37, n0 = 62, k = n0 * HOP + INSTANT_OFFSET;
  const sound = periodic(period, k + 20_000);
  const r = centeredRng(9);
  const x = Float32Array.from(
    sound,
    (v, i) => (i >= k + ENV_FROM && i < k + ENV_TO + period ? v : 1e-3 * r()),
  );
  const y = new Float32Array(x.length + lead);
  y.set(x, lead);
  const noise = centeredRng(11);
  for (let i = k + lead + ENV_FROM; i < k + lead + ENV_FROM + period; i++) y[i] = y[i]! + 0.2 * noise();
  const analysed = (z: Float32Array) => {
    const ring = ringOf(z), store = new FrameStore(4096);
    new Fingerprinter(ring, store).advance();
    return { ring, store };
  };
  const src = analysed(x), tgt = analysed(y);
  const env = sourceEnvelope(src.ring, k)!;
  const coarse = Math.round((n0 * HOP + lead) / HOP);
  const e = fit(tgt.ring, env, coarse * HOP + INSTANT_OFFSET, ENVELOPE_RANGE);
  const truth = n0 * HOP + lead - coarse * HOP;
  strictEqual(e.shift, truth + period, "the envelope alone: a period late");
  strictEqual(e.alt?.shift, truth, "the right shift: the runner-up");
  const fp = src.store.bits.slice(n0, n0 + 128);
  for (const signs of [undefined, sourceWaveSigns(src.ring, k)]) {
    const a = new FineAligner(new FrameAnalyzer()).align(
      tgt.ring,
      tgt.store,
      fp,
      undefined,
      env,
      coarse,
      ALIGN_RANGE,
      ENVELOPE_RANGE,
      [],
      signs,
    )!;
    strictEqual(a.by, "envelope");
    const off = a.sample - (n0 * HOP + lead);
    strictEqual(off, 0, `${signs ? "with" : "without"} the waveform signs: ${off} samples off, BER ${a.ber}`);
    ok(a.ber < 0.01, `aligned-grid BER ${a.ber}`);
  }
});

Deno.test("envelopeShift: an instant a sample before a lost message is aligned, not said to be in the gap", () => {
  // 20 ms missing from the target right after the instant's sample: the "instant in the gap" hypothesis (the
  // instant on the first missing sample) then places every value a sample from where the true fit does, and
  // scores within a hair of it (here 0.004-0.016 better). It must win by IN_GAP_MARGIN: the instant is on the
  // message before the loss, which carries it.
  const x = speech();
  const src = ringOf(x);
  for (const g of [9279, 10833, 13164]) {
    const k = g - 1;
    const target = ringOf(without(x, g, g + 160));
    const r = fit(target, sourceEnvelope(src, k)!, k + 30, ENVELOPE_RANGE, [{ at: g, len: 160 }]);
    strictEqual(r.instantInGap, undefined, `loss at ${g}: corr ${r.corr}`);
    strictEqual(r.shift, -30);
  }
});

Deno.test("envelopeShift: at a 50 ms loss the last carried and the first lost sample get one answer (a limit)", () => {
  // A documented limit, not a goal: where it changes, measure both sides of the boundary again. The aligned
  // hypothesis of an instant just before a loss keeps the values whose 2 ms windows cross the cut (the source's
  // reads audio the target lost, the target's the audio after the loss); "the instant is in the gap" places no
  // value there, and every other one a sample or two from where the truth does. IN_GAP_MARGIN covers that
  // difference for a 20 ms loss (test above), not for a 50 ms one: here the last carried sample is said to be in
  // the gap, as the first lost sample rightly is (it wins by 0.02-0.05), or, at 7725, the instants from two
  // samples before the loss to the second lost one all come out at one target sample, 8 before the loss. Leaving
  // the crossing windows out of every hypothesis with no margin (level_envelope.ts's place and inGapCorrelation)
  // told the two sides apart at each of these positions, but lost 2-3 matches of dtx-cn per bench seed (1, 2, 3)
  // and so is not done: instants just after a resumed DTX onset were then said to be in the gap.
  const x = speech();
  const src = ringOf(x);
  const len = 400;
  const answer = (g: number, k: number) => {
    const hint = [{ at: g, len }];
    const r = fit(ringOf(without(x, g, g + len)), sourceEnvelope(src, k)!, k + 30, ENVELOPE_RANGE, hint);
    return r.instantInGap ? "in the gap" : `target sample ${k + 30 + r.shift - g} from the loss`;
  };
  for (const g of [10833, 13164, 34920]) {
    strictEqual(answer(g, g), "in the gap", `first lost sample, loss at ${g}`);
    strictEqual(answer(g, g - 1), "in the gap", `last carried sample, loss at ${g}`);
  }
  for (const k of [7723, 7724, 7725, 7726]) {
    strictEqual(answer(7725, k), "target sample -8 from the loss", `${k}`);
  }
});
