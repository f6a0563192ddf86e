/**
 * One NATS connection with fsm-px's policy: authentication from config or environment (never logged),
 * TLS with a CA, and reconnection forever with a growing, jittered delay (never a tight loop).
 * @module
 */
import { connect, credsAuthenticator, type NatsConnection, nkeys } from "@nats-io/transport-node";
import type { NodeConnectionOptions } from "@nats-io/transport-node";
import { logger, redact, registerSecret } from "../util/log.ts";
import { expectUncaught } from "../util/uncaught.ts";

const log = logger("bus");

/** How to reach and authenticate to NATS (mirrors the `nats` config keys). */
export interface NatsConnectOptions {
  /** Server URL(s), comma-separated. */
  url: string;
  /** Client name shown by the server (the node name). */
  name?: string;
  /** `.creds` file (JWT + NKey seed). */
  credentialsFile?: string;
  user?: string;
  password?: string;
  token?: string;
  /** TLS: CA bundle to verify the server, and an optional client certificate. Empty strings mean unset. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** Handshake timeout of the first connection. Default 10 s. */
  connectTimeoutMs?: number;
}

/** Retry delays: 250 ms growing to 5 s, plus up to 50% jitter so a fleet does not retry in step. */
export class ReconnectBackoff {
  #attempt = 0;
  #downSince: number | null = null;
  constructor(readonly baseMs = 250, readonly maxMs = 5000) {}

  /** The next delay of a retry loop (ms): doubles per call. */
  next(): number {
    const d = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.#attempt, 20));
    this.#attempt++;
    return d + Math.random() * d * 0.5;
  }

  /**
   * The client's reconnect wait (ms): half the time since the connection was lost, within [base, max]. The
   * client asks for it more than once per attempt, so it grows with elapsed time rather than with calls; a
   * short outage is thus followed by a quick reconnect and a long one costs at most `max` between attempts.
   */
  reconnectDelay(now: number = Date.now()): number {
    this.#downSince ??= now;
    const d = Math.min(this.maxMs, Math.max(this.baseMs, (now - this.#downSince) / 2));
    return d + Math.random() * d * 0.2;
  }

  /** After a success. */
  reset(): void {
    this.#attempt = 0;
    this.#downSince = null;
  }
}

/**
 * The `user:password@` or `token@` of one server URL, with or without its scheme (the config accepts
 * `host:port` for `nats://host:port`): group 1 is the scheme and `//`, if any; group 2 the credentials, up to the
 * last `@` (a password written as it is may hold `@` or `/`, as config/load.ts registers it: stopping at the first
 * `@` left the rest of the password in the logged URL and sent the client a wrong one).
 */
const URL_USERINFO = /^((?:[A-Za-z][A-Za-z0-9+.-]*:\/\/)?)(.*)@/;

/** Server URLs with any user:password@ removed, for log lines and error messages. */
export function safeServers(url: string): string[] {
  return url.split(",").map((u) => u.trim()).filter((u) => u !== "").map((u) =>
    u.replace(URL_USERINFO, "$1")
  );
}

/** Percent-decoded, or as written when it holds a `%` that is no escape (a literal password, as config/load.ts reads it). */
function decodeUserInfo(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * Credentials written into server URLs (`nats://user:pass@host`, `nats://token@host`): the client does not read
 * them, so they are taken out here (first URL that has any) and registered as secrets.
 */
export function urlCredentials(url: string): { user?: string; password?: string; token?: string } {
  for (const u of url.split(",")) {
    const m = URL_USERINFO.exec(u.trim());
    if (!m) continue;
    const info = m[2]!;
    const colon = info.indexOf(":");
    if (colon < 0) {
      const token = decodeUserInfo(info);
      registerSecret(token);
      return { token };
    }
    const password = decodeUserInfo(info.slice(colon + 1));
    registerSecret(password);
    return { user: decodeUserInfo(info.slice(0, colon)), password };
  }
  return {};
}

/** A connection failure at start-up, with a message safe to log. */
export class NatsConnectError extends Error {
  override name = "NatsConnectError";
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === "" ? undefined : s;
}

/** Builds the client options (exported for tests: secrets go to the client, never to logs). */
export async function connectionOptions(
  opts: NatsConnectOptions,
  backoff: ReconnectBackoff,
): Promise<NodeConnectionOptions> {
  registerSecret(nonEmpty(opts.password));
  registerSecret(nonEmpty(opts.token));
  const fromUrl = urlCredentials(opts.url);
  const servers = safeServers(opts.url);
  const o: NodeConnectionOptions = {
    servers,
    name: opts.name,
    maxReconnectAttempts: -1,
    // The client gives up reconnecting after two refused authentications in a row, and the bus is then closed for
    // good; a server that comes back refusing for a while (accounts not loaded yet, a secret rolled out late) must
    // not end it. (The first connection still fails fast on a refusal.)
    ignoreAuthErrorAbort: true,
    reconnectDelayHandler: () => backoff.reconnectDelay(),
    timeout: opts.connectTimeoutMs ?? 10_000,
    // Fail fast on the first connection: start-up errors (auth, TLS, wrong address) must be visible; the
    // process is restarted by its supervisor (Kubernetes) rather than hanging unready.
    waitOnFirstConnect: false,
    pingInterval: 10_000,
    maxPingOut: 3,
  };
  // Explicit options win over credentials written into the URL.
  const user = nonEmpty(opts.user) ?? fromUrl.user;
  if (user !== undefined) {
    o.user = user;
    o.pass = nonEmpty(opts.password) ?? fromUrl.password ?? "";
  }
  const token = nonEmpty(opts.token) ?? fromUrl.token;
  if (token !== undefined) o.token = token;
  const creds = nonEmpty(opts.credentialsFile);
  if (creds !== undefined) {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(creds);
    } catch (e) {
      throw new NatsConnectError(`cannot read nats.credentials_file ${creds}: ${(e as Error).message}`);
    }
    registerCredsSecrets(bytes);
    const bad = credsProblem(bytes);
    if (bad !== null) {
      throw new NatsConnectError(
        `nats.credentials_file ${creds} ${bad}: it must be a user's .creds file as nsc writes it (the user JWT, ` +
          `then the user's NKey seed)`,
      );
    }
    o.authenticator = credsAuthenticator(credsReader(creds, bytes));
  }
  const tls = opts.tls;
  const caFile = nonEmpty(tls?.caFile), certFile = nonEmpty(tls?.certFile), keyFile = nonEmpty(tls?.keyFile);
  if (caFile !== undefined || certFile !== undefined || keyFile !== undefined) {
    o.tls = { caFile, certFile, keyFile };
  }
  return o;
}

/** The seeds inside a `.creds` file are secrets too. */
function registerCredsSecrets(bytes: Uint8Array): void {
  for (const m of new TextDecoder().decode(bytes).matchAll(/\bSU[A-Z2-7]{50,}\b/g)) registerSecret(m[0]);
}

/** One block of a `.creds` file (the client's own pattern): the JWT, then the seed. */
const CREDS_BLOCK = /\s*(?:(?:[-]{3,}[^\n]*[-]{3,}\n)(.+)(?:\n\s*[-]{3,}[^\n]*[-]{3,}\n))/g;

/**
 * What keeps `.creds` bytes from authenticating, as the client reads them (a JWT block, then a seed block whose
 * seed it signs with), or null. The client signs inside its handshake, where a seed that is no seed (a bad checksum,
 * a JWT or a public key pasted in its place) closes the connection for good instead of failing one attempt.
 */
function credsProblem(bytes: Uint8Array): string | null {
  const blocks = [...new TextDecoder().decode(bytes).matchAll(CREDS_BLOCK)];
  if (blocks.length < 2) return "holds no JWT and seed";
  try {
    nkeys.fromSeed(new TextEncoder().encode(blocks[1]![1]!.trim()));
  } catch (e) {
    return `holds no valid user seed (${(e as Error).message})`;
  }
  return null;
}

/**
 * The `.creds` file as it is at each (re)connection. A user JWT expires (the server then closes the connection
 * with "User Authentication Expired") and a credentials Secret is rotated by rewriting the file: read once at
 * start, the client kept presenting the old credentials, every reconnection was refused and the bus never
 * published again until the sensor was restarted by hand. (The transport reads TLS files per connection too.)
 * A file that cannot be read or holds no usable credentials now (mid-rewrite, removed, a seed that is no seed) is
 * replaced by the last good one.
 */
function credsReader(path: string, first: Uint8Array): () => Uint8Array {
  let last = first;
  let failing = false;
  return () => {
    try {
      const bytes = Deno.readFileSync(path);
      registerCredsSecrets(bytes);
      // A JWT block and a seed block, as the client parses them, and a seed it can sign with: the client closed
      // the connection for good on a bad one, and the sensor never published or read again, even once the file
      // was fixed.
      const bad = credsProblem(bytes);
      if (bad !== null) throw new Error(bad);
      last = bytes;
      failing = false;
    } catch (e) {
      if (!failing) {
        log.warn("cannot read nats.credentials_file again; reconnecting with the credentials read before", {
          file: path,
          error: (e as Error).message,
        });
      }
      failing = true;
    }
    return last;
  };
}

let guardInstalled = false;
let swallowedResets = 0;

/** Socket resets swallowed by {@link installSocketResetGuard} so far. */
export function socketResetsSwallowed(): number {
  return swallowedResets;
}

/**
 * The transport (v3.4) removes its socket listeners before destroying the socket; under Deno a read that fails
 * with ECONNRESET afterwards is then emitted with no listener and becomes an uncaught error that kills the
 * process. It happens whenever the server closes first, e.g. on every refused authentication. The connection
 * has already been handled by then (closed, or reconnecting), so such a reset is dropped here; nothing else is.
 */
export function installSocketResetGuard(): void {
  if (guardInstalled) return;
  guardInstalled = true;
  // The crash report's listener comes first (main.ts installs it at start): it must not take these for a crash.
  expectUncaught(isLateSocketReset);
  globalThis.addEventListener("error", (ev: ErrorEvent) => {
    if (isLateSocketReset(ev.error)) {
      swallowedResets++;
      ev.preventDefault();
    }
  });
}

/** A socket read or write that failed with a reset (see {@link installSocketResetGuard}). */
function isLateSocketReset(error: unknown): boolean {
  const e = error as { code?: unknown; syscall?: unknown } | null;
  return e !== null && typeof e === "object" && (e.code === "ECONNRESET" || e.code === "EPIPE") &&
    (e.syscall === "read" || e.syscall === "write");
}

/** Connects (one attempt at start-up, then reconnects forever). Errors carry no secret. */
export async function connectNats(opts: NatsConnectOptions): Promise<NatsConnection> {
  installSocketResetGuard();
  const backoff = new ReconnectBackoff();
  const o = await connectionOptions(opts, backoff);
  let nc: NatsConnection;
  try {
    nc = await connect(o);
  } catch (e) {
    const err = e as Error;
    const why = redact(err.message + (err.cause instanceof Error ? `: ${err.cause.message}` : ""));
    throw new NatsConnectError(`cannot connect to NATS at ${safeServers(opts.url).join(",")}: ${why}`);
  }
  // A successful (re)connection restarts the delay sequence.
  (async () => {
    for await (const s of nc.status()) if (s.type === "reconnect") backoff.reset();
  })().catch(() => {});
  return nc;
}
