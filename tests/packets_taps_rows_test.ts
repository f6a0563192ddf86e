/**
 * Packet taps and rows: which flows a tap takes (ports on either side, ranges, CIDRs, pod globs and directions),
 * which pod a row names, RTP payload types to codecs, and the config keys that describe them.
 */
import assert from "node:assert/strict";
import { globMatch, inCidr, parseCidr, parseIp, tapMatches } from "../packets/taps.ts";
import { PacketRowBuilder } from "../packets/rows.ts";
import { parseRtpCodecName } from "../packets/rtp_codecs.ts";
import type { AppMessage, FlowDirection } from "../packets/types.ts";
import { parseConfigText } from "../config/load.ts";
import { ConfigError } from "../config/errors.ts";
import { packetTapsFromConfig } from "../cli/packet_taps.ts";
import { rtpTap } from "./support/packet_build.ts";

const tap = rtpTap;
const flow = (src: string, srcPort: number, dst: string, dstPort: number): FlowDirection => ({
  transport: "udp",
  src,
  srcPort,
  dst,
  dstPort,
});

Deno.test("addresses and blocks: IPv4, IPv6 (compressed, embedded IPv4), prefixes", () => {
  assert.deepEqual([...parseIp("10.1.2.3")!], [10, 1, 2, 3]);
  assert.equal(parseIp("10.1.2"), undefined);
  assert.equal(parseIp("256.1.1.1"), undefined);
  assert.equal(parseIp("::1")![15], 1);
  assert.deepEqual([...parseIp("::ffff:10.0.0.1")!.subarray(12)], [10, 0, 0, 1]);
  assert.equal(parseIp("1::2::3"), undefined);
  assert.ok(inCidr("10.200.3.4", parseCidr("10.0.0.0/8")!));
  assert.ok(!inCidr("11.0.0.1", parseCidr("10.0.0.0/8")!));
  assert.ok(inCidr("10.0.0.7", parseCidr("10.0.0.4/30")!));
  assert.ok(!inCidr("10.0.0.8", parseCidr("10.0.0.4/30")!));
  assert.ok(inCidr("fd00::42", parseCidr("fd00::/8")!));
  assert.ok(!inCidr("10.0.0.1", parseCidr("fd00::/8")!), "families never match each other");
  assert.equal(parseCidr("10.0.0.0/33"), undefined);
});

Deno.test("a tap takes flows by port on either side, by range, and by host on either side", () => {
  const t = tap({ ports: [40000], portRanges: [[50000, 50010]], host: parseCidr("10.0.0.0/8") });
  assert.ok(tapMatches(t, flow("10.0.0.1", 40000, "192.168.0.1", 1234)), "source port");
  assert.ok(tapMatches(t, flow("192.168.0.1", 1234, "10.0.0.1", 50005)), "destination port in range");
  assert.ok(!tapMatches(t, flow("10.0.0.1", 1234, "10.0.0.2", 50011)), "outside the range");
  assert.ok(!tapMatches(t, flow("192.168.0.1", 40000, "192.168.0.2", 1)), "no side in the block");
  assert.ok(tapMatches(tap({}), flow("1.1.1.1", 1, "2.2.2.2", 2)), "no ports: every flow of the protocol");
});

Deno.test("pod filters need pod metadata and follow the direction", () => {
  const pods = (addr: string) =>
    ({ "10.0.0.5": "voice/media-server-0", "10.0.0.9": "voice/sbc-1" } as Record<string, string>)[addr];
  const sbcToMedia = flow("10.0.0.9", 30000, "10.0.0.5", 40000);
  const t = tap({ pod: "voice/media-server-*", direction: "to_pod" });
  assert.ok(tapMatches(t, sbcToMedia, pods));
  assert.ok(!tapMatches(t, flow("10.0.0.5", 40000, "10.0.0.9", 30000), pods), "from the pod, not to it");
  assert.ok(!tapMatches(t, sbcToMedia), "without metadata a pod filter matches nothing");
  assert.ok(tapMatches(tap({ pod: "voice/sbc-*" }), sbcToMedia, pods), "any direction: either side");
  assert.ok(globMatch("voice/*-0", "voice/media-server-0"));
  assert.ok(!globMatch("voice/*-0", "voice/media-server-10"));
});

function rtpMsg(pt: number, f = flow("10.0.0.9", 30000, "10.0.0.5", 40000)): AppMessage {
  return {
    protocol: "rtp",
    timeNs: 1_000_000_000n,
    flow: f,
    stream: "udp 10.0.0.9:30000>10.0.0.5:40000 ssrc=0x00000001",
    payload: new Uint8Array(160),
    rtp: { pt, seq: 7, ts: 1120, ssrc: 1, marker: false, lostBefore: 2 },
  };
}

Deno.test("rows: one per matching tap, the receiver's pod, RTP columns, unknown and event payload types counted", () => {
  const pods = (addr: string) => (addr === "10.0.0.5" ? "voice/media-server-0" : undefined);
  const opus = parseRtpCodecName("opus/48000/2");
  assert.ok(!("error" in opus));
  const ev = parseRtpCodecName("telephone-event/8000");
  assert.ok(!("error" in ev));
  const b = new PacketRowBuilder({
    taps: [
      tap({ query: "m/source", ports: [40000], payloadTypes: new Map([[96, opus], [101, ev]]) }),
      tap({ query: "m/all", payloadTypes: new Map() }),
      tap({ query: "w/source", protocol: "websocket" }),
    ],
    node: "n1",
    pods,
  });
  const rows = b.build(rtpMsg(0));
  assert.deepEqual(rows.map((r) => r.query), ["m/source", "m/all"]);
  const c = rows[0]!.columns;
  assert.equal(c["pod"], "voice/media-server-0");
  assert.equal(c["rtp_codec"], "PCMU/8000");
  assert.equal(c["rtp_ts"], 1120);
  assert.equal(c["rtp_lost"], 2);
  assert.equal(c["src"], "10.0.0.9:30000");
  assert.equal(b.build(rtpMsg(96))[0]!.columns["rtp_codec"], "opus/48000/2");
  assert.equal(b.build(rtpMsg(101)).length, 0);
  assert.equal(b.skipped.get("rtp_telephone_event"), 1);
  assert.equal(b.build(rtpMsg(77)).length, 0);
  assert.equal(
    b.skipped.get("rtp_unknown_payload_type"),
    4,
    "77 to both taps, 96 and 101 to the tap without a map",
  );
  const noPods = new PacketRowBuilder({ taps: [tap({ ports: [40000] })], node: "n1" });
  assert.equal(noPods.build(rtpMsg(0))[0]!.columns["pod"], "10.0.0.5:40000", "no metadata: host:port");
});

Deno.test("RTP codec names: rtpmap forms, clock rates that are fixed by the codec", () => {
  assert.deepEqual(parseRtpCodecName("G722/8000"), {
    codec: "g722",
    sampleRate: 16000,
    clockRate: 8000,
    channels: 1,
  });
  assert.deepEqual(parseRtpCodecName("l16/16000"), {
    codec: "pcm16be",
    sampleRate: 16000,
    clockRate: 16000,
    channels: 1,
  });
  assert.ok("error" in parseRtpCodecName("opus/16000"));
  assert.ok("error" in parseRtpCodecName("PCMU/16000"));
  assert.ok("error" in parseRtpCodecName("speex/8000"));
});

const base = `measurements:
  - name: m
    signature_rules:
`;

Deno.test("config: packets taps load, default stream key is the flow, and mistakes are errors at file:line:col", () => {
  const { config } = parseConfigText(
    base + `      packets: { protocol: rtp, port_range: 40000-40999, payload_types: { 96: opus/48000/2 } }
    match_rules:
      - stage: bot
        packets: { protocol: websocket, ports: [8080, 8081], host: 10.0.0.0/8 }
`,
    "c.yaml",
    { NODE_NAME: "n" },
  );
  const m = config.measurements[0]!;
  assert.deepEqual(m.signature_rules.stream_key, ["stream"]);
  const taps = packetTapsFromConfig(config);
  assert.deepEqual(taps.map((t) => [t.query, t.protocol]), [["m/source", "rtp"], ["m/bot", "websocket"]]);
  assert.deepEqual(taps[0]!.portRanges, [[40000, 40999]]);
  assert.equal(taps[0]!.payloadTypes.get(96)?.codec, "opus");
  assert.deepEqual(taps[1]!.ports, [8080, 8081]);

  const bad = (text: string) => {
    try {
      parseConfigText(base + text, "c.yaml", { NODE_NAME: "n" });
    } catch (e) {
      if (e instanceof ConfigError) return e.message;
      throw e;
    }
    assert.fail("expected a config error");
  };
  assert.match(bad(`      packets: { protocol: sip, port: 5060 }\n`), /c\.yaml:4:\d+: .*protocol/);
  assert.match(
    bad(`      packets: { protocol: rtp, port: 70000 }\n`),
    /c\.yaml:4:\d+: .*port from 1 to 65535/,
  );
  assert.match(bad(`      packets: { protocol: rtp, port_range: 5-1 }\n`), /range such as 40000-40999/);
  assert.match(bad(`      packets: { protocol: rtp, payload_types: { 96: opus/16000 } }\n`), /48000/);
  assert.match(bad(`      packets: { protocol: rtp, host: 10.0.0.0/40 }\n`), /address or CIDR/);
  assert.match(
    bad(`      packets: { protocol: rtp }\n      stream_filter: "df = px.DataFrame(table='http_events')"\n`),
    /stream_filter \(a Pixie tap\) or packets \(a packet-capture tap\), exactly one/,
  );
});
