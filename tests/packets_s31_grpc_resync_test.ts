/**
 * gRPC after a gap (packets/grpc.ts): a sender writing faster than its peer reads (a TTS service streaming its
 * answer, grpc-js) packs messages into DATA frames regardless of their boundaries, so most frames start inside a
 * message. After a lost segment the parser read each stream's next frame as starting a message: the message's
 * bytes claimed a length that swallowed the rest of the RPC (45 of 60 answers lost to one lost packet, counted as
 * one message_too_large). Now a stream whose framing was lost looks for its next message boundary (a prefix whose
 * message ends at the frame's end or is followed by another), and only the lost packet's messages are lost.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import { GrpcDirection } from "../packets/grpc.ts";
import { TcpSource } from "../packets/tcp_source.ts";
import { type AppMessage, type FlowDirection, SkipCounter } from "../packets/types.ts";
import { tcpPackets } from "./support/pcap_min.ts";
import { bytesField, frame } from "./support/protobuf_build.ts";
import { startTcpdump } from "./support/tcp_capture.ts";
import { gatedTest } from "./support/tools.ts";

/** Chunk `i`: 200 ms of PCM16 (a sine, its first byte the chunk's number) in field 2. */
function chunk(i: number): number[] {
  const pcm = new Uint8Array(3200);
  for (let j = 0; j < 3200; j += 2) {
    const s = Math.round(3000 * Math.sin((i * 1600 + j / 2) / 9));
    pcm[j] = s & 255;
    pcm[j + 1] = (s >> 8) & 255;
  }
  pcm[0] = i;
  return bytesField(2, pcm);
}
/** The chunk numbers of the messages emitted (-1: not a chunk). */
const numbers = (msgs: AppMessage[]) => msgs.map((m) => (m.payload.length === 3203 ? m.payload[3]! : -1));

const FLOW: FlowDirection = {
  transport: "tcp",
  src: "10.0.0.2",
  srcPort: 50051,
  dst: "10.0.0.1",
  dstPort: 40000,
};

Deno.test("s31 gRPC resync: messages packed into frames across boundaries; a frame lost; a capture begun inside", () => {
  // 60 messages of 3,205 bytes in one byte flow, cut into 16 KiB DATA frames as nghttp2 does.
  const flow: number[] = [];
  for (let i = 0; i < 60; i++) {
    const m = chunk(i);
    flow.push(0, 0, 0, (m.length >> 8) & 255, m.length & 255, ...m);
  }
  const frames: number[][] = [];
  for (let at = 0; at < flow.length; at += 16_384) frames.push(frame(0, 0, 1, flow.slice(at, at + 16_384)));
  const run = (midstream: boolean, lose: number) => {
    const out: AppMessage[] = [];
    const skips = new SkipCounter();
    const d = new GrpcDirection(FLOW, "s", midstream, (m) => out.push(m), skips);
    if (!midstream) d.data(new Uint8Array([...frame(4, 0, 0, []), ...frame(1, 4, 1, [0x88])]), 0n);
    frames.forEach((f, k) => {
      if (k === lose) d.gap(f.length, BigInt(k));
      else if (!midstream || k > lose) d.data(new Uint8Array(f), BigInt(k));
    });
    d.data(new Uint8Array(frame(1, 5, 1, [0x40])), 100n); // trailers
    d.close(101n);
    return { got: numbers(out), skips: skips.toJSON() };
  };
  const all = Array.from({ length: 60 }, (_, i) => i);
  deepEqual(run(false, -1), { got: all, skips: {} });
  // Messages take 3,210 bytes with their prefix. Frame 2 holds bytes 32,768-49,151: message 10 begun in frame 1
  // (counted) to message 15, whose rest begins frame 3. The messages wholly inside are the gap's (tcp_gap).
  deepEqual(run(false, 2), { got: all.filter((i) => i < 10 || i > 15), skips: { grpc_bad_message: 1 } });
  // Begun with frame 3 (mid-connection, inside message 15): from message 16 on.
  deepEqual(run(true, 2), { got: all.filter((i) => i > 15), skips: { grpc_bad_message: 1 } });
});

const test = await gatedTest(import.meta.url, ["root", "tcpdump"]);
const raw = { serialize: (b: Uint8Array) => Buffer.from(b), deserialize: (b: Buffer) => new Uint8Array(b) };

test("gRPC resync: a grpc-js server streams 60 chunks at once, tcpdump; a packet of packed frames lost", async () => {
  const server = new grpc.Server();
  server.addService({
    Say: {
      path: "/tts.Tts/Say",
      requestStream: false,
      responseStream: true,
      requestSerialize: raw.serialize,
      requestDeserialize: raw.deserialize,
      responseSerialize: raw.serialize,
      responseDeserialize: raw.deserialize,
    },
  }, {
    // As a TTS service does: every chunk written as soon as it is made.
    Say: (call: grpc.ServerWritableStream<Uint8Array, Uint8Array>) => {
      for (let i = 0; i < 60; i++) call.write(new Uint8Array(chunk(i)));
      call.end();
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (e, p) => e ? reject(e) : resolve(p),
    )
  );
  const dir = await Deno.makeTempDir();
  const pcap = `${dir}/tts.pcap`;
  const td = await startTcpdump(pcap, `tcp port ${port}`);
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  let answers = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      const call = client.makeServerStreamRequest(
        "/tts.Tts/Say",
        raw.serialize,
        raw.deserialize,
        new Uint8Array(1),
      );
      call.on("data", () => answers++);
      call.on("end", () => resolve());
      call.on("error", reject);
    });
  } finally {
    client.close();
    await new Promise<void>((r) => server.tryShutdown(() => r()));
  }
  equal(answers, 60);
  equal(await td.stop(), 0, "no packet dropped by the kernel");
  const packets = tcpPackets(await Deno.readFile(pcap));
  await Deno.remove(dir, { recursive: true });
  const parse = (drop: number) => {
    const msgs: AppMessage[] = [];
    const src = new TcpSource({
      protocolFor: (f) => (f.srcPort === port || f.dstPort === port ? "grpc" : undefined),
      emit: (m) => msgs.push(m),
    });
    packets.forEach((p, i) => i !== drop && src.push(p));
    src.finish();
    return { got: numbers(msgs.filter((m) => m.flow.srcPort === port)), skips: src.skips.toJSON() };
  };
  deepEqual(parse(-1).got, Array.from({ length: 60 }, (_, i) => i));
  // Each of the server's packets that carry more than a chunk (frames packed across messages), lost in turn: the
  // chunks it carried are lost, never the rest of the answer.
  const packed = packets.flatMap((p, i) => p.srcPort === port && p.payload.length > 2 * 3210 ? [i] : []);
  ok(packed.length >= 2, `${packed.length} packed packets`);
  for (const drop of packed) {
    const { got, skips } = parse(drop);
    const lost = 60 - got.length;
    ok(
      lost >= 1 && lost <= Math.ceil(packets[drop]!.payload.length / 3210) + 1,
      `packet ${drop}: ${lost} lost`,
    );
    ok(got.every((n, k) => n >= 0 && (k === 0 || n > got[k - 1]!)), `packet ${drop}: ${got}`);
    equal(skips.tcp_gap, 1);
    equal(skips.message_too_large, undefined);
  }
});
