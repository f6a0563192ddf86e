/**
 * `record` of packet taps ends at its duration or a stop signal with what the live capture still holds handed on
 * (the kernel's last block of packets, the RTP reorder windows), as `run` does at its stop: it aborted the capture
 * plainly, and the packets sent in the last ~60-120 ms before a SIGTERM were missing from the recording, without a
 * count. Real parts: `deno task record` with its own permissions, tcpdump on loopback, RTP over UDP.
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { parseCapture } from "../pixie/capture.ts";
import { sleep } from "./support/sensor_process.ts";
import { sendRtp, startRtpRecord } from "./support/record_rtp.ts";
import { gatedTest } from "./support/tools.ts";

const test = await gatedTest(import.meta.url, ["root", "tcpdump"]);

test("record: every RTP packet sent before its SIGTERM is in the recording", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { port, out, child, text, stderr } = await startRtpRecord(dir, 44000);
    // A call's audio, 20 ms a packet, still flowing when the recording is stopped.
    const sock = dgram.createSocket("udp4");
    let seq = 0;
    let stopped = false;
    const sender = (async () => {
      for (let after = 0; after < 20; after += stopped ? 1 : 0) {
        await sendRtp(sock, port, seq);
        seq++;
        await sleep(20);
      }
    })();
    await sleep(2000);
    const sentBeforeStop = seq;
    child.kill("SIGTERM");
    stopped = true;
    const status = await child.status;
    await sender;
    sock.close();
    await stderr;
    assert.equal(status.code, 0, text());
    const cap = parseCapture(await Deno.readTextFile(out), out);
    const seqs = cap.rows.filter((r) => r.query === "m/source").map((r) => Number(r.columns["rtp_seq"]));
    const missing = [...Array(sentBeforeStop).keys()].filter((s) => !seqs.includes(s));
    // Before: the last 3-6 packets (60-120 ms of the call) sent before the stop were not recorded.
    assert.deepEqual(
      missing,
      [],
      `${seqs.length} rows for ${sentBeforeStop} packets sent before the stop\n${text()}`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
