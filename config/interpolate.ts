/**
 * `${VAR}` and `${VAR:-default}` interpolation on the parsed YAML tree (a default may itself be `${OTHER}`). Working on scalar nodes rather than the
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

/**
 * Whether the process may read a variable at all. The deno tasks run with `--ignore-env` and an `--allow-env`
 * list, under which a variable outside the list reads as unset even when it is set.
 */
export type EnvReadable = (name: string) => boolean;

/**
 * The config variables the sensor's task (`deno task run`, the DaemonSet's) may read: its `--allow-env` in
 * deno.json (tests/config_s27_test.ts holds the two together).
 */
export const RUN_TASK_VARIABLES = /^(?:NODE_NAME|HOSTNAME|(?:PIXIE|NATS|FSMPX)_\w*)$/;
const RUN_TASK_NAMES = "NODE_NAME, HOSTNAME and PIXIE_*, NATS_*, FSMPX_* names";

/** Decides whether the value at a path may be a number or a boolean (then `${N:-3}` yields 3, not "3"). */
export type TypeProbe = (path: KeyPath, type: "number" | "boolean") => boolean;

/** What interpolation found. */
export interface InterpolationResult {
  problems: Problem[];
  secrets: SecretIndex;
}

const SECRET_VARIABLE = /KEY|PASSWORD|TOKEN|SECRET/i;
const SECRET_PATHS = new Set(["pixie.api_key", "nats.password", "nats.token"]);
/** URLs that may carry credentials (`user:pass@`): secret as a whole when they hold an `@`. */
const URL_PATHS = new Set(["nats.url", "otlp.endpoint"]);
/** Header names whose values are credentials (Authorization, X-Api-Key, Cookie...): masked in logs too. */
const CREDENTIAL_HEADER = /auth|key|token|secret|pass|cookie|session|signature/i;

/**
 * `otlp.headers` and the values under it. Every value is described, never shown, in config errors (headers carry
 * credentials under any name); those of credential-like names, and `otlp.headers` written as one string, are
 * registered as secrets for the logs as well.
 */
function headerPath(path: KeyPath): "credential" | "other" | undefined {
  if (path[0] !== "otlp" || path[1] !== "headers") return undefined;
  return path.length === 2 || CREDENTIAL_HEADER.test(String(path[2])) ? "credential" : "other";
}
const BODY = /^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s;
const NUMBER = /^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/;

/** Interpolates every string scalar value of `doc` in place (keys are left alone). */
export function interpolate(
  doc: Document,
  source: string,
  env: EnvLookup,
  probe: TypeProbe,
  readable: EnvReadable = () => true,
): InterpolationResult {
  const result: InterpolationResult = { problems: [], secrets: emptySecretIndex() };
  /** The found and hint of an unset variable: a variable this command may not read is named as such. */
  const unset = (variable: string): { found: string; hint: string } =>
    readable(variable) ? { found: "it unset", hint: `write \${${variable}:-} to make it optional` } : {
      found: "it unreadable here (the --allow-env of this command's task in deno.json leaves it out)",
      hint: RUN_TASK_VARIABLES.test(variable)
        ? `deno task run reads it, this command does not: write \${${variable}:-} to make it optional`
        : `deno task run reads ${RUN_TASK_NAMES}: rename it, e.g. FSMPX_${variable}, or write ` +
          `\${${variable}:-} to make it optional`,
    };
  const walk = (node: unknown, path: KeyPath): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        walk(pair.value, [...path, key]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, [...path, i]));
    } else if (isScalar(node) && typeof node.value === "string") {
      interpolateScalar(node, path, source, env, probe, result, unset);
    } else if (isScalar(node) && node.value !== null && SECRET_PATHS.has(formatKeyPath(path))) {
      // A secret written as a number (token: 12345) is still a secret.
      registerSecret(String(node.value));
      result.secrets.byPath.set(formatKeyPath(path), "");
    } else if (isScalar(node) && node.value !== null && headerPath(path) !== undefined) {
      // A header value written as a number (X-Api-Key: 12345678) is refused as no string: never quoted.
      if (headerPath(path) === "credential") registerSecret(String(node.value));
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
  unset: (variable: string) => { found: string; hint: string },
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
  const lookup = (variable: string): string | undefined => {
    const value = env(variable);
    if (SECRET_VARIABLE.test(variable)) {
      secretFrom ??= variable;
      registerSecret(value);
      // Same floor as registerSecret: a very short value would match unrelated text.
      if (value && value.length >= 4) result.secrets.byValue.set(value, variable);
    }
    return value;
  };
  /** A default's own `${...}` (`${A:-${B}}`), resolved the same way; the first problem wins. */
  const resolveDefault = (t: string): { value: string } | { bad: string } | { unset: string } => {
    let acc = "";
    let at = 0;
    for (const e of expressions(t)) {
      acc += t.slice(at, e.index);
      at = e.index + e.raw.length;
      if (e.raw === "$${") {
        acc += "${";
        continue;
      }
      const b = e.body === undefined ? null : BODY.exec(e.body);
      if (!b) return { bad: e.raw };
      const v = lookup(b[1] ?? "");
      if (v === undefined && b[2] === undefined) return { unset: b[1] ?? "" };
      if (b[2] !== undefined && !v) {
        const inner = resolveDefault(b[2]);
        if (!("value" in inner)) return inner;
        acc += inner.value;
      } else {
        acc += v ?? "";
      }
    }
    return { value: acc + t.slice(at) };
  };
  for (const m of expressions(text)) {
    out += text.slice(last, m.index);
    last = m.index + m.raw.length;
    changed = true;
    if (m.raw === "$${") {
      out += "${";
      offsetOf("$${");
      continue;
    }
    const body = m.body === undefined ? undefined : BODY.exec(m.body);
    if (!body) {
      failed = true;
      result.problems.push({
        path,
        offset: offsetOf(m.raw),
        expected: "${NAME} or ${NAME:-default}",
        found: m.body === undefined
          ? `unterminated "${text.slice(m.index, m.index + 20)}"`
          : JSON.stringify(m.raw),
        hint: "write $${ for a literal ${",
      });
      continue;
    }
    const variable = body[1] ?? "";
    const fallback = body[2];
    const value = lookup(variable);
    if (value === undefined && fallback === undefined) {
      failed = true;
      result.problems.push({
        path,
        offset: offsetOf(m.raw),
        expected: `environment variable ${variable} to be set`,
        ...unset(variable),
      });
      continue;
    }
    const at = offsetOf(m.raw);
    if (fallback !== undefined && !value) {
      const resolved = resolveDefault(fallback);
      if ("bad" in resolved) {
        failed = true;
        result.problems.push({
          path,
          offset: at,
          expected: "${NAME} or ${NAME:-default} in the default",
          found: JSON.stringify(resolved.bad),
          hint: "write $${ for a literal ${",
        });
        continue;
      }
      if ("unset" in resolved) {
        failed = true;
        result.problems.push({
          path,
          offset: at,
          expected: `environment variable ${resolved.unset} to be set (in the default of ${variable})`,
          ...unset(resolved.unset),
        });
        continue;
      }
      out += resolved.value;
    } else {
      out += value ?? "";
    }
  }
  out += text.slice(last);

  const key = formatKeyPath(path);
  if (SECRET_PATHS.has(key) && out !== "") secretFrom ??= "";
  // A password (`user:pass@`) or a token (`TOKEN@`) inside a server URL is as secret as nats.password; a server
  // URL has no other `@`, and a password may hold `/` or `@` or come without a scheme. The OTLP endpoint's
  // `user:pass@` (fetch sends it as basic auth) likewise.
  if (URL_PATHS.has(key) && out.includes("@")) secretFrom ??= "";
  const header = headerPath(path);
  if (header === "credential" && out !== "") secretFrom ??= "";
  else if (header === "other") result.secrets.byPath.set(key, secretFrom ?? "");
  if (secretFrom !== undefined) {
    registerSecret(out);
    result.secrets.byPath.set(key, secretFrom);
    if (out.length >= 4) result.secrets.byValue.set(out, secretFrom);
  }
  if (!changed || failed) return;
  const first = expressions(text).next().value;
  const whole = first !== undefined && first.index === 0 && first.raw.length === text.length &&
    first.raw !== "$${";
  node.value = typed(out, node.type === "PLAIN" && whole, path, probe);
}

/**
 * The `${...}` expressions of a text, nesting-aware (`${A:-${B}}` is one expression whose default is `${B}`);
 * `$${` is a literal `${`. An unterminated `${` has no body.
 */
function* expressions(text: string): Generator<{ index: number; raw: string; body: string | undefined }> {
  let i = text.indexOf("$");
  while (i >= 0 && i < text.length) {
    if (text.startsWith("$${", i)) {
      yield { index: i, raw: "$${", body: "" };
      i = text.indexOf("$", i + 3);
      continue;
    }
    if (!text.startsWith("${", i)) {
      i = text.indexOf("$", i + 1);
      continue;
    }
    let depth = 0;
    let j = i;
    for (; j < text.length; j++) {
      if (text.startsWith("${", j)) {
        depth++;
        j++;
      } else if (text[j] === "}" && --depth === 0) {
        break;
      }
    }
    if (j >= text.length) {
      yield { index: i, raw: "${", body: undefined };
      i = text.indexOf("$", i + 2);
      continue;
    }
    yield { index: i, raw: text.slice(i, j + 1), body: text.slice(i + 2, j) };
    i = text.indexOf("$", j + 1);
  }
}

/** A plain scalar that was only `${...}` takes the type YAML would give its value, where the schema allows it. */
function typed(value: string, whole: boolean, path: KeyPath, probe: TypeProbe): string | number | boolean {
  if (!whole) return value;
  if (NUMBER.test(value) && probe(path, "number")) return Number(value);
  if (/^(true|false)$/i.test(value) && probe(path, "boolean")) return value.toLowerCase() === "true";
  return value;
}
