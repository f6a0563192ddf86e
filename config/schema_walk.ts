/**
 * Looks inside the zod schema by key path: which keys a mapping allows (for "did you mean"), what a value
 * should look like (for messages), and whether a number or boolean is accepted (to type interpolated values).
 * @module
 */

import { z } from "zod";

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
