/**
 * Synthetic concurrent calls served live by the fake Vizier (the lenient `onExecute` path), for the live-load
 * bench and the overload test: every call has a source tap (Twilio-style JSON, base64 μ-law 8 kHz, 20 ms per
 * message) and two target taps that carry the same messages later (a relay 160 ms, an ASR 800 ms), as three
 * Pixie tables streaming `time_`, `pod`, `req_body`.
 *
 * The audio is speech-like and different in every call (bursts of noise shaped like syllables and phrases, from
 * a per-call seed), so the detector finds onsets and signs them, and a signature matches its own call's taps
 * only: the matcher does the work real calls give it, without the cross-call matches one recording looped
 * through every call would make. Rows are generated as they are sent, so memory does not grow with the run.
 * @module
 */
import { type ColumnData, type ColumnInfo, DataType, type RowBatch } from "../../pixie/messages.ts";
import type { Row } from "../../pixie/row.ts";
import { displayNames } from "./capture_vizier.ts";
import type { ExecuteCall } from "./fake_vizier.ts";
import { rng } from "./rng.ts";

/** Audio of one frame (20 ms), ns; a message carries `framesPerMessage` of them. */
export const FRAME_NS = 20_000_000n;
/** How much later each target tap carries the source's audio, ms (a relay, an ASR). */
export const TAP_DELAY_MS: Readonly<Record<string, number>> = { source: 0, relay: 160, asr: 800 };
const RING = 64; // ticks kept: > the largest delay at 20 ms messages

/** The config of a sensor reading the three tables from a standalone PEM (`pixie.direct_addr`). */
export function liveCallsConfig(opts: {
  pixieAddr: string;
  metricsListen: string;
  node?: string;
  maxStreams?: number;
  logLevel?: string;
}): string {
  const tap = (port: number, indent: string) =>
    [
      `${indent}df = px.DataFrame(table='http_events', start_time='-30s')`,
      `${indent}df = df[df.local_port == ${port}]`,
    ].join("\n");
  const audio = `{ envelope: json, path: media.payload, encoding: base64, codec: mulaw, sample_rate: 8000 }`;
  return `node: ${opts.node ?? "live-node"}
log_level: ${opts.logLevel ?? "info"}
pixie:
  direct_addr: ${opts.pixieAddr}
metrics:
  listen: ${opts.metricsListen}
engine:
  max_streams: ${opts.maxStreams ?? 4000}
measurements:
  - name: live
    signature_rules:
      stream_filter: |
${tap(8001, "        ")}
      columns: { payload: req_body }
      stream_key: [pod, "$.streamSid"]
      audio: ${audio}
    match_rules:
      - stage: relay
        stream_filter: |
${tap(8002, "          ")}
        columns: { payload: req_body }
        stream_key: [pod, "$.streamSid"]
        audio: ${audio}
      - stage: asr
        after: relay
        stream_filter: |
${tap(8003, "          ")}
        columns: { payload: req_body }
        stream_key: [pod, "$.streamSid"]
        audio: ${audio}
`;
}

/** μ-law encoding of every 16-bit sample (G.711). */
const MULAW = (() => {
  const t = new Uint8Array(65536);
  for (let i = 0; i < 65536; i++) {
    let s = i - 32768;
    const sign = s < 0 ? 0x80 : 0;
    if (s < 0) s = -s;
    s = Math.min(s, 32635) + 0x84;
    let exp = 7;
    for (let mask = 0x4000; (s & mask) === 0 && exp > 0; mask >>= 1) exp--;
    const mant = (s >> (exp + 3)) & 0x0f;
    t[i] = ~(sign | (exp << 4) | mant) & 0xff;
  }
  return t;
})();

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

function base64(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 3) {
    const n = (b[i]! << 16) | ((b[i + 1] ?? 0) << 8) | (b[i + 2] ?? 0);
    s += B64[(n >> 18) & 63]! + B64[(n >> 12) & 63]! +
      (i + 1 < b.length ? B64[(n >> 6) & 63]! : "=") + (i + 2 < b.length ? B64[n & 63]! : "=");
  }
  return s;
}

/** Distinct 20 ms frames of noise at a few levels and colours; calls are random sequences of them. */
const BANK_LEVELS = 8;
const BANK_PER_LEVEL = 512;

/** μ-law frames: `[level][i]`; level 0 is a line's faint noise floor (a pause), 1.. louder. */
function frameBank(seed: number): Uint8Array[][] {
  const rnd = rng(seed * 2654435761);
  const bank: Uint8Array[][] = [];
  for (let level = 0; level < BANK_LEVELS; level++) {
    const list: Uint8Array[] = [];
    const amp = level === 0 ? 20 : 1500 * 1.4 ** level;
    for (let i = 0; i < BANK_PER_LEVEL; i++) {
      const pole = 0.1 + rnd() * 0.85;
      const frame = new Uint8Array(160);
      let lp = 0;
      for (let k = 0; k < 160; k++) {
        lp += (1 - pole) * ((rnd() * 2 - 1) * amp - lp);
        const s = level === 0 ? (rnd() * 2 - 1) * amp : lp * 2;
        frame[k] = MULAW[Math.max(-32768, Math.min(32767, Math.round(s))) + 32768]!;
      }
      list.push(frame);
    }
    bank.push(list);
  }
  return bank;
}

/**
 * One call's voice: syllables (2–17 frames of one loudness) in phrases of 2–9, a short gap between syllables,
 * 0.5–2 s between phrases; each frame drawn at random from the bank (so no two calls share a second of audio).
 */
class CallVoice {
  readonly #rnd: () => number;
  #left = 0; // frames left in the current segment
  #level = 0; // 0 = pause
  #syllables = 0; // left in the phrase

  constructor(seed: number) {
    this.#rnd = rng(seed * 2654435761);
  }

  #segment(): void {
    const r = this.#rnd;
    if (this.#level > 0) {
      this.#level = 0;
      this.#left = this.#syllables > 0 ? 2 + Math.floor(r() * 8) : 25 + Math.floor(r() * 75);
      return;
    }
    if (this.#syllables <= 0) this.#syllables = 2 + Math.floor(r() * 8);
    this.#syllables--;
    this.#level = 1 + Math.floor(r() * (BANK_LEVELS - 1));
    this.#left = 2 + Math.floor(r() * 16);
  }

  /** The index of the next 20 ms frame in the bank: `[level, i]`. */
  frame(): [number, number] {
    if (this.#left <= 0) this.#segment();
    this.#left--;
    return [this.#level, Math.floor(this.#rnd() * BANK_PER_LEVEL)];
  }
}

const te = new TextEncoder();

/** The messages of up to `maxCalls` calls, tick by tick; each target tap repeats the source's message later. */
export class SyntheticCalls {
  readonly maxCalls: number;
  /** 20 ms frames per message (1: Twilio's 20 ms). */
  readonly framesPerMessage: number;
  /** Event time of one tick (one message per tap and call), ns. */
  readonly tickNs: bigint;
  readonly #delayTicks: Record<string, number> = {};
  readonly #bank: Uint8Array[][];
  /** The bank's frames in base64, for 20 ms messages (most of the cost of a message otherwise). */
  readonly #bank64: string[][];
  readonly #audio: Uint8Array;
  readonly #voices: CallVoice[] = [];
  readonly #prefix: string[] = [];
  /** The source message of each call for the last {@link RING} ticks. */
  readonly #ring: Uint8Array[][] = [];
  #tick = -1;

  /** `seed` draws the frames and every call's voice. */
  constructor(maxCalls: number, seed = 1, framesPerMessage = 1) {
    this.maxCalls = maxCalls;
    this.framesPerMessage = framesPerMessage;
    this.tickNs = FRAME_NS * BigInt(framesPerMessage);
    for (const [tap, ms] of Object.entries(TAP_DELAY_MS)) {
      this.#delayTicks[tap] = Math.min(RING - 1, Math.round(ms / (20 * framesPerMessage)));
    }
    this.#bank = frameBank(seed);
    this.#bank64 = this.#bank.map((l) => l.map(base64));
    this.#audio = new Uint8Array(160 * framesPerMessage);
    for (let c = 0; c < maxCalls; c++) {
      this.#voices.push(new CallVoice(seed * 100_003 + c + 1));
      this.#prefix.push(
        `{"event":"media","streamSid":"MZ${String(c).padStart(6, "0")}","media":{"payload":"`,
      );
      this.#ring.push(new Array<Uint8Array>(RING));
    }
  }

  /**
   * Advances to tick `tick` (consecutive), generating the source messages of calls `0..calls-1` (the others stay
   * silent: a call that is not running sends nothing).
   */
  advance(tick: number, calls: number): void {
    if (tick !== this.#tick + 1) throw new RangeError(`tick ${tick} after ${this.#tick}`);
    this.#tick = tick;
    for (let c = 0; c < Math.min(calls, this.maxCalls); c++) {
      let audio: string;
      if (this.framesPerMessage === 1) {
        const [level, i] = this.#voices[c]!.frame();
        audio = this.#bank64[level]![i]!;
      } else {
        for (let f = 0; f < this.framesPerMessage; f++) {
          const [level, i] = this.#voices[c]!.frame();
          this.#audio.set(this.#bank[level]![i]!, f * 160);
        }
        audio = base64(this.#audio);
      }
      this.#ring[c]![tick % RING] = te.encode(this.#prefix[c]! + audio + '"}}');
    }
  }

  /** The message `tap` carries at the current tick for call `c`, or undefined (not started that long ago). */
  message(tap: string, c: number): Uint8Array | undefined {
    const t = this.#tick - (this.#delayTicks[tap] ?? 0);
    return t < 0 ? undefined : this.#ring[c]![t % RING];
  }
}

/** What the fake's producer did; read while it runs. */
export interface ServeStats {
  /** Ticks sent. */
  ticks: number;
  /** Rows sent. */
  rows: number;
  /** Event time of the last tick sent, ns. */
  lastEventNs: bigint;
  /** Wall ms when the last tick was sent; the lag is how far behind its pace the producer is, ms. */
  lagMs: number;
  /** The largest lag seen, ms. */
  maxLagMs: number;
  /**
   * Rows not sent: the client was more than {@link ServePlan.maxBacklogNs} behind, or re-ran the query from a later
   * `time_` than the next tick's.
   */
  skipped: number;
}

/** How the producer runs; fields may be changed while it runs (e.g. the number of calls). */
export interface ServePlan {
  /** Calls sending now (≤ the generator's maxCalls). */
  calls: number;
  /** Event time of tick 0, ns. */
  startNs: bigint;
  /** Wall ms per tick: 20 is real time; 0 sends as fast as the client reads (event time is then kept ≤ now). */
  paceMs: number;
  /**
   * Event time a push carries, ms, as Stirling pushes a table (see {@link STIRLING_PUSH_MS}): the ticks of each
   * `pushMs` are sent together once the last of them is due, each table's rows in time order (every call's
   * messages of the push interleaved, as Stirling sorts a push by time), in batches of up to {@link batchRows} rows
   * and {@link batchBytes} bytes. Absent or 0: each tick is sent on its own when due (one row per call and table).
   */
  pushMs?: number;
  /** Rows per batch at most (Pixie sends a table's rows in batches). */
  batchRows: number;
  /** Bytes of cells per batch at most (see {@link PIXIE_BATCH_BYTES}); default no bound. */
  batchBytes?: number;
  /** Stop after this many ticks (default: until the client cancels or `stop` is set). */
  ticks?: number;
  /** Set to end the producer. */
  stop?: boolean;
  /**
   * The newest event time the client is known to have read, ns (e.g. from its metrics); with
   * {@link maxBacklogNs}, no tick is sent while the last one sent is further than that ahead of it (the next is
   * sent once the client has read up: the ones between are skipped, their rows counted in `skipped`). Deno's
   * node:http2 server reports no back-pressure (a write always succeeds and is queued in this process), so without
   * this a feeder ahead of a slow reader queues without bound (7.4 GB once), where Pixie keeps a bounded table.
   */
  readNs?: bigint;
  /** See {@link readNs}. */
  maxBacklogNs?: bigint;
}

/**
 * How much event time a Pixie push carries at these loads, ms. Stirling's socket tracer drains its perf buffers
 * and fills its tables every 200 ms (`SocketTraceConnector::kSamplingPeriod`, 100 ms before June 2021) and pushes a
 * table once a second or as soon as it holds over 1,024 records (stirling.cc `DataExceedsThreshold`): at a few
 * hundred calls (150 rows/s each, one http_events table), after every 200 ms transfer. A push's records are sorted
 * by time (DataTable::ConsumeRecords, up to the drain time), so every connection's messages of those 200 ms
 * interleave in it; the query sends a table's rows of a push as result batches of up to {@link PIXIE_BATCH_BYTES}.
 */
export const STIRLING_PUSH_MS = 200;

/**
 * Bytes of a result batch at most: Carnot's GRPCSinkNode splits a row batch over 0.9 × (1 MiB − 16 KiB)
 * (grpc_sink_node.h `kMaxBatchSize`, `kBatchSizeFactor`; strings counted by their bytes).
 */
export const PIXIE_BATCH_BYTES = Math.floor((1024 * 1024 - 16 * 1024) * 0.9);

const RELATION: ColumnInfo[] = [
  { name: "time_", type: DataType.TIME64NS },
  { name: "pod", type: DataType.STRING },
  { name: "req_body", type: DataType.STRING },
];
const PODS: Readonly<Record<string, Uint8Array>> = {
  source: te.encode("telephony-0"),
  relay: te.encode("media-relay-0"),
  asr: te.encode("asr-0"),
};

/**
 * Serves the calls on one ExecuteScript call, to every display name `<measurement>/<tap>` of the script, tick by
 * tick at the plan's pace (a producer held up by the client's flow control falls behind: `lagMs`).
 */
export async function serveCalls(
  call: ExecuteCall,
  gen: SyntheticCalls,
  plan: ServePlan,
  stats: ServeStats,
): Promise<void> {
  const tables: { id: string; tap: string }[] = [];
  for (const name of displayNames(call.request.queryStr)) {
    const tap = name.slice(name.indexOf("/") + 1);
    if (!(tap in TAP_DELAY_MS)) continue;
    const t = { id: `table-${tables.length}`, tap };
    tables.push(t);
    await call.meta(t.id, name, RELATION);
  }
  const t0 = performance.now();
  let first = stats.ticks; // a re-run query continues where the last call stopped
  const unsent = () => {
    for (const t of tables) {
      for (let c = 0; c < plan.calls; c++) if (gen.message(t.tap, c) !== undefined) stats.skipped++;
    }
  };
  // A re-run from a time_ (`start_time=<ns>)`) after the ticks sent so far skips to it, as Pixie does: the rows
  // before it are never sent (a sensor skipping ahead, actors/late_rows.ts).
  const from = /start_time=(\d+)\)/.exec(call.request.queryStr);
  if (from) {
    const fromNs = BigInt(from[1]!);
    while (
      plan.startNs + BigInt(first) * gen.tickNs < fromNs && (plan.ticks === undefined || first < plan.ticks)
    ) {
      gen.advance(first, plan.calls);
      unsent();
      stats.ticks = ++first;
    }
  }
  // Ticks per push: a push goes once its last tick is due, with the rows of all its ticks.
  const perPush = plan.pushMs ? Math.max(1, Math.round((plan.pushMs * 1e6) / Number(gen.tickNs))) : 1;
  const maxRows = plan.batchRows, maxBytes = plan.batchBytes ?? Infinity;
  const pending = tables.map(() => ({
    times: [] as bigint[],
    pods: [] as Uint8Array[],
    bodies: [] as Uint8Array[],
  }));
  const send = async (t: { id: string }, rows: (typeof pending)[number]) => {
    for (let from = 0; from < rows.bodies.length;) {
      let to = from, bytes = 0;
      while (to < rows.bodies.length && to - from < maxRows) {
        const size = 8 + rows.pods[to]!.length + rows.bodies[to]!.length;
        if (to > from && bytes + size > maxBytes) break;
        bytes += size;
        to++;
      }
      const cols: ColumnData[] = [
        { type: "time64ns", data: rows.times.slice(from, to) },
        { type: "string", data: rows.pods.slice(from, to) },
        { type: "string", data: rows.bodies.slice(from, to) },
      ];
      const b: RowBatch = { tableId: t.id, cols, numRows: to - from, eow: false, eos: false };
      stats.rows += to - from;
      await call.batch(b);
      // A turn of the event loop per batch of a push: writes queued back to back without one stalled the fake's
      // HTTP/2 server for seconds (a tick's few batches each get the tick's timer).
      if (perPush > 1) await new Promise((r) => setTimeout(r, 0));
      from = to;
    }
    rows.times = [];
    rows.pods = [];
    rows.bodies = [];
  };
  for (let tick = first; !call.isCancelled() && !plan.stop;) {
    if (plan.ticks !== undefined && tick >= plan.ticks) break;
    const n = plan.ticks === undefined ? perPush : Math.min(perPush, plan.ticks - tick);
    const last = tick + n - 1;
    const lastEventNs = plan.startNs + BigInt(last) * gen.tickNs;
    const due = t0 + (last - first) * plan.paceMs;
    // Flat out (paceMs 0), event time is still kept ≤ now: a live sensor distrusts rows from the future.
    const wait = plan.paceMs > 0 ? due - performance.now() : Number(lastEventNs / 1_000_000n) - Date.now();
    // A timer every push, even when late: writes that resolve at once never give the socket a turn otherwise.
    await new Promise((r) => setTimeout(r, Math.max(0, wait)));
    let sentNs: bigint | undefined;
    for (let k = tick; k <= last; k++) {
      const eventNs = plan.startNs + BigInt(k) * gen.tickNs;
      gen.advance(k, plan.calls);
      // The backlog is what was sent and not read yet. (Measured from this tick instead, a reader that once fell
      // further behind than the bound got nothing more, its lag grew, and it never caught up: a bench run
      // starved its sensor for good after 110 s. Pixie drops a slow reader's oldest rows, not its newest.)
      const lastSentNs = sentNs ?? stats.lastEventNs;
      if (
        plan.maxBacklogNs !== undefined && plan.readNs !== undefined && lastSentNs > 0n &&
        lastSentNs - plan.readNs > plan.maxBacklogNs
      ) {
        unsent();
        continue;
      }
      sentNs = eventNs;
      tables.forEach((t, i) => {
        const rows = pending[i]!;
        for (let c = 0; c < plan.calls; c++) {
          const m = gen.message(t.tap, c);
          if (m === undefined) continue;
          // Calls' messages of one tick are spread over the tick, as independent senders' are.
          rows.times.push(eventNs + (gen.tickNs * BigInt(c)) / BigInt(Math.max(1, plan.calls)));
          rows.pods.push(PODS[t.tap]!);
          rows.bodies.push(m);
        }
      });
    }
    for (let i = 0; i < tables.length; i++) await send(tables[i]!, pending[i]!);
    tick = last + 1;
    stats.ticks = tick;
    if (sentNs === undefined) continue;
    stats.lastEventNs = sentNs;
    // Paced: how long after its due time the push was on the wire (the client's flow control holds it back).
    if (plan.paceMs > 0) stats.lagMs = Math.max(0, performance.now() - due);
    stats.maxLagMs = Math.max(stats.maxLagMs, stats.lagMs);
  }
}

/** Fresh counters for {@link serveCalls}. */
export function newServeStats(): ServeStats {
  return { ticks: 0, rows: 0, lastEventNs: 0n, lagMs: 0, maxLagMs: 0, skipped: 0 };
}

/** The pod of each tap of {@link oneCallRows}. */
export const ONE_CALL_PODS: Readonly<Record<string, string>> = {
  source: "telephony-0",
  relay: "media-relay-0",
  asr: "asr-0",
};

/**
 * One synthetic call (voice `seed`) as Pixie rows of `node`: `ticks` 20 ms ticks from `startNs`, every tap's row of a
 * tick at the tick's time, taps in {@link TAP_DELAY_MS}'s order.
 */
export function oneCallRows(opts: { node: string; startNs: bigint; ticks: number; seed: number }): Row[] {
  const gen = new SyntheticCalls(1, opts.seed, 1);
  const rows: Row[] = [];
  for (let k = 0; k < opts.ticks; k++) {
    gen.advance(k, 1);
    const time = opts.startNs + BigInt(k) * 20_000_000n;
    for (const tap of Object.keys(TAP_DELAY_MS)) {
      const body = gen.message(tap, 0);
      if (body === undefined) continue;
      rows.push({
        query: `live/${tap}`,
        node: opts.node,
        time,
        columns: { time_: time, pod: new TextEncoder().encode(ONE_CALL_PODS[tap]), req_body: body.slice() },
      });
    }
  }
  return rows;
}
