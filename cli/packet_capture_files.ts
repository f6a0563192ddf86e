/**
 * pcap/pcapng files as captures: what `analyze`, `check`, `discover` and `run --capture` do with a file written
 * by `tcpdump -w`. The file's frames become rows for the config's `packets:` taps, exactly as a live sensor on
 * that node would have made them (without pod metadata: `pod` is the address).
 * @module
 */
import type { Config } from "../config/schema.ts";
import { type Capture, type CaptureProblem, nodeFromPath } from "../pixie/capture.ts";
import type { Row } from "../pixie/row.ts";
import { isPacketCapture, PacketSource } from "../packets/packet_source.ts";
import { PcapReader } from "../packets/pcap.ts";
import { logger } from "../util/log.ts";
import { packetTapsFromConfig } from "./packet_taps.ts";

const log = logger("packets");

/** Whether `path` starts like a pcap or pcapng file. */
export async function isPacketCaptureFile(path: string): Promise<boolean> {
  const f = await Deno.open(path, { read: true });
  try {
    const head = new Uint8Array(4);
    let n = 0;
    while (n < 4) {
      const r = await f.read(head.subarray(n));
      if (r === null) break;
      n += r;
    }
    return isPacketCapture(head.subarray(0, n));
  } finally {
    f.close();
  }
}

/** Reads a packet capture into a {@link Capture} of rows for the config's packet taps (all rows at once). */
export async function readPacketCapture(path: string, config: Config | undefined): Promise<Capture> {
  const stream = await openPacketCapture(path, config);
  const rows: Row[] = [];
  for await (const batch of stream.batches()) for (const r of batch) rows.push(r);
  return { file: path, node: stream.node, rows, problems: stream.problems };
}

/** A packet capture read as a stream of row batches (see {@link openPacketCapture}). */
export interface PacketCaptureStream {
  file: string;
  node: string;
  /** File size, bytes. */
  size: number;
  /** Bytes of frames read so far. */
  bytesRead(): number;
  /** Damage found so far (complete once the batches have ended). */
  problems: CaptureProblem[];
  batches(): AsyncGenerator<Row[]>;
}

/**
 * Opens a packet capture for streaming: frames are read and turned into rows as the consumer asks for them, and
 * handed on in batches, so memory does not depend on the file's size (the RTP reorder window and TCP reassembly
 * hold what they must). What was read and skipped is logged at the end, as {@link readPacketCapture} does.
 */
export async function openPacketCapture(
  path: string,
  config: Config | undefined,
  batchRows = 256,
): Promise<PacketCaptureStream> {
  const taps = config ? packetTapsFromConfig(config) : [];
  if (taps.length === 0) {
    throw new Error(
      "is a packet capture, but no measurement has a packets: tap (add packets: { protocol: rtp, port: ... } " +
        "to signature_rules or match_rules; see README 'Packet capture')",
    );
  }
  const node = nodeFromPath(path);
  const size = (await Deno.stat(path)).size;
  const problems: CaptureProblem[] = [];
  let bytes = 0;
  async function* batches(): AsyncGenerator<Row[]> {
    const file = await Deno.open(path, { read: true });
    const src = new PacketSource({ taps, node, reorderMs: config?.packets.reorder_ms });
    try {
      const reader = new PcapReader(file);
      let out: Row[] = [];
      for await (const frame of reader) {
        bytes += frame.data.length + 16;
        for (const r of src.push(frame)) out.push(r);
        if (out.length >= batchRows) {
          yield out;
          out = [];
        }
      }
      for (const r of src.finish()) out.push(r);
      if (out.length > 0) yield out;
      for (const p of reader.stats.problems) {
        problems.push({
          file: path,
          line: 0,
          reason: `${path}: ${p.reason} at byte ${p.offset} (${p.detail})`,
        });
      }
      const skips = src.skipReport();
      const skipped = Object.entries(skips).filter(([, n]) => n > 0);
      log.info("packet capture read", {
        file: path,
        frames: src.stats.frames,
        messages: src.stats.messages,
        rows: src.stats.rows,
        ...(skipped.length > 0 ? { skipped: Object.fromEntries(skipped) } : {}),
      });
    } finally {
      try {
        file.close();
      } catch { /* closed by the reader */ }
    }
  }
  return { file: path, node, size, bytesRead: () => bytes, problems, batches };
}
