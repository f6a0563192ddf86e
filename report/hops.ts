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

/** A match of the previous stage as a hop needs it: where it was captured, and when (ns). */
interface PreviousMatch {
  readonly node: string;
  readonly stream: string;
  readonly targetNs: bigint;
}

/**
 * Of several matches of the previous stage (a signature found on two streams), the one a match captured at
 * `targetNs` most plausibly followed: the latest one captured no later than it; else (clock skew) the earliest
 * (of equal times, the first given). Undefined when there is none.
 */
function previousMatch<P extends PreviousMatch>(previous: Iterable<P>, targetNs: bigint): P | undefined {
  let before: P | undefined, earliest: P | undefined;
  for (const p of previous) {
    const t = p.targetNs;
    if (t <= targetNs && (before === undefined || t > before.targetNs)) before = p;
    if (earliest === undefined || t < earliest.targetNs) earliest = p;
  }
  return before ?? earliest;
}

/** The hop of a match captured at `targetNs` from the previous stage's match `p`. */
function hopFromMatch(from: string, targetNs: bigint, p: PreviousMatch): HopRecord {
  return {
    from_stage: from,
    latency_s: Number(targetNs - p.targetNs) / 1e9,
    from_node: p.node,
    from_stream: p.stream,
  };
}

/** The hop of `m` given the matches of its previous stage (unused when the previous stage is the source). */
export function hopOf(m: MatchRecord, from: string, previous: readonly MatchRecord[]): HopRecord | undefined {
  if (from === SOURCE_STAGE) {
    return { from_stage: from, latency_s: diffS(m.source.time_ns, m.target.time_ns) };
  }
  const targetNs = BigInt(m.target.time_ns);
  const p = previousMatch(
    previous.map((c) => ({
      node: c.target.node,
      stream: c.target.stream,
      targetNs: BigInt(c.target.time_ns),
    })),
    targetNs,
  );
  return p === undefined ? undefined : hopFromMatch(from, targetNs, p);
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

/** What a live hop names of its match: enough to label its metrics. */
export interface HopMatch {
  measurement: string;
  signature_id: string;
  stage: string;
  ids: Record<string, string>;
}

/** A hop that became known: the match it belongs to, its hop, and who observed that match as its own. */
export interface ResolvedHop {
  match: HopMatch;
  hop: HopRecord;
  /** {@link HopTracker.observe}'s `owner` of the match (undefined: a match read from the bus). */
  owner: object | undefined;
}

/** Options of a {@link HopTracker}. */
export interface HopTrackerOptions {
  /** Most signatures remembered (least recently seen forgotten first). Default 50,000. */
  maxSignatures?: number;
  /**
   * Most bytes remembered, as {@link HopTracker.bytes} estimates them (least recently seen signatures forgotten
   * first). Default {@link HOP_TRACKER_MAX_BYTES}.
   */
  maxBytes?: number;
}

/**
 * The tracker's default memory bound. A live node's own matches cost ~650 estimated bytes a signature (~32 MB at
 * 50,000 signatures, which bind first); the bound is for what other nodes' records on the bus may make it hold: a
 * peer publishing match records (a stolen sensor password) chooses their sizes and numbers, and the signature
 * bound alone let 64 matches of each of 50,000 signatures stay: 600 MB at ~190 bytes a match, and their whole
 * ids (536 MB from 2,000 signatures' matches with 50 ids each).
 */
export const HOP_TRACKER_MAX_BYTES = 64 * 1024 * 1024;

/** Estimated heap bytes of a remembered signature besides its matches (map entry, key, list). */
const SIGNATURE_BYTES = 150;
/** Estimated heap bytes of a remembered match besides its strings (object, bigint, list slot). */
const MATCH_BYTES = 150;

/** Ids of a match read from the bus: never read again (only a node's own resolved hops are counted). */
const NO_IDS: Record<string, string> = Object.freeze({});

/**
 * What the tracker keeps of one match: what a later stage's hop is measured from, the duplicate check and the
 * labels of a hop resolved later. Not the record: a live node at 1,000 calls sees ~60 signatures a second, and
 * 50,000 signatures' whole records (envelopes, time strings, two objects each) held ~127 MB of a 768 MiB pod,
 * reached after ~14 min of load.
 */
interface Seen {
  readonly stage: string;
  readonly ids: Record<string, string>;
  readonly node: string;
  readonly stream: string;
  readonly targetNs: bigint;
  readonly owner: object | undefined;
}

/** The hop of a match captured at `targetNs` given the matches seen of its signature (those of `from` count). */
function hopFrom(from: string, targetNs: bigint, seen: readonly Seen[]): HopRecord | undefined {
  const p = previousMatch(seen.filter((c) => c.stage === from), targetNs);
  return p === undefined ? undefined : hopFromMatch(from, targetNs, p);
}

/** Matches of one signature a {@link HopTracker} remembers (its stages times the streams each found it in). */
export const MAX_MATCHES_PER_SIGNATURE = 64;

/**
 * Computes hops as matches arrive, from any node (its own, or others' read from the bus). Memory is bounded:
 * per signature a few words per match seen (at most {@link MAX_MATCHES_PER_SIGNATURE}; the ids of a node's own
 * matches only), for at most `maxSignatures` signatures and `maxBytes` estimated bytes.
 */
export class HopTracker {
  readonly #paths: StagePaths;
  readonly #max: number;
  readonly #maxBytes: number;
  /** measurement + signature → matches seen and their estimated bytes. Map order = least recently seen first. */
  readonly #seen = new Map<string, { list: Seen[]; bytes: number }>();
  #bytes = 0;

  constructor(paths: StagePaths, opts: HopTrackerOptions = {}) {
    this.#paths = paths;
    this.#max = opts.maxSignatures ?? 50_000;
    this.#maxBytes = opts.maxBytes ?? HOP_TRACKER_MAX_BYTES;
  }

  /** Signatures remembered. */
  get size(): number {
    return this.#seen.size;
  }

  /** Estimated heap bytes of what is remembered (an estimate from string lengths, on the high side). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Forgets the least recently seen signatures while over a bound. */
  #trim(): void {
    while (this.#seen.size > this.#max || (this.#bytes > this.#maxBytes && this.#seen.size > 0)) {
      const oldest = this.#seen.entries().next().value;
      if (oldest === undefined) break;
      this.#seen.delete(oldest[0]);
      this.#bytes -= oldest[1].bytes;
    }
  }

  /**
   * Notes a match; `owner`: who holds it as its own (an exporter: a tracker may be shared by the nodes of one
   * process), undefined for one read from the bus. Returns its own hop when the previous stage is known (or is
   * the source), and the hops of later stages' matches that were waiting for this one. A match seen twice (the
   * same record from the bus and locally) is noted once.
   */
  observe(m: MatchRecord, owner?: object): { hop?: HopRecord; resolved: ResolvedHop[] } {
    const sigKey = `${m.measurement}\u0000${m.signature_id}`;
    let entry = this.#seen.get(sigKey);
    if (entry) this.#seen.delete(sigKey);
    else {
      entry = { list: [], bytes: SIGNATURE_BYTES + 2 * sigKey.length };
      this.#bytes += entry.bytes;
    }
    this.#seen.set(sigKey, entry);
    this.#trim();
    const list = entry.list;
    const { node, stream } = m.target;
    if (list.some((x) => x.stage === m.stage && x.node === node && x.stream === stream)) {
      return { resolved: [] };
    }
    const targetNs = BigInt(m.target.time_ns);
    // A match read from the bus keeps no ids: they only label a node's own resolved hops.
    const ids = owner === undefined ? NO_IDS : m.ids;
    const own: Seen = { stage: m.stage, ids, node, stream, targetNs, owner };
    const from = previousStage(this.#paths, m.measurement, m.stage);
    const hop = from === SOURCE_STAGE
      ? { from_stage: from, latency_s: diffS(m.source.time_ns, m.target.time_ns) }
      : hopFrom(from, targetNs, list);
    const resolved: ResolvedHop[] = [];
    // Later stages whose previous stage is this one and that had no hop until now.
    const paths = this.#paths[m.measurement] ?? {};
    for (const later of list) {
      if (paths[later.stage] !== m.stage) continue;
      if (hopFrom(m.stage, later.targetNs, list) !== undefined) continue; // had one already
      const h = hopFrom(m.stage, later.targetNs, [own]);
      if (!h) continue;
      const match = {
        measurement: m.measurement,
        signature_id: m.signature_id,
        stage: later.stage,
        ids: later.ids,
      };
      resolved.push({ match, hop: h, owner: later.owner });
    }
    // A signature matches once per stage and stream it reaches; a peer publishing thousands of matches for one
    // signature made each later one a scan of them all (quadratic, on the exporter's turn): beyond the bound, a
    // match gets its hop and resolves others' but is not remembered.
    // (Not when the signature was forgotten above: alone over the bound.)
    if (list.length < MAX_MATCHES_PER_SIGNATURE && this.#seen.get(sigKey) === entry) {
      list.push(own);
      // A node's own match shares its ids with its signature (bounded by the wire format): not counted.
      const bytes = MATCH_BYTES + 2 * (m.stage.length + node.length + stream.length);
      entry.bytes += bytes;
      this.#bytes += bytes;
      this.#trim();
    }
    return hop ? { hop, resolved } : { resolved };
  }
}
