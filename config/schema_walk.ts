/**
 * Looks inside the zod schema by key path: which keys a mapping allows (for "did you mean"), what a value
 * should look like (for messages), and whether a number or boolean is accepted (to type interpolated values).
 * @module
 */

import { z } from "zod";
import { formatKeyPath } from "./problem.ts";

/** A key path into the config: mapping keys and list indexes. */
export type KeyPath = readonly (string | number)[];

/** Strips wrappers that do not change what a value looks like on input. */
function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (let i = 0; i < 16; i++) {
    if (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional) {
      s = s.unwrap() as z.ZodType;
    } else if (s instanceof z.ZodNullable) {
      s = s.unwrap() as z.ZodType;
    } else if (s instanceof z.ZodPipe) {
      s = s.in as z.ZodType;
    } else {
      return s;
    }
  }
  return s;
}

/** The schema(s) that apply at `path`; several when a union allows several shapes there. */
export function schemasAt(root: z.ZodType, path: KeyPath): z.ZodType[] {
  let current = [unwrap(root)];
  for (const seg of path) {
    const next: z.ZodType[] = [];
    for (const s of current.flatMap(alternatives)) {
      if (s instanceof z.ZodObject && typeof seg === "string") {
        const child = (s.shape as Record<string, z.ZodType>)[seg];
        if (child) next.push(unwrap(child));
      } else if (s instanceof z.ZodArray && typeof seg === "number") {
        next.push(unwrap(s.element as z.ZodType));
      }
    }
    current = next;
  }
  return current.flatMap(alternatives);
}

function alternatives(s: z.ZodType): z.ZodType[] {
  return s instanceof z.ZodUnion ? (s.options as z.ZodType[]).flatMap((o) => alternatives(unwrap(o))) : [s];
}

/** The keys a mapping at `path` allows, in schema order; undefined if no mapping is expected there. */
export function keysAt(root: z.ZodType, path: KeyPath): string[] | undefined {
  const objects = schemasAt(root, path).filter((s) => s instanceof z.ZodObject);
  if (objects.length === 0) return undefined;
  return [...new Set(objects.flatMap((o) => Object.keys(o.shape)))];
}

/** True if a value of this JavaScript type is accepted at `path` (before range checks). */
export function acceptsType(root: z.ZodType, path: KeyPath, type: "number" | "boolean"): boolean {
  return schemasAt(root, path).some((s) =>
    type === "number" ? s instanceof z.ZodNumber : s instanceof z.ZodBoolean
  );
}

/** A short description of what a value at `path` should be, for messages. */
export function describeAt(root: z.ZodType, path: KeyPath): string {
  const parts = schemasAt(root, path).map(describe);
  return parts.length > 0 ? [...new Set(parts)].join(" or ") : "nothing here (unknown key)";
}

function describe(s: z.ZodType): string {
  if (s instanceof z.ZodString) return "a string";
  if (s instanceof z.ZodNumber) return s.format === "safeint" ? "an integer" : "a number";
  if (s instanceof z.ZodBoolean) return "true or false";
  if (s instanceof z.ZodEnum) return `one of ${s.options.join("|")}`;
  if (s instanceof z.ZodLiteral) return s.values.size === 1 ? JSON.stringify([...s.values][0]) : "a literal";
  if (s instanceof z.ZodObject) return "a mapping";
  if (s instanceof z.ZodArray) return "a list";
  return "a valid value";
}

/**
 * Where the config allows `key` other than in the mapping at `path`, nearest first: inside that mapping (the key
 * written one or more levels too high), then inside each of its ancestors (too deep), up to 3 levels down from
 * each. Key paths as messages show them, list items of the schema as `[…]`, the top level as "the top level"; at
 * most `limit` of them.
 */
export function placesOfKey(root: z.ZodType, path: KeyPath, key: string, limit = 2): string[] {
  // Most unknown keys are in no mapping at all (a typo, or 64k of them): answered without a search.
  if (!allKeys(root).has(key)) return [];
  const out: string[] = [];
  const visited = new Set<string>([formatKeyPath(path).replace(/\[\d+\]/g, "[…]")]);
  const search = (from: KeyPath): void => {
    let level: { at: KeyPath; shown: string }[] = [{ at: from, shown: formatKeyPath(from) }];
    for (let depth = 0; depth <= 3 && level.length > 0 && out.length < limit; depth++) {
      const next: { at: KeyPath; shown: string }[] = [];
      for (const { at, shown } of level) {
        for (const s of schemasAt(root, at)) {
          if (s instanceof z.ZodObject) {
            const keys = Object.keys(s.shape);
            // The same mapping is reached again from an ancestor through a list, as `[…]` for this item's index.
            const same = shown.replace(/\[\d+\]/g, "[…]");
            if (keys.includes(key) && !visited.has(same) && out.length < limit) {
              out.push(shown || "the top level");
            }
            visited.add(same);
            for (const k of keys) next.push({ at: [...at, k], shown: shown ? `${shown}.${k}` : k });
          } else if (s instanceof z.ZodArray) {
            next.push({ at: [...at, 0], shown: `${shown}[…]` });
          }
        }
      }
      level = next;
    }
  };
  search(path);
  for (let n = path.length - 1; n >= 0 && out.length < limit; n--) search(path.slice(0, n));
  return out;
}

const keysOfSchema = new WeakMap<z.ZodType, Set<string>>();

/** Every key of every mapping of the schema (computed once per schema). */
function allKeys(root: z.ZodType): Set<string> {
  let keys = keysOfSchema.get(root);
  if (keys) return keys;
  keys = new Set();
  const seen = new Set<z.ZodType>();
  const walk = (schema: z.ZodType): void => {
    for (const s of alternatives(unwrap(schema))) {
      if (seen.has(s)) continue;
      seen.add(s);
      if (s instanceof z.ZodObject) {
        for (const [k, child] of Object.entries(s.shape as Record<string, z.ZodType>)) {
          keys.add(k);
          walk(child);
        }
      } else if (s instanceof z.ZodArray) {
        walk(s.element as z.ZodType);
      }
    }
  };
  walk(root);
  keysOfSchema.set(root, keys);
  return keys;
}
