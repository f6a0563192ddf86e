/**
 * Live capture cost: RTP packets sent on loopback as fast as one sender process can, captured by the sensor's
 * tcpdump child and parsed into rows. Reports packets/s sent, rows/s made, kernel drops, and the sensor's CPU per
 * second of capture: this process's (reading the pipe from tcpdump, parsing) and its tcpdump child's (the kernel
 * copies and the `-U` packet-buffered writes), not the sender's (tcpreplay or python3) nor making its pcap.
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
  /** Sensor CPU (user+sys, this process and its tcpdump child) per second of capture, from /proc/PID/stat. */
  cpuPerSec: number;
  /** Of {@link cpuPerSec}, the tcpdump child's. */
  tcpdumpCpuPerSec: number;
  /** What sent the packets. */
  sender: string;
}

/** CPU seconds (user + system, every thread) of a running process, from `/proc/<pid>/stat`; 0 once it is gone. */
export function processCpuSeconds(pid: number | "self"): number {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return 0;
  }
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** Pids of this process's running children whose command name is `comm` (a child of any of its threads). */
export function childrenNamed(comm: string): number[] {
  const out: number[] = [];
  for (const t of Deno.readDirSync("/proc/self/task")) {
    const text = (() => {
      try {
        return Deno.readTextFileSync(`/proc/self/task/${t.name}/children`);
      } catch {
        return "";
      }
    })();
    for (const pid of text.split(/\s+/).filter((w) => w !== "").map(Number)) {
      const name = (() => {
        try {
          return Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
        } catch {
          return "";
        }
      })();
      if (name === comm) out.push(pid);
    }
  }
  return out;
}

/**
 * CPU seconds so far of this process and of its running children named `childComm` (the sensor and its tcpdump):
 * `/proc/self/stat` alone counts no child until it is reaped, and then only in cutime.
 */
export function sensorCpuSeconds(childComm = "tcpdump"): { total: number; children: number } {
  const children = childrenNamed(childComm).reduce((a, pid) => a + processCpuSeconds(pid), 0);
  return { total: processCpuSeconds("self") + children, children };
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
  // The sender's pcap is made before the clock starts: its CPU is not the sensor's.
  const perStream = Math.max(1, Math.round(n / 1000));
  const file = tcpreplay ? await Deno.makeTempFile({ suffix: ".pcap" }) : undefined;
  if (file) await Deno.writeFile(file, syntheticCapture(1000, perStream));
  if (childrenNamed("tcpdump").length === 0) {
    throw new Error("no tcpdump child: its CPU could not be counted");
  }
  const cpu0 = sensorCpuSeconds();
  const t0 = performance.now();
  let sendSeconds: number;
  let sent = n;
  if (file) {
    sent = perStream * 1000;
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
  // Read before the abort ends tcpdump (a child's CPU is readable only while it runs).
  const cpu1 = sensorCpuSeconds();
  const cpu = cpu1.total - cpu0.total;
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
    tcpdumpCpuPerSec: (cpu1.children - cpu0.children) / seconds,
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
      }% of a core (tcpdump ${(r.tcpdumpCpuPerSec * 100).toFixed(0)}%) ` +
      `over ${r.seconds.toFixed(1)} s`,
  );
}
