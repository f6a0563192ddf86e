/**
 * The RTP scenario of the packet-capture end-to-end test and the packet demo, with real parts on loopback:
 *
 * ```
 * ffmpeg (μ-law RTP, 20 ms) ─► :0 ─► scheduled relay (this file) ─┬► :2  L16/16000, 40 ms ─► ffmpeg libopus ─► :4
 *                                   μ-law → L16 (own 2x upsampler) ├► :8  A-law, 60 ms, 2% lost, 3% swapped
 *                                   or A-law, re-chunked, fixed    └► :10 A-law, 20 ms ─► ffmpeg -c:a copy ─► :12
 *                                   delay, every packet logged
 * ffmpeg (other speech, μ-law RTP) ─► :6   (a negative stream: nothing may match it)
 * ```
 * (ports as offsets from a free base port)
 *
 * A real `tcpdump -i lo` captures all of it. The relay logs which source samples each of its packets carries, so
 * the true latency of an instant is exact and read from the capture itself: the capture time of the relay packet
 * containing it minus that of the source packet containing it ({@link rtpTruth}). ffmpeg's Opus relay is measured,
 * not known: the test checks its hop is stable. ffmpeg's copy relay's truth comes from identical payload bytes
 * ({@link copyTruth}).
 *
 * UDP goes through `node:dgram` (Deno's own implementation): `Deno.listenDatagram` still needs `--unstable-net`,
 * which `deno task test` does not pass.
 * @module
 */

import dgram from "node:dgram";
import { readPcap } from "./pcap_min.ts";
import { startTcpdump } from "./tcp_capture.ts";

/** What the relay transcodes to. */
export type RelayCodec = "L16/16000" | "PCMA/8000";

/** Options of {@link runRtpScenario}. */
export interface RtpScenarioOptions {
  /** Directory for the pcap, the SDP and ffmpeg's output. */
  dir: string;
  /** Headerless μ-law 8 kHz file the talker sends. */
  speech: string;
  /** Headerless μ-law 8 kHz file sent on the negative port (speech no one else carries). */
  negative?: string;
  /** First of 14 consecutive UDP ports (even; default: a free block found at random in 20000-29999). */
  basePort?: number;
  /** The relay's outputs (default: {@link DEFAULT_LEGS}); the first one feeds ffmpeg's Opus relay. */
  legs?: RelayLegSpec[];
  /** Run ffmpeg's libopus relay on the first leg's output. */
  opus?: boolean;
  /** Run ffmpeg's copy relay (`-c:a copy`) on this leg's output. */
  copyFrom?: string;
  /** Pcap file name (in `dir`). */
  pcapName?: string;
}

/** One output of the scheduled relay. */
export interface RelayLegSpec {
  /** The stage name (`relay`, `lossy`). */
  name: string;
  /** Port offset from the base port (2: the Opus relay's input; 8: a second leg). */
  portOffset: number;
  codec: RelayCodec;
  /** Packet length, ms (a multiple of 20). */
  chunkMs: number;
  /** Fixed delay after the source packet that completes a packet arrives, ms. */
  delayMs: number;
  /** Fraction of packets dropped. */
  dropRate: number;
  /** Fraction of packets sent after their successor. */
  swapRate: number;
  /** PRNG seed of drops and swaps. */
  seed: number;
}

/**
 * The default legs: `relay`, μ-law → L16/16000 re-chunked to 40 ms, 250 ms later, clean (ffmpeg's Opus relay
 * reads it: its RTP demuxer waits up to 100 ms for a missing packet, which would be its latency, not ours);
 * `lossy`, μ-law → A-law in 60 ms, 400 ms later, 2% dropped and 3% swapped with their successor; `copy_in`,
 * μ-law → A-law in 20 ms, 150 ms later, clean (for ffmpeg's copy relay).
 */
export const DEFAULT_LEGS: readonly RelayLegSpec[] = [
  {
    name: "relay",
    portOffset: 2,
    codec: "L16/16000",
    chunkMs: 40,
    delayMs: 250,
    dropRate: 0,
    swapRate: 0,
    seed: 1,
  },
  {
    name: "lossy",
    portOffset: 8,
    codec: "PCMA/8000",
    chunkMs: 60,
    delayMs: 400,
    dropRate: 0.02,
    swapRate: 0.03,
    seed: 7,
  },
  {
    name: "copy_in",
    portOffset: 10,
    codec: "PCMA/8000",
    chunkMs: 20,
    delayMs: 150,
    dropRate: 0,
    swapRate: 0,
    seed: 3,
  },
];

/** One relay packet: which source samples it carries and what happened to it. */
export interface RelayChunk {
  seq: number;
  ts: number;
  /** Source samples [srcStart, srcEnd) in 8 kHz units from the talker's first RTP timestamp. */
  srcStart: number;
  srcEnd: number;
  fate: "sent" | "dropped" | "swapped";
}

/** Ports of the scenario. */
export interface RtpPorts {
  /** Talker → relay. */
  source: number;
  /** ffmpeg Opus relay → (nobody). */
  opus: number;
  /** The negative talker → (nobody). */
  negative: number;
  /** ffmpeg copy relay → (nobody). */
  copy: number;
}

/** One relay output as run. */
export interface RelayLeg extends RelayLegSpec {
  port: number;
  pt: number;
  chunks: RelayChunk[];
}

/** What a run produced. */
export interface RtpScenario {
  pcap: string;
  ports: RtpPorts;
  legs: RelayLeg[];
  /** ffmpeg's SDP line for the Opus output, e.g. `a=rtpmap:97 opus/48000/2` (undefined without `opus`). */
  opusRtpmap?: { pt: number; codec: string };
  /** The leg ffmpeg's copy relay read (undefined without `copyFrom`). */
  copyFrom?: string;
  /** Packets the kernel dropped before tcpdump saw them (must be 0 for exact truth). */
  kernelDrops: number;
}

const L16_PT = 97;

/** Runs the scenario under a real tcpdump; resolves when the capture file is complete. */
export async function runRtpScenario(opts: RtpScenarioOptions): Promise<RtpScenario> {
  const base = opts.basePort ?? await freeUdpBlock(PORT_BLOCK);
  const ports: RtpPorts = { source: base, opus: base + 4, negative: base + 6, copy: base + 12 };
  const legs: RelayLeg[] = (opts.legs ?? DEFAULT_LEGS).map((l) => ({
    ...l,
    port: base + l.portOffset,
    pt: l.codec === "L16/16000" ? L16_PT : 8,
    chunks: [],
  }));
  const first = legs[0];
  if (first === undefined) throw new Error("the relay needs at least one leg");
  const copyFrom = opts.copyFrom === undefined ? undefined : legs.find((l) => l.name === opts.copyFrom);
  if (opts.copyFrom !== undefined && copyFrom === undefined) throw new Error(`no leg ${opts.copyFrom}`);
  const pcap = `${opts.dir}/${opts.pcapName ?? "rtp.pcap"}`;
  const children: Deno.ChildProcess[] = [];
  const tcpdump = await startTcpdump(pcap, `udp and portrange ${base}-${base + PORT_BLOCK - 1}`);
  let kernelDrops = 0;
  let opusRtpmap: RtpScenario["opusRtpmap"];
  const relay = new ScheduledRelay(ports.source, legs);
  const relays: FfmpegRelay[] = [];
  try {
    await relay.start();
    if (opts.opus) {
      relays.push(
        await ffmpegRelay(`${opts.dir}/relay.sdp`, first, ["-c:a", "libopus", "-b:a", "24k"], ports.opus),
      );
    }
    if (copyFrom) {
      // -pkt_size: one output packet per input packet (ffmpeg would otherwise fill 1460-byte packets).
      const size = String(12 + copyFrom.chunkMs * 8);
      relays.push(
        await ffmpegRelay(`${opts.dir}/copy.sdp`, copyFrom, ["-c:a", "copy", "-pkt_size", size], ports.copy),
      );
    }
    for (const r of relays) children.push(r.child);
    const talkers = [sendMulawRtp(opts.speech, ports.source)];
    if (opts.negative) talkers.push(sendMulawRtp(opts.negative, ports.negative));
    for (const t of talkers) children.push(t);
    for (const t of talkers) {
      const st = await t.status;
      if (!st.success) throw new Error(`ffmpeg talker failed (${st.code})`);
    }
    await relay.drain();
    // Let the last relay packets through ffmpeg, then stop it.
    await sleep(500);
    const sdps = await Promise.all(relays.map((r) => r.stop()));
    if (opts.opus) {
      const m = /a=rtpmap:(\d+) (\S+)/.exec(sdps[0] ?? "");
      if (m === null) throw new Error(`ffmpeg printed no rtpmap for the Opus output: ${sdps[0]}`);
      opusRtpmap = { pt: Number(m[1]), codec: m[2]! };
    }
  } finally {
    relay.close();
    for (const c of children) {
      try {
        c.kill("SIGKILL");
      } catch { /* already exited */ }
      await c.status;
    }
    for (const r of relays) await r.stdout.catch(() => "");
    kernelDrops = await tcpdump.stop();
  }
  return { pcap, ports, legs, opusRtpmap, copyFrom: copyFrom?.name, kernelDrops };
}

/** UDP ports a scenario uses from its base: RTP on even offsets, RTCP on the odd ones above. */
const PORT_BLOCK = 14;

interface FfmpegRelay {
  child: Deno.ChildProcess;
  /** What ffmpeg printed (the output's SDP). */
  stdout: Promise<string>;
  /** SIGINT (ffmpeg flushes and exits), SIGKILL if it sits in a blocking read; resolves to its stdout. */
  stop(): Promise<string>;
}

/** ffmpeg reading a relay leg's RTP (described by an SDP file) and sending RTP to `outPort`. */
async function ffmpegRelay(
  sdp: string,
  leg: RelayLeg,
  codecArgs: string[],
  outPort: number,
): Promise<FfmpegRelay> {
  await Deno.writeTextFile(sdp, relaySdp(leg.port, leg.codec));
  const child = new Deno.Command("ffmpeg", {
    args: [
      "-hide_banner",
      "-nostdin",
      "-loglevel",
      "error",
      "-protocol_whitelist",
      "file,udp,rtp",
      // The codec is in the SDP: no probing, so ffmpeg handles each packet as it comes.
      "-probesize",
      "32",
      "-analyzeduration",
      "0",
      "-fflags",
      "nobuffer",
      "-i",
      sdp,
      ...codecArgs,
      "-f",
      "rtp",
      `rtp://127.0.0.1:${outPort}`,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const stdout = new Response(child.stdout).text();
  // ffmpeg has opened its input once it holds the leg's port.
  await waitUdpBound(leg.port, child.status);
  return {
    child,
    stdout,
    async stop() {
      child.kill("SIGINT");
      const stopped = await Promise.race([child.status.then(() => true), sleep(1500).then(() => false)]);
      if (!stopped) child.kill("SIGKILL");
      await child.status;
      return await stdout;
    },
  };
}

/** The SDP ffmpeg reads the relay's output with. */
export function relaySdp(port: number, codec: RelayCodec): string {
  const pt = codec === "L16/16000" ? L16_PT : 8;
  return [
    "v=0",
    "o=- 0 0 IN IP4 127.0.0.1",
    "s=fsm-px relay",
    "c=IN IP4 127.0.0.1",
    "t=0 0",
    `m=audio ${port} RTP/AVP ${pt}`,
    `a=rtpmap:${pt} ${codec}/1`,
    "",
  ].join("\n");
}

/**
 * ffmpeg sending a μ-law file as RTP, one 20 ms packet every 20 ms (`arealtime` paces each 160-sample frame;
 * `-re` alone paces the demuxer's larger reads and sends packets in pairs).
 */
export function sendMulawRtp(file: string, port: number): Deno.ChildProcess {
  return new Deno.Command("ffmpeg", {
    args: [
      "-hide_banner",
      "-nostdin",
      "-loglevel",
      "error",
      "-f",
      "mulaw",
      "-ar",
      "8000",
      "-ac",
      "1",
      "-i",
      file,
      "-af",
      "asetnsamples=n=160:p=0,arealtime",
      "-c:a",
      "pcm_mulaw",
      "-pkt_size",
      "172",
      "-f",
      "rtp",
      `rtp://127.0.0.1:${port}`,
    ],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
}

// ---------------------------------------------------------------------------------------------------------------
// The scheduled relay

interface LegState {
  leg: RelayLeg;
  /** Next packet to schedule. */
  next: number;
  rand: () => number;
  /** A swapped packet waiting for its successor. */
  held: Uint8Array | undefined;
}

const SEQ_BASE = 4000;
const TS_BASE = 90000;

/** Interpolator taps: y[2n+1] = Σ c_k (x[n-k] + x[n+1+k]), a Hann-windowed sinc (zero phase). */
const HALF = 8;
const TAPS: number[] = (() => {
  const c: number[] = [];
  for (let k = 0; k < HALF; k++) {
    const t = k + 0.5;
    const w = 0.5 + 0.5 * Math.cos((Math.PI * t) / (HALF + 0.5));
    c.push(((k % 2 === 0 ? 1 : -1) / (Math.PI * t)) * w);
  }
  const sum = 2 * c.reduce((a, b) => a + b, 0);
  return c.map((v) => v / sum);
})();

/**
 * Receives the talker's μ-law RTP, re-chunks and transcodes it, and sends each relay packet `delayMs` after the
 * source packet that completed it arrived (that packet also carries the interpolator's look-ahead). Its
 * timeline is the talker's: relay RTP timestamps are source positions (×2 for 16 kHz), so the log is exact.
 */
class ScheduledRelay {
  readonly #listenPort: number;
  readonly #legs: LegState[];
  readonly #in = dgram.createSocket("udp4");
  readonly #out = dgram.createSocket("udp4");
  #samples = new Int16Array(8000 * 120);
  #have = new Uint8Array(8000 * 120);
  #ts0: number | undefined;
  /** Highest source position received + 1. */
  #end = 0;
  #pending = new Set<Promise<void>>();

  constructor(listenPort: number, legs: RelayLeg[]) {
    this.#listenPort = listenPort;
    this.#legs = legs.map((leg) => ({ leg, next: 0, rand: mulberry32(leg.seed), held: undefined }));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#in.once("error", reject);
      this.#in.bind(this.#listenPort, "127.0.0.1", () => resolve());
    });
    // The relay sends from an ephemeral port (above the scenario's ports) so its output is not on the source tap.
    await new Promise<void>((resolve) => this.#out.bind(0, "127.0.0.1", () => resolve()));
    this.#in.on("message", (msg: Uint8Array) => this.#onPacket(msg));
  }

  /** Resolves when every scheduled packet is out. */
  async drain(): Promise<void> {
    // The talker has exited; give the last packets a moment to arrive.
    await sleep(100);
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
    for (const l of this.#legs) {
      if (l.held) await this.#send(l.held, l.leg.port);
      l.held = undefined;
    }
  }

  close(): void {
    for (const s of [this.#in, this.#out]) {
      try {
        s.close();
      } catch { /* closed */ }
    }
  }

  #onPacket(p: Uint8Array): void {
    if (p.length < 12 || p[0]! >> 6 !== 2 || (p[1]! & 0x7f) !== 0) return; // μ-law RTP only (not RTCP)
    const cc = p[0]! & 15;
    let off = 12 + 4 * cc;
    const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
    if (p[0]! & 0x10) off += 4 + 4 * dv.getUint16(off + 2);
    let end = p.length;
    if (p[0]! & 0x20) end -= p[p.length - 1]!;
    const ts = dv.getUint32(4);
    this.#ts0 ??= ts;
    const pos = (ts - this.#ts0) >>> 0;
    if (pos + end - off > this.#samples.length) return;
    for (let i = off; i < end; i++) {
      this.#samples[pos + i - off] = mulawDecode(p[i]!);
      this.#have[pos + i - off] = 1;
    }
    this.#end = Math.max(this.#end, pos + end - off);
    const arrived = performance.now();
    for (const l of this.#legs) {
      const n = l.leg.chunkMs * 8;
      while ((l.next + 1) * n + HALF <= this.#end) this.#schedule(l, l.next++, arrived);
    }
  }

  #schedule(l: LegState, k: number, arrivedMs: number): void {
    const leg = l.leg;
    const n = leg.chunkMs * 8;
    const prev = leg.chunks[k - 1];
    let fate: RelayChunk["fate"] = "sent";
    const r = l.rand();
    // A swapped packet's successor is always sent (it carries the swapped one out).
    if (prev?.fate !== "swapped") {
      if (r < leg.dropRate) fate = "dropped";
      else if (r < leg.dropRate + leg.swapRate) fate = "swapped";
    }
    const wide = leg.codec === "L16/16000";
    const chunk: RelayChunk = {
      seq: (SEQ_BASE + k) & 0xffff,
      ts: (TS_BASE + k * n * (wide ? 2 : 1)) >>> 0,
      srcStart: k * n,
      srcEnd: (k + 1) * n,
      fate,
    };
    leg.chunks.push(chunk);
    const packet = this.#packet(chunk, leg.pt, wide);
    const wait = Math.max(0, arrivedMs + leg.delayMs - performance.now());
    const done = sleep(wait).then(async () => {
      if (fate === "dropped") return;
      if (fate === "swapped") {
        l.held = packet;
        return;
      }
      await this.#send(packet, leg.port);
      const held = l.held;
      l.held = undefined;
      if (held) await this.#send(held, leg.port);
    });
    this.#pending.add(done);
    done.finally(() => this.#pending.delete(done));
  }

  #packet(c: RelayChunk, pt: number, wide: boolean): Uint8Array {
    const x = this.#samples;
    const n = c.srcEnd - c.srcStart;
    const payload = new Uint8Array(wide ? n * 4 : n);
    const pv = new DataView(payload.buffer);
    const at = (i: number) => (i >= 0 && i < x.length && this.#have[i] ? x[i]! : 0);
    for (let i = 0; i < n; i++) {
      const s = c.srcStart + i;
      if (!wide) {
        payload[i] = alawEncode(at(s));
        continue;
      }
      let odd = 0;
      for (let k = 0; k < HALF; k++) odd += TAPS[k]! * (at(s - k) + at(s + 1 + k));
      pv.setInt16(4 * i, at(s), false); // L16 is network byte order (RFC 3551)
      pv.setInt16(4 * i + 2, Math.max(-32768, Math.min(32767, Math.round(odd))), false);
    }
    const p = new Uint8Array(12 + payload.length);
    const dv = new DataView(p.buffer);
    p[0] = 0x80;
    p[1] = pt;
    dv.setUint16(2, c.seq);
    dv.setUint32(4, c.ts);
    dv.setUint32(8, 0x5e1a7000 + pt);
    p.set(payload, 12);
    return p;
  }

  #send(p: Uint8Array, port: number): Promise<void> {
    return new Promise((resolve) => this.#out.send(p, port, "127.0.0.1", () => resolve()));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Ground truth from the capture

/** One RTP packet as captured. */
export interface CapturedRtp {
  timeNs: bigint;
  srcPort: number;
  dstPort: number;
  pt: number;
  seq: number;
  ts: number;
  ssrc: number;
  payload: Uint8Array;
}

/** Every IPv4 UDP packet carrying RTP (version 2) in a classic pcap of `lo` (Ethernet) or `any` (cooked). */
export function capturedRtp(bytes: Uint8Array): CapturedRtp[] {
  const f = readPcap(bytes);
  const out: CapturedRtp[] = [];
  for (const r of f.records) {
    const d = r.data;
    let off: number;
    if (f.linkType === 1) off = 14;
    else if (f.linkType === 113) off = 16;
    else if (f.linkType === 276) off = 20;
    else continue;
    if (d.length < off + 28 || d[off]! >> 4 !== 4 || d[off + 9] !== 17) continue;
    const ihl = (d[off]! & 15) * 4;
    const u = off + ihl;
    const dv = new DataView(d.buffer, d.byteOffset, d.byteLength);
    const len = dv.getUint16(u + 4);
    const p = d.subarray(u + 8, Math.min(d.length, u + len));
    if (p.length < 12 || p[0]! >> 6 !== 2) continue;
    const pt = p[1]! & 0x7f;
    if (pt >= 72 && pt <= 76) continue; // RTCP
    const pv = new DataView(p.buffer, p.byteOffset, p.byteLength);
    out.push({
      timeNs: r.timeNs,
      srcPort: dv.getUint16(u),
      dstPort: dv.getUint16(u + 2),
      pt,
      seq: pv.getUint16(2),
      ts: pv.getUint32(4),
      ssrc: pv.getUint32(8),
      payload: p.subarray(12 + 4 * (p[0]! & 15)),
    });
  }
  return out;
}

/** Exact truth of the relay hop: source instant → capture times of the packets carrying it at both taps. */
export interface RtpTruth {
  /** Talker packets by capture time (decimal ns). */
  sourceByTime: Map<string, CapturedRtp>;
  /** The talker's first RTP timestamp (position 0). */
  ts0: number;
  /** Relay packets by sequence number. */
  relayBySeq: Map<number, CapturedRtp>;
  /** The source position (8 kHz samples) of an instant at `offsetMs` into the source packet captured at `timeNs`. */
  position(timeNs: string, offsetMs: number): number | undefined;
  /** The relay chunk carrying a source position. */
  chunkAt(pos: number): RelayChunk | undefined;
  /** True latency (s) of the instant, or undefined when its relay packet was dropped. */
  latency(timeNs: string, offsetMs: number): number | undefined;
}

/** Builds a relay leg's truth from a capture and the relay's log. */
export function rtpTruth(bytes: Uint8Array, sc: Pick<RtpScenario, "ports">, leg: RelayLeg): RtpTruth {
  const all = capturedRtp(bytes);
  const source = all.filter((p) => p.dstPort === sc.ports.source && p.pt === 0);
  if (source.length === 0) throw new Error("no talker packets in the capture");
  const ts0 = source.reduce((m, p) => (((p.ts - m) | 0) < 0 ? p.ts : m), source[0]!.ts);
  const sourceByTime = new Map(source.map((p) => [String(p.timeNs), p]));
  const relayBySeq = new Map(
    all.filter((p) => p.dstPort === leg.port && p.pt === leg.pt).map((p) => [p.seq, p]),
  );
  const n = leg.chunkMs * 8;
  const position = (timeNs: string, offsetMs: number) => {
    const p = sourceByTime.get(timeNs);
    return p === undefined ? undefined : ((p.ts - ts0) >>> 0) + offsetMs * 8;
  };
  const chunkAt = (pos: number) => leg.chunks[Math.floor(pos / n)];
  return {
    sourceByTime,
    ts0,
    relayBySeq,
    position,
    chunkAt,
    latency(timeNs, offsetMs) {
      const pos = position(timeNs, offsetMs);
      if (pos === undefined) return undefined;
      const c = chunkAt(pos);
      const target = c === undefined || c.fate === "dropped" ? undefined : relayBySeq.get(c.seq);
      return target === undefined ? undefined : Number(target.timeNs - BigInt(timeNs)) / 1e9;
    },
  };
}

/** Truth of ffmpeg's copy relay: each output packet paired with the input packet it copied. */
export interface CopyTruth {
  input: CapturedRtp[];
  output: CapturedRtp[];
  /** Output packets whose payload bytes differ from the input packet at the same media time (0: all copies). */
  mismatched: number;
  /** Input packets ffmpeg sent no copy of (it may drop the first while it opens its input). */
  uncopied: number;
  /** True latency (s) from the talker of an instant `offsetMs` into the talker packet captured at `timeNs`. */
  latency(timeNs: string, offsetMs: number): number | undefined;
}

/**
 * Builds the copy relay's truth. ffmpeg keeps media time but not the RTP timestamp base: the offset between the two
 * comes from the first output packet whose payload (not constant, i.e. not silence) equals exactly one input's;
 * every output packet must then carry the same bytes as the input packet at its media time.
 */
export function copyTruth(bytes: Uint8Array, sc: Pick<RtpScenario, "ports">, leg: RelayLeg): CopyTruth {
  const all = capturedRtp(bytes);
  const input = all.filter((p) => p.dstPort === leg.port && p.pt === leg.pt);
  const output = all.filter((p) => p.dstPort === sc.ports.copy && p.pt === leg.pt);
  const key = (p: CapturedRtp) => Array.from(p.payload).join(",");
  const inputsByPayload = new Map<string, CapturedRtp[]>();
  for (const p of input) inputsByPayload.set(key(p), [...(inputsByPayload.get(key(p)) ?? []), p]);
  let dts: number | undefined;
  for (const o of output) {
    if (o.payload.every((b) => b === o.payload[0])) continue;
    const same = inputsByPayload.get(key(o));
    if (same?.length === 1) {
      dts = (o.ts - same[0]!.ts) >>> 0;
      break;
    }
  }
  const inputByTs = new Map(input.map((p) => [p.ts, p]));
  const copyOf = new Map<number, CapturedRtp>();
  let mismatched = dts === undefined ? output.length : 0;
  if (dts !== undefined) {
    for (const o of output) {
      const i = inputByTs.get((o.ts - dts) >>> 0);
      if (i === undefined || key(i) !== key(o)) mismatched++;
      else copyOf.set(i.seq, o);
    }
  }
  const t = rtpTruth(bytes, sc, leg);
  return {
    input,
    output,
    mismatched,
    uncopied: input.length - copyOf.size,
    latency(timeNs, offsetMs) {
      const pos = t.position(timeNs, offsetMs);
      const c = pos === undefined ? undefined : t.chunkAt(pos);
      const out = c === undefined ? undefined : copyOf.get(c.seq);
      return out === undefined ? undefined : Number(out.timeNs - BigInt(timeNs)) / 1e9;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A block of `n` free UDP ports on 127.0.0.1 (below the ephemeral range, so no sender's own port lands in it). */
export async function freeUdpBlock(n: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + 2 * Math.floor(Math.random() * (5000 - n));
    if (await allFree(base, n)) return base;
  }
  throw new Error(`no free block of ${n} UDP ports in 20000-29999`);
}

async function allFree(base: number, n: number): Promise<boolean> {
  const held: dgram.Socket[] = [];
  try {
    for (let p = base; p < base + n; p++) {
      const s = dgram.createSocket("udp4");
      held.push(s);
      const ok = await new Promise<boolean>((resolve) => {
        s.once("error", () => resolve(false));
        s.bind(p, "127.0.0.1", () => resolve(true));
      });
      if (!ok) return false;
    }
    return true;
  } finally {
    for (const s of held) {
      try {
        s.close();
      } catch { /* never bound */ }
    }
  }
}

/** Whether some socket holds UDP `port` locally, from the kernel's table (/proc/net/udp); undefined without it. */
async function udpPortHeld(port: number): Promise<boolean | undefined> {
  let table: string;
  try {
    table = await Deno.readTextFile("/proc/net/udp");
  } catch {
    return undefined;
  }
  // "  sl  local_address rem_address ...": the local address is hex IP:port.
  const suffix = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  return table.split("\n").some((line) => line.trim().split(/\s+/)[1]?.endsWith(suffix) ?? false);
}

/**
 * Waits until some process holds UDP `port` on 127.0.0.1, up to 10 s; fails at once if `exited` settles first
 * (the process meant to bind it ended). The kernel's socket table is read where there is one: probing by binding
 * the port ourselves held it for an instant every 50 ms, and a process binding it in that instant failed.
 */
export async function waitUdpBound(port: number, exited?: Promise<unknown>): Promise<void> {
  let gone = false;
  void exited?.then(() => gone = true);
  for (let i = 0; i < 200; i++) {
    const held = await udpPortHeld(port);
    if (held ?? !(await allFree(port, 1))) return;
    if (gone) throw new Error(`the process that was to bind UDP port ${port} ended first`);
    await sleep(50);
  }
  throw new Error(`nothing bound UDP port ${port} within 10 s`);
}

/** G.711 μ-law byte → 16-bit linear. */
export function mulawDecode(b: number): number {
  const u = ~b & 0xff;
  const t = (((u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
  return u & 0x80 ? 0x84 - t : t - 0x84;
}

/** 16-bit linear → G.711 A-law byte. */
export function alawEncode(x: number): number {
  let v = Math.max(-32768, Math.min(32767, x)) >> 3;
  let mask = 0xd5;
  if (v < 0) {
    mask = 0x55;
    v = -v - 1;
  }
  let seg = 0;
  while (seg < 8 && v >= 32 << seg) seg++;
  if (seg >= 8) return 0x7f ^ mask;
  return ((seg << 4) | ((seg < 2 ? v >> 1 : v >> seg) & 15)) ^ mask;
}

/** A small seeded PRNG (mulberry32), so drops and swaps repeat from run to run. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A relay leg without its per-packet log: the fates that are not `sent` (a bundled truth file stays small). */
export type CompactLeg = Omit<RelayLeg, "chunks"> & {
  packets: number;
  notSent: [number, RelayChunk["fate"]][];
};

/** Drops a leg's regular per-packet log (packet k carries source samples [k·n, (k+1)·n)). */
export function compactLeg(leg: RelayLeg): CompactLeg {
  const { chunks, ...rest } = leg;
  const notSent = chunks.flatMap((c, k): [number, RelayChunk["fate"]][] =>
    c.fate === "sent" ? [] : [[k, c.fate]]
  );
  return { ...rest, packets: chunks.length, notSent };
}

/** Rebuilds a leg's per-packet log from {@link compactLeg}. */
export function expandLeg(c: CompactLeg): RelayLeg {
  const { packets, notSent, ...rest } = c;
  const n = c.chunkMs * 8;
  const wide = c.codec === "L16/16000";
  const fates = new Map(notSent);
  const chunks: RelayChunk[] = [];
  for (let k = 0; k < packets; k++) {
    chunks.push({
      seq: (SEQ_BASE + k) & 0xffff,
      ts: (TS_BASE + k * n * (wide ? 2 : 1)) >>> 0,
      srcStart: k * n,
      srcEnd: (k + 1) * n,
      fate: fates.get(k) ?? "sent",
    });
  }
  return { ...rest, chunks };
}

/** The `packets:` taps that measure a run: the talker as source, every relay leg, the Opus relay, the negative. */
export function rtpConfigYaml(sc: RtpScenario, measurement = "rtp_call", reanchorMs = 1000): string {
  const stage = (name: string, port: number, pts: string) =>
    `      - stage: ${name}\n        packets: { protocol: rtp, port: ${port}${pts} }\n`;
  return [
    "log_level: warn",
    "measurements:",
    `  - name: ${measurement}`,
    "    signature_rules:",
    "      # The talker: μ-law RTP from ffmpeg (PT 0, the codec comes from the payload type).",
    `      packets: { protocol: rtp, port: ${sc.ports.source} }`,
    `      audio_criteria: { reanchor_ms: ${reanchorMs} }`,
    "    match_rules:",
    ...sc.legs.map((l) => stage(l.name, l.port, `, payload_types: { ${l.pt}: ${l.codec} }`).trimEnd()),
    ...(sc.opusRtpmap
      ? [
        stage("opus", sc.ports.opus, `, payload_types: { ${sc.opusRtpmap.pt}: ${sc.opusRtpmap.codec} }`)
          .trimEnd(),
      ]
      : []),
    ...(sc.copyFrom ? [stage("copy", sc.ports.copy, "").trimEnd()] : []),
    stage("negative", sc.ports.negative, "").trimEnd(),
    "",
  ].join("\n");
}
