/**
 * Runs one node per capture file in one process over the in-process bus: the engine of `analyze` and `demo`.
 * @module
 */
import type { Config } from "../config/schema.ts";
import { type Capture, readCapture } from "../pixie/capture.ts";
import { replay, type ReplayOptions } from "../pixie/replay.ts";
import { InProcessBus } from "../bus/in_process.ts";
import { finishNodes, SensorNode } from "../actors/node.ts";
import { inProcessMatchFeed, type RecordSink } from "../actors/exporter.ts";
import type { FsmMetrics } from "../http/metrics.ts";
import { sensorMetrics } from "./sensor_metrics.ts";
import type { MatchRecord, SignatureRecord } from "../report/records.ts";
import { diagnose, renderDiagnosis, type RunFacts } from "../report/diagnosis.ts";
import type { Row } from "../pixie/row.ts";
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
      cap = (await isPacketCaptureFile(path))
        ? await readPacketCapture(path, config)
        : await readCapture(path);
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
    const m = sensorMetrics(config);
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
        matchFeed: inProcessMatchFeed(bus),
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

/** Every value of one counter over metrics sets. */
async function counterValues(
  metrics: Iterable<FsmMetrics>,
  name: string,
): Promise<{ labels: Record<string, string | number>; value: number }[]> {
  const out: { labels: Record<string, string | number>; value: number }[] = [];
  for (const m of metrics) {
    for (const metric of await m.registry.getMetricsAsJSON()) {
      if (metric.name !== name) continue;
      for (const v of metric.values) {
        out.push({ labels: v.labels as Record<string, string | number>, value: v.value });
      }
    }
  }
  return out;
}

/**
 * What a finished run counted, read from the nodes' metrics (the engine's own counters) and, when given, from the
 * records: the input of the end-of-run diagnosis (report/diagnosis.ts).
 */
export async function runFacts(
  configFile: string,
  metrics: Iterable<FsmMetrics>,
  records?: { signatures: readonly SignatureRecord[]; matches: readonly MatchRecord[] },
  malformedLines = 0,
): Promise<RunFacts> {
  const sets = [...metrics];
  const sum = async (name: string, key: (l: Record<string, string | number>) => string) => {
    const acc: Record<string, number> = {};
    for (const { labels, value } of await counterValues(sets, name)) {
      if (value > 0) acc[key(labels)] = (acc[key(labels)] ?? 0) + value;
    }
    return acc;
  };
  const decode = await sum(
    "fsmpx_payload_decode_errors_total",
    (l) => `${l["measurement"]}\u0000${l["stream"]}\u0000${l["reason"]}`,
  );
  const facts: RunFacts = {
    configFile,
    rowsByQuery: await sum("fsmpx_rows_read_total", (l) => String(l["query"])),
    decodeErrors: Object.entries(decode).map(([k, count]) => {
      const [measurement, stream, reason] = k.split("\u0000") as [string, string, string];
      return { measurement, stream, reason, count };
    }),
    truncatedByQuery: await sum("fsmpx_payloads_truncated_total", (l) => String(l["query"])),
    signaturesByMeasurement: await sum("signatures_detected_total", (l) => String(l["measurement"])),
    matchesByStage: await sum("signatures_matched_total", (l) => `${l["measurement"]}/${l["stage"]}`),
    malformedLines,
  };
  if (records) {
    const found = new Map<string, Set<string>>();
    for (const m of records.matches) {
      const q = `${m.measurement}/${m.stage}`;
      if (!found.has(q)) found.set(q, new Set());
      found.get(q)!.add(m.signature_id);
    }
    facts.matchedSignaturesByStage = Object.fromEntries([...found].map(([q, s]) => [q, s.size]));
    facts.signatureStreams = new Set(
      records.signatures.map((s) => `${s.measurement}\u0000${s.node}\u0000${s.stream}`),
    );
  }
  return facts;
}

/** The rows of each query across captures, for the diagnosis's examples and levels. */
export function rowsByQuery(caps: readonly Capture[]): (query: string) => readonly Row[] {
  let index: Map<string, Row[]> | undefined;
  return (query) => {
    if (!index) {
      index = new Map();
      for (const c of caps) {
        for (const r of c.rows) {
          let list = index.get(r.query);
          if (!list) index.set(r.query, list = []);
          list.push(r);
        }
      }
    }
    return index.get(query) ?? [];
  };
}

/**
 * The end-of-run explanation of a capture run as text: why there were no or few signatures or matches (decode
 * errors by reason with an example, queries no measurement names, silent sources, stages without matches).
 * Empty when there is nothing to say.
 */
export async function explainRun(
  config: Config,
  configFile: string,
  caps: readonly Capture[],
  result: CaptureRunResult,
): Promise<string> {
  const facts = await runFacts(configFile, result.metrics.values(), result, result.problems);
  return renderDiagnosis(diagnose(config, facts, { rowsOf: rowsByQuery(caps) }));
}
