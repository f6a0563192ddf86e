/**
 * A live packet capture stopped as a live sensor stops (SIGTERM: finishNodes' `sources` phase stops the source with
 * a drain, util/drain_stop.ts) hands on what it still held before the stop resolves, as a capture file's end does:
 * the packets of the kernel's last unfilled block, which tcpdump never writes when it is signalled before the
 * block's 1 s timeout, the RTP packets the reorder window holds behind a loss, and TCP bytes behind a hole (given up
 * as a counted gap). Before, the source returned at the stop with all of them: up to the last second of every call
 * in progress (here a whole 0.6 s call) never reached the Detectors and the Matcher.
 *
 * Real parts: tcpdump on loopback, RTP sent from a real UDP socket (one packet of the call never sent: a loss), a
 * real SensorNode stopped by the signal handler with `run`'s finish, and a real `main.ts run` process stopped with
 * SIGTERM; a stand-in tcpdump (tests/support/fake_tcpdump.ts) for a gap held in the window, a TCP hole, and a
 * tcpdump deaf to its stop.
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { join } from "node:path";
import { SensorNode } from "../actors/node.ts";
import { InProcessBus } from "../bus/in_process.ts";
import { packetSide } from "../cli/sensor_sources.ts";
import { parseConfigText } from "../config/load.ts";
import { FsmMetrics } from "../http/metrics.ts";
import { LivePacketSource } from "../packets/live_source.ts";
import type { Row } from "../pixie/row.ts";
import { DrainStop } from "../util/drain_stop.ts";
import { fakeTcpdump } from "./support/fake_tcpdump.ts";
import { classicPcap, ethernet, ipv4, pcmuRecord, rtpTap, tcp } from "./support/packet_build.ts";
import { type LogLine, ROOT, sleep } from "./support/sensor_process.ts";
import { gatedTest, quietTest } from "./support/tools.ts";
import { stopHandler } from "./support/live_stop.ts";

const liveTest = await gatedTest(import.meta.url, ["root", "tcpdump"]);

const SEC = 1_700_000_000;

/** A nanosecond pcap (as `tcpdump --time-stamp-precision=nano -w -` writes) of 20 ms PCMU packets `seqs`. */
function rtpPcap(seqs: number[]): Uint8Array {
  return classicPcap(
    { nanosecond: true, littleEndian: true, linkType: 1 },
    seqs.map((seq) => pcmuRecord(30000, 0x1234, seq, seq * 20, SEC)),
  );
}

/** A live source on a stand-in tcpdump that writes `pcap` and then stays up (`deaf`: ignoring its stop). */
async function standIn(pcap: Uint8Array, then: "stay" | "deaf", drainMs?: number) {
  const { path, dir } = await fakeTcpdump(pcap, then);
  const src = new LivePacketSource({
    capture: { tcpdump: path, iface: "lo", filter: "", snaplen: 2048, bufferMib: 1, startTimeoutMs: 20_000 },
    taps: [rtpTap({ ports: [40000] })],
    node: "n1",
    drainMs,
  });
  return { src, dir };
}

/** Waits until `ok()` or `boundMs` pass (a liveness bound, not a timing assertion). */
async function until(ok: () => boolean, boundMs: number): Promise<void> {
  const t0 = Date.now();
  while (!ok() && Date.now() - t0 < boundMs) await sleep(20);
}

quietTest(
  "live source: a drained stop hands on the packets held behind a loss before run resolves",
  async () => {
    const { src, dir } = await standIn(rtpPcap([1, 2, 3, 5, 6]), "stay");
    const rows: Row[] = [];
    const stop = new AbortController();
    let resolved = false;
    const running = src.run((r) => Promise.resolve(void rows.push(r)), stop.signal).then(() =>
      resolved = true
    );
    try {
      // Every frame read: 1-3 handed on, 5 and 6 wait for 4 in the reorder window (200 ms of capture time).
      await until(() => (src.source?.stats.frames ?? 0) >= 5, 20_000);
      assert.equal(src.source?.stats.frames, 5);
      assert.deepEqual(rows.map((r) => r.columns["rtp_seq"]), [1, 2, 3]);
      stop.abort(new DrainStop());
      await running;
      assert.ok(resolved);
      // Without the drain the run returned with 5 and 6 still in the window: [1, 2, 3].
      assert.deepEqual(rows.map((r) => r.columns["rtp_seq"]), [1, 2, 3, 5, 6]);
      assert.equal(rows[3]!.columns["rtp_lost"], 1, "the loss is a gap of its length");
      assert.equal(rows[3]!.time, BigInt(SEC) * 1_000_000_000n + 5n * 20_000_000n, "capture time kept");
    } finally {
      stop.abort();
      await running;
      await Deno.remove(dir, { recursive: true });
    }
  },
);

quietTest(
  "live source: a tcpdump deaf to its stop does not hold a drained stop; what was read is handed on",
  async () => {
    const drainMs = 600;
    const { src, dir } = await standIn(rtpPcap([1, 2, 3, 5, 6]), "deaf", drainMs);
    const rows: Row[] = [];
    const stop = new AbortController();
    const running = src.run((r) => Promise.resolve(void rows.push(r)), stop.signal);
    try {
      await until(() => (src.source?.stats.frames ?? 0) >= 5, 20_000);
      stop.abort(new DrainStop());
      // Killed at the bound (it ignores SIGTERM), its stream ended; a liveness bound of 20 s, not a timing assert: a
      // drain that waited on the stand-in would wait for its 10 minutes.
      const outcome = await Promise.race([
        running.then(() => "resolved"),
        sleep(20_000).then(() => "still waiting"),
      ]);
      assert.equal(outcome, "resolved");
      assert.deepEqual(rows.map((r) => r.columns["rtp_seq"]), [1, 2, 3, 5, 6]);
    } finally {
      stop.abort();
      await running;
      await Deno.remove(dir, { recursive: true });
    }
  },
);

quietTest("live source: a tcpdump deaf to its stop does not hold a plain stop either", async () => {
  const { src, dir } = await standIn(rtpPcap([1, 2, 3]), "deaf");
  const stop = new AbortController();
  const running = src.run(() => Promise.resolve(), stop.signal);
  try {
    await until(() => (src.source?.stats.frames ?? 0) >= 3, 20_000);
    // A reader restarting or the system shutting down: stop at once. SIGTERM is ignored, so it is killed after
    // CLOSE_KILL_MS; before, the run waited until the stand-in ended on its own, 30 s later.
    stop.abort();
    const t0 = performance.now();
    const outcome = await Promise.race([
      running.then(() => "resolved"),
      sleep(15_000).then(() => "still waiting"),
    ]);
    assert.equal(outcome, "resolved", `after ${(performance.now() - t0).toFixed(0)} ms`);
  } finally {
    stop.abort();
    await running;
    await Deno.remove(dir, { recursive: true });
  }
});

quietTest(
  "live source: a drained stop gives up a TCP hole as a counted gap and hands on the request behind it",
  async () => {
    // One HTTP connection to port 8080: its SYN, POST /1, POST /2 never captured (a hole), POST /3 held behind it.
    const post = (path: string, body: string) =>
      new TextEncoder().encode(`POST ${path} HTTP/1.1\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    const isn = 1000;
    const reqs = [post("/1", "A".repeat(100)), post("/2", "B".repeat(100)), post("/3", "C".repeat(100))];
    const segment = (seq: number, flags: number, data: Uint8Array, ms: number) => ({
      sec: SEC,
      frac: ms * 1_000_000,
      data: ethernet(0x0800, ipv4("10.0.0.1", "10.0.0.2", 6, tcp(50000, 8080, seq, 1, flags, data))),
    });
    const pcap = classicPcap({ nanosecond: true, littleEndian: true, linkType: 1 }, [
      segment(isn, 0x02, new Uint8Array(0), 0),
      segment(isn + 1, 0x18, reqs[0]!, 10),
      segment(isn + 1 + reqs[0]!.length + reqs[1]!.length, 0x18, reqs[2]!, 30),
    ]);
    const { path, dir } = await fakeTcpdump(pcap, "stay");
    const skipped = new Map<string, number>();
    const src = new LivePacketSource({
      capture: {
        tcpdump: path,
        iface: "lo",
        filter: "",
        snaplen: 2048,
        bufferMib: 1,
        startTimeoutMs: 20_000,
      },
      taps: [rtpTap({ protocol: "http", ports: [8080] })],
      node: "n1",
      metrics: { skipped: (reason, n) => void skipped.set(reason, (skipped.get(reason) ?? 0) + n) },
      drainMs: 300,
    });
    const rows: Row[] = [];
    const stop = new AbortController();
    const running = src.run((r) => Promise.resolve(void rows.push(r)), stop.signal);
    try {
      await until(() => (src.source?.stats.frames ?? 0) >= 3, 20_000);
      assert.deepEqual(rows.map((r) => r.columns["path"]), ["/1"], "POST /3 waits behind the hole");
      stop.abort(new DrainStop());
      await running;
      // Without the drain: ["/1"], and no gap counted.
      assert.deepEqual(rows.map((r) => r.columns["path"]), ["/1", "/3"]);
      assert.equal(new TextDecoder().decode(rows[1]!.columns["payload"] as Uint8Array), "C".repeat(100));
      assert.equal(rows[1]!.time, BigInt(SEC) * 1_000_000_000n + 30_000_000n, "its own capture time");
      assert.equal(skipped.get("tcp_gap"), 1, "the hole is counted as at a file's end");
    } finally {
      stop.abort();
      await running;
      await Deno.remove(dir, { recursive: true });
    }
  },
);

/** The call's packets: 20 ms of PCMU each, sequence numbers 0..59, one missing (never sent: a loss). */
const COUNT = 60;
const LOST = 50;
const SENT = Array.from({ length: COUNT }, (_, i) => i).filter((i) => i !== LOST);
const SSRC = 0x5eed;

/** Payload bytes of packet `seq`: distinct per packet, so each row's audio can be told from another's. */
function payloadOf(seq: number): Uint8Array {
  return Uint8Array.from({ length: 160 }, (_, j) => (seq * 31 + j) & 0xff);
}

function rtpPacket(seq: number): Uint8Array {
  const payload = payloadOf(seq);
  const p = new Uint8Array(12 + payload.length);
  const v = new DataView(p.buffer);
  p[0] = 0x80;
  p[1] = 0; // PCMU
  v.setUint16(2, 1000 + seq);
  v.setUint32(4, 160 * seq);
  v.setUint32(8, SSRC);
  p.set(payload, 12);
  return p;
}

/** Sends the call's packets to `port` on loopback from a real UDP socket, ~10 ms apart. */
async function sendCall(port: number): Promise<void> {
  const sock = dgram.createSocket("udp4");
  try {
    for (const seq of SENT) {
      const b = rtpPacket(seq);
      await new Promise<void>((res, rej) => sock.send(b, port, "127.0.0.1", (e) => (e ? rej(e) : res())));
      await sleep(10);
    }
  } finally {
    sock.close();
  }
}

/** Checks the rows of the call: every packet sent, in order, the one after the loss with it, its own audio. */
function assertWholeCall(rows: readonly Row[], what: string): void {
  const seqs = rows.map((r) => Number(r.columns["rtp_seq"]) - 1000);
  const missing = SENT.filter((s) => !seqs.includes(s));
  assert.deepEqual(missing, [], `${what}: packets missing (${rows.length} rows of ${SENT.length})`);
  assert.deepEqual(seqs, SENT, `${what}: in sequence`);
  rows.forEach((r, i) => {
    assert.equal(r.columns["rtp_ts"], 160 * SENT[i]!);
    assert.deepEqual(r.columns["payload"], payloadOf(SENT[i]!), `${what}: audio of packet ${SENT[i]}`);
  });
  assert.equal(
    rows[SENT.indexOf(LOST + 1)]!.columns["rtp_lost"],
    1,
    `${what}: the loss is a gap of one packet`,
  );
}

function configYaml(port: number): string {
  return `log_level: info
node: drain-node
metrics: { listen: "127.0.0.1:0" }
packets: { interface: lo, pod_metadata: "off", buffer_mib: 4 }
measurements:
  - name: call_media
    signature_rules:
      packets: { protocol: rtp, port: ${port} }
    match_rules:
      - stage: relay
        packets: { protocol: rtp, port: ${port + 1} }
`;
}

const randomPort = () => 42000 + Math.floor(Math.random() * 1000) * 2;

/**
 * A real SensorNode on the live packet source of `run` (cli/sensor_sources.ts packetSide), stopped by the signal
 * handler with `run`'s finish; `stopWhen`: the moment of the SIGTERM. Returns the call's rows the Detector took.
 */
async function stopNodeDuringCall(stopWhen: "after the last packet sent" | "once every packet was read") {
  const port = randomPort();
  const { config } = parseConfigText(configYaml(port), "drain.yaml", {});
  const metrics = new FsmMetrics();
  const packets = await packetSide(config, metrics);
  assert.ok(packets, "a live packet side");
  const bus = new InProcessBus();
  const taken: Row[] = [];
  const node = await SensorNode.start({
    config,
    node: config.node,
    bus,
    metrics,
    mode: "live",
    source: packets.source,
    onRowsDone: (rows) => void taken.push(...rows),
  });
  // As cli/run_cmd.ts wires a live sensor's stop.
  const { h, codes, phases } = stopHandler(node, bus, 20_000, 1000);
  let readAtStop = 0;
  try {
    // tcpdump listens once the source has its packet source (LiveCapture.start waited for "listening on").
    await until(() => packets.source.source !== undefined, 60_000);
    assert.ok(packets.source.source, "tcpdump listening");
    await sendCall(port);
    if (stopWhen === "once every packet was read") {
      // The kernel hands the block over at its 1 s timeout; held packets are released by time only after 1 s more
      // without packets, so the stop comes while the 9 after the loss still wait in the reorder window.
      await until(() => packets.source.source!.stats.frames >= SENT.length, 20_000);
    }
    readAtStop = packets.source.source.stats.frames;
    h.handle("SIGTERM");
    assert.equal(await h.exited, 0);
  } finally {
    if (codes.length === 0) await node.shutdown(1000);
    await packets.stop();
  }
  assert.deepEqual(phases, ["sources", "reader", "detectors", "bus", "registry", "matcher", "exporter"]);
  assert.equal(packets.source.source?.stats.frames, SENT.length, "every packet read from tcpdump");
  return { call: taken.filter((r) => r.query === "call_media/source"), readAtStop };
}

liveTest({
  name:
    "live stop in process, SIGTERM right after a call's last packet: the Detector gets the kernel's last block and the packets behind a loss (real tcpdump)",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { call } = await stopNodeDuringCall("after the last packet sent");
    // Without the drain: no row at all here (the whole call, 0.6 s, was in the kernel's unfilled block, which
    // tcpdump does not write when signalled), and the packets after the loss stayed in the reorder window.
    assertWholeCall(call, "rows the Detector took");
  },
});

liveTest({
  name:
    "live stop in process, SIGTERM once every packet was read: the Detector gets the packets the reorder window held behind a loss (real tcpdump)",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { call, readAtStop } = await stopNodeDuringCall("once every packet was read");
    assert.equal(readAtStop, SENT.length, "every packet read before the stop");
    // Without the drain: the rows ended at the loss (the 9 packets after it were dropped with the window).
    assertWholeCall(call, "rows the Detector took");
  },
});

liveTest({
  name:
    "live stop of a `run` process: SIGTERM right after a call's last packets hands every packet on to the node, exit 0 (real tcpdump)",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "fsmpx-drain-" });
    const port = randomPort();
    const configPath = join(dir, "config.yaml");
    await Deno.writeTextFile(configPath, configYaml(port));
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "main.ts", "run", "--config", configPath],
      cwd: ROOT,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let stderr = "";
    const reading = (async () => {
      for await (const c of child.stderr.pipeThrough(new TextDecoderStream())) stderr += c;
    })();
    let exit: number | undefined;
    const status = child.status.then((s) => exit = s.code);
    const logs = (): LogLine[] =>
      stderr.split("\n").filter((l) => l.startsWith("{")).flatMap((l) => {
        try {
          return [JSON.parse(l) as LogLine];
        } catch {
          return [];
        }
      });
    const line = (msg: string) => logs().find((l) => l.msg === msg);
    try {
      // A cold start under a loaded two-core host can take tens of seconds.
      await until(() => line("live capture started") !== undefined || exit !== undefined, 120_000);
      assert.ok(line("live capture started"), `not capturing (exit ${exit}):\n${stderr}`);
      await sendCall(port);
      // SIGTERM to the sensor only, as Kubernetes stops a pod (tcpdump, its child, is not signalled).
      child.kill("SIGTERM");
      await Promise.race([status, sleep(60_000)]);
      assert.equal(exit, 0, stderr);
    } finally {
      if (exit === undefined) child.kill("SIGKILL");
      await status;
      await reading;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
    const stopped = line("live capture stopped");
    assert.ok(stopped, stderr);
    // Without the drain: fewer frames (tcpdump never wrote the kernel's last block) and fewer rows than frames (the
    // packets after the loss stayed in the reorder window).
    assert.equal(stopped["frames"], SENT.length, `frames read\n${stderr}`);
    assert.equal(stopped["rows"], SENT.length, `rows handed on\n${stderr}`);
    // Handed on while the reader still took rows: none arrived after it had stopped.
    const sys = line("actor system stopped");
    assert.ok(sys, stderr);
    assert.deepEqual(sys["dropped"], { overflow: 0, stopping: 0, deadline: 0 }, stderr);
    assert.ok(line("streams in progress finished"), stderr);
  },
});
