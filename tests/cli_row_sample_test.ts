/** The diagnosis sample of a capture run (cli/capture_run.ts RowSample): bounded by what its rows hold. */
import { equal as assertEquals } from "node:assert/strict";
import { rowBytes, RowSample } from "../cli/capture_run.ts";
import type { Row } from "../pixie/row.ts";

const row = (i: number, body: string | Uint8Array): Row => ({
  query: "m/relay",
  node: "n",
  time: BigInt(i),
  columns: { time_: BigInt(i), pod: "p", req_body: body },
});

Deno.test("a string body counts by its length, as a byte body does", () => {
  const text = "x".repeat(1000);
  assertEquals(rowBytes(row(0, text)), rowBytes(row(0, new Uint8Array(1000))));
  // Capture bodies are strings: counted as 16 bytes each, a sample held ten times its budget of them.
  const sample = new RowSample(10_000);
  for (let i = 0; i < 100; i++) sample.add(row(i, text));
  assertEquals(sample.rowsOf("m/relay").length, Math.ceil(10_000 / rowBytes(row(0, text))));
});

Deno.test("each query has its own budget, and queries past the cap are not sampled", () => {
  const sample = new RowSample(2_000, 1);
  for (let i = 0; i < 10; i++) sample.add(row(i, new Uint8Array(900)));
  sample.add({ ...row(0, "a"), query: "m/other" });
  assertEquals(sample.rowsOf("m/relay").length, 2);
  assertEquals(sample.rowsOf("m/other").length, 0);
});
