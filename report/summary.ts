/**
 * The summary `analyze`, `demo` and `replay` print: per measurement and stage the matches, signatures, recall
 * and latency percentiles, plus a per-interval waterfall (interval id x stage latency) that shows where delay
 * is introduced.
 * @module
 */
import type { MatchRecord, SignatureRecord } from "./records.ts";

/** Latency statistics of one stage, seconds. */
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
  /** Distinct signatures found at this stage. */
  matchedSignatures: number;
  /** matchedSignatures / signatures of the measurement. */
  recall: number;
  latency: LatencyStats | null;
}

/** One row of the waterfall: an interval id and the median latency at each stage (null: not seen there). */
export interface WaterfallRow {
  intervalId: string;
  /** Earliest source time of the interval's signatures (decimal ns), for ordering. */
  firstNs: string;
  latencyByStage: Record<string, number | null>;
}

/** Everything reported for one measurement. */
export interface MeasurementSummary {
  measurement: string;
  signatures: number;
  stages: StageSummary[];
  /** Which id type keys the waterfall (interval_id when present). */
  idType: string | null;
  waterfall: WaterfallRow[];
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
  signatures: readonly SignatureRecord[],
  matches: readonly MatchRecord[],
  stageOrder: Record<string, readonly string[]> = {},
): MeasurementSummary[] {
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
    const stageSummaries = stages.map((stage): StageSummary => {
      const list = byStage.get(stage)!;
      const matched = new Set(list.map((m) => m.signature_id)).size;
      return {
        stage,
        matches: list.length,
        matchedSignatures: matched,
        recall: sigs.length ? matched / sigs.length : 0,
        latency: stats(list.map((m) => m.latency_s)),
      };
    });
    const idType = pickIdType([...sigs, ...ms]);
    out.push({
      measurement,
      signatures: sigs.length,
      stages: stageSummaries,
      idType,
      waterfall: waterfall(sigs, ms, stages, idType),
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
  const rows: WaterfallRow[] = [];
  for (const [id, t] of first) {
    const latencyByStage: Record<string, number | null> = {};
    for (const stage of stages) {
      const v = ms.filter((m) => m.stage === stage && m.ids[idType] === id).map((m) => m.latency_s);
      latencyByStage[stage] = v.length ? quantile(v.sort((a, b) => a - b), 0.5) : null;
    }
    rows.push({ intervalId: id, firstNs: t.toString(), latencyByStage });
  }
  rows.sort((
    a,
    b,
  ) => (BigInt(a.firstNs) < BigInt(b.firstNs) ? -1 : BigInt(a.firstNs) > BigInt(b.firstNs) ? 1 : 0));
  return rows;
}

function ms(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "-";
  return `${(v * 1000).toFixed(1)}`;
}

function table(header: string[], rows: string[][]): string {
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
    parts.push(`measurement ${s.measurement}: ${s.signatures} signatures`);
    parts.push(table(
      ["stage", "matches", "recall", "p50 ms", "p90 ms", "p99 ms", "max ms"],
      s.stages.map((st) => [
        st.stage,
        String(st.matches),
        `${(st.recall * 100).toFixed(1)}%`,
        ms(st.latency?.p50),
        ms(st.latency?.p90),
        ms(st.latency?.p99),
        ms(st.latency?.max),
      ]),
    ));
    if (s.waterfall.length > 0) {
      const stages = s.stages.map((x) => x.stage);
      parts.push("");
      parts.push(`waterfall by ${s.idType} (median latency ms at each stage; '-' not seen):`);
      parts.push(
        table(
          [s.idType ?? "id", ...stages],
          s.waterfall.map((r) => [r.intervalId, ...stages.map((st) => ms(r.latencyByStage[st]))]),
        ),
      );
    }
    parts.push("");
  }
  return parts.join("\n");
}

/** Renders summaries as CSV rows: measurement,stage,matches,signatures,recall,p50_s,p90_s,p99_s,max_s. */
export function renderSummaryCsv(summaries: readonly MeasurementSummary[]): string {
  const rows = ["measurement,stage,matches,signatures,recall,p50_s,p90_s,p99_s,max_s"];
  for (const s of summaries) {
    for (const st of s.stages) {
      const l = st.latency;
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
        ].join(","),
      );
    }
  }
  return rows.join("\n") + "\n";
}
