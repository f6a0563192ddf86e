/**
 * SignatureRegistry: one per node. Every signature of the cluster arrives here from the bus; the registry keeps
 * those still matchable (TTL in event time, bounded size), tells the Matcher which to activate and deactivate,
 * and reports `active_signatures`.
 * @module
 */
import type { ActorFactory, ActorRef } from "./runtime.ts";
import type { ExporterMsg, MatcherMsg, RegistryMsg } from "./messages.ts";
import type { Config } from "../config/schema.ts";
import type { Signature } from "../audio/types.ts";

/** What the registry talks to. */
export interface RegistryDeps {
  config: Config;
  matcher: ActorRef<MatcherMsg>;
  exporter: ActorRef<ExporterMsg>;
}

interface Active {
  expiresNs: bigint;
}

/** Builds the registry's behaviour. */
export function signatureRegistry(deps: RegistryDeps): ActorFactory<RegistryMsg> {
  const ttlNs = new Map(
    deps.config.measurements.map((m) => [m.name, BigInt(m.ttl_seconds) * 1_000_000_000n]),
  );
  const maxActive = deps.config.engine.max_active_signatures;

  return (ctx) => {
    // Per measurement, in arrival order (≈ source time order), so eviction takes the oldest first.
    const active = new Map<string, Map<string, Active>>();
    let watermarkNs = 0n;
    let expiredOnArrival = 0;

    const setOf = (measurement: string) => {
      let s = active.get(measurement);
      if (!s) active.set(measurement, s = new Map());
      return s;
    };
    const publishCount = (measurement: string) =>
      deps.exporter.tell({ kind: "active", measurement, count: setOf(measurement).size });

    const add = async (sig: Signature) => {
      const ttl = ttlNs.get(sig.measurement);
      if (ttl === undefined) return; // a measurement this node is not configured for
      const set = setOf(sig.measurement);
      if (set.has(sig.id)) return;
      const expiresNs = sig.source.timeNs + ttl;
      if (expiresNs < watermarkNs) {
        expiredOnArrival++;
        if (expiredOnArrival === 1 || expiredOnArrival % 1000 === 0) {
          ctx.log.debug("signature already past its TTL on arrival; ignored", { count: expiredOnArrival });
        }
        return;
      }
      set.set(sig.id, { expiresNs });
      while (set.size > maxActive) {
        const oldest = set.keys().next().value;
        if (oldest === undefined) break;
        set.delete(oldest);
        await deps.matcher.tell({ kind: "deactivate", measurement: sig.measurement, id: oldest });
      }
      await deps.matcher.tell({ kind: "activate", sig });
      await publishCount(sig.measurement);
    };

    const expire = async (nowNs: bigint) => {
      if (nowNs <= watermarkNs) return;
      watermarkNs = nowNs;
      for (const [measurement, set] of active) {
        let changed = false;
        for (const [id, a] of set) {
          if (a.expiresNs < nowNs) {
            set.delete(id);
            changed = true;
            await deps.matcher.tell({ kind: "deactivate", measurement, id });
          }
        }
        if (changed) await publishCount(measurement);
      }
    };

    return {
      async receive(msg) {
        if (msg.kind === "signature") return await add(msg.sig);
        if (msg.kind === "tick") return await expire(msg.nowNs);
        msg.reply(true);
      },
    };
  };
}
