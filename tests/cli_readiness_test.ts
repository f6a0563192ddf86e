import { equal, match } from "node:assert/strict";
import { pixieReadiness, STREAM_SILENT_MS } from "../cli/readiness.ts";

const T = 1_800_000_000_000;

Deno.test("readyz: Pixie healthy and its query stream answering", () => {
  const r = pixieReadiness({ healthy: true, lastResponseMs: T - 2_000, startedMs: T - 600_000 }, T);
  equal(r.ok, true);
  equal(r.detail, "pixie healthy");
  equal(
    pixieReadiness({ healthy: false, lastResponseMs: T, startedMs: T }, T).ok,
    false,
    "HealthCheck first",
  );
});

Deno.test("readyz: a query stream silent for over a minute is not ready though HealthCheck says OK", () => {
  const at = (quietMs: number) =>
    pixieReadiness({ healthy: true, lastResponseMs: T - quietMs, startedMs: T - 3_600_000 }, T);
  equal(at(STREAM_SILENT_MS).ok, true, "a minute is two re-open periods: still re-opening");
  const r = at(STREAM_SILENT_MS + 1_000);
  equal(r.ok, false);
  match(r.detail, /query stream has been silent for 61 s/);
});

Deno.test("readyz: a stream gets a minute for its first answer, then counts as silent since the start", () => {
  const at = (sinceStartMs: number) =>
    pixieReadiness({ healthy: true, lastResponseMs: undefined, startedMs: T - sinceStartMs }, T);
  equal(at(5_000).ok, true);
  const r = at(STREAM_SILENT_MS + 5_000);
  equal(r.ok, false);
  match(r.detail, /has not answered in 65 s since the start/);
});
