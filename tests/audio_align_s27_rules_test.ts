// Tuned rules of the fine alignment and its inputs (audio/align/gap_hints.ts, wave_signs.ts, align.ts) that no
// test failed without: the two bounds on what spacing counts as a lost message, the level rise that marks a
// suppressed onset, the loudest window for the waveform signs, and the envelope's ±128 ms reach.
import { deepEqual, ok, strictEqual } from "node:assert/strict";
import { gapHints, inSuppressedOnset } from "../audio/align/gap_hints.ts";
import { sourceWaveSigns, WAVE_FROM, WAVE_SIGN_SAMPLES, WAVE_TO } from "../audio/align/wave_signs.ts";
import { SampleRing } from "../audio/decode/sample_ring.ts";
import { FineAligner, INSTANT_OFFSET } from "../audio/align/align.ts";
import { sourceEnvelope } from "../audio/align/level_envelope.ts";
import { MULAW_TO_LINEAR } from "../audio/decode/codecs.ts";
import { Fingerprinter, FP_PARAMS, FrameAnalyzer, FrameStore } from "../audio/fingerprint/fingerprint.ts";

const MS = 1_000_000n;
const RATE = 8000;

/** A real-time tap of `count` messages of `ms` each, captured at the end of their audio, plus `lateMs(k)`. */
function tap(count: number, ms: number, lateMs: (k: number) => number) {
  const times: bigint[] = [];
  const starts: number[] = [];
  const samples = (ms * RATE) / 1000;
  for (let k = 0; k < count; k++) {
    times.push(BigInt((k + 1) * ms) * MS + BigInt(Math.round(lateMs(k) * 1e6)));
    starts.push(k * samples);
  }
  return { times, starts, end: count * samples };
}

Deno.test("gapHints: 10 ms messages captured up to 4 ms late are not gaps (at least 5 ms beyond the message)", () => {
  // 4 ms is over a quarter of a 10 ms message: only the absolute 5 ms keeps the jitter from being gaps.
  const t = tap(60, 10, (k) => (k % 4 === 2 ? 4 : 0));
  deepEqual(gapHints(t.times, t.starts, t.end, RATE, 0, t.end), []);
  // A lost 10 ms message (captured 10 ms late) is one.
  const lost = tap(60, 10, (k) => (k >= 30 ? 10 : 0));
  deepEqual(gapHints(lost.times, lost.starts, lost.end, RATE, 0, lost.end), [{ at: 30 * 80, len: 80 }]);
});

Deno.test("gapHints: 60 ms messages captured up to 12 ms late are not gaps (at least a quarter of a message)", () => {
  // 12 ms is over 5 ms: only the quarter of the shorter message (15 ms) keeps the jitter from being gaps.
  const t = tap(40, 60, (k) => (k % 3 === 1 ? 12 : 0));
  deepEqual(gapHints(t.times, t.starts, t.end, RATE, 0, t.end), []);
  // 20 ms of audio missing between two 60 ms messages is a gap.
  const lost = tap(40, 60, (k) => (k >= 20 ? 20 : 0));
  deepEqual(gapHints(lost.times, lost.starts, lost.end, RATE, 0, lost.end), [{ at: 20 * 480, len: 160 }]);
});

Deno.test("inSuppressedOnset: a message lost inside speech whose level rises 6 dB across it is not a suppressed onset", () => {
  const gaps = [{ at: 10_000, len: 160 }];
  // Speech on both sides of the loss, 6 dB louder after it (a syllable's rise): the instant stays.
  const speech = (a: number, _b: number) => (a >= 10_000 ? -14 : -20);
  strictEqual(inSuppressedOnset(10_000 - 10, gaps, speech), false);
  // DTX resuming at an onset: comfort noise 30 dB below the speech after the gap.
  const dtx = (a: number, _b: number) => (a >= 10_000 ? -14 : -44);
  strictEqual(inSuppressedOnset(10_000 - 10, gaps, dtx), true);
});

Deno.test("wave signs: an instant at an onset takes its signs from the loud window after it, not the silence before", () => {
  // 200 ms of near silence (±2), then a loud 300 Hz tone from the instant on.
  const k = 4000;
  const ring = new SampleRing(1 << 14);
  const x = new Float32Array(8000);
  let s = 3;
  for (let i = 0; i < x.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = i < k ? ((s / 2 ** 32) - 0.5) * 1e-4 : 0.5 * Math.sin((2 * Math.PI * 300 * (i - k)) / RATE);
  }
  ring.write(0, x, 0);
  const w = sourceWaveSigns(ring, k)!;
  ok(w.offset >= 0 && w.offset + WAVE_SIGN_SAMPLES <= WAVE_TO, `offset ${w.offset}`);
  ok(w.offset !== WAVE_FROM);
  // Each of the window's signs is the tone's.
  for (let i = 0; i < WAVE_SIGN_SAMPLES; i++) {
    strictEqual((w.bits[i >> 3]! >> (7 - (i & 7))) & 1, ring.at(k + w.offset + i) >= 0 ? 1 : 0);
  }
});

const FIXTURES = new URL("../fixtures/audio_fp/", import.meta.url);

/** The fixture's μ-law speech, `lead` samples of silence before it, analysed into a ring and frames. */
function speech(lead: number): { ring: SampleRing; store: FrameStore } {
  const bytes = Deno.readFileSync(new URL("speech_8k.ul", FIXTURES));
  const x = new Float32Array(bytes.length + lead);
  for (let i = 0; i < bytes.length; i++) x[lead + i] = MULAW_TO_LINEAR[bytes[i]!]! / 32768;
  const ring = new SampleRing(1 << 17);
  const store = new FrameStore(2048);
  ring.write(0, x, 0);
  new Fingerprinter(ring, store).advance();
  return { ring, store };
}

Deno.test("fine alignment: the envelope reaches 128 ms from the coarse frame (a long message lost after the instant)", () => {
  // A message of up to 120 ms lost just after the instant pulls the whole block's alignment that far from it:
  // the coarse frame here is 100 ms (6 frames and 32 samples) late, and the envelope still finds the instant.
  const src = speech(0), lead = 300, tgt = speech(lead);
  const hop = FP_PARAMS.hop;
  const al = new FineAligner(new FrameAnalyzer());
  for (const n of [40, 60, 250, 280]) {
    const env = sourceEnvelope(src.ring, n * hop + INSTANT_OFFSET)!;
    const truth = n * hop + lead;
    const coarse = Math.round((truth + 800) / hop);
    const r = al.align(tgt.ring, tgt.store, src.store.bits.slice(n, n + 128), undefined, env, coarse)!;
    strictEqual(r.by, "envelope");
    ok(Math.abs(r.sample - truth) <= 1, `anchor ${n}: ${r.sample - truth} samples`);
  }
});
