import { ok, strictEqual, throws } from "node:assert/strict";
import { MULAW_TO_LINEAR } from "../audio/decode/codecs.ts";
import { RING_SCALE } from "../audio/decode/sample_ring.ts";
import {
  EnergyVad,
  frameDbfs,
  initWebRtcVad,
  VAD_FRAME,
  type VadDecider,
  WebRtcVad,
} from "../audio/detect/vad.ts";
import { noise, tone } from "./support/vad_frames.ts";

const FIXTURES = new URL("../fixtures/audio_fp/", import.meta.url);

/** The fixture as 10 ms frames in ring units. */
function frames(name: string): Int16Array[] {
  const bytes = Deno.readFileSync(new URL(name, FIXTURES));
  const out: Int16Array[] = [];
  for (let at = 0; at + VAD_FRAME <= bytes.length; at += VAD_FRAME) {
    out.push(
      Int16Array.from(bytes.subarray(at, at + VAD_FRAME), (b) => (MULAW_TO_LINEAR[b]! * RING_SCALE) / 32768),
    );
  }
  return out;
}

/** Share of frames decided as speech. */
function speechShare(vad: VadDecider, fs: Int16Array[]): number {
  let n = 0;
  for (const f of fs) if (vad.decide(f, 0, -1)) n++;
  return n / fs.length;
}

Deno.test("frameDbfs: a sine of RMS -20 dBFS reads -20 dBFS; digital silence is far below", () => {
  ok(Math.abs(frameDbfs(tone(-20)) + 20) < 0.3);
  ok(frameDbfs(new Int16Array(VAD_FRAME)) < -100);
});

Deno.test("VAD: a frame read in place from a ring, wrapped or not, decides and measures as its copy", async () => {
  await initWebRtcVad();
  const fs = frames("speech_8k.ul");
  // A ring of 256 samples (not a multiple of 80): frames fall whole inside it or across its end.
  const ring = new Int16Array(256);
  const mask = ring.length - 1;
  const copyVads = [new EnergyVad(0.3), new WebRtcVad(2)];
  const ringVads = [new EnergyVad(0.3), new WebRtcVad(2)];
  let wrapped = 0;
  for (let k = 0; k < 300; k++) {
    const f = fs[k]!, at = k * VAD_FRAME;
    for (let i = 0; i < VAD_FRAME; i++) ring[(at + i) & mask] = f[i]!;
    if ((at & mask) + VAD_FRAME > ring.length) wrapped++;
    strictEqual(frameDbfs(ring, at, mask), frameDbfs(f), `level of frame ${k}`);
    for (let v = 0; v < 2; v++) {
      strictEqual(ringVads[v]!.decide(ring, at, mask), copyVads[v]!.decide(f, 0, -1), `frame ${k}, VAD ${v}`);
    }
  }
  ok(wrapped > 50, `${wrapped} wrapped frames`);
  for (const v of [...copyVads, ...ringVads]) v.close();
});

Deno.test("EnergyVad: energy_threshold maps to a margin of 30 dB per unit above the floor (min 3 dB)", () => {
  strictEqual(new EnergyVad(0.3).marginDb, 9);
  strictEqual(new EnergyVad(0.5).marginDb, 15);
  strictEqual(new EnergyVad(0).marginDb, 3);
  strictEqual(new EnergyVad(7).marginDb, 30);
});

Deno.test("EnergyVad: a tone over a noise floor is speech when it clears the margin, not otherwise", () => {
  for (const [toneDb, want] of [[-30, true], [-47, false]] as const) {
    const vad = new EnergyVad(0.3); // 9 dB
    for (let i = 0; i < 100; i++) vad.decide(noise(-50, i + 1), 0, -1);
    ok(Math.abs(vad.floorDbfs + 50) < 2, `floor ${vad.floorDbfs}`);
    strictEqual(vad.decide(tone(toneDb), 0, -1), want, `tone at ${toneDb} dBFS`);
  }
});

Deno.test("EnergyVad: the floor adapts to louder noise slowly, so long speech is not swallowed", () => {
  const vad = new EnergyVad(0.3);
  for (let i = 0; i < 50; i++) vad.decide(noise(-60, i + 1), 0, -1);
  let speech = 0;
  // 5 s of a -20 dBFS tone: the floor rises at most 1 dB/s.
  for (let i = 0; i < 500; i++) if (vad.decide(tone(-20), 0, -1)) speech++;
  strictEqual(speech, 500);
  ok(vad.floorDbfs < -50, `floor ${vad.floorDbfs}`);
});

Deno.test("EnergyVad and WebRtcVad find the prompts' speech and not the pauses of the fixture", async () => {
  await initWebRtcVad();
  const fs = frames("speech_8k.ul");
  // The fixture starts with 0.6 s of digital silence, then speech.
  const lead = fs.slice(0, 55);
  const talk = fs.slice(65, 260);
  for (const mk of [() => new EnergyVad(0.3), () => new WebRtcVad(2)]) {
    const vad = mk();
    speechShare(vad, fs.slice(0, 10));
    ok(speechShare(vad, lead.slice(10)) === 0, "lead silence");
    ok(speechShare(vad, talk) > 0.6, `speech share ${speechShare(mk(), talk)}`);
    vad.close();
  }
});

Deno.test("WebRtcVad validates its aggressiveness and can be closed twice", async () => {
  await initWebRtcVad();
  throws(() => new WebRtcVad(4), RangeError);
  throws(() => new WebRtcVad(1.5), RangeError);
  const v = new WebRtcVad(3);
  v.close();
  v.close();
  strictEqual(v.decide(tone(-10), 0, -1), false);
});
