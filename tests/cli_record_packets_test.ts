/**
 * `record` of packet taps: `deno task record` (its own permissions) captures the node's RTP with a tcpdump child
 * and writes rows in the capture format; `analyze` reads them back. Needs root and tcpdump.
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { join } from "node:path";
import { parseCapture } from "../pixie/capture.ts";
import { ROOT, sleep } from "./support/sensor_process.ts";

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
    const port = 43000 + Math.floor(Math.random() * 1000) * 2;
    try {
      const config = join(dir, "c.yaml");
      await Deno.writeTextFile(
        config,
        `node: node-r\npackets: { interface: lo, pod_metadata: "off" }\nmeasurements:\n  - name: m\n` +
          `    signature_rules:\n      packets: { protocol: rtp, port: ${port} }\n`,
      );
      const out = join(dir, "out.jsonl");
      // A long --duration that the test ends with SIGINT (as a user's Ctrl-C), so a slow start under a loaded
      // machine cannot eat the window in which the packets are sent.
      const child = new Deno.Command(Deno.execPath(), {
        args: ["task", "-q", "record", "--config", config, "--out", out, "--duration", "120s"],
        cwd: ROOT,
        stdout: "null",
        stderr: "piped",
      }).spawn();
      let text = "";
      const stderr = (async () => {
        for await (
          const c of child.stderr.pipeThrough(new TextDecoderStream() as TransformStream<Uint8Array, string>)
        ) {
          text += c;
        }
        return text;
      })();
      // deno task starts, then tcpdump; it logs once its socket listens.
      for (let i = 0; i < 1200 && !text.includes("live capture started"); i++) await sleep(100);
      assert.ok(text.includes("live capture started"), text);
      const sock = dgram.createSocket("udp4");
      for (let i = 0; i < 50; i++) {
        const p = new Uint8Array(172);
        const v = new DataView(p.buffer);
        p[0] = 0x80;
        v.setUint16(2, i);
        v.setUint32(4, i * 160);
        v.setUint32(8, 0x77);
        p.fill(i, 12);
        await new Promise<void>((res, rej) => sock.send(p, port, "127.0.0.1", (e) => (e ? rej(e) : res())));
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
