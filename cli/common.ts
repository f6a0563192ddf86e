/**
 * Pieces every command shares: loading the config (log level included) and running nodes over captures.
 * @module
 */
import { loadConfig, type LoadedConfig } from "../config/load.ts";
import { optString, type ParsedArgs } from "./command.ts";
import { setLogLevel } from "../util/log.ts";

/** Loads `--config` (or the default files); applies the config's log level unless `--log-level` was given. */
export async function loadCommandConfig(args: ParsedArgs, fallback?: string): Promise<LoadedConfig> {
  const loaded = await loadConfig(optString(args, "config") ?? fallback);
  if (optString(args, "log-level") === undefined) setLogLevel(loaded.config.log_level);
  return loaded;
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
