/** The diagnosis sample keeps its rows packed (cli/capture_run.ts PackedRows): rebuilt exactly, holding no cell. */
import { deepEqual, equal, ok } from "node:assert/strict";
import { PackedRows, RowSample } from "../cli/capture_run.ts";
import type { Row } from "../pixie/row.ts";

const enc = new TextEncoder();

function rows(): Row[] {
  const out: Row[] = [];
  for (let i = 0; i < 3000; i++) {
    out.push({
      query: "m/relay",
      node: i % 7 === 0 ? "node-a" : "node-b",
      time: 1_763_900_000_000_000_000n + BigInt(i) * 20_000_000n,
      columns: {
        time_: 1_763_900_000_000_000_000n + BigInt(i) * 20_000_000n,
        pod: enc.encode("voice/relay-0"),
        remote_port: 10000 + (i % 1000),
        req_body: enc.encode(`{"event":"media","media":{"payload":"${"QUJD".repeat(i % 60)}"}}`),
        ...(i % 5 === 0 ? { upid: "a1b2c3d4-0000-0000-0000-00000000000" + (i % 10), big: -(1n << 70n) } : {}),
        ...(i % 9 === 0 ? { ok: i % 2 === 0, lat: i / 3, empty: new Uint8Array(0), odd: "\ud800é" } : {}),
      },
    });
  }
  // Times beyond int64 and a row too long for a chunk.
  out.push({ query: "m/relay", node: "n", time: 1n << 64n, columns: { time_: 1n << 64n } });
  out.push({
    query: "m/relay",
    node: "n",
    time: -5n,
    columns: { req_body: new Uint8Array(300_000).fill(7) },
  });
  return out;
}

Deno.test("packed rows come back as they were: cell types, values, column order", () => {
  const p = new PackedRows("m/relay");
  const want = rows();
  for (const r of want) p.add(r);
  equal(p.count, want.length);
  const got = p.rows();
  deepEqual(got, want);
  for (let i = 0; i < want.length; i++) {
    deepEqual(Object.keys(got[i]!.columns), Object.keys(want[i]!.columns));
  }
});

Deno.test("the sample holds none of the rows' cells: the capture reader's slabs are not kept alive", () => {
  const sample = new RowSample();
  // A row's cells are views of a shared slab, as the capture reader hands them.
  const slab = new Uint8Array(64 * 1024);
  const body = slab.subarray(100, 100 + 20);
  body.set(enc.encode('{"media":"payload1"}'));
  sample.add({ query: "m/relay", node: "n", time: 1n, columns: { time_: 1n, req_body: body } });
  // The reader reuses nothing, but another row written over the same bytes must not change the sample.
  slab.fill(0);
  const [r] = sample.rowsOf("m/relay");
  const cell = r!.columns["req_body"] as Uint8Array;
  equal(new TextDecoder().decode(cell), '{"media":"payload1"}');
  ok(cell.buffer !== slab.buffer);
});
