/**
 * Structured JSON log lines on stderr. Secret values registered with {@link registerSecret} are masked in
 * every line, whatever field or message they end up in, so a key echoed back by a server error cannot leak.
 * @module
 */

/** Log levels, in increasing severity. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const secrets = new Set<string>();
let threshold = LEVELS.info;
let sink: (line: string) => void = (line) => {
  Deno.stderr.writeSync(new TextEncoder().encode(line + "\n"));
};

/** Returns true if `s` names a log level. */
export function isLogLevel(s: string): s is LogLevel {
  return s in LEVELS;
}

/** Sets the minimum level written. */
export function setLogLevel(level: LogLevel): void {
  threshold = LEVELS[level];
}

/** Redirects log lines (tests capture them). Returns the previous sink. */
export function setLogSink(fn: (line: string) => void): (line: string) => void {
  const prev = sink;
  sink = fn;
  return prev;
}

/**
 * Registers a secret so that it is masked wherever it appears in a log line. Short values are ignored. Its forms as
 * a log line or a URL carries it are masked too: a line is masked once it is JSON, where a `"` or `\` in the
 * value is escaped (a password with one was logged in the clear), and a URL percent-encodes it.
 */
export function registerSecret(value: string | undefined): void {
  // Very short values would mask ordinary words; real keys and passwords are longer.
  if (value && value.length >= 4) { for (const form of secretForms(value)) secrets.add(form); }
}

/**
 * Stops masking `value` (a credential the process no longer sends, e.g. a rotated token): a long-running process
 * that rotates credentials would otherwise keep every one it ever had.
 */
export function forgetSecret(value: string | undefined): void {
  if (value) { for (const form of secretForms(value)) secrets.delete(form); }
}

/** `value` as it is, as a JSON string's text and percent-encoded (the distinct ones). */
function secretForms(value: string): Set<string> {
  const forms = new Set([value, JSON.stringify(value).slice(1, -1)]);
  try {
    forms.add(encodeURIComponent(value));
  } catch {
    // a lone surrogate has no percent-encoding, and no URL carries it
  }
  return forms;
}

/** Replaces every registered secret in `text` with `[redacted]`. */
export function redact(text: string): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join("[redacted]");
  return out;
}

/**
 * Characters JSON leaves as they are that a terminal or a log shipper may act on: C1 controls (U+009B is a CSI to
 * some terminals) and the line and paragraph separators (line breaks to JavaScript readers). Traffic and peers put
 * them in stream keys and ids, which reach log lines; escaped, the line is the same JSON.
 */
const UNSAFE_IN_JSON = /[\u0080-\u009f\u2028\u2029]/g;
const jsonEscape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

function replacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  return value;
}

/** A logger bound to a component name. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** Creates a logger whose lines carry `component`. */
export function logger(component: string): Logger {
  const write = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS[level] < threshold) return;
    const line = JSON.stringify(
      { ts: new Date().toISOString(), level, component, msg, ...fields },
      replacer,
    );
    sink(redact(line).replace(UNSAFE_IN_JSON, jsonEscape));
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
  };
}
