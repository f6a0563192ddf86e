import { deepEqual, equal, ok } from "node:assert/strict";
import { G722Decoder } from "../audio/decode/g722.ts";
import { StreamDecoder } from "../audio/decode/stream_decoder.ts";
import type { AudioFormat } from "../audio/types.ts";
import { gatedTest } from "./support/tools.ts";
// ffmpeg: a real G.722 encoder and decoder no one here wrote.
import { ffmpegOut as ffmpeg } from "../bench/codec_speed.ts";

const ffmpegTest = await gatedTest(import.meta.url, ["ffmpeg"]);

const SPEECH = Deno.readFileSync(new URL("../fixtures/audio_fp/speech_16k.ul", import.meta.url));

/** G.722 bytes from ffmpeg's encoder, and ffmpeg's own decode of them (16-bit, 16 kHz). */
async function viaFfmpeg(
  inputArgs: string[],
  input?: Uint8Array,
): Promise<{ g722: Uint8Array; pcm: Int16Array }> {
  const g722 = await ffmpeg([...inputArgs, "-c:a", "g722", "-f", "g722", "pipe:1"], input);
  const raw = await ffmpeg(["-f", "g722", "-i", "pipe:0", "-f", "s16le", "-ac", "1", "pipe:1"], g722);
  const pcm = new Int16Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  return { g722, pcm };
}

ffmpegTest("G.722: speech encoded by ffmpeg decodes bit-exact with ffmpeg's decoder", async () => {
  const { g722, pcm } = await viaFfmpeg(["-f", "mulaw", "-ar", "16000", "-ac", "1", "-i", "pipe:0"], SPEECH);
  equal(g722.length, SPEECH.length / 2);
  const mine = new G722Decoder().decodeInt16(g722);
  equal(mine.length, pcm.length);
  let differ = 0;
  for (let i = 0; i < pcm.length; i++) if (mine[i] !== pcm[i]) differ++;
  equal(differ, 0);
  // Not trivially silent: the decode carries the speech.
  ok(pcm.reduce((m, v) => Math.max(m, Math.abs(v)), 0) > 4000);
});

ffmpegTest("G.722: a clipped sweep to 7 kHz over noise (saturation paths) is bit-exact too", async () => {
  const { g722, pcm } = await viaFfmpeg([
    "-f",
    "lavfi",
    "-i",
    // A sweep to 7 kHz over noise, driven past full scale (clipped).
    "aevalsrc=1.2*sin(2*PI*(50+1750*t)*t)+0.3*(random(0)-0.5):s=16000:d=2",
    "-t",
    "2",
    "-ar",
    "16000",
    "-ac",
    "1",
  ]);
  const mine = new G722Decoder().decodeInt16(g722);
  deepEqual(Array.from(mine), Array.from(pcm));
  ok(pcm.some((v) => v >= 32000) || pcm.some((v) => v <= -32000), "reaches full scale");
});

ffmpegTest(
  "G.722: state carries across packets; the stream decoder gives the same samples as one decode",
  async () => {
    const { g722, pcm } = await viaFfmpeg(
      ["-f", "mulaw", "-ar", "16000", "-ac", "1", "-i", "pipe:0"],
      SPEECH,
    );
    const fmt: AudioFormat = {
      envelope: "raw",
      path: "",
      encoding: "binary",
      codec: "g722",
      sample_rate: 16000,
      channels: 1,
      channel: 0,
      skip_bytes: 0,
    };
    // 20 ms RTP packets (160 bytes, 320 samples) against the whole stream in one message: the 8 kHz outputs are
    // identical only if the ADPCM and QMF state carries from packet to packet.
    const chunked = new StreamDecoder(fmt);
    const parts: Float32Array[] = [];
    for (let at = 0, i = 0; at < g722.length; at += 160, i++) {
      const o = chunked.push({ timeNs: BigInt(i) * 20_000_000n, payload: g722.subarray(at, at + 160) });
      ok(o.kind === "audio" && o.frames === 320);
      parts.push(o.samples.slice());
    }
    parts.push(chunked.finish().samples.slice());
    const one = new StreamDecoder(fmt);
    const o = one.push({ timeNs: 0n, payload: g722 });
    ok(o.kind === "audio");
    const whole = [...o.samples, ...one.finish().samples];
    const got = parts.flatMap((p) => [...p]);
    equal(chunked.timeline.nativeLength, pcm.length);
    equal(got.length, whole.length);
    deepEqual(got, whole);
    // And the 16 kHz samples are ffmpeg's.
    const direct = new G722Decoder().decode(g722, new Float32Array(g722.length * 2));
    for (let i = 0; i < pcm.length; i++) {
      if (Math.round(direct[i]! * 32768) !== pcm[i]) throw new Error(`sample ${i}`);
    }
  },
);

Deno.test("G.722: a wrong rate or channel count is a format error", () => {
  const base: AudioFormat = {
    envelope: "raw",
    path: "",
    encoding: "binary",
    codec: "g722",
    sample_rate: 8000,
    channels: 1,
    channel: 0,
    skip_bytes: 0,
  };
  let threw = false;
  try {
    new StreamDecoder(base);
  } catch (e) {
    threw = e instanceof RangeError && /g722/.test(e.message);
  }
  ok(threw);
});
