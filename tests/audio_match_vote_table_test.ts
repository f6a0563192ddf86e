// The forward search's vote table (audio/match/vote_table.ts): which alignments were voted for and which became
// candidates (two votes from different frames, a near-exact hit, or a neighbour's vote), kept across one epoch
// boundary and gone after two, through growth; its decisions against a plain model of the rule.
import { strictEqual, throws } from "node:assert/strict";
import { EPOCH_FRAMES, MAX_LAG, VoteTable } from "../audio/match/vote_table.ts";
import { xorshift32 } from "./support/rng.ts";

Deno.test("vote table: a frame votes once per alignment; a second frame's vote makes a candidate, once", () => {
  const v = new VoteTable();
  v.advance(10);
  strictEqual(v.vote(3, 5, 10, 1), false);
  strictEqual(v.vote(3, 5, 10, 1), false, "the same target frame again adds nothing");
  strictEqual(v.vote(3, 5, 11, 1), true);
  strictEqual(v.vote(3, 5, 12, 1), false, "a candidate already");
  strictEqual(v.vote(3, 5, 12, 2), false);
  strictEqual(v.has(3, 5), true);
  strictEqual(v.has(3, 6), false);
  strictEqual(v.has(4, 5), false, "another slot");
});

Deno.test("vote table: a near-exact hit is a candidate on its own", () => {
  const v = new VoteTable();
  v.advance(10);
  strictEqual(v.vote(3, 5, 10, 2), true);
  strictEqual(v.vote(3, 5, 11, 2), false);
});

Deno.test("vote table: a neighbour's vote makes a candidate, also for a vote of the same frame again", () => {
  const v = new VoteTable();
  v.advance(300);
  strictEqual(v.vote(1, 200, 300, 1), false);
  strictEqual(v.vote(1, 202, 300, 1), false, "two apart is no neighbour");
  strictEqual(v.vote(1, 201, 300, 1), true, "200 and 202 are");
  // 200's one vote is from this frame: a second hit of the frame on it adds no vote, but 201 is there now.
  strictEqual(v.vote(1, 200, 300, 1), true);
  strictEqual(v.vote(1, 202, 301, 1), true);
  strictEqual(v.vote(2, 199, 301, 1), false, "another slot's neighbour is none");
});

Deno.test("vote table: alignments live through the next epoch and expire after it", () => {
  const v = new VoteTable();
  const a = EPOCH_FRAMES - 50;
  v.advance(EPOCH_FRAMES - 1);
  v.vote(1, a, EPOCH_FRAMES - 1, 1);
  v.vote(1, a - 10, EPOCH_FRAMES - 1, 1);
  v.advance(EPOCH_FRAMES);
  strictEqual(v.has(1, a), true, "the older generation still answers");
  strictEqual(v.vote(1, a, EPOCH_FRAMES, 1), true, "its vote counts with this one");
  strictEqual(v.vote(1, a, a + MAX_LAG - 1, 1), false, "a candidate in the current generation too");
  v.advance(2 * EPOCH_FRAMES);
  strictEqual(v.has(1, a), true, "moved into the generation of its last vote");
  strictEqual(v.has(1, a - 10), false, "gone with the generation of its only vote");
  v.advance(3 * EPOCH_FRAMES);
  strictEqual(v.has(1, a), false);
});

Deno.test("vote table: keys tell apart the most slots and the alignments of two epochs and a lag", () => {
  const v = new VoteTable();
  const top = (1 << 23) - 1;
  const t = 5 * EPOCH_FRAMES + 3;
  v.advance(t - EPOCH_FRAMES);
  v.vote(top, t - EPOCH_FRAMES - MAX_LAG + 1, t - EPOCH_FRAMES, 1);
  v.advance(t);
  strictEqual(v.vote(top - 1, t, t, 1), false);
  strictEqual(v.vote(top, t, t, 1), false);
  strictEqual(v.vote(0, t, t, 1), false);
  strictEqual(v.has(top, t - EPOCH_FRAMES - MAX_LAG + 1), true);
  strictEqual(v.has(top, t - EPOCH_FRAMES - MAX_LAG + 2), false);
  strictEqual(v.has(top, t - 1), false);
  strictEqual(v.has(top, t + 1), false);
  strictEqual(v.vote(top, t - MAX_LAG + 1, t, 1), false, "the oldest alignment a frame reaches");
  strictEqual(v.has(top, t - MAX_LAG + 1), true);
});

Deno.test("vote table: votes outside a block's lag are refused", () => {
  const v = new VoteTable();
  v.advance(1000);
  throws(() => v.vote(1, 1000 - MAX_LAG, 1000, 1), RangeError);
  throws(() => v.vote(1, 1001, 1000, 1), RangeError);
  throws(() => new VoteTable(24), RangeError);
});

Deno.test("vote table: growing keeps every entry and its state", () => {
  const v = new VoteTable(16);
  v.advance(200);
  const before = v.bytes;
  for (let slot = 0; slot < 300; slot++) v.vote(slot, 200 - (slot % 100), 200, 1 + (slot % 2));
  strictEqual(v.bytes > before, true);
  for (let slot = 0; slot < 300; slot++) {
    strictEqual(v.has(slot, 200 - (slot % 100)), true, `slot ${slot}`);
    strictEqual(v.vote(slot, 200 - (slot % 100), 201, 1), slot % 2 === 0, `slot ${slot}`);
  }
});

Deno.test("vote table: nothing is held until the first vote", () => {
  const v = new VoteTable();
  for (let t = 0; t < 5 * EPOCH_FRAMES; t++) v.advance(t);
  const empty = v.bytes;
  strictEqual(v.has(1, 2), false);
  v.vote(1, 5 * EPOCH_FRAMES - 3, 5 * EPOCH_FRAMES - 1, 1);
  strictEqual(v.bytes > empty, true);
  strictEqual(empty <= 256, true, `${empty} bytes`);
});

Deno.test("vote table: each epoch's table is sized for the alignments the epoch before had", () => {
  const v = new VoteTable();
  // Epochs of ~3,200 new alignments each (10,000 active signatures' worth), then quiet ones.
  const perFrame = 25;
  const busy = (e: number) => {
    for (let t = e * EPOCH_FRAMES; t < (e + 1) * EPOCH_FRAMES; t++) {
      v.advance(t);
      for (let k = 0; k < perFrame; k++) v.vote((t * perFrame + k) % 9973, t - (k % MAX_LAG), t, 1);
    }
  };
  for (let e = 0; e < 6; e++) busy(e);
  // Two generations of 4-byte entries at 45–65% load: ~50 KB for 3,200 alignments an epoch.
  const n = EPOCH_FRAMES * perFrame;
  const steady = v.bytes;
  strictEqual(steady <= 2 * (n / 0.45) * 4 + 1024, true, `${steady} bytes`);
  strictEqual(steady >= 2 * n * 4, true);
  // Votes survive into the next epoch whatever the table's size.
  v.advance(6 * EPOCH_FRAMES);
  strictEqual(v.has((6 * EPOCH_FRAMES - 1) * perFrame % 9973, 6 * EPOCH_FRAMES - 1), true);
  // Quiet epochs: the tables shrink back.
  for (let t = 6 * EPOCH_FRAMES; t < 9 * EPOCH_FRAMES; t++) v.advance(t);
  strictEqual(v.bytes < steady / 20, true, `${v.bytes} bytes after quiet epochs`);
});

/**
 * The rule spelled out on every alignment ever voted for (what an earlier table kept: votes, last voting frame
 * and state per alignment): a frame votes once per alignment; two votes, or one with a neighbour's, make a
 * candidate, once.
 */
class Model {
  readonly #a = new Map<string, { votes: number; last: number; queued: boolean }>();

  vote(slot: number, s: number, t: number, w: number): boolean {
    const k = `${slot}:${s}`;
    const e = this.#a.get(k) ?? { votes: 0, last: -1, queued: false };
    if (e.last !== t) {
      e.votes += w;
      e.last = t;
    }
    this.#a.set(k, e);
    if (e.queued) return false;
    if (e.votes >= 2 || this.has(slot, s - 1) || this.has(slot, s + 1)) e.queued = true;
    return e.queued;
  }

  has(slot: number, s: number): boolean {
    return this.#a.has(`${slot}:${s}`);
  }
}

Deno.test("vote table: the same candidates as the rule on every alignment ever voted for", () => {
  const r = xorshift32(5);
  for (const slots of [3, 40, 2000]) {
    const v = new VoteTable(16), m = new Model();
    let candidates = 0, checked = 0;
    // Runs of quiet frames move across epochs, so that both generations and their expiry are exercised.
    for (let t = 0; t < 20 * EPOCH_FRAMES; t += r() % 50 === 0 ? 1 + (r() % (2 * EPOCH_FRAMES)) : 1) {
      v.advance(t);
      const n = r() % 40;
      for (let k = 0; k < n; k++) {
        // Hits cluster on a few alignments (repeats, same-frame repeats and neighbours are what matter).
        const slot = r() % slots, s = t - (r() % 4 === 0 ? r() % MAX_LAG : (slot * 7 + (r() % 3)) % MAX_LAG);
        if (s < 0) continue;
        const w = r() % 5 === 0 ? 2 : 1;
        const got = v.vote(slot, s, t, w), want = m.vote(slot, s, t, w);
        strictEqual(got, want, `slots ${slots}, frame ${t}: vote for (${slot}, ${s})`);
        if (got) candidates++;
        checked++;
        // Within a generation and a lag: what a neighbour lookup can ask.
        const q = t - (r() % (MAX_LAG + 1));
        strictEqual(v.has(slot, q), m.has(slot, q), `slots ${slots}, frame ${t}: has (${slot}, ${q})`);
      }
    }
    strictEqual(candidates > checked / 20, true, `${candidates} candidates of ${checked} votes`);
  }
});

Deno.test("vote table: after a quiet epoch a busy one reaches its size in a few steps, not growing by half again and again", () => {
  const v = new VoteTable();
  const perFrame = 25;
  for (let t = 0; t < EPOCH_FRAMES; t++) {
    v.advance(t);
    if (t % 16 === 0) v.vote(t % 97, t, t, 1);
  }
  // ~3,200 alignments in an epoch whose table was sized for 8: from 64 places by half it takes 10 steps.
  const grows = v.grows;
  for (let t = EPOCH_FRAMES; t < 2 * EPOCH_FRAMES; t++) {
    v.advance(t);
    for (let k = 0; k < perFrame; k++) v.vote((t * perFrame + k) % 9973, t - (k % MAX_LAG), t, 1);
  }
  strictEqual(v.grows - grows <= 4, true, `${v.grows - grows} steps`);
  // Not oversized either (the epoch fills it to 30% at least), and every alignment kept.
  const n = EPOCH_FRAMES * perFrame;
  strictEqual(v.bytes <= 2 * (n / 0.3) * 4.5, true, `${v.bytes} bytes`);
  for (let t = EPOCH_FRAMES; t < 2 * EPOCH_FRAMES; t += 7) strictEqual(v.has((t * perFrame) % 9973, t), true);
});

Deno.test("vote table: a frame's votes at once make the candidates one vote at a time would, in order, over its hits", () => {
  const r = xorshift32(9);
  for (const slots of [3, 40, 2000]) {
    const v = new VoteTable(16), m = new Model();
    const slot = new Int32Array(64), pos = new Int32Array(64), dist = new Int32Array(64);
    let candidates = 0;
    for (let t = 0; t < 12 * EPOCH_FRAMES; t += r() % 50 === 0 ? 1 + (r() % (2 * EPOCH_FRAMES)) : 1) {
      v.advance(t);
      const n = r() % 40, want: number[] = [];
      for (let k = 0; k < n; k++) {
        slot[k] = r() % slots;
        pos[k] = Math.min(t, r() % 4 === 0 ? r() % MAX_LAG : (slot[k]! * 7 + (r() % 3)) % MAX_LAG);
        dist[k] = r() % 5;
        if (m.vote(slot[k]!, t - pos[k]!, t, dist[k]! <= 1 ? 2 : 1)) want.push(slot[k]!, pos[k]!);
      }
      const nc = v.voteFrame(slot, pos, dist, n, t);
      const got: number[] = [];
      for (let c = 0; c < nc; c++) got.push(slot[c]!, pos[c]!);
      strictEqual(got.join(), want.join(), `slots ${slots}, frame ${t}`);
      candidates += nc;
    }
    strictEqual(candidates > 100, true, `${candidates} candidates`);
  }
  const v = new VoteTable();
  v.advance(1000);
  strictEqual(v.voteFrame(new Int32Array(1), new Int32Array(1), new Int32Array(1), 0, 1000), 0);
  strictEqual(v.bytes <= 256, true, "a frame without hits holds nothing");
  throws(() => v.voteFrame(Int32Array.of(1), Int32Array.of(MAX_LAG), Int32Array.of(0), 1, 1000), RangeError);
});
