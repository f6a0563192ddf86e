// The forward search's vote table (audio/match/vote_table.ts): votes per alignment, once per target frame,
// kept across one epoch boundary and gone after two, through growth.
import { strictEqual, throws } from "node:assert/strict";
import { EPOCH_FRAMES, MAX_LAG, NEW, QUEUED, VoteTable } from "../audio/match/vote_table.ts";

Deno.test("vote table: a frame votes once per alignment; states and neighbours' votes are kept", () => {
  const v = new VoteTable();
  const out = new Int32Array(2);
  v.advance(10, EPOCH_FRAMES);
  strictEqual(v.vote(3, 5, 10, 1, out), NEW);
  strictEqual(out[0], 1);
  v.vote(3, 5, 10, 2, out);
  strictEqual(out[0], 1, "the same target frame again adds nothing");
  v.vote(3, 5, 11, 2, out);
  strictEqual(out[0], 3);
  v.setState(out[1]!, QUEUED);
  strictEqual(v.vote(3, 5, 12, 1, out), QUEUED);
  strictEqual(v.votesAt(3, 5), 4);
  strictEqual(v.votesAt(3, 6), 0);
  strictEqual(v.votesAt(4, 5), 0, "another slot");
});

Deno.test("vote table: alignments live through the next epoch and expire after it", () => {
  const v = new VoteTable();
  const out = new Int32Array(2);
  v.advance(150, EPOCH_FRAMES);
  v.vote(1, 100, 150, 1, out);
  v.advance(EPOCH_FRAMES, EPOCH_FRAMES);
  strictEqual(v.votesAt(1, 100), 1, "the older generation still answers");
  v.vote(1, 100, EPOCH_FRAMES, 1, out);
  strictEqual(out[0], 2, "votes carried over into the current generation");
  v.advance(3 * EPOCH_FRAMES, EPOCH_FRAMES);
  strictEqual(v.votesAt(1, 100), 0);
});

Deno.test("vote table: a slot's live alignments stay apart across two epochs and a block's lag", () => {
  // Keys keep only the low 9 bits of s: two live alignments of a slot 256 frames apart (possible across an
  // epoch boundary) must not share them, as they would with 8.
  const v = new VoteTable();
  const out = new Int32Array(2);
  v.advance(EPOCH_FRAMES, EPOCH_FRAMES);
  v.vote(7, EPOCH_FRAMES + 1 - MAX_LAG, EPOCH_FRAMES, 1, out);
  const t = 2 * EPOCH_FRAMES + 80, s = EPOCH_FRAMES + 1 - MAX_LAG + 256;
  v.advance(t, EPOCH_FRAMES);
  v.vote(7, s, t, 2, out);
  strictEqual(out[0], 2, "a new alignment, not the old one's votes plus these");
  strictEqual(v.votesAt(7, EPOCH_FRAMES + 1 - MAX_LAG), 1);
  strictEqual(v.votesAt(7, s), 2);
  // The same low bits again only once the old alignment has expired.
  const far = EPOCH_FRAMES + 1 - MAX_LAG + 512;
  v.advance(far, EPOCH_FRAMES);
  v.vote(7, far, far, 1, out);
  strictEqual(out[0], 1);
  strictEqual(v.votesAt(7, EPOCH_FRAMES + 1 - MAX_LAG), 0);
});

Deno.test("vote table: votes outside a block's lag and epochs too long for the keys are refused", () => {
  const v = new VoteTable();
  const out = new Int32Array(2);
  v.advance(1000, EPOCH_FRAMES);
  throws(() => v.vote(1, 1000 - MAX_LAG, 1000, 1, out), RangeError);
  throws(() => v.vote(1, 1001, 1000, 1, out), RangeError);
  throws(() => new VoteTable().advance(0, 512), RangeError);
});

Deno.test("vote table: growing keeps every entry", () => {
  const v = new VoteTable(16);
  const out = new Int32Array(2);
  v.advance(200, EPOCH_FRAMES);
  const before = v.bytes;
  for (let slot = 0; slot < 200; slot++) v.vote(slot, 200 - (slot % MAX_LAG), 200, 1 + (slot % 2), out);
  strictEqual(v.bytes > before, true);
  for (let slot = 0; slot < 200; slot++) {
    strictEqual(v.votesAt(slot, 200 - (slot % MAX_LAG)), 1 + (slot % 2), `slot ${slot}`);
  }
});

Deno.test("vote table: nothing is held until the first vote", () => {
  const v = new VoteTable();
  for (let t = 0; t < 5 * EPOCH_FRAMES; t++) v.advance(t, EPOCH_FRAMES);
  strictEqual(v.bytes, 0);
  strictEqual(v.votesAt(1, 2), 0);
  const out = new Int32Array(2);
  v.vote(1, 5 * EPOCH_FRAMES - 3, 5 * EPOCH_FRAMES - 1, 1, out);
  strictEqual(v.bytes > 0, true);
});

Deno.test("vote table: each epoch's table is sized for the alignments the epoch before had", () => {
  const v = new VoteTable();
  const out = new Int32Array(2);
  // Epochs of 4,000 new alignments each (10,000 active signatures' worth), then quiet ones.
  const busy = (e: number) => {
    for (let t = e * EPOCH_FRAMES; t < (e + 1) * EPOCH_FRAMES; t++) {
      v.advance(t, EPOCH_FRAMES);
      for (let k = 0; k < 25; k++) v.vote((t * 25 + k) % 9973, t - (k % MAX_LAG), t, 1, out);
    }
  };
  for (let e = 0; e < 6; e++) busy(e);
  // Two generations of ~4,000 alignments at 45–60% load: ~130 KB. Doubling tables held up to 2.9x that.
  const steady = v.bytes;
  strictEqual(steady <= 2 * (4000 / 0.45) * 8 + 8192, true, `${steady} bytes`);
  strictEqual(steady >= 2 * 4000 * 8, true);
  // Votes survive into the next epoch whatever the table's size.
  v.advance(6 * EPOCH_FRAMES, EPOCH_FRAMES);
  strictEqual(v.votesAt((6 * EPOCH_FRAMES - 1) * 25 % 9973, 6 * EPOCH_FRAMES - 1), 1);
  // Quiet epochs: the tables shrink back.
  for (let t = 6 * EPOCH_FRAMES; t < 9 * EPOCH_FRAMES; t++) v.advance(t, EPOCH_FRAMES);
  strictEqual(v.bytes < steady / 20, true, `${v.bytes} bytes after quiet epochs`);
});
