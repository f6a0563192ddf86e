/**
 * Runs one node per capture file in one process over the in-process bus: the engine of `analyze` and `demo`.
 * @module
 */
import type { Config } from "../config/schema.ts";
import { type Capture, type CaptureProblem, openCapture, readCapture } from "../pixie/capture.ts";
import { type LaneAhead, scanLanesAhead } from "../pixie/capture_lanes.ts";
import type { ArenaChunk } from "../pixie/line_arena.ts";
import {
  type MergeStats,
  mergeStreams,
  type NodeRowStream,
  type ReplayOptions,
  replayStream,
  RowLeases,
} from "../pixie/replay.ts";
import { InProcessBus } from "../bus/in_process.ts";
import { finishNodes, SensorNode } from "../actors/node.ts";
import { inProcessMatchFeed, type RecordSink } from "../actors/exporter.ts";
import type { FsmMetrics } from "../http/metrics.ts";
import { sensorMetrics } from "./sensor_metrics.ts";
import type { MatchRecord, SignatureRecord } from "../report/records.ts";
import { decodeErrorLines, diagnose, renderDiagnosis, type RunFacts, tapOf } from "../report/diagnosis.ts";
import { isJsonField, StreamKeyer } from "../audio/decode/stream_key.ts";
import { PayloadEnvelope } from "../audio/decode/payload.ts";
import { type Cell, cellBytes, type Row } from "../pixie/row.ts";
import { logger } from "../util/log.ts";
import { relativeTo } from "./common.ts";
import { isPacketCapture } from "../packets/packet_source.ts";
import { openPacketCapture, readPacketCapture } from "./packet_capture_files.ts";

const log = logger("replay");

/** Everything a capture run produced. */
export interface CaptureRunResult {
  signatures: SignatureRecord[];
  matches: MatchRecord[];
  rows: number;
  /** Malformed capture lines (already logged). */
  problems: number;
  /** One metrics set per node, for a scrape after the run. */
  metrics: Map<string, FsmMetrics>;
}

/**
 * Reads capture files: JSON Lines captures, and pcap/pcapng packet captures (turned into rows for the config's
 * `packets:` taps; the node is the file name). Malformed lines and damaged records are logged and counted.
 */
export async function readCaptures(paths: readonly string[], config?: Config): Promise<Capture[]> {
  const caps: Capture[] = [];
  for (const path of paths) {
    let cap: Capture;
    try {
      const kind = await captureKind(path);
      cap = kind === "packets"
        ? await readPacketCapture(path, config)
        : await readCapture(path, { opened: kind.opened });
    } catch (e) {
      throw new Error(`cannot read capture ${path}: ${(e as Error).message}${notFoundWhere(e, path)}`);
    }
    for (const p of cap.problems.slice(0, 20)) log.warn("malformed capture line skipped", { ...p });
    if (cap.problems.length > 20) {
      log.warn("more malformed capture lines skipped", { file: path, count: cap.problems.length - 20 });
    }
    caps.push(cap);
  }
  return caps;
}

/** Bytes that tell a packet capture (pcap, pcapng) from a JSON Lines one. */
const MAGIC_BYTES = 4;

/**
 * Whether `path` is a packet capture, told by its first bytes. A pipe (`<(cat f)`, /dev/stdin) is opened once:
 * those bytes cannot be read again, so a JSON Lines capture from one comes back opened, with them (its header,
 * or its first row, was lost before); packet captures are read by path, so one from a pipe is refused.
 */
async function captureKind(
  path: string,
): Promise<"packets" | { opened?: { file: Deno.FsFile; head: Uint8Array } }> {
  const info = await Deno.stat(path);
  if (info.isDirectory) throw new Error("is a directory: give the capture files in it");
  const file = await Deno.open(path, { read: true });
  try {
    const head = new Uint8Array(MAGIC_BYTES);
    let n = 0;
    while (n < MAGIC_BYTES) {
      const r = await file.read(head.subarray(n));
      if (r === null) break;
      n += r;
    }
    const compressed = compression(head.subarray(0, n));
    if (compressed !== undefined) {
      // Read as text, every line of it was a malformed line and the run went on without the node's rows.
      throw new Error(`is ${compressed}-compressed: decompress it first`);
    }
    const packets = isPacketCapture(head.subarray(0, n));
    if (info.isFile) {
      file.close();
      return packets ? "packets" : {};
    }
    if (packets) throw new Error("is a packet capture read from a pipe: give the pcap/pcapng file itself");
    return { opened: { file, head: head.subarray(0, n) } };
  } catch (e) {
    file.close();
    throw e;
  }
}

/** The compression a file's first bytes announce (gzip, zstd, xz, bzip2), if any. */
function compression(head: Uint8Array): string | undefined {
  const starts = (...magic: number[]) => magic.length <= head.length && magic.every((b, i) => head[i] === b);
  if (starts(0x1f, 0x8b)) return "gzip";
  if (starts(0x28, 0xb5, 0x2f, 0xfd)) return "zstd";
  if (starts(0xfd, 0x37, 0x7a, 0x58)) return "xz";
  if (starts(0x42, 0x5a, 0x68)) return "bzip2";
  return undefined;
}

/** Options of {@link runCaptures}. */
export interface CaptureRunOptions extends Pick<ReplayOptions, "speed" | "onProgress" | "signal"> {
  /** Extra sinks (e.g. `--out`, the demo's printout). */
  sinks?: readonly RecordSink[];
  /** Called once the nodes exist (e.g. to serve their metrics). */
  onNodes?: (nodes: Map<string, SensorNode>, metrics: Map<string, FsmMetrics>) => void;
}

/**
 * One capture being read as a stream: JSON Lines or pcap/pcapng. Its rows are read once, as the replay asks for
 * them; `problems` holds the first malformed lines (all of them once read), `problemCount()` counts every one.
 */
export interface CaptureSource {
  file: string;
  node: string;
  size: number;
  bytesRead(): number;
  problems: readonly CaptureProblem[];
  problemCount(): number;
  /**
   * Its rows a batch at a time; `deferred`: rows of the usual line may come unread (pixie/capture.ts
   * DeferredRow), to be read with {@link materialize} as they are handed on (JSON Lines captures).
   */
  batches(opts?: { deferred?: boolean }): AsyncIterable<readonly Row[]>;
  /** Hands back a batch whose rows are done with, for its memory to be reused (JSON Lines captures). */
  release?(batch: readonly Row[]): void;
  /** Reads a line a deferred batch handed on unread (see mergeStreams' NodeRowStream). */
  materialize?(chunk: ArenaChunk, at: number, len: number, line: number): Row | undefined;
  /** Holds the slabs of the rows {@link materialize} read until `release(rows)`. */
  sealRows?(rows: readonly Row[]): void;
  /** Its problems were logged already (read whole by {@link readCaptures}). */
  logged?: boolean;
  /** What the rest of it holds, per query (see mergeStreams); JSON Lines capture files, not pipes. */
  lanesAhead?(): Promise<ReadonlyMap<string, LaneAhead> | undefined>;
  /** Closes a source opened ahead of its reading (JSON Lines), read or not; again, nothing. */
  close?(): void;
}

/** Opens capture files for streaming (JSON Lines and pcap/pcapng, told apart by their first bytes). */
export async function openCaptures(paths: readonly string[], config?: Config): Promise<CaptureSource[]> {
  const out: CaptureSource[] = [];
  for (const path of paths) {
    try {
      const kind = await captureKind(path);
      if (kind === "packets") {
        const p = await openPacketCapture(path, config);
        out.push({ ...p, problemCount: () => p.problems.length });
      } else {
        const r = await openCapture(path, { opened: kind.opened });
        out.push({
          file: path,
          node: r.node,
          size: r.size,
          bytesRead: () => r.bytesRead,
          problems: r.problems,
          problemCount: () => r.problemCount,
          batches: (opts) => r.batches(opts),
          release: (batch) => r.release(batch),
          materialize: (chunk, at, len, line) => r.materialize(chunk, at, len, line),
          sealRows: (rows) => r.sealRows(rows),
          lanesAhead: () => {
            const at = r.unreadAt;
            return at === undefined ? Promise.resolve(undefined) : scanLanesAhead(path, at, r.node);
          },
          close: () => r.close(),
        });
      }
    } catch (e) {
      // The captures opened before this one are not handed to anyone.
      for (const s of out) s.close?.();
      throw new Error(`cannot read capture ${path}: ${(e as Error).message}${notFoundWhere(e, path)}`);
    }
  }
  return out;
}

/** A capture already in memory as a {@link CaptureSource}. */
export function sourceOfCapture(cap: Capture): CaptureSource {
  return {
    file: cap.file,
    node: cap.node,
    size: 0,
    bytesRead: () => 0,
    problems: cap.problems,
    problemCount: () => cap.problems.length,
    logged: true,
    async *batches() {
      for (let i = 0; i < cap.rows.length; i += 512) yield cap.rows.slice(i, i + 512);
    },
  };
}

/** Logs a source's malformed lines once it has been read (the first 20, then a count). */
function logProblems(src: CaptureSource): void {
  if (src.logged) return;
  for (const p of src.problems.slice(0, 20)) log.warn("malformed capture line skipped", { ...p });
  const more = src.problemCount() - Math.min(20, src.problems.length);
  if (more > 0) log.warn("more malformed capture lines skipped", { file: src.file, count: more });
}

/** Options of {@link RowSample}. */
export interface RowSampleOptions {
  /** Bytes kept per query at most, as {@link rowBytes} counts them, every stream together (default 4 MiB). */
  perQueryBytes?: number;
  /** Streams of a query sampled in depth, the first ones seen (default 8, the diagnosis details 8 of them). */
  deepStreams?: number;
  /** Rows kept of each stream sampled in depth (default 3,000: 60 s of 20 ms messages). */
  deepRows?: number;
  /** Rows kept of every other stream (default 2: its first messages, an example of each stream). */
  otherRows?: number;
  /** Queries sampled (default 64). */
  maxQueries?: number;
}

/** What the sample holds of one query. */
interface QuerySample {
  rows: PackedRows;
  /** Bytes of the rows kept (of the deep streams when there is a per-stream rule), and of the other streams. */
  bytes: number;
  otherBytes: number;
  /** Rows a stream may still add, by stream (a hash of its node and key columns); undefined: no per-stream rule. */
  streams?: Map<number, number>;
  /** The stream-key columns of the query's tap (the node is always part of the stream). */
  keyColumns: readonly string[];
  /** Keys of a stream key with envelope fields (the engine's), and the payload column they are read from. */
  keyer?: StreamKeyer;
  payloadColumn: string;
  /** Rows keyed by `keyer`. */
  keyed: number;
  /** The streams sampled in depth. */
  deep: Set<number>;
}

/**
 * A bounded sample of the rows of each query, for the end-of-run diagnosis (examples of decode failures, levels
 * of silent streams, format guesses): the first rows of each stream. The first 8 streams of a query (those the
 * diagnosis details) keep up to 3,000 rows each (60 s of 20 ms messages, for their levels); every other stream
 * its first 2 rows (an example of each stream, so a stream that starts late or fails differently is represented),
 * up to a quarter of the query's budget (4 MiB); the deep streams up to three quarters of it less twice what the
 * others hold (at least a quarter): a capture of a few streams is sampled as deep as before, one of 1,000 streams
 * in 2 MiB. With the config a stream is the node and its stream key (a key with envelope fields reads each body
 * for them, so only over the query's first 100,000 rows); without it, and for a query no measurement names, the
 * sample is the first rows of the query up to the budget. Before, it was the first rows of each query up to 8 MiB: at 1,000
 * concurrent streams ~17 rows of each (0.3 s, no stream deep enough for its levels), ~8 MB of packed rows held
 * for the whole run, and a stream that started after the first ~0.4 s was not represented at all.
 *
 * The rows are kept packed as bytes ({@link PackedRows}) and rebuilt on each {@link RowSample.rowsOf}: held as
 * they came, at 1,000 streams the ~17,500 rows of the old budget took ~8 MB of V8's heap (their objects and cell
 * views) and pinned ~6 MB of the capture reader's 64 KiB slabs for the whole run.
 */
export class RowSample {
  readonly #byQuery = new Map<string, QuerySample>();
  readonly #config: Config | undefined;
  readonly #perQueryBytes: number;
  readonly #deepStreams: number;
  readonly #deepRows: number;
  readonly #otherRows: number;
  readonly #maxQueries: number;

  /** `config`: the taps' stream keys (without it, no per-stream rule). */
  constructor(config?: Config, opts: RowSampleOptions = {}) {
    this.#config = config;
    this.#perQueryBytes = opts.perQueryBytes ?? 4 << 20;
    this.#deepStreams = opts.deepStreams ?? 8;
    this.#deepRows = opts.deepRows ?? 3000;
    this.#otherRows = opts.otherRows ?? 2;
    this.#maxQueries = opts.maxQueries ?? 64;
  }

  /** Offers a row; kept while its query's budget lasts and its stream has room. */
  add(row: Row): void {
    let q = this.#byQuery.get(row.query);
    if (!q) {
      if (this.#byQuery.size >= this.#maxQueries) return;
      q = this.#newQuery(row.query);
      this.#byQuery.set(row.query, q);
    }
    const streams = q.streams;
    if (streams === undefined) {
      if (q.bytes >= this.#perQueryBytes) return;
      q.bytes += rowBytes(row);
      q.rows.add(row);
      return;
    }
    // The other streams' first rows may take a quarter of the budget; the deep streams three quarters less twice
    // what the others hold (at least a quarter): with many streams the budget is half spent.
    const otherMax = this.#perQueryBytes / 4;
    const deepMax = Math.max(otherMax, 3 * otherMax - 2 * q.otherBytes);
    if (q.bytes >= deepMax && q.otherBytes >= otherMax) return;
    let id: number;
    if (q.keyer === undefined) id = streamHash(row, q.keyColumns);
    else {
      // The stream key's envelope fields: each row's body is read for them, so only the query's first rows.
      if (++q.keyed > ENVELOPE_KEYED_ROWS) return;
      const body = cellBytes(row, q.payloadColumn);
      id = hashText(streamHash(row, []), q.keyer.keyOf(row.columns, body && new PayloadEnvelope(body))) >>> 0;
    }
    const left = streams.get(id);
    let deep: boolean;
    if (left === undefined) {
      // A stream among the first 8 that comes once the deep streams' share is spent is sampled as the others.
      deep = q.deep.size < this.#deepStreams && q.bytes < deepMax;
      const rows = deep ? this.#deepRows : this.#otherRows;
      if (rows <= 0 || (!deep && q.otherBytes >= otherMax)) return;
      if (deep) q.deep.add(id);
      streams.set(id, rows - 1);
    } else {
      if (left <= 0) return;
      deep = q.deep.has(id);
      if (deep ? q.bytes >= deepMax : q.otherBytes >= otherMax) return;
      streams.set(id, left - 1);
    }
    if (deep) q.bytes += rowBytes(row);
    else q.otherBytes += rowBytes(row);
    q.rows.add(row);
  }

  /** The sampled rows of `query` (the diagnosis's `rowsOf`), rebuilt at each call. */
  rowsOf = (query: string): readonly Row[] => this.#byQuery.get(query)?.rows.rows() ?? [];

  #newQuery(query: string): QuerySample {
    const found = this.#config ? tapOf(this.#config, query) : undefined;
    const spec = found?.tap.stream_key ?? [];
    return {
      rows: new PackedRows(query),
      bytes: 0,
      otherBytes: 0,
      streams: found ? new Map() : undefined,
      keyColumns: spec.filter((e) => !isJsonField(e)),
      keyer: spec.some(isJsonField) ? new StreamKeyer(spec) : undefined,
      payloadColumn: found?.tap.columns.payload ?? "",
      keyed: 0,
      deep: new Set(),
    };
  }
}

/**
 * Rows of a query whose stream key has envelope fields that the sample keys (reading each body for the fields):
 * past them the query is sampled no more, so a long capture of a few such streams costs no parse per row.
 */
export const ENVELOPE_KEYED_ROWS = 100_000;

/** A 32-bit hash of a row's node and its `columns` cells (a stream of the sample; a collision merges two). */
export function streamHash(row: Row, columns: readonly string[]): number {
  let h = hashText(0x811c9dc5, row.node);
  for (let i = 0; i < columns.length; i++) {
    const c = row.columns[columns[i]!];
    h = Math.imul(h ^ 0x1f, 0x01000193);
    if (c === undefined) continue;
    if (typeof c === "string") h = hashText(h, c);
    else if (c instanceof Uint8Array) {
      for (let k = 0; k < c.length; k++) h = Math.imul(h ^ c[k]!, 0x01000193);
    } else if (typeof c === "number" && c >= 0 && c <= 0x7fffffff && c === Math.floor(c)) {
      h = hashDigits(h, c);
    } else h = hashText(h, typeof c === "boolean" ? (c ? "true" : "false") : String(c));
  }
  return h >>> 0;
}

/** Decimal digits of an integer below 2^31, least significant first ({@link hashDigits}' scratch). */
const DIGITS = new Uint8Array(10);

/** {@link hashText} of `String(n)` for an integer `n` in [0, 2^31), without making the string (a port: every row). */
function hashDigits(h: number, n: number): number {
  let k = 0;
  do {
    const q = (n / 10) | 0;
    DIGITS[k++] = 0x30 + n - q * 10;
    n = q;
  } while (n > 0);
  while (k > 0) h = Math.imul(h ^ DIGITS[--k]!, 0x01000193);
  return h;
}

function hashText(h: number, s: string): number {
  for (let k = 0; k < s.length; k++) h = Math.imul(h ^ s.charCodeAt(k), 0x01000193);
  return h;
}

/** Bytes of a {@link PackedRows} chunk: above the run task's MALLOC_MMAP_THRESHOLD_, so mapped on its own. */
const PACK_CHUNK = 256 * 1024;
/** Cell tags of {@link PackedRows}. */
const BYTES = 0, TEXT = 1, NUMBER = 2, BIG = 3, TRUE = 4, FALSE = 5;

/**
 * Rows of one query packed into byte chunks, each rebuilt exactly (cell types and values, column order): the node
 * and column names as indices into a table of them, `time` as an int64 (decimal digits beyond), string cells as
 * UTF-16 code units, bigint cells as decimal digits, numbers as float64, byte cells copied.
 */
export class PackedRows {
  readonly query: string;
  readonly #chunks: Uint8Array[] = [];
  #chunk = new Uint8Array(0);
  #view = new DataView(this.#chunk.buffer);
  #at = 0;
  /** Bytes used in each chunk (the last one's is `#at`). */
  readonly #used: number[] = [];
  /** Nodes and column names, each stored once. */
  readonly #names: string[] = [];
  readonly #nameIds = new Map<string, number>();

  constructor(query: string) {
    this.query = query;
  }

  /** Rows held. */
  count = 0;

  /** Appends `row` (of this query). */
  add(row: Row): void {
    const wide = row.time < -(1n << 63n) || row.time >= 1n << 63n;
    let need = 4 + 1 + (wide ? 4 + 2 * row.time.toString().length : 8) + 4;
    for (const name in row.columns) {
      const c = row.columns[name]!;
      need += 4 + 1 + 4 +
        (c instanceof Uint8Array
          ? c.length
          : typeof c === "string"
          ? 2 * c.length
          : typeof c === "bigint"
          ? 2 * c.toString().length
          : 8);
    }
    this.#room(need);
    this.#u32(this.#nameId(row.node));
    if (wide) {
      this.#chunk[this.#at++] = BIG;
      this.#text(row.time.toString());
    } else {
      this.#chunk[this.#at++] = NUMBER;
      this.#view.setBigInt64(this.#at, row.time);
      this.#at += 8;
    }
    let n = 0;
    for (const _ in row.columns) n++;
    this.#u32(n);
    for (const name in row.columns) {
      this.#u32(this.#nameId(name));
      const c = row.columns[name]!;
      if (c instanceof Uint8Array) {
        this.#chunk[this.#at++] = BYTES;
        this.#u32(c.length);
        this.#chunk.set(c, this.#at);
        this.#at += c.length;
      } else if (typeof c === "string") {
        this.#chunk[this.#at++] = TEXT;
        this.#text(c);
      } else if (typeof c === "number") {
        this.#chunk[this.#at++] = NUMBER;
        this.#view.setFloat64(this.#at, c);
        this.#at += 8;
      } else if (typeof c === "bigint") {
        this.#chunk[this.#at++] = BIG;
        this.#text(c.toString());
      } else this.#chunk[this.#at++] = c ? TRUE : FALSE;
    }
    this.count++;
  }

  /** The rows, rebuilt (byte cells are views of the chunks). */
  rows(): Row[] {
    const out: Row[] = [];
    this.#used[this.#chunks.length - 1] = this.#at;
    for (let k = 0; k < this.#chunks.length; k++) {
      const chunk = this.#chunks[k]!, view = new DataView(chunk.buffer), end = this.#used[k]!;
      let at = 0;
      const text = (): string => {
        const n = view.getUint32(at);
        at += 4;
        let s = "";
        for (let i = 0; i < n; i++, at += 2) s += String.fromCharCode(view.getUint16(at));
        return s;
      };
      while (at < end) {
        const node = this.#names[view.getUint32(at)]!;
        at += 4;
        let time: bigint;
        if (chunk[at++] === BIG) time = BigInt(text());
        else {
          time = view.getBigInt64(at);
          at += 8;
        }
        const n = view.getUint32(at);
        at += 4;
        const columns: Record<string, Cell> = {};
        for (let j = 0; j < n; j++) {
          const name = this.#names[view.getUint32(at)]!;
          at += 4;
          const tag = chunk[at++]!;
          if (tag === BYTES) {
            const len = view.getUint32(at);
            at += 4;
            columns[name] = chunk.subarray(at, at + len);
            at += len;
          } else if (tag === TEXT) columns[name] = text();
          else if (tag === NUMBER) {
            columns[name] = view.getFloat64(at);
            at += 8;
          } else if (tag === BIG) columns[name] = BigInt(text());
          else columns[name] = tag === TRUE;
        }
        out.push({ query: this.query, node, time, columns });
      }
    }
    return out;
  }

  /** Room for `n` more bytes in the current chunk (a new one, at least `n` long, when it is short). */
  #room(n: number): void {
    if (this.#at + n <= this.#chunk.length) return;
    if (this.#chunks.length > 0) this.#used[this.#chunks.length - 1] = this.#at;
    this.#chunk = new Uint8Array(Math.max(PACK_CHUNK, n));
    this.#view = new DataView(this.#chunk.buffer);
    this.#chunks.push(this.#chunk);
    this.#at = 0;
  }

  #nameId(s: string): number {
    let id = this.#nameIds.get(s);
    if (id === undefined) {
      this.#nameIds.set(s, id = this.#names.length);
      this.#names.push(s);
    }
    return id;
  }

  #u32(v: number): void {
    this.#view.setUint32(this.#at, v);
    this.#at += 4;
  }

  #text(s: string): void {
    this.#u32(s.length);
    for (let i = 0; i < s.length; i++, this.#at += 2) this.#view.setUint16(this.#at, s.charCodeAt(i));
  }
}

/**
 * About what a row holds in memory: its objects, and every byte and string column by its length (a capture's
 * bodies are strings; counted as 16 bytes each, 8 MiB of budget held ~50,000 rows, ~19 MB, at 1,000 streams).
 */
export function rowBytes(row: Row): number {
  let bytes = 64;
  for (const name in row.columns) {
    const c = row.columns[name];
    bytes += c instanceof Uint8Array || typeof c === "string" ? 16 + c.length : 16;
  }
  return bytes;
}

/** Options of {@link runCaptureSources}. */
export interface CaptureStreamRunOptions extends CaptureRunOptions {
  /** Merge window, buffer bound and when to scan what lies ahead (see mergeStreams); undefined: the defaults. */
  windowNs?: bigint;
  maxBuffered?: number;
  scanAfter?: number;
  /** Called with (bytes read, bytes in all) as the captures are read. */
  onBytes?: (done: number, total: number) => void;
  /** Rows in all, when known (captures in memory), for `onProgress`. */
  totalRows?: number;
}

/** What a streamed capture run produced: {@link CaptureRunResult} plus the diagnosis sample and merge counts. */
export interface CaptureStreamRunResult extends CaptureRunResult {
  sample: RowSample;
  merge: MergeStats;
}

/**
 * Replays capture sources through one node per capture node name, reading them as a stream (merged lazily by
 * event time) and collecting every record. Memory depends on the streams in flight, not on the captures' size.
 */
export async function runCaptureSources(
  config: Config,
  sources: readonly CaptureSource[],
  opts: CaptureStreamRunOptions = {},
): Promise<CaptureStreamRunResult> {
  try {
    return await runSources(config, sources, opts);
  } finally {
    // A run that failed or was stopped leaves captures unread, whose files close here (one read to its end is
    // closed already).
    for (const c of sources) c.close?.();
  }
}

/** {@link runCaptureSources} but for closing the sources. */
async function runSources(
  config: Config,
  sources: readonly CaptureSource[],
  opts: CaptureStreamRunOptions,
): Promise<CaptureStreamRunResult> {
  const bus = new InProcessBus();
  const signatures: SignatureRecord[] = [];
  const matches: MatchRecord[] = [];
  const collector: RecordSink = {
    signature: (r) => void signatures.push(r),
    match: (r) => void matches.push(r),
  };
  const nodeNames = new Set(sources.map((c) => c.node));
  const nodes = new Map<string, SensorNode>();
  const metrics = new Map<string, FsmMetrics>();
  const unpaced = opts.speed === undefined;
  // Paced, rows wait in the nodes' mailboxes for as long as the nodes take: a batch goes back to its reader once
  // the node's actors have taken every row of it (unpaced, the merge hands batches back, see below).
  const leases = unpaced || !sources.some((c) => c.release) ? undefined : new RowLeases();
  for (const name of nodeNames) {
    const m = sensorMetrics(config);
    metrics.set(name, m);
    nodes.set(
      name,
      await SensorNode.start({
        config,
        node: name,
        bus,
        metrics: m,
        sinks: [collector, ...(opts.sinks ?? [])],
        mode: "replay",
        matchFeed: inProcessMatchFeed(bus),
        onRowsDone: leases && ((rows) => leases.done(rows)),
      }),
    );
  }
  opts.onNodes?.(nodes, metrics);
  const sample = new RowSample(config);
  const totalBytes = sources.reduce((a, s) => a + s.size, 0);
  const readBytes = () => sources.reduce((a, s) => a + s.bytesRead(), 0);
  // Each file is an input of its own, its node's (the order mergeByTime gives): two files of one node, read one
  // after the other, put the rows of a file given second but captured first after the other's, all of them.
  // Unpaced, every row of a merge step is done with (settleAll below) before the next step is asked for, so the
  // merge may hand batches back to their readers, and the rows of the usual capture line come unread and are
  // read as the merge hands them on (pixie/line_arena.ts says why). The sample copies the rows delivered.
  const inputs: NodeRowStream[] = sources.map((c) => {
    const release = c.release && ((batch: readonly Row[]) => c.release!(batch));
    const deferred = unpaced && c.materialize !== undefined && c.sealRows !== undefined;
    return {
      node: c.node,
      release: unpaced ? release : undefined,
      lanesAhead: c.lanesAhead && (() => c.lanesAhead!()),
      materialize: deferred ? (chunk, at, len, line) => c.materialize!(chunk, at, len, line) : undefined,
      sealRows: deferred ? (rows) => c.sealRows!(rows) : undefined,
      batches: (async function* () {
        for await (const b of c.batches({ deferred })) {
          if (leases && release) leases.hold(b, b, release);
          yield b;
        }
      })(),
    };
  });
  const stats: MergeStats = { rows: 0, late: 0, forced: 0, peakBuffered: 0 };
  const merged = mergeStreams(inputs, {
    windowNs: opts.windowNs,
    maxBuffered: opts.maxBuffered,
    scanAfter: opts.scanAfter,
  }, stats);
  let lastBytes = 0;
  const rows = await replayStream(merged, async (node, batch) => {
    for (const r of batch) sample.add(r);
    await nodes.get(node)!.ingestBatch(batch);
    // Unpaced, a batch is handled in full (every actor of every node idle, signatures passed on the bus included)
    // before the next is read. How far one node's detector runs behind another node's matcher then does not
    // depend on how many rows a mailbox slot holds, so a batch can hold all its node's rows of a merge step:
    // fewer, larger messages (2.7 rows each on the bench corpus before), and the same records run after run.
    // Without the wait, batches that large let the readers run minutes ahead and a third of the bench's matches
    // were lost. Paced replays feed the actors as a live sensor does.
    if (unpaced) await settleAll(nodes.values());
  }, {
    speed: opts.speed,
    // A node whose actor escalated has shut down: reading on would feed nothing (its rows dropped as `stopping`).
    signal: AbortSignal.any([
      ...(opts.signal ? [opts.signal] : []),
      ...[...nodes.values()].map((n) => n.system.stopping),
    ]),
    progressEvery: 5000,
    onProgress: (done) => {
      if (opts.onProgress) opts.onProgress(done, opts.totalRows ?? done);
      if (opts.onBytes && totalBytes > 0) {
        const b = readBytes();
        if (b !== lastBytes) opts.onBytes(Math.min(b, totalBytes), totalBytes);
        lastBytes = b;
      }
    },
  });
  // Once every row is read: a deferred line found malformed is counted as it is handed on.
  for (const c of sources) logProblems(c);
  if (stats.lanesBroken !== undefined) {
    // A capture from a pipe cannot be scanned; one that changed under the scan, or a line naming its query twice,
    // held rows the scan did not count. Either way rows waited out the merge window from then on (more memory).
    log.warn("the merge stopped handing rows on early: rows were held for its window after", {
      reason: stats.lanesBroken,
    });
  }
  if (stats.late > 0) {
    log.warn("rows further back in time than the merge window were replayed out of order", {
      rows: stats.late,
      forced: stats.forced,
    });
  }
  await failedNode(nodes.values());
  // An escalation during the finish rejects its asks (the actor is stopped): the escalation is the error to show.
  await finishNodes([...nodes.values()], bus).catch(async (e) => {
    await failedNode(nodes.values());
    throw e;
  });
  for (const n of nodes.values()) {
    const t = await n.shutdown(30_000, "capture finished");
    if (t.code !== 0) throw new Error(`node ${n.name} ended with code ${t.code}: ${t.reason}`);
  }
  const problems = sources.reduce((a, c) => a + c.problemCount(), 0);
  return { signatures, matches, rows, problems, metrics, sample, merge: stats };
}

/**
 * Throws, once every node is shut down, when one of them stopped by itself (an actor exceeded its restart limit):
 * with its termination's reason, not the "actor is stopped" that asking it would give.
 */
async function failedNode(nodes: Iterable<SensorNode>): Promise<void> {
  const all = [...nodes];
  const failed = all.find((n) => n.system.stopping.aborted);
  if (failed === undefined) return;
  const t = await failed.system.terminated;
  for (const n of all) await n.shutdown(30_000, "another node failed");
  throw new Error(`node ${failed.name} ended with code ${t.code}: ${t.reason}`);
}

/** Waits until every actor of every node is idle (a node that settles may have handed another one work). */
async function settleAll(nodes: Iterable<SensorNode>): Promise<void> {
  const all = [...nodes];
  for (;;) {
    const busy = all.find((n) => !n.system.idle);
    if (busy === undefined) return;
    await busy.system.settled();
  }
}

/**
 * Replays captures held in memory through one node per capture node name and collects every record: the exact
 * event-time order of {@link mergeByTime} (the merge waits for every input), for `demo`, `check` and tests.
 */
export async function runCaptures(
  config: Config,
  caps: readonly Capture[],
  opts: CaptureRunOptions = {},
): Promise<CaptureRunResult> {
  const r = await runCaptureSources(config, caps.map(sourceOfCapture), {
    ...opts,
    windowNs: 1n << 62n,
    maxBuffered: Infinity,
    totalRows: caps.reduce((a, c) => a + c.rows.length, 0),
  });
  return {
    signatures: r.signatures,
    matches: r.matches,
    rows: r.rows,
    problems: r.problems,
    metrics: r.metrics,
  };
}

/** Stage order per measurement as configured (the waterfall's columns). */
export function stageOrder(config: Config): Record<string, string[]> {
  return Object.fromEntries(config.measurements.map((m) => [m.name, m.match_rules.map((r) => r.stage)]));
}

/** Every value of one counter over metrics sets. */
async function counterValues(
  metrics: Iterable<FsmMetrics>,
  name: string,
): Promise<{ labels: Record<string, string | number>; value: number }[]> {
  const out: { labels: Record<string, string | number>; value: number }[] = [];
  for (const m of metrics) {
    for (const metric of await m.registry.getMetricsAsJSON()) {
      if (metric.name !== name) continue;
      for (const v of metric.values) {
        out.push({ labels: v.labels as Record<string, string | number>, value: v.value });
      }
    }
  }
  return out;
}

/**
 * What a finished run counted, read from the nodes' metrics (the engine's own counters) and, when given, from the
 * records: the input of the end-of-run diagnosis (report/diagnosis.ts).
 */
export async function runFacts(
  configFile: string,
  metrics: Iterable<FsmMetrics>,
  records?: { signatures: readonly SignatureRecord[]; matches: readonly MatchRecord[] },
  malformedLines = 0,
): Promise<RunFacts> {
  const sets = [...metrics];
  const sum = async (name: string, key: (l: Record<string, string | number>) => string) => {
    const acc: Record<string, number> = {};
    for (const { labels, value } of await counterValues(sets, name)) {
      if (value > 0) acc[key(labels)] = (acc[key(labels)] ?? 0) + value;
    }
    return acc;
  };
  const decode = await sum(
    "fsmpx_payload_decode_errors_total",
    (l) => `${l["measurement"]}\u0000${l["stream"]}\u0000${l["reason"]}`,
  );
  const facts: RunFacts = {
    configFile,
    rowsByQuery: await sum("fsmpx_rows_read_total", (l) => String(l["query"])),
    decodeErrors: Object.entries(decode).map(([k, count]) => {
      const [measurement, stream, reason] = k.split("\u0000") as [string, string, string];
      return { measurement, stream, reason, count };
    }),
    truncatedByQuery: await sum("fsmpx_payloads_truncated_total", (l) => String(l["query"])),
    signaturesByMeasurement: await sum("signatures_detected_total", (l) => String(l["measurement"])),
    matchesByStage: await sum("signatures_matched_total", (l) => `${l["measurement"]}/${l["stage"]}`),
    malformedLines,
  };
  const repeated = await sum(
    "fsmpx_matches_repeated_total",
    (l) => `${l["measurement"]}/${l["stage"]}\u0000${l["outcome"]}`,
  );
  for (const [k, count] of Object.entries(repeated)) {
    const [q, outcome] = k.split("\u0000") as [string, string];
    const r = (facts.repeatsByStage ??= {})[q] ??= { dropped: 0, releasedBeforeTwin: 0 };
    if (outcome === "dropped") r.dropped += count;
    else r.releasedBeforeTwin += count;
  }
  if (records) {
    const found = new Map<string, Set<string>>();
    for (const m of records.matches) {
      const q = `${m.measurement}/${m.stage}`;
      if (!found.has(q)) found.set(q, new Set());
      found.get(q)!.add(m.signature_id);
    }
    facts.matchedSignaturesByStage = Object.fromEntries([...found].map(([q, s]) => [q, s.size]));
    const self: Record<string, number> = {};
    for (const m of records.matches) {
      if (m.target.node !== m.source.node || m.target.stream !== m.source.stream) continue;
      const q = `${m.measurement}/${m.stage}`;
      self[q] = (self[q] ?? 0) + 1;
    }
    facts.selfMatchesByStage = self;
    const slowest: Record<string, number> = {};
    for (const m of records.matches) {
      const q = `${m.measurement}/${m.stage}`;
      if (!(m.latency_s <= (slowest[q] ?? -Infinity))) slowest[q] = m.latency_s;
    }
    facts.maxLatencyByStage = slowest;
    facts.signatureStreams = new Set(
      records.signatures.map((s) => `${s.measurement}\u0000${s.node}\u0000${s.stream}`),
    );
    const idTypes: Record<string, Record<string, number>> = {};
    for (const s of records.signatures) {
      const acc = idTypes[s.measurement] ??= {};
      for (const t of Object.keys(s.ids)) acc[t] = (acc[t] ?? 0) + 1;
    }
    facts.signatureIdTypes = idTypes;
  }
  return facts;
}

/** The rows of each query across captures, for the diagnosis's examples and levels. */
export function rowsByQuery(caps: readonly Capture[]): (query: string) => readonly Row[] {
  let index: Map<string, Row[]> | undefined;
  return (query) => {
    if (!index) {
      index = new Map();
      for (const c of caps) {
        for (const r of c.rows) {
          let list = index.get(r.query);
          if (!list) index.set(r.query, list = []);
          list.push(r);
        }
      }
    }
    return index.get(query) ?? [];
  };
}

/** The decode-error findings of a run, each reason with one example row (for the UI's Health page). */
export async function decodeExamples(
  config: Config,
  configFile: string,
  caps: readonly Capture[],
  result: CaptureRunResult,
): Promise<string[]> {
  const facts = await runFacts(configFile, result.metrics.values(), result, result.problems);
  return decodeErrorLines(diagnose(config, facts, { rowsOf: rowsByQuery(caps) }));
}

/**
 * The end-of-run explanation of a capture run as text: why there were no or few signatures or matches (decode
 * errors by reason with an example, queries no measurement names, silent sources, stages without matches).
 * Empty when there is nothing to say.
 */
export async function explainRun(
  config: Config,
  configFile: string,
  caps: readonly Capture[],
  result: CaptureRunResult,
): Promise<string> {
  const facts = await runFacts(configFile, result.metrics.values(), result, result.problems);
  return renderDiagnosis(diagnose(config, facts, { rowsOf: rowsByQuery(caps) }));
}

/** For a file that is not there, where a relative path was looked for (see {@link relativeTo}). */
function notFoundWhere(e: unknown, path: string): string {
  return e instanceof Deno.errors.NotFound ? relativeTo(path) : "";
}
