/**
 * Finds where a key path sits in a parsed YAML document, so that a problem found on plain data can be reported
 * at its line and column.
 * @module
 */

import { type Document, isAlias, isMap, isScalar, isSeq, type Scalar } from "yaml";
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

/**
 * Maps offsets in the string value at `path` (as the loader sees it, after `${VAR}` interpolation) to offsets
 * in the source text, so that a problem found inside a value (a column in a `stream_filter`) is reported at the
 * file's line and column: block scalars (`|`, `>`) by their lines and indentation, quoted scalars through their
 * escapes, folded lines by their breaks. Where interpolation changed the text, positions before and after the
 * change stay exact and positions inside it go to where the `${...}` starts. Without a scalar at `path` every
 * offset maps to {@link locate}'s position.
 */
export function valueOffsetMapper(
  doc: Document,
  path: KeyPath,
  source: string,
  value: string,
): (valueOffset: number) => number {
  const node = nodeAt(doc, path);
  const fallback = locate(doc, path);
  if (!isScalar(node) || !node.range) return () => fallback;
  const decoded = decodeScalar(node, source);
  if (!decoded) return () => fallback;
  return alignByDiff(decoded.text, decoded.map, value);
}

function nodeAt(doc: Document, path: KeyPath): unknown {
  let node: unknown = doc.contents;
  for (const seg of path) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      node = node.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(seg))?.value;
    } else if (isSeq(node) && typeof seg === "number") {
      node = node.items[seg];
    } else {
      return undefined;
    }
  }
  return isAlias(node) ? node.resolve(doc) : node;
}

/** A scalar's value as written (before interpolation) and the source offset of each of its characters. */
interface Decoded {
  text: string;
  /** map[i] is the source offset of text[i]; map[text.length] is just past the value. */
  map: number[];
}

function decodeScalar(node: Scalar, source: string): Decoded | undefined {
  const [start, end] = node.range!;
  const text: string[] = [];
  const map: number[] = [];
  const emit = (ch: string, at: number) => {
    text.push(ch);
    map.push(at);
  };
  if (node.type === "BLOCK_LITERAL" || node.type === "BLOCK_FOLDED") {
    const headerEnd = source.indexOf("\n", start);
    if (headerEnd < 0 || headerEnd >= end) return undefined;
    const lines: { at: number; text: string }[] = [];
    for (let at = headerEnd + 1; at < end;) {
      const nl = source.indexOf("\n", at);
      const stop = nl < 0 || nl > end ? end : nl;
      lines.push({ at, text: source.slice(at, stop).replace(/\r$/, "") });
      at = stop + 1;
    }
    const first = lines.find((l) => l.text.trim() !== "");
    const indent = first ? first.text.length - first.text.trimStart().length : 0;
    const folded = node.type === "BLOCK_FOLDED";
    lines.forEach((l, i) => {
      for (let c = indent; c < l.text.length; c++) emit(l.text[c]!, l.at + c);
      if (i < lines.length - 1) {
        const next = lines[i + 1]!;
        const join = folded && l.text.trim() !== "" && next.text.trim() !== "" &&
          !/^\s/.test(next.text.slice(indent));
        emit(join ? " " : "\n", l.at + l.text.length);
      }
    });
    map.push(end);
    return { text: text.join(""), map };
  }
  const quoted = node.type === "QUOTE_DOUBLE" || node.type === "QUOTE_SINGLE";
  let i = quoted ? start + 1 : start;
  const stop = quoted ? end - 1 : end;
  while (i < stop) {
    const ch = source[i]!;
    if (ch === "\r") {
      i++;
    } else if (ch === "\n") {
      // A line break inside a flow scalar folds to a space, or to newlines when lines are empty.
      while (text.length > 0 && (text[text.length - 1] === " " || text[text.length - 1] === "\t")) {
        text.pop();
        map.pop();
      }
      let j = i + 1;
      let empty = 0;
      for (;;) {
        while (j < stop && (source[j] === " " || source[j] === "\t" || source[j] === "\r")) j++;
        if (source[j] === "\n") {
          empty++;
          j++;
        } else break;
      }
      if (empty === 0) emit(" ", i);
      for (let k = 0; k < empty; k++) emit("\n", i);
      i = j;
    } else if (node.type === "QUOTE_DOUBLE" && ch === "\\") {
      const esc = source[i + 1] ?? "";
      const simple: Record<string, string> = {
        n: "\n",
        t: "\t",
        r: "\r",
        "0": "\0",
        '"': '"',
        "\\": "\\",
        "/": "/",
        " ": " ",
        a: "\x07",
        b: "\b",
        e: "\x1b",
        f: "\f",
        v: "\v",
        N: "\u0085",
        _: "\u00a0",
      };
      const hex = { x: 2, u: 4, U: 8 }[esc];
      if (hex !== undefined) {
        emit(String.fromCodePoint(parseInt(source.slice(i + 2, i + 2 + hex), 16) || 0), i);
        i += 2 + hex;
      } else if (esc === "\n" || esc === "\r") {
        i += 2;
        while (i < stop && /[\s]/.test(source[i]!)) i++;
      } else {
        emit(simple[esc] ?? esc, i);
        i += 2;
      }
    } else if (node.type === "QUOTE_SINGLE" && ch === "'" && source[i + 1] === "'") {
      emit("'", i);
      i += 2;
    } else {
      emit(ch, i);
      i++;
    }
  }
  map.push(stop);
  return { text: text.join(""), map };
}

/** Maps offsets of `value` to source offsets through `decoded`, matching the common prefix and suffix. */
function alignByDiff(decoded: string, map: number[], value: string): (offset: number) => number {
  let p = 0;
  while (p < decoded.length && p < value.length && decoded[p] === value[p]) p++;
  let s = 0;
  while (
    s < decoded.length - p && s < value.length - p &&
    decoded[decoded.length - 1 - s] === value[value.length - 1 - s]
  ) s++;
  return (offset) => {
    const o = Math.max(0, Math.min(offset, value.length));
    if (o <= p) return map[o]!;
    if (o >= value.length - s) return map[decoded.length - (value.length - o)]!;
    return map[p]!;
  };
}

function rangeStart(node: unknown): number | undefined {
  if (node === null || typeof node !== "object" || !("range" in node)) return undefined;
  const range = (node as { range?: [number, number, number] | null }).range;
  return range?.[0];
}
