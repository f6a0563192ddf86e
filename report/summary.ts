/**
 * The summary `analyze`, `demo` and `replay` print: per measurement and stage the matches, signatures, recall
 * and latency percentiles, what each hop adds (`match_rules[].after`), a per-interval waterfall (interval id x
 * stage latency and hop) and a per-call timeline (latency per stage against call time, so growth within a
 * call shows).
 * @module
 */
import type { MatchRecord, SignatureRecord } from "./records.ts";
import { addHops, previousStage, SOURCE_STAGE, type StagePaths } from "./hops.ts";
import { printable } from "../util/printable.ts";

/**
 * Latency statistics of one stage, in seconds (the key that holds them says so: `latency_s`). Summaries are
 * printed as JSON as they are: snake_case keys, units in the key names, like the records.
 */
export interface LatencyStats {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** One stage of one measurement. */
export interface StageSummary {
  stage: string;
  matches: number;
  /** Distinct signatures of the record set found at this stage (a match of a signature not in it is left out). */
  matched_signatures: number;
  /** matched_signatures / signatures of the measurement. */
  recall: number;
  latency_s: LatencyStats | null;
}

/** What one hop adds: a stage and the stage before it. */
export interface HopSummary {
  stage: string;
  /** The stage before it (`match_rules[].after`), or `source`. */
  from_stage: string;
  /** Matches whose previous stage was found too. */
  matches: number;
  latency_s: LatencyStats | null;
}

/** One row of the waterfall: an interval id and the median latency at each stage (null: not seen there). */
export interface WaterfallRow {
  /** The interval id (a value of the measurement's `id_type`). */
  id: string;
  /** Earliest source time of the interval's signatures (decimal ns), for ordering. */
  first_ns: string;
  latency_s_by_stage: Record<string, number | null>;
  /** Median hop latency at each stage (null: no match whose previous stage was found too). */
  hop_s_by_stage: Record<string, number | null>;
}

/** One point of a call's timeline: when in the call (s from its first signature) and the latency (s). */
export interface TimelinePoint {
  t_s: number;
  latency_s: number;
}

/** A call (one source stream): latency per stage against call time. */
export interface CallTimeline {
  /** The source stream key. */
  stream: string;
  node: string;
  pod: string;
  /** Source time of its first signature or match (decimal ns). */
  first_ns: string;
  /** Seconds from the first to the last source time seen. */
  duration_s: number;
  signatures: number;
  /** Ids (of the waterfall's id type) in call order. */
  ids: string[];
  /** Per stage, points in call-time order. */
  points: Record<string, TimelinePoint[]>;
}

/** Everything reported for one measurement. */
export interface MeasurementSummary {
  measurement: string;
  signatures: number;
  stages: StageSummary[];
  /** Which id type keys the waterfall (interval_id when present). */
  id_type: string | null;
  waterfall: WaterfallRow[];
  /** What each hop adds, in stage order. */
  hops: HopSummary[];
  /** One timeline per source stream, by first source time. */
  calls: CallTimeline[];
}

/** Which records to keep (the `--id` / `--interval` filters). */
export interface RecordSelection {
  /** An interval id (the value of `interval_id`, else of the id type that keys the waterfall). */
  interval?: string;
  /** Any id value (`TYPE=VALUE` for one id type), a signature id, or a source stream (a call). */
  id?: string;
}

/** Options of {@link summarize}. */
export interface SummaryOptions {
  /** Stage paths from the config (`match_rules[].after`); absent: every stage follows the source. */
  paths?: StagePaths;
  /** Keep only the selected records. */
  select?: RecordSelection;
}

/** True when a record is selected; `intervalType` is the id type `--interval` compares. */
function selected(
  sel: RecordSelection,
  r: { signature_id: string; ids: Record<string, string> },
  stream: string,
  intervalType: string,
): boolean {
  if (sel.interval !== undefined && r.ids[intervalType] !== sel.interval) return false;
  if (sel.id !== undefined) {
    const eq = sel.id.indexOf("=");
    if (eq > 0 && r.ids[sel.id.slice(0, eq)] === sel.id.slice(eq + 1)) return true;
    return r.signature_id === sel.id || stream === sel.id || Object.values(r.ids).includes(sel.id);
  }
  return true;
}

/** The records a selection keeps (signatures and matches alike). */
export function selectRecords(
  signatures: readonly SignatureRecord[],
  matches: readonly MatchRecord[],
  sel: RecordSelection,
): { signatures: SignatureRecord[]; matches: MatchRecord[] } {
  if (sel.id === undefined && sel.interval === undefined) {
    return { signatures: [...signatures], matches: [...matches] };
  }
  const intervalType = pickIdType([...signatures, ...matches]) ?? "interval_id";
  return {
    signatures: signatures.filter((s) => selected(sel, s, s.stream, intervalType)),
    matches: matches.filter((m) => selected(sel, m, m.source.stream, intervalType)),
  };
}

/** Linear-interpolated quantile of sorted values (q in [0,1]). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (b - a) * (pos - lo);
}

function stats(values: number[]): LatencyStats | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  return { p50: quantile(s, 0.5), p90: quantile(s, 0.9), p99: quantile(s, 0.99), max: s[s.length - 1]! };
}

function pickIdType(records: readonly { ids: Record<string, string> }[]): string | null {
  const counts = new Map<string, number>();
  for (const r of records) for (const k of Object.keys(r.ids)) counts.set(k, (counts.get(k) ?? 0) + 1);
  if (counts.has("interval_id")) return "interval_id";
  let best: string | null = null;
  for (const [k, n] of counts) if (best === null || n > counts.get(best)!) best = k;
  return best;
}

/**
 * Summarises records. `stageOrder` lists stages in pipeline order per measurement (from the config); stages
 * not listed follow, ordered by median latency.
 */
export function summarize(
  allSignatures: readonly SignatureRecord[],
  allMatches: readonly MatchRecord[],
  stageOrder: Record<string, readonly string[]> = {},
  opts: SummaryOptions = {},
): MeasurementSummary[] {
  const paths = opts.paths ?? {};
  // Hops are computed before the selection: a hop needs the previous stage's match, selected or not.
  const withHops = addHops(allMatches, paths);
  const { signatures, matches } = selectRecords(allSignatures, withHops, opts.select ?? {});
  const names = new Set<string>([
    ...signatures.map((s) => s.measurement),
    ...matches.map((m) => m.measurement),
  ]);
  const out: MeasurementSummary[] = [];
  for (const measurement of [...names].sort()) {
    const sigs = signatures.filter((s) => s.measurement === measurement);
    const ms = matches.filter((m) => m.measurement === measurement);
    const byStage = new Map<string, MatchRecord[]>();
    for (const s of stageOrder[measurement] ?? []) byStage.set(s, []);
    for (const m of ms) {
      const list = byStage.get(m.stage) ?? [];
      list.push(m);
      byStage.set(m.stage, list);
    }
    const configured = new Set(stageOrder[measurement] ?? []);
    const median = (list: MatchRecord[]) => stats(list.map((m) => m.latency_s))?.p50 ?? Infinity;
    const stages = [...byStage.keys()].sort((a, b) => {
      const ca = configured.has(a), cb = configured.has(b);
      if (ca && cb) return 0;
      if (ca !== cb) return ca ? -1 : 1;
      return median(byStage.get(a)!) - median(byStage.get(b)!);
    });
    // Recall counts the signatures of this record set that were found: a range of stored records (replay --start,
    // the UI's window) holds matches of signatures stored before it, which counted made recall exceed 100%.
    const sigIds = new Set(sigs.map((s) => s.signature_id));
    const stageSummaries = stages.map((stage): StageSummary => {
      const list = byStage.get(stage)!;
      const matched = new Set(list.flatMap((m) => sigIds.has(m.signature_id) ? [m.signature_id] : [])).size;
      return {
        stage,
        matches: list.length,
        matched_signatures: matched,
        recall: sigs.length ? matched / sigs.length : 0,
        latency_s: stats(list.map((m) => m.latency_s)),
      };
    });
    const idType = pickIdType([...sigs, ...ms]);
    const hops = stages.map((stage): HopSummary => {
      const list = byStage.get(stage)!.filter((m) => m.hop !== undefined);
      return {
        stage,
        from_stage: previousStage(paths, measurement, stage),
        matches: list.length,
        latency_s: stats(list.map((m) => m.hop!.latency_s)),
      };
    });
    out.push({
      measurement,
      signatures: sigs.length,
      stages: stageSummaries,
      id_type: idType,
      waterfall: waterfall(sigs, ms, stages, idType),
      hops,
      calls: callTimelines(sigs, ms, stages, idType),
    });
  }
  return out;
}

function waterfall(
  sigs: readonly SignatureRecord[],
  ms: readonly MatchRecord[],
  stages: readonly string[],
  idType: string | null,
): WaterfallRow[] {
  if (idType === null) return [];
  const first = new Map<string, bigint>();
  const note = (id: string | undefined, ns: string) => {
    if (id === undefined) return;
    const t = BigInt(ns);
    const prev = first.get(id);
    if (prev === undefined || t < prev) first.set(id, t);
  };
  for (const s of sigs) note(s.ids[idType], s.time_ns);
  for (const m of ms) note(m.ids[idType], m.source.time_ns);
  // Grouped once: a filter per interval and stage is quadratic, and 100,000 records have thousands of ids.
  const byId = new Map<string, MatchRecord[]>();
  for (const m of ms) {
    const id = m.ids[idType];
    if (id === undefined) continue;
    const list = byId.get(id);
    if (list) list.push(m);
    else byId.set(id, [m]);
  }
  const median = (v: number[]) => v.length ? quantile(v.sort((a, b) => a - b), 0.5) : null;
  const rows: WaterfallRow[] = [];
  for (const [id, t] of first) {
    const latencyByStage: Record<string, number | null> = {};
    const hopByStage: Record<string, number | null> = {};
    const mine = byId.get(id) ?? [];
    for (const stage of stages) {
      const at = mine.filter((m) => m.stage === stage);
      latencyByStage[stage] = median(at.map((m) => m.latency_s));
      hopByStage[stage] = median(at.flatMap((m) => m.hop ? [m.hop.latency_s] : []));
    }
    rows.push({ id, first_ns: t.toString(), latency_s_by_stage: latencyByStage, hop_s_by_stage: hopByStage });
  }
  rows.sort((a, b) => byNs(a.first_ns, b.first_ns));
  return rows;
}

function callTimelines(
  sigs: readonly SignatureRecord[],
  ms: readonly MatchRecord[],
  stages: readonly string[],
  idType: string | null,
): CallTimeline[] {
  interface Acc {
    node: string;
    pod: string;
    first: bigint;
    last: bigint;
    signatures: number;
    ids: Map<string, bigint>;
    matches: MatchRecord[];
  }
  const calls = new Map<string, Acc>();
  const acc = (stream: string, node: string, pod: string, ns: string, id: string | undefined): Acc => {
    const t = BigInt(ns);
    let a = calls.get(stream);
    if (!a) {
      a = { node, pod, first: t, last: t, signatures: 0, ids: new Map(), matches: [] };
      calls.set(stream, a);
    }
    if (t < a.first) a.first = t;
    if (t > a.last) a.last = t;
    if (id !== undefined) {
      const seen = a.ids.get(id);
      if (seen === undefined || t < seen) a.ids.set(id, t);
    }
    return a;
  };
  for (const s of sigs) {
    acc(s.stream, s.node, s.pod, s.time_ns, idType ? s.ids[idType] : undefined).signatures++;
  }
  for (const m of ms) {
    acc(m.source.stream, m.source.node, m.source.pod, m.source.time_ns, idType ? m.ids[idType] : undefined)
      .matches.push(m);
  }
  const out: CallTimeline[] = [];
  for (const [stream, a] of calls) {
    const points: Record<string, TimelinePoint[]> = {};
    for (const stage of stages) {
      points[stage] = a.matches.filter((m) => m.stage === stage)
        .map((m) => ({ t_s: Number(BigInt(m.source.time_ns) - a.first) / 1e9, latency_s: m.latency_s }))
        .sort((x, y) => x.t_s - y.t_s);
    }
    out.push({
      stream,
      node: a.node,
      pod: a.pod,
      first_ns: a.first.toString(),
      duration_s: Number(a.last - a.first) / 1e9,
      signatures: a.signatures,
      ids: [...a.ids].sort((x, y) => (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0)).map(([id]) => id),
      points,
    });
  }
  return out.sort((x, y) => byNs(x.first_ns, y.first_ns));
}

/** Orders decimal-ns strings by value. */
function byNs(a: string, b: string): number {
  const x = BigInt(a), y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

const SPARK = "▁▂▃▄▅▆▇█";

/**
 * A sparkline of a timeline: up to `width` cells over the call's time, each the median latency of the points
 * in it, scaled from zero to the highest cell (`·` where no point fell).
 */
export function sparkline(points: readonly TimelinePoint[], width = 12): string {
  if (points.length === 0) return "";
  const t0 = points[0]!.t_s, t1 = points[points.length - 1]!.t_s;
  const n = Math.min(width, points.length);
  const cells: number[][] = Array.from({ length: n }, () => []);
  for (const p of points) {
    const i = t1 > t0 ? Math.min(n - 1, Math.floor(((p.t_s - t0) / (t1 - t0)) * n)) : 0;
    cells[i]!.push(p.latency_s);
  }
  const med = cells.map((c) => c.length ? quantile(c.sort((a, b) => a - b), 0.5) : null);
  // From zero, not from the lowest cell: a 10 ms jitter on 150 ms must not look like growth.
  const hi = Math.max(...med.filter((v): v is number => v !== null));
  return med.map((v) => {
    if (v === null) return "·";
    if (hi <= 0) return SPARK[0];
    return SPARK[Math.max(0, Math.min(SPARK.length - 1, Math.ceil((v / hi) * SPARK.length) - 1))];
  }).join("");
}

/** `first→last ms` of a timeline, with a sparkline: growth within a call in one cell. */
function trend(points: readonly TimelinePoint[]): string {
  if (points.length === 0) return "-";
  const f = points[0]!.latency_s * 1000, l = points[points.length - 1]!.latency_s * 1000;
  return `${sparkline(points)} ${f.toFixed(0)}→${l.toFixed(0)}`;
}

/** A call's label: the stream key, shortened from the middle when long. */
function callLabel(stream: string, max = 44): string {
  return stream.length <= max ? stream : `${stream.slice(0, 18)}…${stream.slice(-(max - 19))}`;
}

function ms(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "-";
  return `${(v * 1000).toFixed(1)}`;
}

/**
 * A hop in ms with its sign: a hop is negative when two nodes' clocks disagree, and a plus put in front of
 * {@link ms} printed such a hop as `+-50.0` (the web UI signs hops the same way).
 */
function signedMs(v: number | null | undefined): string {
  const text = ms(v);
  return text === "-" || text.startsWith("-") ? text : `+${text}`;
}

function table(header: string[], cells: string[][]): string {
  // Cells hold names from traffic and peers (stream keys, ids; a peer's measurement and stage in replay): one
  // line each, with no control character reaching the terminal.
  header = header.map(printable);
  const rows = cells.map((r) => r.map(printable));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/** Renders summaries as human-readable tables (latencies in milliseconds). */
export function renderSummaryTable(summaries: readonly MeasurementSummary[]): string {
  if (summaries.length === 0) return "no signatures and no matches\n";
  const parts: string[] = [];
  for (const s of summaries) {
    parts.push(`measurement ${printable(s.measurement)}: ${s.signatures} signatures`);
    const hopOf = new Map((s.hops ?? []).map((h) => [h.stage, h]));
    parts.push(table(
      [
        "stage",
        "matches",
        "recall",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "hop from",
        "hop p50",
        "hop p90",
      ],
      s.stages.map((st) => {
        const h = hopOf.get(st.stage);
        return [
          st.stage,
          String(st.matches),
          `${(st.recall * 100).toFixed(1)}%`,
          ms(st.latency_s?.p50),
          ms(st.latency_s?.p90),
          ms(st.latency_s?.p99),
          ms(st.latency_s?.max),
          h?.from_stage ?? SOURCE_STAGE,
          signedMs(h?.latency_s?.p50),
          signedMs(h?.latency_s?.p90),
        ];
      }),
    ));
    const stages = s.stages.map((x) => x.stage);
    if (s.waterfall.length > 0) {
      parts.push("");
      parts.push(
        `waterfall by ${
          printable(s.id_type ?? "id")
        } (median latency ms from the source at each stage, (+hop) added by that stage; '-' not seen):`,
      );
      parts.push(
        table(
          [s.id_type ?? "id", ...stages],
          s.waterfall.map((r) => [
            r.id,
            ...stages.map((st) => {
              const hop = r.hop_s_by_stage?.[st];
              const l = ms(r.latency_s_by_stage[st]);
              return hop === null || hop === undefined ? l : `${l} (${signedMs(hop)})`;
            }),
          ]),
        ),
      );
    }
    if ((s.calls ?? []).length > 0) {
      parts.push("");
      parts.push("calls (source streams): latency per stage over call time, first→last ms:");
      parts.push(
        table(
          ["call", "start", "dur s", "sigs", ...stages],
          s.calls.map((c) => [
            callLabel(c.stream),
            new Date(Number(BigInt(c.first_ns) / 1_000_000n)).toISOString().slice(11, 19),
            c.duration_s.toFixed(1),
            String(c.signatures),
            ...stages.map((st) => trend(c.points[st] ?? [])),
          ]),
        ),
      );
    }
    parts.push("");
  }
  return parts.join("\n");
}

/**
 * Renders summaries as CSV rows:
 * measurement,stage,matches,signatures,recall,p50_s,p90_s,p99_s,max_s,hop_from,hop_p50_s,hop_p90_s,hop_p99_s.
 */
export function renderSummaryCsv(summaries: readonly MeasurementSummary[]): string {
  const rows = [
    "measurement,stage,matches,signatures,recall,p50_s,p90_s,p99_s,max_s,hop_from,hop_p50_s,hop_p90_s,hop_p99_s",
  ];
  for (const s of summaries) {
    for (const st of s.stages) {
      const l = st.latency_s;
      const h = (s.hops ?? []).find((x) => x.stage === st.stage);
      rows.push(
        [
          s.measurement,
          st.stage,
          st.matches,
          s.signatures,
          st.recall.toFixed(4),
          l?.p50 ?? "",
          l?.p90 ?? "",
          l?.p99 ?? "",
          l?.max ?? "",
          h?.from_stage ?? SOURCE_STAGE,
          h?.latency_s?.p50 ?? "",
          h?.latency_s?.p90 ?? "",
          h?.latency_s?.p99 ?? "",
        ].join(","),
      );
    }
  }
  return rows.join("\n") + "\n";
}
