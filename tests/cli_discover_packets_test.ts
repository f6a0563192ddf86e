/**
 * `discover` on packet captures proposes a config that measures: for each bundled pcap, the proposed packet taps
 * (RTP payload types named or guessed, WebSocket audio sections guessed per direction) run through `analyze`
 * give signatures and matches at the stages that carry the same audio.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT, runMain } from "./support/sensor_process.ts";
import { classicPcap, ethernet, ipv4, tcp, udp } from "./support/packet_build.ts";

interface Found {
  file: string;
  groups: {
    protocol: string;
    port: number;
    audioLikely: boolean;
    payloadTypes?: { pt: number; guessed?: string }[];
  }[];
  config?: string;
}

async function discover(file: string): Promise<Found> {
  const r = await runMain(["discover", "--format", "json", file]);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as Found[])[0]!;
}

async function analyzeWith(config: string, file: string) {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "c.yaml");
    await Deno.writeTextFile(path, config);
    const r = await runMain(["analyze", "--config", path, "--format", "json", file]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as {
      measurements: { name: string; signatures: number; stages: { stage: string; matches: number }[] }[];
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("discover on an RTP pcap: payload types named, ffmpeg's Opus guessed, a config that matches", async () => {
  const file = join(ROOT, "fixtures/demo_packets/node-rtp.pcap");
  const d = await discover(file);
  const pts = d.groups.flatMap((g) => g.payloadTypes ?? []);
  assert.ok(pts.some((p) => p.pt === 97 && p.guessed === "opus/48000/2"), JSON.stringify(d.groups));
  assert.ok(d.config, "a config is proposed");
  const a = await analyzeWith(d.config!, file);
  const m = a.measurements[0]!;
  assert.ok(m.signatures >= 5, `signatures ${m.signatures}`);
  const opus = m.stages.find((s) =>
    s.stage.startsWith("rtp_") &&
    d.config!.includes(
      `${s.stage}\n        packets: { protocol: rtp, port: ${s.stage.slice(4)}, payload_types: { 97: opus`,
    )
  );
  assert.ok(opus && opus.matches >= m.signatures * 0.9, JSON.stringify(m.stages));
});

Deno.test("discover on a WebSocket pcap: JSON media frames and binary PCM found per direction, a config that matches", async () => {
  const file = join(ROOT, "fixtures/demo_packets/node-ws.pcap");
  const d = await discover(file);
  const config = d.config ?? "";
  assert.ok(config.includes('path: "media.payload", encoding: base64, codec: mulaw'), config);
  assert.ok(config.includes("envelope: raw, encoding: binary, codec: pcm16le"), config);
  const a = await analyzeWith(d.config!, file);
  const m = a.measurements[0]!;
  // 14.5 s of speech with the default criteria (a new anchor every 3 s of continuous speech).
  assert.ok(m.signatures >= 3, `signatures ${m.signatures}`);
  assert.ok(m.stages.every((s) => s.matches >= m.signatures * 0.9), JSON.stringify(m.stages));
});

Deno.test("discover on traffic without audio proposes nothing: random UDP, and HTTP with JSON chat bodies", async () => {
  // Random datagrams are never taken for RTP; HTTP requests carrying chat JSON are no audio.
  const records: { sec: number; frac: number; data: Uint8Array }[] = [];
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let i = 0; i < 300; i++) {
    const payload = Uint8Array.from({ length: 40 + Math.floor(rnd() * 200) }, () => Math.floor(rnd() * 256));
    records.push({
      sec: 1_700_000_000 + Math.floor(i / 50),
      frac: (i % 50) * 20_000,
      data: ethernet(0x0800, ipv4("10.0.0.1", "10.0.0.2", 17, udp(5000 + (i % 3), 40000, payload))),
    });
  }
  let seq = 1000;
  for (let i = 0; i < 60; i++) {
    const body = JSON.stringify({ user: `u${i % 4}`, text: `hello there number ${i}`, ts: i });
    const req = new TextEncoder().encode(
      `POST /chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    records.push({
      sec: 1_700_000_010 + Math.floor(i / 10),
      frac: (i % 10) * 100_000,
      data: ethernet(0x0800, ipv4("10.0.0.3", "10.0.0.4", 6, tcp(34567, 8080, seq, 0, 0x18, req))),
    });
    seq += req.length;
  }
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "noaudio.pcap");
    await Deno.writeFile(file, classicPcap({ nanosecond: false, littleEndian: true, linkType: 1 }, records));
    const d = await discover(file);
    assert.ok(d.groups.every((g) => !g.audioLikely), JSON.stringify(d.groups));
    assert.ok(d.groups.some((g) => g.protocol === "http"), "the HTTP connection was found and judged");
    assert.equal(d.config, undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
