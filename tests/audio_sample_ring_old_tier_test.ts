import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { coldReadStats } from "../audio/decode/sample_ring.ts";
import {
  initAudioEngine,
  type MessageIn,
  SignatureIndex,
  SourcePipeline,
  TARGET_WARM_SAMPLES,
  TargetPipeline,
} from "../audio/pipeline.ts";
import type { AudioFormat, Match, Signature } from "../audio/types.ts";

// The target ring's 4-bit tier (samples older than TARGET_WARM_SAMPLES after the Int16 tier): signatures arriving
// that late are still verified and aligned, on audio at ~22 dB SNR instead of μ-law's exact codes.

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
  for (const m of messages(audio, T0 + 250_000_000n, 2)) tp.push(m);
  const out: Match[] = [];
  for (const s of sigs) {
    index.add(s);
    out.push(...tp.searchSignature(s));
  }
  return out;
}

Deno.test("4-bit tier: signatures arriving 15-22 s late match where the 8-bit tier matches them", async () => {
  await initAudioEngine();
  const sigs = signatures();
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
  const sigs = signatures();
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
