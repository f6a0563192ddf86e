/**
 * The web UI over JetStream, as the tests drive it: demo captures cut in two at a capture time (so one part can
 * be published before the UI starts and the rest while it runs), sensor processes that publish a part, `deno
 * task ui` started and stopped as a user does (its own process group, Ctrl-C), and every record the UI holds
 * read back through its JSON API, to compare with what `replay --format records` prints.
 * @module
 */
import { deepEqual, equal } from "node:assert/strict";
import { parse, stringify } from "yaml";
import type { MatchRecord, SignatureRecord } from "../../report/records.ts";
import {
  type Analyzed,
  matchKey,
  parseRecords,
  ROOT,
  runMain,
  SensorProcess,
  sleep,
} from "./sensor_process.ts";

/** The demo captures (one per node) and their config. */
export const DEMO = `${ROOT}fixtures/demo/`;
export const DEMO_CONFIG = `${DEMO}config.yaml`;
export const DEMO_NODES = ["node-a", "node-b", "node-c"] as const;

/**
 * Cuts each demo capture at `atNs` (capture time): rows before it go to `<dir>/<node>.1.jsonl`, the others to
 * `<dir>/<node>.2.jsonl`, each with the capture's header line. Returns the two lists of paths, in node order.
 */
export async function splitCaptures(
  dir: string,
  atNs: bigint,
): Promise<{ first: string[]; second: string[] }> {
  const first: string[] = [];
  const second: string[] = [];
  for (const node of DEMO_NODES) {
    const lines = (await Deno.readTextFile(`${DEMO}${node}.jsonl`)).split("\n").filter((l) =>
      l.trim() !== ""
    );
    const head: string[] = [];
    const a: string[] = [];
    const b: string[] = [];
    for (const line of lines) {
      const v = JSON.parse(line) as { row?: { time_?: string } };
      if (v.row?.time_ === undefined) head.push(line);
      else (BigInt(v.row.time_) < atNs ? a : b).push(line);
    }
    if (a.length === 0 || b.length === 0) throw new Error(`${node}: the cut leaves an empty part`);
    const p1 = `${dir}/${node}.1.jsonl`;
    const p2 = `${dir}/${node}.2.jsonl`;
    await Deno.writeTextFile(p1, [...head, ...a].join("\n") + "\n");
    await Deno.writeTextFile(p2, [...head, ...b].join("\n") + "\n");
    first.push(p1);
    second.push(p2);
  }
  return { first, second };
}

/** Sets `nats.user`/`nats.password` in a config written by writeSensorConfig. */
export async function withNatsUser(
  config: string,
  user: string,
  password: string,
  out: string,
): Promise<string> {
  const doc = parse(await Deno.readTextFile(config)) as { nats: Record<string, unknown> };
  doc.nats["user"] = user;
  doc.nats["password"] = password;
  await Deno.writeTextFile(out, stringify(doc));
  return out;
}

/**
 * Runs one sensor process per node (config and capture at the same index) at `speed` until each has replayed
 * its capture, then stops them (SIGTERM: each drains and must exit 0). `running` receives the processes so a
 * test's `finally` can kill them if this throws. Returns them (their stderr holds their log).
 */
export async function publishWithSensors(
  configs: readonly string[],
  captures: readonly string[],
  speed: number,
  running: SensorProcess[],
): Promise<SensorProcess[]> {
  const started = await Promise.allSettled(
    configs.map((config, i) =>
      SensorProcess.start({ node: DEMO_NODES[i]!, config, capture: captures[i]!, speed })
    ),
  );
  for (const s of started) if (s.status === "fulfilled") running.push(s.value);
  for (const s of started) if (s.status === "rejected") throw s.reason;
  const mine = started.map((s) => (s as PromiseFulfilledResult<SensorProcess>).value);
  await Promise.all(mine.map((s) => s.waitReplayed(120_000)));
  for (const s of mine) equal((await s.stop()).code, 0, `${s.node} exit code\n${s.stderr}`);
  return mine;
}

/** `replay --config CFG --since 1h --format records [extra]`: the stored records, hops computed over the range. */
export async function replayStored(config: string, extra: readonly string[] = []): Promise<Analyzed> {
  const r = await runMain(["replay", "--config", config, "--since", "1h", "--format", "records", ...extra]);
  equal(r.code, 0, r.stderr);
  const recs = parseRecords(r.stdout);
  return {
    signatures: recs.filter((x): x is SignatureRecord => x.kind === "signature"),
    matches: recs.filter((x): x is MatchRecord => x.kind === "match"),
  };
}

/** A running `deno task ui`. */
export interface UiProcess {
  url: string;
  /** Everything printed on stdout and stderr so far. */
  output(): string;
  /** Ctrl-C as a terminal sends it (SIGINT to the process group); resolves with the exit code. */
  stop(): Promise<number>;
}

/**
 * Starts `deno task ui --config CFG --listen 127.0.0.1:0 --since 1h` (the task's own permissions) in a process
 * group of its own, and waits until it serves.
 */
export async function startUiTask(config: string, timeoutMs = 60_000): Promise<UiProcess> {
  const task = [
    Deno.execPath(),
    "task",
    "-q",
    "ui",
    "--config",
    config,
    "--listen",
    "127.0.0.1:0",
    "--since",
    "1h",
  ];
  const child = new Deno.Command("setsid", {
    args: task,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const pump = async (s: ReadableStream<Uint8Array<ArrayBuffer>>) => {
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) out += chunk;
  };
  const reading = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const killGroup = (sig: Deno.Signal) => {
    try {
      Deno.kill(-child.pid, sig);
    } catch {
      // the group is gone
    }
  };
  const end = Date.now() + timeoutMs;
  while (!/UI at (http:\S+)/.test(out)) {
    if (exited || Date.now() > end) {
      killGroup("SIGKILL");
      await status;
      await reading;
      throw new Error(`ui did not serve (${exited ? "exited" : "timeout"}):\n${out}`);
    }
    await sleep(50);
  }
  const url = /UI at (http:\S+)/.exec(out)![1]!;
  return {
    url,
    output: () => out,
    async stop() {
      killGroup("SIGINT");
      const timer = setTimeout(() => killGroup("SIGKILL"), 20_000);
      const s = await status;
      clearTimeout(timer);
      await reading;
      return s.code;
    },
  };
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  return await res.json() as T;
}

/** What the UI holds, read back through its API. */
export interface UiHeld extends Analyzed {
  /** /api/info's counts. */
  counts: { signatures: number; matches: number };
  /** Waterfall row ids (/api/waterfall). */
  intervals: string[];
}

/**
 * Every record the UI holds: the waterfall's intervals (/api/waterfall), each interval's signatures
 * (/api/interval), each signature in full with its matches and their hops (/api/signature). `counts` says what
 * the store holds, so a record the walk cannot reach shows as a difference.
 */
export async function uiRecords(base: string): Promise<UiHeld> {
  const counts = await getJson<{ signatures: number; matches: number }>(`${base}api/info`);
  const wf = await getJson<{ total: number; rows: { id: string }[] }>(`${base}api/waterfall?limit=1000`);
  const intervals = wf.rows.map((r) => r.id);
  const sigIds = new Set<string>();
  for (const id of intervals) {
    const d = await getJson<{ signatures: { signature_id: string }[] }>(
      `${base}api/interval?id=${encodeURIComponent(id)}`,
    );
    for (const g of d.signatures) sigIds.add(g.signature_id);
  }
  const signatures: SignatureRecord[] = [];
  const matches = new Map<string, MatchRecord>();
  for (const id of sigIds) {
    const d = await getJson<{ signature: SignatureRecord | null; matches: MatchRecord[] }>(
      `${base}api/signature?id=${encodeURIComponent(id)}`,
    );
    if (d.signature) signatures.push(d.signature);
    for (const m of d.matches) matches.set(matchKey(m), m);
  }
  return { counts, intervals, signatures, matches: [...matches.values()] };
}

/** Differences between what the UI holds and what replay printed, one line each (empty: equal). */
export function compareUiToReplay(ui: UiHeld, replay: Analyzed): string[] {
  const problems: string[] = [];
  if (ui.counts.signatures !== replay.signatures.length) {
    problems.push(`UI holds ${ui.counts.signatures} signatures, replay printed ${replay.signatures.length}`);
  }
  if (ui.counts.matches !== replay.matches.length) {
    problems.push(`UI holds ${ui.counts.matches} matches, replay printed ${replay.matches.length}`);
  }
  const sigs = new Map(ui.signatures.map((s) => [s.signature_id, s]));
  for (const s of replay.signatures) {
    const got = sigs.get(s.signature_id);
    if (!got) problems.push(`signature ${s.signature_id} not in the UI`);
    else {
      try {
        deepEqual(got, s);
      } catch {
        problems.push(`signature ${s.signature_id}: UI ${JSON.stringify(got)} replay ${JSON.stringify(s)}`);
      }
    }
  }
  const have = new Map(ui.matches.map((m) => [matchKey(m), m]));
  for (const m of replay.matches) {
    const got = have.get(matchKey(m));
    if (!got) problems.push(`match ${matchKey(m)} not in the UI`);
    else {
      try {
        deepEqual(got, m);
      } catch {
        problems.push(`match ${matchKey(m)}: UI ${JSON.stringify(got)} replay ${JSON.stringify(m)}`);
      }
    }
  }
  const want = new Set(replay.matches.map(matchKey));
  for (const k of have.keys()) if (!want.has(k)) problems.push(`UI match ${k} not printed by replay`);
  return problems;
}
