/**
 * `record` of packet taps: `deno task record` (its own permissions) captures the node's RTP with a tcpdump child
 * and writes rows in the capture format; `analyze` reads them back. Needs root and tcpdump.
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { parseCapture } from "../pixie/capture.ts";
import { sleep } from "./support/sensor_process.ts";
import { sendRtp, startRtpRecord } from "./support/record_rtp.ts";

const have = async (cmd: string) =>
  (await new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" }).output()).success;
const canRun = Deno.uid() === 0 && await have("tcpdump");
const ci = Deno.env.get("CI") === "true";
if (!canRun && !ci) console.log("cli_record_packets_test: skipped (needs root and tcpdump)");

Deno.test({
  name: "record writes the node's RTP as capture rows through deno task record's permissions",
  ignore: !canRun && !ci,
  fn: async () => {
    assert.ok(canRun, "CI must run this test: root and tcpdump are required");
    const dir = await Deno.makeTempDir();
    try {
      const { port, out, child, stderr } = await startRtpRecord(dir, 43000);
      const sock = dgram.createSocket("udp4");
      for (let i = 0; i < 50; i++) {
        await sendRtp(sock, port, i, i);
        await sleep(10);
      }
      sock.close();
      await sleep(500); // the reader's reorder window and the last rows written
      child.kill("SIGINT");
      const status = await child.status;
      const log = await stderr;
      assert.equal(status.code, 0, log);
      const cap = parseCapture(await Deno.readTextFile(out), out);
      assert.equal(cap.node, "node-r");
      assert.equal(cap.problems.length, 0);
      // The source tap and the default downstream rule (same port) both take every packet.
      const source = cap.rows.filter((r) => r.query === "m/source");
      assert.equal(cap.rows.filter((r) => r.query === "m/downstream").length, source.length);
      // Everything was sent after tcpdump listened: every packet is a row.
      assert.equal(source.length, 50, `rows ${source.length}\n${log}`);
      const seqs = source.map((r) => Number(r.columns["rtp_seq"]));
      assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), "in sequence");
      const last = source.at(-1)!;
      assert.equal((last.columns["payload"] as Uint8Array)[0], Number(last.columns["rtp_seq"]));
      assert.equal(new TextDecoder().decode(last.columns["rtp_codec"] as Uint8Array), "PCMU/8000");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
