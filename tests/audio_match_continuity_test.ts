// Latency continuity (audio/match/continuity.ts): where neighbouring matches of the same source tap put a
// signature's block. The credit it earns is tested with verification (tests/audio_match_verify_test.ts).
import { ok, strictEqual } from "node:assert/strict";
import { continues, LatencyMemory } from "../audio/match/continuity.ts";
import { CONTINUITY_MAX_AGE_MS, CONTINUITY_TOLERANCE_FRAMES } from "../audio/match/thresholds.ts";
import type { Signature } from "../audio/types.ts";
import { signatureOf } from "../audio/fingerprint/signature.ts";

const T0 = 1_700_000_000_000_000_000n;
const HOP = 128;

/** A signature of tap `tap` whose instant is `ms` after T0 (split into a message time and an offset). */
function sig(ms: number, tap = "s"): Signature {
  return signatureOf({
    id: `${tap}${ms}`,
    measurement: "m",
    source: {
      node: "a",
      pod: "p",
      stream: tap,
      timeNs: T0 + BigInt(Math.floor(ms / 20) * 20) * 1_000_000n,
      offsetMs: ms % 20,
    },
    fingerprint: new Uint32Array(128),
    ids: {},
  });
}

Deno.test("latency memory: the nearest match of the same tap by source time, either side, within the age limit", () => {
  const m = new LatencyMemory();
  strictEqual(m.expect(sig(0), HOP), undefined);
  m.remember(sig(1_000), 500);
  m.remember(sig(5_000), 750);
  // 16 ms per frame from the nearest: 4,800 ms is 200 ms before the match at 5,000 ms.
  strictEqual(m.expect(sig(4_800), HOP)?.frame, 737.5);
  strictEqual(m.expect(sig(4_800), HOP)?.from, 750);
  // A late signature (earlier than both) takes the earlier match.
  strictEqual(m.expect(sig(1_160), HOP)?.frame, 510);
  // Too far from every match.
  strictEqual(m.expect(sig(5_000 + CONTINUITY_MAX_AGE_MS + 20), HOP), undefined);
  // Another tap: nothing known.
  strictEqual(m.expect(sig(4_800, "t"), HOP), undefined);
});

Deno.test("latency memory: keeps the newest matches per tap and the most recently matched taps", () => {
  const m = new LatencyMemory();
  for (let i = 0; i < 20; i++) m.remember(sig(i * 1_000), i * 100);
  // The oldest were dropped: 0 ms now takes the match at 12,000 ms (the oldest kept), beyond the age limit.
  strictEqual(m.expect(sig(0), HOP), undefined);
  strictEqual(m.expect(sig(19_000), HOP)?.from, 1_900);
  for (const t of ["t1", "t2", "t3", "t4"]) m.remember(sig(0, t), 0);
  strictEqual(m.expect(sig(19_000), HOP), undefined, "the first tap was the least recently matched");
  ok(m.expect(sig(0, "t1"), HOP));
});

Deno.test("continues: within the tolerance of the expected frame, no capture-time gap between", () => {
  const e = { frame: 300.25, from: 100 };
  const none = () => [];
  ok(continues(e, 300 + CONTINUITY_TOLERANCE_FRAMES, HOP, none));
  ok(!continues(e, 301 + CONTINUITY_TOLERANCE_FRAMES, HOP, none));
  ok(!continues(e, 299 - CONTINUITY_TOLERANCE_FRAMES, HOP, none));
  ok(!continues(undefined, 300, HOP, none));
  ok(!continues(e, 300, HOP, undefined), "no capture times, no continuity");
  const asked: [number, number][] = [];
  ok(
    !continues(e, 300, HOP, (from, to) => {
      asked.push([from, to]);
      return [{ at: 200 * HOP, len: 160 }];
    }),
  );
  // Asked about the samples from the neighbour's block to this one's.
  strictEqual(asked[0]![0], 100 * HOP);
  strictEqual(asked[0]![1], 301 * HOP);
});
