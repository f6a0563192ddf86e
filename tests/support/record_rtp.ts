/**
 * A real `deno task record` of an RTP source tap on loopback (its own permissions, a tcpdump child), and an RTP
 * packet sender for it: the setup of the record tests that need root and tcpdump.
 * @module
 */
import dgram from "node:dgram";
import { join } from "node:path";
import { ROOT, sleep } from "./sensor_process.ts";

/** A running `record` of measurement `m`'s RTP source tap on `port`, into `out`. */
export interface RtpRecord {
  port: number;
  out: string;
  child: Deno.ChildProcess;
  /** Its stderr so far. */
  text(): string;
  /** Its whole stderr, once it ended. */
  stderr: Promise<string>;
}

/**
 * Starts `record` (a long `--duration` the test ends with a signal, so a slow start on a loaded machine cannot eat
 * the window the packets are sent in) and waits until its capture listens (at most 120 s).
 */
export async function startRtpRecord(dir: string, portBase: number): Promise<RtpRecord> {
  const port = portBase + Math.floor(Math.random() * 1000) * 2;
  const config = join(dir, "c.yaml");
  await Deno.writeTextFile(
    config,
    `node: node-r\npackets: { interface: lo, pod_metadata: "off" }\nmeasurements:\n  - name: m\n` +
      `    signature_rules:\n      packets: { protocol: rtp, port: ${port} }\n`,
  );
  const out = join(dir, "out.jsonl");
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
  if (!text.includes("live capture started")) throw new Error(`record's capture did not start:\n${text}`);
  return { port, out, child, text: () => text, stderr };
}

/** Sends RTP packet `seq` (PCMU, 160 samples a packet, SSRC 0x77; payload bytes `fill`) to `port` on loopback. */
export function sendRtp(sock: dgram.Socket, port: number, seq: number, fill = 0): Promise<void> {
  const p = new Uint8Array(172);
  const v = new DataView(p.buffer);
  p[0] = 0x80;
  v.setUint16(2, seq);
  v.setUint32(4, seq * 160);
  v.setUint32(8, 0x77);
  p.fill(fill, 12);
  return new Promise<void>((res, rej) => sock.send(p, port, "127.0.0.1", (e) => (e ? rej(e) : res())));
}
