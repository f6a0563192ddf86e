/**
 * User regexes (`metadata_extraction.id_patterns`, `envelope: regex`) in linear time. V8's RegExp backtracks:
 * `(a+)+$` on a 32-byte body froze a sensor for 23 s (issue 15). Every user pattern runs here instead, in one of
 * two engines, both linear in the input:
 *
 * - `scan`: the common shape `literal(class{m,n})literal`, e.g. `interval_id":"([a-f0-9-]{36})` or
 *   `"payload":"([^"]*)"`, where the closing literal cannot start with a class character. It is matched with
 *   `indexOf` and one pass over class runs (a run is measured once however many matches start in it), at
 *   RegExp's speed (bench/regex_speed.ts);
 * - `re2js`: everything else, in RE2's automata (JavaScript syntax translated; no lookarounds, no
 *   backreferences, repeat counts up to 1000), 10-70x slower than RegExp when a match is present (bench/regex_speed.ts).
 *
 * Either way a pattern sees at most the first {@link MAX_REGEX_INPUT} characters of a message.
 * @module
 */

import { RE2JS } from "re2js";

/** Characters of a message a user pattern sees (the first ones); bounds the work per message. */
export const MAX_REGEX_INPUT = 256 * 1024;
/** Longest user pattern accepted. */
export const MAX_PATTERN_LENGTH = 1024;

/** Which engine runs a pattern (shown by `check`-style tools and tested). */
export type LinearEngine = "scan" | "re2js";

/** A compiled user pattern. */
export interface LinearRegex {
  /** The pattern as written. */
  readonly source: string;
  /** Number of capturing groups. */
  readonly groups: number;
  readonly engine: LinearEngine;
  /**
   * The first capture group of the leftmost match in the first {@link MAX_REGEX_INPUT} characters of `text`
   * (undefined when nothing matches or the group did not take part); group 0 for a pattern without groups.
   */
  capture(text: string): string | undefined;
  /** RegExp-like view: `[match, group1]` or null. Lets a LinearRegex stand where a RegExp's exec was used. */
  exec(text: string): [string, string | undefined] | null;
}

/**
 * Compiles `pattern` or says why it cannot run in linear time (or does not compile at all). Patterns run on a
 * message read as latin1 (one character per byte), so a non-ASCII character in one is matched as its UTF-8
 * bytes ({@link asBytePattern}).
 */
export function compileLinearRegex(userPattern: string): LinearRegex | { error: string } {
  if (userPattern.length > MAX_PATTERN_LENGTH) {
    return { error: `pattern of ${userPattern.length} characters, longer than ${MAX_PATTERN_LENGTH}` };
  }
  const pattern = asBytePattern(userPattern);
  if (typeof pattern !== "string") return pattern;
  try {
    // JavaScript syntax is what the config documents: a pattern must mean the same in both engines' eyes.
    new RegExp(pattern);
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
  let re2: RE2JS;
  try {
    // translateRegExp maps JavaScript spellings RE2 lacks (\uXXXX, (?<name>, [^]) to RE2's.
    re2 = RE2JS.compile(RE2JS.translateRegExp(pattern));
  } catch (e) {
    // Callers show the part after the last ": ", so the reason is kept free of that separator.
    const reason = (e instanceof Error ? e.message : String(e)).replace(/^error parsing regexp: /, "")
      .replaceAll(": ", " ");
    return {
      error: `${reason} (user patterns run in a linear-time engine, so no lookarounds or backreferences ` +
        `and repeat counts up to 1000)`,
    };
  }
  const groups = re2.groupCount();
  const scan = groups === 1 ? scanShape(pattern) : undefined;
  return scan ? scanRegex(pattern, scan) : re2Regex(pattern, re2, groups);
}

function re2Regex(source: string, re2: RE2JS, groups: number): LinearRegex {
  const capture = (text: string): string | undefined => {
    const input = bounded(text);
    // The DFA answers "no match" without tracking groups, the common case for ids, at a fraction of the cost.
    if (!re2.test(input)) return undefined;
    const m = re2.matcher(input);
    if (!m.find()) return undefined;
    return m.group(groups > 0 ? 1 : 0) ?? undefined;
  };
  return {
    source,
    groups,
    engine: "re2js",
    capture,
    exec(text) {
      const input = bounded(text);
      if (!re2.test(input)) return null;
      const m = re2.matcher(input);
      if (!m.find()) return null;
      return [m.group(0) ?? "", groups > 0 ? m.group(1) ?? undefined : undefined];
    },
  };
}

function bounded(text: string): string {
  return text.length > MAX_REGEX_INPUT ? text.slice(0, MAX_REGEX_INPUT) : text;
}

/** `literal(class{min,max})literal` taken apart. */
interface ScanShape {
  prefix: string;
  suffix: string;
  /** Membership of char codes 0-255; codes above go through `wide`. */
  table: Uint8Array;
  wide: RegExp;
  min: number;
  max: number;
}

/** Literal characters of a pattern up to the first non-literal, or undefined at an unsupported escape. */
function literalRun(p: string, at: number): { text: string; end: number } | undefined {
  let text = "";
  let i = at;
  while (i < p.length) {
    const c = p[i]!;
    if ("()[]{}.*+?^$|".includes(c)) break;
    if (c !== "\\") {
      text += c;
      i++;
      continue;
    }
    const e = p[i + 1];
    if (e === undefined) return undefined;
    const simple: Record<string, string> = { t: "\t", n: "\n", r: "\r", f: "\f", v: "\v" };
    if (simple[e] !== undefined) {
      text += simple[e];
      i += 2;
    } else if (e === "x" && /^[0-9A-Fa-f]{2}$/.test(p.slice(i + 2, i + 4))) {
      text += String.fromCharCode(parseInt(p.slice(i + 2, i + 4), 16));
      i += 4;
    } else if (/[A-Za-z0-9_]/.test(e)) {
      return undefined; // \d, \b, \1, \u...: not a literal
    } else {
      text += e;
      i += 2;
    }
  }
  return { text, end: i };
}

/** Recognises the `scan` shape; undefined for anything else (re2js runs it). */
function scanShape(p: string): ScanShape | undefined {
  const pre = literalRun(p, 0);
  if (!pre || pre.text === "" || p[pre.end] !== "(" || p[pre.end + 1] === "?") return undefined;
  let i = pre.end + 1;
  // The atom: a bracket class, an escape class or a dot.
  let atom: string;
  if (p[i] === "[") {
    let j = i + 1;
    if (p[j] === "^") j++;
    if (p[j] === "]") return undefined; // [] and [^] mean nothing / everything in JS, not in RE2
    while (j < p.length && p[j] !== "]") j += p[j] === "\\" ? 2 : 1;
    if (j >= p.length) return undefined;
    atom = p.slice(i, j + 1);
    i = j + 1;
  } else if (p[i] === "\\" && /^[dDwWsS]$/.test(p[i + 1] ?? "")) {
    atom = p.slice(i, i + 2);
    i += 2;
  } else if (p[i] === ".") {
    atom = ".";
    i++;
  } else if (/^[A-Za-z0-9_ ,:;'"=/!@#%&<>~`-]$/.test(p[i] ?? "")) {
    atom = p[i]!;
    i++;
  } else {
    return undefined;
  }
  // The quantifier, greedy only.
  let min: number;
  let max: number;
  const q = p[i];
  if (q === "*" || q === "+" || q === "?") {
    [min, max] = q === "*" ? [0, Infinity] : q === "+" ? [1, Infinity] : [0, 1];
    i++;
  } else {
    const m = /^\{(\d{1,4})(,(\d{0,4}))?\}/.exec(p.slice(i));
    if (!m) return undefined;
    min = Number(m[1]);
    max = m[2] === undefined ? min : m[3] === "" ? Infinity : Number(m[3]);
    if (max < min) return undefined;
    i += m[0].length;
  }
  if (p[i] !== ")") return undefined;
  const post = literalRun(p, i + 1);
  if (!post || post.end !== p.length) return undefined;

  let wide: RegExp;
  try {
    wide = new RegExp(`^${atom}$`);
  } catch {
    return undefined;
  }
  const table = new Uint8Array(256);
  for (let c = 0; c < 256; c++) table[c] = wide.test(String.fromCharCode(c)) ? 1 : 0;
  const inClass = (code: number) => code < 256 ? table[code] === 1 : wide.test(String.fromCharCode(code));
  // Backtracking into the run can only help if the closing literal could start inside it: leave that to re2js.
  if (post.text !== "" && inClass(post.text.charCodeAt(0))) return undefined;
  // Surrogate pairs would be one character to RegExp and two here: keep the scan to single code units.
  if (/[\ud800-\udfff]/.test(pre.text + post.text)) return undefined;
  return { prefix: pre.text, suffix: post.text, table, wide, min, max };
}

function scanRegex(source: string, s: ScanShape): LinearRegex {
  const { prefix, suffix, table, wide, min, max } = s;
  const find = (text: string): { at: number; from: number; to: number } | undefined => {
    const input = bounded(text);
    // [runFrom, runTo): the last run measured, all class characters, runTo the first non-class (or the end).
    let runFrom = -1;
    let runTo = -1;
    for (let at = input.indexOf(prefix); at >= 0; at = input.indexOf(prefix, at + 1)) {
      const from = at + prefix.length;
      let end: number;
      if (from >= runFrom && from <= runTo && runFrom >= 0) {
        end = runTo;
      } else {
        end = from;
        const n = input.length;
        // The hot loop of an envelope regex (the run is the audio field): the table lookup is inlined.
        for (; end < n; end++) {
          const c = input.charCodeAt(end);
          if (c < 256 ? table[c] !== 1 : !wide.test(String.fromCharCode(c))) break;
        }
        runFrom = from;
        runTo = end;
      }
      const run = end - from;
      if (run < min) continue;
      const take = Math.min(run, max);
      // Greedy: the run is taken whole (up to max); giving characters back leaves a class character where the
      // suffix must start, which cannot match.
      if (suffix !== "" && (run > max || !input.startsWith(suffix, from + take))) continue;
      return { at, from, to: from + take };
    }
    return undefined;
  };
  return {
    source,
    groups: 1,
    engine: "scan",
    capture(text) {
      const m = find(text);
      return m ? text.slice(m.from, m.to) : undefined;
    },
    exec(text) {
      const m = find(text);
      return m ? [text.slice(m.at, m.to + suffix.length), text.slice(m.from, m.to)] : null;
    },
  };
}

const utf8 = new TextEncoder();

/**
 * `pattern` for a message read as latin1: each non-ASCII character outside a class `[...]` becomes its UTF-8 bytes,
 * one character each (grouped `(?:...)` when a quantifier follows, so it still repeats the whole character). As
 * written, `"clé":"([^"]+)"` never matched `{"clé":"abc"}`, whose `é` reaches the pattern as two characters, and
 * nothing said why. Inside a class a multi-byte character cannot be one member, so it is an error naming the fix.
 */
export function asBytePattern(pattern: string): string | { error: string } {
  const chars = [...pattern];
  let out = "", inClass = false, escaped = false, changed = false;
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    if (ch.codePointAt(0)! > 0x7f) {
      if (inClass) {
        return {
          error:
            `the non-ASCII character ${JSON.stringify(ch)} inside [ ] (messages are matched as bytes); ` +
            `write it as an alternative outside the class, e.g. (?:${ch}|[a-z])`,
        };
      }
      // An escaped one (\é) means itself: the escape goes, its bytes stand.
      if (escaped) out = out.slice(0, -1);
      escaped = false;
      const bytes = String.fromCharCode(...utf8.encode(ch));
      out += bytes.length > 1 && /^[*+?{]/.test(chars[i + 1] ?? "") ? `(?:${bytes})` : bytes;
      changed = true;
      continue;
    }
    if (escaped) escaped = false;
    else if (ch === "\\") escaped = true;
    else if (ch === "[" && !inClass) inClass = true;
    else if (ch === "]" && inClass) inClass = false;
    out += ch;
  }
  return changed ? out : pattern;
}
