/**
 * Durations as people write them (`90s`, `1h30m`, `250ms`, `7d`): the one unit table of the project, used by the
 * config, the command line and Pixie's relative start times.
 * @module
 */

/** Nanoseconds per unit. A day is 8.64e13 ns: exact in a double, like every entry. */
const UNIT_NS: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3_600e9,
  d: 86_400e9,
};

// Longest unit names first, so "ms" is not read as "m" followed by garbage.
const WHOLE = /^(?:\d+(?:\.\d+)?(?:ns|us|ms|s|m|h|d))+$/;
const PART = /(\d+(?:\.\d+)?)(ns|us|ms|s|m|h|d)/g;

/** The units a duration may use, for messages. */
export const DURATION_EXAMPLES = "168h, 7d, 30m, 90s, 500ms or 1h30m";

/**
 * Parses a duration made of number+unit parts (`1h30m`, `1.5s`, `250ms`; units ns us ms s m h d) to nanoseconds.
 * Undefined when the text is not one, or when it is not above zero.
 */
export function parseDurationNs(text: string): number | undefined {
  if (!WHOLE.test(text)) return undefined;
  let total = 0;
  for (const part of text.matchAll(PART)) total += Number(part[1]) * (UNIT_NS[part[2] ?? ""] ?? 0);
  return total > 0 ? total : undefined;
}

/** {@link parseDurationNs} in whole milliseconds (rounded), undefined when that is not above zero. */
export function parseDuration(text: string): number | undefined {
  const ns = parseDurationNs(text);
  if (ns === undefined) return undefined;
  const ms = Math.round(ns / 1e6);
  return ms > 0 ? ms : undefined;
}
