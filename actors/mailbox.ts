/**
 * Bounded mailboxes. A mailbox is a ring buffer (no `Array.shift`, no per-message allocation beyond the
 * message itself) with one of three overflow policies; senders waiting under back-pressure queue in FIFO
 * order and are admitted in that order as the actor takes messages, so a burst cannot starve an earlier sender.
 *
 * The bound is on the messages' weight, one each unless the mailbox is given a {@link Weigh}: an actor fed rows in
 * batches (one message per batch, not per row) bounds and drops rows, whatever the batches' sizes.
 * @module
 */

/** What happens when a message arrives at a full mailbox. */
export type OverflowPolicy = "backpressure" | "drop-oldest" | "drop-newest";

/** Every overflow policy, for validation and config schemas. */
export const OVERFLOW_POLICIES: readonly OverflowPolicy[] = ["backpressure", "drop-oldest", "drop-newest"];

/**
 * Outcome of {@link Mailbox.offer}: `enqueued` (possibly after evicting the oldest message under
 * drop-oldest), `dropped` (the offered message was discarded under drop-newest), `full` (back-pressure: not
 * enqueued, the caller may wait with {@link Mailbox.put}).
 */
export type OfferResult = "enqueued" | "dropped" | "full";

/** An unbounded FIFO on a power-of-two ring that grows by doubling; O(1) push and shift. */
export class Queue<T> {
  #buf: (T | undefined)[];
  #head = 0;
  #size = 0;
  #mask: number;

  /** `initial` is rounded up to a power of two. */
  constructor(initial = 16) {
    let cap = 1;
    while (cap < Math.max(1, initial)) cap <<= 1;
    this.#buf = new Array<T | undefined>(cap);
    this.#mask = cap - 1;
  }

  /** Number of items held. */
  get size(): number {
    return this.#size;
  }

  /** Appends at the tail. */
  push(item: T): void {
    if (this.#size === this.#buf.length) this.#grow();
    this.#buf[(this.#head + this.#size) & this.#mask] = item;
    this.#size++;
  }

  /** Removes and returns the head. The caller checks `size` first (items may themselves be `undefined`). */
  shift(): T {
    if (this.#size === 0) throw new RangeError("shift on an empty queue");
    const item = this.#buf[this.#head] as T;
    // Release the reference so a drained queue does not pin large messages (audio rows) in memory.
    this.#buf[this.#head] = undefined;
    this.#head = (this.#head + 1) & this.#mask;
    this.#size--;
    return item;
  }

  /** The head without removing it. */
  peek(): T | undefined {
    return this.#size === 0 ? undefined : this.#buf[this.#head];
  }

  /** Removes the first occurrence of `item` (O(size), keeping the others' order); false when absent. */
  remove(item: T): boolean {
    for (let i = 0; i < this.#size; i++) {
      if (this.#buf[(this.#head + i) & this.#mask] !== item) continue;
      for (let j = i; j < this.#size - 1; j++) {
        this.#buf[(this.#head + j) & this.#mask] = this.#buf[(this.#head + j + 1) & this.#mask];
      }
      this.#buf[(this.#head + this.#size - 1) & this.#mask] = undefined;
      this.#size--;
      return true;
    }
    return false;
  }

  /** Removes everything, calling `each` on every item in order. */
  drain(each: (item: T) => void): void {
    while (this.#size > 0) each(this.shift());
  }

  #grow(): void {
    const old = this.#buf;
    const next = new Array<T | undefined>(old.length * 2);
    for (let i = 0; i < this.#size; i++) next[i] = old[(this.#head + i) & this.#mask];
    this.#buf = next;
    this.#head = 0;
    this.#mask = next.length - 1;
  }
}

interface Waiter<T> {
  readonly msg: T;
  readonly resolve: (enqueued: boolean) => void;
}

interface RoomWaiter {
  readonly weight: number;
  readonly resolve: () => void;
}

/** Called for every message a mailbox discards: evicted (drop-oldest) or cleared. */
export type DropHandler<T> = (msg: T) => void;

/**
 * A message's weight against the mailbox's capacity (e.g. the rows of a batch): an integer >= 1, the same for as long
 * as the message is queued (it is asked again when the message leaves).
 */
export type Weigh<T> = (msg: T) => number;

const ONE = (): number => 1;

const TRUE: Promise<boolean> = Promise.resolve(true);
const FALSE: Promise<boolean> = Promise.resolve(false);

/**
 * A bounded FIFO of messages for one actor. The capacity bounds the queued messages' total weight; a message heavier
 * than the whole capacity still gets in when the mailbox is empty (alone), so no sender waits forever.
 */
export class Mailbox<T> {
  /** Largest total weight held (waiting senders are not counted). */
  readonly capacity: number;
  /** The overflow policy. */
  readonly policy: OverflowPolicy;
  #items: Queue<T>;
  #waiters = new Queue<Waiter<T>>(4);
  #onEvict: DropHandler<T>;
  readonly #weigh: Weigh<T>;
  #load = 0;
  /** Waiting for room without a message ({@link room}), in order: the weight each waits to fit. */
  #roomWaiters = new Queue<RoomWaiter>(4);

  /**
   * `onEvict` sees each message pushed out by drop-oldest (to count it and fail a pending ask); `weigh` gives each
   * message's weight (default: 1 each, the capacity counts messages).
   */
  constructor(
    capacity: number,
    policy: OverflowPolicy,
    onEvict: DropHandler<T> = () => {},
    weigh?: Weigh<T>,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`mailbox capacity must be an integer >= 1, got ${capacity}`);
    }
    if (!OVERFLOW_POLICIES.includes(policy)) throw new RangeError(`unknown overflow policy "${policy}"`);
    this.capacity = capacity;
    this.policy = policy;
    // Start small: most mailboxes stay nearly empty, and the ring grows to `capacity` only if used.
    this.#items = new Queue<T>(Math.min(capacity, 64));
    this.#onEvict = onEvict;
    this.#weigh = weigh ?? ONE;
  }

  /** Messages held. */
  get size(): number {
    return this.#items.size;
  }

  /** Total weight of the messages held (their number without a {@link Weigh}). */
  get load(): number {
    return this.#load;
  }

  /** Senders waiting for room under back-pressure. */
  get waiting(): number {
    return this.#waiters.size;
  }

  /** Producers waiting for room without a message ({@link room}). */
  get waitingForRoom(): number {
    return this.#roomWaiters.size;
  }

  /** The weight of `msg` (1 without a {@link Weigh}). */
  weightOf(msg: T): number {
    return this.#weigh(msg);
  }

  /** Non-blocking enqueue under the mailbox's policy. */
  offer(msg: T): OfferResult {
    const w = this.#weigh(msg);
    // Waiting senders go first: a newcomer must not overtake them even if room just freed up.
    if (this.#waiters.size === 0 && this.#fits(w)) {
      this.#push(msg, w);
      return "enqueued";
    }
    switch (this.policy) {
      case "backpressure":
        return "full";
      case "drop-newest":
        return "dropped";
      case "drop-oldest":
        // The oldest messages make room, as many as it takes (with weights, one batch may push out several).
        while (!this.#fits(w)) {
          const old = this.#items.shift();
          this.#load -= this.#weigh(old);
          this.#onEvict(old);
        }
        this.#push(msg, w);
        return "enqueued";
    }
  }

  /**
   * Enqueues, waiting for room under back-pressure. Resolves `true` once the message is in the mailbox,
   * `false` if it was dropped (drop-newest, or the mailbox was cleared while the sender waited).
   */
  put(msg: T): Promise<boolean> {
    const r = this.offer(msg);
    if (r === "enqueued") return TRUE;
    if (r === "dropped") return FALSE;
    return this.park(msg);
  }

  /**
   * Queues a sender behind the others waiting for room, after {@link offer} returned `full`. Resolves like
   * {@link put}.
   */
  park(msg: T): Promise<boolean> {
    return new Promise<boolean>((resolve) => this.#waiters.push({ msg, resolve }));
  }

  /**
   * Undefined when a message of weight `w` fits now; otherwise a promise that resolves once it would (or when the
   * mailbox empties): a producer that can hold its input back (HTTP/2 flow control) waits on it instead of making
   * the mailbox drop. Nothing is enqueued; waiting senders ({@link park}) still go first.
   *
   * A producer that bounds its wait passes `signal` and aborts it when it gives up: the promise then resolves and
   * the wait leaves the list, so a mailbox that stays full (sustained overload) does not pile up one abandoned wait
   * per give-up, nor keep an abandoned one at the front holding back the waits after it.
   */
  room(w: number, signal?: AbortSignal): Promise<void> | undefined {
    if (this.#waiters.size === 0 && this.#fits(w)) return undefined;
    if (signal?.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      if (signal === undefined) {
        this.#roomWaiters.push({ weight: w, resolve });
        return;
      }
      const waiter: RoomWaiter = {
        weight: w,
        resolve: () => {
          signal.removeEventListener("abort", leave);
          resolve();
        },
      };
      const leave = () => {
        this.#roomWaiters.remove(waiter);
        resolve();
        // Those behind it may fit where it did not.
        this.#wakeRoom();
      };
      signal.addEventListener("abort", leave, { once: true });
      this.#roomWaiters.push(waiter);
    });
  }

  /** Removes the next message (the caller checks `size` first) and admits the waiting senders that now fit. */
  take(): T {
    const msg = this.#items.shift();
    this.#load -= this.#weigh(msg);
    while (this.#waiters.size > 0) {
      const w = this.#waiters.peek()!;
      const weight = this.#weigh(w.msg);
      if (!this.#fits(weight)) break;
      this.#waiters.shift();
      this.#push(w.msg, weight);
      w.resolve(true);
    }
    this.#wakeRoom();
    return msg;
  }

  /**
   * Discards every held message and every waiting sender's message (their `put` resolves `false`); returns their
   * total weight.
   */
  clear(each: DropHandler<T>): number {
    let n = 0;
    this.#items.drain((m) => {
      n += this.#weigh(m);
      each(m);
    });
    this.#load = 0;
    this.#waiters.drain((w) => {
      n += this.#weigh(w.msg);
      each(w.msg);
      w.resolve(false);
    });
    this.#wakeRoom();
    return n;
  }

  /** Resolves the {@link room} waiters whose weight now fits, in order (none while senders wait). */
  #wakeRoom(): void {
    while (
      this.#roomWaiters.size > 0 && this.#waiters.size === 0 && this.#fits(this.#roomWaiters.peek()!.weight)
    ) {
      this.#roomWaiters.shift().resolve();
    }
  }

  /** Whether a message of weight `w` fits now (an empty mailbox takes any one message). */
  #fits(w: number): boolean {
    return this.#load + w <= this.capacity || this.#items.size === 0;
  }

  #push(msg: T, w: number): void {
    this.#items.push(msg);
    this.#load += w;
  }
}
