/**
 * `discover` on packet captures of traffic that carries audio both ways on one connection (a Twilio
 * bidirectional media stream: the caller's audio in, the bot's audio out, on the bot's port; symmetric RTP: each
 * side sends from the port it receives on). A packet tap takes its port on either side of a flow, so a tap for
 * one direction takes the other too: proposed as a stage of the first, the second direction only found the
 * source's audio again in its own streams, at 0 ms. The proposal leaves it out, says why, and what it proposes
 * measures the real hop (300 ms, 250 ms).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT, runMain } from "./support/sensor_process.ts";
import { classicPcap, ethernet, ipv4, rtp, tcp, udp } from "./support/packet_build.ts";
import { frame, upgradeRequest, upgradeResponse } from "./support/ws_frames.ts";

const caller = Deno.readFileSync(join(ROOT, "fixtures/demo_packets/talker_a.ul"));
const bot = Deno.readFileSync(join(ROOT, "fixtures/demo_packets/talker_b.ul"));
const enc = new TextEncoder();
const SEC = 1_700_000_000;

interface Rec {
  ms: number;
  data: Uint8Array;
}

function pcap(recs: Rec[]): Uint8Array {
  recs.sort((a, b) => a.ms - b.ms);
  return classicPcap(
    { nanosecond: true, littleEndian: true, linkType: 1 },
    recs.map((r) => ({
      sec: SEC + Math.floor(r.ms / 1000),
      frac: Math.round((r.ms % 1000) * 1e6),
      data: r.data,
    })),
  );
}

function b64(b: Uint8Array): string {
  let s = "";
  for (const v of b) s += String.fromCharCode(v);
  return btoa(s);
}

/** One WebSocket connection (client → server:port), with its handshake; frames are queued with their times. */
function wsConnection(recs: Rec[], client: string, cport: number, server: string, port: number) {
  let cseq = 1000, sseq = 5000;
  const seg = (ms: number, fromClient: boolean, payload: Uint8Array, flags = 0x18) => {
    const t = fromClient
      ? tcp(cport, port, cseq, sseq, flags, payload)
      : tcp(port, cport, sseq, cseq, flags, payload);
    recs.push({
      ms,
      data: ethernet(0x0800, ipv4(fromClient ? client : server, fromClient ? server : client, 6, t)),
    });
    const n = payload.length + (flags & 0x02 ? 1 : 0);
    if (fromClient) cseq += n;
    else sseq += n;
  };
  seg(0, true, new Uint8Array(0), 0x02);
  seg(0.1, false, new Uint8Array(0), 0x12);
  seg(0.2, true, enc.encode(upgradeRequest()));
  seg(0.3, false, enc.encode(upgradeResponse()));
  // TCP sequence numbers follow the order segments are made in: make them in time order.
  const queued: { ms: number; fromClient: boolean; text: string }[] = [];
  return {
    send: (ms: number, fromClient: boolean, text: string) => queued.push({ ms, fromClient, text }),
    flush: () => {
      queued.sort((a, b) => a.ms - b.ms);
      for (const q of queued) {
        seg(
          q.ms,
          q.fromClient,
          frame({ op: 1, payload: q.text, ...(q.fromClient ? { mask: [1, 2, 3, 4] } : {}) }),
        );
      }
    },
  };
}

interface Found {
  groups: { protocol: string; port: number; direction?: string; audioLikely: boolean }[];
  config?: string;
  notes?: string[];
}

async function discoverAndAnalyze(file: string) {
  const r = await runMain(["discover", "--format", "json", file]);
  assert.equal(r.code, 0, r.stderr);
  const d = (JSON.parse(r.stdout) as Found[])[0]!;
  assert.ok(d.config, "a config is proposed");
  const path = join(file, "..", "c.yaml");
  await Deno.writeTextFile(path, d.config!);
  const a = await runMain(["analyze", "--config", path, "--format", "json", file]);
  assert.equal(a.code, 0, a.stderr);
  const summary = JSON.parse(a.stdout) as {
    measurements: {
      signatures: number;
      stages: { stage: string; matches: number; latency_s: { p50: number | null; max: number | null } }[];
    }[];
  };
  return { d, m: summary.measurements[0]! };
}

Deno.test("discover: audio both ways on a WebSocket port is not proposed as a stage of itself", async () => {
  const recs: Rec[] = [];
  const streamSid = "MZ1f3e5d7c9b0a2e4d6c8b0a1f3e5d7c9b";
  // Twilio → bot :8080: the caller in; the bot's own speech out on the same connection.
  const twilio = wsConnection(recs, "10.0.0.1", 40001, "10.0.0.2", 8080);
  // bot → ASR :9090: the caller's audio 300 ms later.
  const asr = wsConnection(recs, "10.0.0.2", 40002, "10.0.0.3", 9090);
  twilio.send(
    2,
    true,
    JSON.stringify({ event: "start", start: { streamSid, tracks: ["inbound"] }, streamSid }),
  );
  const n = Math.min(Math.floor(caller.length / 160), Math.floor(bot.length / 160));
  for (let i = 0; i < n; i++) {
    const t = 10 + i * 20;
    const media = (b: Uint8Array) =>
      JSON.stringify({
        event: "media",
        streamSid,
        media: { payload: b64(b.subarray(i * 160, (i + 1) * 160)) },
      });
    twilio.send(t, true, media(caller));
    twilio.send(t + 5, false, media(bot));
    asr.send(t + 300, true, media(caller));
  }
  twilio.flush();
  asr.flush();
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "bot.pcap");
    await Deno.writeFile(file, pcap(recs));
    const { d, m } = await discoverAndAnalyze(file);
    const audio = d.groups.filter((g) => g.audioLikely).map((g) => `${g.port} ${g.direction}`);
    assert.equal(audio.length, 3, `both ways on 8080 and the ASR are audio: ${audio}`);
    assert.ok(
      d.notes?.some((x) => x.includes("websocket port 8080 (from the service port)")),
      d.config ?? "",
    );
    assert.ok(m.signatures >= 3, `signatures ${m.signatures}`);
    for (const s of m.stages) {
      assert.ok(
        s.matches > 0 && s.latency_s.p50! > 0.25,
        `stage ${s.stage}: ${JSON.stringify(s)}\n${d.config ?? ""}`,
      );
    }
    assert.ok(m.stages.some((s) => s.stage === "websocket_9090_in"), d.config ?? "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("discover: symmetric RTP (each side sends from the port it receives on) is not a stage of itself", async () => {
  const recs: Rec[] = [];
  const packet = (
    from: string,
    fromPort: number,
    to: string,
    toPort: number,
    ssrc: number,
    i: number,
    b: Uint8Array,
  ) =>
    ethernet(
      0x0800,
      ipv4(
        from,
        to,
        17,
        udp(fromPort, toPort, rtp({ seq: i, ts: i * 160, ssrc }, b.subarray(i * 160, (i + 1) * 160))),
      ),
    );
  const n = Math.min(Math.floor(caller.length / 160), Math.floor(bot.length / 160));
  for (let i = 0; i < n; i++) {
    const t = 10 + i * 20;
    // Phone 10.0.0.1:30000 ↔ media server 10.0.0.2:30002, both ways; the server relays the phone 250 ms later to
    // a recorder at 10.0.0.3:30004.
    recs.push({ ms: t, data: packet("10.0.0.1", 30000, "10.0.0.2", 30002, 0x11, i, caller) });
    recs.push({ ms: t + 3, data: packet("10.0.0.2", 30002, "10.0.0.1", 30000, 0x22, i, bot) });
    recs.push({ ms: t + 250, data: packet("10.0.0.2", 41000, "10.0.0.3", 30004, 0x33, i, caller) });
  }
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "sip.pcap");
    await Deno.writeFile(file, pcap(recs));
    const { d, m } = await discoverAndAnalyze(file);
    assert.ok(d.notes?.some((x) => x.includes("rtp port 30000")), d.config ?? "");
    assert.ok(m.signatures >= 3, `signatures ${m.signatures}`);
    for (const s of m.stages) {
      assert.ok(
        s.matches > 0 && s.latency_s.p50! > 0.2,
        `stage ${s.stage}: ${JSON.stringify(s)}\n${d.config ?? ""}`,
      );
    }
    assert.ok(m.stages.some((s) => s.stage === "rtp_30004"), d.config ?? "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
