/**
 * Context ids from the message envelope (`metadata_extraction.id_patterns`): each pattern's single capture group
 * is searched in the payload text, e.g. `interval_id":"([a-f0-9-]{36})`.
 * @module
 */

import type { PayloadEnvelope } from "./payload.ts";
import { compileLinearRegex, type LinearRegex } from "../../util/linear_regex.ts";

/** A compiled id pattern. */
export interface IdPattern {
  idType: string;
  /** Linear-time matcher (util/linear_regex.ts): a hostile message cannot make it backtrack. */
  regex: Pick<LinearRegex, "capture">;
}

/**
 * Compiles patterns (already validated by the config loader: exactly one capture group each); throws on one
 * that does not compile in the linear-time engine.
 */
export function compileIdPatterns(patterns: readonly { pattern: string; id_type: string }[]): IdPattern[] {
  return patterns.map((p) => {
    const regex = compileLinearRegex(p.pattern);
    if ("error" in regex) throw new SyntaxError(`id pattern ${JSON.stringify(p.pattern)}: ${regex.error}`);
    return { idType: p.id_type, regex };
  });
}

/**
 * Extracts ids from a payload. Bytes are read as latin1 (the envelope's cached view, shared with the decoder) so
 * binary bodies never throw and ASCII ids match; an id's bytes are then read as the UTF-8 they are (invalid
 * sequences become U+FFFD). The first match of each pattern wins. Patterns see the first MAX_REGEX_INPUT (256 KiB)
 * characters of a message only.
 */
export function extractIds(payload: PayloadEnvelope, patterns: readonly IdPattern[]): Record<string, string> {
  if (patterns.length === 0) return {};
  const text = payload.latin1();
  const ids: Record<string, string> = {};
  for (const p of patterns) {
    // Own properties only: an id name is any identifier, and `in` finds `constructor` on every object, plain
    // assignment to `__proto__` sets the prototype: such ids were never extracted.
    if (Object.hasOwn(ids, p.idType)) continue;
    const captured = p.regex.capture(text);
    if (captured === undefined) continue;
    const id = utf8Of(captured);
    if (p.idType === "__proto__") setOwn(ids, p.idType, id);
    else ids[p.idType] = id;
  }
  return ids;
}

const utf8 = new TextDecoder();
const NON_ASCII = /[\u0080-\u00ff]/;

/**
 * The text whose UTF-8 bytes `latin1` holds one a character. Taken as latin1, "Zoë" in a message was the id "ZoÃ«"
 * in every signature and record (and twice its bytes against the wire's 64-byte cap on an id).
 */
function utf8Of(latin1: string): string {
  if (!NON_ASCII.test(latin1)) return latin1;
  const bytes = new Uint8Array(latin1.length);
  for (let i = 0; i < latin1.length; i++) bytes[i] = latin1.charCodeAt(i);
  return utf8.decode(bytes);
}

/** Sets an own enumerable property, even `__proto__`, which plain assignment would take as the prototype. */
function setOwn(o: Record<string, string>, key: string, value: string): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}
