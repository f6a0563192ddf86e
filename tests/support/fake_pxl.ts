/**
 * A small PxL compiler and evaluator for the fake Vizier: enough of Pixie's language to run the scripts fsm-px
 * composes (and the stream filters users write) against rows held in fake PEMs, and to refuse what Pixie refuses
 * with Pixie's own messages at Pixie's line and column in the whole script.
 *
 * Written from Pixie's source (pixie-io/pixie), not its docs:
 * - Errors carry line/column of the AST node (1-based; a call's position is its `(`, an attribute's its `.`):
 *   src/carnot/planner/ir/ast_utils.h `CreateAstError`, src/carnot/planner/compiler_error_context/
 *   compiler_error_context.cc `LineColErrorPb`, and the positions asserted in
 *   src/carnot/planner/compiler/ast_visitor_test.cc (`px.DataFrame(` at column 13, `l = list` at column 5).
 * - Column expressions have no methods: src/carnot/planner/objects/qlobject.cc
 *   ("'$0' object has no attribute '$1'", the type name "Expression" from objects/expr_object.h).
 * - Only `* + % - / > < == != <= >= and or` are binary operators: src/carnot/planner/ir/func_ir.cc `op_map`,
 *   anything else is "Operator '$0' not handled" (compiler/ast_visitor.cc `GetOp`); `and`/`or` take exactly two
 *   operands ("Expected two arguments to '$0'.", `ProcessDataBoolOp`).
 * - "Table '$0' not found." (ir/memory_source_ir.cc), "Column '$0' not found in parent dataframe"
 *   (ir/column_ir.cc), "name '$0' is not defined", "dataframe has no method '$0'" (ast_visitor_test.cc).
 * - Table schemas: src/stirling/source_connectors/socket_tracer/{http,nats,redis}_table.h and canonical_types.h.
 * - Agent pruning: src/carnot/planner/distributed/coordinator/removable_ops_rule.cc prunes a PEM only on
 *   `<metadata> == '<string>'` filters whose metadata type the PEM's filter holds (pods, services, containers:
 *   src/shared/metadata/metadata_filter.h); `and` unions, `or` intersects; a node filter prunes nothing.
 * - Standalone PEM metadata: src/shared/metadata/standalone_state_manager.cc (pod name "", no Kubernetes state;
 *   processes from /proc, so `px.upid_to_pid` / `px.upid_to_cmdline` still answer).
 * @module
 */

import type { Cell } from "../../pixie/row.ts";
import { DataType } from "../../pixie/messages.ts";

/** A PxL compile error at a line and column (1-based) of the whole script. */
export class FakePxlError extends Error {
  /** 1-based line in the script. */
  readonly line: number;
  /** 1-based column in that line. */
  readonly column: number;
  /** Creates the error. */
  constructor(line: number, column: number, message: string) {
    super(message);
    this.line = line;
    this.column = column;
  }
}

/** Column types of the tables the fake knows. */
export const FAKE_SCHEMAS: Record<string, Record<string, number>> = (() => {
  const S = DataType.STRING, I = DataType.INT64, B = DataType.BOOLEAN;
  const conn = {
    time_: DataType.TIME64NS,
    upid: DataType.UINT128,
    remote_addr: S,
    remote_port: I,
    local_addr: S,
    local_port: I,
    trace_role: I,
    encrypted: B,
  };
  return {
    http_events: {
      ...conn,
      major_version: I,
      minor_version: I,
      content_type: I,
      req_headers: S,
      req_method: S,
      req_path: S,
      req_body: S,
      req_body_size: I,
      resp_headers: S,
      resp_status: I,
      resp_message: S,
      resp_body: S,
      resp_body_size: I,
      latency: I,
      px_info_: S,
    },
    "nats_events.beta": { ...conn, cmd: S, body: S, resp: S, px_info_: S },
    redis_events: { ...conn, req_cmd: S, req_args: S, resp: S, latency: I, px_info_: S },
  };
})();

/** Metadata a PEM attaches to a row through `df.ctx[...]`. */
const CTX_KEYS = new Set([
  "pod",
  "pod_name",
  "pod_id",
  "namespace",
  "namespace_name",
  "node",
  "node_name",
  "service",
  "service_name",
  "service_id",
  "container",
  "container_name",
  "container_id",
  "deployment",
  "deployment_name",
  "replicaset",
  "hostname",
]);
/** Metadata types a PEM's agent filter holds (metadata_filter.h): only these prune agents. */
const PRUNABLE_CTX = new Set(["pod", "pod_name", "service", "service_name"]);

// ---------------------------------------------------------------------------------------------------------------
// Tokens

interface Tok {
  kind: "name" | "str" | "num" | "op" | "nl" | "eof";
  text: string;
  value?: string | number | bigint;
  line: number;
  col: number;
}

const OPS = [
  "==",
  "!=",
  "<=",
  ">=",
  "**",
  "//",
  "(",
  ")",
  "[",
  "]",
  "{",
  "}",
  ",",
  ":",
  ".",
  "=",
  "+",
  "-",
  "*",
  "/",
  "%",
  "<",
  ">",
  "&",
  "|",
  "~",
  "^",
  ";",
];

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0, line = 1, lineStart = 0, depth = 0;
  const pos = () => ({ line, col: i - lineStart + 1 });
  while (i < src.length) {
    const ch = src[i]!;
    if (ch === "\n") {
      if (depth === 0) out.push({ kind: "nl", text: "\n", ...pos() });
      i++;
      line++;
      lineStart = i;
      continue;
    }
    if (ch === " " || ch === "\t" || ch === "\r") {
      i++;
      continue;
    }
    if (ch === "\\" && src[i + 1] === "\n") {
      i += 2;
      line++;
      lineStart = i;
      continue;
    }
    if (ch === "#") {
      while (i < src.length && src[i] !== "\n") i++;
      continue;
    }
    const p = pos();
    if (ch === "'" || ch === '"') {
      const triple = src.startsWith(ch.repeat(3), i);
      const close = triple ? ch.repeat(3) : ch;
      let j = i + close.length;
      let value = "";
      for (;;) {
        if (j >= src.length || (!triple && src[j] === "\n")) {
          throw new FakePxlError(p.line, p.col, "EOL while scanning string literal");
        }
        if (src[j] === "\\") {
          const e = src[j + 1] ?? "";
          value += e === "n" ? "\n" : e === "t" ? "\t" : e === "r" ? "\r" : e;
          j += 2;
          continue;
        }
        if (src.startsWith(close, j)) break;
        if (src[j] === "\n") {
          line++;
          lineStart = j + 1;
        }
        value += src[j];
        j++;
      }
      j += close.length;
      out.push({ kind: "str", text: src.slice(i, j), value, ...p });
      i = j;
      continue;
    }
    const num = /^(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?/.exec(src.slice(i, i + 64));
    if (num && /[\d.]/.test(ch)) {
      const t = num[0];
      out.push({ kind: "num", text: t, value: /[.eE]/.test(t) ? Number(t) : BigInt(t), ...p });
      i += t.length;
      continue;
    }
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i, i + 256));
    if (name) {
      out.push({ kind: "name", text: name[0], ...p });
      i += name[0].length;
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (!op) throw new FakePxlError(p.line, p.col, `invalid syntax: unexpected character '${ch}'`);
    if (op === "(" || op === "[" || op === "{") depth++;
    if (op === ")" || op === "]" || op === "}") depth = Math.max(0, depth - 1);
    out.push(op === ";" ? { kind: "nl", text: ";", ...p } : { kind: "op", text: op, ...p });
    i += op.length;
  }
  out.push({ kind: "nl", text: "\n", line, col: i - lineStart + 1 });
  out.push({ kind: "eof", text: "", line, col: i - lineStart + 1 });
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// AST

type Node =
  | { t: "name"; name: string; at: Tok }
  | { t: "str"; value: string; at: Tok }
  | { t: "num"; value: number | bigint; at: Tok }
  | { t: "list"; items: Node[]; at: Tok }
  | { t: "attr"; obj: Node; name: string; at: Tok }
  | { t: "index"; obj: Node; index: Node; at: Tok }
  | { t: "call"; fn: Node; args: Node[]; kwargs: [string, Node][]; at: Tok }
  | { t: "bin"; op: string; l: Node; r: Node; at: Tok }
  | { t: "bool"; op: "and" | "or"; values: Node[]; at: Tok }
  | { t: "not"; e: Node; at: Tok }
  | { t: "neg"; op: string; e: Node; at: Tok };

type Stmt =
  | { t: "import"; name: string; at: Tok }
  | { t: "assign"; target: Node; value: Node; at: Tok }
  | { t: "expr"; e: Node; at: Tok };

class Parser {
  #i = 0;
  constructor(readonly toks: Tok[]) {}
  peek(): Tok {
    return this.toks[this.#i]!;
  }
  next(): Tok {
    return this.toks[this.#i++]!;
  }
  is(text: string): boolean {
    const t = this.peek();
    return (t.kind === "op" || t.kind === "name") && t.text === text;
  }
  expect(text: string): Tok {
    const t = this.next();
    if (t.text !== text) throw new FakePxlError(t.line, t.col, `invalid syntax: expected '${text}'`);
    return t;
  }
  program(): Stmt[] {
    const out: Stmt[] = [];
    while (this.peek().kind !== "eof") {
      if (this.peek().kind === "nl") {
        this.next();
        continue;
      }
      out.push(this.statement());
      const end = this.next();
      if (end.kind !== "nl") throw new FakePxlError(end.line, end.col, "invalid syntax");
    }
    return out;
  }
  statement(): Stmt {
    const at = this.peek();
    if (at.kind === "name" && at.text === "import") {
      this.next();
      const name = this.next();
      return { t: "import", name: name.text, at };
    }
    const e = this.expr();
    if (this.is("=")) {
      const eq = this.next();
      return { t: "assign", target: e, value: this.expr(), at: eq };
    }
    return { t: "expr", e, at };
  }
  expr(): Node {
    return this.boolOp("or", () => this.boolOp("and", () => this.notExpr()));
  }
  boolOp(op: "and" | "or", sub: () => Node): Node {
    const first = sub();
    if (!this.is(op)) return first;
    const values = [first];
    const at = this.peek();
    while (this.is(op)) {
      this.next();
      values.push(sub());
    }
    return { t: "bool", op, values, at: nodeTok(first) ?? at };
  }
  notExpr(): Node {
    if (this.is("not")) {
      const at = this.next();
      return { t: "not", e: this.notExpr(), at };
    }
    return this.binary(0);
  }
  static readonly LEVELS = [["==", "!=", "<", ">", "<=", ">="], ["|"], ["^"], ["&"], ["+", "-"], [
    "*",
    "/",
    "%",
    "//",
  ]];
  binary(level: number): Node {
    if (level >= Parser.LEVELS.length) return this.unary();
    let l = this.binary(level + 1);
    while (this.peek().kind === "op" && Parser.LEVELS[level]!.includes(this.peek().text)) {
      const at = this.next();
      const r = this.binary(level + 1);
      l = { t: "bin", op: at.text, l, r, at };
    }
    return l;
  }
  unary(): Node {
    if (this.peek().kind === "op" && ["-", "+", "~"].includes(this.peek().text)) {
      const at = this.next();
      return { t: "neg", op: at.text, e: this.unary(), at };
    }
    return this.postfix();
  }
  postfix(): Node {
    let n = this.atom();
    for (;;) {
      if (this.is(".")) {
        const at = this.next();
        const name = this.next();
        if (name.kind !== "name") throw new FakePxlError(name.line, name.col, "invalid syntax");
        n = { t: "attr", obj: n, name: name.text, at };
      } else if (this.is("[")) {
        const at = this.next();
        const index = this.expr();
        this.expect("]");
        n = { t: "index", obj: n, index, at };
      } else if (this.is("(")) {
        const at = this.next();
        const args: Node[] = [];
        const kwargs: [string, Node][] = [];
        while (!this.is(")")) {
          const t = this.peek();
          if (t.kind === "name" && this.toks[this.#i + 1]?.text === "=") {
            this.next();
            this.next();
            kwargs.push([t.text, this.expr()]);
          } else {
            args.push(this.expr());
          }
          if (!this.is(")")) this.expect(",");
        }
        this.expect(")");
        n = { t: "call", fn: n, args, kwargs, at };
      } else {
        return n;
      }
    }
  }
  atom(): Node {
    const t = this.next();
    if (t.kind === "name") return { t: "name", name: t.text, at: t };
    if (t.kind === "str") {
      let value = t.value as string;
      while (this.peek().kind === "str") value += this.next().value as string;
      return { t: "str", value, at: t };
    }
    if (t.kind === "num") return { t: "num", value: t.value as number | bigint, at: t };
    if (t.kind === "op" && t.text === "(") {
      const e = this.expr();
      this.expect(")");
      return e;
    }
    if (t.kind === "op" && t.text === "[") {
      const items: Node[] = [];
      while (!this.is("]")) {
        items.push(this.expr());
        if (!this.is("]")) this.expect(",");
      }
      this.expect("]");
      return { t: "list", items, at: t };
    }
    throw new FakePxlError(t.line, t.col, "invalid syntax");
  }
}

function nodeTok(n: Node): Tok | undefined {
  switch (n.t) {
    case "attr":
    case "index":
      return nodeTok(n.obj) ?? n.at;
    case "call":
      return nodeTok(n.fn) ?? n.at;
    case "bin":
      return nodeTok(n.l);
    default:
      return n.at;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Compilation: typed expressions and data frames

/** A row in a fake PEM's table store, with the metadata the PEM knows about its process. */
export interface StoredRow {
  time: bigint;
  /** `namespace/name` of the pod that sent it ('' when unknown). */
  pod?: string;
  service?: string;
  pid?: number;
  cmdline?: string;
  /** Column values by name; absent columns read as their type's zero. */
  cols: Record<string, Cell>;
}

/** What `df.ctx[...]` and process functions read for one row. */
export interface RowContext {
  node: string;
  /** True on a standalone PEM: every Kubernetes field reads as ''. */
  standalone: boolean;
}

/** A compiled expression over one row. */
export interface Expr {
  type: number;
  eval(row: StoredRow, ctx: RowContext): Cell;
  /** For pruning: `ctx[k] == 'v'` parts. */
  prune?: PruneExpr;
}

type PruneExpr =
  | { kind: "eq"; key: string; value: string }
  | { kind: "and" | "or"; l: PruneExpr | undefined; r: PruneExpr | undefined };

/** One step of a frame's pipeline. */
export type FrameOp =
  | { kind: "filter"; expr: Expr }
  | { kind: "assign"; name: string; expr: Expr }
  | { kind: "project"; names: string[] };

/** A data frame: a table source plus a pipeline. */
export interface Frame {
  table: string;
  /** `start_time` as given (ns bigint or relative string), undefined for "from now". */
  startTime?: bigint | string;
  columns: Map<string, number>;
  ops: FrameOp[];
  streaming: boolean;
}

/** One `px.display` output. */
export interface CompiledOutput {
  name: string;
  frame: Frame;
}

const te = new TextEncoder();
const td = new TextDecoder();

function zeroOf(type: number): Cell {
  switch (type) {
    case DataType.STRING:
      return new Uint8Array(0);
    case DataType.BOOLEAN:
      return false;
    case DataType.FLOAT64:
      return 0;
    case DataType.UINT128:
      return 0n;
    default:
      return 0n;
  }
}

/** A cell as a JS value for comparisons: strings decoded. */
function plain(c: Cell): string | number | bigint | boolean {
  if (c instanceof Uint8Array) return td.decode(c);
  return c;
}

function asStringCell(s: string): Uint8Array {
  return te.encode(s);
}

type Value =
  | { k: "module" }
  | { k: "fn"; name: string; self?: Frame }
  | { k: "frame"; frame: Frame }
  | { k: "ctx"; frame: Frame }
  | { k: "expr"; expr: Expr }
  | { k: "lit"; value: string | number | bigint | boolean }
  | { k: "list"; items: Value[] };

function err(at: Tok, msg: string): FakePxlError {
  return new FakePxlError(at.line, at.col, msg);
}

function litExpr(v: string | number | bigint | boolean): Expr {
  const type = typeof v === "string"
    ? DataType.STRING
    : typeof v === "boolean"
    ? DataType.BOOLEAN
    : typeof v === "number"
    ? DataType.FLOAT64
    : DataType.INT64;
  const cell: Cell = typeof v === "string" ? asStringCell(v) : v;
  return { type, eval: () => cell };
}

function ctxValue(key: string, row: StoredRow, ctx: RowContext): string {
  if (ctx.standalone) return key === "hostname" ? ctx.node : "";
  switch (key) {
    case "pod":
    case "pod_name":
      return row.pod ?? "";
    case "namespace":
    case "namespace_name":
      return (row.pod ?? "").split("/")[0] ?? "";
    case "node":
    case "node_name":
    case "hostname":
      return ctx.node;
    case "service":
    case "service_name":
      return row.service ?? "";
    default:
      return "";
  }
}

const PX_FUNCS = new Set([
  "DataFrame",
  "display",
  "contains",
  "upid_to_pid",
  "upid_to_cmdline",
  "itoa",
  "now",
  "equals_any",
  "length",
]);

class Compiler {
  readonly vars = new Map<string, Value>();
  readonly outputs: CompiledOutput[] = [];

  run(stmts: Stmt[]): void {
    for (const s of stmts) {
      if (s.t === "import") {
        if (s.name !== "px") throw err(s.at, `No module named '${s.name}'`);
        this.vars.set("px", { k: "module" });
      } else if (s.t === "expr") {
        this.value(s.e);
      } else {
        this.assign(s.target, s.value, s.at);
      }
    }
  }

  assign(target: Node, valueNode: Node, at: Tok): void {
    if (target.t === "name") {
      this.vars.set(target.name, this.value(valueNode));
      return;
    }
    if ((target.t === "index" || target.t === "attr") && target.obj.t === "name") {
      const df = this.vars.get(target.obj.name);
      if (!df || df.k !== "frame") throw err(target.at, `name '${target.obj.name}' is not a dataframe`);
      let col: string;
      if (target.t === "attr") col = target.name;
      else {
        const k = this.value(target.index);
        if (k.k !== "lit" || typeof k.value !== "string") {
          throw err(target.at, "column name must be a string");
        }
        col = k.value;
      }
      const expr = this.asExpr(this.value(valueNode), valueNode, df.frame);
      const frame = copyFrame(df.frame);
      frame.ops.push({ kind: "assign", name: col, expr });
      frame.columns.set(col, expr.type);
      this.vars.set(target.obj.name, { k: "frame", frame });
      return;
    }
    throw err(at, "Assignment target must be a Name or Subscript");
  }

  asExpr(v: Value, n: Node, frame?: Frame): Expr {
    if (v.k === "expr") return v.expr;
    if (v.k === "lit") return litExpr(v.value);
    void frame;
    throw err(nodeTok(n) ?? n.at, `Expected an expression, received ${v.k}`);
  }

  value(n: Node): Value {
    switch (n.t) {
      case "name": {
        if (n.name === "True" || n.name === "False") return { k: "lit", value: n.name === "True" };
        const v = this.vars.get(n.name);
        if (!v) throw err(n.at, `name '${n.name}' is not defined`);
        return v;
      }
      case "str":
        return { k: "lit", value: n.value };
      case "num":
        return { k: "lit", value: n.value };
      case "list":
        return { k: "list", items: n.items.map((i) => this.value(i)) };
      case "attr":
        return this.attr(n);
      case "index":
        return this.index(n);
      case "call":
        return this.call(n);
      case "bin":
        return this.bin(n);
      case "bool":
        return this.boolOp(n);
      case "not": {
        const e = this.asExpr(this.value(n.e), n.e);
        return { k: "expr", expr: { type: DataType.BOOLEAN, eval: (r, c) => !truthy(e.eval(r, c)) } };
      }
      case "neg": {
        if (n.op === "~") throw err(n.at, "Unary Operator '~' not handled");
        const v = this.value(n.e);
        if (v.k === "lit" && (typeof v.value === "bigint" || typeof v.value === "number")) {
          return { k: "lit", value: n.op === "-" ? -v.value : v.value };
        }
        const e = this.asExpr(v, n.e);
        return {
          k: "expr",
          expr: {
            type: e.type,
            eval: (r, c) => {
              const x = e.eval(r, c);
              return n.op === "-" ? (typeof x === "bigint" ? -x : -Number(x)) : x;
            },
          },
        };
      }
    }
  }

  attr(n: Extract<Node, { t: "attr" }>): Value {
    const obj = this.value(n.obj);
    if (obj.k === "module") {
      if (!PX_FUNCS.has(n.name)) throw err(n.at, `'px' object has no attribute '${n.name}'`);
      return { k: "fn", name: n.name };
    }
    if (obj.k === "frame") {
      if (n.name === "ctx") return { k: "ctx", frame: obj.frame };
      if (n.name === "stream") return { k: "fn", name: "df.stream", self: obj.frame };
      if (["head", "groupby", "agg", "merge", "append", "drop", "filter"].includes(n.name)) {
        return { k: "fn", name: `df.${n.name}`, self: obj.frame };
      }
      return { k: "expr", expr: this.column(obj.frame, n.name, n.at) };
    }
    if (obj.k === "expr") throw err(n.at, `'Expression' object has no attribute '${n.name}'`);
    if (obj.k === "lit" && typeof obj.value === "string") {
      throw err(n.at, `'String' object has no attribute '${n.name}'`);
    }
    throw err(n.at, `object has no attribute '${n.name}'`);
  }

  column(frame: Frame, name: string, at: Tok): Expr {
    const type = frame.columns.get(name);
    if (type === undefined) throw err(at, `Column '${name}' not found in parent dataframe`);
    return { type, eval: (r) => (name === "time_" ? r.time : r.cols[name] ?? zeroOf(type)) };
  }

  index(n: Extract<Node, { t: "index" }>): Value {
    const obj = this.value(n.obj);
    if (obj.k === "ctx") {
      const key = this.value(n.index);
      if (key.k !== "lit" || typeof key.value !== "string") throw err(n.at, "ctx key must be a string");
      const k = key.value;
      if (!CTX_KEYS.has(k)) throw err(n.at, `'${k}' is not a valid metadata property`);
      return {
        k: "expr",
        expr: {
          type: DataType.STRING,
          eval: (r, c) => asStringCell(ctxValue(k, r, c)),
          prune: { kind: "eq", key: k, value: "" },
        },
      };
    }
    if (obj.k === "frame") {
      const idx = this.value(n.index);
      if (idx.k === "lit" && typeof idx.value === "string") {
        return { k: "expr", expr: this.column(obj.frame, idx.value, n.at) };
      }
      if (idx.k === "list") {
        const names = idx.items.map((i) => {
          if (i.k !== "lit" || typeof i.value !== "string") throw err(n.at, "projection takes column names");
          return i.value;
        });
        for (const c of names) {
          if (!obj.frame.columns.has(c)) throw err(n.at, `Column '${c}' not found in parent dataframe`);
        }
        const frame = copyFrame(obj.frame);
        frame.ops.push({ kind: "project", names });
        frame.columns = new Map(names.map((c) => [c, obj.frame.columns.get(c)!]));
        return { k: "frame", frame };
      }
      const e = this.asExpr(idx, n.index);
      if (e.type !== DataType.BOOLEAN) throw err(n.at, "Expected filter expression to be a boolean");
      const frame = copyFrame(obj.frame);
      frame.ops.push({ kind: "filter", expr: e });
      return { k: "frame", frame };
    }
    throw err(n.at, "object is not subscriptable");
  }

  call(n: Extract<Node, { t: "call" }>): Value {
    const fn = this.value(n.fn);
    if (fn.k === "expr") throw err(n.at, "'Expression' object is not callable");
    if (fn.k !== "fn") throw err(n.at, "object is not callable");
    const args = n.args.map((a) => this.value(a));
    const kw = new Map(n.kwargs.map(([k, v]) => [k, this.value(v)]));
    const arg = (i: number, name: string): Value | undefined => kw.get(name) ?? args[i];
    switch (fn.name) {
      case "DataFrame": {
        for (const k of kw.keys()) {
          if (!["table", "select", "start_time", "end_time"].includes(k)) {
            throw err(n.at, `DataFrame() got an unexpected keyword argument '${k}'`);
          }
        }
        const table = arg(0, "table");
        if (!table) throw err(n.at, "DataFrame() missing 1 required positional argument: 'table'");
        if (table.k !== "lit" || typeof table.value !== "string") {
          throw err(n.at, "Expected arg 'table' as type 'String'");
        }
        const schema = FAKE_SCHEMAS[table.value];
        if (!schema) throw err(n.at, `Table '${table.value}' not found.`);
        const start = arg(2, "start_time");
        let startTime: bigint | string | undefined;
        if (start) {
          if (start.k !== "lit" || (typeof start.value !== "string" && typeof start.value !== "bigint")) {
            throw err(n.at, "Expected arg 'start_time' as type 'Int' or 'String'");
          }
          if (typeof start.value === "string" && !/^-\d+(ms|m|s|h|d)$/.test(start.value)) {
            throw err(n.at, `Unable to parse start_time '${start.value}'`);
          }
          startTime = start.value as string | bigint;
        }
        let columns = new Map(Object.entries(schema));
        const select = arg(1, "select");
        if (select && select.k === "list") {
          const names = select.items.map((i) => (i.k === "lit" ? String(i.value) : ""));
          for (const c of names) {
            if (!columns.has(c)) throw err(n.at, `Column '${c}' not found in table '${table.value}'`);
          }
          columns = new Map(names.map((c) => [c, schema[c]!]));
        }
        return { k: "frame", frame: { table: table.value, startTime, columns, ops: [], streaming: false } };
      }
      case "df.stream": {
        const frame = copyFrame(fn.self!);
        frame.streaming = true;
        return { k: "frame", frame };
      }
      case "display": {
        const df = args[0];
        if (!df || df.k !== "frame") throw err(n.at, "px.display expects a dataframe");
        const name = arg(1, "name");
        const label = name && name.k === "lit" ? String(name.value) : "output";
        this.outputs.push({ name: label, frame: df.frame });
        return { k: "lit", value: true };
      }
      case "contains": {
        const [a, b] = [args[0], args[1]];
        if (!a || !b) throw err(n.at, "contains() takes 2 arguments");
        const ea = this.asExpr(a, n.args[0]!), eb = this.asExpr(b, n.args[1]!);
        if (ea.type !== DataType.STRING || eb.type !== DataType.STRING) {
          throw err(n.at, "Could not find a UDF 'contains' for the argument types");
        }
        return {
          k: "expr",
          expr: {
            type: DataType.BOOLEAN,
            eval: (r, c) => String(plain(ea.eval(r, c))).includes(String(plain(eb.eval(r, c)))),
          },
        };
      }
      case "upid_to_pid": {
        this.upidArg(args, n);
        return { k: "expr", expr: { type: DataType.INT64, eval: (r) => BigInt(r.pid ?? 0) } };
      }
      case "upid_to_cmdline": {
        this.upidArg(args, n);
        return { k: "expr", expr: { type: DataType.STRING, eval: (r) => asStringCell(r.cmdline ?? "") } };
      }
      case "itoa": {
        const e = this.asExpr(args[0] ?? { k: "lit", value: 0n }, n.args[0] ?? n);
        if (e.type !== DataType.INT64) throw err(n.at, "Could not find a UDF 'itoa' for the argument types");
        return {
          k: "expr",
          expr: { type: DataType.STRING, eval: (r, c) => asStringCell(String(e.eval(r, c))) },
        };
      }
      default:
        if (fn.name.startsWith("df.")) {
          throw err(n.at, `dataframe method '${fn.name.slice(3)}' is not modelled by the fake`);
        }
        throw err(n.at, `px.${fn.name} is not modelled by the fake`);
    }
  }

  upidArg(args: Value[], n: Extract<Node, { t: "call" }>): void {
    const a = args[0];
    if (!a || a.k !== "expr" || a.expr.type !== DataType.UINT128) {
      throw err(n.at, "Expected a UINT128 upid argument");
    }
  }

  bin(n: Extract<Node, { t: "bin" }>): Value {
    const lv = this.value(n.l), rv = this.value(n.r);
    const compare = ["==", "!=", "<", ">", "<=", ">="].includes(n.op);
    const arith = ["+", "-", "*", "/", "%"].includes(n.op);
    if (!compare && !arith) throw err(n.at, `Operator '${n.op}' not handled`);
    if (lv.k === "lit" && rv.k === "lit" && arith && typeof lv.value === typeof rv.value) {
      // Constant folding of literals (e.g. 'http_' + 'events').
      const a = lv.value as never, b = rv.value as never;
      const v = n.op === "+"
        ? (a as string) + (b as string)
        : n.op === "-"
        ? (a as number) - (b as number)
        : n.op === "*"
        ? (a as number) * (b as number)
        : n.op === "/"
        ? (a as number) / (b as number)
        : (a as number) % (b as number);
      return { k: "lit", value: v };
    }
    const l = this.asExpr(lv, n.l), r = this.asExpr(rv, n.r);
    if (compare) {
      const prune: PruneExpr | undefined =
        n.op === "==" && l.prune?.kind === "eq" && rv.k === "lit" && typeof rv.value === "string"
          ? { kind: "eq", key: l.prune.key, value: rv.value }
          : n.op === "==" && r.prune?.kind === "eq" && lv.k === "lit" && typeof lv.value === "string"
          ? { kind: "eq", key: r.prune.key, value: lv.value }
          : undefined;
      return {
        k: "expr",
        expr: {
          type: DataType.BOOLEAN,
          prune,
          eval: (row, c) => {
            const a = plain(l.eval(row, c)), b = plain(r.eval(row, c));
            const [x, y] = typeof a === "bigint" || typeof b === "bigint"
              ? [
                typeof a === "bigint" ? a : BigInt(Math.trunc(Number(a))),
                typeof b === "bigint" ? b : BigInt(Math.trunc(Number(b))),
              ]
              : [a, b];
            switch (n.op) {
              case "==":
                return x === y;
              case "!=":
                return x !== y;
              case "<":
                return x < y;
              case ">":
                return x > y;
              case "<=":
                return x <= y;
              default:
                return x >= y;
            }
          },
        },
      };
    }
    if (n.op === "+" && l.type === DataType.STRING && r.type === DataType.STRING) {
      return {
        k: "expr",
        expr: {
          type: DataType.STRING,
          eval: (row, c) => asStringCell(String(plain(l.eval(row, c))) + String(plain(r.eval(row, c)))),
        },
      };
    }
    if (l.type === DataType.STRING || r.type === DataType.STRING) {
      throw err(n.at, `Could not find a UDF for '${n.op}' with these argument types`);
    }
    const float = l.type === DataType.FLOAT64 || r.type === DataType.FLOAT64;
    return {
      k: "expr",
      expr: {
        type: float ? DataType.FLOAT64 : DataType.INT64,
        eval: (row, c) => {
          const a = l.eval(row, c), b = r.eval(row, c);
          if (float) {
            const x = Number(a), y = Number(b);
            return n.op === "+"
              ? x + y
              : n.op === "-"
              ? x - y
              : n.op === "*"
              ? x * y
              : n.op === "/"
              ? x / y
              : x % y;
          }
          const x = BigInt(a as bigint), y = BigInt(b as bigint);
          return n.op === "+"
            ? x + y
            : n.op === "-"
            ? x - y
            : n.op === "*"
            ? x * y
            : n.op === "/"
            ? x / y
            : x % y;
        },
      },
    };
  }

  boolOp(n: Extract<Node, { t: "bool" }>): Value {
    if (n.values.length !== 2) throw err(n.at, `Expected two arguments to '${n.op}'.`);
    const l = this.asExpr(this.value(n.values[0]!), n.values[0]!);
    const r = this.asExpr(this.value(n.values[1]!), n.values[1]!);
    const and = n.op === "and";
    return {
      k: "expr",
      expr: {
        type: DataType.BOOLEAN,
        prune: {
          kind: n.op,
          l: l.prune?.kind === "eq" && l.prune.value === "" ? undefined : l.prune,
          r: r.prune?.kind === "eq" && r.prune.value === "" ? undefined : r.prune,
        },
        eval: (
          row,
          c,
        ) => (and
          ? truthy(l.eval(row, c)) && truthy(r.eval(row, c))
          : truthy(l.eval(row, c)) || truthy(r.eval(row, c))),
      },
    };
  }
}

function truthy(c: Cell): boolean {
  if (c instanceof Uint8Array) return c.length > 0;
  return Boolean(c);
}

function copyFrame(f: Frame): Frame {
  return { ...f, columns: new Map(f.columns), ops: [...f.ops] };
}

/** Compiles a script; throws {@link FakePxlError} like Pixie's planner would. */
export function compilePxl(script: string): CompiledOutput[] {
  const stmts = new Parser(tokenize(script)).program();
  const c = new Compiler();
  c.run(stmts);
  if (c.outputs.length === 0) throw new FakePxlError(1, 1, "No outputs in script");
  return c.outputs;
}

/** Runs a frame's pipeline on one stored row; undefined when a filter drops it. */
export function evalRow(frame: Frame, row: StoredRow, ctx: RowContext): Record<string, Cell> | undefined {
  // Start from the whole table row: filters and assignments may read columns a later projection drops.
  const cols: Record<string, Cell> = {};
  for (const [name, type] of Object.entries(FAKE_SCHEMAS[frame.table] ?? {})) {
    cols[name] = name === "time_" ? row.time : row.cols[name] ?? zeroOf(type);
  }
  // Assigned columns read the row as extended so far.
  const view: StoredRow = { ...row, cols };
  for (const op of frame.ops) {
    if (op.kind === "filter") {
      if (!truthy(op.expr.eval(view, ctx))) return undefined;
    } else if (op.kind === "assign") {
      cols[op.name] = op.expr.eval(view, ctx);
    }
  }
  const out: Record<string, Cell> = {};
  for (const [name, type] of frame.columns) out[name] = cols[name] ?? zeroOf(type);
  return out;
}

/** Whether Pixie's planner would leave this frame off a PEM holding `pods` and `services` (agent pruning). */
export function prunedOn(frame: Frame, pods: ReadonlySet<string>, services: ReadonlySet<string>): boolean {
  const pruned = (p: PruneExpr | undefined): boolean => {
    if (!p) return false;
    if (p.kind === "eq") {
      if (!PRUNABLE_CTX.has(p.key)) return false;
      return p.key.startsWith("pod") ? !pods.has(p.value) : !services.has(p.value);
    }
    return p.kind === "and" ? pruned(p.l) || pruned(p.r) : pruned(p.l) && pruned(p.r);
  };
  return frame.ops.some((op) => op.kind === "filter" && pruned(op.expr.prune));
}
