/**
 * pcap/pcapng files as captures: what `analyze`, `check`, `discover` and `run --capture` do with a file written
 * by `tcpdump -w`. The file's frames become rows for the config's `packets:` taps, exactly as a live sensor on
 * that node would have made them (without pod metadata: `pod` is the address).
 * @module
 */
import type { Config } from "../config/schema.ts";
import { type Capture, nodeFromPath } from "../pixie/capture.ts";
import { isPacketCapture, readPacketFile } from "../packets/packet_source.ts";
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

/** Reads a packet capture into a {@link Capture} of rows for the config's packet taps. */
export async function readPacketCapture(path: string, config: Config | undefined): Promise<Capture> {
  const taps = config ? packetTapsFromConfig(config) : [];
  if (taps.length === 0) {
    throw new Error(
      "is a packet capture, but no measurement has a packets: tap (add packets: { protocol: rtp, port: ... } " +
        "to signature_rules or match_rules; see README 'Packet capture')",
    );
  }
  const node = nodeFromPath(path);
  const res = await readPacketFile(path, { taps, node, reorderMs: config?.packets.reorder_ms });
  const skipped = Object.entries(res.skips).filter(([, n]) => n > 0);
  log.info("packet capture read", {
    file: path,
    frames: res.stats.frames,
    messages: res.stats.messages,
    rows: res.rows.length,
    ...(skipped.length > 0 ? { skipped: Object.fromEntries(skipped) } : {}),
  });
  return {
    file: path,
    node,
    rows: res.rows,
    problems: res.problems.map((reason) => ({ file: path, line: 0, reason })),
  };
}
