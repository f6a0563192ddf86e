/**
 * `/readyz` of a live sensor reading Pixie: ready while Vizier's HealthCheck is OK and the query stream answers.
 * Vizier sends a keep-alive on the stream about every 2 s even when no row matches, and the stream re-opens
 * itself after 30 s without one, so a stream silent for a minute is not delivering (a proxy that keeps the
 * call open, re-runs that keep failing) even though HealthCheck, a separate call, may still say OK.
 * @module
 */

import type { ProbeResult } from "../http/server.ts";

/** A query stream silent for longer than this (ms) makes the sensor not ready: two of its re-open periods. */
export const STREAM_SILENT_MS = 60_000;

/** What the rule reads. */
export interface PixieReadinessInput {
  /** Vizier's HealthCheck reports OK (PixieHealth.healthy). */
  healthy: boolean;
  /** When the query stream last answered, ms (undefined: not yet). */
  lastResponseMs: number | undefined;
  /** When the sensor started reading, ms: a stream gets {@link STREAM_SILENT_MS} for its first answer. */
  startedMs: number;
}

/** The `/readyz` answer for {@link PixieReadinessInput} at `nowMs`. */
export function pixieReadiness(s: PixieReadinessInput, nowMs: number): ProbeResult {
  if (!s.healthy) return { ok: false, detail: "pixie not healthy" };
  const quietMs = nowMs - (s.lastResponseMs ?? s.startedMs);
  if (quietMs > STREAM_SILENT_MS) {
    const secs = Math.round(quietMs / 1000);
    return {
      ok: false,
      detail: s.lastResponseMs === undefined
        ? `pixie healthy, but its query stream has not answered in ${secs} s since the start`
        : `pixie healthy, but its query stream has been silent for ${secs} s (re-running)`,
    };
  }
  return { ok: true, detail: "pixie healthy" };
}
