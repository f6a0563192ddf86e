/**
 * Sensors as separate processes, exactly as a user starts them (`main.ts run --config --capture --speed`): a
 * per-node copy of a config, spawn, wait for /readyz, scrape /metrics, signal (SIGTERM, SIGKILL, SIGSTOP,
 * SIGCONT), collect the structured log lines of stderr. Also runs the one-shot commands (`analyze`, `replay`)
 * whose records the end-to-end tests compare.
 * @module
 */
import { parse, stringify } from "yaml";
import { type AnyRecord, type MatchRecord, parseRecord, type SignatureRecord } from "../../report/records.ts";

/** The repository root (sensors run from there, as `deno task run` does). */
export const ROOT: string = new URL("../../", import.meta.url).pathname;

/** One structured log line of a sensor (util/log.ts). */
export interface LogLine {
  level: string;
  component?: string;
  msg: string;
  [field: string]: unknown;
}

/** What a finished command printed and returned. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** One sample of a Prometheus text exposition. */
export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Options of {@link writeSensorConfig}. */
export interface SensorConfigOptions {
  /** The config to copy (e.g. fixtures/e2e/config.yaml). */
  base: string;
  /** Directory the copy is written to (as `<node>.yaml`). */
  dir: string;
  node: string;
  /** `nats.url`; empty for the in-process bus. */
  natsUrl: string;
  /** `metrics.listen`; default `127.0.0.1:0` (the sensor picks a port and logs it). */
  listen?: string;
  /** Default `info`: the tests follow the sensor through its log lines. */
  logLevel?: string;
}

/** Writes a per-node copy of a config (node name, NATS URL, listen address, log level); returns its path. */
export async function writeSensorConfig(opts: SensorConfigOptions): Promise<string> {
  const doc: unknown = parse(await Deno.readTextFile(opts.base));
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new Error(`${opts.base} is not a YAML mapping`);
  }
  const cfg = doc as Record<string, unknown>;
  const section = (key: string): Record<string, unknown> => {
    const v = cfg[key];
    const s = typeof v === "object" && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : {};
    cfg[key] = s;
    return s;
  };
  cfg["node"] = opts.node;
  cfg["log_level"] = opts.logLevel ?? "info";
  section("metrics")["listen"] = opts.listen ?? "127.0.0.1:0";
  section("nats")["url"] = opts.natsUrl;
  const path = `${opts.dir}/${opts.node}.yaml`;
  await Deno.writeTextFile(path, stringify(cfg));
  return path;
}

/** Runs `main.ts <args>` to completion (from the repository root), with `env` added to the environment. */
export async function runMain(args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "main.ts", ...args],
    cwd: ROOT,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Parses JSON Lines of records (`analyze --out`, `replay --format json`); a bad line throws with the line. */
export function parseRecords(text: string): AnyRecord[] {
  return text.split("\n").filter((l) => l.trim() !== "").map((l) => {
    const r = parseRecord(JSON.parse(l));
    if (typeof r === "string") throw new Error(`bad record (${r}): ${l}`);
    return r;
  });
}

/** What `analyze` finds on captures: the ground truth of a multi-process run over the same captures. */
export interface Analyzed {
  signatures: SignatureRecord[];
  matches: MatchRecord[];
  /** analyze's JSON summary (`--format json`), where it ran. */
  summary?: { decode_errors: { measurement: string; stream: string; reason: string; count: number }[] };
}

/** Runs `analyze --format json --out FILE` on `captures` and returns its records. */
export async function analyzeCaptures(config: string, captures: readonly string[]): Promise<Analyzed> {
  const out = await Deno.makeTempFile({ prefix: "fsmpx-analyze-", suffix: ".jsonl" });
  try {
    const r = await runMain(["analyze", "--config", config, "--format", "json", "--out", out, ...captures]);
    if (r.code !== 0) throw new Error(`analyze exited with ${r.code}: ${r.stderr}`);
    const recs = parseRecords(await Deno.readTextFile(out));
    return {
      signatures: recs.filter((x): x is SignatureRecord => x.kind === "signature"),
      matches: recs.filter((x): x is MatchRecord => x.kind === "match"),
      summary: JSON.parse(r.stdout),
    };
  } finally {
    await Deno.remove(out).catch(() => {});
  }
}

/** Runs `replay --config CFG --since 1h --format records` (records stored in JetStream) and returns them. */
export async function replayRecords(config: string): Promise<Analyzed> {
  const r = await runMain(["replay", "--config", config, "--since", "1h", "--format", "records"]);
  if (r.code !== 0) throw new Error(`replay exited with ${r.code}: ${r.stderr}`);
  const recs = parseRecords(r.stdout);
  return {
    signatures: recs.filter((x): x is SignatureRecord => x.kind === "signature"),
    matches: recs.filter((x): x is MatchRecord => x.kind === "match"),
  };
}

/** The JetStream dedupe key of a match record: signature, stage and target stream (bus/subjects.ts). */
export function matchKey(m: MatchRecord): string {
  return `${m.signature_id}:${m.stage}:${m.target.node}:${m.target.stream}`;
}

/** Keys seen more than once. */
export function duplicateKeys(keys: readonly string[]): string[] {
  const seen = new Set<string>();
  const dup = new Set<string>();
  for (const k of keys) (seen.has(k) ? dup : seen).add(k);
  return [...dup].sort();
}

/** Parses Prometheus text exposition 0.0.4 (no exemplars): one sample per line. */
export function parseMetricsText(text: string): MetricSample[] {
  const out: MetricSample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    for (let l = re.exec(m[2] ?? ""); l !== null; l = re.exec(m[2] ?? "")) {
      labels[l[1]!] = l[2]!.replace(/\\n/g, "\n").replace(/\\"/g, '"').replace(/\\\\/g, "\\");
    }
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** Sum of the samples named `name` whose labels include `labels`. */
export function sumSamples(
  samples: readonly MetricSample[],
  name: string,
  labels: Record<string, string> = {},
): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Options of {@link SensorProcess.start}. */
export interface SensorStartOptions {
  node: string;
  /** Config written by {@link writeSensorConfig}. */
  config: string;
  /** Capture replayed by the sensor. */
  capture: string;
  /** `--speed` (default 1: real time). */
  speed?: number;
  /** How long to wait for /readyz. Default 60 s (a cold `deno run` type-checks first). */
  readyTimeoutMs?: number;
}

/** One `main.ts run --capture` process. */
export class SensorProcess {
  readonly node: string;
  readonly #child: Deno.ChildProcess;
  readonly #status: Promise<Deno.CommandStatus>;
  readonly #stderrDone: Promise<void>;
  #stderr = "";
  #exit: Deno.CommandStatus | null = null;
  #addr = "";

  private constructor(node: string, child: Deno.ChildProcess) {
    this.node = node;
    this.#child = child;
    this.#status = child.status.then((s) => this.#exit = s);
    this.#stderrDone = (async () => {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) this.#stderr += chunk;
    })();
  }

  /** Spawns the sensor and waits until it serves /readyz with 200; kills it if it never does. */
  static async start(opts: SensorStartOptions): Promise<SensorProcess> {
    const args = ["run", "--allow-all", "main.ts", "run", "--config", opts.config, "--capture", opts.capture];
    args.push("--speed", String(opts.speed ?? 1));
    const child = new Deno.Command(Deno.execPath(), {
      args,
      cwd: ROOT,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const p = new SensorProcess(opts.node, child);
    try {
      await p.#waitReady(opts.readyTimeoutMs ?? 60_000);
    } catch (e) {
      await p.kill();
      throw new Error(`${(e as Error).message}\n${p.stderr}`);
    }
    return p;
  }

  async #waitReady(timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (this.#exit) throw new Error(`sensor ${this.node} exited with ${this.#exit.code} during start-up`);
      if (this.#addr === "") {
        const started = this.logs().find((l) => l.msg === "sensor started");
        const url = typeof started?.["metrics"] === "string" ? started["metrics"] : "";
        const m = /^http:\/\/([^/]+)\/metrics$/.exec(url);
        if (m) this.#addr = m[1]!;
      }
      if (this.#addr !== "" && (await this.readyz()).status === 200) return;
      await sleep(50);
    }
    throw new Error(`sensor ${this.node} not ready within ${timeoutMs} ms`);
  }

  /** PID of the process. */
  get pid(): number {
    return this.#child.pid;
  }

  /** `host:port` of /metrics (the port the sensor picked). */
  get addr(): string {
    return this.#addr;
  }

  /** Everything written on stderr so far. */
  get stderr(): string {
    return this.#stderr;
  }

  /** Exit status once the process has ended, else null. */
  get exitStatus(): Deno.CommandStatus | null {
    return this.#exit;
  }

  /** The structured log lines so far (other stderr lines are skipped). */
  logs(): LogLine[] {
    const out: LogLine[] = [];
    for (const line of this.#stderr.split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        const v: unknown = JSON.parse(line);
        if (typeof v === "object" && v !== null && typeof (v as LogLine).msg === "string") {
          out.push(v as LogLine);
        }
      } catch {
        // a line cut by a kill: not a log line
      }
    }
    return out;
  }

  async #get(path: string): Promise<{ status: number; body: string }> {
    const res = await fetch(`http://${this.#addr}${path}`, { signal: AbortSignal.timeout(5000) });
    return { status: res.status, body: await res.text() };
  }

  /** GET /readyz; status 0 when the server does not answer. */
  async readyz(): Promise<{ status: number; body: string }> {
    try {
      return await this.#get("/readyz");
    } catch {
      return { status: 0, body: "" };
    }
  }

  /** GET /metrics (Prometheus text) parsed into samples. */
  async scrape(): Promise<MetricSample[]> {
    const r = await this.#get("/metrics");
    if (r.status !== 200) throw new Error(`sensor ${this.node} /metrics answered ${r.status}`);
    return parseMetricsText(r.body);
  }

  /** Sum of the samples of one metric in a fresh scrape. */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    return sumSamples(await this.scrape(), name, labels);
  }

  /** Polls a metric until `ok(value)`; throws with the log on timeout or exit. */
  async waitMetric(
    name: string,
    labels: Record<string, string>,
    ok: (v: number) => boolean,
    timeoutMs = 60_000,
  ): Promise<number> {
    const end = Date.now() + timeoutMs;
    let v = NaN;
    while (Date.now() < end) {
      if (this.#exit) throw new Error(`sensor ${this.node} exited (${this.#exit.code})\n${this.stderr}`);
      v = await this.metric(name, labels);
      if (ok(v)) return v;
      await sleep(50);
    }
    throw new Error(`sensor ${this.node}: ${name}${JSON.stringify(labels)} = ${v} after ${timeoutMs} ms`);
  }

  /** Waits until the capture has been replayed and finished (the sensor then serves metrics until stopped). */
  async waitReplayed(timeoutMs = 120_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (this.#exit) throw new Error(`sensor ${this.node} exited (${this.#exit.code})\n${this.stderr}`);
      if ((await this.readyz()).body.includes("capture replayed")) return;
      await sleep(100);
    }
    throw new Error(`sensor ${this.node} did not finish its capture within ${timeoutMs} ms\n${this.stderr}`);
  }

  /** Sends a signal (SIGSTOP/SIGCONT to pause and resume); a process already gone is not an error. */
  signal(sig: Deno.Signal): void {
    if (this.#exit) return;
    try {
      this.#child.kill(sig);
    } catch {
      // exited between the check and the kill
    }
  }

  /** SIGKILL and wait for the exit. */
  async kill(): Promise<Deno.CommandStatus> {
    this.signal("SIGCONT");
    this.signal("SIGKILL");
    const s = await this.#status;
    await this.#stderrDone;
    return s;
  }

  /** SIGTERM (a graceful stop) and wait; SIGKILL after `timeoutMs`. Returns the exit status. */
  async stop(timeoutMs = 40_000): Promise<Deno.CommandStatus> {
    this.signal("SIGCONT");
    this.signal("SIGTERM");
    const timer = setTimeout(() => this.signal("SIGKILL"), timeoutMs);
    try {
      const s = await this.#status;
      await this.#stderrDone;
      return s;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Stops every sensor still running (SIGKILL), for a test's finally. */
export async function killAll(sensors: Iterable<SensorProcess | undefined>): Promise<void> {
  await Promise.all([...sensors].map((s) => s?.kill()));
}

/**
 * Compares records stored in JetStream (read back by `replay`) with what `analyze` found, dedupe-aware: the
 * stream keeps one match per (signature, stage, target stream) and one signature per id, so each expected one
 * must be there exactly once, with the same target message and latency (within `latencyTolS`). Returns the
 * differences, one line each (empty: equal).
 */
export function compareStored(expected: Analyzed, stored: Analyzed, latencyTolS = 1e-6): string[] {
  const problems: string[] = [];
  const sigIds = stored.signatures.map((s) => s.signature_id);
  for (const d of duplicateKeys(sigIds)) problems.push(`signature ${d} stored more than once`);
  const wantSigs = new Set(expected.signatures.map((s) => s.signature_id));
  for (const id of new Set(sigIds)) if (!wantSigs.has(id)) problems.push(`unexpected signature ${id}`);
  for (const id of wantSigs) if (!sigIds.includes(id)) problems.push(`missing signature ${id}`);

  const keys = stored.matches.map(matchKey);
  for (const d of duplicateKeys(keys)) problems.push(`match ${d} stored more than once`);
  const want = new Map(expected.matches.map((m) => [matchKey(m), m]));
  const have = new Map(stored.matches.map((m) => [matchKey(m), m]));
  for (const [k, m] of have) {
    const w = want.get(k);
    if (w === undefined) {
      problems.push(`unexpected match ${k} (latency ${m.latency_s})`);
      continue;
    }
    if (m.target.time_ns !== w.target.time_ns || Math.abs(m.latency_s - w.latency_s) > latencyTolS) {
      problems.push(
        `match ${k}: target ${m.target.time_ns} latency ${m.latency_s}, analyze ${w.target.time_ns} ${w.latency_s}`,
      );
    }
  }
  for (const k of want.keys()) if (!have.has(k)) problems.push(`missing match ${k}`);
  return problems;
}
