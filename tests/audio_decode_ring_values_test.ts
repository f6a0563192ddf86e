import { deepEqual, equal, ok } from "node:assert/strict";
import { type Codec, encodeSamples } from "../audio/decode/codecs.ts";
import { encodeBase64 } from "../audio/decode/encoding.ts";
import { feedRing, RING_SCALE, SampleRing } from "../audio/decode/sample_ring.ts";
import { StreamDecoder, type StreamMessage } from "../audio/decode/stream_decoder.ts";
import { TARGET_HOT_SAMPLES, TARGET_WARM_SAMPLES } from "../audio/pipeline.ts";
import type { AudioFormat } from "../audio/types.ts";
import { DEFAULT_AUDIO } from "../config/defaults.ts";
import { rng } from "./support/rng.ts";

// G.711 at 8 kHz decoded straight to the sample ring's Int16 values (StreamDecoderOptions.ringValues): the same
// samples in the ring as through floats, without the float array and the ring's rounding per sample.

const enc = new TextEncoder();
const T0 = 1_700_000_000_000_000_000n;
const MS = 1_000_000n;

function fmt(over: Partial<AudioFormat> = {}): AudioFormat {
  return { ...DEFAULT_AUDIO, ...over };
}

/** JSON messages of `codec` audio, 10-120 ms each, loud enough to clip now and then. */
function messages(codec: Codec, count: number, rate = 8000): StreamMessage[] {
  const r = rng(11);
  let t = T0;
  return Array.from({ length: count }, () => {
    const n = Math.round(((10 + 110 * r()) * rate) / 1000);
    const audio = encodeSamples(codec, Float32Array.from({ length: n }, () => (r() - 0.5) * 2.4 * r()));
    t += 20n * MS;
    const body = JSON.stringify({ event: "media", media: { payload: encodeBase64(audio) } });
    return { timeNs: t, payload: enc.encode(body) };
  });
}

/** Ring value the ring's own rounding gives a float sample (what `write` stores for it). */
function ringRound(x: number): number {
  return Math.max(-32768, Math.min(32767, Math.floor(x * RING_SCALE + 0.5)));
}

for (const codec of ["mulaw", "alaw"] as const) {
  Deno.test(`ringValues: ${codec} messages decode to the ring values of their float samples, same outcomes`, () => {
    const msgs = messages(codec, 200);
    const plain = new StreamDecoder(fmt({ codec }), { keepTimeline: true, reuseSamples: true });
    const direct = new StreamDecoder(fmt({ codec }), {
      keepTimeline: true,
      reuseSamples: true,
      ringValues: true,
    });
    for (const m of msgs) {
      const a = plain.push(m), b = direct.push(m);
      if (a.kind !== "audio" || b.kind !== "audio") throw new Error("expected audio");
      ok(b.ring !== undefined && b.samples.length === 0);
      equal(a.ring, undefined);
      deepEqual(Array.from(b.ring), Array.from(a.samples, ringRound));
      deepEqual({ ...b, samples: [], ring: [] }, { ...a, samples: [], ring: [] });
    }
    deepEqual(direct.stats(), plain.stats());
    deepEqual(direct.timeline.spans(), plain.timeline.spans());
    equal(direct.length, plain.length);
    deepEqual(direct.finish(), plain.finish());
  });
}

Deno.test("ringValues: pcm16le messages of a resampled stream come out as the ring values of their floats", () => {
  for (const rate of [16000, 48000]) {
    const msgs = messages("pcm16le", 200, rate);
    const plain = new StreamDecoder(fmt({ codec: "pcm16le", sample_rate: rate }), {
      keepTimeline: true,
      reuseSamples: true,
    });
    const direct = new StreamDecoder(fmt({ codec: "pcm16le", sample_rate: rate }), {
      keepTimeline: true,
      reuseSamples: true,
      ringValues: true,
    });
    for (const m of msgs) {
      const a = plain.push(m), b = direct.push(m);
      if (a.kind !== "audio" || b.kind !== "audio") throw new Error("expected audio");
      ok(b.ring !== undefined && b.samples.length === 0);
      deepEqual(Array.from(b.ring), Array.from(a.samples, ringRound));
      deepEqual({ ...b, samples: [], ring: [] }, { ...a, samples: [], ring: [] });
    }
    deepEqual(direct.stats(), plain.stats());
    deepEqual(direct.timeline.spans(), plain.timeline.spans());
    deepEqual(direct.finish(), plain.finish());
  }
});

Deno.test("ringValues: only G.711 at 8 kHz and resampled pcm16le, mono, without a media clock take it", () => {
  const pcm = new StreamDecoder(fmt({ codec: "pcm16le" }), { reuseSamples: true, ringValues: true });
  const o = pcm.push({ timeNs: T0, payload: messages("pcm16le", 1)[0]!.payload });
  ok(o.kind === "audio" && o.ring === undefined && o.samples.length > 0);
  const wide = new StreamDecoder(fmt({ sample_rate: 16000 }), { reuseSamples: true, ringValues: true });
  const w = wide.push(messages("mulaw", 1, 16000)[0]!);
  ok(w.kind === "audio" && w.ring === undefined);
  const clocked = new StreamDecoder(fmt({ codec: "pcm16le", sample_rate: 16000 }), {
    reuseSamples: true,
    ringValues: true,
  });
  const c = clocked.push({ ...messages("pcm16le", 1, 16000)[0]!, mediaClock: { ts: 0, clockRate: 16000 } });
  ok(c.kind === "audio" && c.ring === undefined);
  const stereo = new StreamDecoder(fmt({ codec: "pcm16le", sample_rate: 16000, channels: 2, channel: 1 }), {
    reuseSamples: true,
    ringValues: true,
  });
  const frames = encodeSamples("pcm16le", new Float32Array(640).fill(0.25));
  const s = stereo.push({
    timeNs: T0,
    payload: enc.encode(JSON.stringify({ media: { payload: encodeBase64(frames) } })),
  });
  ok(s.kind === "audio" && s.ring === undefined && s.samples.length > 0);
  const fresh = new StreamDecoder(fmt(), { ringValues: true });
  const f = fresh.push(messages("mulaw", 1)[0]!);
  ok(f.kind === "audio" && f.ring === undefined && f.samples.length > 0);
});

Deno.test("ringValues: every decoder's G.711 messages decode into one buffer, valid until the next push", () => {
  // One buffer for the process stays in the CPU's cache; one a stream would be a cache miss a message.
  const msgs = messages("mulaw", 4);
  const opts = { keepTimeline: true, reuseSamples: true, ringValues: true };
  const a = new StreamDecoder(fmt(), opts), b = new StreamDecoder(fmt(), opts);
  const x = a.push(msgs[0]!);
  if (x.kind !== "audio" || !x.ring) throw new Error("expected ring values");
  const first = Array.from(x.ring);
  const y = b.push(msgs[1]!);
  if (y.kind !== "audio" || !y.ring) throw new Error("expected ring values");
  equal(y.ring.buffer, x.ring.buffer);
  const plain = new StreamDecoder(fmt(), { reuseSamples: true }).push(msgs[0]!);
  if (plain.kind !== "audio") throw new Error("expected audio");
  deepEqual(first, Array.from(plain.samples, ringRound));
});

Deno.test("ringValues: a target ring fed ring values holds what it holds fed the floats, in every tier", () => {
  for (const codec of ["mulaw", "alaw"] as const) {
    const msgs = messages(codec, 1500);
    const opts = { hotSamples: TARGET_HOT_SAMPLES, warmSamples: TARGET_WARM_SAMPLES };
    const a = new SampleRing(30 * 8000, opts), b = new SampleRing(30 * 8000, opts);
    const plain = new StreamDecoder(fmt({ codec }), { keepTimeline: true, reuseSamples: true });
    const direct = new StreamDecoder(fmt({ codec }), {
      keepTimeline: true,
      reuseSamples: true,
      ringValues: true,
    });
    const hotA: number[] = [], hotB: number[] = [];
    for (const m of msgs) {
      const x = plain.push(m), y = direct.push(m);
      if (x.kind !== "audio" || y.kind !== "audio") throw new Error("expected audio");
      // The streaming reader's view: the hot tier right after each piece.
      feedRing(a, x.start, x.samples, () => hotA.push(a.data[(a.end - 1) & a.mask]!));
      feedRing(b, y.start, y.ring!, () => hotB.push(b.data[(b.end - 1) & b.mask]!));
    }
    deepEqual(hotB, hotA);
    equal(b.start, a.start);
    equal(b.end, a.end);
    ok(a.end - a.start > TARGET_HOT_SAMPLES + TARGET_WARM_SAMPLES, "the 4-bit tier is reached");
    // Every held sample as verification reads it (`has`, then `data`, before another ring's `has`).
    const va: number[] = [], vb: number[] = [];
    ok(a.has(a.start, a.end - a.start));
    for (let i = a.start; i < a.end; i++) va.push(a.data[i & a.mask]!);
    ok(b.has(b.start, b.end - b.start));
    for (let i = b.start; i < b.end; i++) vb.push(b.data[i & b.mask]!);
    deepEqual(vb, va);
  }
});
