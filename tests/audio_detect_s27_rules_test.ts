// Tuned rules of the energy VAD (audio/detect/vad.ts) that no test failed without: the absolute speech floor
// (-70 dBFS) and the noise floor's lowest value (-90 dBFS).
import { ok, strictEqual } from "node:assert/strict";
import { RING_SCALE } from "../audio/decode/sample_ring.ts";
import { EnergyVad, VAD_FRAME } from "../audio/detect/vad.ts";

function tone(db: number): Int16Array {
  const a = Math.sqrt(2) * Math.pow(10, db / 20) * RING_SCALE;
  return Int16Array.from({ length: VAD_FRAME }, (_, i) => Math.round(a * Math.sin(i * 0.7)));
}

function noise(db: number, seed: number): Int16Array {
  let s = seed;
  const a = Math.sqrt(3) * Math.pow(10, db / 20) * RING_SCALE;
  return Int16Array.from({ length: VAD_FRAME }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.round(a * (2 * (s / 4294967296) - 1));
  });
}

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
