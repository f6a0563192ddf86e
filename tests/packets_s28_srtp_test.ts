/**
 * SRTP is told apart from plain RTP. Its header is plain, so an RTP tap took it, its encrypted payloads decoded as
 * noise, and discover proposed it as audio while analyze said only "the source audio decoded but gave no onset".
 * Each SRTP payload is its audio plus an authentication tag: for codecs whose payload size follows from the
 * timestamp step, a constant 4, 10 or 16 bytes more.
 * Real parts: a real SRTP capture (ffmpeg's srtp:// output, AES_CM_128_HMAC_SHA1_80, captured by tcpdump:
 * fixtures/packets/capture_srtp.sh) and the real plain captures beside it; discover and analyze as a user runs them.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { bytesPerTick, srtpTagBytes } from "../packets/srtp_guess.ts";
import { discoverPacketFile } from "../cli/discover_packets.ts";
import { FIX } from "./support/packet_truth.ts";
import { classicPcap, ethernet, ipv4, rtp, udp } from "./support/packet_build.ts";
import { noise } from "./support/ws_frames.ts";
import { LinkType } from "../packets/types.ts";
import { runMain } from "./support/sensor_process.ts";

const SRTP = new URL("rtp_srtp.pcap", FIX).pathname;

Deno.test("srtp guess: a constant tag over the timestamp step's bytes is SRTP; plain packets, losses, Opus are not", () => {
  const steps = (n: number, extra: number, dts = 160) =>
    Array.from({ length: n }, () => ({ dts, bytes: dts + extra }));
  assert.equal(srtpTagBytes(steps(50, 10), 1), 10);
  assert.equal(srtpTagBytes(steps(50, 4), 1), 4);
  assert.equal(srtpTagBytes(steps(50, 16, 320), 2), undefined, "L16: 2 bytes a tick");
  assert.equal(srtpTagBytes(steps(50, 656, 320), 2), undefined, "a mismatch far beyond any tag");
  assert.equal(srtpTagBytes(steps(50, 0), 1), undefined, "plain RTP");
  assert.equal(srtpTagBytes(steps(9, 10), 1), undefined, "too few to tell");
  // Steps across a loss (three packets' worth) are left out, not taken for a size mismatch.
  assert.equal(srtpTagBytes([...steps(40, 10), ...steps(10, 10 - 320, 480)], 1), 10);
  // A few odd packets (a shorter last one) do not hide it; a mix of sizes is not a tag.
  assert.equal(srtpTagBytes([...steps(45, 10), ...steps(5, 3)], 1), 10);
  assert.equal(srtpTagBytes([...steps(25, 10), ...steps(25, 0)], 1), undefined);
  assert.equal(bytesPerTick("PCMU/8000"), 1);
  assert.equal(bytesPerTick("L16/16000/2"), 4);
  assert.equal(bytesPerTick("opus/48000/2"), undefined);
});

Deno.test("discover: a real SRTP capture is named SRTP and not proposed as audio; the plain captures are", async () => {
  const d = await discoverPacketFile(SRTP);
  const g = d.groups.find((x) => x.protocol === "rtp" && x.port === 40010)!;
  assert.ok(g, d.groups.map((x) => `${x.protocol} ${x.port}`).join(", "));
  assert.equal(g.audioLikely, false);
  assert.match(g.reason, /^SRTP \(encrypted\): each payload is its audio plus a 10-byte authentication tag/);
  assert.equal(d.config, undefined, "nothing to measure");
  for (const plain of ["rtp_v4_ns.pcap", "rtp_v4_lossy.pcap", "rtp_v6_frag.pcap"]) {
    const p = await discoverPacketFile(new URL(plain, FIX).pathname);
    const rtp = p.groups.filter((x) => x.protocol === "rtp" && x.audioLikely);
    assert.ok(rtp.length > 0, `${plain}: ${JSON.stringify(p.groups.map((x) => x.reason))}`);
    assert.ok(!p.groups.some((x) => /SRTP/.test(x.reason)), plain);
  }
});

Deno.test("discover: encrypted Opus (WebRTC's media) at a dynamic payload type is said to be SRTP, not a codec to map", async () => {
  // Opus's size does not follow from its duration, but its framing rules out encrypted bytes: a real capture of
  // ffmpeg's SRTP Opus (PT 111).
  const d = await discoverPacketFile(new URL("rtp_srtp_opus.pcap", FIX).pathname);
  const pt = d.groups.find((x) => x.protocol === "rtp" && x.port === 40012)?.payloadTypes?.[0];
  assert.equal(pt?.pt, 111);
  assert.equal(pt?.guessed, undefined);
  assert.match(
    pt?.reason ?? "",
    /RTP clock ~4\d{4} Hz \(Opus's\): SRTP likely .*: \d+% of its payloads are not valid Opus framing/,
  );
  // Unmapped, the payload type may also be a codec fsm-px does not decode on that clock: said too.
  assert.match(pt?.reason ?? "", /or a codec other than Opus on that clock \(L24, AAC\)/);
  // Plain Opus (the packet demo's PT 97) is still named Opus, and L16 at Opus's clock L16.
  const plain = await discoverPacketFile(new URL("../demo_packets/node-rtp.pcap", FIX).pathname);
  const opus = plain.groups.flatMap((g) => g.payloadTypes ?? []).find((p) => p.pt === 97);
  assert.equal(opus?.guessed, "opus/48000/2");
  const records = Array.from({ length: 60 }, (_, i) => ({
    sec: 1_700_000_000,
    frac: i * 10_000_000,
    data: ethernet(
      0x0800,
      ipv4(
        "10.0.0.1",
        "10.0.0.2",
        17,
        udp(5004, 40000, rtp({ pt: 96, seq: i, ts: i * 480, ssrc: 7 }, noise(960, i + 1))),
      ),
    ),
  }));
  const path = await Deno.makeTempFile({ suffix: ".pcap" });
  try {
    await Deno.writeFile(
      path,
      classicPcap({ nanosecond: true, littleEndian: true, linkType: LinkType.ETHERNET }, records),
    );
    const l16 = (await discoverPacketFile(path)).groups[0]?.payloadTypes?.[0];
    assert.equal(l16?.guessed, "L16/48000", `${l16?.reason}`);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("analyze: an RTP tap on SRTP says why it gives no signatures", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cfg = join(dir, "c.yaml");
    await Deno.writeTextFile(
      cfg,
      "measurements:\n  - name: call\n    signature_rules:\n      packets: { protocol: rtp, port: 40010 }\n",
    );
    const r = await runMain(["analyze", "--config", cfg, SRTP]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /call\/source: SRTP \(encrypted\): each payload is its audio plus a 10-byte/);
    assert.match(r.stdout, /call: 0 signatures from \d+ source rows: its RTP is SRTP, encrypted \(above\)/);
    // The plain capture of the same prompt is not called SRTP.
    const plain = await runMain([
      "analyze",
      "--config",
      cfg,
      new URL("rtp_v4_ns.pcap", FIX).pathname,
    ]);
    assert.doesNotMatch(plain.stdout, /SRTP/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("analyze: an RTP tap on encrypted Opus mapped to opus says SRTP likely, not only bad packets", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cfg = join(dir, "c.yaml");
    await Deno.writeTextFile(
      cfg,
      "measurements:\n  - name: webrtc\n    signature_rules:\n" +
        "      packets: { protocol: rtp, port: 40012, payload_types: { 111: opus/48000/2 } }\n",
    );
    const r = await runMain(["analyze", "--config", cfg, new URL("rtp_srtp_opus.pcap", FIX).pathname]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /bad_packet in \d+ rows of webrtc\/source/);
    assert.match(
      r.stdout,
      /webrtc\/source: SRTP likely \(encrypted, as all WebRTC media is\): \d+% of its payloads/,
    );
    assert.match(r.stdout, /webrtc: 0 signatures from \d+ source rows: its RTP is SRTP, encrypted \(above\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
