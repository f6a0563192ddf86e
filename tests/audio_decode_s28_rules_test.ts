/**
 * Tuned rules of audio/decode and audio/fingerprint that no test held: each test builds the input a rule is there
 * for and fails with the rule neutralised (named in each test).
 * Real parts: StreamDecoder (with the Opus package), Timeline, Resampler, the signature codec.
 */
import assert from "node:assert/strict";
import { encodeSamples, MULAW_TO_LINEAR } from "../audio/decode/codecs.ts";
import { encodeBase64 } from "../audio/decode/encoding.ts";
import { bytePath, scanCounts, scanJsonPathsBytes } from "../audio/decode/json_scan_bytes.ts";
import { initOpus } from "../audio/decode/opus.ts";
import { guessPayloadFormat, type PayloadSample } from "../audio/decode/payload_guess.ts";
import { SampleRing } from "../audio/decode/sample_ring.ts";
import { Resampler } from "../audio/decode/resample.ts";
import { checkAudioFormat, StreamDecoder } from "../audio/decode/stream_decoder.ts";
import { Timeline } from "../audio/decode/timeline.ts";
import { Fingerprinter, FrameStore } from "../audio/fingerprint/fingerprint.ts";
import { capIds, decodeSignature, SignatureDecodeError } from "../audio/fingerprint/signature.ts";
import { rng } from "./support/rng.ts";
import { rawFormat } from "./support/formats.ts";

await initOpus(48000, 1);

const T0 = 1_700_000_000_000_000_000n;
const MS = 1_000_000n;

/** One 20 ms CELT frame (TOC 0xf8: fullband, 20 ms, mono, one frame) of a few bytes. */
const OPUS_20MS = new Uint8Array([0xf8, 0xff, 0xfe]);

// Neutralised `opts.maxGapSeconds ?? 30` -> 1e6: the 40 s timestamp jump is taken for 40 s of lost audio
// (320,000 samples of silence, every later instant 40 s late on the timeline).
Deno.test("media clock: a timestamp jump over 30 s is a resync, not a gap; 20 s is a gap", () => {
  const d = new StreamDecoder(rawFormat());
  const push = (i: number, ts: number) =>
    d.push({
      timeNs: T0 + BigInt(i) * 20n * MS,
      payload: new Uint8Array(160).fill(0x55),
      mediaClock: { ts, clockRate: 8000 },
    });
  push(0, 0);
  push(1, 160);
  const jumped = push(2, 320 + 40 * 8000);
  assert.ok(jumped.kind === "audio" && jumped.mediaGap === undefined);
  assert.equal(d.stats().clockJumps, 1);
  assert.equal(d.timeline.nativeLength, 3 * 160);
  const gap = push(3, 480 + 40 * 8000 + 20 * 8000);
  assert.ok(gap.kind === "audio");
  assert.equal(gap.mediaGap?.frames, 20 * 8000);
  assert.equal(d.timeline.nativeLength, 4 * 160 + 20 * 8000);
});

// Neutralised `BACKLOG_SECONDS = 5` -> 1e12: nothing comes out while the decoder instantiates, however long the
// stream has been waiting (the backlog grows without bound).
Deno.test("opus: a backlog over 5 s behind a decoder that is not ready comes out as silence, counted", () => {
  // 12 kHz was never pre-warmed, and no await lets its decoder become ready during the pushes.
  const d = new StreamDecoder(rawFormat({ codec: "opus", sample_rate: 12000 }));
  let out = 0;
  for (let i = 0; i < 300; i++) {
    const o = d.push({ timeNs: T0 + BigInt(i) * 20n * MS, payload: OPUS_20MS });
    assert.ok(o.kind === "audio");
    out += o.samples.length;
  }
  // The 251st packet took the backlog past 5 s (60,000 native samples): 5.02 s out at 8 kHz, less the filter delay.
  assert.ok(out > 39_000 && out <= 40_160, `${out} samples out`);
  assert.equal(d.stats().errors.codec_unavailable, 251);
});

// Neutralised `OPUS_PLC_MS = 120` -> 1e9: the whole 1 s gap is counted concealed (48,000), though libopus
// extrapolates 120 ms and the rest is silence.
Deno.test("opus: of a 1 s media gap, 120 ms are concealment and counted so; the rest is silence", () => {
  const d = new StreamDecoder(rawFormat({ codec: "opus", sample_rate: 48000 }));
  for (const [i, ts] of [[0, 0], [1, 960], [2, 1920 + 48000]] as const) {
    const o = d.push({
      timeNs: T0 + BigInt(i) * 20n * MS,
      payload: OPUS_20MS,
      mediaClock: { ts, clockRate: 48000 },
    });
    assert.ok(o.kind === "audio");
  }
  const s = d.stats();
  assert.deepEqual([s.mediaGaps, s.mediaGapFrames, s.concealedFrames], [1, 48000, 5760]);
});

// Neutralised `MAX_CHANNELS = 64` -> 1e9: 65 (or 100,000) channels pass the format check.
Deno.test("audio format: at most 64 channels", () => {
  assert.deepEqual(checkAudioFormat(rawFormat({ codec: "pcm16le", channels: 64 })), []);
  assert.deepEqual(checkAudioFormat(rawFormat({ codec: "pcm16le", channels: 65 })), [
    "channels must be an integer in 1..64",
  ]);
});

// Neutralised `DEFAULT_LOOKBACK_SAMPLES = 120 * ANALYSIS_RATE` -> 1e12: a timeline made without a lookback (the
// diagnosis' decoders) holds every message of a long stream.
Deno.test("timeline: by default two minutes are kept, older spans forgotten", () => {
  const tl = new Timeline(8000);
  // 150 s of 20 ms messages.
  for (let i = 0; i < 7500; i++) tl.add(i, T0 + BigInt(i) * 20n * MS, 160);
  assert.equal(tl.locate(0), undefined);
  assert.equal(tl.locate(10 * 8000), undefined);
  const k = (150 - 119) * 8000;
  assert.equal(tl.locate(k)?.messageIndex, k / 160);
  assert.equal(tl.locate(7500 * 160 - 1)?.messageIndex, 7499);
});

/** Output level of a tone relative to its input level, dB, over the middle of the output. */
function gainDb(rate: number, hz: number): number {
  const x = Float32Array.from(
    { length: rate },
    (_, i) => 0.5 * Math.sin((2 * Math.PI * hz * i) / rate + Math.PI / 4),
  );
  const r = new Resampler(rate);
  const a = r.push(x), b = r.flush();
  const y = new Float32Array(a.length + b.length);
  y.set(a);
  y.set(b, a.length);
  let s = 0, c = 0;
  for (let k = 1000; k < y.length - 1000; k++, c++) s += y[k]! ** 2;
  return 20 * Math.log10(Math.sqrt(s / c) / (0.5 / Math.SQRT2));
}

// Neutralised `TRANSITION_HZ = 900` -> 3000: the passband ends at 900 Hz; 2 kHz (the fingerprint's top band) and
// 3 kHz lose several dB.
Deno.test("resampler: the passband reaches 3 kHz (the fingerprint's bands end at 2 kHz) within 0.5 dB", () => {
  for (const rate of [11025, 16000, 22050, 44100, 48000]) {
    for (const hz of [2000, 2500, 3000]) {
      const g = gainDb(rate, hz);
      assert.ok(Math.abs(g) <= 0.5, `${rate} Hz: ${hz} Hz at ${g.toFixed(2)} dB`);
    }
  }
});

const UUID = "123e4567-e89b-12d3-a456-426614174000";

// Neutralised `ID_VALUE_CAP = 64` -> 6400 (or `ID_KEY_CAP = 32` -> 3200): the long pair is kept first and takes the
// budget from the UUIDs after it.
Deno.test("signature ids: a pair over the caps is dropped whole, never crowding out the ids after it", () => {
  const ids = { interval_id_0123456789abcdef: UUID, call_id_0123456789abcdefghij: UUID };
  assert.deepEqual(capIds({ payload: "v".repeat(65), ...ids }), ids);
  assert.deepEqual(capIds({ ["k".repeat(33)]: "v".repeat(64), ...ids }), ids);
  assert.deepEqual(capIds({ ["k".repeat(32)]: "v".repeat(64) }), { ["k".repeat(32)]: "v".repeat(64) });
});

// Neutralised the size check in decodeSignature (`if (false)`): a 1,024-byte message is refused for another reason.
Deno.test("signature decode: over 1,023 bytes is refused as too long", () => {
  assert.throws(() => decodeSignature(new Uint8Array(1024).fill(0x46)), (e) => {
    return e instanceof SignatureDecodeError && /1024 bytes \(max 1023\)/.test(e.message);
  });
});

/** 20 ms messages of raw μ-law carrying a tone of `hz` at `amp` (full scale 1), 4 s. */
function toneMessages(hz: number, amp: number): PayloadSample[] {
  const x = Float32Array.from({ length: 32000 }, (_, i) => amp * Math.sin((2 * Math.PI * hz * i) / 8000));
  const codes = encodeSamples("mulaw", x);
  return Array.from({ length: 200 }, (_, i) => ({
    bytes: codes.slice(i * 160, (i + 1) * 160),
    timeNs: T0 + BigInt(i) * 20n * MS,
  }));
}

// Neutralised `MAX_DEPTH = 12` in payload_guess.ts -> 1e9: the walk of the JSON leaves recurses 100,000 deep and
// throws RangeError (discover stopped on one such message).
Deno.test("payload guess: JSON nested 100,000 deep is walked no deeper than its bound, and nothing throws", () => {
  const deep = new TextEncoder().encode("[".repeat(100_000) + "]".repeat(100_000));
  const g = guessPayloadFormat(
    Array.from({ length: 3 }, (_, i) => ({ bytes: deep, timeNs: T0 + BigInt(i) })),
  );
  assert.equal(g.kind, "none");
});

// Neutralised `SMOOTH = 0.45` -> -1: the mono tone, whose every-other-sample correlation (-0.02) beats its adjacent
// one (-0.70) by more than 0.25 without being smooth, is called two channels.
Deno.test("payload guess: a mono stream that is not smoother every other sample is not taken for two channels", () => {
  // cos(2π·2987/8000) = -0.70 (adjacent samples), cos(4π·2987/8000) = -0.02 (every other sample).
  const g = guessPayloadFormat(toneMessages(2987, 0.3));
  if (g.kind !== "audio") throw new Error(`expected audio: ${g.reason}`);
  assert.equal(g.format.codec, "mulaw");
  assert.equal(g.format.channels, 1, g.channels.reason);
});

// Neutralised `MIN_RUN_CHARS = 24` -> 1: the bare-run pattern `([A-Za-z0-9+/]{1,}={0,2})` extracts the short word
// before the blob, agrees with no message, and the guess finds no audio.
Deno.test("payload guess: text with no fixed context before its blob gets the bare run of 24 or more characters", () => {
  const seps = [";", "|", ":", ",", "#"];
  const samples = toneMessages(437, 0.3).map((m, i) => ({
    ...m,
    bytes: new TextEncoder().encode(`k${i % 7}${seps[i % 5]}${encodeBase64(m.bytes)}`),
  }));
  const g = guessPayloadFormat(samples);
  if (g.kind !== "audio") throw new Error(`expected audio: ${g.reason}`);
  assert.equal(g.format.envelope, "regex");
  assert.match(g.format.path, /\{24,\}/);
});

// Neutralised `top.rmsDbfs > SILENT_DBFS - 20` -> `> -1e9`: the tone 75 dB below full scale (a line's hiss, a
// dither) is proposed as audio.
Deno.test("payload guess: a predictable signal far below -65 dBFS is silence, not audio", () => {
  const g = guessPayloadFormat(toneMessages(437, 10 ** (-72 / 20)));
  assert.equal(g.kind, "silence", g.reason);
});

// Neutralised `return ctrl <= bytes.length * 0.01` -> `return true`: the payloads (valid UTF-8, half of them NUL
// bytes) are taken for text, only a blob in text is looked for, and no audio is found.
Deno.test("payload guess: binary audio that happens to be valid UTF-8 (quiet positive PCM16) is not text", () => {
  const x = Float32Array.from(
    { length: 32000 },
    (_, i) => (60 + 40 * Math.sin((2 * Math.PI * 437 * i) / 8000)) / 32768,
  );
  const pcm = encodeSamples("pcm16le", x);
  const samples = Array.from({ length: 100 }, (_, i) => ({
    bytes: pcm.slice(i * 320, (i + 1) * 320),
    timeNs: T0 + BigInt(i) * 20n * MS,
  }));
  const g = guessPayloadFormat(samples);
  if (g.kind !== "audio") throw new Error(`expected audio: ${g.reason}`);
  assert.equal(g.format.envelope, "raw", g.format.path);
});

// Neutralised `> 5 * medInterval) gap = true` -> `> 1e12 * medInterval`: windows across the 1 s pauses of a
// silence-suppressed stream count them as time the audio took, and 16 kHz is guessed as 8 kHz.
Deno.test("payload guess: the sample rate of a stream sent in talk spurts comes from the spurts, not the pauses", () => {
  const x = Float32Array.from(
    { length: 16000 * 5 },
    (_, i) => 0.3 * Math.sin((2 * Math.PI * 437 * i) / 16000),
  );
  const pcm = encodeSamples("pcm16le", x);
  let t = T0;
  const samples = Array.from({ length: 120 }, (_, i) => {
    t += i % 6 === 0 && i > 0 ? 1000n * MS : 20n * MS; // six 20 ms messages, then a second of silence unsent
    return { bytes: pcm.slice(i * 640, (i + 1) * 640), timeNs: t };
  });
  const g = guessPayloadFormat(samples);
  if (g.kind !== "audio") throw new Error(`expected audio: ${g.reason}`);
  assert.equal(g.format.codec, "pcm16le");
  assert.equal(g.format.sample_rate, 16000, g.sampleRate.reason);
});

// Neutralised `if (distinct > vals.length * 0.5) continue` (removed): the message id, new in every message, is
// proposed as a context id.
Deno.test("payload guess: a field new in every message (a message id) is no context id; the call's id is", () => {
  const codes = encodeSamples(
    "mulaw",
    Float32Array.from({ length: 32000 }, (_, i) => 0.3 * Math.sin(i * 0.35)),
  );
  const samples = Array.from({ length: 100 }, (_, i) => ({
    bytes: new TextEncoder().encode(JSON.stringify({
      callId: "call-7f3a9c",
      messageId: `msg-${1000 + i}`,
      media: { payload: encodeBase64(codes.slice(i * 160, (i + 1) * 160)) },
    })),
    timeNs: T0 + BigInt(i) * 20n * MS,
  }));
  const g = guessPayloadFormat(samples);
  if (g.kind !== "audio") throw new Error(`expected audio: ${g.reason}`);
  assert.equal(g.format.path, "media.payload");
  const paths = g.ids.map((x) => x.path);
  assert.ok(paths.some((p) => /callId/.test(p)), JSON.stringify(paths));
  assert.ok(!paths.some((p) => /messageId/.test(p)), JSON.stringify(paths));
});

// Neutralised `opts.maxMessages ?? 2000` -> 1e9: all 2,500 messages are examined (discover's work and memory grow
// with the capture).
Deno.test("payload guess: by default the first 2,000 messages are examined", () => {
  const base = toneMessages(437, 0.3);
  const samples = Array.from(
    { length: 2500 },
    (_, i) => ({ bytes: base[i % 200]!.bytes, timeNs: T0 + BigInt(i) * 20n * MS }),
  );
  const g = guessPayloadFormat(samples);
  assert.equal(g.kind, "audio", g.reason);
  assert.equal(g.messages, 2000);
});

// Neutralised `vals.length < Math.max(2, samples.length * 0.5)` -> `< 2`: the id carried by one message in ten (it
// cannot key the others) is proposed.
Deno.test("payload guess: an id in fewer than half the messages is not proposed", () => {
  const codes = encodeSamples(
    "mulaw",
    Float32Array.from({ length: 32000 }, (_, i) => 0.3 * Math.sin(i * 0.35)),
  );
  const samples = Array.from({ length: 100 }, (_, i) => ({
    bytes: new TextEncoder().encode(JSON.stringify({
      ...(i % 10 === 0 ? { callId: "call-7f3a9c" } : {}),
      streamSid: "MZ18ad3ab5a668481ce02b83e7395059f0",
      media: { payload: encodeBase64(codes.slice(i * 160, (i + 1) * 160)) },
    })),
    timeNs: T0 + BigInt(i) * 20n * MS,
  }));
  const g = guessPayloadFormat(samples);
  if (g.kind !== "audio") throw new Error(`expected audio: ${g.reason}`);
  const paths = g.ids.map((x) => x.path);
  assert.ok(paths.some((p) => /streamSid/.test(p)), JSON.stringify(paths));
  assert.ok(!paths.some((p) => /callId/.test(p)), JSON.stringify(paths));
});

// Neutralised `MAX_SHAPE_FIXED = 1024` -> 1e9: a shape is made of the 2 KB body's fixed bytes and every repeat is
// compared against them.
Deno.test("byte scanner: a body with over 1 KiB of fixed bytes is only ever scanned, never kept as a shape", () => {
  const paths = [bytePath(["media", "payload"])];
  const filler = Array.from({ length: 200 }, (_, i) => `"k${i}":${i}`).join(",");
  const before = { ...scanCounts };
  for (let i = 0; i < 50; i++) {
    const body = new TextEncoder().encode(`{${filler},"media":{"payload":"A${i}=="}}`);
    const hits = scanJsonPathsBytes(body, paths);
    assert.ok(Array.isArray(hits));
  }
  assert.equal(scanCounts.shapes - before.shapes, 0, "no shape made");
  assert.equal(scanCounts.shaped - before.shaped, 0);
  assert.equal(scanCounts.scanned - before.scanned, 50);
});

/** Sub-fingerprints (bits, strong masks) of `x` with the production parameters. */
function fingerprint(x: Float32Array): { bits: number[]; strong: number[]; energy: number[] } {
  const ring = new SampleRing(1 << 17);
  const store = new FrameStore(4096);
  const fp = new Fingerprinter(ring, store);
  for (let at = 0; at < x.length; at += 4000) {
    ring.write(at, x.subarray(at, at + 4000), 0);
    fp.advance();
  }
  const bits: number[] = [], strong: number[] = [], energy: number[] = [];
  for (let n = store.start; n < store.end; n++) {
    bits.push(store.bits[n & store.mask]!);
    strong.push(store.strong[n & store.mask]!);
    energy.push(store.energy[n & store.mask]!);
  }
  return { bits, strong, energy };
}

function popcount(v: number): number {
  let c = 0;
  for (let x = v >>> 0; x; x &= x - 1) c++;
  return c;
}

// Neutralised `strongAlpha: 1` -> 0 in FP_PARAMS: no bit is strong, so the bit error rate weights every bit alike
// (10 dB recall at the chance score 0.83 instead of 0.88, by the file's measurement).
Deno.test("fingerprint: the target's strong bits (|difference| >= the mean) are the ones noise leaves alone", () => {
  const bytes = Deno.readFileSync(new URL("../fixtures/audio_fp/speech_8k.ul", import.meta.url));
  const clean = Float32Array.from(bytes.subarray(0, 8000 * 20), (b) => MULAW_TO_LINEAR[b]! / 32768);
  let power = 0;
  for (const v of clean) power += v * v;
  const sigma = Math.sqrt(power / clean.length / 10); // 10 dB SNR
  const r = rng(5);
  const noisy = clean.map((v) => {
    const u = Math.max(r(), 1e-12);
    return v + sigma * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  });
  const a = fingerprint(clean), b = fingerprint(noisy);
  // The speech's louder half of the frames (in its pauses noise decides every bit).
  const loud = [...a.energy].sort((x, y) => x - y)[a.energy.length >> 1]!;
  let strong = 0, strongErr = 0, weakErr = 0, total = 0;
  for (let i = 0; i < a.bits.length; i++) {
    if (a.energy[i]! < loud) continue;
    const err = (a.bits[i]! ^ b.bits[i]!) >>> 0, s = b.strong[i]!;
    strong += popcount(s);
    strongErr += popcount(err & s);
    weakErr += popcount(err & ~s);
    total += 32;
  }
  const share = strong / total;
  assert.ok(share > 0.1 && share < 0.6, `strong share ${share.toFixed(3)}`);
  const sRate = strongErr / strong, wRate = weakErr / (total - strong);
  assert.ok(sRate < 0.25 * wRate, `errors: strong ${sRate.toFixed(3)}, weak ${wRate.toFixed(3)}`);
});
