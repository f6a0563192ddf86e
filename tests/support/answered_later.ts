/**
 * Captured rows as Pixie's http_events gives them: a row is a request with its response, `time_` is the response's
 * and `latency` the time from the request to it (Stirling's socket_trace_connector.cc). The committed captures
 * hold the requests' times; this moves each row to its response's (tests of `columns.latency`).
 * @module
 */
import type { Row } from "../../pixie/row.ts";
import { xorshift32 } from "./rng.ts";

/**
 * `rows` answered later: each query's service 5–800 ms after a request (seeded), give or take 3 ms, so each
 * stream's requests stay in order (HTTP/1 sends a connection's next request after the answer, and a pipeline's
 * chunks are 20 ms or more apart); `latency` set, in time order.
 */
export function answeredLater(rows: readonly Row[], seed: number): Row[] {
  const r = xorshift32(seed);
  const base = new Map<string, bigint>();
  const out = rows.map((row) => {
    if (!base.has(row.query)) base.set(row.query, 5_000_000n + BigInt(r() % 795_000_000));
    const latency = base.get(row.query)! + BigInt(r() % 3_000_000);
    const time = row.time + latency;
    return { ...row, time, columns: { ...row.columns, time_: time, latency } };
  });
  return out.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
}
