/**
 * The clock the actor runtime uses for timeouts, backoff and deadlines. Event time lives in the data (Pixie
 * `time_`, bigint ns); this clock is only the process's own sense of elapsed time, so tests can swap in a
 * {@link VirtualClock} and run backoff, restart windows, ask timeouts and drain deadlines without waiting.
 * @module
 */

/** An opaque timer id returned by {@link Clock.setTimer}. */
export type TimerHandle = number;

/** Milliseconds and one-shot timers. */
export interface Clock {
  /** Current time in ms. Monotonic; the origin is unspecified (only differences mean anything). */
  now(): number;
  /** Calls `fn` once after `ms` (clamped to >= 0). */
  setTimer(ms: number, fn: () => void): TimerHandle;
  /** Cancels a timer; unknown or already fired handles are ignored. */
  clearTimer(handle: TimerHandle): void;
  /** Resolves after `ms`; rejects with `signal.reason` if the signal aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

function sleepOn(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clock.clearTimer(handle);
      reject(signal?.reason);
    };
    const handle = clock.setTimer(ms, () => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    });
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function clampDelay(ms: number): number {
  return Number.isFinite(ms) && ms > 0 ? ms : 0;
}

/** The real clock: monotonic `performance.now()` shifted to the epoch, and the host's timers. */
export class SystemClock implements Clock {
  /** @inheritdoc */
  now(): number {
    return performance.timeOrigin + performance.now();
  }
  /** @inheritdoc */
  setTimer(ms: number, fn: () => void): TimerHandle {
    // Number(): Deno returns a number already; Node's Timeout object converts to its numeric id.
    return Number(setTimeout(fn, clampDelay(ms)));
  }
  /** @inheritdoc */
  clearTimer(handle: TimerHandle): void {
    clearTimeout(handle);
  }
  /** @inheritdoc */
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepOn(this, ms, signal);
  }
}

interface VirtualTimer {
  readonly id: number;
  readonly due: number;
  readonly fn: () => void;
}

/**
 * Resolves after one real macrotask, by which point every queued microtask (any depth of promise chain) has
 * run. A MessageChannel is used because nested `setTimeout(0)` is clamped to milliseconds in Deno.
 */
function macrotask(): Promise<void> {
  return new Promise<void>((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

/**
 * A clock that only moves when told to. Timers fire in due order (ties in creation order) and the microtask
 * queue settles after each one, so `await clock.advance(1000)` runs everything the second would have caused.
 */
export class VirtualClock implements Clock {
  #now: number;
  #seq = 0;
  // Binary min-heap on (due, id); cancelled ids are skipped lazily when they reach the top.
  #heap: VirtualTimer[] = [];
  #live = new Set<number>();

  /** Starts at `startMs` (default 0). */
  constructor(startMs = 0) {
    this.#now = startMs;
  }

  /** @inheritdoc */
  now(): number {
    return this.#now;
  }

  /** @inheritdoc */
  setTimer(ms: number, fn: () => void): TimerHandle {
    const id = ++this.#seq;
    this.#push({ id, due: this.#now + clampDelay(ms), fn });
    this.#live.add(id);
    return id;
  }

  /** @inheritdoc */
  clearTimer(handle: TimerHandle): void {
    this.#live.delete(handle);
  }

  /** @inheritdoc */
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepOn(this, ms, signal);
  }

  /** Number of timers still waiting to fire. */
  get pendingTimers(): number {
    return this.#live.size;
  }

  /** Lets every queued microtask run without moving time. */
  async settle(): Promise<void> {
    await macrotask();
  }

  /**
   * Moves time forward by `ms`, firing every timer due on the way at its own due time, settling microtasks
   * after each. Timers created by those callbacks fire too if they fall within the span.
   */
  async advance(ms: number): Promise<void> {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`advance: ms must be >= 0, got ${ms}`);
    const target = this.#now + ms;
    await this.settle();
    for (;;) {
      const timer = this.#popDue(target);
      if (!timer) break;
      this.#now = Math.max(this.#now, timer.due);
      timer.fn();
      await this.settle();
    }
    this.#now = target;
  }

  /**
   * Fires every timer, including ones created along the way, jumping time to each due time. Throws after
   * `maxTimers` firings, which means something reschedules itself forever.
   */
  async runUntilIdle(maxTimers = 100_000): Promise<void> {
    await this.settle();
    for (let fired = 0;; fired++) {
      const timer = this.#popDue(Infinity);
      if (!timer) return;
      if (fired >= maxTimers) {
        throw new Error(
          `runUntilIdle: more than ${maxTimers} timers fired; a timer reschedules itself forever`,
        );
      }
      this.#now = Math.max(this.#now, timer.due);
      timer.fn();
      await this.settle();
    }
  }

  #popDue(limit: number): VirtualTimer | undefined {
    for (;;) {
      const top = this.#heap[0];
      if (!top) return undefined;
      if (!this.#live.has(top.id)) {
        this.#pop();
        continue;
      }
      if (top.due > limit) return undefined;
      this.#pop();
      this.#live.delete(top.id);
      return top;
    }
  }

  #less(a: VirtualTimer, b: VirtualTimer): boolean {
    return a.due < b.due || (a.due === b.due && a.id < b.id);
  }

  #push(t: VirtualTimer): void {
    const h = this.#heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = h[p]!;
      if (!this.#less(t, parent)) break;
      h[i] = parent;
      i = p;
    }
    h[i] = t;
  }

  #pop(): void {
    const h = this.#heap;
    const last = h.pop();
    if (last === undefined || h.length === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && this.#less(h[r]!, h[l]!) ? r : l;
      if (!this.#less(h[c]!, last)) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
  }
}
