/**
 * Runs one node per capture file in one process over the in-process bus: the engine of `analyze` and `demo`.
 * @module
 */
import type { Config } from "../config/schema.ts";
import { type Capture, readCapture } from "../pixie/capture.ts";
import { replay, type ReplayOptions } from "../pixie/replay.ts";
import { InProcessBus } from "../bus/in_process.ts";
import { finishNodes, SensorNode } from "../actors/node.ts";
import type { RecordSink } from "../actors/exporter.ts";
import { FsmMetrics } from "../http/metrics.ts";
import type { MatchRecord, SignatureRecord } from "../report/records.ts";
import { logger } from "../util/log.ts";
import { isPacketCaptureFile, readPacketCapture } from "./packet_capture_files.ts";

const log = logger("replay");

/** Everything a capture run produced. */
export interface CaptureRunResult {
  signatures: SignatureRecord[];
  matches: MatchRecord[];
  rows: number;
  /** Malformed capture lines (already logged). */
  problems: number;
  /** One metrics set per node, for a scrape after the run. */
  metrics: Map<string, FsmMetrics>;
}

/**
 * Reads capture files: JSON Lines captures, and pcap/pcapng packet captures (turned into rows for the config's
 * `packets:` taps; the node is the file name). Malformed lines and damaged records are logged and counted.
 */
export async function readCaptures(paths: readonly string[], config?: Config): Promise<Capture[]> {
  const caps: Capture[] = [];
  for (const path of paths) {
    let cap: Capture;
    try {
      cap = (await isPacketCaptureFile(path)) ? await readPacketCapture(path, config) : await readCapture(path);
    } catch (e) {
      throw new Error(`cannot read capture ${path}: ${(e as Error).message}`);
    }
    for (const p of cap.problems.slice(0, 20)) log.warn("malformed capture line skipped", { ...p });
    if (cap.problems.length > 20) {
      log.warn("more malformed capture lines skipped", { file: path, count: cap.problems.length - 20 });
    }
    caps.push(cap);
  }
  return caps;
}

/** Options of {@link runCaptures}. */
export interface CaptureRunOptions extends Pick<ReplayOptions, "speed" | "onProgress" | "signal"> {
  /** Extra sinks (e.g. `--out`, the demo's printout). */
  sinks?: readonly RecordSink[];
  /** Called once the nodes exist (e.g. to serve their metrics). */
  onNodes?: (nodes: Map<string, SensorNode>, metrics: Map<string, FsmMetrics>) => void;
}

/** Replays captures through one node per capture node name and collects every record. */
export async function runCaptures(config: Config, caps: readonly Capture[], opts: CaptureRunOptions = {}) {
  const bus = new InProcessBus();
  const signatures: SignatureRecord[] = [];
  const matches: MatchRecord[] = [];
  const collector: RecordSink = {
    signature: (r) => void signatures.push(r),
    match: (r) => void matches.push(r),
  };
  const byNode = new Map<string, Capture[]>();
  for (const c of caps) byNode.set(c.node, [...(byNode.get(c.node) ?? []), c]);
  const nodes = new Map<string, SensorNode>();
  const metrics = new Map<string, FsmMetrics>();
  for (const name of byNode.keys()) {
    const m = new FsmMetrics({
      exemplars: config.metrics.exemplars,
      lastSeries: config.metrics.latency_last_series,
      lastTtlMs: config.metrics.latency_last_ttl_seconds * 1000,
    });
    metrics.set(name, m);
    nodes.set(
      name,
      await SensorNode.start({
        config,
        node: name,
        bus,
        metrics: m,
        sinks: [collector, ...(opts.sinks ?? [])],
        mode: "replay",
      }),
    );
  }
  opts.onNodes?.(nodes, metrics);
  const inputs = [...byNode].map(([node, cs]) => ({ node, rows: cs.flatMap((c) => c.rows) }));
  const rows = await replay(inputs, async (node, row) => {
    await nodes.get(node)!.ingest(row);
  }, { speed: opts.speed, onProgress: opts.onProgress, signal: opts.signal });
  await finishNodes([...nodes.values()], bus);
  for (const n of nodes.values()) {
    const t = await n.shutdown(30_000, "capture finished");
    if (t.code !== 0) throw new Error(`node ${n.name} ended with code ${t.code}: ${t.reason}`);
  }
  const problems = caps.reduce((a, c) => a + c.problems.length, 0);
  return { signatures, matches, rows, problems, metrics } satisfies CaptureRunResult;
}

/** Stage order per measurement as configured (the waterfall's columns). */
export function stageOrder(config: Config): Record<string, string[]> {
  return Object.fromEntries(config.measurements.map((m) => [m.name, m.match_rules.map((r) => r.stage)]));
}
