/**
 * One-for-one restart decisions: exponential backoff between restarts and escalation when an actor keeps
 * failing. Pure bookkeeping on timestamps from the runtime's clock; the runtime acts on the decisions.
 * @module
 */

/** How a crashing actor is restarted. */
export interface RestartPolicy {
  /** Restarts allowed within `windowMs`; one more failure in the window escalates. */
  readonly maxRestarts: number;
  /** Sliding window over which failures are counted, ms. */
  readonly windowMs: number;
  /** Delay before the first restart, ms. */
  readonly backoffInitialMs: number;
  /** Upper bound on the delay, ms. */
  readonly backoffMaxMs: number;
  /** Growth factor per further failure within the window (>= 1). */
  readonly factor: number;
}

/** Defaults: 5 restarts per minute, backoff 100 ms doubling up to 10 s. */
export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  maxRestarts: 5,
  windowMs: 60_000,
  backoffInitialMs: 100,
  backoffMaxMs: 10_000,
  factor: 2,
};

/** Fills a partial policy from the defaults and validates it; throws `RangeError` naming the bad field. */
export function resolveRestartPolicy(
  partial: Partial<RestartPolicy> = {},
  base: RestartPolicy = DEFAULT_RESTART_POLICY,
): RestartPolicy {
  const p: RestartPolicy = { ...base, ...partial };
  const check = (name: keyof RestartPolicy, ok: boolean, want: string) => {
    if (!ok) throw new RangeError(`restart.${name} must be ${want}, got ${p[name]}`);
  };
  check("maxRestarts", Number.isInteger(p.maxRestarts) && p.maxRestarts >= 0, "an integer >= 0");
  check("windowMs", Number.isFinite(p.windowMs) && p.windowMs > 0, "a number > 0");
  check("backoffInitialMs", Number.isFinite(p.backoffInitialMs) && p.backoffInitialMs >= 0, "a number >= 0");
  check(
    "backoffMaxMs",
    Number.isFinite(p.backoffMaxMs) && p.backoffMaxMs >= p.backoffInitialMs,
    ">= backoffInitialMs",
  );
  check("factor", Number.isFinite(p.factor) && p.factor >= 1, "a number >= 1");
  return p;
}

/** Delay before the restart that follows the `n`-th failure in the current window (n >= 1). */
export function backoffDelay(policy: RestartPolicy, n: number): number {
  const d = policy.backoffInitialMs * Math.pow(policy.factor, Math.max(0, n - 1));
  return Math.min(policy.backoffMaxMs, d);
}

/** What to do after a failure. */
export type RestartDecision =
  | { readonly action: "restart"; readonly delayMs: number; readonly failuresInWindow: number }
  | { readonly action: "escalate"; readonly failuresInWindow: number };

/**
 * Counts failures in a sliding window. Because the backoff exponent is the number of failures still inside
 * the window, a quiet window resets the backoff to its initial value without extra state.
 */
export class RestartTracker {
  readonly #policy: RestartPolicy;
  // Failure timestamps, oldest first; never longer than maxRestarts + 1.
  #failures: number[] = [];

  /** Tracks failures under `policy`. */
  constructor(policy: RestartPolicy) {
    this.#policy = policy;
  }

  /** Records a failure at `nowMs` and decides: restart after a delay, or escalate. */
  recordFailure(nowMs: number): RestartDecision {
    const from = nowMs - this.#policy.windowMs;
    // Failures exactly `windowMs` ago have left the window.
    this.#failures = this.#failures.filter((t) => t > from);
    this.#failures.push(nowMs);
    const n = this.#failures.length;
    if (n > this.#policy.maxRestarts) return { action: "escalate", failuresInWindow: n };
    return { action: "restart", delayMs: backoffDelay(this.#policy, n), failuresInWindow: n };
  }
}
