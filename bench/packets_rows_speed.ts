/**
 * The packet row source end to end as a sensor runs it: pcap frames → link/IP → RTP (reorder window) → rows for
 * a tap (codec named from the payload type), on 1,000 concurrent streams in memory. What `analyze` of a pcap and
 * the live source cost per packet before the audio engine.
 *   deno run --allow-read bench/packets_rows_speed.ts
 * @module
 */
import { PacketSource } from "../packets/packet_source.ts";
import { parseFrames } from "../packets/pcap.ts";
import { rtpTap } from "../tests/support/packet_build.ts";
import { syntheticCapture } from "./packets_rtp_speed.ts";

/** Figures of the run. */
export interface RowsSpeed {
  packets: number;
  rows: number;
  /** Frames to rows, best of 5, packets per second on one core. */
  packetsPerSec: number;
}

/** Measures frames → rows on `streams` streams of `perStream` packets. */
export function rtpRowsSpeed(streams = 1000, perStream = 250): RowsSpeed {
  const { frames } = parseFrames(syntheticCapture(streams, perStream));
  const tap = rtpTap();
  let best = Infinity;
  let rows = 0;
  for (let r = 0; r < 5; r++) {
    const src = new PacketSource({ taps: [tap], node: "bench" });
    const t0 = performance.now();
    let n = 0;
    for (const f of frames) n += src.push(f).length;
    n += src.finish().length;
    best = Math.min(best, performance.now() - t0);
    rows = n;
  }
  return { packets: frames.length, rows, packetsPerSec: Math.round(frames.length / (best / 1000)) };
}

if (import.meta.main) {
  const r = rtpRowsSpeed();
  console.log(
    `RTP pcap frames -> rows: ${r.packetsPerSec.toLocaleString("en")} packets/s per core ` +
      `(${r.packets} packets, ${r.rows} rows, 1,000 streams)`,
  );
}
