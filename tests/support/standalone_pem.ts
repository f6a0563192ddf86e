/**
 * The committed e2e captures served by a fake standalone PEM (`pixie.direct_addr`): their rows as the PEM's
 * `http_events` table, each stage on its own port, and the e2e config rewritten for it (tests of `record` and
 * `run` against Pixie's protocol).
 * @module
 */
import { readCapture } from "../../pixie/capture.ts";
import type { Row } from "../../pixie/row.ts";

/** The committed e2e captures and config. */
export const E2E = new URL("../../fixtures/e2e/", import.meta.url).pathname;
/** main.ts. */
export const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** The e2e captures' rows in time order, shifted to a minute ago (a live sensor's event clock wants them near now). */
export async function captureRows(): Promise<Row[]> {
  const rows: Row[] = [];
  for await (const e of Deno.readDir(E2E)) {
    if (e.isFile && e.name.endsWith(".jsonl")) rows.push(...(await readCapture(E2E + e.name)).rows);
  }
  rows.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  // A live sensor takes rows near the wall clock only (its event clock ignores rows far from it): the PEM serves
  // the fixture's traffic as if it happened a minute ago.
  const shift = BigInt(Date.now() - 60_000) * 1_000_000n - rows[0]!.time;
  return rows.map((r) => ({ ...r, time: r.time + shift, columns: { ...r.columns, time_: r.time + shift } }));
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Each stage's traffic arrives on its own port of the PEM's host. */
export const PORTS: Record<string, bigint> = {
  "call_audio/source": 8001n,
  "call_audio/relay": 8002n,
  "call_audio/asr": 8003n,
};
const PORT_OF_POD_WORD: Record<string, bigint> = { telephony: 8001n, "media-relay": 8002n, asr: 8003n };

/**
 * The e2e config, pointed at the fake as a standalone PEM, on one node that sees every tap. Its pod filters are
 * rewritten to port filters (what a standalone PEM can filter on) and its relative start time to the captures'
 * first time_ (they were recorded long ago).
 */
export async function writeConfig(
  dir: string,
  pixieAddr: string,
  metricsPort: number,
  startNs: bigint,
): Promise<string> {
  const text = (await Deno.readTextFile(E2E + "config.yaml"))
    .replace(
      /^(\s*)df = df\[.*'(telephony|media-relay|asr)'.*\]\s*$/gm,
      (_m, indent: string, word: string) => `${indent}df = df[df.local_port == ${PORT_OF_POD_WORD[word]}]`,
    )
    .replace(/start_time\s*=\s*'-\d+[a-z]+'/g, `start_time=${startNs}`);
  if (/ctx\[/.test(text)) throw new Error("the e2e config still filters on Kubernetes metadata");
  const body = text
    .replace(/^node:.*$/m, "")
    .replace(/^pixie:[\s\S]*?(?=^\S)/m, "")
    .replace(/^metrics:[\s\S]*?(?=^\S)/m, "");
  const cfg =
    `node: node-x\npixie:\n  direct_addr: ${pixieAddr}\nmetrics:\n  listen: 127.0.0.1:${metricsPort}\n${body}`;
  const path = `${dir}/config.yaml`;
  await Deno.writeTextFile(path, cfg);
  return path;
}

/** `deno run --allow-all main.ts ARGS` with stdout and stderr piped. */
export function deno(args: string[]): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  });
}
