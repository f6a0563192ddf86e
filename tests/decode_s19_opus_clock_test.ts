import { deepEqual, equal, ok } from "node:assert/strict";
import { speechOpusPackets } from "../bench/codec_speed.ts";
import { initOpus } from "../audio/decode/opus.ts";
import { type DecodeOutcome, StreamDecoder } from "../audio/decode/stream_decoder.ts";
import type { AudioFormat } from "../audio/types.ts";
import { gatedTest } from "./support/tools.ts";

const ffmpegTest = await gatedTest(import.meta.url, ["ffmpeg with libopus"]);

/** 12 kHz mono: no other test of this process warms its decoders, so a new stream's first packets must wait. */
const FMT: AudioFormat = {
  envelope: "raw",
  path: "",
  encoding: "binary",
  codec: "opus",
  sample_rate: 12000,
  channels: 1,
  channel: 0,
  skip_bytes: 0,
};

function samplesOf(o: DecodeOutcome): number[] {
  ok(o.kind === "audio", `an audio outcome, got ${o.kind}`);
  return [...o.samples];
}

ffmpegTest(
  "opus over RTP: a stream whose decoder was instantiating emits its audio once the decoder is ready, not only at its end",
  async () => {
    const packets = (await speechOpusPackets(2)).slice(0, 60);
    const clock = (i: number) => ({ ts: (1000 + i * 960) >>> 0, clockRate: 48000 });
    /** Packet i as the RTP source hands it on: 20 ms apart, with its media clock. */
    const packet = (i: number) => ({
      timeNs: 1_000_000_000n + BigInt(i) * 20_000_000n,
      payload: packets[i]!,
      mediaClock: clock(i),
    });
    const slow = new StreamDecoder(FMT);
    const got = samplesOf(slow.push(packet(0)));
    equal(got.length, 0, "the first packet waits for its decoder");
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 1; i < packets.length; i++) got.push(...samplesOf(slow.push(packet(i))));
    // The same packets through a decoder that is ready at once (the pool is warm for 12 kHz now).
    await initOpus(FMT.sample_rate, 1);
    const fast = new StreamDecoder(FMT);
    const ref: number[] = [];
    for (let i = 0; i < packets.length; i++) ref.push(...samplesOf(fast.push(packet(i))));
    ok(ref.length > 8000, `reference emitted ${ref.length} samples`);
    // Before: every packet after the first joined the backlog behind it and none was decoded until finish(), a
    // stream silent for its whole life (and its backlog, copies of its packets, growing without bound).
    equal(got.length, ref.length, "the waiting stream emits as much audio as the ready one before its end");
    deepEqual(got, ref);
    deepEqual(slow.finish().samples, fast.finish().samples);
  },
);

ffmpegTest(
  "opus: a lost body's gap while the decoder instantiates keeps its place: every sample the timeline counts is emitted",
  async () => {
    const packets = (await speechOpusPackets(1)).slice(0, 20);
    // 16 kHz: a rate no other test here warms, so the stream starts on a decoder still instantiating.
    const fmt = { ...FMT, sample_rate: 16000 };
    const d = new StreamDecoder(fmt);
    let emitted = 0;
    const push = (i: number, bodySize?: number) => {
      const o = d.push({ timeNs: 1_000_000_000n + BigInt(i) * 20_000_000n, payload: packets[i]!, bodySize });
      ok(o.kind !== "error", `message ${i}: ${o.kind}`);
      emitted += o.samples.length;
      return o;
    };
    push(0);
    push(1);
    // Pixie cut this body (its original size is larger): a gap of the recent messages' length stands in for it.
    const cut = push(2, packets[2]!.length + 100);
    ok(cut.kind === "marker" && cut.gapFrames === 320, `a gap of one message, got ${JSON.stringify(cut)}`);
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 3; i < packets.length; i++) push(i);
    emitted += d.finish().samples.length;
    // Before: the gap's silence was dropped while its decoder was not ready (the timeline counted it), so every
    // later sample sat one message early on the timeline.
    equal(emitted, d.timeline.length);
    equal(d.timeline.locate(3 * 160)?.messageIndex, 3);
  },
);

ffmpegTest(
  "opus without a media clock: a malformed packet keeps its place as a gap (keepTimeline), later packets stay put",
  async () => {
    await initOpus(48000, 1);
    const packets = (await speechOpusPackets(1)).slice(0, 12);
    const fmt = { ...FMT, sample_rate: 48000 };
    const d = new StreamDecoder(fmt, { keepTimeline: true });
    const bad = 6;
    for (let i = 0; i < packets.length; i++) {
      // Code 3 without its frame count byte: framing libopus refuses.
      const payload = i === bad ? new Uint8Array([packets[i]![0]! | 3]) : packets[i]!;
      const o = d.push({ timeNs: 1_000_000_000n + BigInt(i) * 20_000_000n, payload });
      if (i === bad) {
        ok(o.kind === "gap" && o.reason === "bad_packet", `a gap, got ${o.kind}`);
        equal(o.gapFrames, 960, "the recent packets' length");
      } else equal(o.kind, "audio");
    }
    equal(d.stats().errors.bad_packet, 1);
    // Before: the packet was skipped with no gap, so every later packet's audio sat 20 ms early on the timeline.
    equal(d.timeline.nativeLength, packets.length * 960);
    equal(d.timeline.locate((bad + 1) * 160)?.messageIndex, bad + 1);
    ok(d.timeline.isGap(bad * 160 + 10));
  },
);
