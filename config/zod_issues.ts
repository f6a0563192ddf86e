/**
 * Turns zod issues into problems phrased as "expected X, found Y": the found part comes from the document
 * (so secrets can be hidden), unknown keys become one problem each with a did-you-mean over the keys allowed
 * at that level.
 * @module
 */

import type { z } from "zod";
import { formatKeyPath, type Problem, renderFound, type SecretIndex, valueAt } from "./problem.ts";
import { describeAt, type KeyPath, keysAt, placesOfKey } from "./schema_walk.ts";
import { didYouMean } from "../util/suggest.ts";

const TYPE_NAMES: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "true or false",
  object: "a mapping",
  array: "a list",
};

/** Problems for one zod issue, found against the validated `data`. */
export function problemsFromZod(
  issue: z.core.$ZodIssue,
  root: z.ZodType,
  data: unknown,
  secrets: SecretIndex,
): Problem[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
  const found = (): string => renderFound(valueAt(data, path), path, secrets);
  const custom = issue.message.startsWith("expected ") ? issue.message.slice("expected ".length) : undefined;

  switch (issue.code) {
    case "unrecognized_keys": {
      const allowed = keysAt(root, path) ?? [];
      return issue.keys.map((key) => {
        const suggestion = didYouMean(key, allowed);
        // A key the config takes elsewhere was written at the wrong level: say where it goes.
        const places = suggestion ? [] : placesOfKey(root, path, key);
        return {
          path: [...path, key],
          onKey: true,
          expected: `one of the keys ${allowed.join("|")}`,
          found: `unknown key ${JSON.stringify(key)}`,
          hint: suggestion
            ? `did you mean ${JSON.stringify(suggestion)}?`
            : places.length > 0
            ? `${key} belongs under ${places.join(" or ")}`
            : undefined,
        };
      });
    }
    case "invalid_value": {
      const value = valueAt(data, path);
      const options = issue.values.map(String);
      const suggestion = typeof value === "string" && !isSecret(path, value, secrets)
        ? didYouMean(value, options)
        : undefined;
      return [{
        path,
        expected: custom ?? `one of ${options.join("|")}`,
        found: found(),
        hint: suggestion ? `did you mean ${JSON.stringify(suggestion)}?` : undefined,
      }];
    }
    case "invalid_type":
      return [{
        path,
        expected: custom ?? TYPE_NAMES[issue.expected] ?? describeAt(root, path),
        found: valueAt(data, path) === undefined ? "nothing (the key is required)" : found(),
      }];
    case "too_small":
    case "too_big": {
      const bound = issue.code === "too_small" ? issue.minimum : issue.maximum;
      const op = issue.code === "too_small" ? (issue.inclusive ? ">=" : ">") : (issue.inclusive ? "<=" : "<");
      const what = issue.origin === "array"
        ? "a list with length"
        : issue.origin === "string"
        ? "length"
        : "a value";
      return [{ path, expected: custom ?? `${what} ${op} ${String(bound)}`, found: found() }];
    }
    case "invalid_format":
      return [{
        path,
        expected: custom ?? `a string matching ${issue.pattern ?? issue.format}`,
        found: found(),
      }];
    case "custom": {
      const params = (issue.params ?? {}) as { found?: string; hint?: string };
      return [{ path, expected: custom ?? issue.message, found: params.found ?? found(), hint: params.hint }];
    }
    default:
      return [{ path, expected: custom ?? describeAt(root, path), found: found() }];
  }
}

function isSecret(path: KeyPath, value: string, secrets: SecretIndex): boolean {
  return secrets.byPath.has(formatKeyPath(path)) ||
    [...secrets.byValue.keys()].some((s) => value.includes(s));
}
