/**
 * How much of the recent wall time this process's main thread wanted the CPU: the time it ran plus the time it
 * waited, runnable, for a CPU (Linux `/proc/thread-self/schedstat`), decayed over about a second. Near 1 when the
 * JavaScript thread never runs out of work, whether it got a core or was starved by its neighbours; low when it
 * waits for input.
 *
 * Why not only the actors' busy fraction (runtime.ts `actorBusyFraction`): a live sensor's reading (gRPC frames,
 * protobuf, row objects, dedupe) runs outside any actor's turn. A sensor whose reading is the bottleneck falls
 * behind its input while its actors idle, starved of rows, and looked to late_rows.ts like one with time to
 * spare: it never shed a row while its lag grew without bound (bench/live_load.ts --calls 1000 --pod: 62 s of
 * lag in 60 s, 0 rows shed, RSS +175 MB/min).
 *
 * Deno 2.9 reads `/proc/thread-self` only with `--allow-all`, which the run task does not grant: in a sensor this
 * meter is NaN. The sources measure their own input instead (util/input_meter.ts: Pixie's query stream, the
 * live packet capture); this is the fallback of a source that cannot tell.
 * @module
 */

/** Time constant of the decay, ms. */
const TAU_MS = 1000;
/** Least time between two reads of the counters, ms (a read is a system call). */
const SAMPLE_MS = 100;

/** The thread's run and run-queue wait times so far, ns, or undefined where they cannot be read. */
export type SchedReader = () => { runNs: number; waitNs: number } | undefined;

/** The calling thread's counters from `/proc/thread-self/schedstat` (a synchronous read: this thread's own). */
export function procSchedstat(): { runNs: number; waitNs: number } | undefined {
  try {
    const f = Deno.readTextFileSync("/proc/thread-self/schedstat").split(" ");
    const runNs = Number(f[0]), waitNs = Number(f[1]);
    return Number.isFinite(runNs) && Number.isFinite(waitNs) ? { runNs, waitNs } : undefined;
  } catch {
    return undefined;
  }
}

/** The decayed demand of one thread; see the module doc. */
export class ThreadDemand {
  readonly #read: SchedReader;
  readonly #nowMs: () => number;
  #at = NaN;
  #used = 0;
  #demand = 0;
  #broken = false;

  /** `read` and `nowMs` default to the calling thread's schedstat and `performance.now`. */
  constructor(read: SchedReader = procSchedstat, nowMs: () => number = () => performance.now()) {
    this.#read = read;
    this.#nowMs = nowMs;
  }

  /** The fraction (0..1) of the last second or so the thread was running or runnable; NaN if unknown. */
  fraction(): number {
    if (this.#broken) return NaN;
    const now = this.#nowMs();
    if (now - this.#at < SAMPLE_MS) return this.#demand;
    const s = this.#read();
    if (!s) {
      this.#broken = true;
      return NaN;
    }
    const used = (s.runNs + s.waitNs) / 1e6;
    if (!Number.isNaN(this.#at)) {
      const dt = now - this.#at;
      const x = Math.min(1, Math.max(0, (used - this.#used) / dt));
      const keep = Math.exp(-dt / TAU_MS);
      this.#demand = this.#demand * keep + x * (1 - keep);
    }
    this.#at = now;
    this.#used = used;
    return this.#demand;
  }
}

let main: ThreadDemand | undefined;

/** {@link ThreadDemand.fraction} of the thread that first calls it (the main thread: actors and reading run there). */
export function mainThreadDemand(): number {
  main ??= new ThreadDemand();
  return main.fraction();
}
