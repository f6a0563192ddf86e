import { deepEqual, equal, ok } from "node:assert/strict";
import { PcapReader } from "../packets/pcap.ts";
import { csrcList, parseRtp, RtpHeader, seqDiff, ssrcLabel, tsDiff } from "../packets/rtp.ts";
import { rtpMessages, RtpSource } from "../packets/rtp_source.ts";
import { type AppMessage, type Frame, LinkType, type Packet, SkipCounter } from "../packets/types.ts";
import { concat, ethernet, ipv4, ipv6, rtp, udp } from "./support/packet_build.ts";
import { FIX, tsharkTruth } from "./support/packet_truth.ts";
import { parseRtpCodecName } from "../packets/rtp_codecs.ts";
import { PacketColumn } from "../packets/rows.ts";
import { streamFormat, type TapRule } from "../actors/tap_message.ts";
import { checkAudioFormat } from "../audio/decode/stream_decoder.ts";
import { DEFAULT_AUDIO } from "../config/defaults.ts";
import type { Row } from "../pixie/row.ts";

const PCM = new Uint8Array(160).map((_, i) => (i * 3) & 0xff);

function parse(b: Uint8Array): { why: string | undefined; h: RtpHeader } {
  const h = new RtpHeader();
  return { why: parseRtp(b, 0, b.length, h), h };
}

Deno.test("RTP header: fixed fields, CSRC list, header extension and padding are peeled off the payload", () => {
  const plain = parse(rtp({ pt: 8, seq: 65535, ts: 0xfffffff0, ssrc: 0xdeadbeef, marker: true }, PCM));
  equal(plain.why, undefined);
  equal(plain.h.pt, 8);
  equal(plain.h.seq, 65535);
  equal(plain.h.ts, 0xfffffff0);
  equal(plain.h.ssrc, 0xdeadbeef);
  equal(plain.h.marker, true);
  equal(plain.h.payloadStart, 12);
  equal(plain.h.payloadEnd, 172);

  const ext = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
  const b = rtp(
    {
      pt: 96,
      seq: 7,
      ts: 8,
      ssrc: 9,
      csrc: [0x11111111, 0x22222222, 0x33333333],
      ext: { profile: 0xbede, data: ext },
      padding: 4,
    },
    PCM,
  );
  const full = parse(b);
  equal(full.why, undefined);
  equal(full.h.csrcCount, 3);
  deepEqual(csrcList(b, 0, full.h), [0x11111111, 0x22222222, 0x33333333]);
  equal(full.h.extProfile, 0xbede);
  deepEqual(b.subarray(full.h.extOffset, full.h.extOffset + full.h.extLength), ext);
  equal(full.h.padding, 4);
  deepEqual(b.subarray(full.h.payloadStart, full.h.payloadEnd), PCM);
  // An empty payload (e.g. a keep-alive) is still RTP.
  equal(parse(rtp({ seq: 1, ts: 1, ssrc: 1 }, new Uint8Array(0))).why, undefined);
});

Deno.test("RTP classification: RTCP, STUN, wrong version and inconsistent lengths are told apart", () => {
  // RTCP sender report (PT 200) and receiver report (201), also under 12 bytes; PSFB 206; XR 207.
  for (const pt of [200, 201, 202, 203, 204, 205, 206, 207]) {
    equal(
      parse(new Uint8Array([0x81, pt, 0, 6, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0])).why,
      "rtcp",
      String(pt),
    );
  }
  equal(parse(new Uint8Array([0x80, 201, 0, 1, 1, 2, 3, 4])).why, "rtcp");
  // STUN binding request: type 0x0001, length 0, magic cookie, transaction id.
  const stun = new Uint8Array([0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, ...new Array(12).fill(7)]);
  equal(parse(stun).why, "stun");
  equal(parse(rtp({ seq: 1, ts: 1, ssrc: 1, version: 1 }, PCM)).why, "not_rtp");
  equal(parse(rtp({ seq: 1, ts: 1, ssrc: 1, version: 0 }, PCM)).why, "not_rtp");
  equal(parse(new Uint8Array([0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0])).why, "not_rtp"); // too short
  const cc = rtp({ seq: 1, ts: 1, ssrc: 1 }, new Uint8Array(8));
  cc[0] = 0x8f; // 15 CSRCs claimed, 8 bytes follow
  equal(parse(cc).why, "not_rtp");
  const x = rtp({ seq: 1, ts: 1, ssrc: 1, ext: { profile: 1, data: new Uint8Array(4) } }, new Uint8Array(0));
  x[15] = 50; // extension length 50 words
  equal(parse(x).why, "not_rtp");
  const pad = rtp({ seq: 1, ts: 1, ssrc: 1, padding: 2 }, new Uint8Array(4));
  pad[pad.length - 1] = 0; // padding count 0
  equal(parse(pad).why, "not_rtp");
  pad[pad.length - 1] = 40; // more padding than payload
  equal(parse(pad).why, "not_rtp");
  // Telephone events (RFC 4733, here PT 101) are RTP like any other: the consumer knows the PT map.
  equal(
    parse(rtp({ pt: 101, seq: 1, ts: 1, ssrc: 1, marker: true }, new Uint8Array([1, 0x80, 0, 160]))).why,
    undefined,
  );
});

Deno.test("sequence and timestamp arithmetic wraps around", () => {
  equal(seqDiff(0, 65535), 1);
  equal(seqDiff(65535, 0), -1);
  equal(seqDiff(100, 65500), 136);
  equal(tsDiff(10, 0xfffffff6), 20);
  equal(tsDiff(0xfffffff6, 10), -20);
  equal(ssrcLabel(0xc0ffee), "ssrc=0x00c0ffee");
});

function udpFrame(
  i: number,
  payload: Uint8Array,
  opts: { src?: string; v6?: boolean; sport?: number } = {},
): Frame {
  const l4 = udp(opts.sport ?? 5004, 40000, payload);
  const data = opts.v6
    ? ethernet(0x86dd, ipv6("2001:db8::5", "2001:db8::6", 17, l4))
    : ethernet(0x0800, ipv4(opts.src ?? "10.0.0.1", "10.0.0.2", 17, l4));
  return {
    timeNs: 1_000_000_000_000n + BigInt(i) * 20_000_000n,
    linkType: LinkType.ETHERNET,
    data,
    origLen: data.length,
    iface: 0,
  };
}

function run(frames: Frame[], opts = {}): { msgs: AppMessage[]; src: RtpSource } {
  const msgs: AppMessage[] = [];
  const src = new RtpSource((m) => msgs.push(m), opts);
  for (const f of frames) src.pushFrame(f);
  src.flush();
  return { msgs, src };
}

Deno.test("RTP source: messages carry the stream name, RTP fields and the bare payload; IPv6 names bracketed", () => {
  const frames = [0, 1, 2].map((i) =>
    udpFrame(i, rtp({ pt: 0, seq: 100 + i, ts: 160 * i, ssrc: 0xabc }, PCM))
  );
  const { msgs, src } = run(frames);
  equal(msgs.length, 3);
  const m = msgs[1]!;
  equal(m.protocol, "rtp");
  equal(m.stream, "udp 10.0.0.1:5004>10.0.0.2:40000 ssrc=0x00000abc");
  deepEqual(m.flow, { transport: "udp", src: "10.0.0.1", srcPort: 5004, dst: "10.0.0.2", dstPort: 40000 });
  deepEqual(m.rtp, { pt: 0, seq: 101, ts: 160, ssrc: 0xabc, marker: false, lostBefore: 0 });
  equal(m.timeNs, 1_000_020_000_000n);
  deepEqual(m.payload, PCM);
  deepEqual(src.skips.toJSON(), {});
  // The stream name object is shared (cached per flow and SSRC), not rebuilt per packet.
  ok(Object.is(msgs[0]!.stream, msgs[2]!.stream));

  const v6 = run([0, 1].map((i) => udpFrame(i, rtp({ seq: i, ts: 0, ssrc: 1 }, PCM), { v6: true }))).msgs;
  equal(v6[0]!.stream, "udp [2001:db8::5]:5004>[2001:db8::6]:40000 ssrc=0x00000001");

  // Two SSRCs on one flow are two streams.
  const two =
    run([0, 1, 2, 3].map((i) => udpFrame(i, rtp({ seq: i >> 1, ts: 0, ssrc: 1 + (i & 1) }, PCM)))).msgs;
  // Each stream is emitted once its probation (2 packets) is over: SSRC 1 at the 3rd frame, SSRC 2 at the 4th.
  deepEqual(two.map((x) => `${x.stream.slice(-2)}/${x.rtp!.seq}`), ["01/0", "01/1", "02/0", "02/1"]);
  equal(new Set(two.map((x) => x.stream)).size, 2);
});

Deno.test("RTP source: RTCP, STUN, TCP, truncated datagrams, filtered flows and random UDP are skipped and counted", () => {
  const frames: Frame[] = [];
  let i = 0;
  frames.push(udpFrame(i++, new Uint8Array([0x80, 200, 0, 6, ...new Array(24).fill(1)]))); // RTCP SR
  frames.push(udpFrame(i++, new Uint8Array([0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, ...new Array(12).fill(7)]))); // STUN
  const seg = ethernet(
    0x0800,
    ipv4(
      "10.0.0.1",
      "10.0.0.2",
      6,
      concat(new Uint8Array([0, 80, 0, 81, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 1, 0, 0, 0, 0, 0])),
    ),
  );
  frames.push({ ...udpFrame(i++, new Uint8Array(0)), data: seg, origLen: seg.length });
  const cut = udpFrame(i++, rtp({ seq: 1, ts: 1, ssrc: 5 }, PCM));
  frames.push({ ...cut, data: cut.data.subarray(0, 60) }); // origLen stays: snap length cut
  frames.push(udpFrame(i++, rtp({ seq: 1, ts: 1, ssrc: 5 }, PCM), { sport: 9999 })); // rejected by the filter
  const { msgs, src } = run(frames, { acceptFlow: (f: { srcPort: number }) => f.srcPort !== 9999 });
  equal(msgs.length, 0);
  const sk = src.skips.toJSON();
  equal(sk.rtcp, 1);
  equal(sk.stun, 1);
  equal(sk.not_audio_protocol, 1);
  equal(sk.snap_truncated, 1);
  equal(src.stats.filtered, 1);
});

Deno.test("RTP source: random UDP is never taken for RTP (probation needs a stable SSRC and sequence)", () => {
  // About a quarter of random datagrams have version bits 2, but none keeps an SSRC and a sequence.
  let s = 12345;
  const rnd = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 24;
  const frames: Frame[] = [];
  for (let k = 0; k < 2000; k++) {
    frames.push(udpFrame(k, new Uint8Array(20 + (k % 200)).map(rnd), { sport: 6000 }));
  }
  const { msgs, src } = run(frames);
  equal(msgs.length, 0);
  const sk = src.skips.toJSON();
  deepEqual(Object.keys(sk).sort(), ["not_rtp", "rtcp"]); // RTCP-looking: version 2 and a second byte 192..223
  equal(sk.not_rtp! + sk.rtcp!, 2000);
  ok(sk.rtcp! < 100);
});

Deno.test("RTP source: decoded Packets from elsewhere take the same path", () => {
  const msgs: AppMessage[] = [];
  const src = new RtpSource((m) => msgs.push(m), { jitter: { probation: 1 } });
  const p: Packet = {
    timeNs: 5n,
    transport: "udp",
    src: "::1",
    srcPort: 1,
    dst: "::1",
    dstPort: 2,
    payload: rtp({ seq: 9, ts: 0, ssrc: 3 }, PCM),
    truncated: false,
  };
  src.pushPacket(p);
  src.pushPacket({ ...p, transport: "tcp" });
  src.flush();
  equal(msgs.length, 1);
  equal(msgs[0]!.stream, "udp [::1]:1>[::1]:2 ssrc=0x00000003");
  deepEqual(src.skips.toJSON(), { not_audio_protocol: 1 });
});

/** RTP messages of a fixture through the whole path, with the source for its counters. */
async function fixtureMessages(name: string): Promise<{ msgs: AppMessage[]; skips: SkipCounter }> {
  using file = await Deno.open(new URL(name, FIX));
  const skips = new SkipCounter();
  const msgs: AppMessage[] = [];
  for await (const m of rtpMessages(new PcapReader(file), {}, skips)) msgs.push(m);
  return { msgs, skips };
}

const SPEECH = await Deno.readFile(new URL("speech.ul", FIX));

const REAL = [
  ["rtp_v4_ns.pcap", "udp 127.0.0.1:", ">127.0.0.1:40000 ssrc=0x1234abcd"],
  ["rtp_v6_us.pcap", "udp [::1]:", ">[::1]:40002 ssrc=0x0badcafe"],
  ["rtp_any_sll.pcap", "udp 127.0.0.1:", ">127.0.0.1:40004 ssrc=0x00c0ffee"],
  ["rtp_any_sll2.pcap", "udp 127.0.0.1:", ">127.0.0.1:40006 ssrc=0x5ca1ab1e"],
] as const;

Deno.test("real ffmpeg RTP: sequence continuity (across the uint16 wrap), tshark's fields, and μ-law bytes equal ffmpeg's encoding", async () => {
  for (const [name, prefix, suffix] of REAL) {
    const { msgs, skips } = await fixtureMessages(name);
    const truth = (await tsharkTruth(name)).filter((t) => t.seq !== null);
    deepEqual(skips.toJSON(), { rtcp: 1 }, name); // ffmpeg's one sender report on the port above
    equal(msgs.length, truth.length, name);
    for (let i = 0; i < msgs.length; i++) {
      const m = msgs[i]!;
      ok(m.stream.startsWith(prefix) && m.stream.endsWith(suffix), m.stream);
      equal(m.rtp!.seq, truth[i]!.seq, `${name} #${i}`);
      equal(m.rtp!.ts, truth[i]!.ts, `${name} #${i}`);
      equal(m.rtp!.ssrc, truth[i]!.ssrc);
      equal(m.rtp!.pt, 0);
      equal(m.rtp!.lostBefore, 0);
      if (i > 0) {
        equal(seqDiff(m.rtp!.seq, msgs[i - 1]!.rtp!.seq), 1);
        equal(tsDiff(m.rtp!.ts, msgs[i - 1]!.rtp!.ts), 160);
      }
    }
    // The payloads, concatenated, are what ffmpeg's μ-law encoder makes of the prompt (ffmpeg sometimes stops
    // its paced source a few packets early: then they are a prefix of it).
    const audio = concat(...msgs.map((m) => m.payload));
    ok(audio.length > 0.8 * SPEECH.length, name);
    deepEqual(audio, SPEECH.subarray(0, audio.length), name);
  }
  // The IPv4 capture starts at sequence 65500 and wraps to 0 without a gap.
  const v4 = (await fixtureMessages("rtp_v4_ns.pcap")).msgs.map((m) => m.rtp!.seq);
  equal(v4[0], 65500);
  ok(v4.includes(65535) && v4.includes(0));
});

Deno.test("dumpcap on lo and any: every packet is captured twice; the copies count as duplicates", async () => {
  const { msgs, skips } = await fixtureMessages("rtp_dumpcap.pcapng");
  const truth = (await tsharkTruth("rtp_dumpcap.pcapng")).filter((t) => t.seq !== null && t.iface === 0);
  equal(msgs.length, truth.length);
  deepEqual(skips.toJSON(), { rtcp: 2, rtp_duplicate: truth.length });
  deepEqual(msgs.map((m) => m.rtp!.seq), truth.map((t) => t.seq));
  deepEqual(
    concat(...msgs.map((m) => m.payload)),
    SPEECH.subarray(
      0,
      msgs.length * 160 - (msgs.length * 160 > SPEECH.length ? msgs.length * 160 - SPEECH.length : 0),
    ),
  );
});

Deno.test("every RTP codec name the config and packet rows accept gives a format the stream decoder takes", () => {
  const rule = {
    columns: {} as TapRule["columns"],
    audio: { ...DEFAULT_AUDIO },
    packets: { protocol: "rtp" } as TapRule["packets"],
    stream_key: [],
  } as TapRule;
  let accepted = 0;
  for (const name of ["PCMU", "PCMA", "G722", "L16", "opus", "telephone-event"]) {
    for (const clock of [8000, 11025, 16000, 22050, 44100, 48000, 96000]) {
      for (const ch of ["", "/1", "/2", "/8"]) {
        const text = `${name}/${clock}${ch}`;
        if ("error" in parseRtpCodecName(text)) continue;
        accepted++;
        const row: Row = { query: "m/t", node: "n", time: 1n, columns: { [PacketColumn.rtpCodec]: text } };
        deepEqual(checkAudioFormat(streamFormat(rule, row)), [], text);
      }
    }
  }
  ok(accepted > 20);
  ok("error" in parseRtpCodecName("G722/8000/2"), "stereo G.722 is refused where the config names it");
});
