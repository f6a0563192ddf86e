/**
 * A watchdog for a stream that can go quiet without failing: it calls `onQuiet` once when `ms` pass without a
 * {@link QuietTimer.touch}. One timer for the whole stream, not one per event (a timer set and cleared per Pixie
 * response cost more than the response's rows): a touch only moves the quiet start, and the timer, when it fires
 * early, waits for the rest of the silence. Monotonic time, as the timer's.
 * @module
 */

/** Calls `onQuiet` after `ms` without a touch (never with `ms` ≤ 0); see the module doc. */
export class QuietTimer {
  readonly #ms: number;
  readonly #onQuiet: () => void;
  #quietFrom = performance.now();
  #held = false;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** Starts watching at once. */
  constructor(ms: number, onQuiet: () => void) {
    this.#ms = ms;
    this.#onQuiet = onQuiet;
    if (ms > 0) this.#timer = setTimeout(this.#watch, ms);
  }

  /** Something arrived: the silence starts again now. */
  touch(): void {
    this.#quietFrom = performance.now();
  }

  /** While held (the consumer works on what arrived), no silence is counted. */
  hold(held: boolean): void {
    this.#held = held;
  }

  /** Stops watching. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #watch = (): void => {
    this.#timer = undefined;
    const left = this.#held ? this.#ms : this.#quietFrom + this.#ms - performance.now();
    if (left > 0) this.#timer = setTimeout(this.#watch, left);
    else this.#onQuiet();
  };
}
