/**
 * A small actor runtime: bounded mailboxes with per-actor overflow policy, `tell`/`ask`, one-for-one
 * supervision with exponential backoff and escalation, and a graceful, deadline-bounded shutdown that drains
 * actors in spawn (pipeline) order. No domain code lives here.
 * @module
 */
import { type Clock, SystemClock, type TimerHandle } from "./clock.ts";
import { Mailbox, type OverflowPolicy, type Weigh } from "./mailbox.ts";
import { resolveRestartPolicy, type RestartPolicy, RestartTracker } from "./supervisor.ts";
import { type Logger, logger } from "../util/log.ts";
import process from "node:process";

export type { Clock, OverflowPolicy, RestartPolicy, Weigh };

/** Why a message was discarded by the runtime. */
export type DropReason = "overflow" | "stopping" | "deadline";

/**
 * Hooks for metrics. Called synchronously on the hot path (`mailboxDepth` on every enqueue and dequeue), so
 * implementations must be cheap; an exporter may instead read {@link ActorSystem.stats} at scrape time.
 */
export interface RuntimeMetrics {
  /** The actor's mailbox now holds `depth` (its messages' weight: see {@link SpawnOptions.weigh}). */
  mailboxDepth(actor: string, depth: number): void;
  /** Messages for `actor` of total weight `n` (their number, without {@link SpawnOptions.weigh}) were discarded. */
  dropped(actor: string, reason: DropReason, n: number): void;
  /** The actor was restarted after a failure. */
  restarted(actor: string): void;
  /** A message crashed the actor and was skipped. */
  poison(actor: string): void;
  /** The actor exceeded its restart limit; the system is shutting down with exit code 1. */
  escalated(actor: string): void;
}

/** Metrics hooks that do nothing. */
export const NO_METRICS: RuntimeMetrics = {
  mailboxDepth: () => {},
  dropped: () => {},
  restarted: () => {},
  poison: () => {},
  escalated: () => {},
};

/** Why a behaviour instance is being stopped. */
export type StopReason = "shutdown" | "crash";

/** One incarnation of an actor: built fresh by the factory at every (re)start. */
export interface Behavior<M> {
  /** Handles one message; messages are delivered one at a time, in order. Throwing or rejecting crashes. */
  receive(msg: M, ctx: ActorContext<M>): void | Promise<void>;
  /** Runs before the first message; messages sent meanwhile wait. Throwing counts as a crash. */
  onStart?(): void | Promise<void>;
  /**
   * Runs once when the incarnation ends: `"shutdown"` after the mailbox was drained (flush here; downstream
   * actors still accept messages), `"crash"` before a restart (release resources). Bounded by the shutdown
   * deadline; errors are logged.
   */
  onStop?(reason: StopReason): void | Promise<void>;
}

/** What an actor knows about itself and its surroundings. */
export interface ActorContext<M> {
  /** The actor's name (also its log component). */
  readonly name: string;
  /** A reference to this actor. */
  readonly self: ActorRef<M>;
  /** The runtime's clock (timeouts, backoff; never event time). */
  readonly clock: Clock;
  /** Logger whose component is the actor's name. */
  readonly log: Logger;
  /** Aborted when this incarnation ends (crash or stop): pass it to I/O started by the behaviour. */
  readonly signal: AbortSignal;
  /** Aborted when system shutdown begins: sources (readers, subscriptions) stop producing here. */
  readonly stopping: AbortSignal;
  /** 0 for the first start, n after n restarts. */
  readonly incarnation: number;
  /**
   * Undefined when this actor's own mailbox has room for a message of `weight`; otherwise a promise that resolves
   * once it has: a source run inside the actor waits on it, so a burst is held back by the source's producer
   * (HTTP/2 flow control) instead of pushing out the oldest messages of a drop-oldest mailbox. May never resolve
   * (a stopped actor): bound the wait, and abort `signal` when giving up so the wait leaves the mailbox's list
   * (see {@link Mailbox.room}).
   */
  room(weight: number, signal?: AbortSignal): Promise<void> | undefined;
}

/** Builds a fresh behaviour; called at the first start (in a microtask after spawn) and at every restart. */
export type ActorFactory<M> = (ctx: ActorContext<M>) => Behavior<M>;

/** How to reach an actor. */
export interface ActorRef<M> {
  /** The actor's name. */
  readonly name: string;
  /**
   * Enqueues `msg`. Resolves `true` once it is in the mailbox (waiting for room under back-pressure),
   * `false` if it was dropped (full under drop-newest, or the actor is stopping); never rejects. Every drop
   * is counted.
   */
  tell(msg: M): Promise<boolean>;
  /** Enqueues without waiting; `false` (counted as an overflow drop) if there is no room or it is stopped. */
  tryTell(msg: M): boolean;
  /**
   * Request/reply. `make` builds the message around a `reply` callback (first call wins). Rejects with
   * {@link AskTimeoutError} after `timeoutMs`, at once with {@link ActorStoppedError} if the actor is
   * stopped, and early with {@link MessageDroppedError} / {@link ActorCrashedError} when the runtime knows the
   * message will not be answered (messages that are objects are tracked for this).
   */
  ask<R>(make: (reply: (r: R) => void) => M, timeoutMs: number): Promise<R>;
}

/** Per-actor options. */
export interface SpawnOptions<M = unknown> {
  /** Mailbox capacity: the largest total weight of the messages queued (their number, without `weigh`). */
  readonly capacity: number;
  /** What to do when the mailbox is full. */
  readonly overflow: OverflowPolicy;
  /** Overrides of the system's restart policy. */
  readonly restart?: Partial<RestartPolicy>;
  /**
   * Each message's weight (default 1): an actor fed batches of rows bounds, drops and counts rows, not messages.
   * Depths, drops and {@link ActorStats} are in this unit.
   */
  readonly weigh?: Weigh<M>;
  /** Called with each message discarded (after it is counted), e.g. to note the rows an overflow lost. */
  readonly onDrop?: (msg: M, reason: DropReason) => void;
}

/** Lifecycle of an actor. `failed` = gave up after too many restarts. */
export type ActorState = "new" | "starting" | "running" | "backoff" | "stopped" | "failed";

/** A snapshot of one actor's counters. */
export interface ActorStats {
  readonly name: string;
  readonly state: ActorState;
  readonly depth: number;
  readonly waitingSenders: number;
  /** In the mailbox's weight, like {@link depth} and {@link dropped} (see {@link SpawnOptions.weigh}). */
  readonly capacity: number;
  readonly overflow: OverflowPolicy;
  readonly dropped: Readonly<Record<DropReason, number>>;
  readonly restarts: number;
  readonly poison: number;
  readonly processed: number;
}

/** How the system ended: exit code 0 after a requested shutdown, 1 after an escalation. */
export interface Termination {
  readonly code: number;
  readonly reason: string;
}

/** Runs after the actors stopped (e.g. `bus.flush`); gets the ms left of the flush budget. */
export type FlushHook = (budgetMs: number) => Promise<void>;

/** Options of {@link ActorSystem.shutdown}. */
export interface ShutdownOptions {
  /** Time for draining every actor, ms; past it, remaining messages are dropped (reason `deadline`). */
  readonly deadlineMs: number;
  /** Time for the flush hooks after the drain, ms (default 5000). */
  readonly flushMs?: number;
  /** A flush hook for this shutdown only, run after those registered with {@link ActorSystem.onFlush}. */
  readonly flush?: FlushHook;
  /** Why (logged and reported in {@link Termination.reason}), e.g. the signal name. */
  readonly reason?: string;
}

/** Options of {@link ActorSystem}. */
export interface ActorSystemOptions {
  /** Defaults to {@link SystemClock}. */
  readonly clock?: Clock;
  /** Defaults to {@link NO_METRICS}. */
  readonly metrics?: RuntimeMetrics;
  /** System-wide restart policy; spawn options override per actor. */
  readonly restart?: Partial<RestartPolicy>;
  /** Drain deadline used when an escalation shuts the system down, ms (default 10000). */
  readonly escalationDeadlineMs?: number;
  /** Flush budget used when an escalation shuts the system down, ms (default 5000). */
  readonly escalationFlushMs?: number;
  /**
   * Busy actors give the event loop a turn every {@link SLICE_MS} (sockets read, timers fire, scrapes are
   * answered). Default: on with the system clock, off with another clock (a virtual clock's tests settle the
   * actors with microtasks alone).
   */
  readonly eventLoopTurns?: boolean;
}

/** An ask got no reply in time. */
export class AskTimeoutError extends Error {
  /** The actor asked. */
  readonly actor: string;
  /** `actor` was asked and did not reply within `timeoutMs`. */
  constructor(actor: string, timeoutMs: number) {
    super(`ask to actor "${actor}" timed out after ${timeoutMs} ms`);
    this.name = "AskTimeoutError";
    this.actor = actor;
  }
}

/** The actor (or the system's intake) is stopped. */
export class ActorStoppedError extends Error {
  /** The actor addressed. */
  readonly actor: string;
  /** `actor` no longer accepts messages; `why` says which door closed. */
  constructor(actor: string, why = "is stopped") {
    super(`actor "${actor}" ${why}`);
    this.name = "ActorStoppedError";
    this.actor = actor;
  }
}

/** An ask's message was discarded before it was handled. */
export class MessageDroppedError extends Error {
  /** The actor addressed. */
  readonly actor: string;
  /** Why it was dropped. */
  readonly reason: DropReason;
  /** A message for `actor` was dropped for `reason`. */
  constructor(actor: string, reason: DropReason) {
    super(`message to actor "${actor}" was dropped (${reason})`);
    this.name = "MessageDroppedError";
    this.actor = actor;
    this.reason = reason;
  }
}

/** An ask's message crashed the actor. */
export class ActorCrashedError extends Error {
  /** The actor that crashed. */
  readonly actor: string;
  /** `actor` threw `cause` while handling the message. */
  constructor(actor: string, cause: unknown) {
    super(`actor "${actor}" crashed on this message: ${errorMessage(cause)}`, { cause });
    this.name = "ActorCrashedError";
    this.actor = actor;
  }
}

/** The message of an error, or a short description of a non-Error throw (never its payload). */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return `non-Error thrown (${typeof err})`;
}

const TRUE: Promise<boolean> = Promise.resolve(true);
const FALSE: Promise<boolean> = Promise.resolve(false);
// Consecutive synchronous receives before a loop yields, so actors fed in one burst interleave.
const SYNC_BATCH = 256;

/**
 * Continuous work (ms) of every actor of the process together before their loops give the event loop a turn.
 * Actors hand messages to each other in microtasks, and an event loop that never empties its microtask queue
 * never reads a socket: a busy sensor would stop reading Pixie (whose broker then cancels the query), answer no
 * scrape, and pile rows up in the peer instead of dropping its own oldest ones where it can count them.
 */
export const SLICE_MS = 3;
/**
 * The longest slice (ms). A slice is as long as the CPU time of the event loop's last turn (within
 * SLICE_MS..this), so actors get at least half the CPU however much input a turn brings: under a flood, decoding
 * Pixie's responses in I/O callbacks would otherwise take nearly all of it, and a sensor would read rows only to
 * drop them. CPU time, not wall time: on a busy host the process is descheduled during turns, and wall time would
 * lengthen the slices and starve the reading instead.
 */
export const MAX_SLICE_MS = 100;
// Messages between two looks at the time (performance.now() is ~0.3 µs; messages are µs to ms).
const SLICE_CHECK_EVERY = 16;

/**
 * The event loop's turns, shared by every loop of the process (one thread). The timer is armed when a slice
 * starts, so it is due when the loops wait for it (measured: ~60 µs from a 2–3 ms slice's end to the turn): a
 * zero-delay timer set when the slice ends would wait the 1–4 ms minimum of nested timers, idling the thread.
 */
const turns = {
  sliceStart: 0,
  /** This slice's length: the last turn's, within SLICE_MS..MAX_SLICE_MS. */
  sliceMs: SLICE_MS,
  /** Process CPU time (ms) when the loops began waiting for the turn (-1: none waits). */
  waitCpu: -1,
  /** Loops running or suspended inside a receive. */
  active: 0,
  /** The actors' busy fraction, decayed over BUSY_TAU_MS (see {@link actorBusyFraction}), as of `busyAt`. */
  busy: 0,
  busyAt: 0,
  timer: undefined as ReturnType<typeof setTimeout> | undefined,
  next: undefined as Promise<void> | undefined,
  fire: (): void => {},
};

/** The process's CPU time (user + system, every thread), ms. */
function cpuMs(): number {
  try {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  } catch {
    // Never leave the turn unresolved (every busy actor waits for it): wall time is the fallback.
    return performance.now();
  }
}

/** The loop has been busy for the slice: true when it should wait for {@link eventLoopTurn}. */
function sliceUsed(): boolean {
  const elapsed = performance.now() - turns.sliceStart;
  if (turns.next === undefined) {
    turns.next = new Promise<void>((resolve) => {
      turns.fire = resolve;
    });
    turns.timer = setTimeout(() => {
      const now = performance.now();
      // CPU spent outside the actors since they stopped (I/O callbacks, other tasks): the next slice matches it.
      turns.sliceMs = turns.waitCpu >= 0
        ? Math.min(MAX_SLICE_MS, Math.max(SLICE_MS, cpuMs() - turns.waitCpu))
        : SLICE_MS;
      turns.waitCpu = -1;
      turns.timer = undefined;
      turns.next = undefined;
      turns.sliceStart = now;
      turns.fire();
    }, 0);
  }
  return elapsed >= turns.sliceMs;
}

/** Resolves on the next turn of the event loop (after timers and I/O callbacks). */
function eventLoopTurn(): Promise<void> {
  sliceUsed();
  if (turns.waitCpu < 0) turns.waitCpu = cpuMs();
  return turns.next!;
}

function loopStarted(): void {
  // Nothing was running: the thread was in the event loop, so a slice starts now.
  if (turns.active === 0) {
    turns.sliceStart = performance.now();
    noteBusy(turns.sliceStart);
  }
  turns.active++;
}

function loopEnded(): void {
  // The last loop went idle: an armed turn nobody waits for is cancelled (no stray timer keeps a test open).
  if (turns.active === 1) noteBusy(performance.now());
  if (--turns.active > 0) return;
  turns.sliceMs = SLICE_MS;
  turns.waitCpu = -1;
  if (turns.timer !== undefined) {
    clearTimeout(turns.timer);
    turns.timer = undefined;
    turns.next = undefined;
    turns.fire();
  }
}

/** Time constant of {@link actorBusyFraction}, ms. */
const BUSY_TAU_MS = 1000;

/** Brings the decayed busy fraction up to `now`, the actors having been active since the last note or not. */
function noteBusy(now: number): void {
  const dt = now - turns.busyAt;
  if (dt <= 0) return;
  const keep = Math.exp(-dt / BUSY_TAU_MS);
  turns.busy = turns.busy * keep + (turns.active > 0 ? 1 - keep : 0);
  turns.busyAt = now;
}

/**
 * The fraction of recent wall time (decayed over about a second) during which some actor of the process was
 * active (a loop running, suspended in a receive, or waiting for its event-loop turn): near 1 when the actors
 * never run out of work (the process is CPU-bound, or descheduled while working), lower when they wait for input.
 * Wall time, not CPU time: a sensor starved of CPU by its neighbours is saturated too.
 */
export function actorBusyFraction(): number {
  noteBusy(performance.now());
  return turns.busy;
}

interface SystemCore {
  readonly clock: Clock;
  readonly turns: boolean;
  readonly metrics: RuntimeMetrics;
  readonly stopping: AbortSignal;
  escalate(actor: string, reason: string): void;
}

/** One actor: its mailbox, current behaviour, supervision state and counters. */
class Cell<M> {
  readonly name: string;
  readonly mailbox: Mailbox<M>;
  readonly ref: ActorRef<M>;
  state: ActorState = "new";
  processed = 0;
  restarts = 0;
  poison = 0;
  readonly dropped: Record<DropReason, number> = { overflow: 0, stopping: 0, deadline: 0 };

  readonly #sys: SystemCore;
  readonly #factory: ActorFactory<M>;
  readonly #tracker: RestartTracker;
  readonly #policy: RestartPolicy;
  readonly #log: Logger;
  #behavior: Behavior<M> | undefined;
  #ctx: ActorContext<M> | undefined;
  #incarnation = -1;
  #abort = new AbortController();
  #looping = false;
  #backoffTimer: TimerHandle | undefined;
  #draining = false;
  #onIdle: (() => void) | undefined;
  readonly #idleWaiters: (() => void)[] = [];
  // Ask messages still awaiting a reply, so a drop or crash can fail the ask at once instead of by timeout.
  readonly #asks = new WeakMap<object, (e: Error) => void>();
  #pendingAsks = 0;
  readonly #onDrop: ((msg: M, reason: DropReason) => void) | undefined;
  readonly #run = () => void this.#loop();

  constructor(
    sys: SystemCore,
    name: string,
    factory: ActorFactory<M>,
    opts: SpawnOptions<M>,
    policy: RestartPolicy,
  ) {
    this.#sys = sys;
    this.name = name;
    this.#factory = factory;
    this.#policy = policy;
    this.#tracker = new RestartTracker(policy);
    this.#log = logger(name);
    this.#onDrop = opts.onDrop;
    this.mailbox = new Mailbox<M>(opts.capacity, opts.overflow, (m) => this.drop("overflow", m), opts.weigh);
    this.ref = {
      name,
      tell: (msg) => this.tell(msg),
      tryTell: (msg) => this.tryTell(msg),
      ask: (make, timeoutMs) => this.ask(make, timeoutMs),
    };
  }

  get accepting(): boolean {
    return this.state !== "stopped" && this.state !== "failed";
  }

  tell(msg: M): Promise<boolean> {
    if (!this.accepting) {
      this.drop("stopping", msg);
      return FALSE;
    }
    const r = this.mailbox.offer(msg);
    if (r === "enqueued") {
      this.#enqueued();
      return TRUE;
    }
    if (r === "dropped") {
      this.drop("overflow", msg);
      return FALSE;
    }
    return this.mailbox.park(msg);
  }

  tryTell(msg: M): boolean {
    if (!this.accepting) {
      this.drop("stopping", msg);
      return false;
    }
    if (this.mailbox.offer(msg) === "enqueued") {
      this.#enqueued();
      return true;
    }
    this.drop("overflow", msg);
    return false;
  }

  ask<R>(make: (reply: (r: R) => void) => M, timeoutMs: number): Promise<R> {
    if (!this.accepting) return Promise.reject(new ActorStoppedError(this.name));
    return new Promise<R>((resolve, reject) => {
      let done = false;
      let tracked: object | undefined;
      const finish = () => {
        done = true;
        this.#sys.clock.clearTimer(timer);
        if (tracked !== undefined) {
          this.#asks.delete(tracked);
          this.#pendingAsks--;
        }
      };
      const fail = (e: Error) => {
        if (done) return;
        finish();
        reject(e);
      };
      const reply = (r: R) => {
        if (done) return;
        finish();
        resolve(r);
      };
      const timer = this.#sys.clock.setTimer(
        timeoutMs,
        () => fail(new AskTimeoutError(this.name, timeoutMs)),
      );
      let msg: M;
      try {
        msg = make(reply);
      } catch (e) {
        fail(e instanceof Error ? e : new Error(errorMessage(e)));
        return;
      }
      if (done) return;
      if (typeof msg === "object" && msg !== null) {
        tracked = msg;
        this.#asks.set(msg, fail);
        this.#pendingAsks++;
      }
      // A drop fails the tracked ask through drop(); untracked (primitive) messages can only time out.
      void this.tell(msg);
    });
  }

  /** Counts a discarded message (by its weight) and fails its ask, if any. */
  drop(reason: DropReason, msg: M): void {
    const n = this.mailbox.weightOf(msg);
    this.dropped[reason] += n;
    this.#sys.metrics.dropped(this.name, reason, n);
    this.#onDrop?.(msg, reason);
    if (this.#pendingAsks > 0) this.#failAsk(msg, new MessageDroppedError(this.name, reason));
  }

  #failAsk(msg: M, err: Error): void {
    if (typeof msg !== "object" || msg === null) return;
    this.#asks.get(msg)?.(err);
  }

  #enqueued(): void {
    this.#sys.metrics.mailboxDepth(this.name, this.mailbox.load);
    if (!this.#looping && this.state === "running") {
      this.#looping = true;
      queueMicrotask(this.#run);
    }
  }

  #schedule(): void {
    if (!this.#looping && this.state === "running" && this.mailbox.size > 0) {
      this.#looping = true;
      queueMicrotask(this.#run);
    }
  }

  async #loop(): Promise<void> {
    const behavior = this.#behavior;
    const ctx = this.#ctx;
    if (behavior === undefined || ctx === undefined) {
      this.#looping = false;
      return;
    }
    const metrics = this.#sys.metrics;
    let sync = 0;
    let sinceCheck = 0;
    const turnsOn = this.#sys.turns;
    if (turnsOn) loopStarted();
    try {
      while (this.state === "running" && this.#behavior === behavior && this.mailbox.size > 0) {
        const msg = this.mailbox.take();
        metrics.mailboxDepth(this.name, this.mailbox.load);
        try {
          const r = behavior.receive(msg, ctx);
          if (r !== undefined) {
            await r;
            sync = 0;
          } else if (++sync >= SYNC_BATCH) {
            sync = 0;
            await undefined;
          }
        } catch (err) {
          // A receive that fails after its incarnation was abandoned (deadline) is not this incarnation's crash.
          if (this.#behavior === behavior && this.state === "running") void this.#crash(err, true, msg);
          return;
        }
        this.processed++;
        if (turnsOn && ++sinceCheck >= SLICE_CHECK_EVERY) {
          sinceCheck = 0;
          if (sliceUsed()) {
            sync = 0;
            await eventLoopTurn();
          }
        }
      }
    } finally {
      this.#looping = false;
      if (turnsOn) loopEnded();
    }
    this.#checkIdle();
  }

  /** Starts a new incarnation (first start or restart). Never rejects. */
  async start(): Promise<void> {
    if (this.state !== "new" && this.state !== "backoff") return;
    this.state = "starting";
    this.#incarnation++;
    if (this.#incarnation > 0) {
      this.restarts++;
      this.#sys.metrics.restarted(this.name);
      this.#log.info("actor restarted", { incarnation: this.#incarnation });
    }
    this.#abort = new AbortController();
    const ctx: ActorContext<M> = {
      name: this.name,
      self: this.ref,
      clock: this.#sys.clock,
      log: this.#log,
      signal: this.#abort.signal,
      stopping: this.#sys.stopping,
      incarnation: this.#incarnation,
      room: (weight, signal) => this.mailbox.room(weight, signal),
    };
    this.#ctx = ctx;
    try {
      const behavior = this.#factory(ctx);
      this.#behavior = behavior;
      if (behavior.onStart) await behavior.onStart();
    } catch (err) {
      if (this.state === "starting") void this.#crash(err, false, undefined);
      return;
    }
    // Abandoned at the shutdown deadline while onStart ran.
    if (this.state !== "starting") return;
    this.state = "running";
    this.#schedule();
    this.#checkIdle();
  }

  async #crash(err: unknown, poisoned: boolean, msg: M | undefined): Promise<void> {
    try {
      const at = this.#sys.clock.now();
      const behavior = this.#behavior;
      this.#behavior = undefined;
      this.state = "backoff";
      this.#abort.abort(new Error(`actor "${this.name}" crashed`));
      if (poisoned) {
        this.poison++;
        this.#sys.metrics.poison(this.name);
        if (this.#pendingAsks > 0) this.#failAsk(msg as M, new ActorCrashedError(this.name, err));
        this.#log.error("message crashed the actor; it is skipped, not redelivered", {
          error: errorMessage(err),
          poison: this.poison,
        });
      } else {
        this.#log.error("actor failed to start", { error: errorMessage(err) });
      }
      if (behavior?.onStop) {
        try {
          await behavior.onStop("crash");
        } catch (e) {
          this.#log.warn("onStop after crash failed", { error: errorMessage(e) });
        }
      }
      // The shutdown deadline may have abandoned the actor while onStop ran.
      if (this.state !== "backoff") return;
      const decision = this.#tracker.recordFailure(at);
      if (decision.action === "escalate") {
        this.#fail(decision.failuresInWindow);
        return;
      }
      if (this.#draining) {
        // Draining for shutdown: the deadline bounds the time, so spend none of it waiting.
        queueMicrotask(() => void this.start());
        return;
      }
      this.#log.warn("restarting after backoff", {
        backoffMs: decision.delayMs,
        failuresInWindow: decision.failuresInWindow,
      });
      this.#backoffTimer = this.#sys.clock.setTimer(decision.delayMs, () => {
        this.#backoffTimer = undefined;
        void this.start();
      });
    } catch (e) {
      // Only a throwing metrics hook or logger gets here; the actor must not be left half-crashed.
      this.#log.error("crash handling failed", { error: errorMessage(e) });
      this.#fail(0);
    }
  }

  #fail(failures: number): void {
    this.state = "failed";
    this.#behavior = undefined;
    this.#clearMailbox("stopping");
    const p = this.#policy;
    const reason = `exceeded ${p.maxRestarts} restarts within ${p.windowMs} ms`;
    this.#log.error("restart limit exceeded; escalating", { failuresInWindow: failures, reason });
    this.#sys.metrics.escalated(this.name);
    this.#checkIdle();
    this.#sys.escalate(this.name, reason);
  }

  #clearMailbox(reason: DropReason): void {
    const err = new MessageDroppedError(this.name, reason);
    const n = this.mailbox.clear((m) => {
      if (this.#pendingAsks > 0) this.#failAsk(m, err);
    });
    if (n > 0) {
      this.dropped[reason] += n;
      this.#sys.metrics.dropped(this.name, reason, n);
      this.#sys.metrics.mailboxDepth(this.name, 0);
    }
  }

  /** Whether the actor has nothing to do: no message queued or being handled, no sender waiting for room. */
  get idle(): boolean {
    return this.state === "failed" || this.state === "stopped" ||
      (this.state === "running" && !this.#looping && this.mailbox.size === 0 && this.mailbox.waiting === 0);
  }

  /** Resolves once the actor is {@link idle} (at once if it is). */
  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #checkIdle(): void {
    if (this.#idleWaiters.length > 0 && this.idle) {
      const ws = this.#idleWaiters.splice(0);
      for (const w of ws) w();
    }
    const f = this.#onIdle;
    if (f === undefined) return;
    const idle = this.state === "failed" || this.state === "stopped" ||
      (this.state === "running" && !this.#looping && this.mailbox.size === 0 && this.mailbox.waiting === 0);
    if (!idle) return;
    this.#onIdle = undefined;
    f();
  }

  /**
   * Shutdown step for this actor: processes everything queued (restarting at once if it crashes), then
   * closes its intake and runs onStop. Resolves `false` if `deadline` came first.
   */
  async drain(deadline: Promise<void>): Promise<boolean> {
    this.#draining = true;
    if (this.state === "backoff" && this.#backoffTimer !== undefined) {
      this.#sys.clock.clearTimer(this.#backoffTimer);
      this.#backoffTimer = undefined;
      void this.start();
    }
    const idle = new Promise<void>((resolve) => {
      this.#onIdle = resolve;
    });
    this.#checkIdle();
    const inTime = await Promise.race([idle.then(() => true), deadline.then(() => false)]);
    if (!inTime) return false;
    if (this.state === "failed") return true;
    const behavior = this.#behavior;
    this.#behavior = undefined;
    this.state = "stopped";
    this.#abort.abort(new Error(`actor "${this.name}" stopped`));
    if (!behavior?.onStop) return true;
    const stopped = (async () => {
      try {
        await behavior.onStop?.("shutdown");
      } catch (e) {
        this.#log.error("onStop failed", { error: errorMessage(e) });
      }
      return true;
    })();
    return await Promise.race([stopped, deadline.then(() => false)]);
  }

  /** Past the deadline: stop now, drop whatever is queued, run onStop without waiting for it. */
  abandon(): void {
    if (this.#backoffTimer !== undefined) {
      this.#sys.clock.clearTimer(this.#backoffTimer);
      this.#backoffTimer = undefined;
    }
    const behavior = this.#behavior;
    const wasLive = this.state !== "stopped" && this.state !== "failed";
    this.#behavior = undefined;
    if (this.state !== "failed") this.state = "stopped";
    this.#onIdle = undefined;
    this.#abort.abort(new Error(`actor "${this.name}" abandoned at the shutdown deadline`));
    this.#clearMailbox("deadline");
    // Stopped, it is idle now: whoever waits for that (ActorSystem.settled) must not wait for the stuck receive.
    this.#checkIdle();
    if (wasLive && behavior?.onStop) {
      const log = this.#log;
      Promise.resolve()
        .then(() => behavior.onStop?.("shutdown"))
        .catch((e) => log.error("onStop failed", { error: errorMessage(e) }));
    }
  }

  stats(): ActorStats {
    return {
      name: this.name,
      state: this.state,
      depth: this.mailbox.load,
      waitingSenders: this.mailbox.waiting,
      capacity: this.mailbox.capacity,
      overflow: this.mailbox.policy,
      dropped: { ...this.dropped },
      restarts: this.restarts,
      poison: this.poison,
      processed: this.processed,
    };
  }
}

function validTimeMs(name: string, v: number): void {
  if (!Number.isFinite(v) || v < 0) throw new RangeError(`${name} must be a number >= 0, got ${v}`);
}

/**
 * The supervision root. Actors are spawned into it and stopped by it, in spawn order, which is pipeline
 * order (readers first): each one drains before the next, so upstream output still reaches downstream.
 */
export class ActorSystem {
  /** The clock every actor sees. */
  readonly clock: Clock;
  /** Resolves once the system has shut down (requested or escalated). */
  readonly terminated: Promise<Termination>;

  readonly #metrics: RuntimeMetrics;
  readonly #policy: RestartPolicy;
  readonly #escalationDeadlineMs: number;
  readonly #escalationFlushMs: number;
  readonly #turns: boolean;
  readonly #cells: Cell<unknown>[] = [];
  readonly #byName = new Map<string, Cell<unknown>>();
  readonly #stopping = new AbortController();
  readonly #flushHooks: FlushHook[] = [];
  readonly #log = logger("actors");
  #shutdown: Promise<Termination> | undefined;
  #escalation: string | undefined;
  #resolveTerminated: (t: Termination) => void = () => {};

  /** A new, empty system. */
  constructor(opts: ActorSystemOptions = {}) {
    this.clock = opts.clock ?? new SystemClock();
    this.#metrics = opts.metrics ?? NO_METRICS;
    this.#policy = resolveRestartPolicy(opts.restart);
    this.#escalationDeadlineMs = opts.escalationDeadlineMs ?? 10_000;
    this.#escalationFlushMs = opts.escalationFlushMs ?? 5_000;
    this.#turns = opts.eventLoopTurns ?? this.clock instanceof SystemClock;
    validTimeMs("escalationDeadlineMs", this.#escalationDeadlineMs);
    validTimeMs("escalationFlushMs", this.#escalationFlushMs);
    this.terminated = new Promise<Termination>((resolve) => {
      this.#resolveTerminated = resolve;
    });
  }

  /** Aborted when shutdown begins (intake closed). */
  get stopping(): AbortSignal {
    return this.#stopping.signal;
  }

  /**
   * Creates an actor. Its factory runs in a microtask, so a factory may refer to actors spawned right after
   * it in the same synchronous block (spawn order is stop order: spawn the pipeline's head first).
   */
  spawn<M>(name: string, factory: ActorFactory<M>, opts: SpawnOptions<M>): ActorRef<M> {
    if (this.#stopping.signal.aborted) {
      throw new Error(`cannot spawn "${name}": the actor system is stopping`);
    }
    if (name.length === 0) throw new RangeError("actor name must not be empty");
    if (this.#byName.has(name)) throw new Error(`an actor named "${name}" already exists`);
    const policy = resolveRestartPolicy(opts.restart, this.#policy);
    const core: SystemCore = {
      clock: this.clock,
      turns: this.#turns,
      metrics: this.#metrics,
      stopping: this.#stopping.signal,
      escalate: (actor, reason) => this.#escalate(actor, reason),
    };
    const cell = new Cell<M>(core, name, factory, opts, policy);
    this.#cells.push(cell as Cell<unknown>);
    this.#byName.set(name, cell as Cell<unknown>);
    queueMicrotask(() => void cell.start());
    return cell.ref;
  }

  /**
   * A reference for senders outside the actor system (bus subscriptions, HTTP handlers): once shutdown
   * begins its tells are dropped (reason `stopping`) and its asks rejected, while actors that are still
   * draining keep using the ordinary reference.
   */
  ingress<M>(ref: ActorRef<M>): ActorRef<M> {
    const cell = this.#byName.get(ref.name) as Cell<M> | undefined;
    if (cell === undefined || cell.ref !== ref) {
      throw new Error(`actor "${ref.name}" does not belong to this system`);
    }
    const closed = this.#stopping.signal;
    return {
      name: ref.name,
      tell: (msg) => {
        if (!closed.aborted) return cell.tell(msg);
        cell.drop("stopping", msg);
        return FALSE;
      },
      tryTell: (msg) => {
        if (!closed.aborted) return cell.tryTell(msg);
        cell.drop("stopping", msg);
        return false;
      },
      ask<R>(make: (reply: (r: R) => void) => M, timeoutMs: number): Promise<R> {
        if (closed.aborted) {
          return Promise.reject(new ActorStoppedError(ref.name, "does not accept input: stopping"));
        }
        return cell.ask(make, timeoutMs);
      },
    };
  }

  /** Registers a hook run after the actors stopped, at every shutdown (e.g. `(ms) => bus.flush(ms)`). */
  onFlush(hook: FlushHook): void {
    this.#flushHooks.push(hook);
  }

  /**
   * Resolves once every actor is idle: nothing queued, nothing being handled (a capture replay waits for this
   * between batches, so how far one actor runs ahead of another does not depend on the batches' size).
   */
  async settled(): Promise<void> {
    for (;;) {
      const busy = this.#cells.find((c) => !c.idle);
      if (busy === undefined) return;
      await busy.whenIdle();
    }
  }

  /** Whether every actor is idle now (see {@link ActorSystem.settled}). */
  get idle(): boolean {
    return this.#cells.every((c) => c.idle);
  }

  /** A snapshot of every actor's counters, in spawn order. */
  stats(): ActorStats[] {
    return this.#cells.map((c) => c.stats());
  }

  /**
   * Stops intake, drains actors in spawn order within `deadlineMs`, runs the flush hooks within `flushMs`,
   * and resolves with the termination (code 1 if an actor escalated). Later calls return the same promise.
   */
  shutdown(opts: ShutdownOptions): Promise<Termination> {
    if (this.#shutdown === undefined) {
      validTimeMs("deadlineMs", opts.deadlineMs);
      if (opts.flushMs !== undefined) validTimeMs("flushMs", opts.flushMs);
      this.#shutdown = this.#runShutdown(opts);
    }
    return this.#shutdown;
  }

  #escalate(actor: string, reason: string): void {
    if (this.#escalation === undefined) this.#escalation = `actor "${actor}" ${reason}`;
    void this.shutdown({
      deadlineMs: this.#escalationDeadlineMs,
      flushMs: this.#escalationFlushMs,
      reason: "escalation",
    });
  }

  async #runShutdown(opts: ShutdownOptions): Promise<Termination> {
    this.#stopping.abort(new Error(`actor system stopping: ${opts.reason ?? "shutdown"}`));
    this.#log.info("shutting down", { reason: opts.reason ?? "shutdown", deadlineMs: opts.deadlineMs });
    let timer: TimerHandle | undefined;
    let late = false;
    const deadline = new Promise<void>((resolve) => {
      timer = this.clock.setTimer(opts.deadlineMs, () => {
        late = true;
        resolve();
      });
    });
    for (const cell of this.#cells) {
      if (late) {
        cell.abandon();
        continue;
      }
      if (!(await cell.drain(deadline))) {
        late = true;
        cell.abandon();
      }
    }
    if (timer !== undefined) this.clock.clearTimer(timer);
    if (late) {
      const dropped = this.#cells.reduce((n, c) => n + c.dropped.deadline, 0);
      this.#log.warn("drain deadline passed; remaining messages dropped", {
        deadlineMs: opts.deadlineMs,
        dropped,
      });
    }
    await this.#flush(opts);
    const t: Termination = this.#escalation !== undefined
      ? { code: 1, reason: `escalated: ${this.#escalation}` }
      : { code: 0, reason: opts.reason ?? "shutdown" };
    const dropped = { overflow: 0, stopping: 0, deadline: 0 };
    for (const c of this.#cells) {
      for (const r of ["overflow", "stopping", "deadline"] as const) dropped[r] += c.dropped[r];
    }
    this.#log.info("actor system stopped", { code: t.code, reason: t.reason, dropped });
    this.#resolveTerminated(t);
    return t;
  }

  async #flush(opts: ShutdownOptions): Promise<void> {
    const hooks = opts.flush ? [...this.#flushHooks, opts.flush] : [...this.#flushHooks];
    if (hooks.length === 0) return;
    const budget = opts.flushMs ?? 5_000;
    const start = this.clock.now();
    let timer: TimerHandle | undefined;
    const expired = new Promise<false>((resolve) => {
      timer = this.clock.setTimer(budget, () => resolve(false));
    });
    const all = (async () => {
      for (const hook of hooks) {
        try {
          await hook(Math.max(0, budget - (this.clock.now() - start)));
        } catch (e) {
          this.#log.error("flush hook failed", { error: errorMessage(e) });
        }
      }
      return true as const;
    })();
    const done = await Promise.race([all, expired]);
    if (timer !== undefined) this.clock.clearTimer(timer);
    if (!done) this.#log.error("flush hooks did not finish in time", { flushMs: budget });
  }
}
