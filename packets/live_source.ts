/**
 * The live packet row source: a {@link LiveCapture} on the node, read as pcap, turned into rows by a
 * {@link PacketSource}. It has the shape of the reader's row source (`run(emit, signal)`), so it runs under the
 * same supervision and mailbox as the Pixie source: when the capture dies, `run` rejects and the reader's
 * supervisor restarts it.
 *
 * Stopped with a `DrainStop` (util/drain_stop.ts: a live sensor's stop that finishes its streams in progress),
 * it hands on what it still holds before `run` resolves, as a capture file's end does: tcpdump runs on past the
 * kernel's block timeout (the kernel's last block of packets would be lost otherwise, see live_capture.ts), is
 * stopped, its pcap stream read to the end, and then the reorder windows are released, TCP holes given up as
 * counted gaps and messages completed where they can be ({@link PacketSource.finish}). tcpdump gets
 * {@link LivePacketSourceOptions.drainMs} at most; handing the rows on then takes what the reader takes. Any other
 * abort stops it at once, handing on nothing more.
 * @module
 */
import { InputMeter } from "../util/input_meter.ts";
import type { Row } from "../pixie/row.ts";
import {
  CaptureStartError,
  KERNEL_BLOCK_TIMEOUT_MS,
  LiveCapture,
  type LiveCaptureOptions,
} from "./live_capture.ts";
import { PacketSource } from "./packet_source.ts";
import { PcapReader } from "./pcap.ts";
import type { PacketTap, PodResolver } from "./taps.ts";
import { logger } from "../util/log.ts";
import { drainRequested } from "../util/drain_stop.ts";

const log = logger("capture");

/** Counters a live packet source reports; every method is optional. */
export interface PacketMetrics {
  /** Frames read from the capture and their wire bytes since the last call. */
  frames?(n: number, bytes: number): void;
  /** Cumulative kernel and interface drops, as the capture last reported them. */
  kernelDrops?(droppedByKernel: number, droppedByInterface: number): void;
  /** Packets or messages skipped since the last call, by reason (not_rtp, rtcp, tcp_gap, ...). */
  skipped?(reason: string, n: number): void;
}

/** Options of {@link LivePacketSource}. */
export interface LivePacketSourceOptions {
  capture: LiveCaptureOptions;
  taps: readonly PacketTap[];
  node: string;
  pods?: PodResolver;
  reorderMs?: number;
  metrics?: PacketMetrics;
  /** How often counters are reported and held packets released when traffic pauses. */
  reportEveryMs?: number;
  /**
   * The most a drained stop (a `DrainStop`) waits for tcpdump, ms (default {@link DRAIN_MS}): it runs on for
   * {@link DRAIN_HOLD_MS} (less if this is less), and one that has not ended by this bound is killed and what was
   * read is handed on.
   */
  drainMs?: number;
}

/**
 * How long tcpdump runs on after a drained stop before it is signalled: the kernel's block timeout, and time for
 * tcpdump to read and write the block it hands over then.
 */
export const DRAIN_HOLD_MS = KERNEL_BLOCK_TIMEOUT_MS + 500;
/** Default bound of a drained stop's wait for tcpdump, ms (see {@link LivePacketSourceOptions.drainMs}). */
export const DRAIN_MS = 3_000;

/** Reads this node's packets and emits rows for the packet taps. */
export class LivePacketSource {
  readonly #opts: LivePacketSourceOptions;
  /**
   * How much of the time the reading found tcpdump's packets waiting for it: the late-row rules' saturation of a
   * sensor that reads packets (its parsing runs outside the actors, and the thread's own demand cannot be read
   * under the run task's permissions: actors/thread_demand.ts).
   */
  readonly #meter = new InputMeter();
  /** The current capture's source (for tests and `check`); replaced on every (re)start. */
  source: PacketSource | undefined;

  /** Creates the source; {@link run} starts capturing. */
  constructor(opts: LivePacketSourceOptions) {
    this.#opts = opts;
  }

  /** The fraction (0..1) of the last second or so the capture's packets were waiting to be read (input_meter.ts). */
  inputBusy(): number {
    return this.#meter.busyFraction();
  }

  /** Pod metadata changed: decide again which taps each stream belongs to. */
  invalidatePods(): void {
    this.source?.builder.invalidate();
  }

  /**
   * Captures until `signal` aborts (resolves) or the capture fails (rejects). Aborted with a `DrainStop`
   * (util/drain_stop.ts), it first hands on through `emit` everything the capture still held (see the module doc).
   */
  async run(emit: (row: Row) => Promise<void>, signal: AbortSignal): Promise<void> {
    const o = this.#opts;
    // A stop while tcpdump starts ends it (nothing is held yet); after that, the stop below decides how.
    const starting = new AbortController();
    const stopStart = () => starting.abort();
    signal.addEventListener("abort", stopStart, { once: true });
    if (signal.aborted) starting.abort();
    let cap: LiveCapture;
    try {
      cap = await LiveCapture.start(o.capture, starting.signal);
    } finally {
      signal.removeEventListener("abort", stopStart);
    }
    const src = new PacketSource({ taps: o.taps, node: o.node, pods: o.pods, reorderMs: o.reorderMs });
    this.source = src;
    const reported = { frames: 0, bytes: 0, skips: new Map<string, number>() };
    const report = () => {
      const m = o.metrics;
      if (!m) return;
      m.frames?.(src.stats.frames - reported.frames, src.stats.bytes - reported.bytes);
      reported.frames = src.stats.frames;
      reported.bytes = src.stats.bytes;
      m.kernelDrops?.(cap.stats.droppedByKernel, cap.stats.droppedByInterface);
      for (const [reason, n] of Object.entries(src.skipReport())) {
        const d = n - (reported.skips.get(reason) ?? 0);
        if (d > 0) m.skipped?.(reason, d);
        reported.skips.set(reason, n);
      }
    };
    // Between packets, capture time still advances: held RTP packets and TCP holes are given up on time. The
    // kernel hands packets over in blocks, up to a block timeout after their capture, so a pause is only believed
    // once it is longer than that: until then packets captured meanwhile may still be on their way, and a gap they
    // fill must not be given up early.
    let lastFrameNs = 0n;
    let lastFrameWall = performance.now();
    // Handing a frame's rows on can wait (the reader's mailbox full): that is no quiet capture, as the frames
    // after it are already read or wait in tcpdump's pipe. The pause counts from when the sensor is done with one.
    let busy = false;
    // One chain of emits, so rows released by the timer and rows of new frames keep their order.
    let chain = Promise.resolve();
    const send = (rows: Row[]) => {
      if (rows.length === 0) return chain;
      chain = chain.then(async () => {
        for (const r of rows) await emit(r);
      });
      return chain;
    };
    const timer = setInterval(() => {
      report();
      const pausedMs = performance.now() - lastFrameWall - KERNEL_BLOCK_TIMEOUT_MS;
      if (!busy && lastFrameNs > 0n && pausedMs > 0) {
        void send(src.tick(lastFrameNs + BigInt(Math.round(pausedMs * 1e6)))).catch(() => {});
      }
    }, o.reportEveryMs ?? 1000);
    /** A drained stop: what tcpdump still writes is read to its end, then everything held is handed on. */
    let drain: { frames: number; rows: number } | undefined;
    const stop = () => {
      if (!drainRequested(signal)) return void cap.close();
      drain = { frames: src.stats.frames, rows: src.stats.rows };
      const withinMs = o.drainMs ?? DRAIN_MS;
      cap.drain(Math.min(DRAIN_HOLD_MS, withinMs), withinMs);
    };
    signal.addEventListener("abort", stop, { once: true });
    if (signal.aborted) stop();
    const reader = new PcapReader(cap.pcap);
    const frames = reader[Symbol.asyncIterator]();
    const meter = this.#meter;
    try {
      for (;;) {
        // Waiting for the next frame is the reader's idle time; parsing it and handing its rows on (the reader's
        // mailbox full is the sensor behind too) its work.
        meter.waiting();
        const next = await frames.next();
        meter.working();
        if (next.done) break;
        const frame = next.value;
        lastFrameNs = frame.timeNs;
        busy = true;
        await send(src.push(frame));
        busy = false;
        lastFrameWall = performance.now();
        if (signal.aborted && drain === undefined) break;
      }
      meter.waiting();
      await chain;
      if (drain !== undefined) {
        // The capture's end as far as this sensor goes: what the reorder windows and reassembly hold is complete.
        await send(src.finish());
        log.info("live capture drained at its stop", {
          frames_after_stop: src.stats.frames - drain.frames,
          rows_after_stop: src.stats.rows - drain.rows,
        });
        return;
      }
      if (signal.aborted) return;
      // The capture ended, or its pcap stream became unreadable while tcpdump runs on (the reader gave up on it):
      // what the reorder window and reassembly still hold is complete as far as this capture goes.
      await send(src.finish());
      await cap.close();
      const end = await cap.ended();
      // The reader gives up on a live stream only after a stretch with no plausible record (resync_failed).
      const unreadable = (reader.stats.problemCounts.resync_failed ?? 0) > 0;
      const why = reader.stats.problems.findLast((p) => p.reason === "resync_failed");
      throw new CaptureStartError(
        unreadable
          ? `live capture: tcpdump's pcap stream is unreadable (${
            why ? `from byte ${why.offset}: ${why.detail}` : "no plausible record"
          }); tcpdump stopped`
          : end.hung
          ? `live capture: tcpdump answered neither packets nor statistics requests; tcpdump stopped`
          : `live capture ended (tcpdump exit ${end.code}): ${
            end.stderr.trim().split("\n").slice(-2).join("; ")
          }`,
      );
    } finally {
      clearInterval(timer);
      signal.removeEventListener("abort", stop);
      meter.waiting();
      // As a for-await loop left early would: the reader lets go of the pcap stream.
      await frames.return?.(undefined).catch(() => {});
      report();
      await cap.close();
      log.info("live capture stopped", { frames: src.stats.frames, rows: src.stats.rows });
    }
  }
}
