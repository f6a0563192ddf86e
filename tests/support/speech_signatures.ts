/**
 * The speech fixture as a μ-law tap cut into irregular messages, and the signatures a source pipeline takes
 * from it: what the tests of late signatures (the backward search in a target ring's older tiers) share.
 * @module
 */

import { type MessageIn, SourcePipeline, type TargetPipeline } from "../../audio/pipeline.ts";
import type { AudioCriteria, AudioFormat, Match, Signature } from "../../audio/types.ts";
import { rawFormat } from "./formats.ts";

/** Onset criteria for short speech fixtures: an onset every second of speech (reanchor 1 s). */
export const SPEECH_CRITERIA: AudioCriteria = {
  vad_mode: "energy",
  vad_aggressiveness: 2,
  energy_threshold: 0.3,
  min_duration_ms: 200,
  min_silence_ms: 300,
  reanchor_ms: 1000,
};
/** Capture time of the fixture's first sample, ns. */
export const T0 = 1_763_900_000_000_000_000n;

/** Raw 8 kHz μ-law, one channel. */
export const FORMAT: AudioFormat = rawFormat();

/** 7.4 s of speech, μ-law bytes. */
export const speech: Uint8Array = Deno.readFileSync(
  new URL("../../fixtures/audio_fp/speech_8k.ul", import.meta.url),
);

/** `bytes` as messages of 10-120 ms (seeded), each stamped with the capture time of its last sample. */
export function messages(bytes: Uint8Array, t0: bigint, seed: number): MessageIn[] {
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

/** The signatures a source pipeline detects in the speech captured from {@link T0}. */
export function speechSignatures(): Signature[] {
  const sp = new SourcePipeline({
    measurement: "m",
    node: "a",
    pod: "p/a",
    stream: "s",
    format: FORMAT,
    criteria: SPEECH_CRITERIA,
  });
  const sigs: Signature[] = [];
  for (const m of messages(speech, T0, 1)) sigs.push(...sp.push(m));
  sigs.push(...sp.finish());
  return sigs;
}

/**
 * Feeds `audio` (μ-law, captured from 250 ms after {@link T0}) to `tp`, then lets `sigs` arrive one by one, each
 * added to `index` and searched in the lookback: signatures later than all of the audio.
 */
export function searchLate(
  tp: TargetPipeline,
  index: { add(s: Signature): unknown },
  audio: Uint8Array,
  sigs: readonly Signature[],
  beforeSearch?: (tp: TargetPipeline) => void,
): Match[] {
  for (const m of messages(audio, T0 + 250_000_000n, 2)) tp.push(m);
  beforeSearch?.(tp);
  const out: Match[] = [];
  for (const s of sigs) {
    index.add(s);
    out.push(...tp.searchSignature(s));
  }
  return out;
}
