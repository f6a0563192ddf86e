/**
 * `record` against the fake Vizier (a real gRPC server), the real CLI as a subprocess: what it writes for every
 * Pixie column type reads back as the live reader delivered it, and `--max-rows` ends the recording at its N-th
 * row.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { FakeVizier } from "./support/fake_vizier.ts";
import { displayNames } from "./support/capture_vizier.ts";
import { type ColumnInfo, DataType } from "../pixie/messages.ts";
import { readCapture } from "../pixie/capture.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const enc = new TextEncoder();

const CONFIG = (addr: string) =>
  `node: node-x\npixie:\n  direct_addr: ${addr}\nmeasurements:\n  - name: calls\n    signature_rules:\n` +
  `      stream_filter: |\n        df = px.DataFrame(table='http_events', start_time='-30s')\n` +
  `        df = df[df.local_port == 8080]\n`;

const RELATION: ColumnInfo[] = [
  { name: "time_", type: DataType.TIME64NS },
  { name: "pod", type: DataType.STRING },
  { name: "req_body", type: DataType.STRING },
];

const T0 = 1_700_000_000_000_000_000n;

/** Serves `n` rows at once, then keep-alives only (traffic that stopped) until the client cancels. */
function serve(fake: FakeVizier, n: number): void {
  fake.onExecute = async (call) => {
    const names = displayNames(call.request.queryStr);
    for (const [i, name] of names.entries()) await call.meta(`t${i}`, name, RELATION);
    await call.batch({
      tableId: "t0",
      numRows: n,
      eow: false,
      eos: false,
      cols: [
        { type: "time64ns", data: Array.from({ length: n }, (_, i) => T0 + BigInt(i) * 20_000_000n) },
        { type: "string", data: Array.from({ length: n }, () => enc.encode("voice/telephony-0")) },
        { type: "string", data: Array.from({ length: n }, (_, i) => new Uint8Array([0xff, i])) },
      ],
    });
    while (!call.isCancelled()) {
      await call.keepAlive("t0", RELATION);
      await Promise.race([call.cancelled, new Promise((r) => setTimeout(r, 200))]);
    }
  };
}

Deno.test("record --max-rows N stops at the N-th row, not at the next row or the end of --duration", async () => {
  const fake = await FakeVizier.start({ healthIntervalMs: 200 });
  serve(fake, 5);
  const dir = await Deno.makeTempDir();
  try {
    const config = `${dir}/c.yaml`;
    await Deno.writeTextFile(config, CONFIG(fake.address));
    const out = `${dir}/out.jsonl`;
    const started = Date.now();
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        MAIN,
        "record",
        "--config",
        config,
        "--out",
        out,
        "--duration",
        "60s",
        "--max-rows",
        "5",
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // A recording that waits for a sixth row runs its whole minute: end it after 20 s either way.
    const timer = setTimeout(() => child.kill("SIGTERM"), 20_000);
    const r = await child.output();
    clearTimeout(timer);
    const took = Date.now() - started;
    const stderr = new TextDecoder().decode(r.stderr);
    equal(r.code, 0, stderr);
    ok(took < 20_000, `record took ${took} ms for 5 rows that came at once (--duration 60s)`);
    const cap = await readCapture(out);
    equal(cap.rows.length, 5);
    deepEqual(cap.rows.map((row) => row.time), [0n, 1n, 2n, 3n, 4n].map((i) => T0 + i * 20_000_000n));
  } finally {
    await fake.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
