/**
 * Real TCP conversations on loopback captured by a real `tcpdump`, with ground truth from the senders' logs: the
 * WebSocket scenario (Deno's own server and client exchanging Twilio-style frames, plus a raw-socket client for
 * fragmentation, pings and 64-bit lengths). Used by the tests and by fixtures/packets/make_tcp_fixtures.ts.
 * @module
 */

import { createHash } from "node:crypto";
import { concat, frame, mulawB64, twilioMedia } from "./ws_frames.ts";
import { type AppMessage, flowName, type Packet } from "../../packets/types.ts";
import { TcpSource } from "../../packets/tcp_source.ts";

/** A running tcpdump writing a pcap file. */
export interface Tcpdump {
  /** Stops it (SIGINT), waits until the file is complete; the packets the kernel dropped (from tcpdump's report). */
  stop(): Promise<number>;
}

/** Starts `tcpdump -i lo --time-stamp-precision=nano --immediate-mode -U -w file <filter>` (immediate mode: without it packets still in the ring block when tcpdump stops are lost) and waits until it listens. */
export async function startTcpdump(file: string, filter: string): Promise<Tcpdump> {
  const child = new Deno.Command("tcpdump", {
    args: [
      "-i",
      "lo",
      "--time-stamp-precision=nano",
      "--immediate-mode",
      "-U",
      "-B",
      "32768",
      "-s",
      "0",
      "-w",
      file,
      filter,
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.getReader();
  let text = "";
  const deadline = Date.now() + 10_000;
  while (!text.includes("listening on")) {
    if (Date.now() > deadline) throw new Error(`tcpdump did not start: ${text}`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`tcpdump exited: ${text}`);
    text += new TextDecoder().decode(value);
  }
  // Keep draining stderr so tcpdump never blocks on it; its last lines report kernel drops.
  const drain = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
    } catch { /* closed */ }
  })();
  return {
    async stop() {
      // Let the kernel hand the last packets to tcpdump before it stops.
      await new Promise((r) => setTimeout(r, 300));
      child.kill("SIGINT");
      await child.status;
      await drain;
      const m = /([0-9]+) packets? dropped by kernel/.exec(text);
      return m === null ? 0 : Number(m[1]);
    },
  };
}

/** What one side sent on one WebSocket connection, in order. */
export interface WsSent {
  /** Connection id (carried in the client's `start` event). */
  client: string;
  /** `client` (to the server) or `server`. */
  from: "client" | "server";
  messages: MsgDigest[];
}

/** Ground truth of the WebSocket scenario. */
export interface WsTruth {
  port: number;
  sent: WsSent[];
}

const enc = new TextEncoder();

/** One message as ground truth: kind, length and SHA-256 of its bytes (byte-exact without storing them). */
export interface MsgDigest {
  text: boolean;
  len: number;
  sha256: string;
}

/** The digest of a message's bytes. */
export function digest(text: boolean, b: Uint8Array): MsgDigest {
  return { text, len: b.length, sha256: createHash("sha256").update(b).digest("hex") };
}

/** Runs the WebSocket scenario on `port` (capture it around this call). */
export async function runWsScenario(port: number, mediaCount = 60): Promise<WsTruth> {
  const sent = new Map<string, WsSent>();
  const log = (client: string, from: "client" | "server", data: string | Uint8Array) => {
    const k = `${client}/${from}`;
    let s = sent.get(k);
    if (s === undefined) sent.set(k, s = { client, from, messages: [] });
    s.messages.push(typeof data === "string" ? digest(true, enc.encode(data)) : digest(false, data));
  };
  const done: Promise<void>[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    let id = "";
    let replies = 0;
    let resolve = () => {};
    done.push(new Promise<void>((r) => resolve = r));
    socket.onmessage = (e) => {
      if (typeof e.data === "string" && id === "") {
        const m = JSON.parse(e.data);
        if (m.event === "start") id = m.start.customParameters.client;
      }
      // Every tenth message gets a text "mark" reply and a binary reply (the bot's own audio).
      if (id !== "" && ++replies % 10 === 0 && socket.readyState === WebSocket.OPEN) {
        const mark = JSON.stringify({ event: "mark", mark: { name: `m${replies}` } });
        socket.send(mark);
        log(id, "server", mark);
        const bin = new Uint8Array(320).map((_, i) => (i * replies) & 255);
        socket.send(bin);
        log(id, "server", bin);
      }
    };
    socket.onclose = () => resolve();
    return response;
  });
  try {
    await denoClient(port, "deno-1", mediaCount, log);
    await rawClient(port, "raw-1", log);
    await Promise.all(done);
  } finally {
    await server.shutdown();
  }
  return { port, sent: [...sent.values()] };
}

function startEvent(client: string): string {
  return JSON.stringify({
    event: "start",
    sequenceNumber: "1",
    start: {
      accountSid: "AC1",
      callSid: `CA-${client}`,
      streamSid: `MZ-${client}`,
      customParameters: { client },
    },
    streamSid: `MZ-${client}`,
  });
}

/** Deno's own WebSocket client: a start event, media frames, binary frames and one 70 KB binary message. */
async function denoClient(
  port: number,
  client: string,
  mediaCount: number,
  log: (c: string, f: "client" | "server", d: string | Uint8Array) => void,
): Promise<void> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/media`);
  ws.binaryType = "arraybuffer";
  await new Promise((r, j) => {
    ws.onopen = r;
    ws.onerror = j;
  });
  let sentCount = 0;
  let received = 0;
  ws.onmessage = () => received++;
  const send = (d: string | Uint8Array) => {
    ws.send(d);
    sentCount++;
    log(client, "client", d);
  };
  send(startEvent(client));
  for (let i = 0; i < mediaCount; i++) {
    send(twilioMedia(i, mulawB64(i)));
    if (i % 5 === 4) await new Promise((r) => setTimeout(r, 2));
    if (i % 20 === 7) send(new Uint8Array(200).map((_, k) => (k + i) & 255));
  }
  send(new Uint8Array(70_000).map((_, k) => (k * 13) & 255));
  send(JSON.stringify({ event: "stop", streamSid: `MZ-${client}` }));
  // Close only after the server's replies arrived, so everything it logged as sent is on the wire.
  const expected = 2 * Math.floor(sentCount / 10);
  for (let i = 0; i < 200 && received < expected; i++) await new Promise((r) => setTimeout(r, 10));
  const closed = new Promise((r) => ws.onclose = r);
  ws.close();
  await closed;
}

/** A raw-socket client: masked fragmented messages with a ping between fragments, 16/64-bit lengths, close. */
async function rawClient(
  port: number,
  client: string,
  log: (c: string, f: "client" | "server", d: string | Uint8Array) => void,
): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const w = async (b: Uint8Array) => {
    let o = 0;
    while (o < b.length) o += await conn.write(b.subarray(o));
  };
  await w(enc.encode(
    `GET /media HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  ));
  // Read the 101 and keep draining what the server sends (replies, pongs, close).
  const buf = new Uint8Array(65536);
  let head = "";
  while (!head.includes("\r\n\r\n")) {
    const n = await conn.read(buf);
    if (n === null) throw new Error("server closed during handshake");
    head += new TextDecoder().decode(buf.subarray(0, n));
  }
  if (!head.startsWith("HTTP/1.1 101")) throw new Error(`upgrade refused: ${head.split("\r\n")[0]}`);
  const reading = (async () => {
    try {
      while ((await conn.read(buf)) !== null) { /* drain */ }
    } catch { /* closed */ }
  })();
  let k = 1;
  const mask = (): [number, number, number, number] => {
    k = (k * 1103515245 + 12345) >>> 0;
    return [k >>> 24, (k >>> 16) & 255, (k >>> 8) & 255, k & 255];
  };
  const start = startEvent(client);
  await w(frame({ op: 1, payload: start, mask: mask() }));
  log(client, "client", start);
  for (let i = 0; i < 30; i++) {
    const m = twilioMedia(i, mulawB64(1000 + i));
    if (i % 6 === 3) {
      // Three fragments with a ping in between, each written separately.
      const b = enc.encode(m);
      const a = Math.floor(b.length / 3);
      await w(frame({ op: 1, payload: b.subarray(0, a), fin: false, mask: mask() }));
      await w(frame({ op: 9, payload: `ping${i}`, mask: mask() }));
      await w(frame({ op: 0, payload: b.subarray(a, 2 * a), fin: false, mask: mask() }));
      await w(frame({ op: 0, payload: b.subarray(2 * a), mask: mask() }));
    } else if (i % 6 === 5) {
      // Two frames in one write, the second split from the first mid-header by a separate write.
      const f1 = frame({ op: 1, payload: m, mask: mask() });
      const bin = new Uint8Array(150).map((_, j) => (j ^ i) & 255);
      const f2 = frame({ op: 2, payload: bin, mask: mask() });
      const both = concat(f1, f2);
      await w(both.subarray(0, f1.length + 1));
      await new Promise((r) => setTimeout(r, 2));
      await w(both.subarray(f1.length + 1));
      log(client, "client", m);
      log(client, "client", bin);
      continue;
    } else {
      await w(frame({ op: 1, payload: m, mask: mask() }));
    }
    log(client, "client", m);
    if (i % 4 === 0) await new Promise((r) => setTimeout(r, 2));
  }
  // A 64-bit length binary message (100 KB) fragmented into a 16-bit frame and a 64-bit frame.
  const big = new Uint8Array(100_000).map((_, j) => (j * 31 + 7) & 255);
  await w(frame({ op: 2, payload: big.subarray(0, 30_000), fin: false, mask: mask() }));
  await w(frame({ op: 0, payload: big.subarray(30_000), mask: mask() }));
  log(client, "client", big);
  await new Promise((r) => setTimeout(r, 100));
  await w(frame({ op: 8, payload: new Uint8Array([0x03, 0xe8]), mask: mask() }));
  await new Promise((r) => setTimeout(r, 50));
  try {
    conn.close();
  } catch { /* already closed by the server */ }
  await reading;
}

/** The capture (pcap bytes) and truth of one WebSocket scenario run; needs root and tcpdump. */
export async function captureWsScenario(
  port: number,
  mediaCount = 60,
): Promise<{ pcap: Uint8Array; truth: WsTruth; kernelDrops: number }> {
  const dir = await Deno.makeTempDir({ prefix: "fsmpx-ws-" });
  const file = `${dir}/ws.pcap`;
  try {
    const dump = await startTcpdump(file, `tcp port ${port}`);
    let truth: WsTruth;
    let kernelDrops = 0;
    try {
      truth = await runWsScenario(port, mediaCount);
    } finally {
      kernelDrops = await dump.stop();
    }
    return { pcap: await Deno.readFile(file), truth, kernelDrops };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Messages recovered per stream, keyed `client/from` via the client's start event, as in `WsSent`. */
export function wsRecovered(msgs: AppMessage[]): Map<string, MsgDigest[]> {
  const byStream = new Map<string, AppMessage[]>();
  for (const m of msgs) {
    let l = byStream.get(m.stream);
    if (l === undefined) byStream.set(m.stream, l = []);
    l.push(m);
  }
  const out = new Map<string, MsgDigest[]>();
  for (const [, l] of byStream) {
    const first = l[0]!;
    let id: string | undefined;
    try {
      const j = JSON.parse(new TextDecoder().decode(first.payload));
      id = j?.start?.customParameters?.client;
    } catch { /* not the start event */ }
    if (id === undefined) continue;
    out.set(`${id}/client`, l.map((m) => digest(m.text === true, m.payload)));
    const back = flowName({
      ...first.flow,
      src: first.flow.dst,
      srcPort: first.flow.dstPort,
      dst: first.flow.src,
      dstPort: first.flow.srcPort,
    });
    const replies = byStream.get(back) ?? [];
    out.set(`${id}/server`, replies.map((m) => digest(m.text === true, m.payload)));
  }
  return out;
}

/** Parses a WebSocket capture with the TCP source (every direction on `port` is WebSocket). */
export function parseWsCapture(
  packets: Packet[],
  port: number,
): { msgs: AppMessage[]; skips: Record<string, number> } {
  const msgs: AppMessage[] = [];
  const src = new TcpSource({
    protocolFor: (f) => (f.srcPort === port || f.dstPort === port ? "websocket" : undefined),
    emit: (m) => msgs.push(m),
  });
  for (const p of packets) src.push(p);
  src.finish();
  return { msgs, skips: src.skips.toJSON() };
}
