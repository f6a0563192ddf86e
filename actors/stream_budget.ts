/**
 * A live sensor's memory budget: how many streams it follows and how much target lookback each keeps, so that
 * what `engine.max_streams` lets in fits the memory the node has (the container's limit, or
 * `engine.memory_limit_mib`). A pod of 768 MiB (805 MB) at the default cap (1,000 source streams and 1,000
 * target streams) held 780-840 MB and was still growing; past the limit it is OOM-killed and every stream is
 * lost.
 *
 * Memory grows with the streams followed and the signatures active, so the plan is made once, at start, from
 * what each stream costs once its lookback is full (target: {@link TargetPipeline.fullBytes} plus a measured
 * per-stream overhead; source: a measured constant) and what engine.max_active_signatures hold
 * ({@link SIGNATURE_BYTES} each). When the caps do not fit, the target lookback is shortened first, down to
 * {@link MIN_LIVE_LOOKBACK_SECONDS}: a live node's signatures come from sources read at the same time as its
 * targets, and a signature arriving a few seconds after its block reads about {@link LIVE_REACH_SECONDS} of
 * target audio; only signatures later than that lose audio they would have searched. If even that does not
 * fit, fewer streams are followed (both caps in proportion), and the streams refused are counted where the cap's
 * are (`fsmpx_rows_skipped_total{reason="stream_limit"}`, `fsmpx_streams_evicted_total`).
 *
 * Only live nodes plan: a replay (`analyze`, `run --capture`) must give the same records wherever it runs, and
 * its memory is sized by the capture benchmark instead (k8s/README.md).
 * @module
 */
import { TargetPipeline } from "../audio/pipeline.ts";

const MB = 1e6;
const MIB = 1024 * 1024;

/**
 * What a live sensor holds beyond its streams' and its active signatures' bytes: the runtime (~98 MB at start),
 * Pixie's gRPC client and NATS (~17 MB), WebAssembly memories (~17 MB), and the rows in flight and their garbage,
 * which grow with the rows read rather than the streams followed. Measured: `bench/live_load.ts --calls 1000
 * --seconds 60 --warmup 10 --pod --max-streams 1000` without a plan (2,000 streams at a 30 s lookback, 620 MB by
 * this module's costs, and ~4,700 active signatures, ~61 MB by {@link SIGNATURE_BYTES}) peaked at 839 MB
 * (session 12, a quiet host; session 11: 783-825 MB), i.e. ~160 MB besides.
 */
export const LIVE_BASE_BYTES = 160 * MB;
/**
 * What an active signature costs a live node (its index tables, the registry's and the Matcher's copies, the
 * allocator's and collector's slack): RSS grew 60 MB while the active signatures grew from 3,441 to 7,975 and
 * nothing else did (`deno run -A bench/live_memory.ts --calls 1000 --seconds 90`: 573 MB at 40 s, 628-639 MB at
 * 90 s, every stream's lookback full since ~15 s). A live node holds up to engine.max_active_signatures per
 * measurement (the registry's TTL, 120 s by default, reaches 10,000 at 1,000 calls after ~110 s): 130 MB.
 */
export const SIGNATURE_BYTES = 13_000;
/**
 * What every stream costs beyond its pipeline's samples, frames and timeline: decoder, dedupe, intake state, the
 * matcher's tables, V8 objects, and the allocator's and collector's slack, which grows with the streams (the
 * slope of live RSS against streams, 0.32 MiB a stream between 250 and 500 calls in session 9, less the
 * pipelines' own ~193 KB a stream on average).
 */
export const STREAM_OVERHEAD_BYTES = 142_000;
/** A source stream's pipeline: 4 s ring of Int16 (64 KB), 30 s of frames, timeline (110 KB measured at 1,000). */
export const SOURCE_PIPELINE_BYTES = 110_000;
/**
 * Share of the memory limit the streams are planned to fill up to (with {@link LIVE_BASE_BYTES}): the rest is
 * room for bursts (a Pixie response of rows, collections running late) so the limit is not met at a peak.
 */
export const BUDGET_FRACTION = 0.9;
/**
 * Target audio a live signature reads when it arrives within a few seconds of its block's end: its block
 * (2.05 s), the clock skew allowance before it (2 s), rephasing and alignment margins and its own delay (8.3 s for
 * 4 s late, pipeline.ts's TARGET_WARM_SAMPLES).
 */
export const LIVE_REACH_SECONDS = 8.3;
/**
 * Shortest target lookback a budget brings a live sensor down to: {@link LIVE_REACH_SECONDS} and ~4 s more for
 * signatures that arrive late (a detector lagging its matcher, the bus).
 */
export const MIN_LIVE_LOOKBACK_SECONDS = 12;

/** What a node's config asks for. */
export interface StreamDemand {
  /** engine.lookback_seconds. */
  lookbackSeconds: number;
  /** engine.max_streams: per measurement's source, and for all stages together (shared fairly, StreamTable). */
  maxStreams: number;
  /** Measurements (each has a Detector following up to `maxStreams` source streams). */
  measurements: number;
  /** engine.max_active_signatures (per measurement; default 0: not planned for). */
  maxActiveSignatures?: number;
}

/** What a node follows. */
export interface StreamPlan {
  /** Target lookback, s (the configured one unless the budget shortened it). */
  lookbackSeconds: number;
  /** Source streams per measurement at once. */
  maxSourceStreams: number;
  /** Target streams over all stages at once. */
  maxTargetStreams: number;
  /** Bytes planned for the streams: the limit's share less the base and the active signatures (undefined: no
   * budget). */
  budgetBytes?: number;
  /** Bytes the streams take at the plan's caps and lookback once full. */
  plannedBytes: number;
  /** What the budget changed: nothing, the lookback, or the lookback and the caps. */
  limited: "none" | "lookback" | "streams";
}

/** Bytes of a target stream with `lookbackSeconds`, overhead included. */
export function targetStreamBytes(lookbackSeconds: number): number {
  return TargetPipeline.fullBytes(lookbackSeconds) + STREAM_OVERHEAD_BYTES;
}

/** Bytes of a source stream, overhead included. */
export function sourceStreamBytes(): number {
  return SOURCE_PIPELINE_BYTES + STREAM_OVERHEAD_BYTES;
}

function demandBytes(d: StreamDemand, lookbackSeconds: number, sources: number, targets: number): number {
  return d.measurements * sources * sourceStreamBytes() + targets * targetStreamBytes(lookbackSeconds);
}

/**
 * The plan for `demand` within `limitBytes` of memory (undefined: no limit, the config as it is). The lookback
 * is shortened in steps of a quarter second, no lower than {@link MIN_LIVE_LOOKBACK_SECONDS} (nor than the
 * configured one); then both caps are scaled down together, at least one stream each.
 */
export function planStreams(demand: StreamDemand, limitBytes: number | undefined): StreamPlan {
  const asked = demand.lookbackSeconds;
  const full = demandBytes(demand, asked, demand.maxStreams, demand.maxStreams);
  const plan: StreamPlan = {
    lookbackSeconds: asked,
    maxSourceStreams: demand.maxStreams,
    maxTargetStreams: demand.maxStreams,
    plannedBytes: full,
    limited: "none",
  };
  if (limitBytes === undefined || !(limitBytes > 0)) return plan;
  const signatures = demand.measurements * (demand.maxActiveSignatures ?? 0) * SIGNATURE_BYTES;
  const budget = Math.max(0, limitBytes * BUDGET_FRACTION - LIVE_BASE_BYTES - signatures);
  plan.budgetBytes = budget;
  if (full <= budget) return plan;
  const floor = Math.min(asked, MIN_LIVE_LOOKBACK_SECONDS);
  let lb = asked;
  while (lb > floor && demandBytes(demand, lb, demand.maxStreams, demand.maxStreams) > budget) {
    lb = Math.max(floor, Math.floor(lb * 4 - 1) / 4);
  }
  plan.lookbackSeconds = lb;
  plan.limited = "lookback";
  plan.plannedBytes = demandBytes(demand, lb, demand.maxStreams, demand.maxStreams);
  if (plan.plannedBytes <= budget) return plan;
  const perCap = demandBytes(demand, lb, 1, 1);
  const n = Math.max(1, Math.floor(budget / perCap));
  plan.maxSourceStreams = plan.maxTargetStreams = Math.min(n, demand.maxStreams);
  plan.plannedBytes = demandBytes(demand, lb, n, n);
  plan.limited = "streams";
  return plan;
}

/**
 * The memory limit of this process's container, bytes: cgroup v2's `memory.max` or v1's
 * `memory.limit_in_bytes` of the cgroup /proc/self/cgroup names (also where deno looks with
 * `DENO_USE_CGROUPS=1`), else the root's; undefined outside a container or without a limit. `read` is for tests.
 */
export function containerMemoryLimit(
  read: (path: string) => string | undefined = readOrUndefined,
): number | undefined {
  const cgroup = read("/proc/self/cgroup") ?? "";
  const v2 = /^0::(.*)$/m.exec(cgroup)?.[1];
  const v1 = /^\d+:(?:[^:]*,)?memory(?:,[^:]*)?:(.*)$/m.exec(cgroup)?.[1];
  const candidates = [
    ...(v2 !== undefined
      ? [`/sys/fs/cgroup${v2 === "/" ? "" : v2}/memory.max`, "/sys/fs/cgroup/memory.max"]
      : []),
    ...(v1 !== undefined
      ? [
        `/sys/fs/cgroup/memory${v1 === "/" ? "" : v1}/memory.limit_in_bytes`,
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
      ]
      : []),
  ];
  for (const path of candidates) {
    const text = read(path)?.trim();
    if (text === undefined || text === "") continue;
    if (text === "max") return undefined;
    const n = Number(text);
    // cgroup v1 says "no limit" with a page-rounded 2^63.
    if (Number.isFinite(n) && n > 0 && n < 2 ** 62) return n;
    return undefined;
  }
  return undefined;
}

function readOrUndefined(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

/** The variable the DaemonSet sets to its container's memory limit, MiB (the Downward API's limits.memory). */
export const MEMORY_LIMIT_ENV = "FSMPX_MEMORY_LIMIT_MIB";

/**
 * The limit a live node plans for, bytes: `engine.memory_limit_mib` when set (0: none), else
 * {@link MEMORY_LIMIT_ENV} (0: none), else the container's from the cgroup files (readable only with
 * `--allow-all`: deno asks for all access to /proc/self and /sys, which the run task does not grant). `env` and
 * `read` are for tests.
 */
export function liveMemoryLimit(
  configuredMiB: number | undefined,
  env: string | undefined = envOrUndefined(MEMORY_LIMIT_ENV),
  read?: (path: string) => string | undefined,
): number | undefined {
  const mib = configuredMiB ?? (env === undefined || env.trim() === "" ? undefined : Number(env));
  if (mib !== undefined && Number.isFinite(mib)) return mib > 0 ? mib * MIB : undefined;
  return containerMemoryLimit(read);
}

function envOrUndefined(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}
