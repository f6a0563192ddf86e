/**
 * SignatureRegistry: one per node. Every signature of the cluster arrives here from the bus; the registry keeps
 * those still matchable (TTL in event time, bounded size), tells the Matcher which to activate and deactivate,
 * and reports `active_signatures`.
 *
 * It refuses what cannot be real, so that a wrong clock or a forged message cannot hold the active set: a
 * signature further ahead of the node's event clock (or, live, of the wall clock) than `engine.clock_window_seconds`
 * is refused on arrival or dropped at the next tick (`future`), one already past its TTL is refused (`late`).
 * Every signature that leaves or is refused is counted by reason (`fsmpx_signatures_expired_total`).
 *
 * The active set outlives a crash of the registry, and a (re)started Matcher asks for it (`resync`): the Matcher
 * starts empty, so without this no live signature would be searched again on the node after a Matcher crash.
 * @module
 */
import type { ActorFactory, ActorRef } from "./runtime.ts";
import {
  type ExpireReason,
  type ExporterMsg,
  type MatcherMsg,
  NO_COUNTERS,
  type NodeCounters,
  type RegistryMsg,
} from "./messages.ts";
import type { Config } from "../config/schema.ts";
import type { Signature } from "../audio/types.ts";
import { SIGNATURE_MAX_FRAMES } from "../audio/fingerprint/signature.ts";

/** What the registry talks to. */
export interface RegistryDeps {
  config: Config;
  matcher: ActorRef<MatcherMsg>;
  exporter: ActorRef<ExporterMsg>;
  counters?: NodeCounters;
  /** Wall clock, ns (live nodes): signatures are judged against it on arrival as well as at each tick. */
  wallNs?: () => bigint;
}

interface Active {
  sig: Signature;
  expiresNs: bigint;
}

const NS = 1_000_000_000n;

/** Whether a signature's arrays are ones the matcher's index accepts (a bad one would crash the Matcher). */
function wellFormed(sig: Signature): boolean {
  const n = sig.fingerprint?.length ?? 0;
  return n >= 1 && n <= SIGNATURE_MAX_FRAMES && (sig.mask === undefined || sig.mask.length >= (n + 7) >> 3) &&
    typeof sig.source?.timeNs === "bigint";
}

/** Builds the registry's behaviour. */
export function signatureRegistry(deps: RegistryDeps): ActorFactory<RegistryMsg> {
  const ttlNs = new Map(deps.config.measurements.map((m) => [m.name, BigInt(m.ttl_seconds) * NS]));
  const engine = deps.config.engine;
  const maxActive = engine.max_active_signatures;
  const windowNs = BigInt(Math.round(engine.clock_window_seconds * 1e9));
  const counters = deps.counters ?? NO_COUNTERS;
  // Outside the factory: a restarted registry keeps what is active (the Matcher still holds the same set).
  // Per measurement, in arrival order (≈ source time order), so eviction takes the oldest first; one
  // measurement's flood cannot push out another's signatures.
  const active = new Map<string, Map<string, Active>>();
  let watermarkNs = 0n;

  return (ctx) => {
    const refused = new Map<ExpireReason, number>();
    const setOf = (measurement: string) => {
      let s = active.get(measurement);
      if (!s) active.set(measurement, s = new Map());
      return s;
    };
    const publishCount = (measurement: string) =>
      deps.exporter.tell({ kind: "active", measurement, count: setOf(measurement).size });
    const refuse = (sig: Signature, reason: ExpireReason) => {
      counters.signaturesExpired(sig.measurement, reason);
      const n = (refused.get(reason) ?? 0) + 1;
      refused.set(reason, n);
      if (n === 1 || n % 1000 === 0) {
        ctx.log.debug("signature refused", {
          reason,
          count: n,
          node: sig.source.node,
          measurement: sig.measurement,
        });
      }
    };
    const resync = async () => {
      for (const set of active.values()) {
        for (const { sig } of set.values()) await deps.matcher.tell({ kind: "activate", sig });
      }
    };

    const add = async (sig: Signature) => {
      const ttl = ttlNs.get(sig.measurement);
      if (ttl === undefined) return; // a measurement this node is not configured for
      if (!wellFormed(sig)) return refuse(sig, "invalid");
      const set = setOf(sig.measurement);
      if (set.has(sig.id)) return;
      const t = sig.source.timeNs;
      const expiresNs = t + ttl;
      if (expiresNs < watermarkNs) return refuse(sig, "late");
      if (deps.wallNs) {
        const wall = deps.wallNs();
        if (t > wall + windowNs) return refuse(sig, "future");
        if (expiresNs + windowNs < wall) return refuse(sig, "late");
      }
      set.set(sig.id, { sig, expiresNs });
      while (set.size > maxActive) {
        const oldest = set.keys().next().value;
        if (oldest === undefined) break;
        set.delete(oldest);
        counters.signaturesExpired(sig.measurement, "evicted");
        await deps.matcher.tell({ kind: "deactivate", measurement: sig.measurement, id: oldest });
      }
      await deps.matcher.tell({ kind: "activate", sig });
      await publishCount(sig.measurement);
    };

    const expire = async (nowNs: bigint, back = false) => {
      // A step of the rows' clock back (the event clock followed it): fresh signatures are judged by it from now
      // on, or each would be refused as already past its TTL until real time caught up.
      if (back && nowNs < watermarkNs) {
        watermarkNs = nowNs;
        return;
      }
      if (nowNs <= watermarkNs) return;
      watermarkNs = nowNs;
      // Beyond the window ahead: a clock far ahead or a forged time; it would otherwise never expire.
      const horizon = nowNs + windowNs;
      for (const [measurement, set] of active) {
        let changed = false;
        for (const [id, a] of set) {
          const reason: ExpireReason | undefined = a.expiresNs < nowNs
            ? "ttl"
            : a.sig.source.timeNs > horizon
            ? "future"
            : undefined;
          if (reason === undefined) continue;
          set.delete(id);
          changed = true;
          counters.signaturesExpired(measurement, reason);
          await deps.matcher.tell({ kind: "deactivate", measurement, id });
        }
        if (changed) await publishCount(measurement);
      }
    };

    return {
      // A restarted registry makes sure the Matcher holds what it holds (the Matcher ignores ids it has).
      onStart: () => void (ctx.incarnation > 0 ? resync() : undefined),
      async receive(msg) {
        switch (msg.kind) {
          case "signature":
            return await add(msg.sig);
          case "tick":
            return await expire(msg.nowNs, msg.back);
          case "resync":
            return await resync();
          case "finish":
            msg.reply(true);
        }
      },
    };
  };
}
