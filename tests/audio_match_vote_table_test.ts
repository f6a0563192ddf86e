// The forward search's vote table (audio/match/vote_table.ts): votes per alignment, once per target frame,
// kept across one epoch boundary and gone after two, through growth.
import { strictEqual } from "node:assert/strict";
import { EPOCH_FRAMES, NEW, QUEUED, VoteTable } from "../audio/match/vote_table.ts";

Deno.test("vote table: a frame votes once per alignment; states and neighbours' votes are kept", () => {
  const v = new VoteTable();
  const out = new Int32Array(2);
  v.advance(10, EPOCH_FRAMES);
  strictEqual(v.vote(3, 100, 10, 1, out), NEW);
  strictEqual(out[0], 1);
  v.vote(3, 100, 10, 2, out);
  strictEqual(out[0], 1, "the same target frame again adds nothing");
  v.vote(3, 100, 11, 2, out);
  strictEqual(out[0], 3);
  v.setState(out[1]!, QUEUED);
  strictEqual(v.vote(3, 100, 12, 1, out), QUEUED);
  strictEqual(v.votesAt(3, 100), 4);
  strictEqual(v.votesAt(3, 101), 0);
  strictEqual(v.votesAt(4, 100), 0, "another slot");
});

Deno.test("vote table: alignments live through the next epoch and expire after it", () => {
  const v = new VoteTable();
  const out = new Int32Array(2);
  v.advance(0, EPOCH_FRAMES);
  v.vote(1, 50, 0, 1, out);
  v.advance(EPOCH_FRAMES, EPOCH_FRAMES);
  strictEqual(v.votesAt(1, 50), 1, "the older generation still answers");
  v.vote(1, 50, EPOCH_FRAMES, 1, out);
  strictEqual(out[0], 2, "votes carried over into the current generation");
  v.advance(3 * EPOCH_FRAMES, EPOCH_FRAMES);
  strictEqual(v.votesAt(1, 50), 0);
});

Deno.test("vote table: growing keeps every entry", () => {
  const v = new VoteTable(16);
  const out = new Int32Array(2);
  v.advance(0, EPOCH_FRAMES);
  const before = v.bytes;
  for (let slot = 0; slot < 200; slot++) v.vote(slot, slot * 3, 0, 1 + (slot % 2), out);
  strictEqual(v.bytes > before, true);
  for (let slot = 0; slot < 200; slot++) {
    strictEqual(v.votesAt(slot, slot * 3), 1 + (slot % 2), `slot ${slot}`);
  }
});
