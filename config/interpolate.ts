/**
 * `${VAR}` and `${VAR:-default}` interpolation on the parsed YAML tree. Working on scalar nodes rather than the
 * raw text keeps every node's position right and lets a value come from the environment without YAML
 * re-parsing it. `$${` is a literal `${`. Secrets found on the way are registered for log masking and indexed
 * so that error messages name their variable instead of showing them.
 * @module
 */

import { type Document, isMap, isScalar, isSeq, type Scalar } from "yaml";
import { registerSecret } from "../util/log.ts";
import { emptySecretIndex, formatKeyPath, type Problem, type SecretIndex } from "./problem.ts";
import type { KeyPath } from "./schema_walk.ts";

/** Reads one environment variable; undefined when unset (or not permitted). */
export type EnvLookup = (name: string) => string | undefined;

/** Decides whether the value at a path may be a number or a boolean (then `${N:-3}` yields 3, not "3"). */
export type TypeProbe = (path: KeyPath, type: "number" | "boolean") => boolean;

/** What interpolation found. */
export interface InterpolationResult {
  problems: Problem[];
  secrets: SecretIndex;
}

const SECRET_VARIABLE = /KEY|PASSWORD|TOKEN|SECRET/i;
const SECRET_PATHS = new Set(["pixie.api_key", "nats.password", "nats.token"]);
const EXPRESSION = /\$\$\{|\$\{([^}]*)\}|\$\{/g;
const BODY = /^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s;
const WHOLE_EXPRESSION = /^\$\{[^}]*\}$/;
const NUMBER = /^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/;

/** Interpolates every string scalar value of `doc` in place (keys are left alone). */
export function interpolate(
  doc: Document,
  source: string,
  env: EnvLookup,
  probe: TypeProbe,
): InterpolationResult {
  const result: InterpolationResult = { problems: [], secrets: emptySecretIndex() };
  const walk = (node: unknown, path: KeyPath): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        walk(pair.value, [...path, key]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, [...path, i]));
    } else if (isScalar(node) && typeof node.value === "string") {
      interpolateScalar(node, path, source, env, probe, result);
    } else if (isScalar(node) && node.value !== null && SECRET_PATHS.has(formatKeyPath(path))) {
      // A secret written as a number (token: 12345) is still a secret.
      registerSecret(String(node.value));
      result.secrets.byPath.set(formatKeyPath(path), "");
    }
  };
  walk(doc.contents, []);
  return result;
}

function interpolateScalar(
  node: Scalar,
  path: KeyPath,
  source: string,
  env: EnvLookup,
  probe: TypeProbe,
  result: InterpolationResult,
): void {
  const text = node.value as string;
  const start = node.range?.[0] ?? 0;
  const raw = source.slice(start, node.range?.[1] ?? start);
  let searchFrom = 0;
  const offsetOf = (expr: string): number => {
    const at = raw.indexOf(expr, searchFrom);
    if (at < 0) return start;
    searchFrom = at + expr.length;
    return start + at;
  };

  let out = "";
  let last = 0;
  let changed = false;
  let failed = false;
  let secretFrom: string | undefined;
  for (const m of text.matchAll(EXPRESSION)) {
    out += text.slice(last, m.index);
    last = m.index + m[0].length;
    changed = true;
    if (m[0] === "$${") {
      out += "${";
      offsetOf("$${");
      continue;
    }
    const body = m[1] === undefined ? undefined : BODY.exec(m[1]);
    if (!body) {
      failed = true;
      result.problems.push({
        path,
        offset: offsetOf(m[0]),
        expected: "${NAME} or ${NAME:-default}",
        found: m[1] === undefined
          ? `unterminated "${text.slice(m.index, m.index + 20)}"`
          : JSON.stringify(m[0]),
        hint: "write $${ for a literal ${",
      });
      continue;
    }
    const variable = body[1] ?? "";
    const fallback = body[2];
    const value = env(variable);
    if (SECRET_VARIABLE.test(variable)) {
      secretFrom ??= variable;
      registerSecret(value);
      // Same floor as registerSecret: a very short value would match unrelated text.
      if (value && value.length >= 4) result.secrets.byValue.set(value, variable);
    }
    if (value === undefined && fallback === undefined) {
      failed = true;
      result.problems.push({
        path,
        offset: offsetOf(m[0]),
        expected: `environment variable ${variable} to be set`,
        found: "it unset",
        hint: `write \${${variable}:-} to make it optional`,
      });
      continue;
    }
    offsetOf(m[0]);
    out += fallback !== undefined && !value ? fallback : value ?? "";
  }
  out += text.slice(last);

  const key = formatKeyPath(path);
  if (SECRET_PATHS.has(key) && out !== "") secretFrom ??= "";
  // A password inside a server URL is as secret as nats.password.
  if (key === "nats.url" && /:\/\/[^@/\s]*:[^@/\s]+@/.test(out)) secretFrom ??= "";
  if (secretFrom !== undefined) {
    registerSecret(out);
    result.secrets.byPath.set(key, secretFrom);
    if (out.length >= 4) result.secrets.byValue.set(out, secretFrom);
  }
  if (!changed || failed) return;
  node.value = typed(out, node.type === "PLAIN" && WHOLE_EXPRESSION.test(text), path, probe);
}

/** A plain scalar that was only `${...}` takes the type YAML would give its value, where the schema allows it. */
function typed(value: string, whole: boolean, path: KeyPath, probe: TypeProbe): string | number | boolean {
  if (!whole) return value;
  if (NUMBER.test(value) && probe(path, "number")) return Number(value);
  if (/^(true|false)$/i.test(value) && probe(path, "boolean")) return value.toLowerCase() === "true";
  return value;
}
