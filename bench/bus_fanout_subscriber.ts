/**
 * One subscriber node of bench/bus_fanout.ts, run as its own process (as each node is in production):
 * `deno run --allow-all bench/bus_fanout_subscriber.ts --url URL --node NAME --expect N [--timeout-ms T]`.
 *
 * Protocol on stdout, one JSON object per line: {@link ReadyLine} once the ordered consumer exists (the
 * publisher must not start before, as the subscription reads only what is published after it), then one
 * {@link ReportLine} with the receive time of every signature once `expect` have arrived. Exits 0 after the
 * report, 1 (reason on stderr, after a partial report) when they do not all arrive within the timeout.
 * Receive times are {@link clockMs}, which is comparable across processes on one host.
 * @module
 */
import { JetStreamBus } from "../bus/jetstream.ts";
import { setLogLevel } from "../util/log.ts";
import { testBusOptions } from "../tests/support/bus_fixtures.ts";

/** First line: the subscription is live. */
export interface ReadyLine {
  ready: true;
  node: string;
}

/** Last line: what arrived, `ids[i]` at `t[i]` ({@link clockMs}). */
export interface ReportLine {
  report: {
    node: string;
    delivered: number;
    ids: string[];
    t: number[];
  };
}

/**
 * Wall-clock ms with sub-ms resolution, the same clock in every process of the host: the process's time origin
 * (wall clock at start) plus the monotonic time since. Used on both sides of a cross-process latency.
 */
export function clockMs(): number {
  return performance.timeOrigin + performance.now();
}

interface Args {
  url: string;
  node: string;
  expect: number;
  timeoutMs: number;
}

function parseArgs(argv: readonly string[]): Args {
  let url: string | undefined, node: string | undefined, expect: number | undefined;
  let timeoutMs = 60_000;
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!, v = argv[++i];
    if (v === undefined) throw new Error(`${k} needs a value`);
    if (k === "--url") url = v;
    else if (k === "--node") node = v;
    else if (k === "--expect" || k === "--timeout-ms") {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${k} needs an integer >= 0`);
      if (k === "--expect") expect = n;
      else timeoutMs = n;
    } else throw new Error(`unknown option ${k}`);
  }
  if (url === undefined || node === undefined || expect === undefined) {
    throw new Error("--url, --node and --expect are required");
  }
  return { url, node, expect, timeoutMs };
}

function line(obj: ReadyLine | ReportLine): void {
  console.log(JSON.stringify(obj));
}

async function main(): Promise<number> {
  const args = parseArgs(Deno.args);
  setLogLevel("warn");
  const bus = await JetStreamBus.connect(testBusOptions(args.url, args.node));
  const ids: string[] = [];
  const t: number[] = [];
  let done: () => void = () => {};
  const all = new Promise<void>((res) => done = res);
  try {
    await bus.subscribeSignatures(["m"], (s) => {
      t.push(clockMs());
      ids.push(s.id);
      if (ids.length >= args.expect) done();
    });
    if (args.expect === 0) done();
    line({ ready: true, node: args.node });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      all.then(() => false),
      new Promise<boolean>((res) => timer = setTimeout(() => res(true), args.timeoutMs)),
    ]);
    clearTimeout(timer);
    line({ report: { node: args.node, delivered: ids.length, ids, t } });
    if (timedOut) {
      console.error(`${args.node}: ${ids.length} of ${args.expect} signatures within ${args.timeoutMs} ms`);
      return 1;
    }
    return 0;
  } finally {
    await bus.close();
  }
}

if (import.meta.main) Deno.exit(await main());
