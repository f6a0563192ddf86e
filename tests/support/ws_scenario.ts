/**
 * The WebSocket scenario of the packet-capture end-to-end test and the packet demo, Deno's own WebSocket on every
 * side, on loopback, under a real `tcpdump`:
 *
 * ```
 * telephony client ──(Twilio JSON: start, media every 20 ms, stop)──► voice bot ──(binary PCM16 LE 8 kHz, re-chunked,
 *        ▲                                                            │   ▲       fixed delay)──► ASR server
 *        └──────────────── text marks (not audio) ────────────────────┘   └──── text transcripts (not audio) ──┘
 * ```
 *
 * The bot logs which source samples each forwarded message carries, so the truth is exact and read from the capture:
 * a message's time is that of the packet carrying its last byte ({@link wsTruth}).
 * @module
 */

import { tcpPackets } from "./pcap_min.ts";
import { startTcpdump } from "./tcp_capture.ts";
import { mulawDecode, sleep } from "./rtp_relay.ts";

/** Options of {@link runWsScenario}. */
export interface WsScenarioOptions {
  dir: string;
  /** Headerless μ-law 8 kHz speech the telephony client sends. */
  speech: string;
  /** Bot → ASR message length, ms (a multiple of 20). */
  chunkMs?: number;
  /** The bot's fixed delay after the media message that completes a chunk, ms. */
  delayMs?: number;
  /** The call's ids in the start event. */
  callSid?: string;
  streamSid?: string;
  pcapName?: string;
  /** Capture no pure ACKs (keeps a bundled capture small; data, SYN, FIN and RST segments stay). */
  dropPureAcks?: boolean;
  /** Fixed ports (default: any free ones). */
  botPort?: number;
  asrPort?: number;
}

/** One bot → ASR message: the source samples it carries. */
export interface WsChunk {
  index: number;
  /** Source samples [srcStart, srcEnd) from the call's first media sample. */
  srcStart: number;
  srcEnd: number;
}

/** What a run produced. */
export interface WsScenario {
  pcap: string;
  /** The bot's port (telephony ↔ bot) and the ASR's port (bot ↔ ASR). */
  botPort: number;
  asrPort: number;
  callSid: string;
  streamSid: string;
  chunkMs: number;
  delayMs: number;
  /** Media messages the client sent (160 samples each). */
  media: number;
  chunks: WsChunk[];
  /** Text replies: bot → client marks, ASR → bot transcripts. */
  marks: number;
  transcripts: number;
  kernelDrops: number;
}

/** Runs the scenario under tcpdump; resolves when the capture file is complete. */
export async function runWsScenario(opts: WsScenarioOptions): Promise<WsScenario> {
  const chunkMs = opts.chunkMs ?? 100;
  const delayMs = opts.delayMs ?? 300;
  const callSid = opts.callSid ?? "CA5d0c2a9e4f1b3a7c8e6d0f2b4a6c8e0f";
  const streamSid = opts.streamSid ?? "MZ1f3e5d7c9b0a2e4d6c8b0a1f3e5d7c9b";
  const speech = await Deno.readFile(opts.speech);
  const chunkSamples = chunkMs * 8;
  const chunks: WsChunk[] = [];
  let marks = 0;
  let transcripts = 0;
  const pending = new Set<Promise<void>>();

  // ASR: takes binary PCM, answers with a text transcript every 10th message.
  let asrMessages = 0;
  const asrClosed: Promise<void>[] = [];
  const asr = Deno.serve({ hostname: "127.0.0.1", port: opts.asrPort ?? 0, onListen: () => {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    asrClosed.push(new Promise((r) => socket.addEventListener("close", () => r())));
    socket.onmessage = (e) => {
      if (typeof e.data === "string") return;
      if (++asrMessages % 10 === 0 && socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({ type: "partial", text: `words ${asrMessages}`, final: false }));
        transcripts++;
      }
    };
    return response;
  });

  // The voice bot: Twilio media in, PCM16 chunks to the ASR after a fixed delay.
  const botDone: Promise<void>[] = [];
  const bot = Deno.serve({ hostname: "127.0.0.1", port: opts.botPort ?? 0, onListen: () => {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    const up = new WebSocket(`ws://127.0.0.1:${asr.addr.port}/asr`);
    up.binaryType = "arraybuffer";
    const upOpen = new Promise<void>((r) => up.onopen = () => r());
    let samples = new Int16Array(8000 * 60);
    let have = 0;
    let next = 0;
    let media = 0;
    let lastSend: Promise<void> = Promise.resolve();
    let resolveDone = () => {};
    botDone.push(new Promise((r) => resolveDone = r));
    socket.onmessage = (e) => {
      if (typeof e.data !== "string") return;
      const m = JSON.parse(e.data) as { event: string; media?: { payload: string } };
      if (m.event !== "media" || m.media === undefined) return;
      const bytes = Uint8Array.from(atob(m.media.payload), (c) => c.charCodeAt(0));
      if (have + bytes.length > samples.length) {
        const grown = new Int16Array(samples.length * 2);
        grown.set(samples);
        samples = grown;
      }
      for (const b of bytes) samples[have++] = mulawDecode(b);
      // Every 25th media message gets a text mark back (Twilio's "mark" events are not audio).
      if (++media % 25 === 0 && socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({ event: "mark", streamSid, mark: { name: `m${media}` } }));
        marks++;
      }
      const arrived = performance.now();
      while ((next + 1) * chunkSamples <= have) {
        const c: WsChunk = { index: next, srcStart: next * chunkSamples, srcEnd: (next + 1) * chunkSamples };
        next++;
        chunks.push(c);
        const out = new Uint8Array(chunkSamples * 2);
        const dv = new DataView(out.buffer);
        for (let i = 0; i < chunkSamples; i++) dv.setInt16(2 * i, samples[c.srcStart + i]!, true);
        const wait = Math.max(0, arrived + delayMs - performance.now());
        // Sends keep their order: each waits for the previous one (timers of equal delay may fire together).
        const done = Promise.all([upOpen, sleep(wait), lastSend]).then(() => up.send(out));
        lastSend = done;
        pending.add(done);
        done.finally(() => pending.delete(done));
      }
    };
    socket.onclose = async () => {
      while (pending.size > 0) await Promise.all([...pending]);
      // Close towards the ASR only after its last transcript could arrive.
      await sleep(200);
      up.close();
      resolveDone();
    };
    return response;
  });

  const pcap = `${opts.dir}/${opts.pcapName ?? "ws.pcap"}`;
  let filter = `(tcp port ${bot.addr.port} or tcp port ${asr.addr.port})`;
  if (opts.dropPureAcks) {
    filter += " and (tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0 or " +
      "ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2) != 0)";
  }
  const tcpdump = await startTcpdump(pcap, filter);
  let kernelDrops = 0;
  let sent = 0;
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${bot.addr.port}/media`);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = reject;
    });
    ws.send(JSON.stringify({
      event: "start",
      sequenceNumber: "1",
      start: {
        accountSid: "AC0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        callSid,
        streamSid,
        tracks: ["inbound"],
        mediaFormat: { encoding: "audio/x-mulaw", sampleRate: 8000, channels: 1 },
      },
      streamSid,
    }));
    // One 20 ms message every 20 ms, scheduled from the start (no drift).
    const t0 = performance.now();
    for (let i = 0; (i + 1) * 160 <= speech.length; i++) {
      const due = t0 + 20 * i;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const payload = btoa(String.fromCharCode(...speech.subarray(i * 160, (i + 1) * 160)));
      ws.send(JSON.stringify({
        event: "media",
        sequenceNumber: String(i + 2),
        media: { track: "inbound", chunk: String(i + 1), timestamp: String(20 * i), payload },
        streamSid,
      }));
      sent++;
    }
    ws.send(JSON.stringify({ event: "stop", sequenceNumber: String(sent + 2), streamSid }));
    // Let the marks in flight arrive, then close.
    await sleep(300);
    const closed = new Promise((r) => ws.onclose = r);
    ws.close();
    await closed;
    await Promise.all(botDone);
    await Promise.all(asrClosed);
  } finally {
    await bot.shutdown();
    await asr.shutdown();
    kernelDrops = await tcpdump.stop();
  }
  return {
    pcap,
    botPort: bot.addr.port,
    asrPort: asr.addr.port,
    callSid,
    streamSid,
    chunkMs,
    delayMs,
    media: sent,
    chunks,
    marks,
    transcripts,
    kernelDrops,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Ground truth from the capture

/** One WebSocket message as captured: its opcode and the capture time of the packet that completed it. */
export interface CapturedWsMessage {
  timeNs: bigint;
  opcode: number;
  payload: Uint8Array;
}

/**
 * The messages of one TCP direction (`srcPort` → `dstPort`), in order: the stream is rebuilt from sequence
 * numbers (loopback: no loss), the HTTP upgrade skipped, and frames parsed (unmasked here). Control frames are
 * left out; fragmented messages are joined.
 */
export function wsMessages(bytes: Uint8Array, srcPort: number, dstPort: number): CapturedWsMessage[] {
  const pkts = tcpPackets(bytes).filter((p) => p.srcPort === srcPort && p.dstPort === dstPort);
  // Stream bytes with the capture time of the packet that carried each byte range.
  const parts: { seq: number; data: Uint8Array; timeNs: bigint }[] = [];
  let isn: number | undefined;
  for (const p of pkts) {
    if (p.tcp!.flags & 0x02) isn = (p.tcp!.seq + 1) >>> 0;
    if (p.payload.length > 0) parts.push({ seq: p.tcp!.seq, data: p.payload, timeNs: p.timeNs });
  }
  if (isn === undefined) throw new Error(`no SYN for ${srcPort}->${dstPort}`);
  const stream: number[] = [];
  const timeAt: bigint[] = [];
  for (const part of parts) {
    const off = (part.seq - isn) >>> 0;
    for (let i = 0; i < part.data.length; i++) {
      if (timeAt[off + i] === undefined) {
        stream[off + i] = part.data[i]!;
        timeAt[off + i] = part.timeNs;
      }
    }
  }
  const s = Uint8Array.from(stream);
  // Skip the HTTP upgrade request or response.
  const head = new TextDecoder().decode(s.subarray(0, Math.min(s.length, 4096)));
  let o = head.indexOf("\r\n\r\n");
  if (o < 0) throw new Error("no HTTP upgrade in the stream");
  o += 4;
  const out: CapturedWsMessage[] = [];
  let frag: Uint8Array[] = [];
  let fragOp = 0;
  while (o + 2 <= s.length) {
    const b0 = s[o]!, b1 = s[o + 1]!;
    let len = b1 & 0x7f;
    let h = 2;
    if (len === 126) {
      len = (s[o + 2]! << 8) | s[o + 3]!;
      h = 4;
    } else if (len === 127) {
      len = 0;
      for (let i = 0; i < 8; i++) len = len * 256 + s[o + 2 + i]!;
      h = 10;
    }
    const masked = (b1 & 0x80) !== 0;
    const key = masked ? s.subarray(o + h, o + h + 4) : undefined;
    if (masked) h += 4;
    if (o + h + len > s.length) break;
    const payload = s.slice(o + h, o + h + len);
    if (key) { for (let i = 0; i < payload.length; i++) payload[i]! ^= key[i & 3]!; }
    const op = b0 & 15;
    const fin = (b0 & 0x80) !== 0;
    const end = o + h + len;
    o = end;
    if (op >= 8) continue;
    if (op !== 0) {
      fragOp = op;
      frag = [];
    }
    frag.push(payload);
    if (!fin) continue;
    const total = frag.reduce((n, f) => n + f.length, 0);
    const joined = new Uint8Array(total);
    let w = 0;
    for (const f of frag) {
      joined.set(f, w);
      w += f.length;
    }
    out.push({ timeNs: timeAt[end - 1]!, opcode: fragOp, payload: joined });
  }
  return out;
}

/** The client's and the bot's ephemeral ports, from the capture's SYNs. */
export function wsClientPorts(bytes: Uint8Array, sc: Pick<WsScenario, "botPort" | "asrPort">): {
  client: number;
  botUp: number;
} {
  const syn = tcpPackets(bytes).filter((p) => (p.tcp!.flags & 0x12) === 0x02);
  const client = syn.find((p) => p.dstPort === sc.botPort)?.srcPort;
  const botUp = syn.find((p) => p.dstPort === sc.asrPort)?.srcPort;
  if (client === undefined || botUp === undefined) throw new Error("connections not found in the capture");
  return { client, botUp };
}

/** Exact truth of the bot → ASR hop. */
export interface WsTruth {
  /** Client media messages (in order) and bot → ASR binary messages (in order). */
  media: CapturedWsMessage[];
  forwarded: CapturedWsMessage[];
  /** Text messages in the other directions: bot → client marks, ASR → bot transcripts. */
  marks: CapturedWsMessage[];
  transcripts: CapturedWsMessage[];
  /** Media message indexes by capture time; more than one when two messages completed in one packet. */
  mediaByTime: Map<string, number[]>;
  /** True latency (s) of an instant `offsetMs` into the media message captured at `timeNs`. */
  latency(timeNs: string, offsetMs: number): number | undefined;
}

/** Builds the truth from a capture and the bot's log. */
export function wsTruth(bytes: Uint8Array, sc: WsScenario): WsTruth {
  const { client, botUp } = wsClientPorts(bytes, sc);
  const all = wsMessages(bytes, client, sc.botPort).filter((m) => m.opcode === 1);
  const dec = new TextDecoder();
  const media = all.filter((m) => dec.decode(m.payload).includes(`"event":"media"`));
  const forwarded = wsMessages(bytes, botUp, sc.asrPort).filter((m) => m.opcode === 2);
  const marks = wsMessages(bytes, sc.botPort, client).filter((m) => m.opcode === 1);
  const transcripts = wsMessages(bytes, sc.asrPort, botUp).filter((m) => m.opcode === 1);
  const mediaByTime = new Map<string, number[]>();
  media.forEach((m, i) => {
    const k = String(m.timeNs);
    mediaByTime.set(k, [...(mediaByTime.get(k) ?? []), i]);
  });
  const chunkSamples = sc.chunkMs * 8;
  return {
    media,
    forwarded,
    marks,
    transcripts,
    mediaByTime,
    latency(timeNs, offsetMs) {
      // Two messages completed by one packet share a time: the truth is known when both give the same answer.
      const answers = new Set((mediaByTime.get(timeNs) ?? []).map((i) => {
        const target = forwarded[Math.floor((i * 160 + offsetMs * 8) / chunkSamples)];
        return target === undefined ? undefined : Number(target.timeNs - BigInt(timeNs)) / 1e9;
      }));
      return answers.size === 1 ? [...answers][0] : undefined;
    },
  };
}

/** The bytes of a text message, for checks. */
export function text(m: CapturedWsMessage): string {
  return new TextDecoder().decode(m.payload);
}

/** The `packets:` taps that measure a run: the telephony side as source, the bot → ASR side as stage `asr`. */
export function wsConfigYaml(sc: WsScenario, measurement = "ws_call", reanchorMs = 1000): string {
  return `log_level: warn
measurements:
  - name: ${measurement}
    signature_rules:
      # Twilio media stream from the telephony side (the default audio: media.payload, base64 μ-law 8 kHz).
      packets: { protocol: websocket, port: ${sc.botPort} }
      audio_criteria: { reanchor_ms: ${reanchorMs} }
    match_rules:
      # The voice bot's binary PCM16 to the ASR.
      - stage: asr
        packets: { protocol: websocket, port: ${sc.asrPort} }
        audio: { envelope: raw, encoding: binary, codec: pcm16le, sample_rate: 8000 }
    metadata_extraction:
      id_patterns:
        # In the start event only: it sticks to the stream's later media messages.
        - pattern: '"callSid":"(CA[0-9a-f]+)"'
          id_type: call_sid
`;
}
