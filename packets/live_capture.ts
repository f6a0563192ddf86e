/**
 * Live capture on the node: a `tcpdump` child writing pcap (nanosecond timestamps) to its stdout, read as a
 * stream. A child rather than libpcap through FFI: a capture crash cannot take the sensor with it, the sensor
 * needs no `--allow-ffi`, and tcpdump's BPF compiler keeps unrelated traffic in the kernel. The pipe's extra
 * copy is measured in `bench/` (packets/s with no kernel drops).
 *
 * Kernel statistics come from tcpdump itself: SIGUSR1 makes it print "N packets captured / received by filter /
 * dropped by kernel" on stderr, which this module parses into {@link CaptureStats} (cumulative counts).
 * No `--immediate-mode`: the kernel hands packets over in blocks, and `-U` writes each one as it comes. Measured on
 * loopback with tcpreplay at ~120,000 packets/s (bench/packets_live_speed.ts): `-U` alone lost nothing; `-U` with
 * immediate mode (a wake-up per packet) lost 20% to kernel drops; without `-U`, tcpdump's output buffer kept the
 * last packets (8 of 200,000) when it was stopped. Stopped with SIGTERM or SIGINT, tcpdump writes out what it has
 * read and exits, but not the packets of the kernel's last unfilled block: the kernel hands a block over when it is
 * full or at its timeout (TPACKET_V3, {@link KERNEL_BLOCK_TIMEOUT_MS}), and tcpdump leaves its read loop at the
 * signal without it (tried on loopback with tcpdump 4.99.3 / libpcap 1.10.3: five packets, SIGTERM 50 or 500 ms
 * later, none written; 1.3 s later, all five). {@link LiveCapture.drain} therefore lets tcpdump run on past that
 * timeout before it signals it, and the pcap stream is read to its end.
 * As root, tcpdump is run with `-Z root` so it does not switch to its own user (which needs CAP_SETUID); the
 * switch to root still calls initgroups(), which needs CAP_SETGID, so the DaemonSet needs CAP_NET_RAW and
 * CAP_SETGID (k8s/packet-capture/).
 * @module
 */
import { logger } from "../util/log.ts";

const log = logger("capture");

/**
 * Longest time the kernel holds a captured packet before handing it to tcpdump (the block timeout tcpdump sets,
 * 1 s): a capture that has been quiet for less than this may still have packets on their way.
 */
export const KERNEL_BLOCK_TIMEOUT_MS = 1000;

/** How long a stopped tcpdump may take to end before it is killed, ms. */
export const CLOSE_KILL_MS = 2000;

/** How to capture. */
export interface LiveCaptureOptions {
  /** tcpdump binary. */
  tcpdump: string;
  /** Interface, e.g. `any`, `eth0`, `lo`. */
  iface: string;
  /** BPF filter expression; empty: everything. */
  filter: string;
  /** Bytes kept per packet. */
  snaplen: number;
  /** Kernel buffer, MiB (tcpdump -B takes KiB). */
  bufferMib: number;
  /**
   * How often kernel counters are asked for (ms; default 5,000). A tcpdump that answers none of three requests
   * while the sensor waits for its packets is taken for hung and stopped (see {@link LiveCapture}).
   */
  statsEveryMs?: number;
  /** How long tcpdump may take to start listening (ms; default 30,000). */
  startTimeoutMs?: number;
}

/** Cumulative counters reported by the capture. */
export interface CaptureStats {
  /** Packets tcpdump wrote out. */
  captured: number;
  /** Packets that passed the kernel filter. */
  received: number;
  /** Packets the kernel dropped because the capture buffer was full. */
  droppedByKernel: number;
  /** Packets the interface (driver) dropped, when reported. */
  droppedByInterface: number;
}

/**
 * Whether libpcap captures `iface` as Ethernet (its kernel type is ARPHRD_ETHER, 1), the link where VLAN tags can
 * be in a frame's data and a filter may say `vlan`. False for `any`, loopback, tunnels, and where /sys cannot be
 * read (the filter then leaves tagged frames out, as before).
 */
export async function isEthernetInterface(iface: string): Promise<boolean> {
  if (!/^[A-Za-z0-9_.:@-]+$/.test(iface) || iface === "." || iface === "..") return false;
  try {
    return (await Deno.readTextFile(`/sys/class/net/${iface}/type`)).trim() === "1";
  } catch {
    return false;
  }
}

/** Why a capture could not start, in words a user can act on. */
export class CaptureStartError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "CaptureStartError";
  }
}

/** The tcpdump command line for `opts` (exported for `check` and the tests). */
export function tcpdumpArgs(opts: LiveCaptureOptions, root: boolean): string[] {
  const args = [
    "-i",
    opts.iface,
    "-U",
    "-w",
    "-",
    "-n",
    "-s",
    String(opts.snaplen),
    "-B",
    String(opts.bufferMib * 1024),
    "--time-stamp-precision=nano",
  ];
  if (root) args.push("-Z", "root");
  if (opts.filter !== "") args.push(opts.filter);
  return args;
}

const STAT = /^(\d+) packets? (captured|received by filter|dropped by kernel|dropped by interface)/;

/** Parses tcpdump's statistics lines into `into`; returns true when the line was one. */
export function parseStatsLine(line: string, into: CaptureStats): boolean {
  const m = STAT.exec(line.trim());
  if (!m) return false;
  const n = Number(m[1]);
  if (m[2] === "captured") into.captured = n;
  else if (m[2] === "received by filter") into.received = n;
  else if (m[2] === "dropped by kernel") into.droppedByKernel = n;
  else into.droppedByInterface = n;
  return true;
}

/** Statistics requests a tcpdump may leave unanswered, while the sensor waits for its packets, before it is hung. */
export const UNANSWERED_STATS = 3;

/**
 * A running capture: its pcap byte stream and counters.
 *
 * A tcpdump that is alive but does nothing (stuck in its device, stopped) looks like a quiet network: no packet,
 * no exit. Its statistics tell them apart. tcpdump answers SIGUSR1 at once unless it is in the middle of writing a
 * packet (then right after it), so a capture that answers none of {@link UNANSWERED_STATS} requests while the
 * sensor has been waiting for packets all along (not while it is slow to read: tcpdump is then blocked writing to
 * it, and answers once it can) is hung: it is killed, its stream ends, and the reader's supervisor starts another.
 */
export class LiveCapture {
  readonly stats: CaptureStats = { captured: 0, received: 0, droppedByKernel: 0, droppedByInterface: 0 };
  readonly #child: Deno.ChildProcess;
  #timer: ReturnType<typeof setInterval> | undefined;
  readonly #stderr: Promise<string>;
  #closed = false;
  /** When tcpdump last printed its statistics (performance.now() ms). */
  #answeredAt = performance.now();
  /** Since when the sensor has been waiting for pcap bytes (undefined: it is not waiting). */
  #waitingSince: number | undefined;
  #hung = false;
  #pcap: ReadableStream<Uint8Array> | undefined;
  /** tcpdump's stdout, once {@link pcap} has been asked for. */
  #out: ReadableStreamDefaultReader<Uint8Array> | undefined;
  /** The timers of a {@link drain} (cleared when tcpdump exits). */
  #drainTimers: ReturnType<typeof setTimeout>[] = [];
  #draining = false;

  private constructor(child: Deno.ChildProcess, everyMs: number) {
    this.#child = child;
    this.#stderr = this.#readStderr();
    // tcpdump takes SIGUSR1 only once it listens (it sets the handler just before saying so); until then the
    // signal's default action ends it, so a start slower than one interval was killed by the first request.
    void this.#listening.then(() => {
      if (this.#closed) return;
      this.#answeredAt = performance.now();
      const hungMs = UNANSWERED_STATS * everyMs;
      this.#timer = setInterval(() => {
        const now = performance.now();
        if (
          this.#waitingSince !== undefined && now - this.#waitingSince > hungMs &&
          now - this.#answeredAt > hungMs
        ) {
          this.#hung = true;
          log.warn("tcpdump answers nothing: stopping it", { silent_ms: Math.round(now - this.#answeredAt) });
          this.#stop("SIGKILL");
          return;
        }
        try {
          child.kill("SIGUSR1");
        } catch { /* exited */ }
      }, everyMs);
    });
  }

  /** Starts tcpdump; waits until it listens (or fails with a {@link CaptureStartError} that says why). */
  static async start(opts: LiveCaptureOptions, signal?: AbortSignal): Promise<LiveCapture> {
    const root = Deno.uid?.() === 0;
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(opts.tcpdump, {
        args: tcpdumpArgs(opts, root),
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        signal,
      }).spawn();
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new CaptureStartError(
          `${opts.tcpdump} not found: install tcpdump (Debian: apt-get install tcpdump) or set packets.tcpdump`,
        );
      }
      throw new CaptureStartError(`cannot start ${opts.tcpdump}: ${(e as Error).message}`);
    }
    const cap = new LiveCapture(child, opts.statsEveryMs ?? 5000);
    // tcpdump says "listening on ..." once the socket is open, or an error and exits. One that does neither
    // (stuck opening its device) would hold the source, and the reader's supervisor, for ever: it gets a time.
    const waitMs = opts.startTimeoutMs ?? 30_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const started = await Promise.race([
      cap.#listening.then(() => "ok" as const),
      child.status.then((s) => s),
      new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), waitMs))),
    ]);
    clearTimeout(timer);
    if (started === "timeout") {
      cap.#stop();
      const text = (await cap.#stderr).trim().split("\n").slice(-2).join("; ");
      throw new CaptureStartError(
        `live capture on ${opts.iface}: ${opts.tcpdump} did not start listening within ${waitMs} ms${
          text ? `: ${text}` : ""
        }`,
      );
    }
    if (started !== "ok") {
      const text = await cap.#stderr;
      cap.#stop();
      throw new CaptureStartError(explain(text, opts, started.code));
    }
    log.info("live capture started", { iface: opts.iface, filter: opts.filter || "(all)" });
    return cap;
  }

  #listeningResolve!: () => void;
  #listening = new Promise<void>((r) => this.#listeningResolve = r);

  async #readStderr(): Promise<string> {
    let all = "";
    let buf = "";
    const reader = this.#child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.includes("listening on")) this.#listeningResolve();
          if (parseStatsLine(line, this.stats)) this.#answeredAt = performance.now();
          else if (all.length < 8192) all += line + "\n";
        }
      }
    } catch { /* child gone */ }
    return all + buf;
  }

  /** The pcap byte stream (tcpdump's stdout), read only as the sensor asks for it, so its waits are known. */
  get pcap(): ReadableStream<Uint8Array> {
    if (this.#pcap) return this.#pcap;
    const out = this.#out = this.#child.stdout.getReader();
    this.#pcap = new ReadableStream<Uint8Array>({
      pull: async (ctrl) => {
        this.#waitingSince = performance.now();
        try {
          const { value, done } = await out.read();
          if (done) ctrl.close();
          else ctrl.enqueue(value);
        } finally {
          this.#waitingSince = undefined;
        }
      },
      cancel: (reason) => out.cancel(reason),
    }, { highWaterMark: 0 });
    return this.#pcap;
  }

  /**
   * Resolves with the exit status and what tcpdump said when it ends; `hung`: it was stopped for answering
   * nothing (see {@link LiveCapture}).
   */
  async ended(): Promise<{ code: number; stderr: string; hung: boolean }> {
    const s = await this.#child.status;
    return { code: s.code, stderr: await this.#stderr, hung: this.#hung };
  }

  /**
   * Stops the capture at once (tcpdump writes out what it has read and prints its final counters; the packets of
   * the kernel's unfilled block are lost, see the module doc and {@link drain}).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#stop();
    // A tcpdump that does not act on SIGTERM (stuck in the kernel, or a wrapper that ignores it) held the stop, and
    // the reader's restart or shutdown with it, until it ended on its own: killed after a grace period instead.
    const kill = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* exited */ }
    }, CLOSE_KILL_MS);
    await this.#child.status.catch(() => {});
    clearTimeout(kill);
    await this.#stderr;
  }

  /**
   * Stops the capture without losing what the kernel still holds: tcpdump runs on for `holdMs` (at least the
   * kernel's block timeout, so the block holding the last packets captured is handed to it and written out), then
   * gets SIGTERM, writes out what it has and exits, which ends the pcap stream. The caller reads the stream to
   * its end meanwhile. A tcpdump that has not ended `withinMs` after the call (stuck, or blocked writing to a
   * reader that does not read) is killed and the pcap stream ended where it is, so a stop never waits longer.
   * Returns at once; a capture already stopping is left as it is.
   */
  drain(holdMs: number, withinMs: number): void {
    if (this.#closed || this.#draining) return;
    this.#draining = true;
    this.#drainTimers.push(
      setTimeout(() => this.#stop("SIGTERM"), Math.max(0, Math.min(holdMs, withinMs))),
      setTimeout(() => {
        log.warn("tcpdump did not end in time after its stop: killed", { within_ms: withinMs });
        this.#stop("SIGKILL");
        // Ends a read that waits for bytes (a killed process's pipe may still be held open); its data so far is kept.
        this.#out?.cancel().catch(() => {});
      }, withinMs),
    );
    void this.#child.status.catch(() => {}).finally(() => {
      for (const t of this.#drainTimers) clearTimeout(t);
    });
  }

  #stop(signal: Deno.Signal = "SIGTERM"): void {
    this.#closed = true;
    clearInterval(this.#timer);
    try {
      this.#child.kill(signal);
    } catch { /* already exited */ }
  }
}

function explain(stderr: string, opts: LiveCaptureOptions, code: number): string {
  const text = stderr.trim().split("\n").filter((l) => l.trim() !== "").slice(-3).join("; ");
  if (/permission|not permitted/i.test(stderr)) {
    return `live capture on ${opts.iface} refused: ${text} (the sensor needs CAP_NET_RAW and ` +
      `CAP_SETGID: run as root with capabilities [NET_RAW, SETGID], see k8s/packet-capture/)`;
  }
  if (/No such device|doesn't exist|no suitable device/i.test(stderr)) {
    return `live capture: no interface ${opts.iface} (${text}); set packets.interface to one of \`ip -br link\`, or any`;
  }
  if (/syntax error|expression rejects|can't parse filter/i.test(stderr)) {
    return `live capture: tcpdump rejected the filter "${opts.filter}": ${text}`;
  }
  return `live capture on ${opts.iface} ended at start (exit ${code}): ${text}`;
}
