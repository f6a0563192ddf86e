import { deepEqual, equal, ok } from "node:assert/strict";
import { StreamDecoder } from "../audio/decode/stream_decoder.ts";
import { rawFormat } from "./support/formats.ts";

const T0 = 1_700_000_000_000_000_000n;
const MS = 1_000_000n;

const fmt = rawFormat;

/** 20 ms of mu-law whose every byte is `v` (so each packet's samples are recognisable). */
function pkt(v: number, n = 160): Uint8Array {
  return new Uint8Array(n).fill(v);
}

Deno.test("media clock: a lost packet becomes a gap of exactly its length before the next one", () => {
  const d = new StreamDecoder(fmt());
  const ts0 = 0xffff_ff00; // wraps after two packets
  for (const i of [0, 1, 2, 4, 5]) {
    const o = d.push({
      timeNs: T0 + BigInt(i + 1) * 20n * MS,
      payload: pkt(i + 1),
      mediaClock: { ts: (ts0 + i * 160) >>> 0, clockRate: 8000 },
    });
    ok(o.kind === "audio");
    if (i === 4) {
      deepEqual(o.mediaGap, { frames: 160, timeNs: T0 + 80n * MS, audioStart: 640 });
      equal(o.frames, 160);
    } else equal(o.mediaGap, undefined);
  }
  equal(d.timeline.nativeLength, 6 * 160);
  // Packet 4 is at 640..800 on the timeline, packet 2 at 320..480, the gap between.
  equal(d.timeline.locate(640)!.messageIndex, 3);
  equal(d.timeline.locate(479)!.messageIndex, 2);
  ok(d.timeline.isGap(480) && d.timeline.isGap(639));
  const s = d.stats();
  deepEqual([s.mediaGaps, s.mediaGapFrames, s.overlapFrames, s.clockJumps], [1, 160, 0, 0]);
});

Deno.test("media clock: silence suppression (timestamps jump, sequence contiguous) is a gap timed by interpolation", () => {
  const d = new StreamDecoder(fmt());
  d.push({ timeNs: T0, payload: pkt(1), mediaClock: { ts: 1000, clockRate: 8000 } });
  // 2 s of DTX: the next packet's audio starts 16000 ticks late and arrives 2.02 s after the previous one.
  const o = d.push({
    timeNs: T0 + 2020n * MS,
    payload: pkt(2),
    mediaClock: { ts: 1160 + 16000, clockRate: 8000 },
  });
  ok(o.kind === "audio" && o.mediaGap);
  equal(o.mediaGap.frames, 16000);
  // The gap's end is 16000 of the 16160 ticks between the two packets' ends: 2000 ms after the first one.
  equal(o.mediaGap.timeNs, T0 + 2000n * MS);
  equal(d.timeline.nativeLength, 160 + 16000 + 160);
});

Deno.test("media clock: G.722 timestamps count 8 kHz ticks for 16 kHz audio", () => {
  const d = new StreamDecoder(fmt({ codec: "g722", sample_rate: 16000 }));
  // 160 bytes = 320 samples = 160 ticks; the second packet is lost.
  d.push({ timeNs: T0, payload: pkt(0x55), mediaClock: { ts: 0, clockRate: 8000 } });
  const o = d.push({ timeNs: T0 + 60n * MS, payload: pkt(0x55), mediaClock: { ts: 320, clockRate: 8000 } });
  ok(o.kind === "audio");
  equal(o.mediaGap?.frames, 320);
  equal(d.timeline.nativeLength, 3 * 320);
});

Deno.test("media clock: duplicates and late reorders never shift the timeline; overlaps are trimmed and counted", () => {
  const d = new StreamDecoder(fmt());
  const push = (v: number, ts: number, n = 160) =>
    d.push({ timeNs: T0 + BigInt(ts), payload: pkt(v, n), mediaClock: { ts, clockRate: 8000 } });
  push(1, 0);
  push(2, 160);
  const dup = push(2, 160);
  deepEqual(dup, { kind: "error", messageIndex: 2, reason: "media_overlap" });
  push(4, 480); // packet 3 (ts 320) missing so far: a gap
  const late = push(3, 320); // arrives after packet 4: its place is taken by the gap, dropped
  equal(late.kind, "error");
  // A packet that overlaps the end by 80 samples keeps only its new part.
  const part = push(5, 560);
  ok(part.kind === "audio" && part.frames === 80);
  equal(d.timeline.nativeLength, 720);
  const s = d.stats();
  deepEqual([s.errors.media_overlap, s.overlapFrames, s.mediaGaps], [2, 160 + 160 + 80, 1]);
  // The samples of the trimmed packet are its last 80.
  const spans = d.timeline.spans();
  equal(spans[spans.length - 1]!.nativeStart, 640);
});

Deno.test("media clock: a jump beyond maxGapSeconds is a resync, not a gap; bounded either way", () => {
  const d = new StreamDecoder(fmt(), { maxGapSeconds: 5 });
  d.push({ timeNs: T0, payload: pkt(1), mediaClock: { ts: 0, clockRate: 8000 } });
  d.push({ timeNs: T0 + 20n * MS, payload: pkt(1), mediaClock: { ts: 123_456_789, clockRate: 8000 } });
  d.push({ timeNs: T0 + 40n * MS, payload: pkt(1), mediaClock: { ts: 5, clockRate: 8000 } });
  equal(d.timeline.nativeLength, 480);
  deepEqual([d.stats().clockJumps, d.stats().mediaGaps], [2, 0]);
});

Deno.test("per-message codec: telephone-event is skipped and its time becomes a gap; codec changes are counted", () => {
  const d = new StreamDecoder(fmt());
  const mulaw = { codec: "mulaw" as const, sampleRate: 8000 };
  const event = { codec: "event" as const, sampleRate: 8000 };
  d.push({ timeNs: T0, payload: pkt(1), mediaClock: { ts: 0, clockRate: 8000 }, codec: mulaw });
  // DTMF replaces 3 packets of audio: event packets carry the event's start timestamp.
  for (let i = 0; i < 3; i++) {
    const o = d.push({
      timeNs: T0,
      payload: pkt(0, 4),
      mediaClock: { ts: 160, clockRate: 8000 },
      codec: event,
    });
    equal(o.kind === "error" && o.reason, "not_audio");
  }
  const after = d.push({
    timeNs: T0,
    payload: pkt(2),
    mediaClock: { ts: 640, clockRate: 8000 },
    codec: mulaw,
  });
  ok(after.kind === "audio" && after.mediaGap?.frames === 480);
  // A-law at the same rate decodes in mu-law's place (exact); Opus or another rate does not.
  const alaw = d.push({
    timeNs: T0,
    payload: pkt(0xd5),
    mediaClock: { ts: 800, clockRate: 8000 },
    codec: { codec: "alaw", sampleRate: 8000 },
  });
  ok(alaw.kind === "audio" && alaw.samples.every((x) => Math.abs(x) < 0.001));
  const opus = d.push({
    timeNs: T0,
    payload: pkt(1),
    mediaClock: { ts: 960, clockRate: 48000 },
    codec: { codec: "opus", sampleRate: 48000 },
  });
  equal(opus.kind === "error" && opus.reason, "codec_change");
  const l16 = d.push({ timeNs: T0, payload: pkt(1, 320), codec: { codec: "pcm16be", sampleRate: 16000 } });
  equal(l16.kind === "error" && l16.reason, "codec_change");
  const s = d.stats();
  deepEqual([s.errors.not_audio, s.errors.codec_change, s.codecSwitches], [3, 2, 1]);
});

Deno.test("media clock: messages without it behave exactly as before (Pixie rows)", () => {
  const a = new StreamDecoder(fmt());
  const b = new StreamDecoder(fmt());
  for (let i = 0; i < 10; i++) {
    const x = a.push({ timeNs: T0 + BigInt(i) * 20n * MS, payload: pkt(i) });
    const y = b.push({
      timeNs: T0 + BigInt(i) * 20n * MS,
      payload: pkt(i),
      mediaClock: { ts: i * 160, clockRate: 8000 },
    });
    ok(x.kind === "audio" && y.kind === "audio");
    deepEqual([...x.samples], [...y.samples]);
  }
  deepEqual(a.timeline.spans(), b.timeline.spans());
});
