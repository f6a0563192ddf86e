/**
 * Composes the one PxL script a sensor runs from the users' `stream_filter`s, and maps compile errors in that
 * script back to the user's own text.
 *
 * A `stream_filter` is a PxL fragment that assigns a DataFrame to `df` with `px.DataFrame(...)` and may filter or
 * add columns; it must keep `upid` (context columns need it) and must not call `px.display`. For each distinct
 * filter the composer appends, after the user's lines: a scope (by default the node, `df.ctx['node'] == <node>`; or
 * this node's pods; or none for a standalone PEM, which only sees its own node), the pod column (`df.ctx['pod']`, or
 * the process for a standalone PEM, which has no Kubernetes metadata), a projection of the configured columns, and
 * `px.display(df.stream(), '<measurement>/<tap>')`.
 * Measurements whose (filter, columns, stream keys, start) are identical share one output table, named after the
 * first of them. When a start time is given, the `start_time` of every `px.DataFrame(...)` call in the filter is
 * replaced (or added); the edit is tracked so error columns still point into the user's text.
 * @module
 */

import { parseQueryName } from "./row.ts";

/** Which output columns a query needs, by column name: config keys under `columns`. */
export interface QueryColumns {
  /** Capture time column, normally `time_`. */
  time: string;
  /** Output column that receives `df.ctx['pod']`. */
  pod: string;
  /** Column holding the message payload (bytes). */
  payload: string;
  /** Column holding the original payload size before Pixie truncated it, if the table has one. */
  body_size?: string;
  /** INT64 column: how long before the time column the payload's message was complete (http_events: latency). */
  latency?: string;
}

/** One measurement/stream query as configured. */
export interface ComposedQueryInput {
  /** `<measurement>/<tap>`. */
  name: string;
  /** The user's PxL fragment (see module doc). */
  streamFilter: string;
  /** The sensor's node: rows are labelled with it and, with the default scope, filtered to it. */
  node: string;
  /** How rows are kept to this sensor's node; default `{ kind: "node" }`. */
  scope?: QueryScope;
  /** Where the pod column comes from; default `"ctx"`. */
  podSource?: PodSource;
  columns: QueryColumns;
  /** Stream key columns; `$.`-paths are read from the payload and are not projected. */
  streamKeyColumns: readonly string[];
  /** Relative (`-30s`, `-5m`) or absolute (ns since the epoch, decimal digits or bigint) start time. */
  startTime?: string | bigint;
}

/**
 * How a query's rows are kept to this sensor's node.
 * - `node`: `df.ctx['node'] == <node>`. Pixie does not prune agents on node filters (its agent metadata filters
 *   hold pods and services only), so the script still runs on every PEM of the cluster.
 * - `pods`: `df.ctx['pod'] == <pod>` for each pod on this node, joined with `or`. Pixie prunes the PEMs that host
 *   none of them, so only this node's PEM runs the query. The list must be current: a pod that moved here
 *   later is not seen.
 * - `none`: no scope; for a standalone PEM, which only sees its own node and has no Kubernetes metadata (there
 *   `df.ctx['node']` is the empty string, so a node filter would remove every row).
 */
export type QueryScope =
  | { readonly kind: "node" }
  | { readonly kind: "pods"; readonly pods: readonly string[] }
  | { readonly kind: "none" };

/**
 * Where the pod column comes from: `ctx` is `df.ctx['pod']` (`namespace/name`); `process` labels rows with the
 * process that sent them, `<pid>:<command line>` ({@link PROCESS_POD_EXPR}), for a standalone PEM, which reads
 * `df.ctx['pod']` as the empty string but knows the processes of its host.
 */
export type PodSource = "ctx" | "process";

/**
 * The pod label a standalone PEM can give: `px.upid_to_pid` and `px.upid_to_cmdline` (Pixie's
 * src/carnot/funcs/metadata/metadata_ops.cc) work there because its metadata state scans /proc
 * (src/shared/metadata/standalone_state_manager.cc); `px.itoa` and string `+` are builtins.
 */
export const PROCESS_POD_EXPR = "px.itoa(px.upid_to_pid(df.upid)) + ':' + px.upid_to_cmdline(df.upid)";

/** One output table of a composed script. */
export interface ComposedTable {
  /** Name given to `px.display`, i.e. the first sharing query's name; Pixie reports it in `QueryMetadata.name`. */
  display: string;
  /** Every query name whose rows this table carries (display name first). */
  names: string[];
  columns: QueryColumns;
  /** Output columns in projection order. */
  projected: string[];
  node: string;
}

/** Where a compile error lands, relative to the user's configuration. */
export interface MappedCompileError {
  /** The table (display name) whose block holds the error. */
  table: string;
  /** Every query name sharing that block. */
  names: string[];
  measurement: string;
  tap: string;
  /** 1-based line in the user's stream_filter; undefined when the error is in a part fsm-px added. */
  line?: number;
  /** 1-based column in that line. */
  col?: number;
  /** What fsm-px added at that point, when the error is not in the user's own text. */
  part?: string;
}

/** A composed script and what is needed to interpret its output and errors. */
export interface ComposedScript {
  script: string;
  /** Output tables by display name. */
  tables: Map<string, ComposedTable>;
  /** Maps a (1-based) line and column of `script` back to the user's text; undefined for fsm-px's header. */
  mapCompileError(line: number, col: number): MappedCompileError | undefined;
}

/** A stream_filter or query config that cannot be composed. */
export class PxlComposeError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "PxlComposeError";
  }
}

/** Quotes `s` as a PxL (Python) single-quoted string literal. */
export function pxlString(s: string): string {
  return "'" + s.replace(/\\/g, "\\\\").replace(/'/g, "\\'").replace(/\n/g, "\\n").replace(/\r/g, "\\r") +
    "'";
}

const RELATIVE_TIME = /^-\d+(ns|us|ms|s|m|h|d)$/;

/** Renders a start time as a PxL expression: an int of ns, or a quoted relative duration. */
export function startTimeExpr(start: string | bigint): string {
  if (typeof start === "bigint") {
    if (start < 0n) throw new PxlComposeError(`start time ${start} is negative`);
    return start.toString();
  }
  if (/^\d+$/.test(start)) return BigInt(start).toString();
  if (RELATIVE_TIME.test(start)) return pxlString(start);
  throw new PxlComposeError(
    `start time '${start}' is neither ns since the epoch nor a relative time like -30s`,
  );
}

/** Marks the characters of PxL text that are code (1), not inside strings or comments (0). */
export function codeMask(text: string): Uint8Array {
  const mask = new Uint8Array(text.length);
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === "#") {
      while (i < text.length && text[i] !== "\n") i++;
      continue;
    }
    if (ch === "'" || ch === '"') {
      const triple = text.startsWith(ch.repeat(3), i);
      const close = triple ? ch.repeat(3) : ch;
      i += close.length;
      while (i < text.length) {
        if (text[i] === "\\") {
          i += 2;
          continue;
        }
        if (text.startsWith(close, i)) {
          i += close.length;
          break;
        }
        if (!triple && text[i] === "\n") break;
        i++;
      }
      continue;
    }
    mask[i] = 1;
    i++;
  }
  return mask;
}

/** A replacement of text[start, end) by `insert`. */
interface Edit {
  start: number;
  end: number;
  insert: string;
}

/**
 * Where each `px.DataFrame(...)` call in `text` gives its start time: the value's span when it has one (the
 * `start_time=` keyword or the third positional argument), or else the point before its closing parenthesis and
 * the separator an added argument needs there.
 */
type StartArg = { start: number; end: number } | { at: number; sep: string };

/** The {@link StartArg} of every `px.DataFrame(...)` call in `text`, in order. */
function dataFrameStartArgs(text: string): StartArg[] {
  const mask = codeMask(text);
  const found: StartArg[] = [];
  const call = /\bpx\s*\.\s*DataFrame\s*\(/g;
  for (let m = call.exec(text); m; m = call.exec(text)) {
    if (!mask[m.index]) continue;
    const open = m.index + m[0].length - 1;
    // Argument spans at depth 1, split on commas.
    const args: { start: number; end: number }[] = [];
    let depth = 1;
    let argStart = open + 1;
    let close = -1;
    for (let i = open + 1; i < text.length; i++) {
      if (!mask[i]) continue;
      const ch = text[i]!;
      if (ch === "(" || ch === "[" || ch === "{") depth++;
      else if (ch === ")" || ch === "]" || ch === "}") {
        depth--;
        if (depth === 0) {
          args.push({ start: argStart, end: i });
          close = i;
          break;
        }
      } else if (ch === "," && depth === 1) {
        args.push({ start: argStart, end: i });
        argStart = i + 1;
      }
    }
    if (close < 0) throw new PxlComposeError("unbalanced parentheses in px.DataFrame(...) call");
    const nonEmpty = args.filter((a) => text.slice(a.start, a.end).trim() !== "");
    let positional = 0;
    let value: StartArg | undefined;
    for (const a of nonEmpty) {
      const raw = text.slice(a.start, a.end);
      const kw = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)\s*/.exec(raw);
      const valueStart = a.start + (kw ? kw[0].length : raw.length - raw.trimStart().length);
      const valueEnd = a.start + raw.trimEnd().length;
      if (kw?.[1] === "start_time" || (!kw && ++positional === 3)) {
        value = { start: valueStart, end: valueEnd };
        break;
      }
    }
    if (value === undefined) {
      const before = text.slice(open + 1, close).trimEnd();
      value = { at: open + 1 + before.length, sep: before === "" || before.endsWith(",") ? "" : ", " };
    }
    found.push(value);
  }
  return found;
}

/** Finds the `start_time` edits for every `px.DataFrame(...)` call in `text`. */
function startTimeEdits(text: string, value: string): Edit[] {
  const args = dataFrameStartArgs(text);
  if (args.length === 0) {
    throw new PxlComposeError("stream_filter has no px.DataFrame(...) call to set the start time on");
  }
  return args.map((a) =>
    "at" in a
      ? { start: a.at, end: a.at, insert: `${a.sep}start_time=${value}` }
      : { start: a.start, end: a.end, insert: value }
  );
}

/**
 * The relative start time (such as `-30s`) that every `px.DataFrame(...)` call of a stream filter gives as a
 * plain string literal; undefined when there is no call, a call gives none, or they differ or are expressions.
 * Pixie reads it relative to each run of the script, so a re-run must make it absolute to go on where the first
 * run began.
 */
export function inlineStartTime(text: string): string | undefined {
  let found: string | undefined;
  let args: StartArg[];
  try {
    args = dataFrameStartArgs(text);
  } catch {
    return undefined;
  }
  for (const a of args) {
    if ("at" in a) return undefined;
    const lit = /^(['"])(-[0-9A-Za-z.]+)\1$/.exec(text.slice(a.start, a.end));
    if (!lit || (found !== undefined && lit[2] !== found)) return undefined;
    found = lit[2]!;
  }
  return found;
}

/** A piece of the composed script: user text (with its source offset) or text fsm-px wrote. */
interface Piece {
  at: number;
  text: string;
  table?: number;
  /** Offset in the user's original filter this piece starts at (user text or an edit anchored there). */
  src?: number;
  /** Set when fsm-px wrote this piece. */
  part?: string;
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === "\n") starts.push(i + 1);
  return starts;
}

function offsetToLineCol(starts: number[], offset: number): { line: number; col: number } {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return { line: lo + 1, col: offset - starts[lo]! + 1 };
}

function tableKey(q: ComposedQueryInput): string {
  const c = q.columns;
  const start = q.startTime === undefined ? "" : String(q.startTime);
  return JSON.stringify([
    q.streamFilter,
    q.node,
    scopeKey(q.scope),
    q.podSource ?? "ctx",
    c.time,
    c.pod,
    c.payload,
    c.body_size ?? "",
    c.latency ?? "",
    q.streamKeyColumns,
    start,
  ]);
}

function scopeKey(scope: QueryScope | undefined): string {
  if (!scope || scope.kind === "node") return "node";
  return scope.kind === "pods" ? JSON.stringify(["pods", ...scope.pods]) : "none";
}

/** The statement that keeps a query to this node, or undefined for none. */
function scopeStatement(q: ComposedQueryInput): string | undefined {
  const scope = q.scope ?? { kind: "node" };
  if (scope.kind === "none") return undefined;
  if (scope.kind === "node") return `df = df[df.ctx['node'] == ${pxlString(q.node)}]\n`;
  if (scope.pods.length === 0) {
    throw new PxlComposeError(
      `${q.name}: scope by pods needs at least one pod (none are known on this node)`,
    );
  }
  // PxL's `and`/`or` take exactly two operands ("Expected two arguments to 'or'."), so longer lists nest: as a
  // balanced tree, ~log2(pods) deep, where nesting each pod in the one before made a full node's ~110 pods 110
  // levels of parentheses deep for Pixie's recursive parser and compiler.
  return `df = df[${anyOf(scope.pods.map((pod) => `df.ctx['pod'] == ${pxlString(pod)}`))}]\n`;
}

/** `terms` joined by PxL's two-operand `or`, as a balanced tree (one term: itself). */
function anyOf(terms: readonly string[]): string {
  if (terms.length === 1) return terms[0]!;
  const half = terms.length >> 1;
  return `(${anyOf(terms.slice(0, half))}) or (${anyOf(terms.slice(half))})`;
}

function checkFilter(q: ComposedQueryInput): void {
  const mask = codeMask(q.streamFilter);
  const display = /\bpx\s*\.\s*display\s*\(/g;
  for (let m = display.exec(q.streamFilter); m; m = display.exec(q.streamFilter)) {
    if (mask[m.index]) {
      throw new PxlComposeError(`${q.name}: stream_filter must not call px.display (fsm-px adds it)`);
    }
  }
  if (!/\bdf\s*=/.test(q.streamFilter)) {
    throw new PxlComposeError(`${q.name}: stream_filter must assign the DataFrame to df`);
  }
}

/** Builds the script for `queries` (all for the same sensor node). Throws {@link PxlComposeError}. */
export function composeScript(queries: readonly ComposedQueryInput[]): ComposedScript {
  if (queries.length === 0) throw new PxlComposeError("no queries to compose");
  const groups = new Map<string, ComposedQueryInput[]>();
  for (const q of queries) {
    if (!parseQueryName(q.name)) {
      throw new PxlComposeError(`query name '${q.name}' is not <measurement>/<tap>`);
    }
    const key = tableKey(q);
    const g = groups.get(key);
    if (g) g.push(q);
    else groups.set(key, [q]);
  }

  const pieces: Piece[] = [];
  let at = 0;
  const push = (p: Omit<Piece, "at">) => {
    pieces.push({ ...p, at });
    at += p.text.length;
  };
  push({ text: "import px\n" });

  const tables = new Map<string, ComposedTable>();
  const filters: { table: ComposedTable; text: string }[] = [];
  for (const group of groups.values()) {
    const q = group[0]!;
    checkFilter(q);
    const names = group.map((g) => g.name);
    if (tables.has(q.name)) {
      throw new PxlComposeError(`query ${q.name} is configured twice with different settings`);
    }
    const c = q.columns;
    const projected: string[] = [];
    for (const col of [c.time, c.pod, c.payload, c.body_size, c.latency, ...q.streamKeyColumns]) {
      if (col === undefined || col.startsWith("$.") || projected.includes(col)) continue;
      projected.push(col);
    }
    const table: ComposedTable = { display: q.name, names, columns: c, projected, node: q.node };
    const index = filters.length;
    tables.set(q.name, table);
    filters.push({ table, text: q.streamFilter });

    const note = names.join(", ").replace(/[\r\n]/g, " ");
    push({ text: `# fsm-px: ${note}\n`, table: index, part: "the block header" });
    const user = q.streamFilter;
    const edits = q.startTime === undefined ? [] : startTimeEdits(user, startTimeExpr(q.startTime));
    let from = 0;
    for (const e of edits) {
      if (e.start > from) push({ text: user.slice(from, e.start), table: index, src: from });
      push({ text: e.insert, table: index, src: e.start, part: "the start_time fsm-px sets" });
      from = e.end;
    }
    if (from < user.length) push({ text: user.slice(from), table: index, src: from });
    if (!user.endsWith("\n")) push({ text: "\n", table: index, src: user.length });

    const scope = scopeStatement(q);
    if (scope !== undefined) {
      push({
        text: scope,
        table: index,
        part: q.scope?.kind === "pods" ? "the scope to this node's pods" : "the node scope",
      });
    }
    if ((q.podSource ?? "ctx") === "ctx") {
      push({
        text: `df[${pxlString(c.pod)}] = df.ctx['pod']\n`,
        table: index,
        part: "the pod context column",
      });
    } else {
      push({
        text: `df[${pxlString(c.pod)}] = ${PROCESS_POD_EXPR}\n`,
        table: index,
        part: "the pod column from the process (standalone PEM)",
      });
    }
    push({
      text: `df = df[[${projected.map(pxlString).join(", ")}]]\n`,
      table: index,
      part: "the projection of the configured columns (columns, stream key columns)",
    });
    push({ text: `px.display(df.stream(), ${pxlString(q.name)})\n`, table: index, part: "the display call" });
  }

  const script = pieces.map((p) => p.text).join("");
  const starts = lineStarts(script);
  const filterStarts = filters.map((f) => lineStarts(f.text));

  const mapCompileError = (line: number, col: number): MappedCompileError | undefined => {
    if (!Number.isFinite(line) || line < 1 || line > starts.length) return undefined;
    const lineStart = starts[line - 1]!;
    const lineEnd = line < starts.length ? starts[line]! - 1 : script.length;
    const offset = Math.min(lineStart + Math.max(0, (Number.isFinite(col) ? col : 1) - 1), lineEnd);
    let piece: Piece | undefined;
    for (const p of pieces) {
      if (p.at <= offset && (offset < p.at + p.text.length || p.text.length === 0)) piece = p;
    }
    piece ??= pieces.findLast((p) => p.at <= offset);
    if (!piece || piece.table === undefined) return undefined;
    const f = filters[piece.table]!;
    const parsed = parseQueryName(f.table.display)!;
    const base: MappedCompileError = {
      table: f.table.display,
      names: f.table.names,
      measurement: parsed.measurement,
      tap: parsed.tap,
    };
    if (piece.src === undefined) return { ...base, part: piece.part };
    const srcOffset = piece.part ? piece.src : piece.src + (offset - piece.at);
    const pos = offsetToLineCol(filterStarts[piece.table]!, Math.min(srcOffset, f.text.length));
    return { ...base, line: pos.line, col: pos.col, ...(piece.part ? { part: piece.part } : {}) };
  };

  return { script, tables, mapCompileError };
}
