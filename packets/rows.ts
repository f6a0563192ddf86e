/**
 * Application messages → rows: each message goes to every tap (query) whose protocol and flow filters it
 * passes, as a {@link Row} shaped like a Pixie row, so everything after the reader is shared with Pixie taps.
 *
 * Row columns (a contract, like Pixie's table columns): `time_` (bigint ns), `pod` (`namespace/pod`, or
 * `host:port` of the side the tap is about when no pod is known), `payload` (bytes), `stream` (the flow direction,
 * plus ` ssrc=0x…` for RTP), `src`/`dst` (`host:port`), and per protocol: `rtp_pt`, `rtp_seq`, `rtp_ts`,
 * `rtp_ssrc`, `rtp_lost` (packets missing before this one), `rtp_codec` (`PCMU/8000`, `opus/48000/2`, ...);
 * `ws_text` (websocket); `method`, `path` (http); `subject` (nats); `command`, `key` (redis); `msg_index` (the
 * message's place among those one packet completed on its stream, from 1 for the second; absent for the first).
 * @module
 */
import type { Cell, Row } from "../pixie/row.ts";
import { globMatch, type PacketTap, type PodResolver, tapMatches } from "./taps.ts";
import { codecForPayloadType, rtpCodecName } from "./rtp_codecs.ts";
import { type AppMessage, hostPort, SkipCounter } from "./types.ts";

/** Column names of packet rows. */
export const PacketColumn = {
  time: "time_",
  pod: "pod",
  payload: "payload",
  stream: "stream",
  src: "src",
  dst: "dst",
  rtpPayloadType: "rtp_pt",
  rtpSeq: "rtp_seq",
  rtpTimestamp: "rtp_ts",
  rtpSsrc: "rtp_ssrc",
  rtpLost: "rtp_lost",
  rtpCodec: "rtp_codec",
  wsText: "ws_text",
  msgIndex: "msg_index",
} as const;

/** What the builder keeps per stream: the taps it goes to, and the place of its last message in its packet. */
interface StreamState {
  readonly taps: readonly PacketTap[];
  /** HTTP bodies a tap's addresses match but no such tap takes (responses to a requests tap): counted as such. */
  readonly untapped?: "http_response" | "grpc_response";
  /** Capture time of the stream's last message (-1: none yet). */
  lastTimeNs: bigint;
  /** Its place among the messages its packet completed (0: the first). */
  index: number;
}

/**
 * Capture time after which a stream without messages is forgotten (its taps are decided again at its next one:
 * the same taps, unless pods changed), ns: as long as a TCP direction is kept quiet.
 */
const STREAM_IDLE_NS = 120_000_000_000n;
/** Capture time between sweeps for such streams (a sweep visits every stream), ns. */
const SWEEP_NS = 10_000_000_000n;

/** Why a message was not turned into rows. */
export type MessageSkip = "no_tap" | "rtp_unknown_payload_type" | "rtp_telephone_event";

/** Options of {@link PacketRowBuilder}. */
export interface PacketRowBuilderOptions {
  taps: readonly PacketTap[];
  /** The node the rows are captured on. */
  node: string;
  /** Pod metadata (live); without it `pod` is an address and pod/direction filters match nothing. */
  pods?: PodResolver;
  /** The packet source's counter, for HTTP response bodies no tap takes (`http_response`, as the parser counts). */
  skips?: SkipCounter;
}

/**
 * Whether an HTTP tap takes a message: requests carry `meta.method`, responses `meta.status` (a direction
 * carries one kind, so this is decided once per stream).
 */
function takesBody(tap: PacketTap, msg: AppMessage): boolean {
  if (tap.protocol !== "http" && tap.protocol !== "grpc") return true;
  const want = tap.httpBodies ?? "requests";
  return want === "both" || (want === "responses") === isResponse(tap, msg);
}

/**
 * Whether a message is a response: HTTP/1 ones carry `meta.status`; gRPC ones `meta.grpc`, and where the capture
 * began mid-connection (`unknown`), the one that comes from the tap's port is the server's.
 */
function isResponse(tap: PacketTap, msg: AppMessage): boolean {
  if (tap.protocol === "http") return msg.meta?.status !== undefined;
  const role = msg.meta?.grpc;
  if (role !== "unknown") return role === "response";
  const named = (port: number) =>
    tap.ports.includes(port) || tap.portRanges.some(([lo, hi]) => port >= lo && port <= hi);
  return named(msg.flow.srcPort) && !named(msg.flow.dstPort);
}

/** Turns application messages into rows for the taps they belong to. */
export class PacketRowBuilder {
  readonly #taps: readonly PacketTap[];
  readonly #node: string;
  readonly #pods: PodResolver | undefined;
  readonly #skips: SkipCounter | undefined;
  /**
   * Taps per stream: flow filters are decided once per stream (and again when pods change). Streams quiet for
   * {@link STREAM_IDLE_NS} are forgotten: kept, every call's RTP or TCP streams stayed until 100,000 of them.
   */
  #byStream = new Map<string, StreamState>();
  /** Capture time of the last sweep for quiet streams, and the times before and after it that make the next. */
  #nextSweepNs = -(1n << 62n);
  #backSweepNs = -(1n << 62n);
  /** Messages skipped, by reason. */
  readonly skipped: Map<MessageSkip, number> = new Map();
  /** Rows made, per query. */
  readonly rows: Map<string, number> = new Map();

  /** Creates the builder. */
  constructor(opts: PacketRowBuilderOptions) {
    this.#taps = opts.taps;
    this.#node = opts.node;
    this.#pods = opts.pods;
    this.#skips = opts.skips;
  }

  /** Forgets per-stream decisions (call when pod metadata changed). */
  invalidate(): void {
    this.#byStream.clear();
  }

  /** The taps a message's stream belongs to. */
  tapsFor(msg: AppMessage): readonly PacketTap[] {
    return this.#stateOf(msg).taps;
  }

  #stateOf(msg: AppMessage): StreamState {
    let st = this.#byStream.get(msg.stream);
    if (st === undefined) {
      const matched = this.#taps.filter((t) =>
        t.protocol === msg.protocol && tapMatches(t, msg.flow, this.#pods)
      );
      const taps = matched.filter((t) => takesBody(t, msg));
      // A response only requests taps match: counted as the parser counts the HTTP/1 bodies it does not read.
      const untapped = taps.length === 0 && matched.length > 0 && isResponse(matched[0]!, msg)
        ? (msg.protocol === "grpc" ? "grpc_response" as const : "http_response" as const)
        : undefined;
      if (this.#byStream.size > 100_000) this.#byStream.clear();
      this.#byStream.set(msg.stream, st = { taps, lastTimeNs: -1n, index: 0, untapped });
    }
    return st;
  }

  /** The rows of one message (none when no tap takes it; counted). */
  build(msg: AppMessage): Row[] {
    const t = msg.timeNs;
    if (t >= this.#nextSweepNs || t <= this.#backSweepNs) this.#sweep(t);
    const st = this.#stateOf(msg);
    const taps = st.taps;
    if (taps.length === 0) {
      if (st.untapped !== undefined && this.#skips !== undefined) this.#skips.add(st.untapped);
      else this.#skip("no_tap");
      return [];
    }
    // Messages one packet completes share its capture time: their place tells identical ones apart (two silent
    // frames sent in one write are two frames of audio, not a row delivered twice; see the tap intake's dedupe).
    if (msg.timeNs === st.lastTimeNs) st.index++;
    else {
      st.lastTimeNs = msg.timeNs;
      st.index = 0;
    }
    const out: Row[] = [];
    for (const tap of taps) {
      const columns: Record<string, Cell> = {
        [PacketColumn.time]: msg.timeNs,
        [PacketColumn.pod]: this.#podOf(tap, msg),
        [PacketColumn.payload]: msg.payload,
        [PacketColumn.stream]: msg.stream,
        [PacketColumn.src]: hostPort(msg.flow.src, msg.flow.srcPort),
        [PacketColumn.dst]: hostPort(msg.flow.dst, msg.flow.dstPort),
      };
      if (msg.rtp) {
        const codec = codecForPayloadType(msg.rtp.pt, tap.payloadTypes);
        if (codec === undefined) {
          this.#skip("rtp_unknown_payload_type");
          continue;
        }
        if (codec.codec === "event") {
          this.#skip("rtp_telephone_event");
          continue;
        }
        columns[PacketColumn.rtpPayloadType] = msg.rtp.pt;
        columns[PacketColumn.rtpSeq] = msg.rtp.seq;
        columns[PacketColumn.rtpTimestamp] = msg.rtp.ts;
        columns[PacketColumn.rtpSsrc] = msg.rtp.ssrc;
        columns[PacketColumn.rtpLost] = msg.rtp.lostBefore;
        columns[PacketColumn.rtpCodec] = rtpCodecName(codec);
      }
      if (msg.text !== undefined) columns[PacketColumn.wsText] = msg.text;
      if (st.index > 0) columns[PacketColumn.msgIndex] = st.index;
      if (msg.meta) { for (const [k, v] of Object.entries(msg.meta)) columns[k] ??= v; }
      out.push({ query: tap.query, node: this.#node, time: msg.timeNs, columns });
      this.rows.set(tap.query, (this.rows.get(tap.query) ?? 0) + 1);
    }
    return out;
  }

  /** Forgets the streams quiet for {@link STREAM_IDLE_NS} at `nowNs` (or as far ahead: a clock stepped back). */
  #sweep(nowNs: bigint): void {
    this.#nextSweepNs = nowNs + SWEEP_NS;
    this.#backSweepNs = nowNs - SWEEP_NS;
    for (const [stream, st] of this.#byStream) {
      const quiet = nowNs - st.lastTimeNs;
      if (quiet >= STREAM_IDLE_NS || quiet <= -STREAM_IDLE_NS) this.#byStream.delete(stream);
    }
  }

  /** Streams whose taps are remembered now (for tests). */
  get streamCount(): number {
    return this.#byStream.size;
  }

  /**
   * The pod a row is about: with metadata, the side the tap's pod filter and direction name (the receiver by
   * default, where the audio is consumed); without, that side's `host:port`.
   */
  #podOf(tap: PacketTap, msg: AppMessage): string {
    const f = msg.flow;
    const dst = this.#pods?.(f.dst, f.dstPort);
    const src = this.#pods?.(f.src, f.srcPort);
    if (tap.direction === "from_pod") return src ?? hostPort(f.src, f.srcPort);
    if (tap.direction === "to_pod") return dst ?? hostPort(f.dst, f.dstPort);
    if (
      tap.pod !== undefined && src !== undefined && globMatch(tap.pod, src) &&
      !(dst && globMatch(tap.pod, dst))
    ) {
      return src;
    }
    return dst ?? src ?? hostPort(f.dst, f.dstPort);
  }

  #skip(reason: MessageSkip): void {
    this.skipped.set(reason, (this.skipped.get(reason) ?? 0) + 1);
  }
}

/** Merges a builder's message skips into a counter of packet-level skips, for one report. */
export function skipReport(packets: SkipCounter, builder: PacketRowBuilder): Record<string, number> {
  return { ...packets.toJSON(), ...Object.fromEntries(builder.skipped) };
}

/** The column that names a packet row's stream (the default stream key of packet taps). */
export const PACKET_STREAM_COLUMN: string = PacketColumn.stream;
