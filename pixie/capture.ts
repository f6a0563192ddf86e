/**
 * Capture files (a contract: `record` writes them, `analyze`, `demo` and `run --capture` read them).
 *
 * JSON Lines, UTF-8. An optional first line `{"capture": 1, "node": "<node>"}`; without it the node is the file
 * name without extension. Every other line is one Pixie row: `{"query": "<measurement>/<tap>", "row": {...}}`
 * where `row` holds the PxL output columns: `time_` as a decimal string of ns since the epoch; string columns as
 * JSON strings when the bytes are valid UTF-8, else `{"base64": "..."}`; INT64 as a number when safe, else a
 * decimal string; FLOAT64 numbers; BOOLEAN booleans; UINT128 as a UUID string. Rows of one stream are in capture
 * order. A malformed line is reported with its file and line number, counted, and skipped.
 * @module
 */
import type { Cell, Row } from "./row.ts";
import { parseQueryName } from "./row.ts";
import {
  type ByteSlab,
  lineEnd,
  parseCaptureLineFast,
  peekCaptureLine,
  peeked,
  readCaptureLine,
} from "./capture_line_fast.ts";
import { type ArenaChunk, DeferredRow, LineArena } from "./line_arena.ts";
import { cellKernelBuffer } from "./string_cell_simd.ts";
import { SLAB_BYTES, SlabCarver, type SlabLease } from "./capture_slabs.ts";

/** The capture format version this module reads and writes. */
export const CAPTURE_VERSION = 1;

/** A malformed capture line: where it is and why it was skipped. */
export interface CaptureProblem {
  file: string;
  line: number;
  reason: string;
}

/** Everything read from one capture file. */
export interface Capture {
  file: string;
  node: string;
  rows: Row[];
  problems: CaptureProblem[];
}

/** Valid UTF-8 or nothing; a leading byte-order mark is kept (it is the cell's bytes, not the file's). */
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/** Node name implied by a capture path: the file name without directories and extension. */
export function nodeFromPath(path: string): string {
  const base = path.split(/[\\/]/).pop() ?? path;
  const dot = base.indexOf(".");
  return dot > 0 ? base.slice(0, dot) : base;
}

/** Encodes one cell for a capture line. `time_` is always a decimal string. */
export function encodeCell(name: string, cell: Cell): unknown {
  if (name === "time_") return typeof cell === "bigint" ? cell.toString() : String(cell);
  if (cell instanceof Uint8Array) {
    try {
      return utf8.decode(cell);
    } catch {
      return { base64: bytesToBase64(cell) };
    }
  }
  if (typeof cell === "bigint") {
    return cell >= BigInt(Number.MIN_SAFE_INTEGER) && cell <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(cell)
      : cell.toString();
  }
  // JSON has no NaN or infinities (JSON.stringify writes null, which no reader could take back as a float).
  if (typeof cell === "number" && !Number.isFinite(cell)) return { float: String(cell) };
  return cell;
}

/** The values of a `{"float": …}` cell: the float64 values JSON has no number for. */
const NON_FINITE: Readonly<Record<string, number>> = Object.freeze({
  NaN: NaN,
  Infinity: Infinity,
  "-Infinity": -Infinity,
});

/** Encodes a row as one capture line (without the newline). */
export function encodeCaptureLine(row: Row): string {
  const out: Record<string, unknown> = {};
  out["time_"] = row.time.toString();
  for (const [name, cell] of Object.entries(row.columns)) {
    if (name === "time_") continue;
    out[name] = encodeCell(name, cell);
  }
  return JSON.stringify({ query: row.query, row: out });
}

/** The optional header line naming the node. */
export function encodeCaptureHeader(node: string): string {
  return JSON.stringify({ capture: CAPTURE_VERSION, node });
}

/**
 * Bytes of string cells are carved from shared slabs rather than allocated one array each: an allocation of a
 * typed array with its own buffer (what `TextEncoder.encode` returns) costs several microseconds in Deno, more
 * than parsing the row, and a row has three or more string cells. A cell keeps its slab alive, so slabs are
 * small; large values get their own array. These slabs take the lines read through `JSON.parse` (parseCapture,
 * and the few lines a {@link CaptureReader} leaves to it); the reader's direct lines go to slabs of its own that
 * are recycled (capture_slabs.ts).
 */
let slab = new Uint8Array(SLAB_BYTES);
let slabUsed = 0;

/** Room for `n` bytes at `slab[slabUsed..]` (a fresh slab when the current one is short). */
function slabRoom(n: number): void {
  if (slabUsed + n > slab.length) {
    slab = new Uint8Array(SLAB_BYTES);
    slabUsed = 0;
  }
}

/** The slab as the direct line reader writes into it. */
const captureSlab: ByteSlab = {
  reserve(n: number): Uint8Array {
    slabRoom(n);
    return slab;
  },
  used: () => slabUsed,
  advance(n: number): void {
    slabUsed += n;
  },
};

/** Values longer than this (UTF-16 units) are encoded into an array of their own. */
const MAX_SLAB_VALUE = SLAB_BYTES / 16;
/** Lines longer than this (bytes or UTF-16 units) are read through `JSON.parse`, not directly. */
const MAX_DIRECT_LINE = MAX_SLAB_VALUE * 4;

/** The UTF-8 bytes of `s`, exactly as `TextEncoder.encode` gives them (lone surrogates become U+FFFD). */
export function utf8Bytes(s: string): Uint8Array {
  const n = s.length;
  if (n > MAX_SLAB_VALUE) return utf8Encoder.encode(s);
  // UTF-8 takes at most 3 bytes per UTF-16 unit.
  slabRoom(3 * n);
  const at = slabUsed;
  const out = slab;
  let i = 0;
  // ASCII, by far the usual case, is copied unit by unit; anything else goes to the engine's encoder.
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) break;
    out[at + i] = c;
  }
  let end = at + n;
  if (i < n) end = at + i + utf8Encoder.encodeInto(s.slice(i), out.subarray(at + i)).written;
  slabUsed = end;
  return out.subarray(at, end);
}

type NativeSetFromBase64 = (this: Uint8Array, s: string) => { read: number; written: number };
const nativeSetFromBase64: NativeSetFromBase64 | undefined =
  (Uint8Array.prototype as unknown as { setFromBase64?: NativeSetFromBase64 }).setFromBase64;

/**
 * Decodes one JSON value of a capture row into a cell. Strings become bytes, as Pixie delivers them; `{"base64":
 * ...}` is decoded as `atob` would (whitespace skipped, padding optional, anything else refused).
 */
function decodeCell(value: unknown): Cell | undefined {
  if (typeof value === "string") return utf8Bytes(value);
  if (typeof value === "number" || typeof value === "boolean") return value;
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const b64 = (value as Record<string, unknown>)["base64"];
    if (typeof b64 === "string" && Object.keys(value).length === 1) {
      try {
        return base64ToBytes(b64);
      } catch {
        return undefined;
      }
    }
    const float = (value as Record<string, unknown>)["float"];
    if (typeof float === "string" && Object.hasOwn(NON_FINITE, float) && Object.keys(value).length === 1) {
      return NON_FINITE[float];
    }
  }
  return undefined;
}

const DECIMAL = /^-?\d+$/;

/**
 * Parses one non-header capture line into a row, or returns the reason it is malformed.
 * Exported for the line-level tests and for streaming readers.
 */
export function parseCaptureLine(line: string, node: string): Row | string {
  // The usual line is read directly; anything else (malformed lines included) the general way, which decides.
  if (line.length <= MAX_DIRECT_LINE) {
    const fast = parseCaptureLineFast(line, node, captureSlab, base64ToBytes);
    if (fast !== undefined) return fast;
  }
  return parseCaptureLineJson(line, node);
}

/** {@link parseCaptureLine} through `JSON.parse`: every line, whatever its shape (exported for tests). */
export function parseCaptureLineJson(line: string, node: string): Row | string {
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch (e) {
    return `not JSON (${(e as Error).message})`;
  }
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) return "not a JSON object";
  const { query, row } = obj as { query?: unknown; row?: unknown };
  if (query === undefined && "capture" in obj) {
    // Captures joined with `cat`: the rows after it stay the first header's node's.
    return "a header line after the first line (captures joined into one file? give each capture as a file): " +
      "the rows after it are read as this file's node's";
  }
  if (typeof query !== "string" || !parseQueryName(query)) {
    return `"query" must be "<measurement>/<tap>", found ${JSON.stringify(query)}`;
  }
  if (row === null || typeof row !== "object" || Array.isArray(row)) return `"row" must be an object`;
  const fields = row as Record<string, unknown>;
  const t = fields["time_"];
  if (typeof t !== "string" || !DECIMAL.test(t)) {
    return `"row.time_" must be a decimal string of nanoseconds, found ${JSON.stringify(t)}`;
  }
  const time = BigInt(t);
  // for...in rather than Object.entries: no [name, value] pair per column on the per-row path.
  const columns: Record<string, Cell> = { time_: time };
  for (const name in fields) {
    if (name === "time_") continue;
    const value = fields[name];
    const cell = decodeCell(value);
    if (cell === undefined) return `column "${name}" has an unsupported value ${JSON.stringify(value)}`;
    columns[name] = cell;
  }
  return { query, node, time, columns };
}

/** Parses a whole capture text. Malformed lines are reported in `problems` and skipped. */
export function parseCapture(text: string, file: string): Capture {
  const lines = text.split("\n");
  let node = nodeFromPath(file);
  const rows: Row[] = [];
  const problems: CaptureProblem[] = [];
  let first = true;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "") continue;
    if (first) {
      first = false;
      const header = tryHeader(line);
      if (header !== undefined) {
        if (typeof header === "string") node = header;
        else problems.push({ file, line: i + 1, reason: header.error });
        continue;
      }
    }
    const parsed = parseCaptureLine(line, node);
    if (typeof parsed === "string") problems.push({ file, line: i + 1, reason: parsed });
    else rows.push(parsed);
  }
  return { file, node, rows, problems };
}

/** Returns the node of a header line, an error for a bad header, or undefined if the line is not a header. */
function tryHeader(line: string): string | { error: string } | undefined {
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (obj === null || typeof obj !== "object" || !("capture" in obj)) return undefined;
  const h = obj as { capture: unknown; node?: unknown };
  if (h.capture !== CAPTURE_VERSION) {
    return {
      error: `unsupported capture version ${JSON.stringify(h.capture)} (this build reads ${CAPTURE_VERSION})`,
    };
  }
  if (typeof h.node !== "string" || h.node === "") {
    return { error: `header "node" must be a non-empty string` };
  }
  return h.node;
}

/** Reads and parses a capture file from disk (whole; {@link openCapture} streams it). */
export async function readCapture(path: string, opts: OpenCaptureOptions = {}): Promise<Capture> {
  const reader = await openCapture(path, { ...opts, keepProblems: Infinity });
  const rows: Row[] = [];
  for await (const batch of reader.batches()) for (const r of batch) rows.push(r);
  return { file: path, node: reader.node, rows, problems: reader.problems };
}

/** Options of {@link openCapture}. */
export interface OpenCaptureOptions {
  /** Bytes read from the file at a time. Default 1 MiB. */
  chunkBytes?: number;
  /** Rows handed on per batch (at most). Default 256. */
  batchRows?: number;
  /** Problems kept with their line (the rest are only counted). Default 100. */
  keepProblems?: number;
  /**
   * The file already open and its first bytes already read (to tell its format): a pipe (`<(cat f)`, stdin)
   * cannot be opened again from its path, nor read again from its start.
   */
  opened?: { file: Deno.FsFile; head: Uint8Array };
}

/**
 * A capture file read as a stream: lines are parsed as they are read and handed on in small batches, so memory
 * does not depend on the file's size (a 10 GB capture is read in the same memory as a 10 MB one). The node is
 * known once {@link CaptureReader.open} has read the first line.
 */
export class CaptureReader {
  readonly file: string;
  /** The header's node, or the file name's. */
  node: string;
  /** The first problems by line (up to `keepProblems`), in line order, with file and line. */
  readonly problems: CaptureProblem[] = [];
  /** Every malformed line, kept or not. */
  problemCount = 0;
  /** Bytes of the file read so far, and its size when opened. */
  bytesRead = 0;
  readonly size: number;
  readonly #f: Deno.FsFile;
  /** A regular file: it can be opened again and read from any offset (not a pipe). */
  readonly #seekable: boolean;
  readonly #chunk: number;
  readonly #batch: number;
  readonly #keep: number;
  #lineNo = 0;
  #first = true;
  /**
   * The file's bytes read and not yet parsed are `#view[#at..]` (`#view` is `#data` up to the bytes read): lines
   * are found and read in the file's own bytes, and only a line the direct reader leaves is decoded to text.
   */
  #data: Uint8Array | undefined;
  #view: Uint8Array = new Uint8Array(0);
  #at = 0;
  /** The file is read to its end; {@link close} was called. */
  #eof = false;
  #done = false;
  #started = false;
  /** The slab the direct reader carves string cells from, and the lease of each batch handed on. */
  readonly #carver = new SlabCarver();
  readonly #leases = new WeakMap<readonly Row[], SlabLease>();
  /** Where a deferred batch's lines wait to be read (see {@link batches}), and how many are still to be. */
  #arena: LineArena | undefined;
  #deferredLeft = 0;

  private constructor(
    file: string,
    f: Deno.FsFile,
    size: number,
    seekable: boolean,
    opts: OpenCaptureOptions,
  ) {
    this.file = file;
    this.node = nodeFromPath(file);
    this.#f = f;
    this.size = size;
    this.#seekable = seekable;
    this.#chunk = opts.chunkBytes ?? 1 << 20;
    this.#batch = opts.batchRows ?? 256;
    this.#keep = opts.keepProblems ?? 100;
  }

  /** Opens `path` and reads up to its first line (the header, if any). */
  static async open(path: string, opts: OpenCaptureOptions = {}): Promise<CaptureReader> {
    const f = opts.opened?.file ?? await Deno.open(path, { read: true });
    let size = 0, seekable = false;
    try {
      const info = await f.stat();
      size = info.size;
      seekable = info.isFile && opts.opened === undefined;
    } catch { /* a pipe: size unknown */ }
    const r = new CaptureReader(path, f, size, seekable, opts);
    try {
      if (opts.opened) r.#unread(opts.opened.head);
      // The header decides the node of every row: read until the first non-empty line is in hand.
      for (;;) {
        r.#takeHeader();
        if (!r.#first || r.#eof || r.#done) break;
        await r.#fill();
      }
    } catch (e) {
      // Nobody gets a reader to close: its file goes now.
      r.close();
      throw e;
    }
    return r;
  }

  /**
   * Rows in file order, a batch at a time; the file is closed at the end (or when the loop is left). A consumer
   * that is done with a batch (no row of it, nor anything viewing a row's bytes, is read again) may
   * {@link release} it, so that the memory of its string cells is reused (see capture_slabs.ts).
   *
   * `deferred`: a line of the usual shape comes unread, as a {@link DeferredRow} (its query and time, its bytes
   * copied into the reader's line arena), for a consumer that holds rows a while before it handles them (the
   * merge of captures: line_arena.ts says why) to read with {@link materialize} when it does. Any other line is
   * read at once, as without it.
   */
  async *batches(opts: { deferred?: boolean } = {}): AsyncGenerator<Row[]> {
    if (this.#started) throw new Error("a capture reader is read once");
    this.#started = true;
    const arena = opts.deferred ? this.#arena = new LineArena() : undefined;
    try {
      let out: Row[] = [];
      for (;;) {
        const view = this.#view, size = view.length;
        // The file's last line may end without a newline.
        const last = this.#eof;
        while (this.#at < size) {
          const from = this.#at;
          // The usual line is read up to its newline as its bytes are (lines of up to MAX_DIRECT_LINE bytes).
          const limit = size - from > MAX_DIRECT_LINE ? from + MAX_DIRECT_LINE + 1 : size;
          if (arena !== undefined && peekCaptureLine(view, from, limit, last && limit === size)) {
            const end = peeked.end;
            const chunk = arena.put(view, from, end);
            this.#lineNo++;
            this.#deferredLeft++;
            out.push(
              new DeferredRow(
                peeked.query,
                this.node,
                peeked.time,
                chunk,
                arena.at,
                end - from,
                this.#lineNo,
              ),
            );
            this.#at = end < size ? end + 1 : size;
            if (out.length >= this.#batch) {
              this.#leases.set(out, this.#carver.seal());
              yield out;
              out = [];
            }
            continue;
          }
          const row = readCaptureLine(
            view,
            from,
            limit,
            last && limit === size,
            this.node,
            this.#carver,
            base64ToBytes,
          );
          if (row !== undefined) {
            const end = lineEnd();
            this.#at = end < size ? end + 1 : size;
            this.#lineNo++;
            out.push(row);
          } else {
            // Any other line is found by its newline and read as text, which decides.
            let nl = view.indexOf(LF, from);
            if (nl < 0) {
              if (!last) break;
              nl = size;
            }
            this.#at = nl < size ? nl + 1 : size;
            this.#lineNo++;
            this.#parse(lineText(view, from, nl), out);
          }
          if (out.length >= this.#batch) {
            this.#leases.set(out, this.#carver.seal());
            yield out;
            out = [];
          }
        }
        if (this.#eof || this.#done) break;
        await this.#fill();
      }
      if (out.length > 0) {
        this.#leases.set(out, this.#carver.seal());
        yield out;
      }
    } finally {
      this.close();
    }
  }

  /**
   * Hands back a batch of {@link batches} whose rows are done with: the slabs its string cells were carved from
   * are reused once no other batch holds them. Idempotent; a batch of another reader is ignored.
   */
  release(batch: readonly Row[]): void {
    const lease = this.#leases.get(batch);
    if (lease === undefined) return;
    this.#leases.delete(batch);
    this.#carver.release(lease);
  }

  /**
   * The row of a line a deferred batch handed on unread (a {@link DeferredRow}'s chunk, offset, length and line
   * number), read now: its string cells go to this reader's slabs, held until the array it is put in is given
   * to {@link sealRows} and then released. Undefined when the line is malformed after all (its cells): counted
   * and kept as a problem with its line, as the reader does for any malformed line. Each line is read once.
   */
  materialize(chunk: ArenaChunk, at: number, len: number, line: number): Row | undefined {
    const bytes = chunk.bytes;
    let out = readCaptureLine(bytes, at, at + len, true, this.node, this.#carver, base64ToBytes);
    if (out !== undefined && lineEnd() !== at + len) out = undefined;
    if (out === undefined) {
      const parsed = parseCaptureLine(lineText(bytes, at, at + len).trim(), this.node);
      if (typeof parsed === "string") this.#problem(line, parsed);
      else out = parsed;
    }
    this.#arena?.done(chunk);
    if (--this.#deferredLeft === 0 && this.#done) this.#carver.close();
    return out;
  }

  /**
   * The rows {@link materialize} read since the last call, handed on in `rows`: their slabs are held until
   * `release(rows)`, as a batch's are.
   */
  sealRows(rows: readonly Row[]): void {
    this.#leases.set(rows, this.#carver.seal());
  }

  /**
   * Where in the file the first line not yet handed on starts (every row before it was in a batch already
   * yielded), for a scan of what lies ahead (capture_lanes.ts); undefined when the file cannot be read from
   * there again (a pipe).
   */
  get unreadAt(): number | undefined {
    return this.#seekable ? this.bytesRead - (this.#view.length - this.#at) : undefined;
  }

  /** Closes the file (idempotent). */
  close(): void {
    // Deferred rows still to be read carve from the current slab: the carver closes after the last of them.
    if (this.#deferredLeft === 0) this.#carver.close();
    this.#arena?.close();
    this.#done = true;
    try {
      this.#f.close();
    } catch { /* already closed */ }
  }

  #problem(line: number, reason: string): void {
    this.problemCount++;
    // A deferred line is found malformed only when it is read, after later lines were peeked: the list keeps the
    // first lines by number, in line order, whatever order they were found in.
    const ps = this.problems;
    let i = ps.length;
    while (i > 0 && ps[i - 1]!.line > line) i--;
    if (i >= this.#keep) return;
    ps.splice(i, 0, { file: this.file, line, reason });
    if (ps.length > this.#keep) ps.pop();
  }

  #parse(raw: string, out: Row[]): void {
    const line = raw.trim();
    if (line === "") return;
    const parsed = parseCaptureLine(line, this.node);
    if (typeof parsed === "string") this.#problem(this.#lineNo, parsed);
    else out.push(parsed);
  }

  /** Consumes the first non-empty line if it is a header (once it is in hand: whole, or the file's last). */
  #takeHeader(): void {
    const view = this.#view;
    while (this.#first) {
      const nl = view.indexOf(LF, this.#at);
      if (nl < 0 && !(this.#eof && this.#at < view.length)) return;
      const to = nl < 0 ? view.length : nl;
      const line = lineText(view, this.#at, to).trim();
      if (line === "") {
        this.#at = nl < 0 ? to : nl + 1;
        this.#lineNo++;
        continue;
      }
      this.#first = false;
      const header = tryHeader(line);
      if (header === undefined) return;
      this.#at = nl < 0 ? to : nl + 1;
      this.#lineNo++;
      if (typeof header === "string") this.node = header;
      else this.#problem(this.#lineNo, header.error);
    }
  }

  /** Puts `head`, the file's first bytes read before the reader was made, before the bytes it reads. */
  #unread(head: Uint8Array): void {
    const data = this.#data = cellKernelBuffer(Math.max(2 * this.#chunk, head.length + this.#chunk));
    data.set(head);
    this.#view = data.subarray(0, head.length);
    this.bytesRead = head.length;
  }

  /** Reads one chunk after the bytes not yet parsed (moved to the front; the buffer grows for a long line). */
  async #fill(): Promise<void> {
    if (this.#done || this.#eof) return;
    // Two chunks: a partial line and the next chunk fit without growing, in the string cell kernel's memory.
    let data = this.#data ??= cellKernelBuffer(2 * this.#chunk);
    const left = this.#view.length - this.#at;
    if (left > 0 && this.#at > 0) data.copyWithin(0, this.#at, this.#view.length);
    if (left + this.#chunk > data.length) {
      const grown = new Uint8Array(Math.max(left + this.#chunk, 2 * data.length));
      grown.set(data.subarray(0, left));
      data = this.#data = grown;
    }
    const n = await this.#f.read(data.subarray(left, left + this.#chunk));
    this.#at = 0;
    if (n === null) {
      this.#eof = true;
      this.#view = data.subarray(0, left);
      return;
    }
    this.bytesRead += n;
    this.#view = data.subarray(0, left + n);
  }
}

const LF = 0x0a;

/**
 * A line's text as a decoder of the whole file gives it: invalid UTF-8 as U+FFFD (a sequence cannot span a
 * newline), a byte-order mark kept (a whole-file decoder drops one opening the file, but lines are trimmed and
 * trimming drops U+FEFF: the same line either way).
 */
const lineDecoder = new TextDecoder("utf-8", { ignoreBOM: true });
function lineText(view: Uint8Array, from: number, to: number): string {
  return lineDecoder.decode(view.subarray(from, to));
}

/** Opens a capture file for streaming (see {@link CaptureReader}). */
export function openCapture(path: string, opts: OpenCaptureOptions = {}): Promise<CaptureReader> {
  return CaptureReader.open(path, opts);
}

/** Writes rows to a capture file incrementally (used by `record`). */
export class CaptureWriter {
  readonly #path: string;
  #file: Deno.FsFile;
  #enc = new TextEncoder();
  #rows = 0;
  /** Bytes of the whole lines written: where the file is cut back to when a write fails. */
  #bytes = 0;

  private constructor(path: string, file: Deno.FsFile) {
    this.#path = path;
    this.#file = file;
  }

  /** Creates (truncates) `path` and writes the header line. */
  static async create(path: string, node: string): Promise<CaptureWriter> {
    const file = await Deno.open(path, { write: true, create: true, truncate: true });
    const w = new CaptureWriter(path, file);
    try {
      await w.#write(encodeCaptureHeader(node));
    } catch (e) {
      file.close();
      throw e;
    }
    return w;
  }

  /** Rows written so far. */
  get rows(): number {
    return this.#rows;
  }

  /**
   * Appends one row. A failed write (disk full, file too large) leaves the file at its last whole line, so what
   * was recorded reads back without a cut-off last line, and is reported with the file and the rows kept.
   */
  async write(row: Row): Promise<void> {
    await this.#write(encodeCaptureLine(row));
    this.#rows++;
  }

  async #write(line: string): Promise<void> {
    const bytes = this.#enc.encode(line + "\n");
    let off = 0;
    try {
      while (off < bytes.length) off += await this.#file.write(bytes.subarray(off));
    } catch (e) {
      // Back to the last whole line, the file's position too (a later write would leave a hole of zeros).
      if (off > 0) {
        await this.#file.truncate(this.#bytes).catch(() => {});
        await this.#file.seek(this.#bytes, Deno.SeekMode.Start).catch(() => {});
      }
      throw new Error(
        `writing ${this.#path} failed after ${this.#rows} row(s), kept (the file ends at the last whole row): ${
          (e as Error).message
        }`,
      );
    }
    this.#bytes += bytes.length;
  }

  /** Flushes and closes the file. */
  async close(): Promise<void> {
    await this.#file.sync().catch(() => {});
    this.#file.close();
  }
}

function bytesToBase64(bytes: Uint8Array): string {
  let s = "";
  const CHUNK = 0x8000;
  for (let i = 0; i < bytes.length; i += CHUNK) {
    s += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  }
  return btoa(s);
}

/** `atob` semantics, into a slab when the engine decodes base64 natively (the same checks, no string made). */
export function base64ToBytes(b64: string): Uint8Array {
  const max = Math.ceil((b64.length * 3) / 4);
  if (nativeSetFromBase64 && max <= MAX_SLAB_VALUE) {
    slabRoom(max);
    const r = nativeSetFromBase64.call(slab.subarray(slabUsed), b64);
    if (r.read !== b64.length) throw new SyntaxError("invalid base64");
    const at = slabUsed;
    slabUsed += r.written;
    return slab.subarray(at, at + r.written);
  }
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
