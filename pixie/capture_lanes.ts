/**
 * What the rest of a capture file holds, per query: how many rows, and the time of the first. The merge of
 * several captures (replay.ts `mergeStreams`) uses it to hand a row on as soon as every query of every file has
 * gone past it, rather than waiting out its reordering window: a 1,000-stream capture replayed as fast as it is
 * read otherwise holds a second's rows (~70,000) in that window.
 *
 * One pass over the bytes, without parsing rows: a line of the usual shape (`{"query":"m/s","row":{` with a plain
 * ASCII query, as `record` writes every line) is counted by the query its first bytes name; the first line of each
 * query, and every line of another shape, is parsed as the capture reader parses it (pixie/capture.ts), which
 * decides whether it is a row and of which query. A malformed line of the usual shape is counted as a row of its
 * query (more rows than there are only keeps that query from being taken as finished). Counted short (a line that
 * names its query twice: JSON keeps the last), a query has rows the merge was not told of; it then falls back to
 * its window for the rest of the run.
 * @module
 */
import { parseCaptureLine } from "./capture.ts";

/** One query's rows in the part of a capture scanned. */
export interface LaneAhead {
  /** Time (`time_`, ns) of its first row there: no row of it after that point sorts before it in the merge. */
  first: bigint;
  /** Its rows there (at least; see the module doc). */
  rows: number;
}

const LF = 0x0a;
/** `{"query":"`: the first bytes of a usual line. */
const PREFIX = new TextEncoder().encode('{"query":"');
/** `","row":{`: what follows the query of a usual line. */
const AFTER = new TextEncoder().encode('","row":{');
/** Longest query read from a line's first bytes (a longer one is parsed). */
const MAX_QUERY = 256;
const BACKSLASH = 0x5c, QUOTE = 0x22;

/** A query met in the scan: its name's bytes (compared with a line's first bytes) and its count. */
interface Known {
  readonly bytes: Uint8Array;
  readonly lane: LaneAhead;
}

/**
 * Counts the rows of each query in `file` from byte `from` (the start of a line) to its end. `node` is only what
 * parsed rows are tagged with. Reads `chunkBytes` at a time; memory does not depend on the file's size.
 */
export async function scanLanesAhead(
  file: string,
  from: number,
  node: string,
  chunkBytes = 1 << 20,
): Promise<Map<string, LaneAhead>> {
  const lanes = new Map<string, LaneAhead>();
  const known: Known[] = [];
  const f = await Deno.open(file, { read: true });
  try {
    await f.seek(from, Deno.SeekMode.Start);
    let buf = new Uint8Array(2 * chunkBytes);
    let have = 0;
    let eof = false;
    while (!eof) {
      if (have + chunkBytes > buf.length) {
        const grown = new Uint8Array(have + chunkBytes);
        grown.set(buf.subarray(0, have));
        buf = grown;
      }
      const n = await f.read(buf.subarray(have, have + chunkBytes));
      if (n === null) eof = true;
      else have += n;
      let at = 0;
      for (;;) {
        let nl = buf.indexOf(LF, at);
        if (nl < 0 || nl >= have) {
          if (!eof || at >= have) break;
          nl = have; // the file's last line, without a newline
        }
        countLine(buf, at, nl, node, lanes, known);
        at = nl + 1;
      }
      if (at >= have) have = 0;
      else if (at > 0) {
        buf.copyWithin(0, at, have);
        have -= at;
      }
    }
  } finally {
    f.close();
  }
  return lanes;
}

const decoder = new TextDecoder();

/** Counts the line `buf[a..b)` under its query (not at all when it is no row). */
function countLine(
  buf: Uint8Array,
  a: number,
  b: number,
  node: string,
  lanes: Map<string, LaneAhead>,
  known: Known[],
): void {
  const q = usualQuery(buf, a, b);
  if (q !== undefined) {
    const len = q - a - PREFIX.length;
    for (const k of known) {
      if (k.bytes.length === len && sameBytes(buf, a + PREFIX.length, k.bytes)) {
        k.lane.rows++;
        return;
      }
    }
  }
  // The first line of its query, or not of the usual shape: parsed as the reader parses it.
  const line = decoder.decode(buf.subarray(a, b)).trim();
  if (line === "") return;
  const row = parseCaptureLine(line, node);
  if (typeof row === "string") return;
  let lane = lanes.get(row.query);
  if (lane === undefined) {
    lanes.set(row.query, lane = { first: row.time, rows: 0 });
    known.push({ bytes: new TextEncoder().encode(row.query), lane });
  }
  lane.rows++;
}

/**
 * Where the query of a usual line ends (its closing quote), or undefined: the line starts `{"query":"`, the
 * query is printable ASCII without a backslash, and `","row":{` follows it.
 */
function usualQuery(buf: Uint8Array, a: number, b: number): number | undefined {
  if (b - a < PREFIX.length + AFTER.length + 1) return undefined;
  for (let i = 0; i < PREFIX.length; i++) if (buf[a + i] !== PREFIX[i]) return undefined;
  const end = Math.min(b, a + PREFIX.length + MAX_QUERY);
  for (let i = a + PREFIX.length; i < end; i++) {
    const c = buf[i]!;
    if (c === QUOTE) {
      if (i + AFTER.length > b) return undefined;
      for (let j = 0; j < AFTER.length; j++) if (buf[i + j] !== AFTER[j]) return undefined;
      return i;
    }
    if (c === BACKSLASH || c < 0x20 || c > 0x7e) return undefined;
  }
  return undefined;
}

function sameBytes(buf: Uint8Array, at: number, bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (buf[at + i] !== bytes[i]) return false;
  return true;
}
