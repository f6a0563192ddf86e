/**
 * `discover` on a capture where one port carries two TCP protocols: a voice bot's Twilio webhook (an HTTP POST
 * answered with TwiML) and then, on its own connection, the call's media WebSocket, both on the bot's port (one
 * server, as the usual voice bot runs them). Discover read every connection on a port with the protocol of the
 * first one it classified: the webhook came first, so the media WebSocket was read as HTTP (an upgrade request,
 * then nothing), its Twilio audio never seen, and the proposal missed the call's source.
 * Real parts: the bundled demo capture (a Deno client, voice bot and ASR over WebSocket on loopback, tcpdump) with
 * a webhook connection put before it; the discover code on the file.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { discoverPacketFile } from "../cli/discover_packets.ts";
import { ROOT } from "./support/sensor_process.ts";
import { ethernet, ipv4, tcp } from "./support/packet_build.ts";
import { readPcap, writePcap } from "./support/pcap_min.ts";
import { TcpFlag } from "../packets/types.ts";

Deno.test("discover: a webhook's HTTP before the media WebSocket on the same port still finds the WebSocket audio", async () => {
  const pcap = readPcap(await Deno.readFile(join(ROOT, "fixtures/demo_packets/node-ws.pcap")));
  const port = 28080;
  const enc = new TextEncoder();
  const body = "CallSid=CA0123&From=%2B15551234567&To=%2B15557654321&CallStatus=ringing";
  const req = enc.encode(
    `POST /incoming-call HTTP/1.1\r\nHost: bot\r\nContent-Type: application/x-www-form-urlencoded\r\n` +
      `Content-Length: ${body.length}\r\n\r\n${body}`,
  );
  const twiml = `<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://bot/media"/>` +
    `</Connect></Response>`;
  const res = enc.encode(
    `HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: ${twiml.length}\r\n\r\n${twiml}`,
  );
  const seg = (toBot: boolean, seq: number, ack: number, flags: number, payload = new Uint8Array(0)) =>
    ethernet(
      0x0800,
      ipv4(
        "127.0.0.1",
        "127.0.0.1",
        6,
        toBot ? tcp(50000, port, seq, ack, flags, payload) : tcp(port, 50000, seq, ack, flags, payload),
      ),
    );
  const { SYN, ACK, PSH, FIN } = TcpFlag;
  const webhook = [
    seg(true, 100, 0, SYN),
    seg(false, 900, 101, SYN | ACK),
    seg(true, 101, 901, PSH | ACK, req),
    seg(false, 901, 101 + req.length, PSH | ACK, res),
    seg(true, 101 + req.length, 901 + res.length, FIN | ACK),
    seg(false, 901 + res.length, 102 + req.length, FIN | ACK),
  ];
  const t0 = pcap.records[0]!.timeNs - 1_000_000_000n;
  pcap.records = [
    ...webhook.map((data, i) => ({ timeNs: t0 + BigInt(i) * 1_000_000n, data, origLen: data.length })),
    ...pcap.records,
  ];
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "webhook-ws.pcap");
    await Deno.writeFile(file, writePcap(pcap));
    const d = await discoverPacketFile(file);
    const seen = d.groups.map((g) => `${g.protocol} ${g.port} ${g.direction ?? ""} ${g.audioLikely}`).join(
      "; ",
    );
    assert.ok(
      d.groups.some((g) => g.protocol === "websocket" && g.port === port && g.audioLikely),
      seen,
    );
    assert.ok(d.groups.some((g) => g.protocol === "http" && g.port === port && !g.audioLikely), seen);
    // The Twilio stream is the call's source, as discover proposes it from the capture without the webhook.
    assert.match(
      d.config ?? "",
      /signature_rules:\n\s+packets: \{ protocol: websocket, port: 28080 \}\n\s+audio: \{ envelope: json, path: "media\.payload"/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
