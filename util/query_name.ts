/**
 * The name of a configured query: `<measurement>/<tap>`, where the tap is `source` for a measurement's
 * signature_rules and the stage name for each match rule. Pixie queries, packet taps, rows, metrics labels and
 * diagnoses all carry it; this module is the one place that builds and splits it.
 *
 * "Stream" elsewhere means one audio stream, keyed by its `stream_key`; a tap carries many of them.
 * @module
 */

/** The tap part of a measurement's signature_rules query. */
export const SOURCE_TAP = "source";

/** `<measurement>/<tap>`. */
export function queryName(measurement: string, tap: string): string {
  return `${measurement}/${tap}`;
}

/** Splits a query name into its parts; the tap is after the last slash (measurement names may hold one). */
export function parseQueryName(query: string): { measurement: string; tap: string } | undefined {
  const slash = query.lastIndexOf("/");
  if (slash <= 0 || slash === query.length - 1) return undefined;
  return { measurement: query.slice(0, slash), tap: query.slice(slash + 1) };
}

/** Every query name of a measurement: its source first, then its stages in config order. */
export function queryNamesOf(m: { name: string; match_rules: readonly { stage: string }[] }): string[] {
  return [queryName(m.name, SOURCE_TAP), ...m.match_rules.map((r) => queryName(m.name, r.stage))];
}
