/**
 * A burst of lost packets on a noisy line: the decoder fills the loss with zeros and marks it a gap on the
 * stream's timeline; the energy VAD must hold its noise floor through it, however long. Followed, the zeros took
 * the floor to -90 dBFS, and the line noise after them counted as speech for seconds (6 zero frames on a -50
 * dBFS line: ~14 s): the source signed the noise, a signature every reanchor interval, none of which any
 * downstream audio can match, and a real onset in that time was taken for more of the same speech.
 */
import { ok, strictEqual } from "node:assert/strict";
import { encodeSamples } from "../audio/decode/codecs.ts";
import { initAudioEngine, type MessageIn, SourcePipeline } from "../audio/pipeline.ts";
import type { AudioCriteria, Signature } from "../audio/types.ts";
import { EnergyVad, VAD_FRAME } from "../audio/detect/vad.ts";
import { rawFormat } from "./support/formats.ts";
import { rng } from "./support/rng.ts";

await initAudioEngine();

const T0 = 1_763_900_000_000_000_000n;
const CRITERIA: AudioCriteria = {
  vad_mode: "energy",
  vad_aggressiveness: 2,
  energy_threshold: 0.3,
  min_duration_ms: 200,
  min_silence_ms: 300,
  reanchor_ms: 1000,
};
const SPEECH = Deno.readFileSync(new URL("../fixtures/audio_fp/speech_8k.ul", import.meta.url));

/** μ-law noise at `dbfs` (RMS, 1.0 = 0 dBFS), `n` samples. */
function noise(n: number, dbfs: number, seed: number): Uint8Array {
  const r = rng(seed), a = 10 ** (dbfs / 20) * Math.sqrt(3);
  return encodeSamples("mulaw", Float32Array.from({ length: n }, () => (2 * r() - 1) * a));
}

/**
 * 20 ms RTP messages (media clock 8 kHz) of: 3 s of -50 dBFS noise, `lost` packets lost, 5 s more noise, the
 * speech fixture, 2 s of noise. Returns the messages and the speech's first sample on the stream.
 */
function call(lost: number): { msgs: MessageIn[]; speechAt: number } {
  const before = noise(24_000, -50, 1), after = noise(40_000, -50, 2), tail = noise(16_000, -50, 3);
  const audio = new Uint8Array(before.length + after.length + SPEECH.length + tail.length);
  let at = 0;
  for (const part of [before, after, SPEECH, tail]) {
    audio.set(part, at);
    at += part.length;
  }
  const msgs: MessageIn[] = [];
  for (let k = 0; k * 160 < audio.length; k++) {
    // The lost packets are the first `lost` of the "after" part: the stream skips them on the media clock.
    const skip = k >= before.length / 160 ? lost : 0;
    const start = k * 160;
    msgs.push({
      timeNs: T0 + BigInt(Math.round(((start + skip * 160 + 160) / 8000) * 1e9)),
      payload: audio.subarray(start, start + 160),
      mediaClock: { ts: (1000 + start + skip * 160) >>> 0, clockRate: 8000 },
    });
  }
  return { msgs, speechAt: before.length + lost * 160 + after.length };
}

/** The stream-relative first sample of each signature's instant. */
function instants(lost: number): { at: number[]; speechAt: number } {
  const { msgs, speechAt } = call(lost);
  const sp = new SourcePipeline({
    measurement: "m",
    node: "a",
    pod: "p/a",
    stream: "s",
    format: rawFormat(),
    criteria: CRITERIA,
  });
  const sigs: Signature[] = [];
  for (const m of msgs) sigs.push(...sp.push(m));
  sigs.push(...sp.finish());
  const t0 = msgs[0]!.timeNs - 20_000_000n;
  const at = sigs.map((s) =>
    Math.round((Number(s.source.timeNs - t0) / 1e9) * 8000 - 160 + s.source.offsetMs * 8)
  );
  return { at, speechAt };
}

const fromSpeech = (lost: number) => {
  const { at, speechAt } = instants(lost);
  return at.map((a) => a - speechAt);
};

for (const lost of [6, 25]) {
  Deno.test(`energy VAD: ${lost} lost packets on a -50 dBFS line sign no noise, and the speech as without a loss`, () => {
    // Without a loss: the speech's onsets only (none in the 8 s of noise before it).
    const want = fromSpeech(0);
    ok(want.length > 0 && want.every((a) => a > 0), `${want}`);
    // The zeros followed, the noise after the loss was speech: a signature every reanchor_ms (1 s) of it.
    const got = fromSpeech(lost);
    strictEqual(
      got.length,
      want.length,
      `instants from the speech (s): ${got.map((a) => (a / 8000).toFixed(2))}`,
    );
    // The same onsets, to within a VAD frame and a hop (the noise before them is not the same samples).
    got.forEach((a, i) => ok(Math.abs(a - want[i]!) <= 160, `instant ${i}: ${a} vs ${want[i]} samples`));
  });
}

Deno.test("energy VAD: frames a decoder filled hold the floor however many; unfilled zeros move it past the hold", () => {
  const frame = (dbfs: number, seed: number) => {
    const r = rng(seed), a = 10 ** (dbfs / 20) * Math.sqrt(3) * 8192;
    return Int16Array.from({ length: VAD_FRAME }, () => Math.round((2 * r() - 1) * a));
  };
  const zeros = new Int16Array(VAD_FRAME);
  const filled = new EnergyVad(0.3), bare = new EnergyVad(0.3);
  for (let i = 0; i < 200; i++) {
    filled.decide(frame(-50, i + 1), 0, -1);
    bare.decide(frame(-50, i + 1), 0, -1);
  }
  const floor = filled.floorDbfs;
  for (let i = 0; i < 50; i++) {
    strictEqual(filled.decide(zeros, 0, -1, true), false);
    bare.decide(zeros, 0, -1);
  }
  strictEqual(filled.floorDbfs, floor);
  ok(bare.floorDbfs < floor - 30, `unfilled zeros: ${bare.floorDbfs}`);
  // Noise after the filled loss is noise.
  let speech = 0;
  for (let i = 0; i < 300; i++) if (filled.decide(frame(-50, 1000 + i), 0, -1)) speech++;
  ok(speech < 10, `${speech} of 300 noise frames taken for speech`);
});
