/**
 * RTP packet path speed: packets per second on one core from pcap bytes to RTP {@link AppMessage}s (pcap parse,
 * link/IP/UDP decode, RTP classification, stream naming, reorder window), on a synthetic in-memory capture of
 * 1,000 concurrent streams (20 ms μ-law packets, Ethernet/IPv4, 1% of packets swapped with their neighbour so the
 * window works). Also the stages alone. Timings are printed, never asserted. Target: ≥ 200,000 packets/s.
 *
 *   deno run --allow-read bench/packets_rtp_speed.ts [streams=1000] [packets_per_stream=250]
 * @module
 */

import { parseFrames, PcapReader } from "../packets/pcap.ts";
import { pcapFile } from "../packets/pcap_writer.ts";
import { RtpSource } from "../packets/rtp_source.ts";
import { FrameDecoder } from "../packets/ip.ts";
import { type Frame, LinkType } from "../packets/types.ts";

/** Figures of one run. */
export interface RtpSpeed {
  streams: number;
  packets: number;
  captureBytes: number;
  /** Whole path, pcap bytes (streamed in 256 KiB chunks, `PcapReader.batches()`) to messages. */
  endToEndPps: number;
  /** Frames already in memory to messages (decode + RTP + window). */
  framesToMessagesPps: number;
  /** pcap parsing alone. */
  pcapPps: number;
  /** Link + IP + UDP decoding alone (no strings). */
  decodePps: number;
  messages: number;
  lost: number;
}

/** Builds the synthetic capture: `streams` flows, `perStream` packets each, interleaved as they would arrive. */
export function syntheticCapture(streams: number, perStream: number): Uint8Array {
  const frames: Frame[] = [];
  const payload = new Uint8Array(160).fill(0xff);
  const t0 = 1_700_000_000_000_000_000n;
  for (let k = 0; k < perStream; k++) {
    const batch: Frame[] = [];
    for (let s = 0; s < streams; s++) {
      const data = new Uint8Array(14 + 20 + 8 + 12 + 160);
      const v = new DataView(data.buffer);
      v.setUint16(12, 0x0800);
      // IPv4: 10.x.y.z -> 10.200.0.1, UDP 10000+2s -> 40000+2s.
      data.set([0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0], 14);
      v.setUint16(16, 20 + 8 + 12 + 160);
      data.set([10, (s >> 16) & 0xff, (s >> 8) & 0xff, s & 0xff, 10, 200, 0, 1], 26);
      v.setUint16(34, 10000 + 2 * (s % 20000));
      v.setUint16(36, 40000 + 2 * (s % 10000));
      v.setUint16(38, 8 + 12 + 160);
      // RTP: version 2, PCMU, sequence, timestamp, SSRC.
      data[42] = 0x80;
      v.setUint16(44, (s * 7 + k) & 0xffff);
      v.setUint32(46, (s * 12345 + k * 160) >>> 0);
      v.setUint32(50, (0x10000000 + s) >>> 0);
      data.set(payload, 54);
      const timeNs = t0 + BigInt(k) * 20_000_000n + BigInt(s) * 20_000n;
      batch.push({ timeNs, linkType: LinkType.ETHERNET, data, origLen: data.length, iface: 0 });
    }
    frames.push(...batch);
  }
  // 1% reordering: swap the payload slots of neighbouring frames of the same stream (a stream's next packet is
  // `streams` frames later), keeping times monotonic.
  for (let i = 0; i + streams < frames.length; i += 97) {
    const a = frames[i]!, b = frames[i + streams]!;
    const d = a.data;
    a.data = b.data;
    b.data = d;
  }
  return pcapFile(LinkType.ETHERNET, frames, { nanosecond: true });
}

function chunks(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.subarray(at, at + size));
      at += size;
    },
  });
}

function best<T>(runs: number, fn: () => T): { secs: number; value: T } {
  let min = Infinity;
  let value!: T;
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    value = fn();
    min = Math.min(min, performance.now() - t0);
  }
  return { secs: min / 1000, value };
}

/** Runs the benchmark and returns its figures. */
export async function rtpSpeed(streams = 1000, perStream = 250): Promise<RtpSpeed> {
  const capture = syntheticCapture(streams, perStream);
  const packets = streams * perStream;
  const { frames } = parseFrames(capture);

  const pcap = best(5, () => parseFrames(capture).frames.length);
  const decode = best(5, () => {
    const d = new FrameDecoder();
    let n = 0;
    for (const f of frames) if (d.decodeView(f)) n++;
    return n;
  });
  const f2m = best(5, () => {
    let n = 0;
    const src = new RtpSource(() => n++);
    for (const f of frames) src.pushFrame(f);
    src.flush();
    return { n, lost: src.jitter.stats.lost };
  });

  // End to end through the async reader, best of 3.
  let e2e = Infinity;
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    let n = 0;
    const src = new RtpSource(() => n++);
    for await (const batch of new PcapReader(chunks(capture, 256 * 1024)).batches()) {
      for (const f of batch) src.pushFrame(f);
    }
    src.flush();
    e2e = Math.min(e2e, (performance.now() - t0) / 1000);
    if (n !== f2m.value.n) throw new Error(`end-to-end emitted ${n}, in-memory ${f2m.value.n}`);
  }

  return {
    streams,
    packets,
    captureBytes: capture.length,
    endToEndPps: Math.round(packets / e2e),
    framesToMessagesPps: Math.round(packets / f2m.secs),
    pcapPps: Math.round(packets / pcap.secs),
    decodePps: Math.round(packets / decode.secs),
    messages: f2m.value.n,
    lost: f2m.value.lost,
  };
}

if (import.meta.main) {
  const streams = Number(Deno.args[0] ?? 1000);
  const per = Number(Deno.args[1] ?? 250);
  const r = await rtpSpeed(streams, per);
  const f = (n: number) => n.toLocaleString("en-US");
  console.log(
    `RTP packet path, ${f(r.streams)} concurrent streams, ${f(r.packets)} packets (${
      (r.captureBytes / 1e6).toFixed(1)
    } MB pcap), one core:`,
  );
  console.log(`  pcap bytes -> RTP messages (streamed reader): ${f(r.endToEndPps)} packets/s`);
  console.log(`  frames -> RTP messages (decode + RTP + window): ${f(r.framesToMessagesPps)} packets/s`);
  console.log(`  pcap parsing alone:                           ${f(r.pcapPps)} packets/s`);
  console.log(`  link/IP/UDP decoding alone:                   ${f(r.decodePps)} packets/s`);
  console.log(`  messages ${f(r.messages)}, declared lost ${f(r.lost)} (reordering only: expect 0)`);
}
