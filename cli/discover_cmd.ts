/**
 * `discover`: answers a new user's first question, "will fsm-px see my audio, and how do I configure it?". It
 * reads a sample of message bodies (from capture files, or live from Pixie's tables that carry bodies on this
 * node), groups them by where they come from, guesses how each group carries audio (audio/decode/payload_guess.ts) and
 * prints a ready-to-paste config snippet for each group that looks like audio.
 *
 * Rows reach the analysis through {@link discoverFromRows}, which takes any async iterable of rows: captures and
 * the live Pixie tables use it here, and a packet-capture reader can feed it the same way.
 * @module
 */
import { discoverPacketFile, renderPacketDiscovery } from "./discover_packets.ts";
import { isPacketCaptureFile } from "./packet_capture_files.ts";
import { EXIT_FAILURE, EXIT_OK, optString, type ParsedArgs, parseDurationMs, UsageError } from "./command.ts";
import { loadCommandConfig } from "./common.ts";
import { readCaptures } from "./capture_run.ts";
import type { Config } from "../config/schema.ts";
import { cellBytes, cellText, parseQueryName, type Row, SOURCE_TAP } from "../pixie/row.ts";
import { guessPayloadFormat, type PayloadGuess, type PayloadSample } from "../audio/decode/payload_guess.ts";
import type { AudioFormat } from "../audio/types.ts";
import type { ComposedQueryInput } from "../pixie/pxl.ts";
import { audioDiff } from "../report/diagnosis.ts";
import { setLongTimeout } from "../util/long_timeout.ts";
import { logger } from "../util/log.ts";
import { groupDigits } from "../util/group_digits.ts";
import { terminalText } from "../util/printable.ts";

const log = logger("discover");

/** A Pixie table that carries message bodies, with its body column and what tells its messages apart. */
export interface BodyTable {
  table: string;
  /** Column holding the body. */
  payload: string;
  /** Column with the original body size, when the table has one. */
  bodySize?: string;
  /** Column that splits one pod's traffic into kinds (HTTP path, NATS command, Redis command). */
  kind?: string;
  /** Columns that tell connections apart. */
  connection: readonly string[];
}

/** The tables whose bodies can hold audio (see README "Will fsm-px see my audio?"). */
export const BODY_TABLES: readonly BodyTable[] = [
  {
    table: "http_events",
    payload: "req_body",
    bodySize: "req_body_size",
    kind: "req_path",
    connection: ["remote_addr", "remote_port"],
  },
  { table: "nats_events.beta", payload: "body", kind: "cmd", connection: ["remote_addr", "remote_port"] },
  { table: "redis_events", payload: "req_args", kind: "req_cmd", connection: ["remote_addr", "remote_port"] },
];

/** Body columns tried, in order, for rows whose table is not known. */
const BODY_COLUMNS = ["req_body", "body", "req_args", "payload", "data", "resp_body", "req_msg", "msg"];

/** One group of rows (a query or table, a pod, a kind) and what its bodies look like. */
export interface DiscoveredStream {
  /** Query name of the rows (`<measurement>/<tap>` in captures, `discover/<table>` live). */
  query: string;
  /** Pixie table, when known. */
  table?: string;
  /** The first pod seen; `pods` lists the replicas grouped with it (up to 16). */
  pod: string;
  pods: string[];
  /** The value of the table's kind column (HTTP path...), when the rows split by it. */
  kind?: { column: string; value: string };
  payloadColumn: string;
  bodySizeColumn?: string;
  /** Columns that tell connections apart, when the rows have them. */
  connectionColumns: string[];
  /** `local_port` values seen (up to 8), for filters where there are no pods (standalone PEM). */
  localPorts: string[];
  rows: number;
  guess: PayloadGuess;
  /** The `audio` section to paste, when the bodies look like audio. */
  audio?: AudioFormat;
  /** A whole config (one measurement with this stream as its source), ready to paste. */
  snippet?: string;
  /** Where the configured `audio` of this query differs from the guess (captures with --config). */
  configDiffers?: string[];
}

/** What {@link discoverFromRows} found. */
export interface DiscoveryReport {
  rows: number;
  /** Groups, audio first, then by rows. */
  streams: DiscoveredStream[];
  /** Rows per query name. */
  queries: Record<string, number>;
  /** Rows skipped because no body column was found. */
  withoutBody: number;
  /** More groups than {@link DiscoverOptions.maxGroups}: their rows were counted, not examined. */
  groupsDropped: number;
}

/** Options of {@link discoverFromRows}. */
export interface DiscoverOptions {
  /** Body column of a row; default: the configured column of its query, else a well-known body column. */
  payloadColumn?: (row: Row) => string | undefined;
  /** Pixie table of a row, when known (live: from the query name). */
  tableOf?: (row: Row) => BodyTable | undefined;
  /** A loaded config: its columns are used, and its `audio` is compared with the guess. */
  config?: Config;
  /** Messages kept per group (default 2000). */
  maxPerGroup?: number;
  /** Most groups examined (default 200). */
  maxGroups?: number;
  /** Snippet flavour: captures keep the capture's measurement names; live names measurements after pods. */
  origin?: "capture" | "live";
}

interface Group {
  query: string;
  pod: string;
  table?: BodyTable;
  kind?: { column: string; value: string };
  payloadColumn: string;
  bodySizeColumn?: string;
  connection: Set<string>;
  pods: Set<string>;
  localPorts: Set<string>;
  rows: number;
  samples: PayloadSample[];
}

/** The configured tap (signature_rules or a match rule) of a query name, if the config has one. */
function configuredTap(config: Config | undefined, query: string) {
  const q = parseQueryName(query);
  const m = q && config?.measurements.find((x) => x.name === q.measurement);
  if (!q || !m) return undefined;
  if (q.tap === SOURCE_TAP) return { measurement: m, tap: m.signature_rules };
  const rule = m.match_rules.find((r) => r.stage === q.tap);
  return rule ? { measurement: m, tap: rule } : undefined;
}

function defaultPayloadColumn(row: Row): string | undefined {
  for (const c of BODY_COLUMNS) if (row.columns[c] !== undefined) return c;
  // Otherwise the longest text or bytes cell that is not an obvious metadata column.
  let best: string | undefined;
  let len = 0;
  for (const [name, cell] of Object.entries(row.columns)) {
    if (
      /^(time_|pod|upid|remote_addr|local_addr|req_path|req_headers|resp_headers|content_type)$/.test(name)
    ) {
      continue;
    }
    const n = cell instanceof Uint8Array ? cell.length : typeof cell === "string" ? cell.length : 0;
    if (n > len) {
      len = n;
      best = name;
    }
  }
  return len >= 16 ? best : undefined;
}

/** The table a body column belongs to, for rows whose table is not known (captures without a config). */
function tableForColumn(column: string): BodyTable | undefined {
  return BODY_TABLES.find((t) => t.payload === column);
}

/**
 * Groups rows by query, pod and kind (HTTP path, NATS or Redis command), keeps a sample of each group's bodies
 * with their capture times, and guesses each group's audio format. Rows may come from captures, a live Pixie
 * stream or a packet capture; `rows` is read to its end.
 */
export async function discoverFromRows(
  rows: AsyncIterable<Row> | Iterable<Row>,
  opts: DiscoverOptions = {},
): Promise<DiscoveryReport> {
  const maxPer = opts.maxPerGroup ?? 2000;
  const maxGroups = opts.maxGroups ?? 200;
  const groups = new Map<string, Group>();
  const queries: Record<string, number> = {};
  let total = 0;
  let withoutBody = 0;
  let groupsDropped = 0;
  const dropped = new Set<string>();
  for await (const row of rows) {
    total++;
    queries[row.query] = (queries[row.query] ?? 0) + 1;
    const tap = configuredTap(opts.config, row.query)?.tap;
    const table = opts.tableOf?.(row);
    const payloadColumn = opts.payloadColumn?.(row) ?? table?.payload ??
      (tap && row.columns[tap.columns.payload] !== undefined ? tap.columns.payload : undefined) ??
      defaultPayloadColumn(row);
    const body = payloadColumn === undefined ? undefined : cellBytes(row, payloadColumn);
    if (payloadColumn === undefined || body === undefined) {
      withoutBody++;
      continue;
    }
    const podColumn = tap?.columns.pod ?? "pod";
    const pod = cellText(row, podColumn);
    const bodyTable = table ?? tableForColumn(payloadColumn);
    const kindColumn = table?.kind;
    const kindValue = kindColumn ? cellText(row, kindColumn) : undefined;
    // Replicas of one workload (telephony-0, telephony-1) are one group: one filter catches them all.
    const key = `${row.query}\u0000${podStem(pod)}\u0000${kindValue ?? ""}`;
    let g = groups.get(key);
    if (!g) {
      if (groups.size >= maxGroups) {
        if (!dropped.has(key)) {
          dropped.add(key);
          groupsDropped++;
        }
        continue;
      }
      const bodySize = tap?.columns.body_size ?? bodyTable?.bodySize;
      g = {
        query: row.query,
        pod,
        table: bodyTable,
        kind: kindColumn && kindValue !== undefined ? { column: kindColumn, value: kindValue } : undefined,
        payloadColumn,
        bodySizeColumn: bodySize !== undefined && row.columns[bodySize] !== undefined ? bodySize : undefined,
        connection: new Set(),
        pods: new Set(),
        localPorts: new Set(),
        rows: 0,
        samples: [],
      };
      groups.set(key, g);
    }
    g.rows++;
    if (g.pods.size < 16) g.pods.add(pod);
    if (g.samples.length >= maxPer) continue;
    // The guesser refines streams with JSON ids; the connection separates what the columns already can.
    const conn = ["remote_addr", "remote_port", "upid", "trace_role"].filter((c) =>
      row.columns[c] !== undefined
    );
    for (const c of conn) if (c === "remote_addr" || c === "remote_port") g.connection.add(c);
    // A standalone PEM has no pods: a port is what a filter can use there.
    const local = row.columns["local_port"];
    if (local !== undefined && g.localPorts.size < 8) g.localPorts.add(cellText(row, "local_port"));
    const stream = [pod, ...conn.map((c) => cellText(row, c))].join("|");
    // Copy: a live batch's buffers may be reused.
    g.samples.push({ bytes: body.slice(), timeNs: row.time, stream });
  }

  const streams: DiscoveredStream[] = [];
  for (const g of groups.values()) {
    const guess = guessPayloadFormat(g.samples, { maxMessages: maxPer });
    const d: DiscoveredStream = {
      query: g.query,
      table: g.table?.table,
      pod: g.pod,
      pods: [...g.pods].sort(),
      kind: g.kind,
      payloadColumn: g.payloadColumn,
      bodySizeColumn: g.bodySizeColumn,
      connectionColumns: [...g.connection].sort(),
      localPorts: [...g.localPorts].sort(),
      rows: g.rows,
      guess,
    };
    if (guess.kind !== "none") {
      d.audio = guess.format;
      d.snippet = snippetFor(d, opts.origin ?? "capture");
      const tap = configuredTap(opts.config, g.query)?.tap;
      if (tap) d.configDiffers = audioDiff(tap.audio, guess.format);
    }
    streams.push(d);
  }
  streams.sort((a, b) =>
    rank(a) - rank(b) || (b.guess.kind === "none" ? 0 : b.guess.confidence) -
      (a.guess.kind === "none" ? 0 : a.guess.confidence) ||
    b.rows - a.rows
  );
  return { rows: total, streams, queries, withoutBody, groupsDropped };
}

function rank(d: DiscoveredStream): number {
  return d.guess.kind === "audio" ? 0 : d.guess.kind === "silence" ? 1 : 2;
}

// ---------------------------------------------------------------------------------------------------------------
// Snippets
// ---------------------------------------------------------------------------------------------------------------

const YAML_PLAIN = /^[A-Za-z_][A-Za-z0-9_.\/-]*$/;
const YAML_RESERVED = /^(?:true|false|null|yes|no|on|off|y|n|~)$/i;

/** A YAML scalar: plain when safe, else a double-quoted (JSON) string. */
function yamlScalar(v: string | number): string {
  if (typeof v === "number") return String(v);
  return YAML_PLAIN.test(v) && !YAML_RESERVED.test(v) ? v : JSON.stringify(v);
}

/** What stays of a pod name once namespace and replica or hash suffixes are gone: `voice/asr-7d9f-x2k4p` → `asr`. */
export function podStem(pod: string): string {
  const name = pod.slice(pod.lastIndexOf("/") + 1);
  const parts = name.split("-");
  while (parts.length > 1 && /\d/.test(parts[parts.length - 1]!)) parts.pop();
  // ReplicaSet and pod-template-hash suffixes use Kubernetes' vowel-free alphabet (bcdf...z, 2456789).
  while (parts.length > 1 && /^[bcdfghjklmnpqrstvwxz2456789]{5,10}$/.test(parts[parts.length - 1]!)) {
    parts.pop();
  }
  return parts.join("-") || name;
}

/** A measurement or stage name (lowercase letters, digits, _; a letter first) made from free text. */
export function nameFrom(text: string, fallback: string): string {
  const n = text.toLowerCase().replace(/[^a-z0-9_]+/g, "_").replace(/^_+|_+$/g, "");
  return /^[a-z]/.test(n) ? n : /^[a-z]/.test(fallback) ? fallback : "audio";
}

/**
 * The pod label of a standalone PEM's rows, `<pid>:<command line>` (pxl.ts PROCESS_POD_EXPR): no Kubernetes pod, so
 * no `df.ctx['pod']` filter can select it (a Kubernetes `namespace/name` has no colon).
 */
const PROCESS_POD = /^\d+:/;

/** The `stream_filter` lines for a stream: its table, its pod, and its kind when the pod has several. */
function streamFilter(d: DiscoveredStream): string[] {
  const table = d.table ?? "http_events";
  const lines = [`df = px.DataFrame(table='${table}', start_time='-30s')`];
  if (d.pod !== "" && !PROCESS_POD.test(d.pod)) {
    lines.push(`df = df[px.contains(df.ctx['pod'], ${pxlQuote(podStem(d.pod))})]`);
  } else if (d.localPorts.length === 1 && /^\d+$/.test(d.localPorts[0]!)) {
    // No Kubernetes metadata (standalone PEM): the port the traffic was seen on.
    lines.push(`df = df[df.local_port == ${d.localPorts[0]}]`);
  }
  if (d.kind && d.kind.value !== "") lines.push(`df = df[df.${d.kind.column} == ${pxlQuote(d.kind.value)}]`);
  return lines;
}

function pxlQuote(s: string): string {
  return "'" + s.replace(/\\/g, "\\\\").replace(/'/g, "\\'") + "'";
}

function audioYaml(a: AudioFormat): string {
  const parts = [`envelope: ${a.envelope}`];
  if (a.envelope !== "raw") parts.push(`path: ${yamlScalar(a.path)}`);
  parts.push(`encoding: ${a.encoding}`, `codec: ${a.codec}`, `sample_rate: ${a.sample_rate}`);
  if (a.channels !== 1) parts.push(`channels: ${a.channels}`);
  if (a.skip_bytes !== 0) parts.push(`skip_bytes: ${a.skip_bytes}`);
  return `{ ${parts.join(", ")} }`;
}

function streamKeyYaml(d: DiscoveredStream): string {
  if (d.guess.kind === "none") return "[pod]";
  const paths = d.guess.streamKeyPaths.value;
  const items = ["pod", ...(paths.length > 0 ? paths : d.connectionColumns)];
  return `[${items.map((i) => yamlScalar(i)).join(", ")}]`;
}

function columnsYaml(d: DiscoveredStream): string {
  const parts = [`payload: ${d.payloadColumn}`];
  if (d.bodySizeColumn) parts.push(`body_size: ${d.bodySizeColumn}`);
  return `{ ${parts.join(", ")} }`;
}

/** The tap lines (stream_filter, columns, stream_key, audio) at `indent`. */
function tapYaml(d: DiscoveredStream, indent: string): string[] {
  return [
    `${indent}stream_filter: |`,
    ...streamFilter(d).map((l) => `${indent}  ${l}`),
    `${indent}columns: ${columnsYaml(d)}`,
    `${indent}stream_key: ${streamKeyYaml(d)}`,
    `${indent}audio: ${audioYaml(d.audio!)}`,
  ];
}

function idsYaml(d: DiscoveredStream, indent: string): string[] {
  if (d.guess.kind === "none" || d.guess.ids.length === 0) return [];
  return [
    `${indent}metadata_extraction:`,
    `${indent}  id_patterns:`,
    ...d.guess.ids.slice(0, 3).flatMap((id) => [
      `${indent}    - pattern: ${JSON.stringify(id.pattern)}`,
      `${indent}      id_type: ${yamlScalar(id.idType)}`,
    ]),
  ];
}

/** Name of the measurement proposed for a stream. */
function measurementName(d: DiscoveredStream, origin: "capture" | "live"): string {
  const q = parseQueryName(d.query);
  if (origin === "capture" && q && q.tap === SOURCE_TAP) return nameFrom(q.measurement, "audio");
  return nameFrom(podStem(d.pod), q ? nameFrom(q.measurement, "audio") : "audio");
}

/** A whole config with one measurement whose source is `d`, with a comment line saying what was seen. */
function snippetFor(d: DiscoveredStream, origin: "capture" | "live"): string {
  const g = d.guess;
  if (g.kind === "none") return "";
  return [
    `# ${d.pods.join(", ") || "(no pod)"} ${d.table ?? d.query} ${d.payloadColumn}: ${g.reason} ` +
    `(confidence ${g.confidence})`,
    "measurements:",
    `  - name: ${measurementName(d, origin)}`,
    "    signature_rules:",
    ...tapYaml(d, "      "),
    ...idsYaml(d, "    "),
    "",
  ].join("\n");
}

/**
 * One config for everything seen in captures, laid out as the capture's query names say: per measurement, the
 * `source` stream as signature_rules and every other stream as a match rule of that stage. Undefined when no
 * measurement has both a source stream and audio.
 */
export function captureConfig(report: DiscoveryReport): string | undefined {
  const byMeasurement = new Map<string, Map<string, DiscoveredStream>>();
  for (const d of report.streams) {
    const q = parseQueryName(d.query);
    if (!q || !d.audio) continue;
    let m = byMeasurement.get(q.measurement);
    if (!m) byMeasurement.set(q.measurement, m = new Map());
    // One group per stream: the most confident (the list is sorted).
    if (!m.has(q.tap)) m.set(q.tap, d);
  }
  const lines = ["measurements:"];
  let any = false;
  for (const [name, taps] of byMeasurement) {
    const source = taps.get(SOURCE_TAP);
    if (!source) continue;
    any = true;
    lines.push(`  - name: ${nameFrom(name, "audio")}`, "    signature_rules:", ...tapYaml(source, "      "));
    const stages = [...taps].filter(([s]) => s !== SOURCE_TAP);
    if (stages.length > 0) {
      lines.push("    match_rules:");
      for (const [stage, d] of stages) {
        const tap = tapYaml(d, "        ");
        lines.push(`      - stage: ${nameFrom(stage, "stage")}`, ...tap);
      }
    }
    lines.push(...idsYaml(source, "    "));
  }
  return any ? lines.join("\n") + "\n" : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Live Pixie
// ---------------------------------------------------------------------------------------------------------------

/** What a live discovery run saw per table. */
export interface LiveTableStatus {
  table: string;
  rows: number;
  error?: string;
}

/**
 * The discovery queries of this node: every body table, whole, with its pod. `mode` is the config's
 * (pixieQueryMode): a standalone PEM's rows have no node (`df.ctx['node']` is ''), so a node scope there kept none.
 */
export function discoveryQueries(
  node: string,
  mode: Pick<ComposedQueryInput, "scope" | "podSource"> = {},
): ComposedQueryInput[] {
  return BODY_TABLES.map((t) => ({
    name: `discover/${t.table.replace(/\.beta$/, "")}`,
    streamFilter: `df = px.DataFrame(table='${t.table}', start_time='-30s')\n`,
    node,
    ...mode,
    columns: {
      time: "time_",
      pod: "pod",
      payload: t.payload,
      ...(t.bodySize ? { body_size: t.bodySize } : {}),
    },
    streamKeyColumns: [...t.connection, "local_port", ...(t.kind ? [t.kind] : [])],
  }));
}

/** Reads every body table of this node for `durationMs`, one query per table (a missing table fails alone). */
async function* liveRows(
  config: Config,
  node: string,
  durationMs: number,
  status: LiveTableStatus[],
): AsyncGenerator<Row> {
  const { connectPixie, pixieQueryMode } = await import("./pixie_queries.ts");
  const { PixieQueryStream } = await import("../pixie/stream.ts");
  const { client, clusterId } = await connectPixie(config);
  const ac = new AbortController();
  const cancelTimer = setLongTimeout(() => ac.abort(), durationMs);
  const stop = () => ac.abort();
  Deno.addSignalListener("SIGINT", stop);
  // Rows of all tables meet in one queue; each table's reader pushes, the generator drains.
  const queue: Row[] = [];
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  const readers = discoveryQueries(node, pixieQueryMode(config)).map(async (q, i) => {
    const st: LiveTableStatus = { table: BODY_TABLES[i]!.table, rows: 0 };
    status.push(st);
    const stream = new PixieQueryStream({
      client,
      clusterId,
      queries: [q],
      encryption: config.pixie.encryption && client.cloud,
      signal: ac.signal,
      queryName: "fsm-px-discover",
    });
    try {
      for await (const rows of stream) {
        st.rows += rows.length;
        queue.push(...rows);
        notify();
        if (ac.signal.aborted) break;
      }
    } catch (e) {
      if (!ac.signal.aborted) st.error = (e as Error).message;
    } finally {
      stream.close();
    }
  });
  const all = Promise.all(readers).then(() => {
    ac.abort();
    notify();
  });
  ac.signal.addEventListener("abort", notify, { once: true });
  try {
    while (true) {
      while (queue.length > 0) yield queue.shift()!;
      if (ac.signal.aborted) break;
      await new Promise<void>((r) => (wake = r));
    }
    await all;
    while (queue.length > 0) yield queue.shift()!;
  } finally {
    cancelTimer();
    Deno.removeSignalListener("SIGINT", stop);
    ac.abort();
    client.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The command
// ---------------------------------------------------------------------------------------------------------------

const fmtInt = groupDigits;

/** Human-readable report. */
export function renderDiscovery(report: DiscoveryReport, whereFrom: string, extra: string[] = []): string {
  const out: string[] = [];
  const audio = report.streams.filter((d) => d.guess.kind !== "none");
  out.push(
    `discover: ${fmtInt(report.rows)} rows from ${whereFrom}; ${report.streams.length} group(s), ` +
      `${audio.length} look like audio`,
  );
  out.push(...extra);
  for (const d of report.streams) {
    const g = d.guess;
    const pods = d.pods.length > 1 ? `pods ${d.pods.join(", ")}` : `pod ${d.pod || "(none)"}`;
    const where = `${d.query}  ${pods}${d.kind?.value ? `  ${d.kind.column}=${d.kind.value}` : ""}`;
    out.push("");
    if (g.kind === "none") {
      out.push(`${where}  (${d.payloadColumn}, ${fmtInt(d.rows)} rows): no audio: ${g.reason}`);
      continue;
    }
    out.push(
      `${where}  (${d.payloadColumn}, ${fmtInt(d.rows)} rows): ${
        g.kind === "silence" ? "SILENT audio" : "audio"
      }, ` +
        `confidence ${g.confidence}`,
    );
    const row = (label: string, value: string, conf: number, reason: string) =>
      out.push(`  ${label.padEnd(10)} ${value.padEnd(22)} ${conf.toFixed(2)}  ${reason}`);
    row(
      "envelope",
      `${g.envelope.value}${g.path ? ` ${g.path}` : ""}`,
      g.envelope.confidence,
      g.envelope.reason,
    );
    row("encoding", g.encoding.value, g.encoding.confidence, g.encoding.reason);
    row("codec", g.codec.value, g.codec.confidence, g.codec.reason);
    row("rate", `${g.sampleRate.value} Hz`, g.sampleRate.confidence, g.sampleRate.reason);
    row("channels", String(g.channels.value), g.channels.confidence, g.channels.reason);
    if (g.skipBytes) out.push(`  ${"skip".padEnd(10)} ${g.skipBytes} bytes`);
    out.push(`  ${"level".padEnd(10)} ${g.levelDbfs} dBFS, ~${g.messageMs} ms per message`);
    if (g.ids.length) {
      out.push(`  ${"ids".padEnd(10)} ${g.ids.map((i) => `${i.idType} (${i.path})`).join(", ")}`);
    }
    for (const n of g.notes) out.push(`  note: ${n}`);
    if (d.configDiffers?.length) {
      out.push(`  your config for ${d.query} differs: ${d.configDiffers.join("; ")}`);
    } else if (d.configDiffers) {
      out.push(`  your config for ${d.query} agrees`);
    }
    out.push("  config:", ...d.snippet!.trimEnd().split("\n").map((l) => `    ${l}`));
  }
  if (report.withoutBody > 0) out.push("", `${fmtInt(report.withoutBody)} row(s) had no body column`);
  if (report.groupsDropped > 0) {
    out.push(`${report.groupsDropped} more group(s) were counted but not examined`);
  }
  if (audio.length === 0) {
    out.push(
      "",
      report.rows === 0
        ? "no rows: nothing was captured (is traffic flowing on this node, and does Pixie trace its protocol?)"
        : "no group looks like audio",
    );
  }
  return out.join("\n");
}

/** JSON form of a report (bigints as decimal strings). */
function reportJson(report: DiscoveryReport, extra: Record<string, unknown>): string {
  return JSON.stringify(
    {
      ...extra,
      rows: report.rows,
      queries: report.queries,
      without_body: report.withoutBody,
      streams: report.streams.map((d) => ({
        query: d.query,
        table: d.table,
        pod: d.pod,
        pods: d.pods,
        kind: d.kind,
        payload_column: d.payloadColumn,
        rows: d.rows,
        verdict: d.guess.kind,
        confidence: d.guess.confidence,
        reason: d.guess.reason,
        audio: d.audio,
        guess: d.guess,
        config_differs: d.configDiffers,
        snippet: d.snippet,
      })),
      capture_config: captureConfig(report),
    },
    (_k, v) => (typeof v === "bigint" ? v.toString() : v),
  );
}

/** Runs `discover`. */
export async function discoverCommand(args: ParsedArgs): Promise<number> {
  const format = optString(args, "format") ?? "table";
  if (format !== "table" && format !== "json") {
    throw new UsageError(`--format expects table or json, got "${format}"`);
  }
  const captures = [
    ...((args.values["capture"] as string[] | undefined) ?? []),
    ...args.positionals,
  ];
  const durationText = optString(args, "duration");
  if (captures.length > 0 && durationText !== undefined) {
    throw new UsageError("--duration applies to live discovery only (without --capture)");
  }
  const durationMs = parseDurationMs(durationText ?? "30s", "--duration");
  const configPath = optString(args, "config");

  // Packet captures (pcap/pcapng) are discovered by protocol and flow; JSON Lines captures by Pixie rows.
  const packetFiles: string[] = [];
  // Only files are looked at here: the bytes read from a pipe are gone for the reader (readCaptures reads a
  // pipe once, and refuses a pcap from one).
  for (const c of captures) {
    if ((await Deno.stat(c)).isFile && await isPacketCaptureFile(c)) packetFiles.push(c);
  }
  if (packetFiles.length > 0) {
    const found = [];
    for (const f of packetFiles) found.push(await discoverPacketFile(f));
    if (format === "json") {
      console.log(JSON.stringify(found, (_k, v) => (typeof v === "bigint" ? v.toString() : v)));
    } else {
      for (const d of found) console.log(terminalText(renderPacketDiscovery(d)));
    }
    const rest = captures.filter((c) => !packetFiles.includes(c));
    if (rest.length === 0) return EXIT_OK;
    captures.splice(0, captures.length, ...rest);
  }

  if (captures.length > 0) {
    // A config is optional with captures: when given, its columns are used and its audio compared.
    const config = configPath !== undefined ? (await loadCommandConfig(args)).config : undefined;
    const caps = await readCaptures(captures);
    const report = await discoverFromRows(caps.flatMap((c) => c.rows), { config, origin: "capture" });
    const whereFrom = `${caps.length} capture(s)`;
    if (format === "json") {
      console.log(reportJson(report, { source: "capture", captures, config: configPath }));
    } else {
      console.log(terminalText(renderDiscovery(report, whereFrom)));
      const whole = captureConfig(report);
      if (whole) {
        console.log(
          terminalText("\nOne config for all of it (the captures' measurement and stage names):\n\n" + whole),
        );
      }
    }
    return EXIT_OK;
  }

  const { config, file: path } = await loadCommandConfig(args);
  const node = optString(args, "node") ?? config.node;
  log.info("discovering", { node, duration_ms: durationMs, tables: BODY_TABLES.map((t) => t.table) });
  const status: LiveTableStatus[] = [];
  const report = await discoverFromRows(liveRows(config, node, durationMs, status), {
    tableOf: (row) => BODY_TABLES.find((t) => `discover/${t.table.replace(/\.beta$/, "")}` === row.query),
    origin: "live",
  });
  const lines = status.map((s) =>
    `  ${s.table}: ${s.error ? `not read: ${s.error}` : `${fmtInt(s.rows)} rows`}`
  );
  if (format === "json") {
    console.log(reportJson(report, { source: "pixie", node, config: path, tables: status }));
  } else {
    // Pod names, paths and ids come from traffic: no control character of theirs reaches the terminal.
    console.log(
      terminalText(renderDiscovery(report, `Pixie on node ${node} over ${durationText ?? "30s"}`, lines)),
    );
  }
  return status.length > 0 && status.every((s) => s.error) ? EXIT_FAILURE : EXIT_OK;
}
