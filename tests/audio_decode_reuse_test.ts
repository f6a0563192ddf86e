import { deepEqual, equal, notEqual, ok, strictEqual } from "node:assert/strict";
import { encodeSamples } from "../audio/decode/codecs.ts";
import { encodeBase64 } from "../audio/decode/encoding.ts";
import { COLD_BLOCK, feedRing, FIRST_TIER_BYTES, SampleRing } from "../audio/decode/sample_ring.ts";
import { HEADER_BYTES } from "../audio/decode/adpcm4.ts";
import { type DecodeOutcome, StreamDecoder, type StreamMessage } from "../audio/decode/stream_decoder.ts";
import { TARGET_HOT_SAMPLES, TARGET_WARM_SAMPLES } from "../audio/pipeline.ts";
import type { AudioFormat } from "../audio/types.ts";
import { DEFAULT_AUDIO } from "../config/defaults.ts";
import { rng } from "./support/rng.ts";

// Memory of `run --capture` at 1,000 streams: a decoder that reuses its output buffer (the pipelines') and ring
// tiers whose first arrays are large enough to be mapped on their own.

const enc = new TextEncoder();
const T0 = 1_700_000_000_000_000_000n;
const MS = 1_000_000n;

/** The default audio format (Twilio-style JSON, base64 μ-law at 8 kHz) with `over` changed. */
function fmt(over: Partial<AudioFormat> = {}): AudioFormat {
  return { ...DEFAULT_AUDIO, ...over };
}

/** `count` Twilio-like JSON messages of 20 ms μ-law speech-like noise (distinct audio each). */
function messages(count: number, samples = 160): StreamMessage[] {
  const r = rng(7);
  return Array.from({ length: count }, (_, k) => {
    const audio = encodeSamples("mulaw", Float32Array.from({ length: samples }, () => (r() - 0.5) * 0.6));
    const body = JSON.stringify({ event: "media", media: { payload: encodeBase64(audio) } });
    return { timeNs: T0 + BigInt(k) * 20n * MS, payload: enc.encode(body) };
  });
}

/** Each outcome's samples as they are right after its push (copied before the next push). */
function decodeAll(decoder: StreamDecoder, msgs: readonly StreamMessage[]): number[][] {
  return msgs.map((m) => {
    const o = decoder.push(m);
    return o.kind === "error" ? [] : Array.from(o.samples);
  });
}

function samplesOf(o: DecodeOutcome): Float32Array {
  if (o.kind === "error") throw new Error(`unexpected error ${o.reason}`);
  return o.samples;
}

Deno.test("reuseSamples: consecutive outcomes are written to one buffer the decoder keeps", () => {
  const d = new StreamDecoder(fmt(), { keepTimeline: true, reuseSamples: true });
  const [m1, m2] = messages(2);
  const a = samplesOf(d.push(m1!));
  const first = Array.from(a);
  const b = samplesOf(d.push(m2!));
  equal(b.buffer, a.buffer);
  equal(b.byteOffset, a.byteOffset, "the same samples of the buffer: no fresh array per message");
  // The contract: the first outcome's samples now hold the second message's (used before the next push).
  deepEqual(Array.from(a), Array.from(b));
  notEqual(first.join(), Array.from(b).join());
});

Deno.test("reuseSamples: every outcome holds what a decoder with fresh arrays gives, until the next push", () => {
  const msgs = messages(40);
  const fresh = new StreamDecoder(fmt(), { keepTimeline: true });
  const reused = new StreamDecoder(fmt(), { keepTimeline: true, reuseSamples: true });
  deepEqual(decodeAll(reused, msgs), decodeAll(fresh, msgs));
  // Without the option every outcome keeps its samples after later pushes.
  const keep = new StreamDecoder(fmt(), { keepTimeline: true });
  const outs = msgs.map((m) => samplesOf(keep.push(m)));
  deepEqual(
    outs.map((s) => Array.from(s)),
    decodeAll(new StreamDecoder(fmt(), { keepTimeline: true }), msgs),
  );
});

Deno.test("reuseSamples: a repaired message, media clock gaps and resampled streams decode as without it", () => {
  const msgs = messages(30);
  // A byte lost (odd count at 16-bit) and a media clock with a lost packet: paths that build their output from
  // the scratch and another array in one push.
  const pcm = fmt({ codec: "pcm16le", sample_rate: 16000 });
  const r = rng(3);
  const pcmMsgs: StreamMessage[] = Array.from({ length: 30 }, (_, k) => {
    const audio = encodeSamples("pcm16le", Float32Array.from({ length: 320 }, () => (r() - 0.5) * 0.5));
    const bytes = k === 7 ? audio.subarray(0, audio.length - 1) : audio;
    const body = JSON.stringify({ media: { payload: encodeBase64(bytes) } });
    return { timeNs: T0 + BigInt(k) * 20n * MS, payload: enc.encode(body) };
  });
  const clocked = msgs.filter((_, k) => k !== 11).map((m, k) => ({
    ...m,
    mediaClock: { ts: (k >= 11 ? k + 1 : k) * 160, clockRate: 8000 },
  }));
  for (const [format, list] of [[fmt(), clocked], [pcm, pcmMsgs]] as const) {
    const a = decodeAll(new StreamDecoder(format, { keepTimeline: true }), list);
    const b = decodeAll(new StreamDecoder(format, { keepTimeline: true, reuseSamples: true }), list);
    deepEqual(b, a);
    ok(a.some((s) => s.length > 0));
  }
});

Deno.test("reuseSamples: a ring fed each outcome before the next push holds the same samples", () => {
  const msgs = messages(300);
  const rings = [false, true].map((reuseSamples) => {
    const d = new StreamDecoder(fmt(), { keepTimeline: true, reuseSamples });
    const ring = new SampleRing(8000 * 3, { hotSamples: 4096, warmSamples: 8000 });
    for (const m of msgs) {
      const o = d.push(m);
      if (o.kind !== "error") feedRing(ring, o.start, o.samples, () => {});
    }
    return ring;
  });
  const [a, b] = rings;
  equal(b!.end, a!.end);
  ok(a!.has(a!.start, a!.end - a!.start) && b!.has(b!.start, b!.end - b!.start));
  for (let i = a!.start; i < a!.end; i++) equal(b!.at(i), a!.at(i));
});

Deno.test("sample ring: a lookback's cold tiers are allocated whole, a long one's first array is 32 KiB", () => {
  // Whole: nothing replaced for the collector (pages become resident as samples reach them). Doubled (a long
  // lookback): at the run task's MALLOC_MMAP_THRESHOLD_ (32 KiB) an array that size is mapped alone and given
  // back whole when the tier grows; smaller first arrays left holes in the C heap at every stream.
  strictEqual(FIRST_TIER_BYTES, 32768);
  const chunk = new Float32Array(160).map((_, i) => Math.sin(i / 5) * 0.2);
  const bytesOf = (seconds: number) => {
    const ring = new SampleRing(8000 * seconds, {
      hotSamples: TARGET_HOT_SAMPLES,
      warmSamples: TARGET_WARM_SAMPLES,
    });
    let at = 0;
    const upTo = (n: number) => {
      for (; at < n; at += chunk.length) ring.write(at, chunk, 0);
    };
    upTo(TARGET_HOT_SAMPLES + 2 * COLD_BLOCK);
    const warm = ring.bytes - TARGET_HOT_SAMPLES * 2;
    upTo(TARGET_HOT_SAMPLES + TARGET_WARM_SAMPLES + 4 * COLD_BLOCK);
    const old = ring.bytes - TARGET_HOT_SAMPLES * 2 - warm;
    upTo(8000 * seconds);
    return { warm, old, full: ring.bytes - TARGET_HOT_SAMPLES * 2 - warm - old };
  };
  const warmBlocks = Math.ceil(TARGET_WARM_SAMPLES / COLD_BLOCK);
  // 32 s: the 8-bit tier's codes and header bytes at once, the 4-bit tier's nibbles and headers (a slot for
  // the block coded ahead among them) at once; nothing more when the lookback is full.
  const short = bytesOf(32);
  strictEqual(short.warm, warmBlocks * COLD_BLOCK + warmBlocks);
  ok(short.old > FIRST_TIER_BYTES * 2, `4-bit tier ${short.old}`);
  strictEqual(short.full, 0);
  // 600 s: the same 8-bit tier; the 4-bit tier's first array (256 blocks of nibbles) and their headers.
  const long = bytesOf(600);
  strictEqual(long.warm, short.warm);
  const oldBlocks = FIRST_TIER_BYTES / (COLD_BLOCK >> 1);
  strictEqual(long.old, FIRST_TIER_BYTES + oldBlocks * HEADER_BYTES);
});
