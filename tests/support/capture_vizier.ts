/**
 * Puts the rows of capture files behind the fake Vizier. {@link captureToStored} turns them into rows of a fake
 * PEM's `http_events` table, which the fake then runs the client's real script over (filters, projection, start
 * time, the pod label a standalone PEM gives). {@link serveRows} is the lenient path: it serves each captured row
 * to the table whose `px.display` name equals the row's query, whatever the script says, for tests that need the
 * capture's own columns.
 * @module
 */
import { type ColumnData, type ColumnInfo, DataType, type RowBatch } from "../../pixie/messages.ts";
import type { Cell, Row } from "../../pixie/row.ts";
import type { ExecuteCall, StoredRow } from "./fake_vizier.ts";

function typeOf(cell: Cell): number {
  if (typeof cell === "bigint") return DataType.INT64;
  if (typeof cell === "number") return Number.isInteger(cell) ? DataType.INT64 : DataType.FLOAT64;
  if (typeof cell === "boolean") return DataType.BOOLEAN;
  return DataType.STRING;
}

/** The relation of a table from its first row (`time_` is TIME64NS). */
export function relationOf(row: Row): ColumnInfo[] {
  return Object.entries(row.columns).map(([name, cell]) => ({
    name,
    type: name === "time_" ? DataType.TIME64NS : typeOf(cell),
  }));
}

const te = new TextEncoder();

/** Packs rows of one relation into a batch. */
export function batchOf(tableId: string, relation: ColumnInfo[], rows: readonly Row[]): RowBatch {
  const cols: ColumnData[] = relation.map((c): ColumnData => {
    const cells = rows.map((r) => r.columns[c.name]);
    switch (c.type) {
      case DataType.TIME64NS:
        return { type: "time64ns", data: cells.map((v) => BigInt(v as bigint)) };
      case DataType.INT64:
        return { type: "int64", data: cells.map((v) => BigInt(v as number | bigint)) };
      case DataType.FLOAT64:
        return { type: "float64", data: cells.map((v) => Number(v)) };
      case DataType.BOOLEAN:
        return { type: "boolean", data: cells.map((v) => Boolean(v)) };
      default:
        return {
          type: "string",
          data: cells.map((v) => (v instanceof Uint8Array ? v : te.encode(String(v ?? "")))),
        };
    }
  });
  return { tableId, cols, numRows: rows.length, eow: false, eos: false };
}

/** Display names in a composed script, in order. */
export function displayNames(script: string): string[] {
  return [...script.matchAll(/px\.display\([^,]+,\s*'([^']+)'\)/g)].map((m) => m[1]!);
}

/**
 * Streams `rows` (grouped by their query name) on `call` for every display name of the script, interleaved by
 * time, `batchRows` rows per batch; then keeps the call open with keep-alives until the client cancels.
 */
export async function serveRows(call: ExecuteCall, rows: readonly Row[], batchRows = 50): Promise<void> {
  const names = displayNames(call.request.queryStr);
  const tables = new Map<string, { id: string; relation: ColumnInfo[] }>();
  let i = 0;
  for (const name of names) {
    const first = rows.find((r) => r.query === name);
    if (!first) continue;
    const t = { id: `table-${i++}`, relation: relationOf(first) };
    tables.set(name, t);
    await call.meta(t.id, name, t.relation);
  }
  const pending = new Map<string, Row[]>();
  const flush = async (name: string) => {
    const list = pending.get(name);
    const t = tables.get(name);
    if (!list?.length || !t) return;
    pending.set(name, []);
    await call.batch(batchOf(t.id, t.relation, list));
  };
  for (const row of rows) {
    if (call.isCancelled()) return;
    if (!tables.has(row.query)) continue;
    const list = pending.get(row.query) ?? [];
    list.push(row);
    pending.set(row.query, list);
    if (list.length >= batchRows) await flush(row.query);
  }
  for (const name of tables.keys()) await flush(name);
  while (!call.isCancelled()) {
    for (const t of tables.values()) await call.keepAlive(t.id, t.relation);
    await Promise.race([call.cancelled, new Promise((r) => setTimeout(r, 500))]);
  }
}

const td = new TextDecoder();

/**
 * Captured rows as rows of an `http_events` table on a fake PEM: `local_port` tells the queries apart (a filter can
 * select them without Kubernetes metadata), the pod becomes a process (pid and command line) and stays the pod for
 * `df.ctx['pod']`; `req_body`, `remote_addr`, `remote_port` and `latency` are kept.
 */
export function captureToStored(rows: readonly Row[], localPort: (query: string) => bigint): StoredRow[] {
  return rows.map((r) => {
    const pod = typeof r.columns.pod === "string"
      ? r.columns.pod
      : r.columns.pod instanceof Uint8Array
      ? td.decode(r.columns.pod)
      : "";
    let pid = 7;
    for (let i = 0; i < pod.length; i++) pid = (pid * 31 + pod.charCodeAt(i)) % 30_000;
    const cols: Record<string, Cell> = { local_port: localPort(r.query), req_path: te.encode("/media") };
    for (const name of ["req_body", "remote_addr", "remote_port", "latency"]) {
      const v = r.columns[name];
      if (v === undefined) continue;
      cols[name] = name === "remote_port" || name === "latency"
        ? BigInt(v as number | bigint)
        : v instanceof Uint8Array
        ? v
        : te.encode(String(v));
    }
    return { time: r.time, pod, pid: 1000 + pid, cmdline: `/app/${pod.split("/").pop()}`, cols };
  });
}
