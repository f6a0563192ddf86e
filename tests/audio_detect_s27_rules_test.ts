// Tuned rules of the energy VAD (audio/detect/vad.ts) that no test failed without: the absolute speech floor
// (-70 dBFS), the noise floor's lowest value (-90 dBFS) and the weight with which the floor falls (0.3 a frame).
import { ok, strictEqual } from "node:assert/strict";
import { EnergyVad, SILENCE_HOLD_FRAMES, VAD_FRAME } from "../audio/detect/vad.ts";
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

Deno.test("EnergyVad: the floor stops at -90 dBFS, so a signal after digital silence stops being speech in 30 s", () => {
  // A line silent (all zeros) for 2 s, then noise at -60 dBFS too unsteady to be taken for the line's noise (every
  // other frame 15 dB louder): the floor rises 1 dB/s from where it stopped. From -90 dBFS it has risen past -69
  // (the quieter frames - 9 dB) in ~21 s; from digital silence's -120 dBFS it would take ~51 s.
  const vad = new EnergyVad(0.3);
  for (let i = 0; i < 200; i++) vad.decide(SILENCE, 0, -1);
  strictEqual(vad.floorDbfs, -90);
  let speech = 0;
  for (let i = 0; i < 3000; i++) {
    if (vad.decide(noise(i % 2 ? -45 : -60, i + 1), 0, -1) && i % 2 === 0) speech++;
  }
  // Of the 1,500 quieter frames, those of the first ~21 s.
  ok(speech > 950 && speech < 1150, `${speech} quieter frames taken for speech`);
  strictEqual(vad.decide(noise(-60, 7), 0, -1), false, "30 s on: noise");
});

Deno.test("EnergyVad: a stream that starts in speech has its floor at a pause's level within 50 ms", () => {
  // The floor starts at the first frame's level: here a -20 dBFS talker. Five frames of -60 dBFS line noise
  // (a breath) must bring it down far enough that the talker's softer -40 dBFS speech after them is speech: a
  // floor that did not fall (or fell at a tenth a frame: ~-36 dBFS after 50 ms) would take it for the floor.
  const vad = new EnergyVad(0.3); // 9 dB over the floor
  for (let i = 0; i < 100; i++) vad.decide(tone(-20), 0, -1);
  for (let i = 0; i < 5; i++) strictEqual(vad.decide(noise(-60, i + 1), 0, -1), false, `pause frame ${i}`);
  ok(vad.floorDbfs < -52, `floor ${vad.floorDbfs}`);
  let speech = 0;
  for (let i = 0; i < 50; i++) if (vad.decide(tone(-40), 0, -1)) speech++;
  strictEqual(speech, 50);
});

Deno.test("EnergyVad: one quieter frame in steady line noise does not make the noise after it speech", () => {
  // Line noise at -50 dBFS with one 10 ms frame 12 dB quieter (a codec's quieter comfort-noise frame): the floor
  // falls only part of the way (weight 0.3: to ~-54 dBFS), so the noise stays below floor + 9 dB. A floor that
  // jumped to the quiet frame (-62 dBFS) would take the next ~3 s of noise for speech, rising at 1 dB/s.
  const vad = new EnergyVad(0.3);
  for (let i = 0; i < 200; i++) vad.decide(noise(-50, i + 1), 0, -1);
  strictEqual(vad.decide(noise(-62, 999), 0, -1), false);
  ok(vad.floorDbfs > -56, `floor ${vad.floorDbfs}`);
  let speech = 0;
  for (let i = 0; i < 100; i++) if (vad.decide(noise(-50, 1000 + i), 0, -1)) speech++;
  strictEqual(speech, 0);
});

Deno.test("EnergyVad: a lost packet filled with zeros in steady line noise does not make the noise after it speech", () => {
  // The sample ring fills a lost message with zeros (digital silence). In -50 dBFS line noise, a floor that
  // followed them fell to -71 dBFS after one zero frame and -86 after two (a lost 20 ms packet), and the noise
  // after it was speech for ~12 s and ~27 s, every onset in it masked.
  for (const zeros of [1, 2, 5]) {
    const vad = new EnergyVad(0.3);
    for (let i = 0; i < 200; i++) vad.decide(noise(-50, i + 1), 0, -1);
    const before = vad.floorDbfs;
    for (let i = 0; i < zeros; i++) strictEqual(vad.decide(SILENCE, 0, -1), false);
    strictEqual(vad.floorDbfs, before, `${zeros} zero frames`);
    let speech = 0;
    for (let i = 0; i < 500; i++) if (vad.decide(noise(-50, 1000 + i), 0, -1)) speech++;
    strictEqual(speech, 0, `${zeros} zero frames: noise taken for speech`);
    // And a talker after it is still speech.
    ok(vad.decide(tone(-30), 0, -1));
  }
});

Deno.test("EnergyVad: a pause of digital silence longer than a lost packet or two brings the floor down", () => {
  // A talker at -20 dBFS whose pauses are exact zeros (silence suppression filled with zeros, no quiet tails): a
  // floor held through the whole pause stays at the talker's level and takes every later utterance for it.
  const vad = new EnergyVad(0.3);
  for (let i = 0; i < 100; i++) vad.decide(tone(-20), 0, -1);
  for (let i = 0; i < 30; i++) vad.decide(SILENCE, 0, -1);
  ok(vad.floorDbfs < -80, `floor ${vad.floorDbfs}`);
  strictEqual(vad.decide(tone(-20), 0, -1), true, "the next utterance is speech");
  // The hold is of lost messages only: SILENCE_HOLD_FRAMES + 1 zero frames move it.
  const held = new EnergyVad(0.3);
  for (let i = 0; i < 100; i++) held.decide(noise(-50, i + 1), 0, -1);
  const before = held.floorDbfs;
  for (let i = 0; i <= SILENCE_HOLD_FRAMES; i++) held.decide(SILENCE, 0, -1);
  ok(held.floorDbfs < before - 5, `${held.floorDbfs} vs ${before}`);
});
