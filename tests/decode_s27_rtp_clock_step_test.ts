import { deepEqual, equal, ok } from "node:assert/strict";
import { StreamDecoder } from "../audio/decode/stream_decoder.ts";
import { rawFormat } from "./support/formats.ts";

const T0 = 1_700_000_000_000_000_000n;
const MS = 1_000_000n;
const MULAW = rawFormat();

Deno.test("media clock: a sender whose RTP timestamp steps back 3 s (sequence going on) loses one packet, not 3 s", () => {
  // A re-INVITE or an SBC switching the source behind the same SSRC: the sequence continues, the timestamp
  // restarts 3 s (24,000 ticks) earlier. Every packet arrives 20 ms after the previous one.
  const d = new StreamDecoder(MULAW, { keepTimeline: true });
  let ts = 1_000_000;
  const kinds: string[] = [];
  for (let i = 0; i < 300; i++) {
    if (i === 100) ts -= 24_000;
    const o = d.push({
      timeNs: T0 + BigInt(i) * 20n * MS,
      payload: new Uint8Array(160).fill(i & 0x7f),
      mediaClock: { ts: ts >>> 0, clockRate: 8000 },
    });
    kinds.push(o.kind === "error" ? o.reason : o.kind);
    ts += 160;
  }
  // Before the fix, 150 packets (3 s of audio, up to maxGapSeconds = 30 s) were media_overlap until the new
  // timestamps caught up with the old position.
  equal(kinds.filter((k) => k === "media_overlap").length, 1);
  equal(kinds[100], "media_overlap");
  equal(kinds.filter((k) => k === "audio").length, 299);
  const s = d.stats();
  deepEqual([s.clockJumps, s.overlapFrames, s.mediaGaps, s.mediaGapFrames], [1, 160, 1, 160]);
  // The dropped packet is a gap of its length timed at its arrival: every later packet keeps its place.
  equal(d.timeline.nativeLength, 300 * 160);
  for (const i of [99, 101, 299]) {
    const at = d.timeline.locate(i * 160)!;
    equal(at.timeNs, T0 + BigInt(i) * 20n * MS);
    ok(!at.gap);
  }
  const gap = d.timeline.locate(100 * 160)!;
  ok(gap.gap);
  equal(gap.timeNs, T0 + 100n * 20n * MS);
});

Deno.test("media clock: a lone packet wholly behind the clock is still dropped, and the clock keeps its place", () => {
  const d = new StreamDecoder(MULAW);
  const push = (i: number, ts: number) =>
    d.push({
      timeNs: T0 + BigInt(i) * 20n * MS,
      payload: new Uint8Array(160).fill(i),
      mediaClock: { ts, clockRate: 8000 },
    });
  push(0, 0);
  push(1, 160);
  push(2, 320);
  equal(push(3, 0).kind, "error"); // a stray copy of packet 0
  equal(push(4, 480).kind, "audio");
  equal(push(5, 160).kind, "error"); // a copy of packet 1: its start is where the stray ended, but not in a row
  equal(push(6, 640).kind, "audio");
  equal(d.timeline.nativeLength, 5 * 160);
  deepEqual([d.stats().clockJumps, d.stats().errors.media_overlap], [0, 2]);
});
