import { equal, ok } from "node:assert/strict";
import { initOpus, opusPacketFrames } from "../audio/decode/opus.ts";
import { StreamDecoder } from "../audio/decode/stream_decoder.ts";
import type { AudioFormat } from "../audio/types.ts";
import { xorshift32 } from "./support/rng.ts";
import { rawFormat } from "./support/formats.ts";

const FMT: AudioFormat = rawFormat({ codec: "opus", sample_rate: 48000 });
/** A 20 ms CELT packet (TOC 0xfc: fullband, 20 ms, stereo, code 0) of three bytes: libopus decodes it. */
const SMALL = Uint8Array.of(0xfc, 0xff, 0xfe);

await initOpus(48000, 1);
await initOpus(48000, 2);

/** Random packets whose framing passes the RFC 6716 check (the others never reach libopus). */
function garbage(seed: number, count: number): Uint8Array[] {
  const r = xorshift32(seed);
  const out: Uint8Array[] = [];
  while (out.length < count) {
    const n = r() % 6 === 0 ? r() % 3000 : 1 + (r() % 200);
    const p = Uint8Array.from({ length: n }, () => r() & 0xff);
    if (opusPacketFrames(p, 48000) !== undefined) out.push(p);
  }
  return out;
}

Deno.test("opus: a packet longer than the package's decoder takes (valid framing, 120 ms in 6 KB) is counted and keeps its length", () => {
  // Code 3, six 20 ms CELT frames of 1,000 bytes: RFC 6716 allows it (a 120 ms packet at 400 kbit/s); the
  // package's input buffer is 3,840 bytes a channel, and filling it threw a RangeError out of push.
  const big = new Uint8Array(2 + 6 * 1000);
  big[0] = (31 << 3) | 3;
  big[1] = 6;
  for (let i = 2; i < big.length; i++) big[i] = (i * 73) & 0xff;
  equal(opusPacketFrames(big, 48000), 5760);
  const d = new StreamDecoder(FMT, { keepTimeline: true });
  const o = d.push({ timeNs: 1n, payload: big });
  ok(o.kind === "audio" && o.frames === 5760, "its length of silence on the timeline");
  equal(d.stats().errors.bad_packet, 1);
  const next = d.push({ timeNs: 2n, payload: SMALL });
  ok(next.kind === "audio" && next.frames === 960);
  equal(d.stats().errors.bad_packet, 1, "the next packet decodes");
  d.finish();
  equal(d.timeline.nativeLength, 5760 + 960);
  equal(d.length, d.timeline.length);
});

Deno.test("opus: garbage packets of valid framing never throw out of push or finish, and keep the timeline", () => {
  // Every seed here makes libopus trap in a stereo 48 kHz decoder (memory access out of bounds, divide by zero),
  // in decode and, once its heap was corrupted, in free at the stream's end (seen in longer runs): push threw,
  // which crashes the actor that owns every stream of the node. Now the packet is counted (bad_packet, silence
  // of its length) and the decoder replaced. Mono decoders are run too: none trapped here.
  for (const channels of [2, 1]) {
    for (let seed = 1; seed <= 6; seed++) {
      const d = new StreamDecoder({ ...FMT, channels, channel: "mix" }, { keepTimeline: true });
      let frames = 0;
      for (const p of garbage(seed, 40)) {
        const o = d.push({ timeNs: BigInt(frames), payload: p });
        ok(o.kind === "audio", `seed ${seed}, ${channels} channels: ${o.kind}`);
        frames += o.frames;
      }
      d.finish();
      equal(d.timeline.nativeLength, frames, `seed ${seed}, ${channels} channels`);
      equal(d.length, d.timeline.length, "every native sample reached the resampler");
    }
  }
});
