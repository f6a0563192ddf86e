/**
 * `record`: runs the configured queries against the live cluster and writes a capture file, so a user can record
 * once in the cluster and analyze or replay offline.
 *
 * A recording without rows is a failure (exit 1), never a silent empty file: the end of the run says why as far
 * as it can tell (Pixie unreachable or refusing the stream, with its last error; TLS; or a stream that was up but
 * matched nothing) and what was asked (the config file, each query with its table, payload column and node
 * scope), with what to try next.
 * @module
 */
import { packetTapsFromConfig } from "./packet_taps.ts";
import { CombinedRowSource, type PacketSide, packetSide } from "./sensor_sources.ts";
import { sensorMetrics } from "./sensor_metrics.ts";
import { ConfigError } from "../config/errors.ts";
import { EXIT_FAILURE, EXIT_OK, optString, type ParsedArgs, parseDurationMs, UsageError } from "./command.ts";
import { loadCommandConfig } from "./common.ts";
import type { Config } from "../config/schema.ts";
import { CaptureWriter } from "../pixie/capture.ts";
import { connectPixie, queriesFromConfig } from "./pixie_queries.ts";
import { PixieRowSource } from "../pixie/live_source.ts";
import type { ComposedQueryInput } from "../pixie/pxl.ts";
import { checkStreamFilter } from "../pixie/pxl_check.ts";
import { setLongTimeout } from "../util/long_timeout.ts";
import { DrainStop } from "../util/drain_stop.ts";
import { logger, redact, setLogSink } from "../util/log.ts";

const log = logger("record");

/** What the stream did while recording, for the end-of-run explanation. */
interface StreamTrace {
  /** Times the stream dropped (each is followed by a re-run). */
  drops: number;
  /** The last drop's error (redacted), if any. */
  lastDrop?: string;
  /** Batches skipped, by kind (decode, decrypt, unknown_table, status). */
  skipped: Record<string, number>;
}

/** Where the queries go, in words. */
function target(config: Config): string {
  const p = config.pixie;
  return p.direct_addr !== ""
    ? `the standalone PEM at ${p.direct_addr}`
    : `Pixie Cloud ${p.cloud_addr}, cluster ${p.cluster || "(none set)"}`;
}

/** One line per query: name, table, payload column, node scope. */
function describeQueries(queries: readonly ComposedQueryInput[]): string[] {
  return queries.map((q) => {
    const table = checkStreamFilter(q.streamFilter).table ?? "an unknown table";
    return `  ${q.name}: ${table}, payload column ${q.columns.payload}, rows of node '${q.node}'`;
  });
}

/** Why a connection failed, and what to try. */
function connectHints(e: unknown, config: Config): string[] {
  const text = String(e instanceof Error ? e.message : e);
  const hints: string[] = [];
  if (/certificate|ssl|tls|handshake|self.signed/i.test(text)) {
    hints.push("TLS failed: for a self-hosted cloud set pixie.ca_file to its CA bundle (PEM)");
  }
  if (/UNAUTHENTICATED|PERMISSION_DENIED|api.?key|auth/i.test(text)) {
    hints.push(
      "the API key was refused: check PIXIE_API_KEY (px api-key create) and that it can see the cluster",
    );
  }
  if (
    /UNAVAILABLE|ECONNREFUSED|ENOTFOUND|getaddrinfo|connect|No connection established|DEADLINE/i.test(text)
  ) {
    hints.push(
      config.pixie.direct_addr !== ""
        ? `nothing answers at ${config.pixie.direct_addr}: is the standalone PEM running with port 12345 reachable?`
        : `Pixie Cloud did not answer at ${config.pixie.cloud_addr}: check the address and this node's egress`,
    );
  }
  return hints;
}

/** The explanation of a recording that got no rows. */
function zeroRowReport(
  config: Config,
  file: string,
  queries: readonly ComposedQueryInput[],
  trace: StreamTrace,
  durationText: string,
): string[] {
  const lines = [
    `record: 0 rows in ${durationText} from ${target(config)}: nothing was recorded`,
    `  config: ${file}`,
    "  queries:",
    ...describeQueries(queries).map((l) => `  ${l}`),
  ];
  const skipped = Object.entries(trace.skipped);
  if (trace.drops > 0) {
    lines.push(`  the stream dropped ${trace.drops} time(s): Pixie was unreachable or refused the query`);
    if (trace.lastDrop) lines.push(`  last drop: ${trace.lastDrop}`);
    for (const h of connectHints(trace.lastDrop ?? "", config)) lines.push(`  - ${h}`);
  } else if (skipped.length > 0) {
    lines.push(`  batches arrived but were skipped: ${skipped.map(([k, v]) => `${k} ${v}`).join(", ")}`);
    if (trace.skipped["decrypt"]) {
      lines.push("  - set pixie.encryption: false to rule out end-to-end encryption");
    }
  } else {
    lines.push("  the stream was up, but no row matched the filters in that time:");
  }
  lines.push(
    `  - check the filters and see the exact script without Pixie: deno task check --config ${file}`,
    config.pixie.direct_addr !== ""
      ? "  - a standalone PEM sees only its own node and has no pod metadata: filter on ports, paths or " +
        "addresses, and check the PEM sees the traffic at all"
      : `  - rows are scoped to df.ctx['node'] == '${queries[0]?.node ?? config.node}': that must be the ` +
        "Kubernetes node name ($NODE_NAME from spec.nodeName in the DaemonSet)",
    "  - the traffic must flow while recording, over a protocol Pixie traces with bodies (HTTP/1, NATS, Redis); " +
      "see README 'Will fsm-px see my audio?'",
    "  - widen a filter (drop the pod condition) to see whether the table has rows at all",
  );
  return lines;
}

/** The `error` field of a (JSON) log line, else the line. */
function dropError(line: string): string {
  try {
    const parsed = JSON.parse(line) as { error?: unknown };
    if (typeof parsed.error === "string") return parsed.error;
  } catch {
    // Not JSON: keep the line as it is.
  }
  return line.trim();
}

/**
 * Signals that end a recording as its duration does, the file whole and the run reported: SIGINT, and SIGTERM
 * (kill, timeout, a pod's end), which killed the process before, mid-line at times (Windows has no SIGTERM).
 */
const STOP_SIGNALS: readonly Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];

/** Calls `stop` on a {@link STOP_SIGNALS} signal until the function returned is called. */
function onStopSignals(stop: () => void): () => void {
  for (const s of STOP_SIGNALS) Deno.addSignalListener(s, stop);
  return () => {
    for (const s of STOP_SIGNALS) Deno.removeSignalListener(s, stop);
  };
}

/**
 * Ends a recording at its duration or a stop signal: the live packet capture hands on what it still holds (the
 * packets of the kernel's last block, the RTP reorder windows, messages in progress), as `run` does at its stop;
 * a plain abort lost the last ~100 ms of packets sent before the stop. The N-th row of `--max-rows` ends it at once.
 */
function endRecording(ac: AbortController): void {
  ac.abort(new DrainStop("record: duration reached or stopped; hand on what the capture holds"));
}

/** Runs `record`. */
export async function recordCommand(args: ParsedArgs): Promise<number> {
  const out = optString(args, "out");
  if (!out) throw new UsageError("--out FILE is required");
  const durationText = optString(args, "duration") ?? "60s";
  const durationMs = parseDurationMs(durationText, "--duration");
  const maxRowsText = optString(args, "max-rows");
  const maxRows = maxRowsText === undefined ? Infinity : Number(maxRowsText);
  if (!(maxRows > 0) || (maxRowsText !== undefined && !Number.isInteger(maxRows))) {
    throw new UsageError(`--max-rows expects a positive integer, got "${maxRowsText}"`);
  }
  const { config, file } = await loadCommandConfig(args);
  const queries = queriesFromConfig(config, config.node);
  // Packet taps record from the node's own packets (packets.interface), beside Pixie's queries.
  const packets = packetTapsFromConfig(config).length > 0 && config.packets.interface !== ""
    ? await packetSide(config, sensorMetrics(config))
    : undefined;
  if (queries.length === 0 && !packets) {
    throw new UsageError(
      `${file} has no Pixie queries and no live packet capture (every tap is a packet tap, and ` +
        "packets.interface is empty): nothing to record; set packets.interface (e.g. any) to record packets",
    );
  }
  log.warn("captures contain audio payloads: store and share them like call recordings", { out });
  if (queries.length === 0) return await recordPackets(packets!, out, durationMs, maxRows, config.node);

  let connected;
  try {
    connected = await connectPixie(config);
  } catch (e) {
    // A setting the connection cannot do without is a configuration error (exit 2, at file:line:col).
    if (e instanceof ConfigError) throw e;
    const lines = [
      `record: cannot reach ${target(config)}: ${redact(e instanceof Error ? e.message : String(e))}`,
      `  config: ${file}`,
      ...connectHints(e, config).map((h) => `  - ${h}`),
    ];
    console.error(lines.join("\n"));
    return EXIT_FAILURE;
  }
  const { client, clusterId } = connected;
  const writer = await CaptureWriter.create(out, config.node);
  const ac = new AbortController();
  const stop = () => ac.abort();
  const cancelTimer = setLongTimeout(() => endRecording(ac), durationMs);
  const unlisten = onStopSignals(() => endRecording(ac));
  const perQuery = new Map<string, number>();
  const trace: StreamTrace = { drops: 0, skipped: {} };
  // The stream logs each drop with its error; count them and keep the last error for the end of the run.
  const previousSink = setLogSink((line) => {
    if (line.includes("pixie stream dropped")) {
      trace.drops++;
      trace.lastDrop = dropError(line);
    }
    previousSink(line);
  });
  try {
    const source = new PixieRowSource({
      client,
      clusterId,
      queries,
      encryption: config.pixie.encryption && client.cloud,
      metrics: {
        errors: (_query, kind) => void (trace.skipped[kind] = (trace.skipped[kind] ?? 0) + 1),
      },
    });
    const both = packets ? new CombinedRowSource([source, packets.source]) : source;
    await both.run(async (row) => {
      if (writer.rows >= maxRows) return stop();
      await writer.write(row);
      perQuery.set(row.query, (perQuery.get(row.query) ?? 0) + 1);
      // The N-th row ends the recording now, not when a row after it comes (traffic may have stopped).
      if (writer.rows >= maxRows) stop();
    }, ac.signal).catch((e) => {
      if (!ac.signal.aborted) throw e;
    });
  } finally {
    setLogSink(previousSink);
    cancelTimer();
    unlisten();
    await writer.close();
    client.close();
    await packets?.stop();
  }
  if (writer.rows === 0) {
    console.error(zeroRowReport(config, file, queries, trace, durationText).join("\n"));
    return EXIT_FAILURE;
  }
  log.info("capture written", { out, rows: writer.rows, queries: Object.fromEntries(perQuery) });
  const silent = queries.filter((q) => !perQuery.has(q.name)).map((q) => q.name);
  if (silent.length > 0) log.warn("queries without rows", { queries: silent.join(", ") });
  console.error(
    `record: ${writer.rows} rows written to ${out}; see what they decode to with: ` +
      `deno task check --config ${file} ${out}`,
  );
  return EXIT_OK;
}

/** `record` of packet taps only: the node's own packets, as rows in the capture format `analyze` reads. */
async function recordPackets(
  packets: PacketSide,
  out: string,
  durationMs: number,
  maxRows: number,
  node: string,
): Promise<number> {
  const writer = await CaptureWriter.create(out, node);
  const ac = new AbortController();
  const stop = () => ac.abort();
  const cancelTimer = setLongTimeout(() => endRecording(ac), durationMs);
  const unlisten = onStopSignals(() => endRecording(ac));
  const perQuery = new Map<string, number>();
  let failure: string | undefined;
  try {
    await packets.source.run(async (row) => {
      if (writer.rows >= maxRows) return stop();
      await writer.write(row);
      perQuery.set(row.query, (perQuery.get(row.query) ?? 0) + 1);
      // The N-th row ends the recording now, not when a row after it comes (traffic may have stopped).
      if (writer.rows >= maxRows) stop();
    }, ac.signal).catch((e) => {
      if (!ac.signal.aborted) failure = (e as Error).message;
    });
  } finally {
    cancelTimer();
    unlisten();
    await writer.close();
    await packets.stop();
  }
  const seen = packets.source.source;
  if (failure !== undefined || writer.rows === 0) {
    const skips = Object.entries(seen?.skipReport() ?? {}).filter(([, n]) => n > 0);
    console.error(
      [
        failure ? `record: live capture failed: ${failure}` : `record: 0 rows from the node's packets`,
        `  packets read: ${seen?.stats.frames ?? 0}, application messages: ${seen?.stats.messages ?? 0}`,
        ...(skips.length > 0 ? [`  skipped: ${skips.map(([r, n]) => `${r} ${n}`).join(", ")}`] : []),
        "  - check the taps' protocols and ports against the traffic: deno task discover on a tcpdump file",
      ].join("\n"),
    );
    return EXIT_FAILURE;
  }
  log.info("capture written", { out, rows: writer.rows, queries: Object.fromEntries(perQuery) });
  return EXIT_OK;
}
