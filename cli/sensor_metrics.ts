/**
 * The metrics set of a sensor, sized by the config, with every configured measurement's and stage's counters at
 * 0 from the start (Prometheus practice: no missing series). One place for `run`, `analyze` and `demo`.
 * @module
 */
import type { Config } from "../config/schema.ts";
import { FsmMetrics } from "../http/metrics.ts";

/** A sensor's metrics for `config`. */
export function sensorMetrics(config: Config): FsmMetrics {
  const metrics = new FsmMetrics({
    exemplars: config.metrics.exemplars,
    lastSeries: config.metrics.latency_last_series,
    lastTtlMs: config.metrics.latency_last_ttl_seconds * 1000,
  });
  metrics.initMeasurements(config.measurements);
  return metrics;
}
