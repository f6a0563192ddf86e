/**
 * A 16-bit stream whose sender cuts its bytes anywhere (a relay forwarding socket reads as WebSocket frames
 * or HTTP chunks) splits samples across messages. The decoder took every odd-length message for one that lost a
 * byte: it padded the broken last frame with silence and read the next message from its first byte, pairing the
 * wrong bytes of every sample there (loud noise) until the next odd cut: 4 of 31 signatures were found on a PCM16
 * stream cut at random bytes. Now a message that begins with the rest of the broken frame (told by which read is
 * audio and which noise) is read from its first whole frame: the previous message's silent frame stands for the
 * split sample, so the timeline keeps its length and every other sample is exact. A byte lost at a message's end
 * is repaired as before (tests/audio_decode_gaps_test.ts, issue 15).
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { encodeSamples, MULAW_TO_LINEAR } from "../audio/decode/codecs.ts";
import { StreamDecoder } from "../audio/decode/stream_decoder.ts";
import { RING_SCALE } from "../audio/decode/sample_ring.ts";
import { initAudioEngine, SignatureIndex, SourcePipeline, TargetPipeline } from "../audio/pipeline.ts";
import type { AudioCriteria, AudioFormat, Signature } from "../audio/types.ts";
import { rng } from "./support/rng.ts";
import { rawFormat } from "./support/formats.ts";

await initAudioEngine();

/** Two recordings, 11.4 s of speech that never repeats (a loop would offer every instant more than once). */
const SPEECH = new Uint8Array([
  ...Deno.readFileSync(new URL("../fixtures/audio_fp/speech_8k.ul", import.meta.url)),
  ...Deno.readFileSync(new URL("../fixtures/audio_fp/other_8k.ul", import.meta.url)),
]);
const T0 = 1_763_900_000_000_000_000n;
const CRITERIA: AudioCriteria = {
  vad_mode: "energy",
  vad_aggressiveness: 2,
  energy_threshold: 0.3,
  min_duration_ms: 200,
  min_silence_ms: 300,
  reanchor_ms: 1000,
};

/** The speech at 8 kHz, as floats. */
function speech(): Float32Array {
  return Float32Array.from(SPEECH, (b) => MULAW_TO_LINEAR[b]! / 32768);
}

/**
 * `bytes` cut into messages of 100–500 frames of `unit` bytes (seeded), each with the time its audio ends at
 * (`bytesPerSecond`); with `split`, each cut moved 0 to `unit` - 1 bytes on (a byte stream cut anywhere), the
 * times kept.
 */
function cuts(
  bytes: Uint8Array,
  seed: number,
  unit: number,
  bytesPerSecond: number,
  split: boolean,
): { timeNs: bigint; payload: Uint8Array }[] {
  const r = rng(seed);
  const out: { timeNs: bigint; payload: Uint8Array }[] = [];
  let from = 0;
  for (let at = 0; at < bytes.length;) {
    at = Math.min(bytes.length, at + unit * Math.floor(100 + r() * 400));
    const shift = Math.floor(r() * unit);
    const to = split && at < bytes.length ? at + shift : at;
    out.push({
      timeNs: T0 + BigInt(Math.round((at / bytesPerSecond) * 1e9)),
      payload: bytes.subarray(from, to),
    });
    from = to;
  }
  return out;
}

/** The analysis samples a decoder makes of `msgs`. */
function decodeAll(fmt: AudioFormat, msgs: { timeNs: bigint; payload: Uint8Array }[]): Float32Array {
  const d = new StreamDecoder(fmt, { keepTimeline: true });
  const out: number[] = [];
  for (const m of msgs) {
    const o = d.push(m);
    if (o.kind === "audio") out.push(...(o.ring ? Array.from(o.ring, (v) => v / RING_SCALE) : o.samples));
  }
  out.push(...d.finish().samples);
  equal(d.timeline.nativeLength, out.length);
  return Float32Array.from(out);
}

for (const codec of ["pcm16le", "pcm16be"] as const) {
  Deno.test(`s30 decode: a ${codec} stream cut at any byte decodes every whole sample in its place`, () => {
    const audio = speech();
    const fmt = rawFormat({ codec });
    const bps = 2;
    const bytes = encodeSamples(codec, audio);
    const whole = decodeAll(fmt, cuts(bytes, 7, bps, 8000 * bps, false));
    const msgs = cuts(bytes, 7, bps, 8000 * bps, true);
    ok(msgs.filter((m) => m.payload.byteOffset % bps !== 0).length > 50, "many samples split");
    const got = decodeAll(fmt, msgs);
    equal(got.length, whole.length, "the timeline keeps its length");
    // Every sample as the whole stream's, but a split one: silence (the broken frame's stand-in).
    let split = 0;
    for (let i = 0; i < got.length; i++) {
      if (got[i] === whole[i]) continue;
      equal(got[i], 0, `sample ${i}`);
      split++;
    }
    ok(split <= msgs.length, `${split} samples differ`);
  });
}

Deno.test("s30 decode: signatures are found on a PCM16 target cut at any byte, at the latencies of whole samples", () => {
  const audio = speech();
  const ul = encodeSamples("mulaw", audio);
  const index = new SignatureIndex();
  const source = new SourcePipeline({
    measurement: "m",
    node: "a",
    pod: "p",
    stream: "s",
    format: rawFormat(),
    criteria: CRITERIA,
  });
  const sigs: Signature[] = [];
  for (let k = 0; k * 160 < ul.length; k++) {
    sigs.push(
      ...source.push({
        timeNs: T0 + BigInt(k + 1) * 20_000_000n,
        payload: ul.subarray(k * 160, k * 160 + 160),
      }),
    );
  }
  sigs.push(...source.finish());
  for (const s of sigs) index.add(s);
  ok(sigs.length >= 6, `${sigs.length} signatures`);
  const pcm = encodeSamples("pcm16le", audio);
  const latencies = (odd: boolean): Map<string, number> => {
    const target = new TargetPipeline({
      measurement: "m",
      stage: "asr",
      node: "b",
      pod: "q",
      stream: "t",
      format: rawFormat({ codec: "pcm16le" }),
      index,
    });
    const found = new Map<string, number>();
    // Captured 300 ms after the source.
    for (const m of cuts(pcm, 3, 2, 16000, odd)) {
      const msg = { timeNs: m.timeNs + 300_000_000n, payload: m.payload };
      for (const x of target.push(msg)) found.set(x.signatureId, x.latencyS);
    }
    for (const x of target.finish()) found.set(x.signatureId, x.latencyS);
    return found;
  };
  const whole = latencies(false);
  equal(whole.size, sigs.length);
  const split = latencies(true);
  deepEqual([...split.keys()].sort(), [...whole.keys()].sort(), `${split.size} of ${whole.size} found`);
  for (const [id, l] of split) equal(l, whole.get(id), id);
});
