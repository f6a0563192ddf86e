/**
 * Stream keys: which stream a message belongs to, from row columns and fields of its JSON envelope, rendered as
 * text such as `voice/telephony-0|10.0.0.5|40000|MZ123`.
 *
 * Key parts are joined with `|`; a `|` or `\` inside a value is escaped with `\` so distinct parts never render
 * to the same key. A spec entry starting with `$.` is a field of the envelope (reusing its single JSON parse),
 * anything else is a column name.
 * @module
 */

import { detectPixieMarker, jsonPathValue, PayloadEnvelope } from "./payload.ts";

/** A row cell as Pixie delivers it (structurally `Cell` of pixie/row.ts; kept local so audio/ imports nothing). */
export type KeyCell = bigint | number | boolean | string | Uint8Array;

const utf8 = new TextDecoder("utf-8");

/** True if a key spec entry names an envelope field rather than a column. */
export function isJsonField(entry: string): boolean {
  return entry === "$" || entry.startsWith("$.");
}

/** Checks a key spec; returns error messages (empty when valid). */
export function checkKeySpec(spec: readonly string[]): string[] {
  const errors: string[] = [];
  spec.forEach((e, i) => {
    if (e.length === 0) errors.push(`stream_key[${i}] is empty`);
    else if (isJsonField(e) && e.length <= 2) errors.push(`stream_key[${i}] "${e}" names no field`);
  });
  return errors;
}

/** A cell as key text: bytes as UTF-8, numbers and bigints in decimal, missing as the empty string. */
export function renderCell(cell: KeyCell | undefined): string {
  if (cell === undefined) return "";
  if (cell instanceof Uint8Array) return utf8.decode(cell);
  return String(cell);
}

/** A JSON value as key text: strings as they are, other scalars via String, objects as JSON, missing as "". */
export function renderJsonValue(v: unknown): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return v;
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function escapePart(s: string): string {
  return s.indexOf("|") < 0 && s.indexOf("\\") < 0 ? s : s.replace(/[\\|]/g, (c) => "\\" + c);
}

/**
 * The stream key of one message: each spec entry rendered (columns by name, `$.a.b` from the envelope's JSON;
 * missing values are empty) and joined with `|`.
 */
export function streamKeyOf(
  columns: Readonly<Record<string, KeyCell>>,
  envelope: PayloadEnvelope | Uint8Array | undefined,
  keySpec: readonly string[],
): string {
  let key = "";
  for (let i = 0; i < keySpec.length; i++) {
    const e = keySpec[i]!;
    const part = isJsonField(e)
      ? (envelope === undefined ? "" : renderJsonValue(jsonPathValue(envelope, e)))
      : renderCell(columns[e]);
    key += (i === 0 ? "" : "|") + escapePart(part);
  }
  return key;
}

/**
 * Stream keys with a fallback for Pixie markers: a truncated or removed body has lost its JSON, so its
 * envelope-field parts cannot be read. Such a message is given the last key seen with the same column parts,
 * so the gap it stands for lands in the right stream. Without envelope fields in the spec it is plain
 * {@link streamKeyOf}.
 */
export class StreamKeyer {
  readonly spec: readonly string[];
  readonly #hasJson: boolean;
  readonly #columnSpec: readonly string[];
  readonly #lastByColumns = new Map<string, string>();
  /** Bound on remembered column combinations; oldest forgotten first. */
  readonly #limit: number;

  /** `limit` bounds the memory of column combinations (streams) for the marker fallback. */
  constructor(spec: readonly string[], limit = 10_000) {
    this.spec = spec;
    this.#hasJson = spec.some(isJsonField);
    this.#columnSpec = spec.filter((e) => !isJsonField(e));
    this.#limit = limit;
  }

  /** The key of one message. `envelope` may be omitted when the spec has no envelope fields. */
  keyOf(columns: Readonly<Record<string, KeyCell>>, envelope?: PayloadEnvelope | Uint8Array): string {
    if (!this.#hasJson) return streamKeyOf(columns, undefined, this.spec);
    const env = envelope instanceof Uint8Array ? new PayloadEnvelope(envelope) : envelope;
    const colSig = streamKeyOf(columns, undefined, this.#columnSpec);
    const marker = env !== undefined && detectPixieMarker(env.bytes) !== undefined;
    if (marker) {
      const last = this.#lastByColumns.get(colSig);
      if (last !== undefined) return last;
    }
    const key = streamKeyOf(columns, env, this.spec);
    if (env && !marker) {
      this.#lastByColumns.delete(colSig);
      this.#lastByColumns.set(colSig, key);
      if (this.#lastByColumns.size > this.#limit) {
        const oldest = this.#lastByColumns.keys().next().value;
        if (oldest !== undefined) this.#lastByColumns.delete(oldest);
      }
    }
    return key;
  }
}
