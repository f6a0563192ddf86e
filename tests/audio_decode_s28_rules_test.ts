/**
 * Tuned rules of audio/decode and audio/fingerprint that no test held: each test builds the input a rule is there
 * for and fails with the rule neutralised (named in each test).
 * Real parts: StreamDecoder (with the Opus package), Timeline, Resampler, the signature codec.
 */
import assert from "node:assert/strict";
import { initOpus } from "../audio/decode/opus.ts";
import { Resampler } from "../audio/decode/resample.ts";
import { checkAudioFormat, StreamDecoder } from "../audio/decode/stream_decoder.ts";
import { Timeline } from "../audio/decode/timeline.ts";
import { capIds, decodeSignature, SignatureDecodeError } from "../audio/fingerprint/signature.ts";
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
