/**
 * Turns one decoded row batch plus its table's relation into {@link Row}s. Cells keep Pixie's types: STRING as
 * bytes, INT64/TIME64NS as bigint, UINT128 as a UUID string, FLOAT64 as number, BOOLEAN as boolean.
 * @module
 */

import type { Cell, Row } from "./row.ts";
import { type ColumnData, type ColumnInfo, DataType, type RowBatch, uuidFromU128 } from "./messages.ts";

/** A batch that does not fit its relation; the caller counts it and skips the batch. */
export class PixieDecodeError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "PixieDecodeError";
  }
}

const CASE_OF_TYPE: Record<number, ColumnData["type"]> = {
  [DataType.BOOLEAN]: "boolean",
  [DataType.INT64]: "int64",
  [DataType.UINT128]: "uint128",
  [DataType.FLOAT64]: "float64",
  [DataType.STRING]: "string",
  [DataType.TIME64NS]: "time64ns",
};

/** Options for {@link batchToRows}. */
export interface BatchToRowsOptions {
  /** `<measurement>/<tap>` the rows belong to. */
  query: string;
  /** Node whose sensor read the rows. */
  node: string;
  /** Column holding the capture time (TIME64NS or INT64); default `time_`. */
  timeColumn?: string;
  /**
   * The hash32 of each row's cell of a STRING column (the tap's payload: pixie/delivered_rows.ts computes it
   * as it hashes the rows), which every row then carries ({@link Row.payloadHash}).
   */
  payloadHashes?: { column: number; hashes: Int32Array };
  /** The time column {@link checkBatch} returned for this very batch: it is not checked a second time. */
  checkedTimes?: TimeColumn;
}

/** A batch's capture-time column, as {@link checkBatch} finds it. */
export type TimeColumn = Extract<ColumnData, { type: "time64ns" | "int64" }>;

/** The column's cells as a row takes them: UINT128 as UUID strings, every other type as decoded. */
function cellsOf(col: ColumnData): readonly Cell[] {
  return col.type === "uint128" ? col.data.map(uuidFromU128) : col.data;
}

/** Builds one row's `columns` record from the columns' cells at row `i`. */
type ColumnsOf = (cells: readonly (readonly Cell[])[], i: number) => Record<string, Cell>;

/**
 * A record builder per relation: one object literal of a fixed shape (V8 then creates every row's record with
 * one allocation and no keyed stores). Names are quoted by JSON.stringify, so any name is a plain key; a
 * relation naming `__proto__` (which a literal would take as the prototype) is built key by key, as it always was.
 */
const builders = new WeakMap<readonly ColumnInfo[], ColumnsOf>();

function columnsBuilder(relation: readonly ColumnInfo[]): ColumnsOf {
  let f = builders.get(relation);
  if (f) return f;
  const names = relation.map((c) => c.name);
  if (names.includes("__proto__")) {
    f = (cells, i) => {
      const columns: Record<string, Cell> = {};
      for (let c = 0; c < names.length; c++) columns[names[c]!] = cells[c]![i]!;
      return columns;
    };
  } else {
    const body = names.map((n, c) => `${JSON.stringify(n)}: cells[${c}][i]`).join(", ");
    f = new Function("cells", "i", `"use strict"; return { ${body} };`) as ColumnsOf;
  }
  builders.set(relation, f);
  return f;
}

/**
 * Converts a batch to rows. Throws {@link PixieDecodeError} when the batch disagrees with the relation (column
 * count, types, lengths, missing time column); a 0-row batch (a keep-alive) gives an empty array.
 */
export function batchToRows(
  batch: RowBatch,
  relation: readonly ColumnInfo[],
  opts: BatchToRowsOptions,
): Row[] {
  if (batch.numRows === 0) return [];
  const times = (opts.checkedTimes ?? checkBatch(batch, relation, opts.timeColumn)).data;
  const cells = batch.cols.map(cellsOf);
  const build = columnsBuilder(relation);
  const { query, node } = opts;
  const rows: Row[] = new Array(batch.numRows);
  const ph = opts.payloadHashes;
  if (ph !== undefined) {
    // Every row of the batch of one shape: the hashed cell and its hash beside the record (int32: a small integer).
    const payloads = cells[ph.column] as readonly Uint8Array[], hashes = ph.hashes;
    for (let i = 0; i < batch.numRows; i++) {
      rows[i] = {
        query,
        node,
        time: times[i]!,
        columns: build(cells, i),
        hashedPayload: payloads[i]!,
        payloadHash: hashes[i]!,
      };
    }
    return rows;
  }
  for (let i = 0; i < batch.numRows; i++) {
    rows[i] = { query, node, time: times[i]!, columns: build(cells, i) };
  }
  return rows;
}

/**
 * Checks a batch of rows against its relation (column count, types, lengths, the time column) and returns its
 * time column; throws {@link PixieDecodeError} where they disagree.
 */
export function checkBatch(
  batch: RowBatch,
  relation: readonly ColumnInfo[],
  timeName = "time_",
): TimeColumn {
  if (batch.cols.length !== relation.length) {
    throw new PixieDecodeError(
      `table ${batch.tableId}: batch has ${batch.cols.length} columns, relation has ${relation.length}`,
    );
  }
  let timeCol: ColumnData | undefined;
  for (let c = 0; c < relation.length; c++) {
    const info = relation[c]!;
    const col = batch.cols[c]!;
    if (CASE_OF_TYPE[info.type] !== col.type) {
      throw new PixieDecodeError(
        `table ${batch.tableId}: column ${info.name} is ${col.type}, relation says type ${info.type}`,
      );
    }
    if (col.data.length !== batch.numRows) {
      throw new PixieDecodeError(
        `table ${batch.tableId}: column ${info.name} has ${col.data.length} values, batch has ${batch.numRows} rows`,
      );
    }
    if (info.name === timeName) timeCol = col;
  }
  if (!timeCol || (timeCol.type !== "time64ns" && timeCol.type !== "int64")) {
    throw new PixieDecodeError(`table ${batch.tableId}: no ${timeName} time column`);
  }
  return timeCol;
}
