/**
 * How much of the recent wall time a reader of a live stream found its input waiting for it: the time it spent
 * handling responses, as opposed to waiting for the next one to arrive, decayed over about a second. Near 1 when
 * the reader never catches up with what the peer has sent (it is the bottleneck: actors/late_rows.ts may shed);
 * low when it waits for input (the peer is slow, or there is little to read: rows that arrive late then are the
 * peer's delay, and shedding them would not help).
 *
 * Why not the thread's demand for CPU alone (actors/thread_demand.ts): on an oversubscribed host the sensor and
 * its peer are both starved; the sensor, runnable most of the time, looked saturated while it waited for a feeder
 * that was itself minutes behind, and it shed nearly every row without catching up with anything
 * (bench/live_load.ts --calls 1000 --pod at load 7-12: 11 matches in 143 s where not shedding found 553).
 *
 * Pixie's query stream (pixie/stream.ts) and the live packet capture's pcap stream from tcpdump
 * (packets/live_source.ts) each keep one.
 * @module
 */

/** Time constant of the decay, ms. */
const TAU_MS = 1000;

/** A decayed busy fraction driven by wait/run transitions. */
export class InputMeter {
  readonly #nowMs: () => number;
  #busy = 0;
  #at: number;
  #waiting = true;

  /** Starts idle (waiting for input). */
  constructor(nowMs: () => number = () => performance.now()) {
    this.#nowMs = nowMs;
    this.#at = nowMs();
  }

  #note(now: number): void {
    const dt = now - this.#at;
    if (dt <= 0) return;
    const keep = Math.exp(-dt / TAU_MS);
    this.#busy = this.#busy * keep + (this.#waiting ? 0 : 1 - keep);
    this.#at = now;
  }

  /** The reader starts waiting for the next response (or no call runs). */
  waiting(): void {
    if (this.#waiting) return;
    this.#note(this.#nowMs());
    this.#waiting = true;
  }

  /** A response is there: the reader works on it. */
  working(): void {
    if (!this.#waiting) return;
    this.#note(this.#nowMs());
    this.#waiting = false;
  }

  /** The fraction (0..1) of the last second or so the reader was not waiting for input. */
  busyFraction(): number {
    this.#note(this.#nowMs());
    return this.#busy;
  }
}
