/**
 * Hops: how much each tap adds. The stages of a measurement form a path that the config states
 * (`match_rules[].after`, default the source); the hop latency of a match is its target time minus the target
 * time of the previous stage's match of the same signature (the source time when the previous tap is the
 * source), when both were found. Nothing is inferred from latencies.
 *
 * Two ways to compute it:
 * - {@link addHops}: over a complete set of records (analyze, replay, the UI), in any order. Authoritative.
 * - {@link HopTracker}: as matches arrive (a live node), bounded; a match whose previous stage is not known
 *   yet gets no hop in its record, and its hop is reported once the previous stage's match arrives.
 * @module
 */
import type { HopRecord, MatchRecord } from "./records.ts";

/** The tap every path starts from. */
export const SOURCE_STAGE = "source";

/** Per measurement: stage → the stage just before it (`source` for the first). */
export type StagePaths = Record<string, Record<string, string>>;

/** What {@link stagePaths} reads of a config: measurements and their match rules' `after`. */
export interface PathConfig {
  measurements: readonly { name: string; match_rules: readonly { stage: string; after?: string }[] }[];
}

/** The stage paths a config states. */
export function stagePaths(config: PathConfig): StagePaths {
  const out: StagePaths = {};
  for (const m of config.measurements) {
    out[m.name] = Object.fromEntries(m.match_rules.map((r) => [r.stage, r.after ?? SOURCE_STAGE]));
  }
  return out;
}

/** The stage before `stage` (the source when the config does not name the stage: its default). */
export function previousStage(paths: StagePaths, measurement: string, stage: string): string {
  return paths[measurement]?.[stage] ?? SOURCE_STAGE;
}

/** Seconds between two decimal-ns capture times, exact in bigint before the division. */
function diffS(fromNs: string, toNs: string): number {
  return Number(BigInt(toNs) - BigInt(fromNs)) / 1e9;
}

/**
 * Of several matches of the previous stage (a signature found on two streams), the one this match most
 * plausibly followed: the latest one captured no later than this match; else (clock skew) the earliest.
 */
function pickPrevious(candidates: readonly MatchRecord[], targetNs: bigint): MatchRecord | undefined {
  let before: MatchRecord | undefined, beforeNs = 0n;
  let earliest: MatchRecord | undefined, earliestNs = 0n;
  for (const c of candidates) {
    const t = BigInt(c.target.time_ns);
    if (t <= targetNs && (before === undefined || t > beforeNs)) [before, beforeNs] = [c, t];
    if (earliest === undefined || t < earliestNs) [earliest, earliestNs] = [c, t];
  }
  return before ?? earliest;
}

/** The hop of `m` given the matches of its previous stage (unused when the previous stage is the source). */
export function hopOf(m: MatchRecord, from: string, previous: readonly MatchRecord[]): HopRecord | undefined {
  if (from === SOURCE_STAGE) {
    return { from_stage: from, latency_s: diffS(m.source.time_ns, m.target.time_ns) };
  }
  const p = pickPrevious(previous, BigInt(m.target.time_ns));
  if (p === undefined) return undefined;
  return { from_stage: from, latency_s: diffS(p.target.time_ns, m.target.time_ns) };
}

/**
 * Every match with its hop (re)computed from the whole set; records whose previous stage was not found get
 * no `hop`. Returns new objects; the input is not changed.
 */
export function addHops(matches: readonly MatchRecord[], paths: StagePaths): MatchRecord[] {
  const byKey = new Map<string, MatchRecord[]>();
  const key = (measurement: string, sig: string, stage: string) => `${measurement}\u0000${sig}\u0000${stage}`;
  for (const m of matches) {
    const k = key(m.measurement, m.signature_id, m.stage);
    const list = byKey.get(k);
    if (list) list.push(m);
    else byKey.set(k, [m]);
  }
  return matches.map((m) => {
    const from = previousStage(paths, m.measurement, m.stage);
    const hop = hopOf(m, from, byKey.get(key(m.measurement, m.signature_id, from)) ?? []);
    const { hop: _old, ...rest } = m;
    return hop ? { ...rest, hop } : rest;
  });
}

/** A hop that became known: the match it belongs to and its hop. */
export interface ResolvedHop {
  match: MatchRecord;
  hop: HopRecord;
}

/** Options of a {@link HopTracker}. */
export interface HopTrackerOptions {
  /** Most signatures remembered (least recently seen forgotten first). Default 50,000. */
  maxSignatures?: number;
}

/**
 * Computes hops as matches arrive, from any node (its own, or others' read from the bus). Memory is bounded:
 * per signature the matches seen, for at most `maxSignatures` signatures.
 */
export class HopTracker {
  readonly #paths: StagePaths;
  readonly #max: number;
  /** measurement + signature → matches seen, by stage. Map order = least recently seen first. */
  readonly #seen = new Map<string, Map<string, MatchRecord[]>>();

  constructor(paths: StagePaths, opts: HopTrackerOptions = {}) {
    this.#paths = paths;
    this.#max = opts.maxSignatures ?? 50_000;
  }

  /** Signatures remembered. */
  get size(): number {
    return this.#seen.size;
  }

  /**
   * Notes a match. Returns its own hop when the previous stage is known (or is the source), and the hops of
   * later stages' matches that were waiting for this one. A match seen twice (the same record from the bus and
   * locally) is noted once.
   */
  observe(m: MatchRecord): { hop?: HopRecord; resolved: ResolvedHop[] } {
    const sigKey = `${m.measurement}\u0000${m.signature_id}`;
    let stages = this.#seen.get(sigKey);
    if (stages) this.#seen.delete(sigKey);
    else stages = new Map();
    this.#seen.set(sigKey, stages);
    while (this.#seen.size > this.#max) {
      const oldest = this.#seen.keys().next().value;
      if (oldest === undefined) break;
      this.#seen.delete(oldest);
    }
    const list = stages.get(m.stage) ?? [];
    const dup = list.some((x) => x.target.node === m.target.node && x.target.stream === m.target.stream);
    if (dup) return { resolved: [] };
    list.push(m);
    stages.set(m.stage, list);

    const from = previousStage(this.#paths, m.measurement, m.stage);
    const hop = hopOf(m, from, stages.get(from) ?? []);
    const resolved: ResolvedHop[] = [];
    // Later stages whose previous stage is this one and that had no hop until now.
    const paths = this.#paths[m.measurement] ?? {};
    for (const [stage, after] of Object.entries(paths)) {
      if (after !== m.stage) continue;
      for (const later of stages.get(stage) ?? []) {
        const others = list.filter((x) => x !== m);
        if (others.length > 0 && hopOf(later, m.stage, others) !== undefined) continue; // had one already
        const h = hopOf(later, m.stage, [m]);
        if (h) resolved.push({ match: later, hop: h });
      }
    }
    return hop ? { hop, resolved } : { resolved };
  }
}
