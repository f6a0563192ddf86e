import { deepEqual, equal, notDeepEqual, ok } from "node:assert/strict";
import { join } from "node:path";
import { MAX_FREE_SLABS, setSlabPoison, SLAB_BYTES, SlabCarver, slabCounts } from "../pixie/capture_slabs.ts";
import { encodeCaptureHeader, encodeCaptureLine, openCapture } from "../pixie/capture.ts";
import { mergeStreams, type NodeRowStream } from "../pixie/replay.ts";
import type { Row } from "../pixie/row.ts";
import { loadConfig } from "../config/load.ts";
import { openCaptures, runCaptureSources } from "../cli/capture_run.ts";
import { setLogLevel } from "../util/log.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** Carves an `n`-byte cell filled with `v` from `c` (as the line reader does: reserve, write, advance). */
function cell(c: SlabCarver, n: number, v: number): Uint8Array {
  const slab = c.reserve(n);
  const at = c.used();
  slab.fill(v, at, at + n);
  c.advance(n);
  return slab.subarray(at, at + n);
}

/** Runs `f` with recycled slabs poisoned, and poisoning off again after. */
async function poisoned<T>(f: () => Promise<T> | T): Promise<T> {
  setSlabPoison(true);
  try {
    return await f();
  } finally {
    setSlabPoison(false);
  }
}

Deno.test("a slab is recycled only once every batch that carved from it is released and the reader moved on", () =>
  poisoned(() => {
    const c = new SlabCarver();
    const half = SLAB_BYTES / 2 - 8;
    // Batch 1 and batch 2 both carve from the first slab; batch 2 spills into a second.
    const a = cell(c, half, 1);
    const lease1 = c.seal();
    const b = cell(c, half, 2);
    const d = cell(c, half, 3);
    const lease2 = c.seal();
    ok(a.buffer === b.buffer && b.buffer !== d.buffer, "the third cell opens a second slab");
    const before = slabCounts().recycled;
    c.release(lease1);
    // Batch 2 still holds the first slab: nothing is recycled, every cell reads as written.
    equal(slabCounts().recycled, before);
    ok(a.every((x) => x === 1) && b.every((x) => x === 2));
    c.release(lease2);
    // The first slab is held by no one now; the second is the reader's current slab.
    equal(slabCounts().recycled, before + 1);
    ok(a.every((x) => x === 0xff) && b.every((x) => x === 0xff), "the recycled slab was poisoned");
    ok(d.every((x) => x === 3), "the slab the reader carves from is never recycled");
    c.close();
    equal(slabCounts().recycled, before + 2, "closed, the last slab's batches are all released");
  }));

Deno.test("a batch never released keeps its slabs out of the pool; rows read after the last seal too", () =>
  poisoned(() => {
    const c = new SlabCarver();
    const kept = cell(c, SLAB_BYTES - 100, 7);
    c.seal(); // never released
    const unsealed = cell(c, SLAB_BYTES - 100, 8);
    const before = slabCounts().recycled;
    c.close();
    c.close();
    cell(new SlabCarver(), 10, 9);
    equal(slabCounts().recycled, before);
    ok(kept.every((x) => x === 7) && unsealed.every((x) => x === 8));
  }));

Deno.test("released slabs are reused, and no more of them are kept than the pool holds", () => {
  const c = new SlabCarver();
  const leases = [];
  for (let i = 0; i < 3 * MAX_FREE_SLABS; i++) {
    cell(c, SLAB_BYTES - 100, i);
    leases.push(c.seal());
  }
  for (const l of leases) c.release(l);
  equal(slabCounts().free, MAX_FREE_SLABS);
  const made = slabCounts().made;
  const d = new SlabCarver();
  for (let i = 0; i < MAX_FREE_SLABS - 2; i++) cell(d, SLAB_BYTES - 100, 1);
  equal(slabCounts().made, made, "every slab came from the pool");
});

Deno.test("the reader's cells start on a 4-byte boundary of their slab (the dedupe hashes a payload by words)", async () => {
  const c = new SlabCarver();
  for (const n of [1, 2, 3, 5, 7, 431, 1000]) {
    const a = cell(c, n, 1);
    equal(a.byteOffset % 4, 0, `a cell after ${n} bytes`);
    equal(cell(c, 3, 2).byteOffset % 4, 0);
  }
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "n.jsonl");
    const lines = [encodeCaptureHeader("n")];
    for (let i = 0; i < 300; i++) {
      // Bodies of every length modulo 4, escapes in some (the kernel's path and the line reader's).
      const body = `{"seq":"${i}","p":"${"x".repeat(100 + (i % 7))}${i % 3 === 0 ? '\\"' : ""}"}`;
      const row: Row = {
        query: "m/source",
        node: "n",
        time: BigInt(i + 1),
        columns: { time_: BigInt(i + 1), body: new TextEncoder().encode(body) },
      };
      lines.push(encodeCaptureLine(row));
    }
    await Deno.writeTextFile(file, lines.join("\n") + "\n");
    const r = await openCapture(file, { batchRows: 50 });
    let n = 0;
    for await (const b of r.batches()) {
      for (const row of b) {
        const body = row.columns["body"] as Uint8Array;
        equal(
          body.byteOffset % 4,
          0,
          `row ${row.time}: a body of ${body.length} bytes at ${body.byteOffset}`,
        );
        n++;
      }
    }
    equal(n, 300);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CaptureReader.release: idempotent, and a batch of another reader is ignored", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "n.jsonl");
    const lines = [encodeCaptureHeader("n")];
    const body = "x".repeat(900);
    for (let i = 0; i < 600; i++) {
      const row: Row = {
        query: "m/source",
        node: "n",
        time: BigInt(i + 1),
        columns: { time_: BigInt(i + 1), body: new TextEncoder().encode(`${body}${i}`) },
      };
      lines.push(encodeCaptureLine(row));
    }
    await Deno.writeTextFile(file, lines.join("\n") + "\n");
    await poisoned(async () => {
      const r = await openCapture(file, { batchRows: 50 });
      const other = await openCapture(file, { batchRows: 50 });
      const batches: Row[][] = [];
      for await (const b of r.batches()) batches.push(b);
      const otherBatches: Row[][] = [];
      for await (const b of other.batches()) otherBatches.push(b);
      const before = slabCounts().recycled;
      for (const b of batches) other.release(b);
      equal(slabCounts().recycled, before, "another reader's batches are not this one's to release");
      for (const b of otherBatches.slice(1)) other.release(b);
      // Batch 0 still holds the first slab, which batch 1 shares: the rows of batch 0 read as written.
      const text = (row: Row) => new TextDecoder().decode(row.columns["body"] as Uint8Array);
      equal(text(otherBatches[0]![49]!), `${body}49`);
      const recycled = slabCounts().recycled;
      ok(recycled > before);
      for (const b of otherBatches.slice(1)) other.release(b);
      equal(slabCounts().recycled, recycled, "a second release of a batch does nothing");
      notDeepEqual(text(otherBatches[5]![0]!), `${body}250`, "a released batch's cells were poisoned");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("mergeStreams releases a batch once its last row was handed on and the next step was asked for", async () => {
  const released: number[] = [];
  const rowsOf = (b: number, times: number[]): Row[] =>
    times.map((t, i) => ({ query: "m/q", node: "a", time: BigInt(t), columns: { time_: BigInt(t), b, i } }));
  // Batch 1 holds a row 0.5 s back in time (behind batch 0's last one): it goes out with batch 0's rows.
  const batches = [rowsOf(0, [1, 2, 3]), rowsOf(1, [4, 5, 2.5e8]), rowsOf(2, [3e9, 4e9])];
  async function* gen(): AsyncGenerator<Row[]> {
    for (const b of batches) yield b;
  }
  const input: NodeRowStream = {
    node: "a",
    batches: gen(),
    release: (b) => released.push(batches.indexOf(b as Row[])),
  };
  const steps: number[][] = [];
  const releasedAt: number[][] = [];
  for await (const step of mergeStreams([input], { windowNs: 1_000_000_000n })) {
    releasedAt.push([...released]);
    steps.push(step.map((x) => Number(x.row.columns["b"])));
  }
  releasedAt.push([...released]);
  // The step holding a batch's last row is yielded before that batch is released, never after.
  for (let s = 0; s < steps.length; s++) {
    for (const b of released) {
      const last = Math.max(...steps.flatMap((st, k) => st.includes(b) ? [k] : []));
      ok(!releasedAt[s]!.includes(b) || last < s, `batch ${b} released before step ${s} was done`);
    }
  }
  deepEqual([...released].sort(), [0, 1, 2]);
});

Deno.test("analyze with recycled slabs poisoned: the same records as without recycling", async () => {
  setLogLevel("error");
  const { config } = await loadConfig(join(ROOT, "fixtures/demo/config.yaml"));
  const files = ["node-a", "node-b", "node-c"].map((n) => join(ROOT, `fixtures/demo/${n}.jsonl`));
  const records = (r: { signatures: unknown[]; matches: unknown[] }) =>
    [...r.signatures, ...r.matches].map((x) => JSON.stringify(x)).sort();
  // The reference recycles nothing: no batch is handed back.
  const unreleased = (await openCaptures(files, config)).map((c) => ({ ...c, release: undefined }));
  const plain = await runCaptureSources(config, unreleased, {});
  const before = slabCounts().recycled;
  const poisonedRun = await poisoned(async () =>
    runCaptureSources(config, await openCaptures(files, config), {})
  );
  ok(slabCounts().recycled - before > 20, `slabs recycled: ${slabCounts().recycled - before}`);
  ok(plain.matches.length > 0);
  deepEqual(records(poisonedRun), records(plain));
});

Deno.test("a paced replay with recycled slabs poisoned: the same records as without recycling", async () => {
  setLogLevel("error");
  const { config } = await loadConfig(join(ROOT, "fixtures/demo/config.yaml"));
  const files = ["node-a", "node-b", "node-c"].map((n) => join(ROOT, `fixtures/demo/${n}.jsonl`));
  // Without `hop`: paced, which of another node's matches a match's hop finds depends on the interleaving of the
  // nodes' actors with the file reads, run to run.
  const records = (r: { signatures: unknown[]; matches: unknown[] }) =>
    [...r.signatures, ...r.matches].map((x) => JSON.stringify({ ...(x as object), hop: undefined })).sort();
  // Paced so fast that it never waits: rows queue in the nodes' mailboxes as in `run --capture`, and a batch goes
  // back only once the node's actors took every row of it (released on ingest, the poison changes the records).
  const speed = 1e9;
  const unreleased = (await openCaptures(files, config)).map((c) => ({ ...c, release: undefined }));
  const plain = await runCaptureSources(config, unreleased, { speed });
  const before = slabCounts().recycled;
  const poisonedRun = await poisoned(async () =>
    runCaptureSources(config, await openCaptures(files, config), { speed })
  );
  ok(slabCounts().recycled - before > 20, `slabs recycled: ${slabCounts().recycled - before}`);
  ok(plain.matches.length > 0);
  deepEqual(records(poisonedRun), records(plain));
});
