import { deepEqual, equal, ok } from "node:assert/strict";
import { type JitterOptions, RtpJitter } from "../packets/jitter.ts";
import { PcapReader } from "../packets/pcap.ts";
import { seqDiff } from "../packets/rtp.ts";
import { rtpMessages } from "../packets/rtp_source.ts";
import { type AppMessage, SkipCounter } from "../packets/types.ts";
import type { LossyTruth } from "../fixtures/packets/make_lossy.ts";
import { FIX } from "./support/packet_truth.ts";

const MS = 1_000_000;

function msg(seq: number, tMs: number, opts: { ts?: number; stream?: string } = {}): AppMessage {
  return {
    protocol: "rtp",
    timeNs: BigInt(Math.round(tMs * MS)),
    flow: { transport: "udp", src: "10.0.0.1", srcPort: 1, dst: "10.0.0.2", dstPort: 2 },
    stream: opts.stream ?? "s",
    payload: new Uint8Array([seq & 0xff, seq >> 8]),
    rtp: { pt: 0, seq, ts: opts.ts ?? (seq * 160) >>> 0, ssrc: 1, marker: false, lostBefore: -1 },
  };
}

class Harness {
  readonly out: AppMessage[] = [];
  readonly skips = new SkipCounter();
  readonly j: RtpJitter;
  constructor(opts: JitterOptions = {}) {
    this.j = new RtpJitter((m) => this.out.push(m), this.skips, { probation: 1, ...opts });
  }
  /** Pushes [seq, time ms] pairs; returns "seq/lostBefore" of everything emitted so far. */
  push(...pkts: [number, number][]): string[] {
    for (const [seq, t] of pkts) this.j.push(msg(seq, t));
    return this.emitted();
  }
  emitted(): string[] {
    return this.out.map((m) => `${m.rtp!.seq}/${m.rtp!.lostBefore}`);
  }
}

/** Consecutive packets from `from` (inclusive) every 20 ms starting at `t0` ms. */
function run(from: number, n: number, t0: number): [number, number][] {
  return Array.from({ length: n }, (_, i) => [(from + i) & 0xffff, t0 + 20 * i] as [number, number]);
}

Deno.test("in order: emitted at once with lostBefore 0", () => {
  const h = new Harness();
  deepEqual(h.push(...run(10, 4, 0)), ["10/0", "11/0", "12/0", "13/0"]);
  deepEqual(h.skips.toJSON(), {});
});

Deno.test("probation: nothing comes out until two packets agree, then both do, in sequence order", () => {
  const h = new Harness({ probation: 2 });
  deepEqual(h.push([11, 0]), []);
  deepEqual(h.push([10, 20]), ["10/0", "11/0"]); // the earlier one arrived second: still first out
  deepEqual(h.push([12, 40]), ["10/0", "11/0", "12/0"]);
  // A second candidate whose sequence is far from the first restarts probation (the first was not RTP).
  const g = new Harness({ probation: 2 });
  deepEqual(g.push([100, 0], [5000, 20]), []);
  deepEqual(g.push([5001, 40]), ["5000/0", "5001/0"]);
  deepEqual(g.skips.toJSON(), { not_rtp: 1 });
  // Timestamps compare modulo 2^32: a stream crossing the timestamp wrap during probation is accepted.
  const w = new Harness({ probation: 3 });
  w.j.push(msg(1, 0, { ts: 0xffffff00 }));
  w.j.push(msg(2, 20, { ts: 0x00000060 }));
  w.j.push(msg(3, 40, { ts: 0x00000100 }));
  deepEqual(w.emitted(), ["1/0", "2/0", "3/0"]);
  // Far-apart timestamps are not one stream.
  const t = new Harness({ probation: 2 });
  t.j.push(msg(1, 0, { ts: 0 }));
  t.j.push(msg(2, 20, { ts: 0x40000000 }));
  deepEqual(t.emitted(), []);
  t.j.flush();
  deepEqual(t.skips.toJSON(), { not_rtp: 2 });
});

Deno.test("reordered within the window: lands where it belongs", () => {
  const h = new Harness();
  deepEqual(h.push([1, 0], [2, 20], [4, 40], [5, 60], [3, 65], [6, 80]), [
    "1/0",
    "2/0",
    "3/0",
    "4/0",
    "5/0",
    "6/0",
  ]);
  deepEqual(h.skips.toJSON(), {});
});

Deno.test("loss: the gap is given up after 200 ms of capture time and counted in lostBefore", () => {
  const h = new Harness();
  h.push(...run(1, 2, 0)); // 1, 2
  h.push(...run(5, 10, 60)); // 3 and 4 missing; 5.. from t=60
  // Gap opened at t=60 (packet 5); the push at t=260 (packet 15) is the first 200 ms later.
  deepEqual(h.emitted(), ["1/0", "2/0"]);
  h.push([15, 260]);
  deepEqual(h.emitted(), ["1/0", "2/0", "5/2", ...run(6, 10, 0).map(([s]) => `${s}/0`)]);
  // 3 arrives afterwards: late, not emitted.
  h.push([3, 270]);
  deepEqual(h.skips.toJSON(), { rtp_late: 1 });
  equal(h.j.stats.lost, 2);
  equal(h.j.stats.gaps, 1);
});

Deno.test("loss: the packet window gives up first when packets come faster than the time window", () => {
  const h = new Harness({ windowPackets: 5 });
  h.push([1, 0], [3, 1], [4, 2], [5, 3], [6, 4]);
  deepEqual(h.emitted(), ["1/0"]);
  h.push([7, 5]); // the span 2..7 reaches the window: 2 is given up
  deepEqual(h.emitted(), ["1/0", "3/1", "4/0", "5/0", "6/0", "7/0"]);
  h.push([20, 6]); // far ahead in one go: 8..15 are given up, 16..19 may still come
  deepEqual(h.emitted().slice(-1), ["7/0"]);
  h.push([2, 7]);
  deepEqual(h.skips.toJSON(), { rtp_late: 1 });
  h.j.flush();
  deepEqual(h.emitted().slice(-1), ["20/12"]);
});

Deno.test("tick releases gaps of streams that went quiet, and forgets idle streams", () => {
  const h = new Harness();
  h.push([1, 0], [3, 20]);
  deepEqual(h.emitted(), ["1/0"]);
  h.j.tick(100 * MS);
  deepEqual(h.emitted(), ["1/0"]);
  h.j.tick(221 * MS);
  deepEqual(h.emitted(), ["1/0", "3/1"]);
  equal(h.j.stats.streams, 1);
  h.j.tick(60_100 * MS);
  equal(h.j.stats.streams, 0);
  equal(h.j.stats.idled, 1);
  // The stream comes back: a new stream, no loss claimed across the silence.
  h.push([4000, 70_000]);
  deepEqual(h.emitted().slice(-1), ["4000/0"]);
});

Deno.test("duplicates: of an emitted packet and of a held one", () => {
  const h = new Harness();
  h.push([1, 0], [2, 20], [2, 21], [4, 40], [4, 41], [3, 45]);
  deepEqual(h.emitted(), ["1/0", "2/0", "3/0", "4/0"]);
  deepEqual(h.skips.toJSON(), { rtp_duplicate: 2 });
  h.push([1, 50]); // long emitted: still recognised as a duplicate
  deepEqual(h.skips.toJSON(), { rtp_duplicate: 3 });
});

Deno.test("uint16 wrap-around: order, reordering and loss across 65535 -> 0", () => {
  const h = new Harness();
  h.push([65533, 0], [65534, 20], [0, 40], [65535, 45], [1, 60], [4, 80]);
  h.j.flush();
  deepEqual(h.emitted(), ["65533/0", "65534/0", "65535/0", "0/0", "1/0", "4/2"]);
  // Across several wraps the extended numbering keeps going.
  const g = new Harness();
  const pkts: [number, number][] = [];
  for (let i = 0; i < 200_000; i++) pkts.push([(60_000 + i) & 0xffff, i * 20]);
  for (const [s, t] of pkts) g.j.push(msg(s, t));
  equal(g.out.length, 200_000);
  ok(g.out.every((m) => m.rtp!.lostBefore === 0));
  deepEqual(g.skips.toJSON(), {});
});

Deno.test("sender restart: two packets in a row far away restart the stream; a lone far packet is a stray", () => {
  const h = new Harness();
  h.push(...run(1, 3, 0), [30_000, 60], [4, 80]);
  deepEqual(h.emitted(), ["1/0", "2/0", "3/0", "4/0"]);
  deepEqual(h.skips.toJSON(), { not_rtp: 1 });
  h.push([9000, 100], [9001, 120], [9002, 140]);
  deepEqual(h.emitted().slice(4), ["9000/0", "9001/0", "9002/0"]);
  equal(h.j.stats.restarts, 1);
  // Backwards restart (sequence reset to a low number) works the same.
  h.push([5, 160], [6, 180]);
  deepEqual(h.emitted().slice(7), ["5/0", "6/0"]);
  equal(h.j.stats.restarts, 2);
});

Deno.test("flush emits held packets; streams are bounded and the least recently active are evicted", () => {
  const h = new Harness();
  h.push([1, 0], [3, 20], [6, 40]);
  h.j.flush();
  deepEqual(h.emitted(), ["1/0", "3/1", "6/2"]);
  const b = new Harness({ maxStreams: 10 });
  for (let s = 0; s < 25; s++) b.j.push(msg(1, s, { stream: `s${s}` }));
  ok(b.j.stats.streams <= 10);
  ok(b.j.stats.evicted >= 15);
  equal(b.out.length, 25);
  // A held packet's payload is a copy: the window never pins the capture buffer it came from.
  const c = new Harness();
  const big = new Uint8Array(65536);
  const m = msg(3, 20);
  m.payload = big.subarray(100, 102);
  c.j.push(msg(1, 0));
  c.j.push(m);
  c.j.flush();
  equal(c.out[1]!.payload.buffer.byteLength, 2);
});

Deno.test("lossy real capture: emitted order, lostBefore, late and duplicate counts and payloads match the truth", async () => {
  const truth: LossyTruth = JSON.parse(await Deno.readTextFile(new URL("rtp_v4_lossy.json", FIX)));
  const speech = await Deno.readFile(new URL("speech.ul", FIX));
  using file = await Deno.open(new URL("rtp_v4_lossy.pcap", FIX));
  const skips = new SkipCounter();
  const msgs: AppMessage[] = [];
  for await (const m of rtpMessages(new PcapReader(file), {}, skips)) msgs.push(m);

  // Expected: every sequence number of the source in order, minus the dropped ones and the late one.
  const first = truth.fileOrder[0]!;
  const all = [...new Set(truth.fileOrder)].concat(truth.dropped).sort((a, b) =>
    seqDiff(a, first) - seqDiff(b, first)
  );
  const missing = new Set([...truth.dropped, truth.late.seq]);
  const expected: string[] = [];
  let lost = 0;
  for (const s of all) {
    if (missing.has(s)) lost++;
    else {
      expected.push(`${s}/${lost}`);
      lost = 0;
    }
  }
  deepEqual(msgs.map((m) => `${m.rtp!.seq}/${m.rtp!.lostBefore}`), expected);
  deepEqual(skips.toJSON(), { rtcp: 1, rtp_late: 1, rtp_duplicate: 1 });
  // Each payload is the 160 samples of ffmpeg's encoding at its sequence number's place.
  for (const m of msgs) {
    const k = seqDiff(m.rtp!.seq, first);
    deepEqual(m.payload, speech.subarray(k * 160, k * 160 + m.payload.length), `seq ${m.rtp!.seq}`);
  }
});
