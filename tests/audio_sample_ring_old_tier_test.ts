import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { coldReadStats } from "../audio/decode/sample_ring.ts";
import { initAudioEngine, SignatureIndex, TARGET_WARM_SAMPLES, TargetPipeline } from "../audio/pipeline.ts";
import type { Match, Signature } from "../audio/types.ts";
import { FORMAT, searchLate, speech, speechSignatures } from "./support/speech_signatures.ts";

// The target ring's 4-bit tier (samples older than TARGET_WARM_SAMPLES after the Int16 tier): signatures arriving
// that late are still verified and aligned, on audio at ~22 dB SNR instead of μ-law's exact codes.

/** Target: the speech, then `tail` bytes of it again; the signatures arrive after all of it. */
function late(sigs: Signature[], tail: number, warm?: number): Match[] {
  const lead = new Uint8Array(1234).fill(0xff);
  const audio = new Uint8Array(lead.length + speech.length + tail);
  audio.set(lead);
  audio.set(speech, lead.length);
  for (let at = lead.length + speech.length; at < audio.length; at += speech.length) {
    audio.set(speech.subarray(0, Math.min(speech.length, audio.length - at)), at);
  }
  const index = new SignatureIndex();
  const tp = new TargetPipeline({
    measurement: "m",
    stage: "t",
    node: "b",
    pod: "p/b",
    stream: "x",
    format: FORMAT,
    index,
    ...(warm === undefined ? {} : { ringWarmSamples: warm }),
  });
  return searchLate(tp, index, audio, sigs);
}

Deno.test("4-bit tier: signatures arriving 15-22 s late match where the 8-bit tier matches them", async () => {
  await initAudioEngine();
  const sigs = speechSignatures();
  ok(sigs.length >= 3);
  const all8 = late(sigs, 2 * speech.length, 1 << 20);
  const before = coldReadStats.old;
  const tiered = late(sigs, 2 * speech.length);
  ok(coldReadStats.old - before > 10_000, "the readers decoded 4-bit samples");
  strictEqual(tiered.length, all8.length);
  for (let i = 0; i < all8.length; i++) {
    const a = all8[i]!, b = tiered[i]!;
    strictEqual(b.signatureId, a.signatureId);
    strictEqual(b.target.timeNs, a.target.timeNs);
    ok(
      Math.abs(b.target.offsetMs - a.target.offsetMs) <= 1,
      `${a.target.offsetMs} vs ${b.target.offsetMs} ms`,
    );
    ok(b.ber <= a.ber + 0.15, `ber ${a.ber} -> ${b.ber}`);
  }
});

Deno.test("4-bit tier: signatures verified up to ~6 s after their block read only 8-bit samples", async () => {
  await initAudioEngine();
  const sigs = speechSignatures();
  // The speech is 7.4 s: its first signature's block ended ~5.4 s before the search, which reaches 2 s before it.
  ok(speech.length + 2 * 8000 < TARGET_WARM_SAMPLES);
  const all8 = late(sigs, 0, 1 << 20);
  ok(all8.length >= sigs.length - 1);
  const before = coldReadStats.old;
  const tiered = late(sigs, 0);
  strictEqual(coldReadStats.old - before, 0, "no 4-bit sample read");
  deepStrictEqual(tiered, all8);
  // With a 2 s 8-bit tier the same searches do read 4-bit samples (what the assertion above rules out).
  const short = late(sigs, 0, 2 * 8000);
  ok(coldReadStats.old - before > 0);
  ok(short.length >= sigs.length - 1);
});
