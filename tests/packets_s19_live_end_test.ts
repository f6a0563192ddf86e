/**
 * The live packet source when tcpdump misbehaves or traffic stops: a pcap stream that turns unreadable while
 * tcpdump runs on ends the run (the reader's supervisor restarts it) instead of holding the sensor silent for
 * ever; packets the reorder window holds behind a gap come out when the capture ends and when traffic pauses.
 * Real parts: LivePacketSource, LiveCapture and the pcap reader, with a child process standing in for tcpdump
 * that does what tcpdump does (says "listening on" on stderr, writes pcap with nanosecond times to stdout, takes
 * SIGUSR1 without exiting) with the bytes each test gives it.
 */
import assert from "node:assert/strict";
import { LiveCapture } from "../packets/live_capture.ts";
import { LivePacketSource } from "../packets/live_source.ts";
import type { Row } from "../pixie/row.ts";
import { setLogSink } from "../util/log.ts";
import { fakeTcpdump } from "./support/fake_tcpdump.ts";
import { classicPcap, concat, pcmuRecord, rtpTap } from "./support/packet_build.ts";

const tap = rtpTap({ ports: [40000] });

const SEC = 1_700_000_000;

/** A nanosecond pcap (as `tcpdump --time-stamp-precision=nano -w -` writes) of 20 ms PCMU packets `seqs`. */
function rtpPcap(seqs: number[]): Uint8Array {
  return classicPcap(
    { nanosecond: true, littleEndian: true, linkType: 1 },
    seqs.map((seq) => pcmuRecord(30000, 0x1234, seq, seq * 20, SEC)),
  );
}

/**
 * Runs a live source on the stand-in until `until` holds or `boundMs` pass (a liveness bound); `emitMs`: how long
 * the sensor takes over each row; `statsEveryMs`: how often it asks tcpdump for its statistics.
 */
async function runLive(
  pcap: Uint8Array,
  then: "exit" | "stay" | "hang",
  until: (rows: Row[], outcome: string | undefined) => boolean,
  boundMs: number,
  { emitMs = 0, statsEveryMs = 5000 } = {},
): Promise<{ rows: Row[]; outcome: string | undefined }> {
  const prev = setLogSink(() => {});
  const { path, dir } = await fakeTcpdump(pcap, then);
  const src = new LivePacketSource({
    capture: {
      tcpdump: path,
      iface: "lo",
      filter: "",
      snaplen: 2048,
      bufferMib: 1,
      startTimeoutMs: 20_000,
      statsEveryMs,
    },
    taps: [tap],
    node: "n1",
    reportEveryMs: 100,
  });
  const rows: Row[] = [];
  const ac = new AbortController();
  let outcome: string | undefined;
  const emit = async (r: Row) => {
    if (emitMs > 0) await new Promise((res) => setTimeout(res, emitMs));
    rows.push(r);
  };
  const running = src.run(emit, ac.signal).then(
    () => void (outcome = "resolved"),
    (e: Error) => void (outcome = `rejected: ${e.message}`),
  );
  try {
    const t0 = Date.now();
    while (!until(rows, outcome) && Date.now() - t0 < boundMs) await new Promise((r) => setTimeout(r, 50));
    return { rows, outcome };
  } finally {
    ac.abort();
    await running;
    await Deno.remove(dir, { recursive: true });
    setLogSink(prev);
  }
}

Deno.test("live source: a pcap stream that turns to garbage while tcpdump runs on ends the run, rows kept", async () => {
  // Three good records, then bytes in which no record can be found (more than the reader's 1 MiB search).
  const pcap = concat(rtpPcap([1, 2, 3]), new Uint8Array(1_200_000).fill(0xff));
  const { rows, outcome } = await runLive(pcap, "stay", (_, o) => o !== undefined, 20_000);
  assert.ok(
    outcome !== undefined,
    "the run still going with tcpdump's stream unreadable: the sensor is silent",
  );
  assert.match(
    outcome,
    /^rejected: live capture: tcpdump's pcap stream is unreadable \(from byte \d+: no plausible/,
  );
  assert.deepEqual(rows.map((r) => r.columns["rtp_seq"]), [1, 2, 3]);
});

Deno.test("live source: when tcpdump exits, packets held behind a gap are handed on before the run ends", async () => {
  const { rows, outcome } = await runLive(
    rtpPcap([1, 2, 3, 5, 6]),
    "exit",
    (_, o) => o !== undefined,
    20_000,
  );
  assert.match(outcome ?? "still running", /^rejected: live capture ended \(tcpdump exit 0\)/);
  assert.deepEqual(rows.map((r) => r.columns["rtp_seq"]), [1, 2, 3, 5, 6]);
  assert.equal(rows[3]!.columns["rtp_lost"], 1);
  assert.equal(rows[3]!.time, BigInt(SEC) * 1_000_000_000n + 5n * 20_000_000n, "capture time kept");
});

Deno.test("live source: when traffic stops after a loss, the held packets come out while the capture runs", async () => {
  const { rows, outcome } = await runLive(rtpPcap([1, 2, 3, 5, 6]), "stay", (r) => r.length >= 5, 20_000);
  assert.equal(outcome, undefined, "the capture is still running");
  assert.deepEqual(rows.map((r) => r.columns["rtp_seq"]), [1, 2, 3, 5, 6]);
  assert.equal(rows[3]!.columns["rtp_lost"], 1);
});

Deno.test("live source: a tcpdump that answers neither packets nor statistics is stopped, so it is restarted", async () => {
  const { rows, outcome } = await runLive(rtpPcap([1, 2, 3]), "hang", (_, o) => o !== undefined, 20_000, {
    statsEveryMs: 100,
  });
  assert.match(
    outcome ?? "still running: a hung tcpdump silences the sensor",
    /answered neither packets nor/,
  );
  assert.deepEqual(rows.map((r) => r.columns["rtp_seq"]), [1, 2, 3]);
});

Deno.test("live source: a quiet network is not a hung tcpdump: one that answers its statistics runs on", async () => {
  const t0 = Date.now();
  const { outcome } = await runLive(rtpPcap([1, 2, 3]), "stay", () => Date.now() - t0 > 1500, 20_000, {
    statsEveryMs: 100,
  });
  assert.equal(outcome, undefined);
});

Deno.test("live capture: a sensor slow to read is not taken for a hung tcpdump (tcpdump is then blocked writing)", async () => {
  // The stand-in answers no statistics at all. While the sensor is not waiting for its bytes (busy with the ones
  // it has), no verdict can be drawn however many requests go unanswered; once it waits, the stand-in is hung.
  const prev = setLogSink(() => {});
  const { path, dir } = await fakeTcpdump(rtpPcap([1, 2, 3]), "hang");
  const cap = await LiveCapture.start({
    tcpdump: path,
    iface: "lo",
    filter: "",
    snaplen: 2048,
    bufferMib: 1,
    statsEveryMs: 50,
    startTimeoutMs: 20_000,
  });
  try {
    const reader = cap.pcap.getReader();
    assert.ok(!(await reader.read()).done);
    const sleep = (ms: number) => new Promise<"slept">((r) => setTimeout(() => r("slept"), ms));
    assert.equal(
      await Promise.race([cap.ended().then(() => "ended"), sleep(1000)]),
      "slept",
      "stopped while busy",
    );
    let done = false;
    while (!done) done = (await reader.read()).done;
    const end = await Promise.race([cap.ended(), sleep(20_000)]);
    assert.ok(
      end !== "slept" && end.hung,
      "a stand-in that answers nothing while the sensor waits is stopped",
    );
  } finally {
    await cap.close();
    await Deno.remove(dir, { recursive: true });
    setLogSink(prev);
  }
});
