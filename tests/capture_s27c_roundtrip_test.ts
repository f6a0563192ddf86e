/**
 * What `record` writes, the capture readers read back byte for byte: every read path (the whole-text parser, the
 * streaming reader, and its deferred lines as the merge of captures reads them).
 */
import { deepEqual, equal } from "node:assert/strict";
import { CaptureWriter, openCapture, parseCapture, readCapture } from "../pixie/capture.ts";
import { DeferredRow } from "../pixie/line_arena.ts";
import type { Row } from "../pixie/row.ts";

const enc = new TextEncoder();

/** Every row of `path` through each reader, by reader. */
async function readAllWays(path: string): Promise<Record<string, Row[]>> {
  const deferred: Row[] = [];
  const reader = await openCapture(path);
  for await (const batch of reader.batches({ deferred: true })) {
    for (const r of batch) {
      deferred.push(r instanceof DeferredRow ? reader.materialize(r.chunk, r.at, r.len, r.line)! : r);
    }
  }
  return {
    readCapture: (await readCapture(path)).rows,
    parseCapture: parseCapture(await Deno.readTextFile(path), path).rows,
    deferred,
  };
}

Deno.test("a payload that starts with a UTF-8 byte-order mark keeps it through a capture", async () => {
  // A JSON body sent with a BOM (.NET's StreamWriter, PowerShell), and binary audio whose first bytes happen to
  // be EF BB BF while the rest is valid UTF-8: either way the cell is those bytes, BOM included.
  const json = enc.encode('\ufeff{"event":"media","media":{"payload":"//8A"}}');
  const pcm = new Uint8Array([0xef, 0xbb, 0xbf, 0x10, 0x00, 0x20, 0x00, 0x30, 0x00]);
  const bomOnly = new Uint8Array([0xef, 0xbb, 0xbf]);
  const rows: Row[] = [json, pcm, bomOnly].map((req_body, i) => ({
    query: "m/source",
    node: "node-a",
    time: 1_700_000_000_000_000_000n + BigInt(i),
    columns: { time_: 1_700_000_000_000_000_000n + BigInt(i), pod: enc.encode("voice/bot-0"), req_body },
  }));
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/node-a.jsonl`;
    const w = await CaptureWriter.create(path, "node-a");
    for (const r of rows) await w.write(r);
    await w.close();
    for (const [how, got] of Object.entries(await readAllWays(path))) {
      equal(got.length, rows.length, how);
      for (let i = 0; i < rows.length; i++) {
        deepEqual(got[i]!.columns["req_body"], rows[i]!.columns["req_body"], `${how}: row ${i}`);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
