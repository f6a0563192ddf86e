/**
 * `ui` over JetStream keeps what the stream stored over the last `--since` while it tails, not every record it
 * ever read: a UI left open on a busy stream held every record for as long as it ran (memory and the cost of each
 * view grew without bound). The window slides with the newest stored message (the server's clock), so a quiet
 * stream keeps its last records on screen.
 * @module
 */
import { deepEqual, ok } from "node:assert/strict";
import { JetStreamBus } from "../bus/jetstream.ts";
import { RecordStore } from "../http/ui/store.ts";
import type { MatchRecord, SignatureRecord } from "../report/records.ts";
import { NatsServer } from "./support/nats_server.ts";
import { testBusOptions, testSignature } from "./support/bus_fixtures.ts";
import { ROOT, sleep, writeSensorConfig } from "./support/sensor_process.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

const T0 = 1_763_910_000_000_000_000n;

function sig(n: number): SignatureRecord {
  return {
    kind: "signature",
    measurement: "m",
    signature_id: String(n).padStart(16, "0"),
    node: "a",
    pod: "voice/telephony-0",
    stream: "call-1",
    time_ns: (T0 + BigInt(n) * 1_000_000_000n).toString(),
    offset_ms: 0,
    ids: { interval_id: `iv-${n}` },
    bytes: 600,
  };
}

function match(n: number, stage: string, latencyS: number): MatchRecord {
  const s = sig(n);
  const t = BigInt(s.time_ns) + BigInt(latencyS * 1e9);
  return {
    kind: "match",
    measurement: "m",
    stage,
    signature_id: s.signature_id,
    ids: s.ids,
    source: { node: "a", pod: s.pod, stream: s.stream, time_ns: s.time_ns, offset_ms: 0 },
    target: { node: "b", pod: `voice/${stage}-0`, stream: `${stage}-1`, time_ns: t.toString(), offset_ms: 0 },
    latency_s: latencyS,
    ber: 0.01,
  };
}

Deno.test("UI store with a window: records stored before the newest one's window leave; a repeat lives on", () => {
  const store = new RecordStore({ m: { relay: "source", asr: "relay" } }, { m: ["relay", "asr"] }, {
    windowMs: 1000,
  });
  store.add(sig(1), 0);
  store.add(match(1, "relay", 0.15), 50);
  store.add(match(1, "asr", 0.65), 100);
  store.add(sig(2), 500);
  store.add(match(2, "relay", 0.2), 520);
  deepEqual(store.counts, { signatures: 2, matches: 3 });
  deepEqual(store.waterfall({})!.rows.map((r) => r.id), ["iv-1", "iv-2"]);
  store.add(sig(3), 1080); // the window is [80, 1080]: signature 1 and its relay match leave
  deepEqual(store.counts, { signatures: 2, matches: 2 });
  store.add(sig(2), 1400); // stored again (the tail repeats the history's last ms): it lives on
  store.add(match(2, "asr", 0.7), 1450);
  store.add(match(3, "relay", 0.1), 1600); // [600, 1600]: match 1 asr and match 2 relay leave
  deepEqual(store.counts, { signatures: 2, matches: 2 });
  const rows = store.waterfall({})!.rows;
  deepEqual(rows.map((r) => r.id), ["iv-2", "iv-3"]);
  deepEqual(rows.map((r) => r.stages.map((c) => c.latencyMs)), [[null, 700], [100, null]]);
  ok(store.overview().length === 1);
  // Records not told when they were stored (a file, a demo) are kept.
  const files = new RecordStore({}, {}, { windowMs: 1000 });
  files.add(sig(1));
  files.add(sig(2), 5000);
  deepEqual(files.counts, { signatures: 2, matches: 0 });
});

async function info(url: string): Promise<{ signatures: number }> {
  const res = await fetch(`${url}api/info`);
  return await res.json() as { signatures: number };
}

natsTest({
  name: "ui over JetStream: the live tail keeps the records stored over the last --since, not all it read",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const srv = await NatsServer.start();
    const dir = await Deno.makeTempDir({ prefix: "fsmpx-ui-window-" });
    let child: Deno.ChildProcess | undefined;
    const bus = await JetStreamBus.connect(testBusOptions(srv.url, "node-a", { stream: "FSMPX" }));
    try {
      const config = await writeSensorConfig({
        base: `${ROOT}fixtures/demo/config.yaml`,
        dir,
        node: "viewer",
        natsUrl: srv.url,
      });
      let n = 0;
      const publish = async (count: number) => {
        for (let i = 0; i < count; i++) await bus.publishSignature(testSignature(++n, "call_audio"));
        await bus.flush(5000);
      };
      await publish(5);
      child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "main.ts", "ui", "--config", config, "--listen", "127.0.0.1:0", "--since", "2s"],
        cwd: ROOT,
        stdin: "null",
        stdout: "piped",
        stderr: "null",
      }).spawn();
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let out = "";
      while (!/UI at (http:\S+)/.test(out)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`ui ended before serving: ${out}`);
        out += value;
      }
      void (async () => {
        while (!(await reader.read()).done) { /* drain */ }
      })();
      const url = /UI at (http:\S+)/.exec(out)![1]!;
      ok((await info(url)).signatures <= 5, "the history");
      // 10 signatures every 500 ms for 6 s: 120 stored, about 40 of them within 2 s of the newest.
      for (let k = 0; k < 12; k++) {
        await publish(10);
        await sleep(500);
      }
      let held = 0;
      for (let tries = 0; tries < 40; tries++) {
        held = (await info(url)).signatures;
        if (held > 0 && held <= 60) break;
        await sleep(100);
      }
      ok(held >= 20 && held <= 60, `the UI holds ${held} of the ${n} signatures published`);
    } finally {
      await bus.close();
      if (child) {
        try {
          child.kill("SIGINT");
        } catch {
          // already gone
        }
        await child.status;
      }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await srv.stop();
    }
  },
});
