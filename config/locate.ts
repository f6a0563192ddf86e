/**
 * Finds where a key path sits in a parsed YAML document, so that a problem found on plain data can be reported
 * at its line and column.
 * @module
 */

import { type Document, isAlias, isMap, isScalar, isSeq } from "yaml";
import type { KeyPath } from "./schema_walk.ts";

/**
 * Character offset of the value at `path` (of its key with `onKey`). When the path does not exist in the text
 * (a missing key, a default), the offset of the deepest part that does.
 */
export function locate(doc: Document, path: KeyPath, onKey = false): number {
  let node: unknown = doc.contents;
  let offset = rangeStart(node) ?? 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(seg));
      if (!pair) break;
      const keyOffset = rangeStart(pair.key);
      // `key:` with nothing after it has an empty scalar just past the colon; the key is the better spot.
      const empty = isScalar(pair.value) && pair.value.value === null && !pair.value.source;
      const valueOffset = empty ? undefined : rangeStart(pair.value);
      const last = i === path.length - 1;
      offset = (last && onKey) || valueOffset === undefined ? keyOffset ?? offset : valueOffset;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === "number") {
      const item = node.items[seg];
      const itemOffset = rangeStart(item);
      if (itemOffset === undefined) break;
      offset = itemOffset;
      node = item;
    } else {
      break;
    }
  }
  return offset;
}

function rangeStart(node: unknown): number | undefined {
  if (node === null || typeof node !== "object" || !("range" in node)) return undefined;
  const range = (node as { range?: [number, number, number] | null }).range;
  return range?.[0];
}
