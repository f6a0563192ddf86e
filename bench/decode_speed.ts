/**
 * Decode-side speed: the decode stage per message on the analyze corpus's envelopes (as a target pipeline
 * decodes them), the whole StreamDecoder path (JSON envelope, base64, codec, resample, timeline), the
 * resampler alone, and a target stream's sample ring (Int16, 8-bit and 4-bit tiers at the pipeline's sizes) fed
 * 30 s lookbacks of μ-law audio, alone and behind the decoder (float samples, or the ring's Int16 values), as
 * multiples of real time per CPU second (the best of five runs). Not a test:
 * timings are printed, never asserted.
 *
 *   deno run bench/decode_speed.ts [seconds_of_audio=120]
 * @module
 */

import process from "node:process";
import { type Codec, encodeSamples } from "../audio/decode/codecs.ts";
import { encodeBase64 } from "../audio/decode/encoding.ts";
import { Resampler } from "../audio/decode/resample.ts";
import { StreamDecoder } from "../audio/decode/stream_decoder.ts";
import { feedRing, SampleRing } from "../audio/decode/sample_ring.ts";
import { MULAW_TO_LINEAR } from "../audio/decode/codecs.ts";
import { TARGET_HOT_SAMPLES, TARGET_WARM_SAMPLES } from "../audio/pipeline.ts";
import type { AudioFormat } from "../audio/types.ts";

const seconds = Number(Deno.args[0] ?? 120);

/** Speech-like test signal: a few drifting harmonics, syllable-rate envelope, light noise. Deterministic. */
function signal(rate: number, secs: number): Float32Array {
  const n = Math.round(rate * secs);
  const x = new Float32Array(n);
  let seed = 12345;
  for (let i = 0; i < n; i++) {
    const t = i / rate;
    const f0 = 140 + 30 * Math.sin(2 * Math.PI * 0.7 * t);
    const env = 0.5 + 0.5 * Math.sin(2 * Math.PI * 4 * t);
    let s = 0;
    for (let h = 1; h <= 8; h++) s += Math.sin(2 * Math.PI * f0 * h * t) / h;
    seed = (seed * 1103515245 + 12345) >>> 0;
    x[i] = 0.25 * env * s + 0.01 * (seed / 2 ** 32 - 0.5);
  }
  return x;
}

function twilioMessages(codec: Codec, rate: number, chunkMs: number, secs: number): Uint8Array[] {
  const audio = encodeSamples(codec, signal(rate, secs));
  const bps = codec === "mulaw" || codec === "alaw" ? 1 : codec === "float32le" ? 4 : 2;
  const chunk = Math.round((rate * chunkMs) / 1000) * bps;
  const enc = new TextEncoder();
  const out: Uint8Array[] = [];
  for (let off = 0, seq = 1; off < audio.length; off += chunk, seq++) {
    const payload = encodeBase64(audio.subarray(off, off + chunk));
    out.push(enc.encode(JSON.stringify({
      event: "media",
      sequenceNumber: String(seq),
      media: { track: "inbound", chunk: String(seq), timestamp: String(seq * chunkMs), payload },
      streamSid: "MZ18ad3ab5a668481ce02b83e7395059f0",
    })));
  }
  return out;
}

/** The fastest of `runs` runs of `fn`, in CPU seconds of this process (the machine may be shared). */
function best(runs: number, fn: () => void): number {
  let min = Infinity;
  for (let r = 0; r < runs; r++) {
    const c0 = process.cpuUsage();
    fn();
    const c = process.cpuUsage(c0);
    min = Math.min(min, (c.user + c.system) / 1e6);
  }
  return min;
}

const DEFAULT_FORMAT: AudioFormat = {
  envelope: "json",
  path: "media.payload",
  encoding: "base64",
  codec: "mulaw",
  sample_rate: 8000,
  channels: 1,
  channel: 0,
  skip_bytes: 0,
};

function decoderCase(codec: Codec, rate: number, chunkMs: number): void {
  const msgs = twilioMessages(codec, rate, chunkMs, seconds);
  const fmt: AudioFormat = {
    envelope: "json",
    path: "media.payload",
    encoding: "base64",
    codec,
    sample_rate: rate,
    channels: 1,
    channel: 0,
    skip_bytes: 0,
  };
  let produced = 0;
  const secs = best(5, () => {
    const d = new StreamDecoder(fmt);
    let t = 1_700_000_000_000_000_000n;
    const step = BigInt(chunkMs) * 1_000_000n;
    produced = 0;
    for (const payload of msgs) {
      const o = d.push({ timeNs: t, payload });
      if (o.kind !== "error") produced += o.samples.length;
      t += step;
    }
    produced += d.finish().samples.length;
  });
  console.log(
    `StreamDecoder json/base64/${codec} ${rate} Hz, ${chunkMs} ms chunks: ${
      (seconds / secs).toFixed(0)
    }x real time` +
      ` (${((secs / msgs.length) * 1e6).toFixed(2)} us/message, ${produced} samples out)`,
  );
}

function resamplerCase(rate: number, chunkMs: number): void {
  const x = signal(rate, seconds);
  const chunk = Math.round((rate * chunkMs) / 1000);
  const secs = best(5, () => {
    const r = new Resampler(rate);
    for (let off = 0; off < x.length; off += chunk) r.push(x.subarray(off, off + chunk));
    r.flush();
  });
  console.log(
    `Resampler ${rate} -> 8000 Hz, ${chunkMs} ms chunks: ${(seconds / secs).toFixed(0)}x real time`,
  );
}

/** A target stream's ring (30 s lookback) fed the signal as a μ-law tap delivers it, in 20 ms messages. */
function ringCase(): void {
  const ul = encodeSamples("mulaw", signal(8000, seconds));
  const x = Float32Array.from(ul, (c) => MULAW_TO_LINEAR[c]! / 32768);
  const secs = best(5, () => {
    const ring = new SampleRing(30 * 8000 + 4096, {
      hotSamples: TARGET_HOT_SAMPLES,
      warmSamples: TARGET_WARM_SAMPLES,
    });
    for (let off = 0; off < x.length; off += 160) feedRing(ring, off, x.subarray(off, off + 160), () => {});
  });
  console.log(
    `SampleRing (target tiers) fed μ-law in 20 ms messages: ${(seconds / secs).toFixed(0)}x real time ` +
      `(${((secs / x.length) * 1e9).toFixed(1)} ns/sample)`,
  );
}

/**
 * A target pipeline's decode path for a μ-law tap: StreamDecoder (reused buffers) into the target ring, with the
 * message's samples as floats the ring rounds, or decoded straight to the ring's Int16 values (`ringValues`).
 */
function decodeIntoRingCase(ringValues: boolean): void {
  const msgs = twilioMessages("mulaw", 8000, 20, seconds);
  const secs = best(5, () => {
    const d = new StreamDecoder(DEFAULT_FORMAT, { keepTimeline: true, reuseSamples: true, ringValues });
    const ring = new SampleRing(30 * 8000 + 4096, {
      hotSamples: TARGET_HOT_SAMPLES,
      warmSamples: TARGET_WARM_SAMPLES,
    });
    let t = 1_700_000_000_000_000_000n;
    for (const payload of msgs) {
      const o = d.push({ timeNs: t, payload });
      if (o.kind !== "error") {
        feedRing(ring, o.start, (o.kind === "audio" ? o.ring : undefined) ?? o.samples, () => {});
      }
      t += 20_000_000n;
    }
  });
  console.log(
    `StreamDecoder + target SampleRing, μ-law 20 ms, ${ringValues ? "ring values" : "float samples"}: ${
      (seconds / secs).toFixed(0)
    }x real time (${((secs / (seconds * 8000)) * 1e9).toFixed(1)} ns/sample)`,
  );
}

/** The analyze corpus's envelopes (bench/corpus.ts stages): a 20 ms message's payload of each. */
const ENVELOPES: {
  name: string;
  fmt: AudioFormat;
  codec: Codec;
  rate: number;
  wrap: (b: Uint8Array) => Uint8Array;
}[] = [
  {
    name: "Twilio media JSON, μ-law",
    fmt: DEFAULT_FORMAT,
    codec: "mulaw",
    rate: 8000,
    wrap: (b) => twilioEnvelope(encodeBase64(b)),
  },
  {
    name: '{"data"} JSON, A-law',
    fmt: { ...DEFAULT_FORMAT, path: "data", codec: "alaw" },
    codec: "alaw",
    rate: 8000,
    wrap: (b) => new TextEncoder().encode(JSON.stringify({ data: encodeBase64(b) })),
  },
  {
    name: '{"data"} JSON, pcm16le 16 kHz',
    fmt: { ...DEFAULT_FORMAT, path: "data", codec: "pcm16le", sample_rate: 16000 },
    codec: "pcm16le",
    rate: 16000,
    wrap: (b) => new TextEncoder().encode(JSON.stringify({ data: encodeBase64(b) })),
  },
  {
    name: "raw binary, μ-law",
    fmt: { ...DEFAULT_FORMAT, envelope: "raw", encoding: "binary" },
    codec: "mulaw",
    rate: 8000,
    wrap: (b) => b.slice(),
  },
];

let twilioSeq = 0;
function twilioEnvelope(payload: string): Uint8Array {
  const seq = String(++twilioSeq);
  return new TextEncoder().encode(JSON.stringify({
    event: "media",
    sequenceNumber: seq,
    media: { track: "inbound", chunk: seq, timestamp: String(20 * twilioSeq), payload },
    streamSid: "MZ4548aea25378c84453577118559f53bb",
  }));
}

/**
 * The decode stage per message as a target pipeline runs it (keepTimeline, reuseSamples, ringValues; the
 * outcome's samples or ring values handed on), 20 ms messages of 20 streams interleaved, for each envelope.
 */
function stageCase(): void {
  const streams = 20;
  for (const e of ENVELOPES) {
    const audio = encodeSamples(e.codec, signal(e.rate, seconds));
    const chunk = (e.rate / 50) * (e.codec === "pcm16le" ? 2 : 1);
    const msgs: Uint8Array[] = [];
    for (let off = 0; off + chunk <= audio.length; off += chunk) {
      msgs.push(e.wrap(audio.subarray(off, off + chunk)));
    }
    let sink = 0;
    const secs = best(5, () => {
      const ds = Array.from(
        { length: streams },
        () => new StreamDecoder(e.fmt, { keepTimeline: true, reuseSamples: true, ringValues: true }),
      );
      let t = 1_700_000_000_000_000_000n;
      for (const payload of msgs) {
        t += 20_000_000n;
        for (const d of ds) {
          const o = d.push({ timeNs: t, payload });
          if (o.kind === "audio") sink += (o.ring ?? o.samples).length;
        }
      }
    });
    console.log(
      `decode stage, ${e.name}, 20 ms, ${streams} streams: ${
        ((secs / (msgs.length * streams)) * 1e9).toFixed(0)
      } ns/message` +
        ` (${sink > 0 ? "ok" : "no audio"})`,
    );
  }
}

stageCase();
ringCase();
decodeIntoRingCase(false);
decodeIntoRingCase(true);
resamplerCase(16000, 20);
resamplerCase(16000, 100);
resamplerCase(48000, 20);
resamplerCase(44100, 20);
decoderCase("mulaw", 8000, 20);
decoderCase("mulaw", 8000, 100);
decoderCase("pcm16le", 16000, 20);
decoderCase("pcm16le", 16000, 100);
