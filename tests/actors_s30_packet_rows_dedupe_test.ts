/**
 * Identical messages one TCP segment completes are distinct audio: a sender that writes two silent binary frames at
 * once (a bot's pause, a muted caller, a burst of TTS) puts them in one segment, and the packet layer hands both on
 * at that segment's capture time. The tap intake took the second for a row delivered twice (same stream, time and
 * payload) and dropped it as `duplicate`: the stream lost the frame's audio and every later sample sat a frame
 * early (`analyze` of 40 s of RTP speech with 0.7 s digital pauses relayed as PCM16 WebSocket frame pairs: 5 of 21
 * latencies negative, -180 to -60 ms against 200-220 ms, 2 signatures unmatched; with a 1-LSB dither in the silent
 * frames every one matched at 200-220 ms). Now the row builder gives each message after the first of its packet
 * its place (`msg_index`), which the dedupe keys on: the same packet read twice (a pcap given twice, overlapping
 * captures) is still one row, as before (the first attempt, no dedupe for packet taps, doubled the audio of a pcap
 * given twice: 19 signatures and 0 matches where 11 and 11 were right). Pixie rows are deduplicated as before.
 * Real parts: TcpSource with the WebSocket parser over hand-built segments, PacketRowBuilder, TapIntake; the
 * bundled demo pcaps through `analyze`'s capture runner.
 */
import { deepEqual, equal } from "node:assert/strict";
import { join } from "node:path";
import { openCaptures, runCaptureSources } from "../cli/capture_run.ts";
import { loadConfig } from "../config/load.ts";
import { setLogLevel } from "../util/log.ts";
import { sourceTap, stageTaps, type Tap, TapIntake, type TapPipeline } from "../actors/tap_intake.ts";
import type { TapRule } from "../actors/tap_message.ts";
import type { MessageIn } from "../audio/pipeline.ts";
import { packetTapsFromConfig } from "../cli/packet_taps.ts";
import { parseConfigText } from "../config/load.ts";
import { PacketRowBuilder } from "../packets/rows.ts";
import { TcpSource } from "../packets/tcp_source.ts";
import { type AppMessage, TcpFlag } from "../packets/types.ts";
import type { Row } from "../pixie/row.ts";
import { CountingCounters, e2eConfig, sec } from "./support/actor_fixtures.ts";
import { Conn } from "./support/tcp_segments.ts";
import { concat, frame, upgradeRequest, upgradeResponse } from "./support/ws_frames.ts";

const T0 = sec(1_763_900_000);

class Recording implements TapPipeline<never> {
  readonly msgs: MessageIn[] = [];
  push(msg: MessageIn): never[] {
    this.msgs.push(msg);
    return [];
  }
  finish(): never[] {
    return [];
  }
  stats() {
    return { markers: {}, errors: {} };
  }
}

function intakeOf(taps: readonly Tap[]) {
  const pipes: Recording[] = [];
  const counters = new CountingCounters();
  const intake = new TapIntake<TapRule, Recording, never>({
    taps,
    idleNs: sec(60),
    clockWindowNs: sec(300),
    tickNs: sec(1),
    counters,
    open: () => {
      const p = new Recording();
      pipes.push(p);
      return p;
    },
    emit: () => Promise.resolve(),
    report: () => Promise.resolve(),
  });
  return { intake, pipes, counters };
}

Deno.test("s30 tap intake: two identical binary WebSocket frames in one segment are two messages, not a duplicate", async () => {
  const config = parseConfigText(
    `
measurements:
  - name: ws_call
    signature_rules:
      packets: { protocol: rtp, port: 40000 }
    match_rules:
      - stage: asr
        packets: { protocol: websocket, port: 8080 }
        audio: { envelope: raw, encoding: binary, codec: pcm16le, sample_rate: 8000 }
`,
    "ws.yaml",
    {},
  ).config;
  // The rows the packet source makes of the connection: a handshake, then one segment with two silent frames.
  const messages: AppMessage[] = [];
  const tcp = new TcpSource({ protocolFor: () => "websocket", emit: (m) => messages.push(m) });
  const c = new Conn("10.0.0.5", 50000, "10.0.0.6", 8080);
  const enc = new TextEncoder();
  const req = enc.encode(upgradeRequest());
  tcp.push(c.syn(0, T0));
  tcp.push(c.back(0, "", T0, TcpFlag.SYN | TcpFlag.ACK));
  tcp.push(c.seg(1, req, T0 + 1n));
  tcp.push(c.back(1, enc.encode(upgradeResponse()), T0 + 2n));
  const silence = new Uint8Array(320);
  const two = concat(
    frame({ op: 2, payload: silence, mask: [1, 2, 3, 4] }),
    frame({ op: 2, payload: silence, mask: [5, 6, 7, 8] }),
  );
  tcp.push(c.seg(1 + req.length, two, T0 + sec(0.04)));
  tcp.finish(T0 + sec(1));
  const builder = new PacketRowBuilder({ taps: packetTapsFromConfig(config), node: "n" });
  const rows: Row[] = messages.flatMap((m) => builder.build(m));
  equal(rows.length, 2);
  equal(rows[0]!.time, rows[1]!.time, "both completed by one segment");
  deepEqual(rows.map((r) => r.columns.msg_index), [undefined, 1], "the second one's place in its packet");

  const h = intakeOf(stageTaps(config.measurements));
  for (const r of rows) await h.intake.push(r);
  equal(h.pipes.length, 1);
  equal(h.pipes[0]!.msgs.length, 2, "both frames' audio reaches the stream");
  deepEqual([...h.counters.skipped], []);
});

Deno.test("s30 tap intake: a Pixie row delivered twice is still skipped as a duplicate", async () => {
  const config = await e2eConfig();
  const h = intakeOf([sourceTap(config.measurements[0]!)]);
  const row: Row = {
    query: "call_audio/source",
    node: "node-a",
    time: T0,
    columns: {
      time_: T0,
      pod: "voice/telephony-0",
      req_body: new TextEncoder().encode('{"event":"media","media":{"payload":"AAAA"},"streamSid":"MZ1"}'),
    },
  };
  await h.intake.push(row);
  await h.intake.push({ ...row });
  equal(h.pipes[0]!.msgs.length, 1);
  deepEqual([...h.counters.skipped], [["call_audio/source:duplicate", 1]]);
});

Deno.test("s30 tap intake: a pcap given twice is still read once (its packets' rows are duplicates)", async () => {
  setLogLevel("error");
  const root = new URL("../", import.meta.url).pathname;
  const { config } = await loadConfig(join(root, "fixtures/demo_packets/config.yaml"));
  const [rtp, ws] = ["node-rtp.pcap", "node-ws.pcap"].map((f) => join(root, "fixtures/demo_packets", f));
  const records = (r: { signatures: unknown[]; matches: unknown[] }) =>
    [...r.signatures, ...r.matches].map((x) => JSON.stringify({ ...(x as object), hop: undefined })).sort();
  const once = await runCaptureSources(config, await openCaptures([rtp!, ws!], config));
  const twice = await runCaptureSources(config, await openCaptures([rtp!, ws!, ws!], config));
  equal(once.matches.length > 0, true);
  deepEqual(records(twice), records(once));
});
