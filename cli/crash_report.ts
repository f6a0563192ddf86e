/**
 * The last word of a process that fails outside any command's own error handling: an exception thrown from a
 * timer or callback, or a promise rejected with nobody awaiting it. Deno prints those itself, message and stack
 * as they are, so a credential inside one (a URL with its password, a header echoed by a peer) reached the
 * pod's log. Here it is logged with every registered secret masked, then the process exits 1 as Deno's own
 * handling does (a sensor that hit one is restarted by Kubernetes, never left half-alive).
 * @module
 */
import { logger, redact } from "../util/log.ts";
import { isExpectedUncaught } from "../util/uncaught.ts";

/** Exit code of a process ended by an uncaught error (Deno's own). */
export const EXIT_UNCAUGHT = 1;

/** Text of an uncaught value: an Error's stack (name, message, frames), else its string form; redacted. */
export function uncaughtText(value: unknown): string {
  try {
    const text = value instanceof Error ? (value.stack ?? `${value.name}: ${value.message}`) : String(value);
    return redact(text);
  } catch {
    // A value whose stack or string form throws (a getter, a Symbol.toPrimitive): said without its text.
    return `an uncaught ${typeof value} whose text cannot be read`;
  }
}

/**
 * Handles uncaught errors and unhandled rejections from here on: logged redacted (`error` level, component
 * `crash`), then `exit(1)`. `exit` is injectable for tests.
 */
export function installCrashReport(exit: (code: number) => void = (code) => Deno.exit(code)): void {
  const log = logger("crash");
  const report = (kind: string, value: unknown) => {
    log.error(`uncaught ${kind}; exiting`, { error: uncaughtText(value) });
    exit(EXIT_UNCAUGHT);
  };
  globalThis.addEventListener("error", (e) => {
    // Handled by a listener of its own, added after this one (a NATS socket's late reset: bus/connection.ts).
    if (isExpectedUncaught(e.error)) return;
    e.preventDefault();
    report("error", e.error);
  });
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    report("rejection", e.reason);
  });
}
