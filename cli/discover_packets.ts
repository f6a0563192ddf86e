/**
 * `discover` over packet captures (pcap/pcapng): which flows carry audio, by what protocol, and the `packets:`
 * taps that would measure them. Two passes over the file: the first finds RTP streams (header, sequence, payload
 * types, RTP clock) and classifies TCP connections by their first bytes (WebSocket upgrade, HTTP, NATS, RESP);
 * the second reads the audio-looking flows through the same packet source a sensor uses and guesses how the
 * payloads carry audio. The proposal puts the stream that starts first as the source and the others as stages.
 * @module
 */
import { guessPayloadFormat, type PayloadGuess, type PayloadSample } from "../audio/decode/payload_guess.ts";
import { opusFramingShare } from "../audio/decode/opus.ts";
import type { AudioFormat } from "../audio/types.ts";
import { FrameDecoder, IpProto } from "../packets/ip.ts";
import { PacketSource } from "../packets/packet_source.ts";
import { PcapReader } from "../packets/pcap.ts";
import { PacketColumn } from "../packets/rows.ts";
import { codecForPayloadType, type RtpCodec, rtpCodecName } from "../packets/rtp_codecs.ts";
import { ENCRYPTED_OPUS_FRAMING, sizedSrtpAdvice, srtpOpusAdvice } from "../packets/srtp_guess.ts";
import { RtpSource } from "../packets/rtp_source.ts";
import type { PacketTap } from "../packets/taps.ts";
import { detectTcpProtocol } from "../packets/tcp_source.ts";
import { type AppMessage, type AppProtocol, TcpFlag } from "../packets/types.ts";
import { cellBytes, cellText } from "../pixie/row.ts";

/** One group of flows that look alike: a protocol on a service port. */
export interface PacketGroup {
  protocol: AppProtocol;
  /** The service side's port (RTP: the receiver's). */
  port: number;
  /** TCP protocols: which direction of the connections these messages travelled. */
  direction?: string;
  /** Streams (flow directions; RTP: and SSRC) in the group. */
  streams: number;
  messages: number;
  /** Capture time of the group's first message, ns. */
  firstNs: bigint;
  /** RTP: payload types seen, with the codec each maps to (or a guess for dynamic ones). */
  payloadTypes?: { pt: number; packets: number; codec?: string; guessed?: string; reason?: string }[];
  /** TCP protocols: how the payloads carry audio. */
  guess?: PayloadGuess;
  /** The `audio` section for TCP protocols when the payloads look like audio. */
  audio?: AudioFormat;
  /** Whether the group looks like audio at all. */
  audioLikely: boolean;
  reason: string;
}

/**
 * The port pairs (`<src port>><dst port>`) of a group's flow directions: a packet tap takes a flow with its port
 * on either side, so two groups whose taps would both take one flow cannot be told apart by their taps.
 */
type GroupFlows = Map<PacketGroup, Set<string>>;

/** What {@link discoverPacketFile} found. */
export interface PacketDiscovery {
  file: string;
  frames: number;
  groups: PacketGroup[];
  /** A config measuring the audio groups (source: the one that starts first), when there is any. */
  config?: string;
  /** Audio groups the config leaves out, and why. */
  notes?: string[];
}

interface RtpStat {
  port: number;
  /** `<src port>><dst port>` of the stream's flow direction. */
  flow: string;
  firstNs: bigint;
  packets: number;
  pts: Map<number, number>;
  /** Samples of (ts delta, time delta ns, payload bytes, pt) between consecutive packets. */
  steps: { dts: number; dns: number; bytes: number; pt: number }[];
  payloads: Map<number, Uint8Array[]>;
  lastTs?: number;
  lastNs?: bigint;
  /** RTP time and capture time per payload type over the whole stream (senders that burst packets in pairs
   * make per-packet clock estimates useless). */
  span: Map<number, { ts0: number; ns0: bigint; ticks: number; ns: bigint }>;
}

const MAX_STEPS = 400;
const MAX_SAMPLES = 200;

/** Reads a packet capture twice and proposes packet taps for the audio in it. */
export async function discoverPacketFile(path: string): Promise<PacketDiscovery> {
  // Pass 1: RTP streams and TCP connection protocols.
  const rtp = new Map<string, RtpStat>();
  const tcp = new Map<string, { protocol: AppProtocol; port: number }>();
  /** The port each connection whose SYN was captured was opened to: its service port. */
  const synTo = new Map<string, number>();
  const rtpSrc = new RtpSource((m: AppMessage) => {
    if (!m.rtp) return;
    let s = rtp.get(m.stream);
    if (!s) {
      s = {
        port: m.flow.dstPort,
        flow: `${m.flow.srcPort}>${m.flow.dstPort}`,
        firstNs: m.timeNs,
        packets: 0,
        pts: new Map(),
        steps: [],
        payloads: new Map(),
        span: new Map(),
      };
      rtp.set(m.stream, s);
    }
    s.packets++;
    s.pts.set(m.rtp.pt, (s.pts.get(m.rtp.pt) ?? 0) + 1);
    const list = s.payloads.get(m.rtp.pt) ?? [];
    if (list.length < MAX_SAMPLES) list.push(m.payload.slice());
    s.payloads.set(m.rtp.pt, list);
    if (
      s.lastTs !== undefined && s.lastNs !== undefined && m.rtp.lostBefore === 0 && s.steps.length < MAX_STEPS
    ) {
      s.steps.push({
        dts: (m.rtp.ts - s.lastTs) >>> 0,
        dns: Number(m.timeNs - s.lastNs),
        bytes: m.payload.length,
        pt: m.rtp.pt,
      });
    }
    s.lastTs = m.rtp.ts;
    s.lastNs = m.timeNs;
    const sp = s.span.get(m.rtp.pt);
    if (!sp) s.span.set(m.rtp.pt, { ts0: m.rtp.ts, ns0: m.timeNs, ticks: 0, ns: 0n });
    else {
      sp.ticks = (m.rtp.ts - sp.ts0) >>> 0;
      sp.ns = m.timeNs - sp.ns0;
    }
  });
  const dec = new FrameDecoder();
  let frames = 0;
  {
    const file = await Deno.open(path);
    try {
      for await (const frame of new PcapReader(file)) {
        frames++;
        if (!dec.decodeView(frame)) {
          // The RTP source puts IP-fragmented datagrams (large L16 packets) back together.
          if (dec.lastSkip === "ip_fragment") rtpSrc.pushFrame(frame);
          continue;
        }
        if (dec.view.proto === IpProto.UDP) rtpSrc.pushFrame(frame);
        else if (dec.view.proto === IpProto.TCP) {
          const p = dec.packet(frame);
          const conn = connKey(p.src, p.srcPort, p.dst, p.dstPort);
          const flags = p.tcp?.flags ?? 0;
          if ((flags & TcpFlag.SYN) !== 0 && (flags & TcpFlag.ACK) === 0) synTo.set(conn, p.dstPort);
          if (p.payload.length === 0) continue;
          if (tcp.has(conn)) continue;
          const proto = detectTcpProtocol(p.payload);
          // The service port is the one the connection was opened to; without its SYN, the receiver of a client's
          // first bytes (a request, a command) or the sender of a server's (NATS's INFO greeting, which comes
          // before anything of the client's, an HTTP response, a RESP reply).
          const port = synTo.get(conn) ?? (fromServer(p.payload) ? p.srcPort : p.dstPort);
          if (proto) tcp.set(conn, { protocol: proto, port });
        }
      }
    } finally {
      try {
        file.close();
      } catch { /* closed by the reader */ }
    }
    rtpSrc.flush();
  }

  const groups: PacketGroup[] = [];
  const flows: GroupFlows = new Map();
  // RTP groups by receiver port.
  const byPort = new Map<number, RtpStat[]>();
  for (const s of rtp.values()) byPort.set(s.port, [...(byPort.get(s.port) ?? []), s]);
  for (const [port, streams] of byPort) {
    const g = rtpGroup(port, streams);
    groups.push(g);
    flows.set(g, new Set(streams.map((s) => s.flow)));
  }

  // Pass 2: TCP groups through the sensor's own packet source, payloads guessed per group.
  const tcpGroups = new Map<string, { protocol: AppProtocol; port: number }>();
  for (const c of tcp.values()) tcpGroups.set(`${c.protocol}:${c.port}`, c);
  if (tcpGroups.size > 0) {
    const taps: PacketTap[] = [...tcpGroups.values()].map((g) => ({
      query: `d_${g.protocol}_${g.port}/source`,
      protocol: g.protocol,
      ports: [g.port],
      portRanges: [],
      direction: "any",
      payloadTypes: new Map(),
      // Both ways: a service's answers may be the audio (grouped apart by direction below).
      httpBodies: "both",
    }));
    const samples = new Map<string, PayloadSample[]>();
    const stats = new Map<
      string,
      { streams: Set<string>; flows: Set<string>; messages: number; firstNs: bigint }
    >();
    // A source per protocol: one port may carry several (a voice bot's Twilio webhook, HTTP, and its media
    // WebSocket on one port), and a source parses every connection on a port with its first tap's protocol: the
    // WebSocket read as HTTP (an upgrade, then nothing) was never seen.
    const sources = [...new Set(taps.map((t) => t.protocol))].map((protocol) =>
      new PacketSource({ taps: taps.filter((t) => t.protocol === protocol), node: "discover" })
    );
    const take = (rows: ReturnType<PacketSource["push"]>) => {
      for (const r of rows) {
        const payload = cellBytes(r, PacketColumn.payload);
        if (!payload) continue;
        // Each direction is guessed on its own: a server's text replies are not its clients' audio.
        const stream = cellText(r, PacketColumn.stream);
        const port = Number(/^[a-z]+_[a-z]+_(\d+)\//.exec(r.query)?.[1]);
        const toService = cellText(r, PacketColumn.dst).endsWith(`:${port}`);
        const key = `${r.query}|${toService ? "to" : "from"}`;
        const st = stats.get(key) ??
          { streams: new Set<string>(), flows: new Set<string>(), messages: 0, firstNs: r.time };
        st.streams.add(stream);
        st.flows.add(`${portOf(cellText(r, PacketColumn.src))}>${portOf(cellText(r, PacketColumn.dst))}`);
        st.messages++;
        stats.set(key, st);
        const list = samples.get(key) ?? [];
        if (list.length < 2000) list.push({ bytes: payload, timeNs: r.time, stream });
        samples.set(key, list);
      }
    };
    const file = await Deno.open(path);
    try {
      for await (const frame of new PcapReader(file)) for (const src of sources) take(src.push(frame));
      for (const src of sources) take(src.finish());
    } finally {
      try {
        file.close();
      } catch { /* closed by the reader */ }
    }
    for (const tap of taps) {
      for (const dir of ["to", "from"] as const) {
        const key = `${tap.query}|${dir}`;
        const st = stats.get(key);
        if (!st) continue;
        const guess = guessPayloadFormat(samples.get(key) ?? []);
        const g: PacketGroup = {
          protocol: tap.protocol,
          port: tap.ports[0]!,
          direction: dir === "to" ? "to the service port" : "from the service port",
          streams: st.streams.size,
          messages: st.messages,
          firstNs: st.firstNs,
          guess,
          audio: guess.kind === "none" ? undefined : guess.format,
          audioLikely: guess.kind === "audio",
          reason: guess.reason,
        };
        groups.push(g);
        flows.set(g, st.flows);
      }
    }
  }
  groups.sort((a, b) => Number(b.audioLikely) - Number(a.audioLikely) || (a.firstNs < b.firstNs ? -1 : 1));
  const notes: string[] = [];
  const config = proposeConfig(path, groups, flows, notes);
  return { file: path, frames, groups, config, ...(notes.length > 0 ? { notes } : {}) };
}

/** The port of `host:port` (`[v6]:port` too). */
function portOf(hostPort: string): string {
  return hostPort.slice(hostPort.lastIndexOf(":") + 1);
}

/**
 * Whether the packet taps of `a` and `b` (protocol and port, either side of a flow) would both take a flow of
 * either group: the two directions of one connection on a service port, or symmetric RTP (each side sends from
 * the port it receives on). Then each tap sees the other's streams too, and a signature is found again in the
 * very stream it was taken from (0 ms).
 */
function tapsShareFlows(a: PacketGroup, b: PacketGroup, flows: GroupFlows): boolean {
  if (a.protocol !== b.protocol) return false;
  // HTTP and gRPC taps tell requests from responses (http_bodies): the two directions of one service port apart.
  if (answersApart(a) && answersApart(b) && a.port === b.port && a.direction !== b.direction) return false;
  if (a.port === b.port) return true;
  const touches = (g: PacketGroup, port: number) =>
    [...flows.get(g) ?? []].some((f) => f.split(">").includes(String(port)));
  return touches(a, b.port) || touches(b, a.port);
}

const LATIN1 = new TextDecoder("latin1");

/**
 * Whether a TCP direction's first bytes are a server's: a NATS `INFO` greeting or delivered `MSG`, an HTTP status
 * line (a WebSocket's 101 included), a RESP reply or push.
 */
function fromServer(bytes: Uint8Array): boolean {
  const s = LATIN1.decode(bytes.subarray(0, Math.min(bytes.length, 32)));
  return /^(?:INFO |H?MSG |HTTP\/1\.[01] |[+\-:>]|\*3\r\n\$[0-9]+\r\n[ps]?message\r\n)/i.test(s);
}

function connKey(a: string, ap: number, b: string, bp: number): string {
  const x = `${a}|${ap}`;
  const y = `${b}|${bp}`;
  return x < y ? `${x}|${y}` : `${y}|${x}`;
}

function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[(s.length - 1) >> 1]!;
}

/** An RTP group: static payload types named, dynamic ones guessed from the packets and the RTP clock. */
function rtpGroup(port: number, streams: RtpStat[]): PacketGroup {
  const pts = new Map<number, number>();
  let first = streams[0]!.firstNs;
  let messages = 0;
  for (const s of streams) {
    if (s.firstNs < first) first = s.firstNs;
    messages += s.packets;
    for (const [pt, n] of s.pts) pts.set(pt, (pts.get(pt) ?? 0) + n);
  }
  const payloadTypes: NonNullable<PacketGroup["payloadTypes"]> = [];
  let audio = false;
  let srtp: string | undefined;
  for (const [pt, packets] of [...pts].sort((a, b) => b[1] - a[1])) {
    const known = codecForPayloadType(pt, new Map());
    const name = known ? rtpCodecName(known) : undefined;
    if (known) {
      payloadTypes.push({ pt, packets, codec: name });
      if (known.codec !== "event") audio = true;
    } else {
      const g = guessDynamic(pt, streams);
      payloadTypes.push({ pt, packets, guessed: g.codec, reason: g.reason });
      if (g.codec && !g.codec.startsWith("telephone-event")) audio = true;
    }
    srtp ??= sizedSrtpAdvice(
      name ?? payloadTypes[payloadTypes.length - 1]!.guessed ?? "",
      streams.flatMap((s) => s.steps.filter((x) => x.pt === pt)),
    );
  }
  return {
    protocol: "rtp",
    port,
    streams: streams.length,
    messages,
    firstNs: first,
    payloadTypes,
    // Its payloads decode, as noise: proposing it would only measure nothing.
    audioLikely: audio && srtp === undefined,
    reason: srtp !== undefined
      ? srtp
      : audio
      ? "RTP with audio payload types"
      : "RTP without a payload type fsm-px decodes",
  };
}

/** Guesses a dynamic payload type from its packets: Opus framing, telephone-event size, or L16 by the clock. */
function guessDynamic(pt: number, streams: RtpStat[]): { codec?: string; reason: string } {
  const payloads = streams.flatMap((s) => s.payloads.get(pt) ?? []);
  const steps = streams.flatMap((s) => s.steps.filter((x) => x.pt === pt && x.dns > 0 && x.dts > 0));
  // The clock over whole streams (ticks / seconds): bursts and jitter cancel out.
  let ticks = 0;
  let ns = 0;
  for (const st of streams) {
    const sp = st.span.get(pt);
    if (sp && sp.ns > 0n && sp.ticks < 2 ** 31) {
      ticks += sp.ticks;
      ns += Number(sp.ns);
    }
  }
  const clock = ns > 1e8 ? ticks / (ns / 1e9) : median(steps.map((x) => x.dts / (x.dns / 1e9)));
  if (payloads.length > 0 && payloads.every((p) => p.length === 4)) {
    return { codec: "telephone-event/8000", reason: "4-byte payloads (RFC 4733 events)" };
  }
  const opusShare = opusFramingShare(payloads);
  if (payloads.length > 0 && opusShare > 0.98 && Math.abs(clock - 48000) / 48000 < 0.1) {
    return {
      codec: "opus/48000/2",
      reason: `every packet is valid Opus framing, RTP clock ~${Math.round(clock)} Hz`,
    };
  }
  if (Number.isFinite(clock)) {
    const rates = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000];
    const rate = rates.reduce((a, b) => (Math.abs(b - clock) < Math.abs(a - clock) ? b : a));
    const bytesPerTick = median(steps.map((x) => x.bytes / x.dts));
    const channels = Math.round(bytesPerTick / 2);
    if (
      Math.abs(clock - rate) / rate < 0.05 && channels >= 1 && Math.abs(bytesPerTick / 2 - channels) < 0.05
    ) {
      return {
        codec: `L16/${rate}${channels > 1 ? `/${channels}` : ""}`,
        reason: `2 bytes per RTP tick per channel at a ~${Math.round(clock)} Hz clock`,
      };
    }
    if (
      payloads.length >= 20 && Math.abs(clock - 48000) / 48000 < 0.1 && opusShare < ENCRYPTED_OPUS_FRAMING
    ) {
      // Opus's clock, not L16, and payloads Opus's framing rules out: encrypted Opus, as all WebRTC media is
      // (DTLS-SRTP).
      // Unmapped, it may also be another codec on that clock (the tap's mapping says Opus in the diagnosis).
      return {
        reason: `RTP clock ~${Math.round(clock)} Hz (Opus's): ${srtpOpusAdvice(1 - opusShare)}; or a codec ` +
          `other than Opus on that clock (L24, AAC), which fsm-px does not decode`,
      };
    }
    return { reason: `unknown codec (RTP clock ~${Math.round(clock)} Hz); map it in payload_types` };
  }
  return { reason: "too few packets to tell" };
}

function rtpTapYaml(g: PacketGroup): string {
  const dyn = (g.payloadTypes ?? []).filter((p) => p.guessed).map((p) => `${p.pt}: ${p.guessed}`);
  return `{ protocol: rtp, port: ${g.port}${dyn.length ? `, payload_types: { ${dyn.join(", ")} }` : ""} }`;
}

function audioYaml(a: AudioFormat): string {
  const parts = [`envelope: ${a.envelope}`];
  if (a.envelope !== "raw") parts.push(`path: ${JSON.stringify(a.path)}`);
  parts.push(`encoding: ${a.encoding}`, `codec: ${a.codec}`, `sample_rate: ${a.sample_rate}`);
  if (a.channels !== 1) parts.push(`channels: ${a.channels}`, `channel: ${JSON.stringify(a.channel)}`);
  if (a.skip_bytes) parts.push(`skip_bytes: ${a.skip_bytes}`);
  return `{ ${parts.join(", ")} }`;
}

/** An HTTP or gRPC group of one direction of its service port: its tap can take requests or responses alone. */
function answersApart(g: PacketGroup): boolean {
  return (g.protocol === "http" || g.protocol === "grpc") && g.direction !== undefined;
}

function tapLines(g: PacketGroup, indent: string): string[] {
  if (g.protocol === "rtp") return [`${indent}packets: ${rtpTapYaml(g)}`];
  const answers = answersApart(g) && g.direction!.startsWith("from") ? ", http_bodies: responses" : "";
  const lines = [`${indent}packets: { protocol: ${g.protocol}, port: ${g.port}${answers} }`];
  if (g.audio) lines.push(`${indent}audio: ${audioYaml(g.audio)}`);
  if (g.guess?.kind === "audio" && g.guess.streamKeyPaths.value.length > 0) {
    lines.push(
      `${indent}stream_key: [stream, ${
        g.guess.streamKeyPaths.value.map((p) => JSON.stringify(p)).join(", ")
      }]`,
    );
  }
  return lines;
}

/**
 * A config with the earliest audio group as the source and the others as stages. A group whose tap would take
 * the flows of a group already in the config (see {@link tapsShareFlows}) is left out, with a note in `notes`
 * and in the config: as a stage it would only measure the source against itself.
 */
function proposeConfig(
  file: string,
  groups: PacketGroup[],
  flows: GroupFlows,
  notes: string[],
): string | undefined {
  const audio = groups.filter((g) => g.audioLikely).sort((a, b) => (a.firstNs < b.firstNs ? -1 : 1));
  if (audio.length === 0) return undefined;
  const name = (g: PacketGroup) =>
    `${g.protocol}_${g.port}${g.direction ? (g.direction.startsWith("to") ? "_in" : "_out") : ""}`;
  const kept: PacketGroup[] = [];
  for (const g of audio) {
    const with_ = kept.find((k) => tapsShareFlows(k, g, flows));
    if (with_ === undefined) {
      kept.push(g);
      continue;
    }
    notes.push(
      `${g.protocol} port ${g.port}${
        g.direction ? ` (${g.direction})` : ""
      } is audio too, but left out: its ` +
        `packet tap would take the same flows as ${
          name(with_)
        }'s (a tap takes its port on either side of a ` +
        `flow, both directions of a connection), so it would find ${
          name(with_)
        }'s audio in its own streams at ` +
        `0 ms; live, with pod metadata, a tap's pod and direction (to_pod, from_pod) take one direction alone`,
    );
  }
  const [src, ...stages] = kept;
  const lines = [
    `# Proposed by fsm-px discover from ${file}: the audio that starts first is the source, the rest are stages.`,
    `# Check the order (each stage's 'after:') and the names before you use it.`,
    `measurements:`,
    `  - name: ${name(src!)}`,
    `    signature_rules:`,
    ...tapLines(src!, "      "),
  ];
  for (const g of audio.filter((g) => !kept.includes(g))) {
    lines.push(`    # left out: ${name(g)}, audio on the same flows as a tap above (see discover's note)`);
  }
  const ids = kept.flatMap((g) => (g.guess?.kind === "audio" ? g.guess.ids : []));
  if (stages.length > 0) {
    lines.push(`    match_rules:`);
    for (const g of stages) {
      lines.push(`      - stage: ${name(g)}`);
      lines.push(...tapLines(g, "        "));
    }
  }
  if (ids.length > 0) {
    lines.push(`    metadata_extraction:`, `      id_patterns:`);
    const seen = new Set<string>();
    for (const id of ids) {
      if (seen.has(id.idType)) continue;
      seen.add(id.idType);
      lines.push(`        - { pattern: ${JSON.stringify(id.pattern)}, id_type: ${id.idType} }`);
    }
  }
  return lines.join("\n") + "\n";
}

/** Renders a discovery for people. */
export function renderPacketDiscovery(d: PacketDiscovery): string {
  const out = [`${d.file}: ${d.frames} frames`];
  if (d.groups.length === 0) {
    out.push("  no RTP streams and no WebSocket, HTTP, gRPC, NATS or Redis connections found");
  }
  for (const g of d.groups) {
    out.push(
      `  ${g.protocol} port ${g.port}${g.direction ? ` (${g.direction})` : ""}: ${g.streams} stream(s), ` +
        `${g.messages} message(s); ` +
        `${g.audioLikely ? "audio" : "no audio"}: ${g.reason}`,
    );
    for (const p of g.payloadTypes ?? []) {
      out.push(
        `    payload type ${p.pt} (${p.packets} packets): ${p.codec ?? p.guessed ?? "?"}${
          p.reason ? ` (${p.reason})` : ""
        }`,
      );
    }
    if (g.audio && g.guess?.kind !== "none") {
      out.push(`    audio: ${audioYaml(g.audio)} (confidence ${(g.guess?.confidence ?? 0).toFixed(2)})`);
    }
  }
  for (const n of d.notes ?? []) out.push(`  note: ${n}`);
  if (d.config) out.push("", "proposed config:", "", d.config);
  return out.join("\n");
}

/** RTP codecs by name, for tests. */
export type { RtpCodec };
