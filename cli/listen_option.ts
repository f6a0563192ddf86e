/**
 * The `HOST:PORT` options where a command serves (`--listen`, `--ui`), in a module of their own: the HTTP server
 * module they are parsed with is not loaded by commands that serve nothing (cli/command.ts is loaded by all).
 * @module
 */
import { optString, type ParsedArgs, UsageError } from "./command.ts";
import { ListenError, parseListen } from "../http/server.ts";

/**
 * A `HOST:PORT` option where a server listens (`--listen`, `--ui`), checked before anything is loaded: a wrong
 * one is a usage error (exit 2), not a failure once the config and captures are read (exit 1), and a port past
 * 65535 is refused here rather than by the server ("Invalid port (out of range)").
 */
export function optListen(args: ParsedArgs, name: string, fallback: string): string {
  const text = optString(args, name) ?? fallback;
  let port: number;
  try {
    port = parseListen(text).port;
  } catch {
    throw new UsageError(`--${name} expects HOST:PORT (port 0 to 65535), got "${text}"`);
  }
  if (port > 65535) throw new UsageError(`--${name} expects HOST:PORT (port 0 to 65535), got "${text}"`);
  return text;
}

/**
 * Runs `start` (a server listening where option `--name` says) and turns a failure to listen into a usage error
 * (exit 2) that names the option, the address, why, and what to do: Deno's own "Address already in use (os error
 * 98)" named none of them. `note` says more about the address (a port after the option's own).
 */
export function listenFromOption<T>(name: string, start: () => T, note = ""): T {
  try {
    return start();
  } catch (e) {
    if (!(e instanceof ListenError)) throw e;
    throw new UsageError(
      `--${name}: ${e.message}${note}: choose another address with --${name} HOST:PORT (port 0: any free port)`,
    );
  }
}
