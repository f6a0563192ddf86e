/**
 * A sensor reading packets tells the late-row rules whether its reading keeps up (RowSource.inputBusy), as Pixie's
 * reader does: its packet parsing runs outside the actors, and the thread's own demand cannot be read under the
 * run task's permissions (actors/thread_demand.ts: NaN there), so a packets-only sensor behind its input was
 * never counted saturated and never shed late rows. Real parts: LivePacketSource, LiveCapture and the pcap reader,
 * with a child process standing in for tcpdump.
 */
import { ok } from "node:assert/strict";
import { LivePacketSource } from "../packets/live_source.ts";
import { setLogSink } from "../util/log.ts";
import { fakeTcpdump } from "./support/fake_tcpdump.ts";
import { classicPcap, pcmuRecord, rtpTap } from "./support/packet_build.ts";
import { CombinedRowSource } from "../cli/sensor_sources.ts";

Deno.test("s31 live source: packets waiting in tcpdump's pipe read as busy input; a quiet capture as idle", async () => {
  // 3,000 packets of 20 ms, all in the pipe at once; each row takes the sensor 2 ms to hand on (a reader behind).
  const pcap = classicPcap(
    { nanosecond: true, littleEndian: true, linkType: 1 },
    Array.from(
      { length: 3000 },
      (_, i) => pcmuRecord(30_000 + (i % 10), 0xa0 + (i % 10), i, i * 2, 1_700_000_000),
    ),
  );
  const prev = setLogSink(() => {});
  const { path, dir } = await fakeTcpdump(pcap, "stay");
  const src = new LivePacketSource({
    capture: { tcpdump: path, iface: "lo", filter: "", snaplen: 2048, bufferMib: 1, startTimeoutMs: 20_000 },
    taps: [rtpTap({ ports: [40000] })],
    node: "n1",
    reportEveryMs: 100,
  });
  // The sensor's source as the reader sees it: the packet meter passed on.
  const combined = new CombinedRowSource([src]);
  ok(combined.inputBusy !== undefined, "the packet source is metered");
  let rows = 0;
  const busy: number[] = [];
  const ac = new AbortController();
  const running = src.run(async () => {
    rows++;
    const until = performance.now() + 2;
    while (performance.now() < until) { /* the sensor's work on the row */ }
    if (rows % 200 === 0) busy.push(combined.inputBusy!());
    await Promise.resolve();
  }, ac.signal).catch(() => {});
  try {
    const t0 = Date.now();
    while (rows < 2500 && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 50));
    ok(rows >= 2500, `${rows} rows`);
    // Behind: after its first second, the reading found the next packets waiting nearly all the time.
    const late = busy.slice(3);
    ok(late.length > 0 && late.every((b) => b >= 0.8), `busy while behind: ${busy.map((b) => b.toFixed(2))}`);
    // Then every packet is read and tcpdump says nothing more: idle within a few seconds.
    while (rows < 3000 && Date.now() - t0 < 40_000) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 3000));
    ok(src.inputBusy() < 0.2, `idle after the capture went quiet: ${src.inputBusy()}`);
  } finally {
    ac.abort();
    await running;
    await Deno.remove(dir, { recursive: true });
    setLogSink(prev);
  }
});
