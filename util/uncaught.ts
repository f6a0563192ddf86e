/**
 * Errors that reach the process's global `error` event without being a failure of it: each kind is named by the
 * module that handles it (its own listener drops it, see bus/connection.ts installSocketResetGuard). The crash
 * report (cli/crash_report.ts), whose listener main.ts installs before any of those, leaves them to it: listeners
 * run in the order they were added, so it cannot wait to see whether a later one dropped the error.
 * @module
 */

const expected: ((error: unknown) => boolean)[] = [];

/** Declares errors `isExpected` accepts as handled by a listener of the caller's, not a crash. */
export function expectUncaught(isExpected: (error: unknown) => boolean): void {
  expected.push(isExpected);
}

/** Whether an error that reached the global `error` event is one a module declared it handles. */
export function isExpectedUncaught(error: unknown): boolean {
  return expected.some((f) => f(error));
}
