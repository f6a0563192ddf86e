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
}

function cellAt(col: ColumnData, i: number): Cell {
  switch (col.type) {
    case "uint128":
      return uuidFromU128(col.data[i] ?? 0n);
    case "boolean":
      return col.data[i] ?? false;
    case "float64":
      return col.data[i] ?? NaN;
    case "string":
      return col.data[i] ?? new Uint8Array(0);
    default:
      return col.data[i] ?? 0n;
  }
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
  if (batch.cols.length !== relation.length) {
    throw new PixieDecodeError(
      `table ${batch.tableId}: batch has ${batch.cols.length} columns, relation has ${relation.length}`,
    );
  }
  const timeName = opts.timeColumn ?? "time_";
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
  const times = timeCol.data;
  const rows: Row[] = new Array(batch.numRows);
  for (let i = 0; i < batch.numRows; i++) {
    const columns: Record<string, Cell> = {};
    for (let c = 0; c < relation.length; c++) columns[relation[c]!.name] = cellAt(batch.cols[c]!, i);
    rows[i] = { query: opts.query, node: opts.node, time: times[i]!, columns };
  }
  return rows;
}
