/**
 * Audio in HTTP/1 response bodies (a TTS service's answers, a media service that hands audio back): a packet tap
 * with `http_bodies: responses` takes them, where before packet capture only counted them (`http_response`) and
 * Pixie replaces binary response bodies with `<removed: ...>`. Real parts: a Deno server and client on loopback,
 * captured by tcpdump, then `analyze` of the pcap with the request bodies as the source and the response bodies
 * as a stage.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { join } from "node:path";
import { parseFrames } from "../packets/pcap.ts";
import { PacketSource } from "../packets/packet_source.ts";
import { rtpTap } from "./support/packet_build.ts";
import { startTcpdump } from "./support/tcp_capture.ts";
import { gatedTest } from "./support/tools.ts";
import { analyzeCaptures, ROOT } from "./support/sensor_process.ts";
import { loadConfig } from "../config/load.ts";

const test = await gatedTest(import.meta.url, ["root", "tcpdump"]);

/** Reads one HTTP/1.1 response with a Content-Length from `conn`; its body. */
async function readResponse(conn: Deno.Conn): Promise<Uint8Array> {
  let buf = new Uint8Array(0);
  const more = async () => {
    const chunk = new Uint8Array(65536);
    const n = await conn.read(chunk);
    if (n === null) {
      throw new Error("the service closed the connection: " + JSON.stringify(new TextDecoder().decode(buf)));
    }
    buf = new Uint8Array([...buf, ...chunk.subarray(0, n)]);
  };
  let end = -1;
  while ((end = new TextDecoder().decode(buf).indexOf("\r\n\r\n")) < 0) await more();
  const head = new TextDecoder().decode(buf.subarray(0, end));
  const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
  while (buf.length < end + 4 + length) await more();
  return buf.subarray(end + 4, end + 4 + length);
}

/**
 * Chunks of 40 ms (Deno.serve closed the keep-alive connection after a request of 800 bytes or more) and how many
 * the service holds before handing a chunk back.
 */
const CHUNK = 320;
const CHUNK_MS = 40;
const HELD = 8;

test("HTTP: a service's response bodies carry audio: a responses tap measures their delay, tcpdump on loopback", async () => {
  const speech = Deno.readFileSync(join(ROOT, "fixtures/audio_fp/speech_8k.ul"));
  const port = 19_000 + Math.floor(Math.random() * 1000);
  const dir = await Deno.makeTempDir();
  const pcap = join(dir, "node-tts.pcap");
  // The service answers each chunk at once with the chunk it got HELD requests before (a delay line: its audio
  // comes back ~320 ms late), the first answers empty.
  const held: Uint8Array<ArrayBuffer>[] = [];
  const ac = new AbortController();
  const server = Deno.serve(
    { port, hostname: "127.0.0.1", signal: ac.signal, onListen() {} },
    async (req) => {
      held.push(new Uint8Array(await req.arrayBuffer()));
      const back: Uint8Array<ArrayBuffer> = held.length > HELD
        ? held[held.length - 1 - HELD]!
        : new Uint8Array(0);
      return new Response(back, { headers: { "content-type": "audio/basic" } });
    },
  );
  // One keep-alive connection, as a streaming uploader keeps (Deno's fetch opened one per request here).
  const td = await startTcpdump(pcap, `tcp port ${port}`);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const start = performance.now();
    for (let i = 0; (i + 1) * CHUNK <= speech.length; i++) {
      // In real time: each chunk when its audio has been spoken.
      const due = start + (i + 1) * CHUNK_MS - performance.now();
      if (due > 0) await new Promise((r) => setTimeout(r, due));
      const head =
        `POST /media HTTP/1.1\r\nHost: tts\r\nContent-Type: audio/basic\r\nContent-Length: ${CHUNK}\r\n\r\n`;
      await conn.write(
        new Uint8Array([...new TextEncoder().encode(head), ...speech.subarray(i * CHUNK, (i + 1) * CHUNK)]),
      );
      await readResponse(conn);
    }
    conn.close();
    equal(await td.stop(), 0, "no packet dropped by the kernel");
  } finally {
    ac.abort();
    await server.finished;
  }
  try {
    // The packet layer: response bodies are rows of a responses tap only, and still counted where none takes them.
    const frames = parseFrames(await Deno.readFile(pcap)).frames;
    const rows = (taps: Parameters<typeof rtpTap>[0][]) => {
      const src = new PacketSource({ taps: taps.map((t) => rtpTap(t)), node: "n" });
      const out = [...frames.flatMap((f) => src.push(f)), ...src.finish()];
      return { out, skips: src.skipReport() };
    };
    const requests = rows([{ protocol: "http", ports: [port], query: "m/source" }]);
    const chunks = Math.floor(speech.length / CHUNK);
    equal(requests.out.length, chunks, "every request body");
    deepEqual(requests.skips, { http_response: chunks - HELD }, "response bodies counted, as before");
    const both = rows([
      { protocol: "http", ports: [port], query: "m/source" },
      { protocol: "http", ports: [port], query: "m/tts", httpBodies: "responses" },
    ]);
    equal(both.out.filter((r) => r.query === "m/source").length, chunks);
    equal(both.out.filter((r) => r.query === "m/tts").length, chunks - HELD, "every non-empty response body");
    ok(both.out.filter((r) => r.query === "m/tts").every((r) => r.columns["status"] === "200"));
    deepEqual(both.skips, {});

    // analyze: the responses' audio is the requests' ~320 ms later.
    const config = join(dir, "config.yaml");
    await Deno.writeTextFile(
      config,
      `log_level: warn
node: node-tts
measurements:
  - name: tts
    signature_rules:
      packets: { protocol: http, port: ${port} }
      audio: { envelope: raw, encoding: binary, codec: mulaw, sample_rate: 8000 }
      audio_criteria: { reanchor_ms: 1000 }
    match_rules:
      - stage: answer
        packets: { protocol: http, port: ${port}, http_bodies: responses }
        audio: { envelope: raw, encoding: binary, codec: mulaw, sample_rate: 8000 }
`,
    );
    const { signatures: sigs, matches } = await analyzeCaptures(config, [pcap]);
    ok(sigs.length >= 5, `${sigs.length} signatures`);
    ok(matches.length >= sigs.length - 1, `${matches.length} matches of ${sigs.length}`);
    // The truth from the packets: chunk k's request and the answer that hands it back (the k-th non-empty one).
    // Each match's source is a request; its target must be that request's answer (~320 ms: HELD chunks of 40 ms,
    // as the client's timers sent them).
    const req = both.out.filter((r) => r.query === "m/source").map((r) => r.time);
    const resp = both.out.filter((r) => r.query === "m/tts").map((r) => r.time);
    for (const m of matches) {
      const k = req.indexOf(BigInt(m.source.time_ns));
      ok(k >= 0 && k < resp.length, `match from ${m.source.time_ns}`);
      equal(BigInt(m.target.time_ns), resp[k], `chunk ${k}: latency ${m.latency_s} s`);
      ok(m.latency_s > 0.25 && m.latency_s < 0.45, `latency ${m.latency_s} s`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("config: http_bodies is for protocols http and grpc only; requests by default", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const f = join(dir, "c.yaml");
    const write = (packets: string) =>
      Deno.writeTextFile(
        f,
        `node: n\nmeasurements:\n  - name: m\n    signature_rules:\n      packets: ${packets}\n`,
      );
    await write("{ protocol: http, port: 80 }");
    equal((await loadConfig(f, {})).config.measurements[0]!.signature_rules.packets?.http_bodies, "requests");
    await write("{ protocol: websocket, port: 80, http_bodies: responses }");
    const err = await loadConfig(f, {}).then(() => "", (e: Error) => e.message);
    ok(
      err.includes("http_bodies") && err.includes("protocols http and grpc only") &&
        /c\.yaml:\d+:\d+/.test(err),
      err,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
