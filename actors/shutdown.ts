/**
 * Process-level stop: SIGTERM/SIGINT start one graceful shutdown of the actor system and then exit with its
 * code. With a {@link FinishHook} (a live sensor finishing its streams in progress), that work runs first, while
 * the actors still take messages, within the same deadline as the drain. A second signal exits at once with 1
 * (one arriving within {@link REPEAT_WINDOW_MS} of the first is the same Ctrl-C delivered twice by `deno task`,
 * and is ignored). The system terminating on its own (an escalation) exits too, non-zero, so Kubernetes restarts
 * the pod.
 * @module
 */
import type { ActorSystem, FlushHook } from "./runtime.ts";
import type { TimerHandle } from "./clock.ts";
import { logger } from "../util/log.ts";

/**
 * Work a first signal does before the actor system's shutdown, while the actors still take messages and intake is
 * open (a live sensor finishes its streams in progress: actors/node.ts finishNodes). It gets the ms it may take and
 * names each step it begins with `phase`, so that a finish that does not end in time can be reported by its step.
 */
export type FinishHook = (deadlineMs: number, phase: (name: string) => void) => Promise<void>;

/** Options of {@link createSignalHandler} and {@link installSignalHandlers}. */
export interface SignalHandlerOptions {
  /**
   * Deadline of the stop before its flush, ms: the {@link finish} (if any) and then the drain, which gets what the
   * finish left of it.
   */
  readonly deadlineMs: number;
  /**
   * Run on the first signal before the drain, bounded by {@link deadlineMs}: one that has not ended by then (or
   * fails) is left behind with a warning naming its phase, and the drain begins.
   */
  readonly finish?: FinishHook;
  /** Flush budget after the drain, ms (default 5000). */
  readonly flushMs?: number;
  /** Extra flush hook for this shutdown (hooks registered with `system.onFlush` run too). */
  readonly flush?: FlushHook;
  /** Ends the process; defaults to `Deno.exit`. Injected by tests. Called at most once. */
  readonly exit?: (code: number) => void;
  /**
   * A signal this soon after the first is the same one delivered twice, not a second request: under
   * `deno task`, one Ctrl-C reaches the process from the terminal (its process group) and again from the task
   * runner, which forwards it. Default 0 here; {@link installSignalHandlers} uses {@link REPEAT_WINDOW_MS}.
   */
  readonly repeatWindowMs?: number;
  /** Monotonic ms for the repeat window; defaults to `performance.now`. */
  readonly now?: () => number;
}

/** How close two signals must be to count as one delivered twice (a person needs longer between two Ctrl-C). */
export const REPEAT_WINDOW_MS = 300;

/** A signal handler bound to one actor system. */
export interface SignalHandler {
  /** What a signal does: the first starts the shutdown, any later one forces `exit(1)`. */
  handle(signal: Deno.Signal): void;
  /** Resolves with the code passed to `exit`. */
  readonly exited: Promise<number>;
}

/**
 * Builds the handler without touching the process's signal listeners, so tests can drive it directly.
 * Also exits when the system terminates by itself (escalation), with the system's code.
 */
export function createSignalHandler(system: ActorSystem, opts: SignalHandlerOptions): SignalHandler {
  const log = logger("shutdown");
  const exit = opts.exit ?? ((code: number) => Deno.exit(code));
  let signalled = false;
  let firstAt = 0;
  const now = opts.now ?? (() => performance.now());
  const repeatWindowMs = opts.repeatWindowMs ?? 0;
  let done = false;
  let resolveExited: (code: number) => void = () => {};
  const exited = new Promise<number>((resolve) => {
    resolveExited = resolve;
  });
  const exitOnce = (code: number) => {
    if (done) return;
    done = true;
    resolveExited(code);
    exit(code);
  };
  void system.terminated.then((t) => exitOnce(t.code));
  return {
    exited,
    handle(signal: Deno.Signal): void {
      if (done) return;
      if (signalled) {
        if (now() - firstAt < repeatWindowMs) {
          log.debug("the same signal delivered twice (deno task forwards it); still draining", { signal });
          return;
        }
        log.warn("second signal; exiting without waiting for the drain", { signal });
        exitOnce(1);
        return;
      }
      signalled = true;
      firstAt = now();
      log.info("signal received; shutting down", { signal, deadlineMs: opts.deadlineMs });
      const shutdown = (deadlineMs: number) =>
        void system.shutdown({ deadlineMs, flushMs: opts.flushMs, flush: opts.flush, reason: signal });
      // Already stopping (an escalation): nothing can be finished any more.
      if (opts.finish === undefined || system.stopping.aborted) return shutdown(opts.deadlineMs);
      void finishWithin(system, opts.finish, opts.deadlineMs).then((leftMs) => {
        // A second signal, or the system's own end, came first.
        if (!done) shutdown(leftMs);
      });
    },
  };
}

/**
 * Runs `finish` for at most `deadlineMs` of the system's clock; resolves with the ms left of the deadline. One that
 * does not end in time, or fails, is logged (with the phase it was in) and left behind.
 */
async function finishWithin(system: ActorSystem, finish: FinishHook, deadlineMs: number): Promise<number> {
  const log = logger("shutdown");
  const clock = system.clock;
  const start = clock.now();
  let phase = "start";
  let timer: TimerHandle | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = clock.setTimer(deadlineMs, () => resolve("late"));
  });
  const work = (async () => {
    try {
      await finish(deadlineMs, (name) => {
        phase = name;
        log.debug("finishing the streams in progress", { phase });
      });
      return "done" as const;
    } catch (e) {
      return e instanceof Error ? e : new Error(String(e));
    }
  })();
  const outcome = await Promise.race([work, late]);
  if (timer !== undefined) clock.clearTimer(timer);
  const spentMs = clock.now() - start;
  if (outcome === "done") log.info("streams in progress finished", { ms: Math.round(spentMs) });
  else {
    // Past the deadline, or failed (its asks time out at the deadline too): the drain goes on without the rest.
    log.warn("streams in progress not finished; draining without the rest", {
      phase,
      deadlineMs,
      error: outcome === "late" ? "deadline passed" : outcome.message,
    });
  }
  return Math.max(0, deadlineMs - spentMs);
}

/** The installed handler plus a way to remove the listeners. */
export interface InstalledSignalHandlers extends SignalHandler {
  /** Removes the process signal listeners (the exit-on-termination hook stays). */
  uninstall(): void;
}

/** Listens for SIGTERM and SIGINT and handles them with {@link createSignalHandler}. */
export function installSignalHandlers(
  system: ActorSystem,
  opts: SignalHandlerOptions,
): InstalledSignalHandlers {
  const handler = createSignalHandler(system, { repeatWindowMs: REPEAT_WINDOW_MS, ...opts });
  const signals: Deno.Signal[] = ["SIGTERM", "SIGINT"];
  const listeners = signals.map((s) => {
    const fn = () => handler.handle(s);
    Deno.addSignalListener(s, fn);
    return [s, fn] as const;
  });
  let installed = true;
  const uninstall = () => {
    if (!installed) return;
    installed = false;
    for (const [s, fn] of listeners) Deno.removeSignalListener(s, fn);
  };
  // Listeners would otherwise keep the process alive after a shutdown that ends without exiting.
  void handler.exited.then(uninstall);
  return { handle: handler.handle, exited: handler.exited, uninstall };
}
