/**
 * `record`'s capture file when writing fails (disk full, file too large) or the run is ended by SIGTERM: the file
 * ends at a whole row, and the end is reported. The write limit is a real one (RLIMIT_FSIZE, with SIGXFSZ ignored:
 * the kernel's partial write then EFBIG, as a full disk gives a partial write then ENOSPC).
 */
import { equal, ok } from "node:assert/strict";
import { readCapture } from "../pixie/capture.ts";
import type { Row } from "../pixie/row.ts";
import { FakeVizier } from "./support/fake_vizier.ts";
import { batchOf, displayNames, relationOf } from "./support/capture_vizier.ts";

const enc = new TextEncoder();

/** A row of `calls/source` at `t` ns with a body of about 300 bytes. */
function row(t: bigint, i: number): Row {
  return {
    query: "calls/source",
    node: "node-x",
    time: t,
    columns: { time_: t, pod: enc.encode("voice/telephony-0"), req_body: enc.encode("x".repeat(300) + i) },
  };
}

/** Writes 2,000 rows with a CaptureWriter under a file size limit; prints the error it ends with. */
const WRITER = `
import { CaptureWriter } from ${JSON.stringify(new URL("../pixie/capture.ts", import.meta.url).href)};
const enc = new TextEncoder();
const w = await CaptureWriter.create(Deno.args[0], "node-x");
try {
  for (let i = 0; i < 2000; i++) {
    const t = 1_700_000_000_000_000_000n + BigInt(i);
    await w.write({ query: "calls/source", node: "node-x", time: t,
      columns: { time_: t, req_body: enc.encode("x".repeat(300) + i) } });
  }
} catch (e) {
  console.log((e as Error).message);
} finally {
  await w.close();
}
`;

Deno.test("a capture write that fails (file too large) leaves the file at its last whole row, and says so", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/writer.ts`, out = `${dir}/out.jsonl`;
    await Deno.writeTextFile(script, WRITER);
    // 100 blocks of 1 KiB: about 300 rows fit, the next write is cut short, then refused.
    const r = await new Deno.Command("bash", {
      args: ["-c", `trap '' XFSZ; ulimit -f 100; exec "${Deno.execPath()}" run -A "${script}" "${out}"`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const said = new TextDecoder().decode(r.stdout);
    equal(r.code, 0, new TextDecoder().decode(r.stderr));
    const m = said.match(
      /^writing (\S+) failed after (\d+) row\(s\), kept \(the file ends at the last whole row\): /,
    );
    ok(m, said);
    equal(m[1], out);
    const text = await Deno.readTextFile(out);
    ok(text.endsWith("\n"), "the file ends at a whole line");
    const cap = await readCapture(out);
    equal(cap.problems.length, 0, JSON.stringify(cap.problems));
    equal(cap.rows.length, Number(m[2]));
    ok(cap.rows.length > 100 && cap.rows.length < 2000, `${cap.rows.length} rows`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("record ended by SIGTERM (kill, timeout, a pod's end) stops as on SIGINT: whole rows, reported", async () => {
  const fake = await FakeVizier.start({ healthIntervalMs: 200 });
  const t0 = BigInt(Date.now() - 30_000) * 1_000_000n;
  let served = 0;
  // Rows keep coming, 20 every 20 ms, until the client goes.
  fake.onExecute = async (call) => {
    const names = displayNames(call.request.queryStr);
    const relation = relationOf(row(t0, 0));
    const id = names.indexOf("calls/source");
    await call.meta(`t${id}`, "calls/source", relation);
    while (!call.isCancelled()) {
      const rows = Array.from({ length: 20 }, () => row(t0 + BigInt(served) * 1_000_000n, served++));
      await call.batch(batchOf(`t${id}`, relation, rows));
      await Promise.race([call.cancelled, new Promise((r) => setTimeout(r, 20))]);
    }
  };
  const dir = await Deno.makeTempDir();
  try {
    const config = `${dir}/c.yaml`, out = `${dir}/out.jsonl`;
    await Deno.writeTextFile(
      config,
      `node: node-x\npixie:\n  direct_addr: ${fake.address}\nmeasurements:\n  - name: calls\n` +
        `    signature_rules:\n      stream_filter: |\n        df = px.DataFrame(table='http_events')\n` +
        `        df = df[df.local_port == 8080]\n`,
    );
    const p = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../main.ts", import.meta.url).pathname,
        "record",
        "--config",
        config,
        "--out",
        out,
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // Bounded wait for the first rows on disk (the default duration is 60 s).
    for (let i = 0; i < 200; i++) {
      const size = await Deno.stat(out).then((s) => s.size, () => 0);
      if (size > 20_000) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    p.kill("SIGTERM");
    const r = await p.output();
    const stderr = new TextDecoder().decode(r.stderr);
    equal(r.code, 0, stderr);
    const said = stderr.match(/record: (\d+) rows written to /);
    ok(said, stderr);
    const cap = await readCapture(out);
    equal(cap.problems.length, 0, JSON.stringify(cap.problems));
    equal(cap.rows.length, Number(said[1]));
    ok(cap.rows.length > 0);
  } finally {
    await fake.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
