/**
 * Where a capture reader keeps the bytes of the lines it hands on unread (pixie/capture.ts, deferred batches):
 * each line is copied into a chunk of the string cell kernel's memory, from where it is read when the merge hands
 * it on, and a chunk is reused once every line in it has been read.
 *
 * Why: the merge of several captures holds each row for its reordering window (about a second of event time,
 * thousands of rows). Held as parsed rows (a row object, its cells' views, their slabs) they outlived V8's young
 * generation, were promoted or pretenured, and were collected only by full collections: ~20 of them a bench
 * `analyze` run, ~1 CPU s of concurrent marking. Held as bytes, a row is made only when it is handed on and dies
 * young with the step that handles it.
 * @module
 */
import { slabPoison } from "./capture_slabs.ts";
import { cellKernelBuffer } from "./string_cell_simd.ts";
import type { Cell, Row } from "./row.ts";

/** Bytes of a chunk: many lines (a capture line is under 1 KiB, the longest a reader reads directly 16 KiB). */
export const ARENA_CHUNK_BYTES = 256 * 1024;

/** Free chunks kept for reuse (8 MiB): more than a bench corpus's window of rows takes at once. */
export const MAX_FREE_CHUNKS = 32;

/** A chunk of line bytes and how many of its lines are still to be read. */
export interface ArenaChunk {
  readonly bytes: Uint8Array;
  pending: number;
}

const free: Uint8Array[] = [];
let made = 0;

/** Chunks made so far and chunks free for reuse, every arena together (for tests and benches). */
export function arenaCounts(): { made: number; free: number } {
  return { made, free: free.length };
}

function takeChunk(): Uint8Array {
  const reused = free.pop();
  if (reused !== undefined) return reused;
  made++;
  return cellKernelBuffer(ARENA_CHUNK_BYTES);
}

function retire(bytes: Uint8Array): void {
  // As recycled slabs are (capture_slabs.ts): a row that viewed the chunk would read garbage.
  if (slabPoison()) bytes.fill(0xff);
  if (free.length < MAX_FREE_CHUNKS && bytes.length === ARENA_CHUNK_BYTES) free.push(bytes);
}

/** The chunks one reader copies lines into; a line is at most {@link ARENA_CHUNK_BYTES} long. */
export class LineArena {
  #cur: ArenaChunk | undefined;
  #used = 0;
  /** Where {@link put} copied the line last, in its chunk. */
  at = 0;

  /** Copies `src[from..to)` into a chunk (its `pending` counts the line) and returns it; {@link at} is where. */
  put(src: Uint8Array, from: number, to: number): ArenaChunk {
    const n = to - from;
    if (n > ARENA_CHUNK_BYTES) throw new RangeError(`a line of ${n} bytes is longer than an arena chunk`);
    let cur = this.#cur;
    if (cur === undefined || this.#used + n > cur.bytes.length) {
      // The chunk left goes back once its lines are read (now, if they all were).
      if (cur !== undefined && cur.pending === 0) retire(cur.bytes);
      cur = this.#cur = { bytes: takeChunk(), pending: 0 };
      this.#used = 0;
    }
    cur.bytes.set(src.subarray(from, to), this.#used);
    this.at = this.#used;
    this.#used += n;
    cur.pending++;
    return cur;
  }

  /** One line of `chunk` is read: the chunk is reused once all of them are and no more go into it. */
  done(chunk: ArenaChunk): void {
    if (--chunk.pending > 0) return;
    if (chunk.pending < 0) throw new Error("a line of an arena chunk was read twice");
    if (chunk !== this.#cur) retire(chunk.bytes);
  }

  /** No more lines go in: the current chunk is reused once its lines are read. */
  close(): void {
    const cur = this.#cur;
    this.#cur = undefined;
    if (cur !== undefined && cur.pending === 0) retire(cur.bytes);
  }
}

const NO_COLUMNS: Readonly<Record<string, Cell>> = Object.freeze({});

/**
 * A line of a deferred batch (pixie/capture.ts CaptureReader.batches): its query and time as the line gives them
 * (all a merge orders rows by), its bytes in the reader's {@link LineArena}; CaptureReader.materialize reads the
 * row. Its `columns` are empty until then. A line that names `time_` twice (JSON keeps the last) is ordered by
 * the first: such a line is malformed for Pixie, and is still handed on. A line whose query and time read well
 * but whose row turns out malformed when it is read (a null cell, a line cut short) is skipped and counted then,
 * as the eager read does; the merge has already ordered by its time, so the rows of other captures around it may
 * come in another order than the eager read gives (each row the same, each time in its own capture's order).
 */
export class DeferredRow implements Row {
  readonly columns = NO_COLUMNS;
  constructor(
    readonly query: string,
    readonly node: string,
    readonly time: bigint,
    readonly chunk: ArenaChunk,
    readonly at: number,
    readonly len: number,
    /** The line's number in the file, for a problem found when it is read. */
    readonly line: number,
  ) {}
}
