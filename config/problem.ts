/**
 * A problem before it has a file position, and the helpers to render key paths and found values. The loader
 * turns problems into {@link ConfigIssue}s once it knows where each path sits in the file.
 * @module
 */

import type { KeyPath } from "./schema_walk.ts";

/** A problem at a key path; `offset` when its position in the text is known more precisely than the path. */
export interface Problem {
  path: KeyPath;
  expected: string;
  found: string;
  hint?: string;
  /** Character offset in the source text. */
  offset?: number;
  /** Point at the key itself rather than its value (unknown keys). */
  onKey?: boolean;
}

/** Renders a key path as `measurements[0].signature_rules.audio.codec`. */
export function formatKeyPath(path: KeyPath): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** The value at `path` in plain data, or undefined. */
export function valueAt(data: unknown, path: KeyPath): unknown {
  let v = data;
  for (const seg of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

/** Where secrets are in the document, so messages can name them without showing them. */
export interface SecretIndex {
  /** Formatted key path → the variable the value came from ("" for a literal secret). */
  byPath: Map<string, string>;
  /** Secret value → the variable it came from ("" for a literal secret). */
  byValue: Map<string, string>;
}

/** An empty {@link SecretIndex}. */
export function emptySecretIndex(): SecretIndex {
  return { byPath: new Map(), byValue: new Map() };
}

function secretLabel(variable: string): string {
  return variable ? `<from $${variable}>` : "<secret>";
}

/** A short, quoted rendering of a found value; secrets render as `<from $VAR>` or `<secret>`. */
export function renderFound(value: unknown, path: KeyPath, secrets: SecretIndex): string {
  const variable = secrets.byPath.get(formatKeyPath(path));
  if (variable !== undefined) return secretLabel(variable);
  if (value === undefined) return "nothing";
  if (value === null) return "an empty value";
  if (typeof value === "string") {
    for (const [secret, from] of secrets.byValue) if (value.includes(secret)) return secretLabel(from);
    const firstLine = value.split("\n")[0] ?? "";
    const cut = firstLine.length > 60 ? firstLine.slice(0, 57) : firstLine;
    return JSON.stringify(cut) + (cut === value ? "" : "…");
  }
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return String(value);
}
