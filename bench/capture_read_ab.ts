/**
 * The capture read path of `analyze` of another checkout against this one's, interleaved in one process (issue
 * 16): each capture read by its streaming reader (pixie/capture.ts), the nodes merged by event time
 * (`mergeStreams`) and handed on node by node (`replayStream`), every batch released once delivered, as
 * cli/capture_run.ts does; each delivered row goes through a per-query row dedupe (actors/row_dedupe.ts) as the tap
 * intake's would. No pipeline. Figures are process CPU ms (user + system) per pass, the median of `--rounds`
 * rounds, the two checkouts alternating; a digest of every delivered row (node, query, time, every cell) must be
 * the same for both.
 *
 * `deno run -A bench/capture_read_ab.ts BASE_DIR [--rounds 7] [CAPTURE...]` (default: /tmp/abfull's two captures)
 * @module
 */
import process from "node:process";
import type { Row } from "../pixie/row.ts";

interface Side {
  name: string;
  openCapture: typeof import("../pixie/capture.ts").openCapture;
  mergeStreams: typeof import("../pixie/replay.ts").mergeStreams;
  replayStream: typeof import("../pixie/replay.ts").replayStream;
  RecentRows: typeof import("../actors/row_dedupe.ts").RecentRows;
}

async function side(dir: string, name: string): Promise<Side> {
  const url = (p: string) => new URL(p, `file://${Deno.realPathSync(dir)}/`).href;
  const capture = await import(url("pixie/capture.ts"));
  const replay = await import(url("pixie/replay.ts"));
  const dedupe = await import(url("actors/row_dedupe.ts"));
  return {
    name,
    openCapture: capture.openCapture,
    mergeStreams: replay.mergeStreams,
    replayStream: replay.replayStream,
    RecentRows: dedupe.RecentRows,
  };
}

/** FNV-1a over the delivered rows (node, query, time, every cell's name and value) and the dedupe's answers. */
class Digest {
  h = 0x811c9dc5;
  text(s: string): void {
    for (let i = 0; i < s.length; i++) this.h = Math.imul(this.h ^ s.charCodeAt(i), 0x01000193);
  }
  row(node: string, row: Row, dup: boolean): void {
    this.text(node);
    this.text(row.query);
    this.text(String(row.time));
    this.text(dup ? "d" : "n");
    for (const name in row.columns) {
      this.text(name);
      const c = row.columns[name]!;
      if (c instanceof Uint8Array) {
        for (let i = 0; i < c.length; i++) this.h = Math.imul(this.h ^ c[i]!, 0x01000193);
      } else this.text(`${typeof c}:${String(c)}`);
    }
  }
}

/** One pass over the captures; the digest only when `check` (it reads every byte: not part of the figure). */
async function pass(s: Side, files: readonly string[], check: boolean): Promise<{ ms: number; hex: string }> {
  const t0 = process.cpuUsage();
  const readers = [];
  for (const f of files) readers.push(await s.openCapture(f));
  const inputs = readers.map((r) => ({
    node: r.node,
    batches: r.batches(),
    release: (b: readonly Row[]) => r.release(b),
  }));
  const recent = new Map<string, InstanceType<Side["RecentRows"]>>();
  const digest = new Digest();
  let rows = 0;
  await s.replayStream(s.mergeStreams(inputs), (node, batch) => {
    for (const row of batch) {
      const key = `${node}\u0000${row.query}`;
      let r = recent.get(key);
      if (r === undefined) recent.set(key, r = new s.RecentRows());
      const body = row.columns["req_body"];
      const dup = r.seen(row.time, body instanceof Uint8Array ? body : undefined);
      if (check) digest.row(node, row, dup);
      rows++;
    }
    return Promise.resolve();
  });
  const d = process.cpuUsage(t0);
  return { ms: (d.user + d.system) / 1000, hex: `${(digest.h >>> 0).toString(16)}/${rows}` };
}

const args = Deno.args;
const base = args[0];
if (base === undefined) throw new Error("usage: capture_read_ab.ts BASE_DIR [--rounds N] [CAPTURE...]");
const ri = args.indexOf("--rounds");
const rounds = ri >= 0 ? Number(args[ri + 1]) : 7;
const rest = args.slice(1).filter((a, i, all) => a !== "--rounds" && all[i - 1] !== "--rounds");
const files = rest.length > 0 ? rest : ["/tmp/abfull/node-a.jsonl", "/tmp/abfull/node-b.jsonl"];
const sides = [await side(base, "base"), await side(new URL("..", import.meta.url).pathname, "this")];

const digests = await Promise.all(sides.map(async (s) => (await pass(s, files, true)).hex));
console.log(
  `digest base ${digests[0]}  this ${digests[1]}  ${digests[0] === digests[1] ? "same" : "DIFFERENT"}`,
);
const ms: number[][] = [[], []];
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? [0, 1] : [1, 0];
  for (const i of order) ms[i]!.push((await pass(sides[i]!, files, false)).ms);
}
const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
const min = (a: number[]) => Math.min(...a);
for (let i = 0; i < 2; i++) {
  const all = ms[i]!.map((x) => x.toFixed(0)).join(" ");
  console.log(
    `${sides[i]!.name.padEnd(5)} median ${median(ms[i]!).toFixed(0)} ms  min ${
      min(ms[i]!).toFixed(0)
    } ms  [${all}]`,
  );
}
console.log(
  `this/base median ${(median(ms[1]!) / median(ms[0]!)).toFixed(3)}  min ${
    (min(ms[1]!) / min(ms[0]!)).toFixed(3)
  }`,
);
