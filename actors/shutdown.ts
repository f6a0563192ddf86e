/**
 * Process-level stop: SIGTERM/SIGINT start one graceful shutdown of the actor system and then exit with its
 * code; a second signal exits at once with 1 (one arriving within {@link REPEAT_WINDOW_MS} of the first is the
 * same Ctrl-C delivered twice by `deno task`, and is ignored). The system terminating on its own (an escalation) exits too,
 * non-zero, so Kubernetes restarts the pod.
 * @module
 */
import type { ActorSystem, FlushHook } from "./runtime.ts";
import { logger } from "../util/log.ts";

/** Options of {@link createSignalHandler} and {@link installSignalHandlers}. */
export interface SignalHandlerOptions {
  /** Drain deadline for the shutdown, ms. */
  readonly deadlineMs: number;
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
      void system.shutdown({
        deadlineMs: opts.deadlineMs,
        flushMs: opts.flushMs,
        flush: opts.flush,
        reason: signal,
      });
    },
  };
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
