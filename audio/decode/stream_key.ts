/**
 * Stream keys: which stream a message belongs to, from row columns and fields of its JSON envelope, rendered as
 * text such as `voice/telephony-0|10.0.0.5|40000|MZ123`.
 *
 * Key parts are joined with `|`; a `|` or `\` inside a value is escaped with `\` so distinct parts never render
 * to the same key. A spec entry starting with `$.` is a field of the envelope (reusing its single JSON parse),
 * anything else is a column name.
 * @module
 */

import { compileJsonPath, detectPixieMarker, jsonPathValue, PayloadEnvelope } from "./payload.ts";
import { type BytePath, bytePath, BYTES_BAD, BYTES_MISSING } from "./json_scan_bytes.ts";

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
 * Slots of a {@link ColumnKeyCache} (a power of two). Ample for the streams of a tap: two combinations that
 * share a slot would render their keys on every row while both are live.
 */
const KEY_SLOTS = 4096;

/** Bytes of a {@link ColumnKeyCache}'s store of cells (it starts again, every key forgotten, when full). */
const CELL_STORE_BYTES = 256 * 1024;

/** Longest byte or string cell remembered (a longer one is rendered each time). */
const MAX_KEPT_CELL = 0xffff;

// Tags of the cells in a ColumnKeyCache's store.
const NONE = 0, BYTES = 1, NUMBER = 2, BIG = 3, TEXT = 4, TRUE = 5, FALSE = 6;

/** A number or bigint as 8 bytes, to compare with the store's. */
const F64 = new Float64Array(1);
const I64 = new BigInt64Array(F64.buffer);
const N8 = new Uint8Array(F64.buffer);
const INT64_MIN = -(1n << 63n), INT64_MAX = (1n << 63n) - 1n;

/**
 * A hash of a cell for the cache's slot (equal cells hash equal; anything else only spreads the slots). Exported
 * for its test.
 */
export function cellHash(c: KeyCell | undefined, h: number): number {
  if (c instanceof Uint8Array) {
    for (let i = 0; i < c.length; i++) h = Math.imul(h ^ c[i]!, 0x01000193);
    return h;
  }
  if (typeof c === "number") return Math.imul(h ^ (c | 0), 0x01000193);
  // Pixie's INT64 columns (remote_port among them) are bigints: with one hash for all of them, every connection
  // of a pod and address shared two slots, and at 1,000 ports keying a row missed every time (590 ns, not 137).
  if (typeof c === "bigint") return Math.imul(h ^ (Number(c) | 0) ^ 0x2f, 0x01000193);
  if (typeof c === "string") return Math.imul(h ^ c.length ^ (c.charCodeAt(c.length - 1) | 0), 0x01000193);
  return Math.imul(h ^ 0x5bd1e995, 0x01000193);
}

/**
 * The keys of recent column combinations: a stream's rows carry the same pod, address and port every time, and
 * rendering them (two UTF-8 decodes, a number to text, escaping, joining) cost more than the rest of keying a
 * row. A hit hands back the very key string made before (also cheaper for every map it is looked up in).
 *
 * The cells a key was made from are kept packed in one store (a tag, then a byte cell's length and bytes, a
 * number's or int64's 8 bytes, a string's UTF-16 units), found by slot: comparing a row with them reads one run
 * of bytes, where copies of the cells (an array of them and a typed array with its own buffer each) cost a
 * cache miss each, most of keying a row in a busy sensor.
 */
class ColumnKeyCache {
  /** Store position + 1 of each slot's cells; 0 for none. */
  readonly #at = new Int32Array(KEY_SLOTS);
  readonly #keys: (string | undefined)[] = new Array(KEY_SLOTS).fill(undefined);
  readonly #store = new Uint8Array(CELL_STORE_BYTES);
  #used = 0;

  /** The key of `columns` under `spec`: remembered, or rendered now and remembered. */
  keyOf(columns: Readonly<Record<string, KeyCell>>, spec: readonly string[]): string {
    let h = 0x811c9dc5;
    for (let i = 0; i < spec.length; i++) h = cellHash(columns[spec[i]!], h);
    // MurmurHash3's finaliser: every input bit reaches the slot bits (FNV's low bits see only low input bits).
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    // Two slots per combination (slot and its neighbour), so two combinations that hash alike both stay.
    const slot = h & (KEY_SLOTS - 1);
    for (let w = 0; w < 2; w++) {
      const at = this.#at[slot ^ w]!;
      if (at !== 0 && this.#same(at - 1, columns, spec)) return this.#keys[slot ^ w]!;
    }
    const key = streamKeyOf(columns, undefined, spec);
    const free = this.#at[slot] === 0 ? slot : this.#at[slot ^ 1] === 0 ? slot ^ 1 : slot;
    const at = this.#keep(columns, spec);
    if (at >= 0) {
      this.#at[free] = at + 1;
      this.#keys[free] = key;
    }
    return key;
  }

  /** Whether the cells kept from position `p` are `columns`' under `spec`. */
  #same(p: number, columns: Readonly<Record<string, KeyCell>>, spec: readonly string[]): boolean {
    const store = this.#store;
    for (let i = 0; i < spec.length; i++) {
      const c = columns[spec[i]!];
      const tag = store[p++]!;
      if (c instanceof Uint8Array) {
        const n = c.length;
        if (tag !== BYTES || store[p]! + (store[p + 1]! << 8) !== n) return false;
        p += 2;
        for (let k = 0; k < n; k++) if (store[p + k] !== c[k]) return false;
        p += n;
      } else if (typeof c === "number" || typeof c === "bigint") {
        if (typeof c === "number") {
          // A NaN is never the same (as before, when cells were compared with ===), and -0 is 0.
          if (tag !== NUMBER || c !== c) return false;
          F64[0] = c === 0 ? 0 : c;
        } else {
          if (tag !== BIG || c < INT64_MIN || c > INT64_MAX) return false;
          I64[0] = c;
        }
        for (let k = 0; k < 8; k++) if (store[p + k] !== N8[k]) return false;
        p += 8;
      } else if (typeof c === "string") {
        const n = c.length;
        if (tag !== TEXT || store[p]! + (store[p + 1]! << 8) !== n) return false;
        p += 2;
        for (let k = 0; k < n; k++, p += 2) {
          if (store[p]! + (store[p + 1]! << 8) !== c.charCodeAt(k)) return false;
        }
      } else if (tag !== (c === undefined ? NONE : c ? TRUE : FALSE)) return false;
    }
    return true;
  }

  /** Keeps `columns`' cells under `spec`; their position in the store, or -1 when one is too large to keep. */
  #keep(columns: Readonly<Record<string, KeyCell>>, spec: readonly string[]): number {
    let need = 0;
    for (let i = 0; i < spec.length; i++) {
      const c = columns[spec[i]!];
      if (c instanceof Uint8Array || typeof c === "string") {
        if (c.length > MAX_KEPT_CELL) return -1;
        need += 3 + (typeof c === "string" ? 2 : 1) * c.length;
      } else if (typeof c === "bigint") {
        if (c < INT64_MIN || c > INT64_MAX) return -1;
        need += 9;
      } else need += typeof c === "number" ? 9 : 1;
    }
    if (need > CELL_STORE_BYTES) return -1;
    if (this.#used + need > CELL_STORE_BYTES) {
      // Full: every key is forgotten and made again as its combination comes back.
      this.#at.fill(0);
      this.#keys.fill(undefined);
      this.#used = 0;
    }
    const store = this.#store;
    const at = this.#used;
    let p = at;
    for (let i = 0; i < spec.length; i++) {
      const c = columns[spec[i]!];
      if (c instanceof Uint8Array) {
        store[p++] = BYTES;
        store[p++] = c.length & 0xff;
        store[p++] = c.length >> 8;
        store.set(c, p);
        p += c.length;
      } else if (typeof c === "number" || typeof c === "bigint") {
        store[p++] = typeof c === "number" ? NUMBER : BIG;
        if (typeof c === "number") F64[0] = c === 0 ? 0 : c;
        else I64[0] = c;
        store.set(N8, p);
        p += 8;
      } else if (typeof c === "string") {
        store[p++] = TEXT;
        store[p++] = c.length & 0xff;
        store[p++] = c.length >> 8;
        for (let k = 0; k < c.length; k++) {
          store[p++] = c.charCodeAt(k) & 0xff;
          store[p++] = c.charCodeAt(k) >> 8;
        }
      } else store[p++] = c === undefined ? NONE : c ? TRUE : FALSE;
    }
    this.#used = p;
    return at;
  }
}

/** Keys a {@link StreamKeyer} keeps per column combination (its streams told apart by envelope fields). */
const KEYS_PER_COLUMNS = 4096;

/** What a {@link StreamKeyer} remembers of one column combination. */
interface ColumnsEntry {
  /** The key of its last non-marker message (a marker's fallback). */
  key: string;
  /**
   * Keys made for these columns, by their envelope-field parts: many streams may share the
   * columns (every call of a pod, told apart by a `streamSid`), and each keeps getting its one key string back.
   */
  keys: Map<string, string>;
  /** When last used ({@link StreamKeyer}'s use counter): the least recently used are forgotten first. */
  used: number;
  /**
   * Keys made for these columns, by the bytes of their envelope fields' values as the body spells them (see
   * {@link StreamKeyer.keyOf}); made on first use.
   */
  byBytes?: FieldBytesKeys;
}

/** Longest spelling of a message's envelope-field values that {@link FieldBytesKeys} keeps. */
const MAX_FIELD_BYTES = 256;

/**
 * Keys by the bytes of a message's envelope-field values (each value's length, then its bytes as they stand in
 * the body: a string with its quotes and escapes), in an open-addressed table of hashes and a store of the bytes:
 * a stream's rows spell its fields the same way every time, so its key is found without decoding them to text
 * (a UTF-8 decode and a new string to look up per row, most of keying a row). Equal bytes are the same values,
 * so the same key; the same values spelled otherwise (an escape, `1.0` for `1`) are only other entries.
 */
class FieldBytesKeys {
  #hashes = new Int32Array(64);
  /** Store position + 1 of each slot's bytes; 0 for none. */
  #at = new Int32Array(64);
  #keys: (string | undefined)[] = new Array(64).fill(undefined);
  #store = new Uint8Array(1024);
  #used = 0;
  #size = 0;

  /** The key kept for `bytes[off, off + n)`, whose hash is `h`. */
  get(bytes: Uint8Array, off: number, n: number, h: number): string | undefined {
    const mask = this.#at.length - 1, store = this.#store;
    for (let i = h & mask;; i = (i + 1) & mask) {
      const at = this.#at[i]!;
      if (at === 0) return undefined;
      if (this.#hashes[i] !== h) continue;
      let p = at - 1;
      if (store[p]! + (store[p + 1]! << 8) !== n) continue;
      p += 2;
      let k = 0;
      while (k < n && store[p + k] === bytes[off + k]) k++;
      if (k === n) return this.#keys[i];
    }
  }

  /**
   * Keeps `key` for `bytes[off, off + n)` (hash `h`, not held); starts again, every key forgotten, past `limit`
   * keys.
   */
  set(bytes: Uint8Array, off: number, n: number, h: number, key: string, limit: number): void {
    if (this.#size >= limit) this.#reset(64, 1024);
    if (2 * (this.#size + 1) > this.#at.length || this.#used + n + 2 > this.#store.length) this.#grow(n);
    const mask = this.#at.length - 1;
    let i = h & mask;
    while (this.#at[i] !== 0) i = (i + 1) & mask;
    this.#place(i, bytes.subarray(off, off + n), n, h, key);
  }

  #place(i: number, bytes: Uint8Array, n: number, h: number, key: string): void {
    const p = this.#used;
    this.#store[p] = n & 0xff;
    this.#store[p + 1] = n >> 8;
    this.#store.set(bytes.subarray(0, n), p + 2);
    this.#used = p + 2 + n;
    this.#hashes[i] = h;
    this.#at[i] = p + 1;
    this.#keys[i] = key;
    this.#size++;
  }

  #reset(slots: number, bytes: number): void {
    this.#hashes = new Int32Array(slots);
    this.#at = new Int32Array(slots);
    this.#keys = new Array(slots).fill(undefined);
    this.#store = new Uint8Array(bytes);
    this.#used = 0;
    this.#size = 0;
  }

  /** Twice the slots or store it needs for one more entry of `n` bytes, the entries kept. */
  #grow(n: number): void {
    const hashes = this.#hashes, at = this.#at, keys = this.#keys, store = this.#store;
    let slots = at.length, bytes = store.length;
    while (2 * (this.#size + 1) > slots) slots *= 2;
    while (this.#used + n + 2 > bytes) bytes *= 2;
    this.#reset(slots, bytes);
    const mask = slots - 1;
    for (let s = 0; s < at.length; s++) {
      if (at[s] === 0) continue;
      const p = at[s]! - 1, len = store[p]! + (store[p + 1]! << 8);
      let i = hashes[s]! & mask;
      while (this.#at[i] !== 0) i = (i + 1) & mask;
      this.#place(i, store.subarray(p + 2), len, hashes[s]!, keys[s]!);
    }
  }
}

/** Scratch for the bytes of a message's envelope-field values. */
const FIELD_BYTES = new Uint8Array(MAX_FIELD_BYTES + 16);

/**
 * Stream keys with a fallback for Pixie markers: a truncated or removed body has lost its JSON, so its
 * envelope-field parts cannot be read. Such a message is given the last key seen with the same column parts,
 * so the gap it stands for lands in the right stream. Without envelope fields in the spec it is plain
 * {@link streamKeyOf}.
 *
 * Per message only the envelope fields are read: the column parts come from a {@link ColumnKeyCache}, and a
 * message whose columns and fields were seen before gets the key string made then (no key rendered, no map
 * reordered: keying a row was a Map update and two key strings, and every map the key is looked up in then
 * hashed a new string).
 */
export class StreamKeyer {
  readonly spec: readonly string[];
  readonly #hasJson: boolean;
  readonly #columnSpec: readonly string[];
  readonly #jsonSpec: readonly string[];
  /** The envelope fields' paths for the byte scan. */
  readonly #jsonPaths: readonly BytePath[];
  readonly #byColumns = new Map<string, ColumnsEntry>();
  readonly #cache = new ColumnKeyCache();
  /** The column key looked up last and its entry (see {@link keyOf}); cleared when entries are forgotten. */
  #lastSig: string | undefined;
  #lastEntry: ColumnsEntry | undefined;
  /** The hash of the field bytes {@link #fieldBytes} found last, and where they are: `#fieldSrc` from `#fieldAt`. */
  #fieldHash = 0;
  #fieldSrc: Uint8Array = FIELD_BYTES;
  #fieldAt = 0;
  #used = 0;
  /** Bound on remembered column combinations; least recently used forgotten first. */
  readonly #limit: number;

  /** `limit` bounds the memory of column combinations (streams) for the marker fallback. */
  constructor(spec: readonly string[], limit = 10_000) {
    this.spec = spec;
    this.#hasJson = spec.some(isJsonField);
    this.#columnSpec = spec.filter((e) => !isJsonField(e));
    this.#jsonSpec = spec.filter(isJsonField);
    this.#jsonPaths = this.#jsonSpec.map((e) => bytePath(compileJsonPath(e)));
    this.#limit = Math.max(1, limit);
  }

  /** The key of one message. `envelope` may be omitted when the spec has no envelope fields. */
  keyOf(columns: Readonly<Record<string, KeyCell>>, envelope?: PayloadEnvelope | Uint8Array): string {
    if (!this.#hasJson) {
      return this.#cache.keyOf(columns, this.spec);
    }
    const env = envelope instanceof PayloadEnvelope || envelope === undefined
      ? envelope
      : new PayloadEnvelope(envelope);
    if (env === undefined) return streamKeyOf(columns, undefined, this.spec);
    const colSig = this.#cache.keyOf(columns, this.#columnSpec);
    // The column cache hands back the very string it made for the same cells: rows of one combination in a row
    // find its entry without a Map lookup.
    let entry: ColumnsEntry | undefined;
    if (colSig === this.#lastSig) entry = this.#lastEntry;
    else {
      entry = this.#byColumns.get(colSig);
      this.#lastSig = colSig;
      this.#lastEntry = entry;
    }
    if (detectPixieMarker(env.bytes) !== undefined) {
      if (entry !== undefined) {
        entry.used = ++this.#used;
        return entry.key;
      }
      return streamKeyOf(columns, env, this.spec);
    }
    // The fields' values as the body spells them, when the byte scan reads them (not once the body is parsed).
    const n = env.parsed ? -1 : this.#fieldBytes(env);
    const h = this.#fieldHash, src = this.#fieldSrc, at = this.#fieldAt;
    if (entry !== undefined) {
      entry.used = ++this.#used;
      const known = n >= 0 ? entry.byBytes?.get(src, at, n, h) : undefined;
      if (known !== undefined) return entry.key = known;
      const parts = this.#parts(env);
      let key = entry.keys.get(parts);
      if (key === undefined) {
        key = streamKeyOf(columns, env, this.spec);
        // Bounded: the streams of one set of columns come and go; a full map starts again.
        if (entry.keys.size >= KEYS_PER_COLUMNS) entry.keys.clear();
        entry.keys.set(parts, key);
      }
      if (n >= 0) (entry.byBytes ??= new FieldBytesKeys()).set(src, at, n, h, key, KEYS_PER_COLUMNS);
      entry.key = key;
      return key;
    }
    const key = streamKeyOf(columns, env, this.spec);
    const created: ColumnsEntry = { key, keys: new Map([[this.#parts(env), key]]), used: ++this.#used };
    if (n >= 0) (created.byBytes = new FieldBytesKeys()).set(src, at, n, h, key, KEYS_PER_COLUMNS);
    this.#byColumns.set(colSig, created);
    this.#lastSig = colSig;
    this.#lastEntry = created;
    if (this.#byColumns.size > this.#limit) this.#forget();
    return key;
  }

  /** The envelope-field parts as text: one field's text; several, each after its length (no two lists alike). */
  #parts(env: PayloadEnvelope): string {
    const json = this.#jsonSpec;
    if (json.length === 1) return renderJsonValue(jsonPathValue(env, json[0]!));
    let parts = "";
    for (let i = 0; i < json.length; i++) {
      const part = renderJsonValue(jsonPathValue(env, json[i]!));
      parts += part.length + ":" + part;
    }
    return parts;
  }

  /**
   * Finds the envelope fields' values as the body spells them: one field's value is read where it stands in the
   * body (a missing one is no bytes: a value found is never empty); several are written into
   * {@link FIELD_BYTES}, each as its length in two bytes, then its bytes (a missing one as length 0xffff). Returns
   * their length (where they are: {@link #fieldSrc}, {@link #fieldAt}), or -1 when the byte scan does not decide
   * (a body it refuses) or they are too long to keep.
   */
  #fieldBytes(env: PayloadEnvelope): number {
    const paths = this.#jsonPaths, body = env.bytes;
    // FNV-1a of the bytes as they are read (no second pass over them).
    let h = 0x811c9dc5;
    if (paths.length === 1) {
      // The usual key (`$.streamSid`): no copy, the table compares the body's own bytes.
      const hit = env.scans.get(paths[0]!);
      if (hit === BYTES_BAD) return -1;
      const start = hit === BYTES_MISSING ? 0 : hit.start, end = hit === BYTES_MISSING ? 0 : hit.end;
      if (end - start > MAX_FIELD_BYTES) return -1;
      for (let p = start; p < end; p++) h = Math.imul(h ^ body[p]!, 0x01000193);
      this.#fieldHash = h ^ (h >>> 15) ^ (end - start);
      this.#fieldSrc = body;
      this.#fieldAt = start;
      return end - start;
    }
    let n = 0;
    for (let i = 0; i < paths.length; i++) {
      const hit = env.scans.get(paths[i]!);
      if (hit === BYTES_BAD) return -1;
      if (hit === BYTES_MISSING) {
        if (n + 2 > MAX_FIELD_BYTES) return -1;
        FIELD_BYTES[n++] = 0xff;
        FIELD_BYTES[n++] = 0xff;
        h = Math.imul(Math.imul(h ^ 0xff, 0x01000193) ^ 0xff, 0x01000193);
        continue;
      }
      const len = hit.end - hit.start;
      if (n + 2 + len > MAX_FIELD_BYTES) return -1;
      FIELD_BYTES[n++] = len & 0xff;
      FIELD_BYTES[n++] = len >> 8;
      h = Math.imul(Math.imul(h ^ (len & 0xff), 0x01000193) ^ (len >> 8), 0x01000193);
      for (let p = hit.start; p < hit.end; p++) {
        const c = body[p]!;
        FIELD_BYTES[n++] = c;
        h = Math.imul(h ^ c, 0x01000193);
      }
    }
    this.#fieldHash = h ^ (h >>> 15) ^ n;
    this.#fieldSrc = FIELD_BYTES;
    this.#fieldAt = 0;
    return n;
  }

  /** Forgets the least recently used combinations, down to 7/8 of the limit (so this runs once in a while). */
  #forget(): void {
    const keep = Math.min(this.#byColumns.size - 1, Math.floor((this.#limit * 7) / 8));
    const stamps = [...this.#byColumns.values()].map((e) => e.used).sort((a, b) => a - b);
    const cut = stamps[stamps.length - keep - 1]!;
    for (const [k, e] of this.#byColumns) if (e.used <= cut) this.#byColumns.delete(k);
    // The entry looked up last may be gone (with room for one, the one just made is).
    this.#lastSig = undefined;
    this.#lastEntry = undefined;
  }
}
