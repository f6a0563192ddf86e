import { deepStrictEqual, ok } from "node:assert/strict";
import { coldReadStats } from "../audio/decode/sample_ring.ts";
import {
  initAudioEngine,
  type MessageIn,
  SignatureIndex,
  SourcePipeline,
  TargetPipeline,
} from "../audio/pipeline.ts";
import type { AudioFormat, Match, Signature } from "../audio/types.ts";

// The target ring's 8-bit tier holds μ-law audio exactly, so every reader of old samples (the backward search's
// verification, rephasing, alignment, the level envelope) must see what an all-Int16 ring gives: same matches.

const T0 = 1_763_900_000_000_000_000n;
const FORMAT: AudioFormat = {
  envelope: "raw",
  path: "",
  encoding: "binary",
  codec: "mulaw",
  sample_rate: 8000,
  channels: 1,
  channel: 0,
  skip_bytes: 0,
};
const speech = Deno.readFileSync(new URL("../fixtures/audio_fp/speech_8k.ul", import.meta.url));

function messages(bytes: Uint8Array, t0: bigint, seed: number): MessageIn[] {
  let s = seed;
  const out: MessageIn[] = [];
  for (let at = 0; at < bytes.length;) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const n = Math.min(bytes.length - at, 80 + (s % 880));
    out.push({
      timeNs: t0 + BigInt(Math.round(((at + n) / 8000) * 1e9)),
      payload: bytes.subarray(at, at + n),
    });
    at += n;
  }
  return out;
}

function signatures(): Signature[] {
  const sp = new SourcePipeline({
    measurement: "m",
    node: "a",
    pod: "p/a",
    stream: "s",
    format: FORMAT,
    criteria: {
      vad_mode: "energy",
      vad_aggressiveness: 2,
      energy_threshold: 0.3,
      min_duration_ms: 200,
      min_silence_ms: 300,
      reanchor_ms: 1000,
    },
  });
  const sigs: Signature[] = [];
  for (const m of messages(speech, T0, 1)) sigs.push(...sp.push(m));
  sigs.push(...sp.finish());
  return sigs;
}

/** Target: the speech three times over (22 s) after a lead-in; signatures arrive after all of it. */
function backward(sigs: Signature[], hot: number, onPipeline?: (tp: TargetPipeline) => void): Match[] {
  const lead = new Uint8Array(1234).fill(0xff);
  const audio = new Uint8Array(lead.length + 3 * speech.length);
  audio.set(lead);
  for (let k = 0; k < 3; k++) audio.set(speech, lead.length + k * speech.length);
  const index = new SignatureIndex();
  const tp = new TargetPipeline({
    measurement: "m",
    stage: "t",
    node: "b",
    pod: "p/b",
    stream: "x",
    format: FORMAT,
    index,
    ringHotSamples: hot,
    // No 4-bit tier: these signatures arrive up to 22 s late (tests/audio_sample_ring_old_tier_test.ts: with it).
    ringWarmSamples: 1 << 20,
  });
  for (const m of messages(audio, T0 + 250_000_000n, 2)) tp.push(m);
  onPipeline?.(tp);
  const out: Match[] = [];
  for (const s of sigs) {
    index.add(s);
    out.push(...tp.searchSignature(s));
  }
  return out;
}

Deno.test("target ring: matches found in the 8-bit tier are those of an all-Int16 ring (μ-law)", async () => {
  await initAudioEngine();
  const sigs = signatures();
  ok(sigs.length >= 3);
  const before = coldReadStats.samples;
  const small = backward(sigs, 4096);
  ok(coldReadStats.samples - before > 10_000, "the small Int16 tier made the readers decode old samples");
  const all = backward(sigs, 1 << 20);
  ok(all.length >= sigs.length - 1, `${all.length} matches`);
  deepStrictEqual(small, all);
  deepStrictEqual(backward(sigs, 32_768), all);
});

Deno.test("target pipeline: memory counted per stream for 22 s is under 400 KB (the 16-bit ring alone took 512 KiB)", async () => {
  await initAudioEngine();
  let bytes = 0;
  backward([], 32_768, (tp) => (bytes = tp.memoryBytes()));
  // 22 s held: 64 KiB of Int16 tier, ~145 KiB of 8-bit tier, frames, timeline, capture times, vote table.
  ok(bytes > 200_000 && bytes < 400_000, `${bytes} bytes`);
});
