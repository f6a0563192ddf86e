/**
 * One row of Pixie output as it crosses module lines (live reader or capture replay).
 *
 * Column values keep Pixie's types without loss: STRING cells are bytes (bodies may be binary), INT64 and
 * TIME64NS are `bigint`, UINT128 is a UUID string, FLOAT64 a number, BOOLEAN a boolean.
 * @module
 */

/** One cell of a Pixie row. */
export type Cell = bigint | number | boolean | string | Uint8Array;

/** One captured row, tagged with the query that produced it and the node that saw it. */
export interface Row {
  /** `<measurement>/<tap>`: `source` for signature_rules, the stage name for a match rule. */
  readonly query: string;
  /** Node whose sensor captured the row. */
  readonly node: string;
  /** Capture time (`time_`), nanoseconds since the Unix epoch. */
  readonly time: bigint;
  /** Every output column by name, `time_` included. */
  readonly columns: Readonly<Record<string, Cell>>;
  /**
   * Pixie's rows: the cell of the table's payload column, hashed as the reader hashed the row (pixie/columns.ts);
   * {@link payloadHash} is this very cell's, for a tap whose payload it is.
   */
  readonly hashedPayload?: Uint8Array;
  /**
   * util/xxhash32.ts's hash32 of {@link hashedPayload}, its bits as a signed 32-bit integer (no number boxed per
   * row): the tap intake's row dedupe need not hash the payload again.
   */
  readonly payloadHash?: number;
}

/** The query-name format `<measurement>/<tap>` lives in util/query_name.ts; rows re-export it. */
export { parseQueryName, SOURCE_TAP } from "../util/query_name.ts";

const utf8 = new TextEncoder();
const utf8Dec = new TextDecoder();

/** A cell as bytes: STRING cells already are; other types are rendered as text. Undefined when absent. */
export function cellBytes(row: Row, column: string): Uint8Array | undefined {
  const c = row.columns[column];
  if (c === undefined) return undefined;
  if (c instanceof Uint8Array) return c;
  return utf8.encode(String(c));
}

/** A cell as text (bytes decoded as UTF-8, lossy). Empty string when absent. */
export function cellText(row: Row, column: string): string {
  const c = row.columns[column];
  if (c === undefined) return "";
  if (c instanceof Uint8Array) return utf8Dec.decode(c);
  return String(c);
}

/** A numeric cell (INT64 or FLOAT64) as a number; undefined when absent or not numeric. */
export function cellNumber(row: Row, column: string): number | undefined {
  const c = row.columns[column];
  if (typeof c === "number") return c;
  if (typeof c === "bigint") return Number(c);
  if (c instanceof Uint8Array || typeof c === "string") {
    const n = Number(typeof c === "string" ? c : utf8Dec.decode(c));
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}
