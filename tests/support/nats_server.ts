/**
 * A real `nats-server -js` for tests and benches: a free loopback port, a temp store dir, stopped by PID. `restart`
 * keeps the port and the store dir, so streams and the dedupe state survive as they do on a real restart.
 * @module
 */

/** Where Debian puts the binary; PATH is the fallback. */
const CANDIDATES = ["/usr/sbin/nats-server", "nats-server"];

/** Options of a test server. */
export interface NatsServerOptions {
  /** Port to listen on; 0 or absent: a free one. */
  port?: number;
  /** Require this token (`--auth`). */
  token?: string;
  /** Require this user and password. */
  user?: string;
  password?: string;
  /** TLS: server certificate and key (clients must then use tls://). */
  tls?: { certFile: string; keyFile: string };
  /** Extra lines for a config file (e.g. `max_payload: 4096`). */
  configLines?: string[];
}

/** Finds a free loopback TCP port (the OS picks one; the tiny race until the server binds is acceptable). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** The nats-server binary tests run: Debian's /usr/sbin/nats-server (off an ordinary user's PATH), else PATH's. */
export async function natsServerBinary(): Promise<string> {
  for (const c of CANDIDATES) {
    try {
      const out = await new Deno.Command(c, { args: ["--version"], stdout: "null", stderr: "null" }).output();
      if (out.success) return c;
    } catch {
      // not there; try the next one
    }
  }
  throw new Error("nats-server not found (apt-get install nats-server, or put it on PATH)");
}

async function waitForPort(port: number, child: Deno.ChildProcess, deadlineMs: number): Promise<void> {
  const end = Date.now() + deadlineMs;
  let exited = false;
  child.status.then(() => exited = true);
  while (Date.now() < end) {
    if (exited) throw new Error(`nats-server exited during start-up (port ${port})`);
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`nats-server did not listen on ${port} within ${deadlineMs} ms`);
}

/** One nats-server process with JetStream. */
export class NatsServer {
  readonly port: number;
  readonly storeDir: string;
  readonly #opts: NatsServerOptions;
  readonly #bin: string;
  #child: Deno.ChildProcess | null = null;
  #ownsStore: boolean;

  private constructor(
    bin: string,
    port: number,
    storeDir: string,
    opts: NatsServerOptions,
    ownsStore: boolean,
  ) {
    this.#bin = bin;
    this.port = port;
    this.storeDir = storeDir;
    this.#opts = opts;
    this.#ownsStore = ownsStore;
  }

  /** Starts a server and waits until it accepts connections. */
  static async start(opts: NatsServerOptions = {}): Promise<NatsServer> {
    const bin = await natsServerBinary();
    const dir = await Deno.makeTempDir({ prefix: "fsmpx-nats-" });
    const s = new NatsServer(bin, opts.port || freePort(), dir, opts, true);
    try {
      await s.#spawn();
    } catch (e) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw e;
    }
    return s;
  }

  /** Client URL (nats:// or tls://). */
  get url(): string {
    return `${this.#opts.tls ? "tls" : "nats"}://127.0.0.1:${this.port}`;
  }

  /** PID of the running process (null when stopped). */
  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  async #spawn(): Promise<void> {
    const args = ["-js", "-a", "127.0.0.1", "-p", String(this.port), "-sd", this.storeDir];
    args.push("-l", `${this.storeDir}/server.log`);
    const o = this.#opts;
    if (o.token) args.push("--auth", o.token);
    if (o.user) args.push("--user", o.user, "--pass", o.password ?? "");
    if (o.tls) args.push("--tls", "--tlscert", o.tls.certFile, "--tlskey", o.tls.keyFile);
    if (o.configLines && o.configLines.length > 0) {
      const conf = `${this.storeDir}/server.conf`;
      await Deno.writeTextFile(conf, o.configLines.join("\n") + "\n");
      args.push("-c", conf);
    }
    const child = new Deno.Command(this.#bin, { args, stdin: "null", stdout: "null", stderr: "null" })
      .spawn();
    this.#child = child;
    try {
      await waitForPort(this.port, child, 10_000);
    } catch (e) {
      await this.#kill();
      throw e;
    }
  }

  async #kill(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = null;
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }, 5000);
    await child.status;
    clearTimeout(timer);
  }

  /** Stops the process (the store dir is kept for a restart). */
  async stopProcess(): Promise<void> {
    await this.#kill();
  }

  /** Starts the process again on the same port with the same store dir. */
  async startProcess(): Promise<void> {
    if (this.#child) return;
    await this.#spawn();
  }

  /** Replaces the extra config lines from the next start on (e.g. users rotated across a {@link restart}). */
  reconfigure(configLines: string[]): void {
    this.#opts.configLines = configLines;
  }

  /** Stops and starts again, keeping port and store. */
  async restart(): Promise<void> {
    await this.stopProcess();
    await this.startProcess();
  }

  /** Stops the server and removes its store dir. */
  async stop(): Promise<void> {
    await this.#kill();
    if (this.#ownsStore) {
      this.#ownsStore = false;
      await Deno.remove(this.storeDir, { recursive: true }).catch(() => {});
    }
  }

  /** The server's log so far (for a failing test's message). */
  async log(): Promise<string> {
    return await Deno.readTextFile(`${this.storeDir}/server.log`).catch(() => "");
  }
}

/**
 * The authorization block of k8s/nats/nats.conf with its environment variables filled in from `passwords`, as
 * config lines for {@link NatsServer.start} (the users and permissions the deployment ships, on a test server).
 */
export async function natsConfAuthorization(
  root: string,
  passwords: Record<string, string>,
): Promise<string[]> {
  const conf = await Deno.readTextFile(`${root}k8s/nats/nats.conf`);
  const start = conf.indexOf("\nauthorization {");
  const end = conf.indexOf("\n}\n", start);
  if (start < 0 || end <= start) throw new Error("nats.conf has no authorization block");
  let block = conf.slice(start + 1, end + 2);
  for (const [k, v] of Object.entries(passwords)) block = block.replaceAll(`$${k}`, `"${v}"`);
  if (/\$[A-Z]/.test(block.replace(/#[^\n]*/g, ""))) throw new Error("nats.conf: a variable was not filled");
  return block.split("\n");
}
