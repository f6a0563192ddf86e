import { deepStrictEqual, ok } from "node:assert/strict";
import { coldReadStats } from "../audio/decode/sample_ring.ts";
import { initAudioEngine, SignatureIndex, TargetPipeline } from "../audio/pipeline.ts";
import type { Match, Signature } from "../audio/types.ts";
import { FORMAT, searchLate, speech, speechSignatures } from "./support/speech_signatures.ts";

// The target ring's 8-bit tier holds μ-law audio exactly, so every reader of old samples (the backward search's
// verification, rephasing, alignment, the level envelope) must see what an all-Int16 ring gives: same matches.

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
  return searchLate(tp, index, audio, sigs, onPipeline);
}

Deno.test("target ring: matches found in the 8-bit tier are those of an all-Int16 ring (μ-law)", async () => {
  await initAudioEngine();
  const sigs = speechSignatures();
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
