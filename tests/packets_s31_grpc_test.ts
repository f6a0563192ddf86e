/**
 * gRPC over cleartext HTTP/2 (packets/grpc.ts), the transport of most streaming recognizers, which Pixie cuts to
 * 512 bytes a body: a packet tap with `protocol: grpc` reads each length-prefixed message of each HTTP/2 stream,
 * and the `protobuf` envelope finds the audio field in it. Real parts: @grpc/grpc-js client and server on loopback
 * (a bidirectional stream, a recognizer-like config message first, then μ-law chunks in field 2), captured by
 * tcpdump, then `analyze` of the pcap: the client's requests as the source, the server's responses (each chunk
 * handed back 8 chunks later) as a stage. Framing: hand-built frames through the parser, with padding, a message
 * split across frames, several in one frame, a compressed one, a reset and a gap.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import * as grpc from "@grpc/grpc-js";
import { GrpcDirection, H2_PREFACE } from "../packets/grpc.ts";
import { type AppMessage, type FlowDirection, SkipCounter } from "../packets/types.ts";
import { startTcpdump } from "./support/tcp_capture.ts";
import { parseFrames } from "../packets/pcap.ts";
import { PacketSource } from "../packets/packet_source.ts";
import { rtpTap } from "./support/packet_build.ts";
import { gatedTest } from "./support/tools.ts";
import { analyzeCaptures, ROOT, runMain } from "./support/sensor_process.ts";
import { bytesField, frame, grpcMessage } from "./support/protobuf_build.ts";

const te = new TextEncoder();

const FLOW: FlowDirection = {
  transport: "tcp",
  src: "10.0.0.1",
  srcPort: 40000,
  dst: "10.0.0.2",
  dstPort: 50051,
};

Deno.test("s31 gRPC framing: messages across and within DATA frames, padding, compression, resets, a gap", () => {
  const out: AppMessage[] = [];
  const skips = new SkipCounter();
  const d = new GrpcDirection(FLOW, "tcp a>b", false, (m) => out.push(m), skips);
  const a = bytesField(2, new Uint8Array(320).fill(1));
  const b = bytesField(2, new Uint8Array(320).fill(2));
  const m1 = grpcMessage(a);
  const bytes = [
    ...H2_PREFACE,
    ...frame(4, 0, 0, []), // SETTINGS
    ...frame(1, 4, 1, [0x82, 0x86]), // HEADERS (not decoded)
    // One message split across two DATA frames, the second padded.
    ...frame(0, 0, 1, m1.slice(0, 100)),
    ...frame(0, 8, 1, [3, ...m1.slice(100), 0, 0, 0]),
    // Two messages in one frame, one of them compressed, on another stream.
    ...frame(0, 0, 3, [...grpcMessage(b), ...grpcMessage([...gzipSync(new Uint8Array(b))], true)]),
    ...frame(8, 0, 0, [0, 0, 1, 0]), // WINDOW_UPDATE
    // A message a reset cuts short.
    ...frame(0, 0, 5, grpcMessage(a).slice(0, 50)),
    ...frame(3, 0, 5, [0, 0, 0, 8]),
  ];
  // Delivered in odd pieces, as TCP segments come.
  for (let i = 0; i < bytes.length; i += 97) d.data(new Uint8Array(bytes.slice(i, i + 97)), BigInt(i + 1));
  deepEqual(out.map((m) => [m.stream, m.meta?.grpc, m.payload.length, m.payload[m.payload.length - 1]]), [
    ["tcp a>b #1", "request", a.length, 1],
    ["tcp a>b #3", "request", b.length, 2],
    ["tcp a>b #3", "request", b.length, 2],
  ]);
  // The first message's time is the piece that completed it.
  const end = 24 + 9 + (9 + 2) + (9 + 100) + (9 + 1 + m1.length - 100 + 3);
  equal(out[0]!.timeNs, BigInt(Math.floor((end - 1) / 97) * 97 + 1));
  deepEqual(skips.toJSON(), { grpc_reset: 1 });

  // A gap: the partial message is lost, and framing comes back at the next plausible frames.
  const after: AppMessage[] = [];
  const s2 = new SkipCounter();
  const e = new GrpcDirection(FLOW, "f", true, (m) => after.push(m), s2);
  e.data(new Uint8Array([...m1.slice(7, 60)]), 1n); // the middle of a frame: mid-connection start
  e.data(new Uint8Array([...frame(0, 0, 7, grpcMessage(a)), ...frame(0, 1, 7, grpcMessage(b))]), 2n);
  e.data(new Uint8Array(frame(0, 0, 9, grpcMessage(a).slice(0, 40))), 3n);
  e.gap(200, 4n);
  e.data(
    new Uint8Array([
      ...[5, 6, 7],
      ...frame(0, 0, 9, grpcMessage(b)),
      ...frame(6, 0, 0, new Array(8).fill(0)),
    ]),
    5n,
  );
  deepEqual(after.map((m) => [m.stream, m.meta?.grpc, m.payload[m.payload.length - 1]]), [
    ["f #7", "unknown", 1],
    ["f #7", "unknown", 2],
    ["f #9", "unknown", 2],
  ]);
  deepEqual(s2.toJSON(), { grpc_bad_message: 1 });
});

const test = await gatedTest(import.meta.url, ["root", "tcpdump"]);

const CHUNK = 320, CHUNK_MS = 40, HELD = 8;
const raw = { serialize: (b: Uint8Array) => Buffer.from(b), deserialize: (b: Buffer) => new Uint8Array(b) };

test("gRPC: a bidirectional stream on loopback (grpc-js), tcpdump: requests as the source, the audio handed back as a stage", async () => {
  const speech = Deno.readFileSync(join(ROOT, "fixtures/audio_fp/speech_8k.ul"));
  const dir = await Deno.makeTempDir();
  const pcap = join(dir, "node-asr.pcap");
  const server = new grpc.Server();
  server.addService({
    Recognize: {
      path: "/asr.Recognizer/Recognize",
      requestStream: true,
      responseStream: true,
      requestSerialize: raw.serialize,
      requestDeserialize: raw.deserialize,
      responseSerialize: raw.serialize,
      responseDeserialize: raw.deserialize,
    },
  }, {
    // Hands each chunk's request back HELD requests later (a delay line: the audio comes back ~320 ms late).
    Recognize: (call: grpc.ServerDuplexStream<Uint8Array, Uint8Array>) => {
      const held: Uint8Array[] = [];
      call.on("data", (m: Uint8Array) => {
        held.push(m);
        if (held.length > HELD) call.write(held[held.length - 1 - HELD]!);
      });
      call.on("end", () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (e, p) => e ? reject(e) : resolve(p),
    )
  );
  const td = await startTcpdump(pcap, `tcp port ${port}`);
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  try {
    const call = client.makeBidiStreamRequest("/asr.Recognizer/Recognize", raw.serialize, raw.deserialize);
    let answers = 0;
    call.on("data", () => answers++);
    const ended = new Promise<void>((r) => call.on("end", () => r()));
    call.on("error", () => {});
    // The recognizer's config first (field 1), then the audio (field 2), in real time.
    call.write(new Uint8Array(bytesField(1, bytesField(1, te.encode("en-US")))));
    const start = performance.now();
    for (let i = 0; (i + 1) * CHUNK <= speech.length; i++) {
      const due = start + (i + 1) * CHUNK_MS - performance.now();
      if (due > 0) await new Promise((r) => setTimeout(r, due));
      call.write(new Uint8Array(bytesField(2, speech.subarray(i * CHUNK, (i + 1) * CHUNK))));
    }
    call.end();
    await ended;
    ok(answers > 0, `${answers} answers`);
  } finally {
    client.close();
    await new Promise<void>((r) => server.tryShutdown(() => r()));
  }
  equal(await td.stop(), 0, "no packet dropped by the kernel");
  try {
    // discover tells h2c by its preface and finds the audio in field 2 of the messages both ways.
    const disc = await runMain(["discover", pcap]);
    equal(disc.code, 0, disc.stderr);
    const proposed = disc.stdout.slice(disc.stdout.indexOf("proposed config:") + "proposed config:".length);
    ok(
      /signature_rules:\n\s+packets: \{ protocol: grpc, port: \d+ \}\n\s+audio: \{ envelope: protobuf, path: "2"/
        .test(proposed),
      proposed,
    );
    ok(
      /match_rules:\n.*\n\s+packets: \{ protocol: grpc, port: \d+, http_bodies: responses \}\n\s+audio: \{ envelope: protobuf, path: "2"/
        .test(proposed),
      proposed,
    );
    const config = join(dir, "config.yaml");
    await Deno.writeTextFile(
      config,
      `log_level: warn
node: node-asr
measurements:
  - name: recognizer
    signature_rules:
      packets: { protocol: grpc, port: ${port} }
      audio: { envelope: protobuf, path: "2", encoding: binary, codec: mulaw, sample_rate: 8000 }
      audio_criteria: { reanchor_ms: 1000 }
    match_rules:
      - stage: handed_back
        packets: { protocol: grpc, port: ${port}, http_bodies: responses }
        audio: { envelope: protobuf, path: "2", encoding: binary, codec: mulaw, sample_rate: 8000 }
`,
    );
    const { signatures: sigs, matches, summary } = await analyzeCaptures(config, [pcap]);
    ok(sigs.length >= 5, `${sigs.length} signatures`);
    ok(matches.length >= sigs.length - 1, `${matches.length} matches of ${sigs.length}`);
    // The source is the client's stream, the stage the server's: one HTTP/2 stream each way.
    ok(sigs.every((s) => / #1$/.test(s.stream)), String(sigs[0]?.stream));
    // The truth from the packets: the k-th message each way is the same chunk (the config first, handed back too).
    // Each match's source is a request; its target must be the message that handed that chunk back (~320 ms:
    // HELD chunks of 40 ms, as the client's timers sent them).
    const src = new PacketSource({
      taps: [
        rtpTap({ protocol: "grpc", ports: [port], query: "m/source" }),
        rtpTap({ protocol: "grpc", ports: [port], query: "m/back", httpBodies: "responses" }),
      ],
      node: "n",
    });
    const frames = parseFrames(await Deno.readFile(pcap)).frames;
    const rows = [...frames.flatMap((f) => src.push(f)), ...src.finish()];
    const req = rows.filter((r) => r.query === "m/source").map((r) => r.time);
    const back = rows.filter((r) => r.query === "m/back").map((r) => r.time);
    for (const m of matches) {
      const k = req.indexOf(BigInt(m.source.time_ns));
      ok(k >= 0 && k < back.length, `match from ${m.source.time_ns}`);
      equal(BigInt(m.target.time_ns), back[k], `chunk ${k}: latency ${m.latency_s} s`);
      ok(m.latency_s > 0.25 && m.latency_s < 0.45, `latency ${m.latency_s} s`);
    }
    // The config message is no audio (handed back too): counted, the only decode errors.
    deepEqual(summary!.decode_errors.map((e) => [e.stream, e.reason, e.count]).sort(), [
      ["handed_back", "missing_path", 1],
      ["source", "missing_path", 1],
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
