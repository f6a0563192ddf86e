/**
 * Renders prom-client's JSON view of a registry as OpenMetrics 1.0 text, with exemplars.
 * @module
 */
import type client from "prom-client";

type MetricJson = Awaited<ReturnType<client.Registry["getMetricsAsJSON"]>>[number];

interface ValueJson {
  value: number;
  labels?: Record<string, string | number>;
  metricName?: string;
  exemplar?: { labelSet: Record<string, string | number>; value: number; timestamp: number } | null;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

/** OpenMetrics wants canonical floats for `le` (e.g. `1.0`, `+Inf`). */
function canonicalFloat(v: number | string): string {
  if (typeof v === "string") return v;
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  if (Number.isNaN(v)) return "NaN";
  return Number.isInteger(v) ? v.toFixed(1) : String(v);
}

function formatLabels(labels: Record<string, string | number>, canonicalLe: boolean): string {
  const parts = Object.entries(labels).map(([k, v]) => {
    const text = canonicalLe && k === "le" ? canonicalFloat(v) : String(v);
    return `${k}="${escapeLabel(text)}"`;
  });
  return parts.length ? `{${parts.join(",")}}` : "";
}

function formatValue(v: number): string {
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** Renders metrics as OpenMetrics text ending with `# EOF`. */
export function renderOpenMetrics(metrics: MetricJson[]): string {
  const out: string[] = [];
  for (const m of metrics) {
    const type = String(m.type);
    // OpenMetrics names a counter family without `_total`; its samples carry the suffix.
    const family = type === "counter" ? m.name.replace(/_total$/, "") : m.name;
    out.push(`# HELP ${family} ${m.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
    out.push(`# TYPE ${family} ${type}`);
    for (const v of (m.values ?? []) as ValueJson[]) {
      const name = type === "counter" ? `${family}_total` : (v.metricName ?? m.name);
      let line = `${name}${formatLabels(v.labels ?? {}, true)} ${formatValue(v.value)}`;
      if (v.exemplar && Object.keys(v.exemplar.labelSet).length > 0) {
        line += ` # ${formatLabels(v.exemplar.labelSet, false) || "{}"} ${formatValue(v.exemplar.value)} ${
          v.exemplar.timestamp.toFixed(3)
        }`;
      }
      out.push(line);
    }
  }
  out.push("# EOF");
  return out.join("\n") + "\n";
}
