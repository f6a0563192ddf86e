/**
 * Stateful codec decode speed, as multiples of real time on one core: G.722 (audio/decode/g722.ts) and Opus (libopus
 * in WebAssembly, `opus-decoder`), each alone and through the StreamDecoder as RTP packets (20 ms, media clock,
 * resampled to the 8 kHz analysis rate). Input: the speech fixture looped, encoded by ffmpeg's G.722 and libopus
 * encoders. Timings are printed, never asserted.
 *
 *   deno run --allow-read --allow-run=ffmpeg bench/codec_speed.ts [seconds_of_audio=60]
 * @module
 */

import { G722Decoder } from "../audio/decode/g722.ts";
import { initOpus, OpusStreamDecoder } from "../audio/decode/opus.ts";
import { StreamDecoder } from "../audio/decode/stream_decoder.ts";
import type { AudioFormat } from "../audio/types.ts";

const SPEECH = new URL("../fixtures/audio_fp/speech_8k.ul", import.meta.url);

/** Runs ffmpeg with `args`, returns its stdout; throws with its stderr on failure. */
export async function ffmpegOut(args: string[], input?: Uint8Array): Promise<Uint8Array> {
  const p = new Deno.Command("ffmpeg", {
    args: ["-hide_banner", "-loglevel", "error", ...args],
    stdin: input ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (input) {
    const w = p.stdin.getWriter();
    await w.write(input);
    await w.close();
  }
  const out = await p.output();
  if (!out.success) throw new Error(`ffmpeg failed: ${new TextDecoder().decode(out.stderr)}`);
  return out.stdout;
}

/** The packets of an Ogg stream (RFC 3533 lacing), headers included, in order. */
export function oggPackets(b: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let cur: Uint8Array[] = [];
  let at = 0;
  while (at + 27 <= b.length) {
    const segments = b[at + 26]!;
    let p = at + 27 + segments;
    for (let i = 0; i < segments; i++) {
      const len = b[at + 27 + i]!;
      cur.push(b.subarray(p, p + len));
      p += len;
      if (len < 255) {
        const total = cur.reduce((n, c) => n + c.length, 0);
        const pkt = new Uint8Array(total);
        let o = 0;
        for (const c of cur) {
          pkt.set(c, o);
          o += c.length;
        }
        out.push(pkt);
        cur = [];
      }
    }
    at = p;
  }
  return out;
}

/**
 * Opus packets (20 ms, 48 kHz, mono, `kbps`) of the speech fixture looped to `seconds`, from ffmpeg's libopus
 * encoder: what an RTP sender puts in each packet.
 */
export async function speechOpusPackets(seconds: number, kbps = 24): Promise<Uint8Array[]> {
  const ogg = await ffmpegOut([
    ...["-stream_loop", "-1", "-f", "mulaw", "-ar", "8000", "-ac", "1", "-i", SPEECH.pathname],
    ...[
      "-t",
      String(seconds),
      "-ar",
      "48000",
      "-c:a",
      "libopus",
      "-b:a",
      `${kbps}k`,
      "-frame_duration",
      "20",
    ],
    ...["-f", "ogg", "pipe:1"],
  ]);
  return oggPackets(ogg).slice(2); // OpusHead, OpusTags
}

/** G.722 bytes of the speech fixture looped to `seconds`, from ffmpeg's encoder. */
export async function speechG722(seconds: number): Promise<Uint8Array> {
  return await ffmpegOut([
    ...["-stream_loop", "-1", "-f", "mulaw", "-ar", "8000", "-ac", "1", "-i", SPEECH.pathname],
    ...["-t", String(seconds), "-ar", "16000", "-c:a", "g722", "-f", "g722", "pipe:1"],
  ]);
}

function best(runs: number, f: () => void): number {
  let min = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    f();
    min = Math.min(min, (performance.now() - t0) / 1000);
  }
  return min;
}

function rtpFormat(codec: "g722" | "opus", rate: number): AudioFormat {
  return {
    envelope: "raw",
    path: "",
    encoding: "binary",
    codec,
    sample_rate: rate,
    channels: 1,
    channel: 0,
    skip_bytes: 0,
  };
}

/** Figures of {@link codecSpeed}: multiples of real time on one core. */
export interface CodecSpeed {
  seconds: number;
  g722Decode: number;
  g722Stream: number;
  opus48kDecode: number;
  opus8kDecode: number;
  opus48kStream: number;
  opus8kStream: number;
}

/** Measures G.722 and Opus decoding on `seconds` of speech (best of 3 runs each). */
export async function codecSpeed(seconds = 60): Promise<CodecSpeed> {
  const g722 = await speechG722(seconds);
  const packets = await speechOpusPackets(seconds);
  await initOpus(48000, 1);
  await initOpus(8000, 1);
  const out = new Float32Array(g722.length * 2);
  const g722Decode = seconds / best(3, () => new G722Decoder().decode(g722, out));
  const stream = (fmt: AudioFormat, payloads: Uint8Array[], ticks: number): number =>
    seconds /
    best(3, () => {
      const d = new StreamDecoder(fmt);
      let ts = 0;
      let t = 1_700_000_000_000_000_000n;
      for (const payload of payloads) {
        d.push({ timeNs: t, payload, mediaClock: { ts, clockRate: fmt.codec === "g722" ? 8000 : 48000 } });
        ts = (ts + ticks) >>> 0;
        t += 20_000_000n;
      }
      d.finish();
    });
  const g722Packets: Uint8Array[] = [];
  for (let at = 0; at < g722.length; at += 160) g722Packets.push(g722.subarray(at, at + 160));
  const g722Stream = stream(rtpFormat("g722", 16000), g722Packets, 160);
  const opusDecode = (rate: number) =>
    seconds /
    best(3, () => {
      const d = new OpusStreamDecoder(rate, 1);
      for (const p of packets) d.decode(p);
      d.free();
    });
  // A fresh decoder may still be instantiating: give the pool a turn before timing.
  await new Promise((r) => setTimeout(r, 50));
  const opus48kDecode = opusDecode(48000);
  await new Promise((r) => setTimeout(r, 50));
  const opus8kDecode = opusDecode(8000);
  await new Promise((r) => setTimeout(r, 50));
  const opus48kStream = stream(rtpFormat("opus", 48000), packets, 960);
  await new Promise((r) => setTimeout(r, 50));
  const opus8kStream = stream(rtpFormat("opus", 8000), packets, 960);
  return { seconds, g722Decode, g722Stream, opus48kDecode, opus8kDecode, opus48kStream, opus8kStream };
}

if (import.meta.main) {
  const r = await codecSpeed(Number(Deno.args[0] ?? 60));
  const x = (v: number) => `${v.toFixed(0)}x real time`;
  console.log(`G.722 decode (16 kHz out): ${x(r.g722Decode)}`);
  console.log(`G.722 RTP 20 ms through StreamDecoder (to 8 kHz): ${x(r.g722Stream)}`);
  console.log(`Opus decode at 48 kHz: ${x(r.opus48kDecode)}`);
  console.log(`Opus decode at 8 kHz: ${x(r.opus8kDecode)}`);
  console.log(`Opus RTP 20 ms through StreamDecoder, decoded at 48 kHz: ${x(r.opus48kStream)}`);
  console.log(`Opus RTP 20 ms through StreamDecoder, decoded at 8 kHz: ${x(r.opus8kStream)}`);
}
