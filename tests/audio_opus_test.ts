import { deepEqual, equal, ok } from "node:assert/strict";
import { ffmpegOut, oggPackets, speechOpusPackets } from "../bench/codec_speed.ts";
import { initOpus, opusPacketFrames, OpusStreamDecoder } from "../audio/decode/opus.ts";
import { StreamDecoder } from "../audio/decode/stream_decoder.ts";
import type { AudioFormat } from "../audio/types.ts";
import { gatedTest } from "./support/tools.ts";

const ffmpegTest = await gatedTest(import.meta.url, ["ffmpeg with libopus"]);

await initOpus(48000, 1);

const FMT: AudioFormat = {
  envelope: "raw",
  path: "",
  encoding: "binary",
  codec: "opus",
  sample_rate: 48000,
  channels: 1,
  channel: 0,
  skip_bytes: 0,
};

function snrDb(ref: Float32Array, got: Float32Array): number {
  let s = 0, e = 0;
  for (let i = 0; i < ref.length; i++) {
    s += ref[i]! ** 2;
    e += (ref[i]! - got[i]!) ** 2;
  }
  return 10 * Math.log10(s / e);
}

Deno.test("opus: the package loads and decodes with no network and no file access beyond its own modules", async () => {
  const dir = await Deno.makeTempDir();
  const script = `${dir}/load.ts`;
  await Deno.writeTextFile(
    script,
    `import { initOpus, OpusStreamDecoder } from ${
      JSON.stringify(new URL("../audio/decode/opus.ts", import.meta.url).href)
    };
await initOpus();
const d = new OpusStreamDecoder(48000, 1);
console.log(d.ready, d.decode(new Uint8Array([0xf8, 0xff, 0xfe]))?.length);`,
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      "--cached-only",
      "--deny-net",
      `--allow-read=${new URL("..", import.meta.url).pathname},${dir}`,
      `--config=${new URL("../deno.json", import.meta.url).pathname}`,
      script,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  await Deno.remove(dir, { recursive: true });
  equal(new TextDecoder().decode(out.stdout).trim(), "true 960", new TextDecoder().decode(out.stderr));
});

ffmpegTest("opus: speech encoded by ffmpeg's libopus decodes like ffmpeg's libopus decoder", async () => {
  const ogg = await ffmpegOut([
    ...[
      "-f",
      "mulaw",
      "-ar",
      "8000",
      "-ac",
      "1",
      "-i",
      new URL("../fixtures/audio_fp/speech_8k.ul", import.meta.url).pathname,
    ],
    ...[
      "-t",
      "4",
      "-ar",
      "48000",
      "-c:a",
      "libopus",
      "-b:a",
      "32k",
      "-frame_duration",
      "20",
      "-f",
      "ogg",
      "pipe:1",
    ],
  ]);
  const raw = await ffmpegOut([
    "-c:a",
    "libopus",
    "-i",
    "pipe:0",
    "-f",
    "f32le",
    "-ac",
    "1",
    "-ar",
    "48000",
    "pipe:1",
  ], ogg);
  const ref = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const packets = oggPackets(ogg);
  const head = packets[0]!;
  equal(new TextDecoder().decode(head.subarray(0, 8)), "OpusHead");
  const preSkip = head[10]! | (head[11]! << 8);
  const d = new OpusStreamDecoder(48000, 1);
  ok(d.ready, "a pre-warmed decoder is ready at once");
  const parts: number[] = [];
  for (const p of packets.slice(2)) {
    equal(opusPacketFrames(p, 48000), 960);
    parts.push(...d.decode(p)!);
  }
  const mine = Float32Array.from(parts.slice(preSkip, preSkip + ref.length));
  equal(mine.length, ref.length);
  const snr = snrDb(ref, mine);
  ok(snr > 60, `SNR against ffmpeg's libopus decode: ${snr.toFixed(1)} dB`);
});

Deno.test("opus: packet framing (RFC 6716 section 3.2) gives durations and rejects malformed packets", () => {
  // TOC configs: SILK 20 ms (config 1), hybrid 10 ms (12), CELT 2.5 ms (16), CELT 20 ms (31).
  equal(opusPacketFrames(new Uint8Array([1 << 3]), 48000), 960);
  equal(opusPacketFrames(new Uint8Array([12 << 3, 1, 2]), 16000), 160);
  equal(opusPacketFrames(new Uint8Array([16 << 3, 0]), 8000), 20);
  // Code 1: two equal frames; code 2: two frames with an explicit first length; code 3: M frames.
  equal(opusPacketFrames(new Uint8Array([(31 << 3) | 1, 1, 2]), 48000), 1920);
  equal(opusPacketFrames(new Uint8Array([(31 << 3) | 1, 1, 2, 3]), 48000), undefined);
  equal(opusPacketFrames(new Uint8Array([(31 << 3) | 2, 2, 9, 9, 9]), 48000), 1920);
  equal(opusPacketFrames(new Uint8Array([(31 << 3) | 2, 5, 9]), 48000), undefined);
  equal(opusPacketFrames(new Uint8Array([(31 << 3) | 3, 3, 1, 2, 3]), 48000), 2880);
  equal(opusPacketFrames(new Uint8Array([(31 << 3) | 3, 7, 0, 0, 0, 0, 0, 0, 0]), 48000), undefined); // 140 ms
  equal(opusPacketFrames(new Uint8Array([(31 << 3) | 3, 0]), 48000), undefined); // no frames
  // Padding flag with a length that runs past the packet; VBR with a frame length past the end.
  equal(opusPacketFrames(new Uint8Array([(31 << 3) | 3, 0x41, 200]), 48000), undefined);
  equal(opusPacketFrames(new Uint8Array([(31 << 3) | 3, 0x82, 50, 1]), 48000), undefined);
  equal(opusPacketFrames(new Uint8Array(0), 48000), undefined);
});

Deno.test("opus: concealment beats silence for lost packets (measured: 5% loss on speech)", async () => {
  const packets = await speechOpusPackets(8);
  const ref = new OpusStreamDecoder(48000, 1);
  const clean = packets.map((p) => ref.decode(p)!.slice());
  let seed = 7;
  const lost = packets.map(() => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32 < 0.05);
  ok(lost.filter(Boolean).length >= 10);
  const run = (conceal: boolean) => {
    const d = new OpusStreamDecoder(48000, 1);
    const got = packets.map((p, i) =>
      lost[i] ? (conceal ? d.conceal(960)! : new Float32Array(960)) : d.decode(p)!
    );
    const flat = (xs: Float32Array[]) => Float32Array.from(xs.flatMap((x) => [...x]));
    return snrDb(flat(clean), flat(got));
  };
  const plc = run(true), silence = run(false);
  console.log(
    `opus 5% loss, SNR against the lossless decode: concealment ${plc.toFixed(2)} dB, silence ${
      silence.toFixed(2)
    } dB`,
  );
  ok(plc > silence + 1, `concealment ${plc} dB, silence ${silence} dB`);
});

Deno.test("opus: the stream decoder conceals a lost packet the media clock shows, keeping every later sample in place", async () => {
  const packets = (await speechOpusPackets(2)).slice(0, 50);
  const d = new StreamDecoder(FMT);
  const gapAt = 20;
  for (let i = 0; i < packets.length; i++) {
    if (i === gapAt) continue; // lost
    const o = d.push({
      timeNs: 1_000_000_000n + BigInt(i) * 20_000_000n,
      payload: packets[i]!,
      mediaClock: { ts: (0xffff_0000 + i * 960) >>> 0, clockRate: 48000 }, // wraps during the stream
    });
    ok(o.kind === "audio");
    if (i === gapAt + 1) {
      equal(o.mediaGap?.frames, 960);
      // The gap's span is timed between its neighbours: where the lost packet would have arrived.
      equal(o.mediaGap?.timeNs, 1_000_000_000n + BigInt(gapAt) * 20_000_000n);
    }
  }
  d.finish();
  const s = d.stats();
  deepEqual([s.mediaGaps, s.mediaGapFrames, s.concealedFrames, s.decoded], [1, 960, 960, 49]);
  equal(d.timeline.nativeLength, 50 * 960);
  const loc = d.timeline.locate((gapAt + 1) * 160);
  equal(loc?.messageIndex, gapAt); // the packet after the loss, at its true place (pushed as message 20)
  equal(loc?.gap, false);
  ok(d.timeline.isGap(gapAt * 160 + 10));
});

Deno.test("opus: a stream whose decoder is still instantiating keeps its packets in order and decodes them once ready", async () => {
  const packets = (await speechOpusPackets(1)).slice(0, 30);
  // 24 kHz mono was never pre-warmed: the first packets wait in the backlog.
  const fmt = { ...FMT, sample_rate: 24000 };
  const slow = new StreamDecoder(fmt);
  const blocks: Float32Array[] = [];
  const first = slow.push({ timeNs: 1n, payload: packets[0]! });
  ok(first.kind === "audio" && first.frames === 480 && first.samples.length === 0, "queued, on the timeline");
  blocks.push(first.samples);
  await new Promise((r) => setTimeout(r, 200));
  for (let i = 1; i < packets.length; i++) {
    const o = slow.push({ timeNs: BigInt(i + 1), payload: packets[i]! });
    ok(o.kind === "audio");
    blocks.push(o.samples.slice());
  }
  blocks.push(slow.finish().samples);
  // The same packets through a decoder made after the pool is warm for 24 kHz.
  await initOpus(24000, 1);
  const fast = new StreamDecoder(fmt);
  const ref: number[] = [];
  for (let i = 0; i < packets.length; i++) {
    const o = fast.push({ timeNs: BigInt(i + 1), payload: packets[i]! });
    ok(o.kind === "audio");
    ref.push(...o.samples);
  }
  ref.push(...fast.finish().samples);
  deepEqual(blocks.flatMap((b) => [...b]), ref);
});
