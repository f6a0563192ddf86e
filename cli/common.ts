/**
 * Pieces every command shares: loading the config (log level included) and running nodes over captures.
 * @module
 */
import { isAbsolute } from "node:path";
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

/**
 * Checks before the work that `--out FILE` can be written (its folder exists, it is not a folder, permissions):
 * records are written once a run is over, so a wrong path failed only then, after minutes of `analyze` (or a
 * whole `replay` read), with Deno's "No such file or directory (os error 2): writefile ..." and no summary
 * printed. A usage error (exit 2) names the option and the path as the command's directory resolves it. The file
 * is created when missing; an existing one is left as it is until the records replace it.
 */
export async function checkOutFile(path: string): Promise<void> {
  try {
    const f = await Deno.open(path, { write: true, create: true });
    f.close();
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "its folder does not exist"
      : e instanceof Deno.errors.IsADirectory
      ? "it is a folder: give a file name in it"
      : e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable
      ? "permission denied"
      : e instanceof Error
      ? e.message
      : String(e);
    throw new UsageError(`--out ${path}: cannot write it (${why}${relativeTo(path)})`);
  }
}

/**
 * For a relative path, where it was looked for: `deno task` runs in the repository's folder whatever folder it is
 * started from, so `--config config.yaml` typed in a subfolder is not the file beside the user. Empty for an
 * absolute path.
 */
export function relativeTo(path: string): string {
  if (isAbsolute(path)) return "";
  let cwd: string;
  try {
    cwd = Deno.cwd();
  } catch {
    return "";
  }
  return `; a relative path is read from ${cwd}, where the command runs (deno task runs in the repository's ` +
    "folder): give it from there, or an absolute path";
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
