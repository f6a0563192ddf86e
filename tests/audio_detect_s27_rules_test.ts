// Tuned rules of the energy VAD (audio/detect/vad.ts) that no test failed without: the absolute speech floor
// (-70 dBFS) and the noise floor's lowest value (-90 dBFS).
import { ok, strictEqual } from "node:assert/strict";
import { EnergyVad, VAD_FRAME } from "../audio/detect/vad.ts";
import { noise, tone } from "./support/vad_frames.ts";

const SILENCE = new Int16Array(VAD_FRAME);

Deno.test("EnergyVad: after digital silence a hum at -75 dBFS is not speech (a dead line is not an onset)", () => {
  const vad = new EnergyVad(0.3); // 9 dB over the floor
  for (let i = 0; i < 100; i++) vad.decide(SILENCE, 0, -1);
  // Far over the floor (-90 dBFS), yet below -70 dBFS: never speech.
  let speech = 0;
  for (let i = 0; i < 50; i++) if (vad.decide(tone(-75), 0, -1)) speech++;
  strictEqual(speech, 0);
  // The same line with a -60 dBFS tone: speech.
  ok(vad.decide(tone(-60), 0, -1));
});

Deno.test("EnergyVad: the floor stops at -90 dBFS, so noise after digital silence stops being speech in 30 s", () => {
  // A line silent (all zeros) for 2 s, then steady noise at -60 dBFS: the floor rises 1 dB/s from where it
  // stopped. From -90 dBFS it has risen past -69 (noise - 9 dB) in ~21 s; from digital silence's -120 dBFS it
  // would take ~51 s, all of it counted as speech.
  const vad = new EnergyVad(0.3);
  for (let i = 0; i < 200; i++) vad.decide(SILENCE, 0, -1);
  strictEqual(vad.floorDbfs, -90);
  let speech = 0;
  for (let i = 0; i < 3000; i++) if (vad.decide(noise(-60, i + 1), 0, -1)) speech++;
  ok(speech > 1900 && speech < 2300, `${speech} frames of noise taken for speech`);
  strictEqual(vad.decide(noise(-60, 7), 0, -1), false, "30 s on: noise");
});
