/**
 * The Health page's counts, read from the nodes' own metrics when they run in the UI's process (demo).
 * @module
 */
import type { FsmMetrics } from "../metrics.ts";
import type { HealthCounts } from "./store.ts";

type Labels = Record<string, string | number>;

/** Sums decode errors, truncated payloads and mailbox drops over the nodes' metrics. */
export async function healthFromMetrics(all: Iterable<FsmMetrics>): Promise<HealthCounts> {
  const decode = new Map<string, { measurement: string; stream: string; reason: string; count: number }>();
  const truncated = new Map<string, { query: string; count: number }>();
  const drops = new Map<string, { actor: string; reason: string; count: number }>();
  for (const m of all) {
    for (const metric of await m.registry.getMetricsAsJSON()) {
      for (const v of (metric.values ?? []) as { value: number; labels?: Labels }[]) {
        const l = v.labels ?? {};
        const s = (k: string) => String(l[k] ?? "");
        if (v.value <= 0) continue;
        if (metric.name === "fsmpx_payload_decode_errors_total") {
          const k = `${s("measurement")}\u0000${s("stream")}\u0000${s("reason")}`;
          const e = decode.get(k) ??
            { measurement: s("measurement"), stream: s("stream"), reason: s("reason"), count: 0 };
          e.count += v.value;
          decode.set(k, e);
        } else if (metric.name === "fsmpx_payloads_truncated_total") {
          const e = truncated.get(s("query")) ?? { query: s("query"), count: 0 };
          e.count += v.value;
          truncated.set(s("query"), e);
        } else if (metric.name === "fsmpx_mailbox_dropped_total") {
          const k = `${s("actor")}\u0000${s("reason")}`;
          const e = drops.get(k) ?? { actor: s("actor"), reason: s("reason"), count: 0 };
          e.count += v.value;
          drops.set(k, e);
        }
      }
    }
  }
  const byCount = <T extends { count: number }>(m: Map<string, T>) =>
    [...m.values()].sort((a, b) => b.count - a.count);
  return { decodeErrors: byCount(decode), truncated: byCount(truncated), drops: byCount(drops) };
}
