/**
 * Pieces every command shares: loading the config (log level included) and running nodes over captures.
 * @module
 */
import { loadConfig, type LoadedConfig } from "../config/load.ts";
import { optString, type ParsedArgs, UsageError } from "./command.ts";
import { isLogLevel, type LogLevel, setLogLevel } from "../util/log.ts";

/**
 * Loads `--config` (or the default files) and sets the log level: `--log-level`, else `$FSMPX_LOG_LEVEL`, else the
 * config's `log_level`.
 */
export async function loadCommandConfig(args: ParsedArgs, fallback?: string): Promise<LoadedConfig> {
  const given = optString(args, "config");
  // `--config "$CFG"` with CFG unset: the loader reads an empty path as none given and loaded config.yaml or
  // example-config.yaml instead, a different setup with no word said.
  if (given !== undefined && given.trim() === "") throw new UsageError("--config FILE: the FILE is empty");
  const loaded = await loadConfig(given ?? fallback);
  if (optString(args, "log-level") === undefined) {
    const env = envLogLevel();
    setLogLevel(env ?? loaded.config.log_level);
  }
  return loaded;
}

/** `$FSMPX_LOG_LEVEL` when it names a level (unreadable or unset: undefined). */
function envLogLevel(): LogLevel | undefined {
  let v: string | undefined;
  try {
    v = Deno.env.get("FSMPX_LOG_LEVEL");
  } catch {
    return undefined;
  }
  return v !== undefined && isLogLevel(v) ? v : undefined;
}

/** A one-line progress bar on stderr, only when stderr is a terminal. */
export function progressBar(label: string): ((done: number, total: number) => void) | undefined {
  if (!Deno.stderr.isTerminal()) return undefined;
  const enc = new TextEncoder();
  return (done, total) => {
    const width = 30;
    const frac = total ? done / total : 1;
    const fill = Math.round(frac * width);
    const line = `\r${label} [${"#".repeat(fill)}${" ".repeat(width - fill)}] ${done}/${total}`;
    Deno.stderr.writeSync(enc.encode(done >= total ? line + "\n" : line));
  };
}
