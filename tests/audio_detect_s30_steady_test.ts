/**
 * Digital silence before line noise: a stream whose first message is zeros (μ-law 0xFF before the call's audio
 * flows), or a line muted for more than 50 ms, set the energy VAD's floor at -90 dBFS, and the line's steady noise
 * after it rose through the floor at 1 dB/s: -50 dBFS noise was speech for ~30 s, a signature of noise every
 * `reanchor_ms`, and every real onset in that time lost (the speech taken for more of the same). Steady signal after
 * digital silence is now the line's noise once it has lasted a second; a talker whose pauses are exact zeros is
 * not steady, and keeps the floor digital silence set.
 */
import { ok, strictEqual } from "node:assert/strict";
import { decodeSamples, encodeSamples } from "../audio/decode/codecs.ts";
import { initAudioEngine, SourcePipeline } from "../audio/pipeline.ts";
import type { AudioCriteria, Signature } from "../audio/types.ts";
import { EnergyVad, STEADY_FRAMES, VAD_FRAME } from "../audio/detect/vad.ts";
import { rawFormat } from "./support/formats.ts";
import { rng } from "./support/rng.ts";
import { noise, tone } from "./support/vad_frames.ts";

await initAudioEngine({ webrtcVad: false });

const T0 = 1_763_900_000_000_000_000n;
const CRITERIA: AudioCriteria = {
  vad_mode: "energy",
  vad_aggressiveness: 2,
  energy_threshold: 0.3,
  min_duration_ms: 500,
  min_silence_ms: 300,
  reanchor_ms: 3000,
};
const decoded = decodeSamples(
  "mulaw",
  Deno.readFileSync(new URL("../fixtures/audio_fp/speech_8k.ul", import.meta.url)),
);
if (!decoded.ok) throw new Error("speech fixture");
const SPEECH = decoded.samples;
const ZEROS = new Int16Array(VAD_FRAME);

/** `x` with uniform noise at `dbfs` (RMS) added. */
function noisy(x: Float32Array, dbfs: number, seed: number): Float32Array {
  const r = rng(seed), a = 10 ** (dbfs / 20) * Math.sqrt(3);
  return x.map((v) => v + (2 * r() - 1) * a);
}

/**
 * Instants (s from the stream's start) of the signatures of a μ-law stream in 20 ms messages: `zeros` s of digital
 * silence, then a -50 dBFS line: 10 s of its noise, the speech fixture, 2 s of noise.
 */
function instants(zeros: number): number[] {
  const line = noisy(
    Float32Array.from(
      { length: 80_000 + SPEECH.length + 16_000 },
      (_, i) => i >= 80_000 ? SPEECH[i - 80_000] ?? 0 : 0,
    ),
    -50,
    1,
  );
  const audio = new Float32Array(Math.round(zeros * 8000) + line.length);
  audio.set(line, audio.length - line.length);
  const bytes = encodeSamples("mulaw", audio);
  const sp = new SourcePipeline({
    measurement: "m",
    node: "a",
    pod: "p/a",
    stream: "s",
    format: rawFormat(),
    criteria: CRITERIA,
  });
  const sigs: Signature[] = [];
  for (let k = 0; k * 160 < bytes.length; k++) {
    sigs.push(
      ...sp.push({ timeNs: T0 + BigInt(k) * 20_000_000n, payload: bytes.subarray(k * 160, k * 160 + 160) }),
    );
  }
  sigs.push(...sp.finish());
  return sigs.map((s) => Number(s.source.timeNs - T0) / 1e9 + s.source.offsetMs / 1000 - zeros);
}

Deno.test("energy VAD: a stream that starts with a message of zeros signs its line's noise once, and every onset", () => {
  // Without the zeros: the speech's onsets (10.66 s and 14.03 s), none in the noise.
  const want = instants(0);
  ok(want.length === 2 && want.every((t) => t > 10), `${want}`);
  for (const zeros of [0.02, 0.2, 2]) {
    const got = instants(zeros);
    // Followed at 1 dB/s: 7 signatures, one every 3 s from the noise's first 0.5 s, and neither onset.
    strictEqual(got.length, want.length + 1, `${zeros} s of zeros: ${got.map((t) => t.toFixed(2))}`);
    ok(got[0]! < 1, `the noise's first second: ${got[0]}`);
    got.slice(1).forEach((t, i) =>
      ok(Math.abs(t - want[i]!) < 0.03, `${zeros} s: onset ${i} at ${t} vs ${want[i]}`)
    );
  }
});

Deno.test("EnergyVad: steady noise after a line muted for 100 ms is speech for a second, not for 30", () => {
  const vad = new EnergyVad(0.3);
  for (let i = 0; i < 200; i++) vad.decide(noise(-50, i + 1), 0, -1);
  for (let i = 0; i < 10; i++) strictEqual(vad.decide(ZEROS, 0, -1), false);
  ok(vad.floorDbfs < -80, `the zeros were followed: ${vad.floorDbfs}`);
  let speech = 0;
  for (let i = 0; i < 500; i++) if (vad.decide(noise(-50, 1000 + i), 0, -1)) speech++;
  strictEqual(speech, STEADY_FRAMES - 1, "the noise's first second");
  ok(vad.decide(tone(-30), 0, -1), "a talker after it is speech");
});

Deno.test("EnergyVad: a talker whose pauses are exact zeros keeps the floor the zeros set", () => {
  // Speech, not steady: a -20 dBFS syllable, a -45 dBFS one, for 3 s after a pause of zeros (TTS audio).
  const vad = new EnergyVad(0.3);
  for (let i = 0; i < 30; i++) vad.decide(ZEROS, 0, -1);
  let speech = 0;
  for (let i = 0; i < 300; i++) if (vad.decide(tone(Math.floor(i / 10) % 2 ? -45 : -20), 0, -1)) speech++;
  strictEqual(speech, 300);
  ok(vad.floorDbfs < -85, `floor ${vad.floorDbfs}`);
});
