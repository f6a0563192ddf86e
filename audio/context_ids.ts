/**
 * Context ids from the message envelope (`metadata_extraction.id_patterns`): each pattern's single capture group
 * is searched in the payload text, e.g. `interval_id":"([a-f0-9-]{36})`.
 * @module
 */

/** A compiled id pattern. */
export interface IdPattern {
  idType: string;
  regex: RegExp;
}

import type { PayloadEnvelope } from "./envelope.ts";

/** Compiles patterns (already validated by the config loader: exactly one capture group each). */
export function compileIdPatterns(patterns: readonly { pattern: string; id_type: string }[]): IdPattern[] {
  return patterns.map((p) => ({ idType: p.id_type, regex: new RegExp(p.pattern) }));
}

/**
 * Extracts ids from a payload. Bytes are read as latin1 (the envelope's cached view, shared with the decoder) so
 * binary bodies never throw and ASCII ids match; the first match of each pattern wins.
 */
export function extractIds(payload: PayloadEnvelope, patterns: readonly IdPattern[]): Record<string, string> {
  if (patterns.length === 0) return {};
  const text = payload.latin1();
  const ids: Record<string, string> = {};
  for (const p of patterns) {
    if (p.idType in ids) continue;
    const m = p.regex.exec(text);
    if (m && m[1] !== undefined) ids[p.idType] = m[1];
  }
  return ids;
}
