/**
 * Live capture cost: RTP packets sent on loopback as fast as one sender process can, captured by the sensor's
 * tcpdump child and parsed into rows. Reports packets/s sent, rows/s made, kernel drops, and the sensor process's
 * CPU time per packet (the pipe from tcpdump plus parsing), so the `-U` packet-buffered pipe's cost shows.
 *   deno run --allow-all bench/packets_live_speed.ts [packets]
 * @module
 */
import { LivePacketSource } from "../packets/live_source.ts";
import { bpfFilter } from "../packets/taps.ts";
import { rtpTap } from "../tests/support/packet_build.ts";
import { setLogSink } from "../util/log.ts";
import { syntheticCapture } from "./packets_rtp_speed.ts";

/** Figures of one run. */
export interface LiveSpeed {
  sent: number;
  rows: number;
  seconds: number;
  sentPerSec: number;
  kernelDrops: number;
  /** Sensor CPU (user+sys) per second of capture, from /proc/self/stat. */
  cpuPerSec: number;
  /** What sent the packets. */
  sender: string;
}

function cpuSeconds(): number {
  const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

/**
 * Sends RTP packets on loopback while capturing them live: with tcpreplay (Debian `tcpreplay`) a synthetic capture
 * of 1,000 streams replayed at `pps` packets per second, else a python3 sender as fast as it can.
 */
export async function liveSpeed(n = 200_000, pps = 200_000): Promise<LiveSpeed> {
  const prev = setLogSink(() => {});
  const tap = rtpTap();
  let drops = 0;
  const src = new LivePacketSource({
    capture: { tcpdump: "tcpdump", iface: "lo", filter: bpfFilter([tap]), snaplen: 512, bufferMib: 64 },
    taps: [tap],
    node: "bench",
    reportEveryMs: 200,
    metrics: { kernelDrops: (k) => drops = k },
  });
  let rows = 0;
  const ac = new AbortController();
  const running = src.run(() => Promise.resolve(void rows++), ac.signal);
  await new Promise((r) => setTimeout(r, 500));
  const tcpreplay =
    (await new Deno.Command("sh", { args: ["-c", "command -v tcpreplay"], stdout: "null" }).output())
      .success;
  const cpu0 = cpuSeconds();
  const t0 = performance.now();
  let sendSeconds: number;
  let sent = n;
  if (tcpreplay) {
    const perStream = Math.max(1, Math.round(n / 1000));
    sent = perStream * 1000;
    const file = await Deno.makeTempFile({ suffix: ".pcap" });
    await Deno.writeFile(file, syntheticCapture(1000, perStream));
    const s0 = performance.now();
    const out = await new Deno.Command("tcpreplay", {
      args: ["-i", "lo", `--pps=${pps}`, "-K", "-q", file],
      stdout: "null",
      stderr: "piped",
    }).output();
    sendSeconds = (performance.now() - s0) / 1000;
    await Deno.remove(file);
    if (!out.success) throw new Error(`tcpreplay: ${new TextDecoder().decode(out.stderr)}`);
  } else {
    const sender = `
import socket, struct, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
p = bytes(160)
t0 = time.time()
for i in range(${n}):
    k = i // 1000
    h = struct.pack('!BBHII', 0x80, 0, k & 0xffff, (k * 160) & 0xffffffff, 1000 + (i % 1000))
    s.sendto(h + p, ('127.0.0.1', 47000 + 2 * (i % 1000)))
print(time.time() - t0)
`;
    const out = await new Deno.Command("python3", { args: ["-c", sender], stdout: "piped" }).output();
    sendSeconds = Number(new TextDecoder().decode(out.stdout).trim());
  }
  for (let i = 0; i < 200 && rows < sent; i++) await new Promise((r) => setTimeout(r, 50));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds() - cpu0;
  ac.abort();
  await running.catch(() => {});
  setLogSink(prev);
  return {
    sent,
    rows,
    seconds,
    sentPerSec: Math.round(sent / sendSeconds),
    kernelDrops: drops,
    cpuPerSec: cpu / seconds,
    sender: tcpreplay ? "tcpreplay" : "python3",
  };
}

if (import.meta.main) {
  const r = await liveSpeed(Number(Deno.args[0] ?? 200_000), Number(Deno.args[1] ?? 200_000));
  console.log(
    `live capture: ${r.sent} RTP packets sent by ${r.sender} at ${r.sentPerSec.toLocaleString("en")}/s ` +
      `(1,000 streams), ` +
      `${r.rows} rows, kernel drops ${r.kernelDrops}, sensor CPU ${
        (r.cpuPerSec * 100).toFixed(0)
      }% of a core ` +
      `over ${r.seconds.toFixed(1)} s`,
  );
}
