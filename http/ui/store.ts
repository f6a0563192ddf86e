/**
 * The web UI's data: match and signature records (from `analyze --out` files, a demo run, or JetStream), kept
 * deduplicated, and the aggregates the pages show, computed here on the server so a browser never receives
 * 100,000 records: per-stage statistics and histograms, latency-over-time bands, waterfall pages, one interval
 * or call, one signature.
 * @module
 */
import type { AnyRecord, MatchRecord, SignatureRecord } from "../../report/records.ts";
import { addHops, type StagePaths } from "../../report/hops.ts";
import { type CallTimeline, type MeasurementSummary, quantile, summarize } from "../../report/summary.ts";

/** Decode problems and drops as the nodes counted them (Health page). */
export interface HealthCounts {
  decodeErrors: { measurement: string; stream: string; reason: string; count: number }[];
  /** Each decode-error reason with one example row and a hint, as the end-of-run explanation prints them. */
  decodeExamples?: string[];
  truncated: { query: string; count: number }[];
  drops: { actor: string; reason: string; count: number }[];
}

/** Log-spaced histogram edges in ms: 1 ms to ~65 s, 4 per octave. */
export const HIST_EDGES_MS: readonly number[] = Array.from({ length: 65 }, (_, i) => 2 ** (i / 4));

/** Signatures of an interval or call the Interval / call page lists (the first by source time). */
export const INTERVAL_SIGNATURES_SHOWN = 1000;
/** Calls of an interval the Interval / call page draws (the first by start). */
export const INTERVAL_CALLS_SHOWN = 20;

/** Per-stage aggregates of the Overview page. */
export interface StageOverview {
  stage: string;
  fromStage: string;
  matches: number;
  recall: number;
  p50Ms: number | null;
  p90Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  hopP50Ms: number | null;
  hopMatches: number;
  /** Counts per HIST_EDGES_MS bin ([edge i, edge i+1)), below the first edge in bin 0. */
  histogram: number[];
}

/** Percentile bands over time, one series per stage. */
export interface TimeBands {
  /** Bin start, seconds since the epoch. */
  t: number[];
  stages: Record<string, { p50: (number | null)[]; p90: (number | null)[]; p99: (number | null)[] }>;
}

/** The Overview of one measurement. */
export interface MeasurementOverview {
  measurement: string;
  signatures: number;
  idType: string | null;
  stages: StageOverview[];
  bands: TimeBands;
  calls: number;
  intervals: number;
  /** The stage whose latency grows most within calls, and up to 8 calls where it grows most. */
  growth: { stage: string; calls: { stream: string; points: { t: number; ms: number }[] }[] } | null;
}

/** A waterfall row as the UI shows it (ms). */
export interface UiWaterfallRow {
  id: string;
  firstNs: string;
  /** The largest median latency of the row (its last stage): what "sort by total" sorts on. */
  totalMs: number | null;
  stages: { stage: string; latencyMs: number | null; hopMs: number | null }[];
  pods: string[];
}

/** A page of the waterfall. */
export interface WaterfallPage {
  measurement: string;
  /** Every measurement held, for the page's choice of another. */
  measurements: string[];
  idType: string | null;
  stages: string[];
  total: number;
  offset: number;
  rows: UiWaterfallRow[];
}

/** Query of a waterfall page. */
export interface WaterfallQuery {
  measurement?: string;
  sort?: "time" | "total";
  stage?: string;
  pod?: string;
  id?: string;
  offset?: number;
  limit?: number;
}

interface View {
  summaries: MeasurementSummary[];
  matches: MatchRecord[];
  rowPods: Map<string, Map<string, Set<string>>>;
}

function ms(v: number | null | undefined): number | null {
  return v === null || v === undefined || !Number.isFinite(v) ? null : v * 1000;
}

/** Options of a {@link RecordStore}. */
export interface RecordStoreOptions {
  /**
   * Keep only the records stored (by the server, as {@link RecordStore.add} is told) within this many ms of the
   * newest stored one: the window of a live tail. Absent: every record is kept (files, a demo).
   */
  windowMs?: number;
}

/** One record added with its stored time, in the order added (stream order). */
interface Stored {
  ms: number;
  /** `signature` or `match` and the record's key in its map. */
  kind: AnyRecord["kind"];
  key: string;
  /** A match's signature key. */
  sig?: string;
}

/** Records and what the pages show of them. */
export class RecordStore {
  readonly #signatures = new Map<string, SignatureRecord>();
  readonly #matches = new Map<string, MatchRecord>();
  /** The matches with their hops, by the same key; kept for the signatures not touched since the last view. */
  readonly #hopped = new Map<string, MatchRecord>();
  /** Per measurement and signature: the keys of its matches (a hop depends only on its own signature's). */
  readonly #bySignature = new Map<string, Set<string>>();
  /** Signatures with a match added since the last view: only their hops are computed again. */
  readonly #stale = new Set<string>();
  readonly #listeners = new Set<() => void>();
  readonly #paths: StagePaths;
  readonly #stageOrder: Record<string, readonly string[]>;
  #version = 0;
  #epoch = 0;
  #due: ReturnType<typeof setTimeout> | undefined;
  #view: { version: number; view: View; at: number; costMs: number } | null = null;
  readonly #windowMs: number | undefined;
  /** With a window: records as added, oldest first (from #storedHead on), and each key's last stored time. */
  #stored: Stored[] = [];
  #storedHead = 0;
  readonly #storedAt = new Map<string, number>();
  #newestStoredMs = -Infinity;
  /** Lines or messages that were not records (counted, skipped). */
  skipped = 0;
  /** Health counts from the nodes' metrics, when a node runs in this process (demo). */
  health: () => Promise<HealthCounts | null> = () => Promise.resolve(null);

  constructor(
    paths: StagePaths = {},
    stageOrder: Record<string, readonly string[]> = {},
    opts: RecordStoreOptions = {},
  ) {
    this.#paths = paths;
    this.#stageOrder = stageOrder;
    this.#windowMs = opts.windowMs;
  }

  /** Changes with every new record, and once more when a view held back while records arrived is due. */
  get version(): number {
    return this.#version + this.#epoch;
  }

  /** Counts of records held. */
  get counts(): { signatures: number; matches: number } {
    return { signatures: this.#signatures.size, matches: this.#matches.size };
  }

  /**
   * Adds a record (a repeat of one already held replaces it). With the config's stages given, a record of a
   * measurement or stage the config does not name is counted in {@link skipped} and left out: the pages are
   * tables of ids by stages, and a publisher of records under thousands of stage names (or a records file of
   * another config) made each view take seconds and gigabytes.
   *
   * `storedMs`: when the server stored it (ms, its clock); with a window, records stored before the window of the
   * newest one leave the store (a live tail held every record it ever read, without bound).
   */
  add(rec: AnyRecord, storedMs?: number): void {
    if (!this.#configured(rec)) {
      this.skipped++;
      return;
    }
    let entry: Stored;
    if (rec.kind === "signature") {
      const k = `${rec.measurement}\u0000${rec.signature_id}`;
      this.#signatures.set(k, rec);
      entry = { ms: 0, kind: "signature", key: k };
    } else {
      const sig = `${rec.measurement}\u0000${rec.signature_id}`;
      const k = `${sig}\u0000${rec.stage}\u0000${rec.target.node}\u0000${rec.target.stream}`;
      this.#matches.set(k, rec);
      let keys = this.#bySignature.get(sig);
      if (!keys) this.#bySignature.set(sig, keys = new Set());
      keys.add(k);
      this.#stale.add(sig);
      entry = { ms: 0, kind: "match", key: k, sig };
    }
    if (this.#windowMs !== undefined && storedMs !== undefined && Number.isFinite(storedMs)) {
      entry.ms = storedMs;
      this.#stored.push(entry);
      this.#storedAt.set(`${entry.kind}\u0000${entry.key}`, storedMs);
      if (storedMs > this.#newestStoredMs) this.#newestStoredMs = storedMs;
      this.#evict(this.#newestStoredMs - this.#windowMs);
    }
    this.#version++;
    for (const l of this.#listeners) l();
  }

  /** Removes the records last stored before `cutMs` (a record added again since lives on). */
  #evict(cutMs: number): void {
    while (this.#storedHead < this.#stored.length && this.#stored[this.#storedHead]!.ms < cutMs) {
      const e = this.#stored[this.#storedHead++]!;
      const at = `${e.kind}\u0000${e.key}`;
      if (this.#storedAt.get(at) !== e.ms) continue;
      this.#storedAt.delete(at);
      if (e.kind === "signature") {
        this.#signatures.delete(e.key);
        continue;
      }
      this.#matches.delete(e.key);
      this.#hopped.delete(e.key);
      const keys = this.#bySignature.get(e.sig!);
      keys?.delete(e.key);
      if (keys?.size === 0) {
        this.#bySignature.delete(e.sig!);
        this.#stale.delete(e.sig!);
      }
    }
    if (this.#storedHead > 1024 && this.#storedHead * 2 > this.#stored.length) {
      this.#stored = this.#stored.slice(this.#storedHead);
      this.#storedHead = 0;
    }
  }

  /** Whether the config names the record's measurement (and a match's stage); any record without a config. */
  #configured(rec: AnyRecord): boolean {
    const order = this.#stageOrder;
    if (Object.keys(order).length === 0) return true;
    if (!Object.hasOwn(order, rec.measurement)) return false;
    return rec.kind === "signature" || order[rec.measurement]!.includes(rec.stage);
  }

  /** Called after records were added (the server throttles what it sends). */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  #current(): View {
    if (this.#view && this.#view.version === this.#version) return this.#view.view;
    // While records keep arriving, a costly view is rebuilt at most every max(1 s, 2 × its cost): with 100,000
    // records a rebuild takes ~1.5 s (bench/ui_store.ts), and a live tail must not keep a core busy.
    const now = performance.now();
    const hold = this.#view ? Math.max(1000, 2 * this.#view.costMs) - (now - this.#view.at) : 0;
    if (this.#view && this.#view.costMs > 200 && hold > 0) {
      // Tell open pages to ask again once a fresh view may be built (else the last burst would stay unseen).
      this.#due ??= setTimeout(() => {
        this.#due = undefined;
        this.#epoch++;
        for (const l of this.#listeners) l();
      }, hold);
      return this.#view.view;
    }
    const sigs = [...this.#signatures.values()];
    // Hops of the signatures that got a match since the last view only: over every match this was ~40% of a
    // rebuild with 100,000 records (bench/ui_jetstream_tail.ts), repeated for each update of a live tail.
    for (const sig of this.#stale) {
      const keys = [...this.#bySignature.get(sig)!];
      const hopped = addHops(keys.map((k) => this.#matches.get(k)!), this.#paths);
      keys.forEach((k, i) => this.#hopped.set(k, hopped[i]!));
    }
    this.#stale.clear();
    const matches = [...this.#matches.keys()].map((k) => this.#hopped.get(k)!);
    const summaries = summarize(sigs, matches, this.#stageOrder, { paths: this.#paths });
    const rowPods = new Map<string, Map<string, Set<string>>>();
    for (const s of summaries) {
      const pods = new Map<string, Set<string>>();
      const note = (id: string | undefined, pod: string) => {
        if (id === undefined) return;
        const set = pods.get(id) ?? new Set();
        set.add(pod);
        pods.set(id, set);
      };
      if (s.id_type) {
        for (const g of sigs) if (g.measurement === s.measurement) note(g.ids[s.id_type], g.pod);
        for (const m of matches) {
          if (m.measurement !== s.measurement) continue;
          note(m.ids[s.id_type], m.source.pod);
          note(m.ids[s.id_type], m.target.pod);
        }
      }
      rowPods.set(s.measurement, pods);
    }
    const view = { summaries, matches, rowPods };
    this.#view = { version: this.#version, view, at: performance.now(), costMs: performance.now() - now };
    return view;
  }

  /** Per measurement and stage: statistics, histograms, latency-over-time bands. */
  overview(): MeasurementOverview[] {
    const { summaries, matches } = this.#current();
    return summaries.map((s) => {
      const mine = matches.filter((m) => m.measurement === s.measurement);
      const stages = s.stages.map((st): StageOverview => {
        const hop = s.hops.find((h) => h.stage === st.stage);
        const histogram = new Array<number>(HIST_EDGES_MS.length).fill(0);
        for (const m of mine) {
          if (m.stage !== st.stage) continue;
          const v = m.latency_s * 1000;
          let i = v <= 1 ? 0 : Math.floor(Math.log2(v) * 4);
          i = Math.max(0, Math.min(histogram.length - 1, i));
          histogram[i]!++;
        }
        return {
          stage: st.stage,
          fromStage: hop?.from_stage ?? "source",
          matches: st.matches,
          recall: st.recall,
          p50Ms: ms(st.latency_s?.p50),
          p90Ms: ms(st.latency_s?.p90),
          p99Ms: ms(st.latency_s?.p99),
          maxMs: ms(st.latency_s?.max),
          hopP50Ms: ms(hop?.latency_s?.p50),
          hopMatches: hop?.matches ?? 0,
          histogram,
        };
      });
      return {
        measurement: s.measurement,
        signatures: s.signatures,
        idType: s.id_type,
        stages,
        bands: bands(mine, s.stages.map((x) => x.stage)),
        calls: s.calls.length,
        intervals: s.waterfall.length,
        growth: growth(s.calls, s.stages.map((x) => x.stage)),
      };
    });
  }

  /**
   * One page of the waterfall of a measurement; when none is named, the first that has rows (the first by name
   * had none when it carries no ids, an RTP call's, and the page showed nothing while another had its rows).
   */
  waterfall(q: WaterfallQuery): WaterfallPage | null {
    const { summaries, rowPods } = this.#current();
    const s = q.measurement
      ? summaries.find((x) => x.measurement === q.measurement)
      : summaries.find((x) => x.waterfall.length > 0) ?? summaries[0];
    if (!s) return null;
    const stages = s.stages.map((x) => x.stage);
    const pods = rowPods.get(s.measurement) ?? new Map();
    let rows: UiWaterfallRow[] = s.waterfall.map((r) => {
      const cells = stages.map((stage) => ({
        stage,
        latencyMs: ms(r.latency_s_by_stage[stage]),
        hopMs: ms(r.hop_s_by_stage[stage]),
      }));
      const seen = cells.map((c) => c.latencyMs).filter((v): v is number => v !== null);
      return {
        id: r.id,
        firstNs: r.first_ns,
        totalMs: seen.length ? Math.max(...seen) : null,
        stages: cells,
        pods: [...(pods.get(r.id) ?? [])].sort(),
      };
    });
    if (q.stage) rows = rows.filter((r) => r.stages.some((c) => c.stage === q.stage && c.latencyMs !== null));
    if (q.pod) rows = rows.filter((r) => r.pods.some((p) => p.includes(q.pod!)));
    if (q.id) rows = rows.filter((r) => r.id.includes(q.id!));
    if (q.sort === "total") {
      rows = [...rows].sort((a, b) => (b.totalMs ?? -Infinity) - (a.totalMs ?? -Infinity));
    }
    const offset = Math.max(0, q.offset ?? 0);
    const limit = Math.max(1, Math.min(1000, q.limit ?? 100));
    return {
      measurement: s.measurement,
      measurements: summaries.map((x) => x.measurement),
      idType: s.id_type,
      stages,
      total: rows.length,
      offset,
      rows: rows.slice(offset, offset + limit),
    };
  }

  /**
   * One interval (by id) or one call (by source stream): its first {@link INTERVAL_SIGNATURES_SHOWN} signatures
   * with their matches, and the timelines of its first {@link INTERVAL_CALLS_SHOWN} calls; the totals say how
   * many there are.
   */
  interval(id: string): {
    id: string;
    idType: string | null;
    measurement: string;
    stages: string[];
    signatures: (SignatureRecord & { matches: MatchRecord[] })[];
    signaturesTotal: number;
    calls: CallTimeline[];
    callsTotal: number;
  } | null {
    const { summaries, matches } = this.#current();
    for (const s of summaries) {
      const idType = s.id_type;
      const sigs = [...this.#signatures.values()].filter((g) =>
        g.measurement === s.measurement && ((idType !== null && g.ids[idType] === id) || g.stream === id)
      );
      const ms = matches.filter((m) =>
        m.measurement === s.measurement &&
        ((idType !== null && m.ids[idType] === id) || m.source.stream === id)
      );
      if (sigs.length === 0 && ms.length === 0) continue;
      const bySig = new Map<string, MatchRecord[]>();
      for (const m of ms) bySig.set(m.signature_id, [...(bySig.get(m.signature_id) ?? []), m]);
      const streams = new Set([...sigs.map((g) => g.stream), ...ms.map((m) => m.source.stream)]);
      // Bounded: an id every call shares (an account's, a tenant's) or a source stream open for hours holds every
      // record, and the whole answer (36 MB for 30,000 signatures) froze the page for 20 s.
      const shown = sigs.sort((a, b) => (BigInt(a.time_ns) < BigInt(b.time_ns) ? -1 : 1))
        .slice(0, INTERVAL_SIGNATURES_SHOWN).map((g) => {
          const { fingerprint_b64: _f, mask_b64: _m, envelope_b64: _e, ...rest } = g;
          return { ...rest, matches: bySig.get(g.signature_id) ?? [] };
        });
      const calls = s.calls.filter((c) => streams.has(c.stream));
      return {
        id,
        idType,
        measurement: s.measurement,
        stages: s.stages.map((x) => x.stage),
        signatures: shown,
        signaturesTotal: sigs.length,
        calls: calls.slice(0, INTERVAL_CALLS_SHOWN),
        callsTotal: calls.length,
      };
    }
    return null;
  }

  /** One signature with its matches. */
  signature(id: string): { signature: SignatureRecord | null; matches: MatchRecord[] } | null {
    const { matches } = this.#current();
    const sig = [...this.#signatures.values()].find((s) => s.signature_id === id) ?? null;
    const ms = matches.filter((m) => m.signature_id === id);
    if (!sig && ms.length === 0) return null;
    return { signature: sig, matches: ms };
  }

  /** Health: counts from the nodes (when known) and signatures without a match per stage. */
  async healthReport(): Promise<{
    counts: HealthCounts | null;
    skippedRecords: number;
    unmatched: {
      measurement: string;
      stage: string;
      signatures: number;
      unmatched: number;
      examples: string[];
    }[];
  }> {
    const { summaries, matches } = this.#current();
    const unmatched = [];
    for (const s of summaries) {
      const sigs = [...this.#signatures.values()].filter((g) => g.measurement === s.measurement);
      for (const st of s.stages) {
        const found = new Set(
          matches.filter((m) => m.measurement === s.measurement && m.stage === st.stage).map((m) =>
            m.signature_id
          ),
        );
        const missing = sigs.filter((g) => !found.has(g.signature_id));
        unmatched.push({
          measurement: s.measurement,
          stage: st.stage,
          signatures: sigs.length,
          unmatched: missing.length,
          examples: missing.slice(0, 5).map((g) => g.signature_id),
        });
      }
    }
    return { counts: await this.health(), skippedRecords: this.skipped, unmatched };
  }
}

/** Latency against call time for the calls and stage where it grows most (first to last point). */
function growth(calls: readonly CallTimeline[], stages: readonly string[]): MeasurementOverview["growth"] {
  let best: { stage: string; rise: number } | null = null;
  for (const stage of stages) {
    let rise = 0;
    for (const c of calls) {
      const p = c.points[stage] ?? [];
      if (p.length > 1) rise = Math.max(rise, p[p.length - 1]!.latency_s - p[0]!.latency_s);
    }
    if (best === null || rise > best.rise) best = { stage, rise };
  }
  if (best === null) return null;
  const stage = best.stage;
  const rise = (c: CallTimeline) => {
    const p = c.points[stage] ?? [];
    return p.length > 1 ? p[p.length - 1]!.latency_s - p[0]!.latency_s : -Infinity;
  };
  const top = [...calls].sort((a, b) => rise(b) - rise(a)).slice(0, 8);
  return {
    stage,
    calls: top.map((c) => ({
      stream: c.stream,
      points: (c.points[stage] ?? []).map((p) => ({ t: p.t_s, ms: p.latency_s * 1000 })),
    })),
  };
}

/** Percentile bands of latency over time: up to 120 bins across the records' source times. */
function bands(matches: readonly MatchRecord[], stages: readonly string[]): TimeBands {
  const out: TimeBands = { t: [], stages: {} };
  if (matches.length === 0) return out;
  let lo = Infinity, hi = -Infinity;
  const ts = matches.map((m) => Number(BigInt(m.source.time_ns) / 1_000_000n) / 1000);
  for (const t of ts) {
    if (t < lo) lo = t;
    if (t > hi) hi = t;
  }
  const span = Math.max(hi - lo, 1);
  const n = Math.min(120, Math.max(1, Math.ceil(matches.length / 4)));
  const width = span / n;
  out.t = Array.from({ length: n }, (_, i) => lo + i * width);
  for (const stage of stages) {
    const bins: number[][] = Array.from({ length: n }, () => []);
    matches.forEach((m, i) => {
      if (m.stage !== stage) return;
      bins[Math.min(n - 1, Math.floor((ts[i]! - lo) / width))]!.push(m.latency_s * 1000);
    });
    const q = (p: number) => bins.map((b) => (b.length ? quantile(b.sort((x, y) => x - y), p) : null));
    out.stages[stage] = { p50: q(0.5), p90: q(0.9), p99: q(0.99) };
  }
  return out;
}
