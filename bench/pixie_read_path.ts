/**
 * The live read path in isolation (issue 16): recorded ExecuteScript responses of concurrent synthetic calls (a
 * source and two target taps each, 20 ms μ-law Twilio JSON, 250 rows a batch: what bench/live_load.ts sends) go
 * through what a sensor does with each gRPC message once grpc-js has framed it: the client's decode
 * (`decodeExecuteScriptResponse`, the call's deserializer), {@link PixieQueryStream} (rows, re-run dedupe,
 * metrics) and {@link PixieRowSource} (the hand-off to the reader), then the per-stream row dedupe the tap intake
 * applies ({@link RecentRows}). No gRPC, no HTTP/2, no actors: the figure is the CPU cost per row of this code,
 * in process CPU time (a busy machine does not inflate it as it does wall time), the best of several rounds.
 *
 * The stream is dropped after the recording and re-run once; the re-run re-sends the last `--overlap` batches of
 * each table, which must all be dropped as duplicates. A digest of every delivered row (query, node, time, every
 * cell) shows that a change to the path delivers the same rows in the same order with the same cells.
 *
 * `deno run --allow-all bench/pixie_read_path.ts [--calls 1000] [--ticks 100] [--rounds 5] [--overlap 3]`
 * @module
 */
import { Buffer } from "node:buffer";
import process from "node:process";
import { decodeExecuteScriptResponse, encodeExecuteScriptResponse } from "../pixie/messages.ts";
import type { ColumnInfo, ExecuteScriptRequest, ExecuteScriptResponse, RowBatch } from "../pixie/messages.ts";
import { DataType } from "../pixie/messages.ts";
import type { ComposedQueryInput } from "../pixie/pxl.ts";
import { PixieRowSource } from "../pixie/live_source.ts";
import type { PixieExecutor } from "../pixie/stream.ts";
import { GrpcCode, PixieRpcError } from "../pixie/client.ts";
import type { Row } from "../pixie/row.ts";
import { RecentRows } from "../actors/row_dedupe.ts";
import { setLogLevel } from "../util/log.ts";
import { SyntheticCalls, TAP_DELAY_MS } from "../tests/support/live_calls.ts";

const TAPS = Object.keys(TAP_DELAY_MS);
const RELATION: ColumnInfo[] = [
  { name: "time_", type: DataType.TIME64NS },
  { name: "pod", type: DataType.STRING },
  { name: "req_body", type: DataType.STRING },
];
const te = new TextEncoder();
const FILTER = "df = px.DataFrame(table='http_events', start_time='-30s')\n";

/** The three taps' queries as `run` composes them for a standalone PEM (bench/live_load.ts's config). */
export function readPathQueries(): ComposedQueryInput[] {
  return TAPS.map((tap, i) => ({
    name: `live/${tap}`,
    streamFilter: `${FILTER}df = df[df.local_port == ${8001 + i}]\n`,
    node: "live-node",
    scope: { kind: "none" },
    podSource: "process",
    columns: { time: "time_", pod: "pod", payload: "req_body" },
    streamKeyColumns: ["pod", "$.streamSid"],
  }));
}

/** A recording: the metadata responses, then the data responses in the order a PEM sends them. */
export interface Recording {
  meta: Buffer[];
  data: Buffer[];
  /** Data responses per table, in order (the re-run re-sends the last few of each). */
  byTable: Buffer[][];
  rows: number;
  bytes: number;
}

/** Records `ticks` ticks of `calls` calls, `batchRows` rows a batch, as serialized responses. */
export function record(calls: number, ticks: number, batchRows = 250): Recording {
  const gen = new SyntheticCalls(calls, 1);
  const startNs = 1_780_000_000_000_000_000n;
  const meta = TAPS.map((tap, i) =>
    Buffer.from(encodeExecuteScriptResponse({
      queryId: "q-1",
      metaData: { id: `table-${i}`, name: `live/${tap}`, relation: RELATION },
    }))
  );
  const data: Buffer[] = [];
  const byTable: Buffer[][] = TAPS.map(() => []);
  let rows = 0;
  let bytes = 0;
  const pods = TAPS.map((tap) => te.encode(`${tap}-0`));
  for (let tick = 0; tick < ticks; tick++) {
    gen.advance(tick, calls);
    const eventNs = startNs + BigInt(tick) * gen.tickNs;
    for (let t = 0; t < TAPS.length; t++) {
      let times: bigint[] = [];
      let podCol: Uint8Array[] = [];
      let bodies: Uint8Array[] = [];
      const flush = () => {
        if (bodies.length === 0) return;
        const b: RowBatch = {
          tableId: `table-${t}`,
          cols: [{ type: "time64ns", data: times }, { type: "string", data: podCol }, {
            type: "string",
            data: bodies,
          }],
          numRows: bodies.length,
          eow: false,
          eos: false,
        };
        const buf = Buffer.from(encodeExecuteScriptResponse({ queryId: "q-1", batch: b }));
        data.push(buf);
        byTable[t]!.push(buf);
        rows += bodies.length;
        bytes += buf.length;
        times = [];
        podCol = [];
        bodies = [];
      };
      for (let c = 0; c < calls; c++) {
        const m = gen.message(TAPS[t]!, c);
        if (m === undefined) continue;
        times.push(eventNs + (gen.tickNs * BigInt(c)) / BigInt(calls));
        podCol.push(pods[t]!);
        bodies.push(m);
        if (bodies.length >= batchRows) flush();
      }
      flush();
    }
  }
  return { meta, data, byTable, rows, bytes };
}

/** FNV-1a over a row's query, node, time and every cell (names, types and bytes): the order-sensitive digest. */
class RowDigest {
  #h1 = 0x811c9dc5;
  #h2 = 0x01000193;
  rows = 0;

  #byte(b: number): void {
    this.#h1 = Math.imul(this.#h1 ^ b, 0x01000193);
    this.#h2 = Math.imul(this.#h2 ^ b, 0x5bd1e995) ^ (this.#h2 >>> 15);
  }

  #text(s: string): void {
    for (let i = 0; i < s.length; i++) this.#byte(s.charCodeAt(i) & 0xff);
    this.#byte(0);
  }

  add(row: Row): void {
    this.rows++;
    this.#text(row.query);
    this.#text(row.node);
    this.#text(`${row.time}`);
    for (const [k, v] of Object.entries(row.columns)) {
      this.#text(k);
      if (v instanceof Uint8Array) {
        this.#text(`b${v.length}`);
        for (let i = 0; i < v.length; i++) this.#byte(v[i]!);
      } else this.#text(`${typeof v}:${String(v)}`);
    }
  }

  get hex(): string {
    return (this.#h1 >>> 0).toString(16).padStart(8, "0") + (this.#h2 >>> 0).toString(16).padStart(8, "0");
  }
}

/** An executor replaying the recording, then (a drop and a re-run) the last `overlap` batches of each table. */
class ReplayExecutor implements PixieExecutor {
  readonly cloud = false;
  readonly #rec: Recording;
  readonly #overlap: number;
  runs = 0;

  constructor(rec: Recording, overlap: number) {
    this.#rec = rec;
    this.#overlap = overlap;
  }

  async *execute(_req: ExecuteScriptRequest, signal?: AbortSignal): AsyncGenerator<ExecuteScriptResponse> {
    const run = this.runs++;
    for (const b of this.#rec.meta) yield decodeExecuteScriptResponse(b);
    if (run === 0) {
      for (const b of this.#rec.data) yield decodeExecuteScriptResponse(b);
      throw new PixieRpcError(GrpcCode.UNAVAILABLE, "recording ends", "ExecuteScript");
    }
    for (const list of this.#rec.byTable) {
      for (const b of list.slice(-this.#overlap)) yield decodeExecuteScriptResponse(b);
    }
    // Then silence until the bench aborts.
    await new Promise<void>((resolve) => signal?.addEventListener("abort", () => resolve(), { once: true }));
  }
}

/** One round's figures. */
export interface ReadPathRound {
  /** Rows delivered (each once). */
  rows: number;
  duplicates: number;
  /** Decode alone (the gRPC deserializer), µs per row. */
  decodeUs: number;
  /** Decode, stream and hand-off, µs per row. */
  streamUs: number;
  /** The tap intake's per-stream dedupe, µs per row. */
  dedupeUs: number;
  digest: string;
}

function streamIndex(body: Uint8Array): number {
  // `{"event":"media","streamSid":"MZ` then six digits (tests/support/live_calls.ts).
  let n = 0;
  for (let i = 32; i < 38; i++) n = n * 10 + body[i]! - 48;
  return n;
}

/** CPU time of this process (user + system, every thread: GC included), ms. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * Runs the recording through the path once. `recent` holds the tap dedupe's streams across rounds (each round's
 * rows shifted `shiftNs` later than the last's), so they are measured in their steady state, not while new.
 */
export async function readPathRound(
  rec: Recording,
  overlap: number,
  recent: Map<string, RecentRows[]>,
  shiftNs: bigint,
): Promise<ReadPathRound> {
  // Decode alone.
  let t0 = cpuMs();
  let sink = 0;
  for (const b of rec.data) sink += decodeExecuteScriptResponse(b).batch?.numRows ?? 0;
  const decodeMs = cpuMs() - t0;
  if (sink !== rec.rows) throw new Error(`decoded ${sink} rows of ${rec.rows}`);

  const exec = new ReplayExecutor(rec, overlap);
  let duplicates = 0;
  const ac = new AbortController();
  const source = new PixieRowSource({
    client: exec,
    clusterId: "",
    queries: readPathQueries(),
    encryption: false,
    stream: { idleTimeoutMs: 0, backoff: { initialMs: 0, maxMs: 0, minMs: 0 } },
    metrics: { duplicates: (_q, n) => void (duplicates += n) },
  });
  const expectedDup = rec.byTable.reduce(
    (a, l) => a + l.slice(-overlap).reduce((s, b) => s + rowsOf(b), 0),
    0,
  );
  const kept: Row[] = new Array(rec.rows);
  let n = 0;
  t0 = cpuMs();
  const running = source.run((row) => {
    kept[n++] = row;
    return Promise.resolve();
  }, ac.signal);
  // The re-run's batches are all duplicates: no row arrives to tell the end, so watch the counts.
  while (n < rec.rows || duplicates < expectedDup) await new Promise((r) => setTimeout(r, 1));
  ac.abort();
  await running;
  const streamMs = cpuMs() - t0;
  if (n !== rec.rows || duplicates !== expectedDup) {
    throw new Error(`delivered ${n} rows of ${rec.rows}, ${duplicates} duplicates of ${expectedDup}`);
  }

  // The tap intake's dedupe: one RecentRows per stream.
  const times = kept.map((r) => r.time + shiftNs);
  t0 = cpuMs();
  let seen = 0;
  for (let i = 0; i < n; i++) {
    const row = kept[i]!;
    const body = row.columns["req_body"] as Uint8Array;
    let list = recent.get(row.query);
    if (!list) recent.set(row.query, list = []);
    const s = streamIndex(body);
    const r = list[s] ??= new RecentRows();
    // With the payload's hash the row carries, as the intake takes it (the stream computed it with the row's).
    if (r.seen(times[i]!, body, row.hashedPayload === body ? row.payloadHash : undefined)) seen++;
  }
  const dedupeMs = cpuMs() - t0;
  if (seen !== 0) throw new Error(`${seen} rows seen twice by the tap dedupe`);

  const digest = new RowDigest();
  for (let i = 0; i < n; i++) digest.add(kept[i]!);
  const us = (ms: number) => (ms * 1000) / n;
  return {
    rows: n,
    duplicates,
    decodeUs: us(decodeMs),
    streamUs: us(streamMs),
    dedupeUs: us(dedupeMs),
    digest: digest.hex,
  };
}

function rowsOf(b: Buffer): number {
  return decodeExecuteScriptResponse(b).batch?.numRows ?? 0;
}

/** Options of {@link pixieReadPath}. */
export interface ReadPathOptions {
  calls: number;
  ticks: number;
  rounds: number;
  overlap: number;
}

/** The read path's cost per row: the best of `rounds` rounds (the first warms the JIT). */
export async function pixieReadPath(opts: Partial<ReadPathOptions> = {}): Promise<ReadPathRound> {
  const o: ReadPathOptions = { calls: 1000, ticks: 100, rounds: 5, overlap: 3 };
  for (const [k, v] of Object.entries(opts)) if (v !== undefined) o[k as keyof ReadPathOptions] = v;
  setLogLevel("error");
  const rec = record(o.calls, o.ticks);
  let best: ReadPathRound | undefined;
  const recent = new Map<string, RecentRows[]>();
  for (let r = 0; r < o.rounds; r++) {
    const round = await readPathRound(
      rec,
      o.overlap,
      recent,
      BigInt(r) * (BigInt(o.ticks) * 20_000_000n + 1n),
    );
    if (best && round.digest !== best.digest) throw new Error("rounds delivered different rows");
    const total = (x: ReadPathRound) => x.streamUs + x.dedupeUs;
    if (!best || total(round) < total(best)) best = round;
  }
  return best!;
}

/** One line. */
export function printReadPath(r: ReadPathRound): void {
  const f = (v: number) => v.toFixed(2);
  const total = r.streamUs + r.dedupeUs;
  console.log(
    `  ${r.rows.toLocaleString("en-US")} rows (+${r.duplicates.toLocaleString("en-US")} re-run duplicates ` +
      `dropped): decode ${f(r.decodeUs)} µs/row, decode + stream + hand-off ${f(r.streamUs)} µs/row, tap ` +
      `dedupe ${f(r.dedupeUs)} µs/row; read path ${f(total)} µs/row = ${
        Math.round(1e6 / total).toLocaleString("en-US")
      } rows per CPU s (150,000 rows/s of 1,000 calls: ${f(total * 0.15)} cores); digest ${r.digest}`,
  );
}

if (import.meta.main) {
  const args = Deno.args;
  const get = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? Number(args[i + 1]) : undefined;
  };
  console.log(
    "Pixie read path (bench/pixie_read_path.ts: recorded responses, decode to tap dedupe, no gRPC)",
  );
  printReadPath(
    await pixieReadPath({
      calls: get("--calls"),
      ticks: get("--ticks"),
      rounds: get("--rounds"),
      overlap: get("--overlap"),
    }),
  );
}
