/**
 * The name of a configured query: `<measurement>/<tap>`, where the tap is `source` for a measurement's
 * signature_rules and the stage name for each match rule. Pixie queries, packet taps, rows, metrics labels and
 * diagnoses all carry it; this module is the one place that builds and splits it.
 *
 * (`SOURCE_STREAM` and the `stream` part of {@link parseQueryName} predate the word "tap"; "stream" otherwise
 * means one audio stream, keyed by its `stream_key`.)
 * @module
 */

/** The tap part of a measurement's signature_rules query. */
export const SOURCE_STREAM = "source";

/** `<measurement>/<tap>`. */
export function queryName(measurement: string, tap: string): string {
  return `${measurement}/${tap}`;
}

/** Splits a query name into its parts; the tap (`stream`) is after the last slash (measurement names may hold one). */
export function parseQueryName(query: string): { measurement: string; stream: string } | undefined {
  const slash = query.lastIndexOf("/");
  if (slash <= 0 || slash === query.length - 1) return undefined;
  return { measurement: query.slice(0, slash), stream: query.slice(slash + 1) };
}

/** Every query name of a measurement: its source first, then its stages in config order. */
export function queryNamesOf(m: { name: string; match_rules: readonly { stage: string }[] }): string[] {
  return [queryName(m.name, SOURCE_STREAM), ...m.match_rules.map((r) => queryName(m.name, r.stage))];
}
