/**
 * IP fragment reassembly (packets/ip_fragments.ts) against fragments no sender of a real datagram makes: the
 * capture must count them and go on, and never hand on bytes of a datagram that was not there.
 * @module
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { type AppMessage, type Frame, LinkType, SkipCounter } from "../packets/types.ts";
import { RtpSource } from "../packets/rtp_source.ts";
import { FragmentReassembler, MAX_HELD_BYTES } from "../packets/ip_fragments.ts";
import { FrameDecoder } from "../packets/ip.ts";
import { ethernet, fragmentHeader, ipv4, ipv6, rtp, udp } from "./support/packet_build.ts";

const SEC = 1_700_000_000;
const V6_SRC = "2001:db8::10";
const V6_DST = "2001:db8::20";

/** An Ethernet frame captured at `ns` past SEC. */
function frameAt(data: Uint8Array, ns: number): Frame {
  return {
    timeNs: BigInt(SEC) * 1_000_000_000n + BigInt(ns),
    linkType: LinkType.ETHERNET,
    data,
    origLen: data.length,
    iface: 0,
  };
}

/** An IPv4 fragment of `bytes` at byte offset `off` (a multiple of 8) of datagram `id`. */
function v4Fragment(id: number, off: number, more: boolean, bytes: Uint8Array): Uint8Array {
  const f = ipv4("10.0.0.1", "10.0.0.2", 17, bytes, { frag: (more ? 0x2000 : 0) | (off / 8) });
  f[4] = id >> 8;
  f[5] = id & 0xff;
  return ethernet(0x0800, f);
}

/** An IPv6 fragment of `bytes` at byte offset `off` of datagram `id`. */
function v6Fragment(id: number, off: number, more: boolean, bytes: Uint8Array): Uint8Array {
  return ethernet(0x86dd, ipv6(V6_SRC, V6_DST, 17, bytes, [fragmentHeader(off, more, id)]));
}

type FragmentOf = (id: number, off: number, more: boolean, bytes: Uint8Array) => Uint8Array;

/** RTP packet `i` (PT 11, 1,764 bytes of audio) as a UDP datagram, port 5004 to 40000. */
function datagram(i: number): Uint8Array {
  const audio = new Uint8Array(1764).map((_, k) => (i * 7 + k) & 0xff);
  return udp(5004, 40000, rtp({ pt: 11, seq: 1000 + i, ts: i * 882, ssrc: 0xabc }, audio));
}

/** A datagram as two fragments: 1,480 bytes and the rest. */
function halves(of: FragmentOf, id: number, d: Uint8Array): Uint8Array[] {
  return [of(id, 0, true, d.subarray(0, 1480)), of(id, 1480, false, d.subarray(1480))];
}

/** Frames through an RTP source, flushed: its messages and skips. */
function run(frames: Frame[]): { msgs: AppMessage[]; skips: Record<string, number>; src: RtpSource } {
  const msgs: AppMessage[] = [];
  const skips = new SkipCounter();
  const src = new RtpSource((m) => msgs.push(m), {}, skips);
  for (const f of frames) src.pushFrame(f);
  src.flush();
  return { msgs, skips: skips.toJSON(), src };
}

for (const [family, of] of [["IPv4", v4Fragment], ["IPv6", v6Fragment]] as const) {
  Deno.test(`${family} fragments: one lying past the last fragment's end is counted, not written past the datagram`, () => {
    // Datagram 7: its first 80 bytes, 16 bytes at 104 (more to come, it says), and a last fragment ending at 104.
    // The bytes held (80 + 16 + 8) add up to the length the last one gives, with a hole at 80-96: taken for
    // complete, the 16 bytes at 104 were written past the end of a 104-byte datagram (a RangeError out of
    // pushFrame, which stopped the capture) and the hole would have been handed on as zeros.
    const junk = new Uint8Array(120).fill(0x5a);
    const lastAfter = [
      of(7, 0, true, junk.subarray(0, 80)),
      of(7, 104, true, junk.subarray(0, 16)),
      of(7, 96, false, junk.subarray(0, 8)),
    ];
    // Datagram 8: the last fragment first, then one past it.
    const lastBefore = [
      of(8, 96, false, junk.subarray(0, 8)),
      of(8, 104, true, junk.subarray(0, 16)),
      of(8, 0, true, junk.subarray(0, 80)),
    ];
    const frames: Frame[] = [];
    for (const [k, f] of [...lastAfter, ...lastBefore].entries()) frames.push(frameAt(f, k * 10_000));
    // Then a stream's two packets, whole, still come out (the RTP source needs two to believe a stream).
    for (let i = 0; i < 2; i++) {
      for (const [k, f] of halves(of, 0x100 + i, datagram(i)).entries()) {
        frames.push(frameAt(f, 20_000_000 * (i + 1) + k * 10_000));
      }
    }
    const { msgs, skips, src } = run(frames);
    deepEqual(msgs.map((m) => m.rtp!.seq), [1000, 1001]);
    deepEqual(msgs[1]!.payload, datagram(1).subarray(20));
    // Datagram 8's first fragment, given up on its own at the end: it came after the datagram was given up.
    deepEqual(skips, { ip_fragment: 6 });
    deepEqual(src.fragments.stats, { reassembled: 2, abandoned: 3 });
    equal(src.fragments.heldBytes, 0);
  });
}

Deno.test("fragment storm: the smallest fragments are charged what holding them costs, not their payload alone", () => {
  // 8-byte fragments (at odd offsets, so that no datagram completes) of 40 datagrams: 40,000 of them. Each held
  // fragment takes ~250 bytes of heap (measured with --expose-gc: a storm of half a million 8-byte fragments,
  // 4 MiB of payload, held ~120 MiB), so at most MAX_HELD_BYTES / 256 may be held for the bound to hold.
  const skips = new SkipCounter();
  const r = new FragmentReassembler(skips);
  const dec = new FrameDecoder(skips);
  dec.holdFragments = true;
  const push = (f: Frame) => {
    equal(dec.decodeView(f), false);
    return r.push(f, dec.l3, dec.view.fragmentHeader);
  };
  let pushed = 0;
  for (let id = 0; id < 40; id++) {
    for (let k = 0; k < 1000; k++) {
      equal(push(frameAt(v4Fragment(id, (2 * k + 1) * 8, true, new Uint8Array(8)), pushed)), undefined);
      pushed++;
    }
  }
  const held = pushed - (skips.counts.get("ip_fragment") ?? 0);
  ok(held <= MAX_HELD_BYTES / 256, `${held} fragments held`);
  // Up to the bound, less at most one datagram (the oldest go whole).
  ok(held > MAX_HELD_BYTES / (8 + 256) - 1000, `filled up to the bound: ${held}`);
  ok(r.heldBytes <= MAX_HELD_BYTES);
  // A whole datagram still comes out.
  let whole: Frame | undefined;
  for (const f of halves(v4Fragment, 0x200, datagram(0))) whole = push(frameAt(f, pushed)) ?? whole;
  ok(whole !== undefined && dec.decodeView(whole));
  deepEqual(whole.data.subarray(dec.view.payloadStart, dec.view.payloadEnd), datagram(0).subarray(8));
  r.flush();
  equal(r.heldBytes, 0);
  equal(skips.counts.get("ip_fragment"), pushed);
});

Deno.test("fragments: a capture clock stepped back does not keep a datagram in progress past its timeout", () => {
  // Datagram 7 (packet 0) loses its last fragment just before the host's clock steps back an hour (NTP, a VM
  // resumed). Its first fragment must still be given up a second of capture later, not an hour: held, it is taken
  // for the first fragment of the next datagram with identification 7 (an exact duplicate of it by offset and
  // length, so the new one is dropped) and that datagram comes out with packet 0's header and first 1,472 bytes.
  const skips = new SkipCounter();
  const r = new FragmentReassembler(skips);
  const dec = new FrameDecoder(skips);
  dec.holdFragments = true;
  const push = (bytes: Uint8Array, ns: number) => {
    const f = frameAt(bytes, ns);
    equal(dec.decodeView(f), false);
    return r.push(f, dec.l3, dec.view.fragmentHeader);
  };
  const STEP = 3_600_000_000_000;
  const [lost0] = halves(v4Fragment, 7, datagram(0));
  equal(push(lost0!, 0), undefined);
  // After the step, packets 1..100 (ids 0x100 + i), 20 ms apart: 2 s of capture.
  for (let i = 1; i <= 100; i++) {
    let whole: Frame | undefined;
    for (const [k, f] of halves(v4Fragment, 0x100 + i, datagram(i)).entries()) {
      whole = push(f, 10_000_000 - STEP + i * 20_000_000 + k * 10_000) ?? whole;
    }
    ok(whole !== undefined, `packet ${i}`);
  }
  equal(r.size, 0, "packet 0's first fragment given up by now");
  equal(skips.counts.get("ip_fragment"), 1);
  // Packet 101 reuses identification 7.
  let whole: Frame | undefined;
  for (const [k, f] of halves(v4Fragment, 7, datagram(101)).entries()) {
    whole = push(f, 10_000_000 - STEP + 101 * 20_000_000 + k * 10_000) ?? whole;
  }
  ok(whole !== undefined && dec.decodeView(whole), "packet 101");
  deepEqual(whole.data.subarray(dec.view.payloadStart, dec.view.payloadEnd), datagram(101).subarray(8));
  // A clock that goes back by less than the timeout (interleaved interfaces) gives nothing up early.
  equal(push(halves(v4Fragment, 8, datagram(102))[0]!, 10_000_000 - STEP + 102 * 20_000_000), undefined);
  equal(
    push(halves(v4Fragment, 9, datagram(103))[0]!, 10_000_000 - STEP + 102 * 20_000_000 - 500_000_000),
    undefined,
  );
  equal(r.size, 2);
  ok(push(halves(v4Fragment, 8, datagram(102))[1]!, 10_000_000 - STEP + 102 * 20_000_000 + 900_000_000));
  ok(push(halves(v4Fragment, 9, datagram(103))[1]!, 10_000_000 - STEP + 102 * 20_000_000 + 400_000_000));
  equal(skips.counts.get("ip_fragment"), 1);
});

Deno.test("fragments: a datagram left incomplete is given up at the source's tick, not at a fragment that may never come", () => {
  const msgs: AppMessage[] = [];
  const skips = new SkipCounter();
  const src = new RtpSource((m) => msgs.push(m), {}, skips);
  const d = udp(5004, 40000, rtp({ pt: 11, seq: 1, ts: 0, ssrc: 1 }, new Uint8Array(1764)));
  // Its first fragment only; then the stream pauses (live: the source ticks once a second of capture time).
  src.pushFrame(frameAt(halves(v4Fragment, 9, d)[0]!, 0));
  equal(src.fragments.size, 1);
  src.tick(SEC * 1e9 + 500_000_000);
  equal(src.fragments.size, 1, "within the timeout: still held");
  src.tick(SEC * 1e9 + 2_000_000_000);
  // Before, it stayed held (and uncounted) until the next fragment or the capture's end.
  equal(src.fragments.size, 0);
  equal(skips.counts.get("ip_fragment"), 1);
});
