/**
 * Parsers for the small value languages used in the config: durations, byte sizes, host:port addresses and
 * regular expressions with capture groups. Each returns `undefined` (or an error text) instead of throwing.
 * @module
 */

import { compileLinearRegex, type LinearRegex } from "../util/linear_regex.ts";

/** Durations (`168h`, `7d`, `1h30m`, `250ms`) in milliseconds: the project's one parser, in util/. */
export { parseDuration } from "../util/duration.ts";

const BYTE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/** Parses a byte size such as `1GiB`, `512MiB`, `100MB` or `4096` to a whole number of bytes (> 0). */
export function parseByteSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  if (!m) return undefined;
  const unit = BYTE_UNITS[(m[2] ?? "").toLowerCase()];
  if (unit === undefined) return undefined;
  const bytes = Math.floor(Number(m[1]) * unit);
  return bytes > 0 && Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** A parsed `host:port`. IPv6 hosts keep no brackets. */
export interface HostPort {
  host: string;
  port: number;
}

/**
 * Parses `host:port`, `1.2.3.4:port` or `[::1]:port`. Port 0 is accepted only with `allowPortZero` (a listener
 * that asks the OS for a free port).
 */
export function parseHostPort(text: string, allowPortZero = false): HostPort | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?)):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[4]);
  if (port > 65535 || (port === 0 && !allowPortZero)) return undefined;
  return { host: m[1] ?? m[2] ?? "", port };
}

/** True if `text` is a UUID (any version), as Pixie names clusters. */
export function isUuid(text: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(text);
}

/**
 * Compiles a user pattern (JavaScript syntax, no flags) for the linear-time engine (util/linear_regex.ts) and
 * counts its capturing groups, named ones included. Returns the error text when it does not compile or needs
 * backtracking (lookarounds, backreferences).
 */
export function compilePattern(pattern: string): { regex: LinearRegex; groups: number } | { error: string } {
  const regex = compileLinearRegex(pattern);
  if ("error" in regex) return regex;
  return { regex, groups: regex.groups };
}
