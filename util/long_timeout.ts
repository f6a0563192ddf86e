/**
 * A timeout that may be longer than setTimeout's limit. setTimeout takes at most 2^31 - 1 ms (24.8 days): a longer
 * delay is set to 1 ms with a TimeoutOverflowWarning, so `record --duration 30d` stopped at once.
 * @module
 */

/** Longest single timer setTimeout honours. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Calls `fn` once after `ms` (chaining timers past {@link MAX_TIMER_MS}); returns a function that cancels it. */
export function setLongTimeout(fn: () => void, ms: number): () => void {
  // Monotonic, as setTimeout's own clock: a wall-clock step must not end a recording early or late.
  const due = performance.now() + ms;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = (wait: number): void => {
    timer = setTimeout(() => {
      const left = due - performance.now();
      if (left > 0) arm(left);
      else fn();
    }, Math.max(0, Math.min(wait, MAX_TIMER_MS)));
  };
  arm(ms);
  return () => clearTimeout(timer);
}
