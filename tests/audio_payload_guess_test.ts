import assert from "node:assert/strict";
import { guessPayloadFormat, type PayloadGuess, type PayloadSample } from "../audio/decode/payload_guess.ts";
import { type Codec, decodeSamples, encodeSamples } from "../audio/decode/codecs.ts";
import { encodeBase64, encodeHex } from "../audio/decode/encoding.ts";
import { extractAudioField } from "../audio/decode/payload.ts";
import { rng } from "./support/rng.ts";

const enc = new TextEncoder();

/** Real speech (Asterisk prompts, see fixtures/audio_fp/ATTRIBUTION.md) as floats. */
async function speech(file: string): Promise<Float32Array> {
  const r = decodeSamples(
    "mulaw",
    await Deno.readFile(new URL(`../fixtures/audio_fp/${file}`, import.meta.url)),
  );
  if (!r.ok) throw new Error("fixture does not decode");
  return Float32Array.from(r.samples);
}
const SPEECH_8K = await speech("speech_8k.ul");
const SPEECH_16K = await speech("speech_16k.ul");
const OTHER_8K = await speech("other_8k.ul");

/** Linear interpolation to another rate: enough for a rate test (the signal only has to be smooth speech). */
function resampleLinear(x: Float32Array, from: number, to: number): Float32Array {
  const n = Math.floor((x.length * to) / from);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const p = (i * from) / to;
    const k = Math.floor(p);
    const f = p - k;
    out[i] = (x[k] ?? 0) * (1 - f) + (x[k + 1] ?? x[k] ?? 0) * f;
  }
  return out;
}

interface GenOptions {
  codec?: Codec;
  rate?: number;
  ms?: number;
  /** Builds the payload from the encoded audio bytes of one message. */
  wrap: (audio: Uint8Array, seq: number, stream: number) => Uint8Array;
  signal?: Float32Array;
  /** Interleaved calls: each gets its own slice of the signal. */
  streams?: number;
  messages?: number;
  channels?: 1 | 2;
}

const T0 = 1_763_910_000_000_000_000n;

/** Messages as a capture would hold them: `ms` of audio each, captured as each one is complete (1 ms jitter). */
function generate(o: GenOptions): PayloadSample[] {
  const codec = o.codec ?? "mulaw";
  const rate = o.rate ?? 8000;
  const ms = o.ms ?? 20;
  const streams = o.streams ?? 1;
  const signal = o.signal ?? (rate === 8000 ? SPEECH_8K : resampleLinear(SPEECH_16K, 16000, rate));
  const frames = Math.round((rate * ms) / 1000);
  const chans = o.channels ?? 1;
  const per = Math.min(o.messages ?? 200, Math.floor(signal.length / frames / streams));
  const rand = rng(7);
  const out: PayloadSample[] = [];
  for (let k = 0; k < per; k++) {
    for (let s = 0; s < streams; s++) {
      const start = (s * per + k) * frames;
      const mono = signal.subarray(start, start + frames);
      let samples = mono;
      if (chans === 2) {
        samples = new Float32Array(frames * 2);
        for (let i = 0; i < frames; i++) {
          samples[2 * i] = mono[i]!;
          samples[2 * i + 1] = OTHER_8K[(start + i) % OTHER_8K.length]!;
        }
      }
      const jitterNs = BigInt(Math.floor(rand() * 1_000_000));
      const timeNs = T0 + BigInt(s) * 3_000_000n + BigInt((k + 1) * ms) * 1_000_000n + jitterNs;
      out.push({ bytes: o.wrap(encodeSamples(codec, samples), k, s), timeNs, stream: "voice/telephony-0" });
    }
  }
  return out;
}

const json = (v: unknown) => enc.encode(JSON.stringify(v));
const twilio = (audio: Uint8Array, seq: number, stream: number) =>
  json({
    event: "media",
    sequenceNumber: String(seq + 2),
    media: {
      track: "inbound",
      chunk: String(seq + 1),
      timestamp: String(seq * 20),
      payload: encodeBase64(audio),
    },
    streamSid: `MZ00000000000000000000000000000${stream}`,
    interval_id: `f0656935-4f78-495a-8fe3-98064c4e00c${stream}`,
  });

function audioOf(g: PayloadGuess) {
  if (g.kind === "none") throw new Error(`expected audio, got none: ${g.reason}`);
  return g;
}

/** Every message decodes with the guessed envelope: the guess is usable as a config, not only plausible. */
function assertExtracts(samples: readonly PayloadSample[], g: PayloadGuess): void {
  const a = audioOf(g);
  for (const s of samples) {
    const r = extractAudioField(s.bytes, {
      envelope: a.format.envelope,
      path: a.format.path,
      skip_bytes: a.skipBytes,
    });
    assert.ok(r.ok, `guessed envelope does not extract: ${a.format.envelope} ${a.format.path}`);
  }
}

Deno.test("payload guess: Twilio JSON, base64, every codec at 8 kHz", () => {
  for (const codec of ["mulaw", "alaw", "pcm16le", "pcm16be", "float32le"] as const) {
    const samples = generate({ codec, wrap: twilio });
    const g = audioOf(guessPayloadFormat(samples));
    assert.equal(g.kind, "audio");
    assert.equal(g.format.envelope, "json", codec);
    assert.equal(g.format.path, "media.payload", codec);
    assert.equal(g.format.encoding, "base64", codec);
    assert.equal(g.format.codec, codec, `${codec}: ${g.codec.reason}`);
    assert.equal(g.format.sample_rate, 8000, `${codec}: ${g.sampleRate.reason}`);
    assert.equal(g.format.channels, 1);
    assert.ok(g.codec.confidence >= 0.5, `${codec} confidence ${g.codec.confidence}: ${g.codec.reason}`);
    assert.ok(g.confidence >= 0.5, `${codec} overall ${g.confidence}`);
    assert.equal(g.messageMs, 20);
    assertExtracts(samples, g);
  }
});

Deno.test("payload guess: sample rates from message spacing", () => {
  for (const rate of [8000, 16000, 24000, 32000, 44100, 48000]) {
    const samples = generate({
      codec: "pcm16le",
      rate,
      ms: 40,
      wrap: (a) => json({ data: encodeBase64(a) }),
    });
    const g = audioOf(guessPayloadFormat(samples));
    assert.equal(g.format.sample_rate, rate, `${rate}: ${g.sampleRate.reason}`);
    assert.equal(g.format.codec, "pcm16le");
    assert.equal(g.format.path, "data");
    assert.ok(
      Math.abs(g.sampleRate.estimate! / rate - 1) < 0.02,
      `${rate}: estimate ${g.sampleRate.estimate}`,
    );
  }
  // 22050 sits 8.8% from 24000: the guess is right, and it says it is ambiguous.
  const g = audioOf(guessPayloadFormat(generate({ codec: "pcm16le", rate: 22050, ms: 40, wrap: (a) => a })));
  assert.equal(g.format.sample_rate, 22050, g.sampleRate.reason);
  assert.match(g.sampleRate.reason, /ambiguous with 24000/);
  assert.ok(g.sampleRate.confidence <= 0.5);
});

Deno.test("payload guess: variable message lengths (ASR-style 100-200 ms) still give the rate", () => {
  const rand = rng(3);
  const signal = SPEECH_16K;
  const out: PayloadSample[] = [];
  let at = 0;
  let t = T0;
  for (let k = 0; at < signal.length - 3200; k++) {
    const n = 1600 + Math.floor(rand() * 1600);
    const bytes = encodeSamples("pcm16le", signal.subarray(at, at + n));
    at += n;
    t += BigInt(Math.round((n / 16000) * 1e9));
    out.push({ bytes: json({ session: "asr-c4ab6a09131b", seq: k, data: encodeBase64(bytes) }), timeNs: t });
  }
  const g = audioOf(guessPayloadFormat(out));
  assert.equal(g.format.sample_rate, 16000, g.sampleRate.reason);
  assert.equal(g.format.codec, "pcm16le");
});

Deno.test("payload guess: hex in JSON, binary raw bodies, base64 text bodies", () => {
  const hex = generate({ codec: "alaw", wrap: (a) => json({ type: "audio", audio: { hex: encodeHex(a) } }) });
  let g = audioOf(guessPayloadFormat(hex));
  assert.deepEqual([g.format.envelope, g.format.path, g.format.encoding, g.format.codec], [
    "json",
    "audio.hex",
    "hex",
    "alaw",
  ]);
  assertExtracts(hex, g);

  const raw = generate({ codec: "pcm16be", wrap: (a) => a });
  g = audioOf(guessPayloadFormat(raw));
  assert.deepEqual([g.format.envelope, g.format.encoding, g.format.codec, g.skipBytes], [
    "raw",
    "binary",
    "pcm16be",
    0,
  ]);

  const b64 = generate({ codec: "mulaw", wrap: (a) => enc.encode(encodeBase64(a) + "\n") });
  g = audioOf(guessPayloadFormat(b64));
  assert.deepEqual([g.format.envelope, g.format.encoding, g.format.codec], ["raw", "base64", "mulaw"]);
});

Deno.test("payload guess: raw bodies behind a fixed 12-byte header (RTP-like) get skip_bytes", () => {
  const samples = generate({
    codec: "mulaw",
    wrap: (a, seq) => {
      const out = new Uint8Array(12 + a.length);
      out.set([0x80, 0x00, (seq >> 8) & 0xff, seq & 0xff, 0, 0, 0, seq & 0xff, 0xde, 0xad, 0xbe, 0xef]);
      out.set(a, 12);
      return out;
    },
  });
  const g = audioOf(guessPayloadFormat(samples));
  assert.equal(g.format.envelope, "raw");
  assert.equal(g.format.codec, "mulaw", g.codec.reason);
  assert.equal(g.skipBytes, 12, g.notes.join("; "));
  assert.equal(g.format.skip_bytes, 12);
});

Deno.test("payload guess: text with an embedded blob gets a regex envelope that the engine extracts", () => {
  const samples = generate({
    codec: "alaw",
    wrap: (a, seq) => enc.encode(`CHUNK seq=${seq} codec=PCMA\r\ndata: ${encodeBase64(a)}\r\n\r\n`),
  });
  const g = audioOf(guessPayloadFormat(samples));
  assert.equal(g.format.envelope, "regex");
  assert.equal(g.format.codec, "alaw");
  assert.equal(new RegExp(g.format.path).exec("")?.length ?? 2, 2); // one capture group
  assert.match(g.format.path, /^data: /);
  assertExtracts(samples, g);
});

Deno.test("payload guess: audio inside JSON text inside a string (Redis req_args) gets a regex", () => {
  const samples = generate({
    codec: "mulaw",
    wrap: (a, seq) =>
      json({
        channel: "audio.in",
        message: JSON.stringify({ seq, call_id: "CA1234abcd5678", media: { payload: encodeBase64(a) } }),
      }),
  });
  const g = audioOf(guessPayloadFormat(samples));
  assert.equal(g.format.envelope, "regex", g.envelope.reason);
  assert.equal(g.format.codec, "mulaw");
  assertExtracts(samples, g);
  // The id inside the embedded JSON is proposed with a pattern that matches the escaped text.
  const id = g.ids.find((i) => i.idType === "call_id");
  assert.ok(id, JSON.stringify(g.ids));
  const text = new TextDecoder().decode(samples[0]!.bytes);
  assert.equal(new RegExp(id.pattern).exec(text)?.[1], "CA1234abcd5678");
});

Deno.test("payload guess: interleaved calls: stream key, ids and the per-stream rate", () => {
  const samples = generate({ codec: "mulaw", wrap: twilio, streams: 3, messages: 100 });
  const g = audioOf(guessPayloadFormat(samples));
  assert.equal(g.format.sample_rate, 8000, g.sampleRate.reason);
  assert.deepEqual(g.streamKeyPaths.value, ["$.streamSid"]);
  const ids = Object.fromEntries(g.ids.map((i) => [i.idType, i]));
  assert.ok(ids["interval_id"], JSON.stringify(g.ids));
  assert.equal(ids["interval_id"].distinct, 3);
  const text = new TextDecoder().decode(samples[1]!.bytes);
  assert.equal(
    new RegExp(ids["interval_id"].pattern).exec(text)?.[1],
    "f0656935-4f78-495a-8fe3-98064c4e00c1",
  );
  // Sequence numbers and timestamps change every message: never ids.
  assert.ok(!g.ids.some((i) => /sequence|timestamp|chunk/.test(i.path)));
});

Deno.test("payload guess: two interleaved channels with different content", () => {
  const samples = generate({ codec: "pcm16le", channels: 2, wrap: (a) => json({ data: encodeBase64(a) }) });
  const g = audioOf(guessPayloadFormat(samples));
  assert.equal(g.format.channels, 2, g.channels.reason);
  assert.equal(g.format.sample_rate, 8000, g.sampleRate.reason);
  assert.equal(g.format.codec, "pcm16le");
});

Deno.test("payload guess: negatives: chat JSON, random bytes, random base64, silence", () => {
  const chat: PayloadSample[] = [];
  const words = ["hello", "how are you today", "fine thanks, and you?", "see you tomorrow at the office"];
  for (let i = 0; i < 100; i++) {
    chat.push({
      bytes: json({ user: `user${i % 3}`, conversation_id: "c-1234abcd", text: words[i % words.length] }),
      timeNs: T0 + BigInt(i) * 700_000_000n,
    });
  }
  let g = guessPayloadFormat(chat);
  assert.equal(g.kind, "none", g.reason);
  assert.match(g.reason, /no audio/);

  const rand = rng(11);
  const noise = Array.from({ length: 100 }, (_, i) => ({
    bytes: Uint8Array.from({ length: 320 }, () => Math.floor(rand() * 256)),
    timeNs: T0 + BigInt(i) * 20_000_000n,
  }));
  g = guessPayloadFormat(noise);
  assert.equal(g.kind, "none", g.reason);
  assert.match(g.reason, /noise/);

  const b64noise = noise.map((s) => ({ ...s, bytes: json({ media: { payload: encodeBase64(s.bytes) } }) }));
  g = guessPayloadFormat(b64noise);
  assert.equal(g.kind, "none", g.reason);

  const silence = generate({ codec: "mulaw", wrap: twilio, signal: new Float32Array(8000 * 4) });
  g = guessPayloadFormat(silence);
  assert.equal(g.kind, "silence", g.reason);
  const s = audioOf(g);
  assert.equal(s.format.path, "media.payload");
  assert.equal(s.format.codec, "mulaw");
  assert.ok(s.codec.confidence < 0.5);
  assert.match(s.codec.reason, /silent/);
});

Deno.test("payload guess: garbage never throws", () => {
  const cases: PayloadSample[][] = [
    [],
    [{ bytes: new Uint8Array(0), timeNs: 0n }],
    [{ bytes: enc.encode("... [TRUNCATED]"), timeNs: 0n }],
    [{ bytes: enc.encode("{"), timeNs: 0n }, { bytes: enc.encode("[1,2"), timeNs: 1n }],
    [{ bytes: enc.encode('{"a":{"b":{"c":"' + "A".repeat(100) + '"}}}'), timeNs: 5n }],
    Array.from({ length: 50 }, (_, i) => ({ bytes: Uint8Array.of(0xff, 0xfe, i), timeNs: BigInt(i) })),
    Array.from({ length: 10 }, () => ({ bytes: enc.encode("[".repeat(5000)), timeNs: 1n })),
    Array.from(
      { length: 10 },
      () => ({ bytes: json({ x: "=".repeat(64), y: "\u0100".repeat(40) }), timeNs: 1n }),
    ),
  ];
  for (const c of cases) {
    const g = guessPayloadFormat(c);
    assert.ok(g.kind === "none" || g.kind === "audio" || g.kind === "silence");
    assert.ok(g.reason.length > 0);
  }
  // Pixie markers are left out and noted, the rest still guessed.
  const samples = generate({ codec: "mulaw", wrap: twilio, messages: 60 });
  const withMarkers = samples.map((s, i) =>
    i % 10 === 5 ? { ...s, bytes: enc.encode("{...} ... [TRUNCATED]") } : s
  );
  const g = audioOf(guessPayloadFormat(withMarkers));
  assert.equal(g.format.codec, "mulaw");
  assert.ok(g.notes.some((n) => /cut or removed by Pixie/.test(n)));
});
