// Block-relative columns (audio/decode/block_column.ts): exact values through ring wraps, far values in the side
// map, and the ring growing before a block's first slot would rebase live slots.
import { ok, strictEqual, throws } from "node:assert/strict";
import { BLOCK, blockCapacity, BlockColumn, mustGrow } from "../audio/decode/block_column.ts";

Deno.test("block column: 16- and 32-bit offsets from each block's first value read back exactly", () => {
  const cap = 4 * BLOCK;
  const c32 = new BlockColumn(cap, 32), c16 = new BlockColumn(cap, 16);
  // Capture-time-like values (ns since a base, up to 2^53) with jitter, and ordinals with skips.
  let t = 2 ** 52, m = 1e12;
  for (let i = 0; i < 10 * cap; i++) {
    const slot = i % cap;
    t += 20_000_000 + ((i * 7919) % 1_000_000);
    m += 1 + (i % 3);
    c32.set(slot, t);
    c16.set(slot, m);
    strictEqual(c32.get(slot), t);
    strictEqual(c16.get(slot), m);
  }
  strictEqual(c32.bytes, cap * 4 + (cap / BLOCK) * 8);
  strictEqual(c16.bytes, cap * 2 + (cap / BLOCK) * 8);
});

Deno.test("block column: a value beyond the offset width (a long silence) is kept exactly, and forgotten when its slot is reused", () => {
  const c = new BlockColumn(BLOCK, 32);
  c.set(0, 1_000);
  c.set(1, 1_000 + 2 ** 31); // 2.1 s after the block's first capture time, in ns
  c.set(2, 1_000 - 2 ** 31); // the sentinel itself is not a value
  c.set(3, 5_000);
  strictEqual(c.get(1), 1_000 + 2 ** 31);
  strictEqual(c.get(2), 1_000 - 2 ** 31);
  strictEqual(c.get(3), 5_000);
  ok(c.bytes > BLOCK * 4 + 8, "the side map is counted");
  c.set(1, 2_000);
  c.set(2, 3_000);
  strictEqual(c.get(1), 2_000);
  strictEqual(c.bytes, BLOCK * 4 + 8);
  // An absolute 16-bit column (a message's native samples, negated for a gap).
  const a = new BlockColumn(BLOCK, 16, false);
  a.set(0, -160);
  a.set(1, 40_000);
  a.set(2, -32_768);
  strictEqual(a.get(0), -160);
  strictEqual(a.get(1), 40_000);
  strictEqual(a.get(2), -32_768);
  throws(() => a.shift(1), TypeError);
});

Deno.test("block column: shift moves every value, far ones too", () => {
  const c = new BlockColumn(2 * BLOCK, 32);
  for (let s = 0; s < 2 * BLOCK; s++) c.set(s, s === 5 ? 1e13 : s * 1000);
  c.shift(-7);
  for (let s = 0; s < 2 * BLOCK; s++) strictEqual(c.get(s), (s === 5 ? 1e13 : s * 1000) - 7);
});

Deno.test("block column: the ring grows before a block's first slot while the block's other slots are live", () => {
  // A block's first slot sets its base: with fewer than BLOCK slots free it could still hold live entries.
  strictEqual(mustGrow(0, 64 - BLOCK, 64), false);
  strictEqual(mustGrow(0, 64 - BLOCK + 1, 64), true);
  strictEqual(mustGrow(1, 63, 64), false, "inside a block only a full ring grows");
  strictEqual(mustGrow(1, 64, 64), true);
  strictEqual(blockCapacity(1), BLOCK);
  strictEqual(blockCapacity(BLOCK + 1), 2 * BLOCK);
  throws(() => new BlockColumn(BLOCK + 1, 32), RangeError);
});

Deno.test("block column: 8-bit offsets, and a column widens once more than 1/64 of its slots are far", () => {
  const cap = 16 * BLOCK;
  const c = new BlockColumn(cap, 8);
  // Message lengths of a steady stream: all equal to their block's first, 1 byte a slot.
  for (let s = 0; s < cap; s++) c.set(s, 160);
  strictEqual(c.width, 8);
  strictEqual(c.bytes, cap + (cap / BLOCK) * 8);
  // A few gaps (negated lengths) stay in the side map ...
  for (const s of [1, 50, 99, 130]) c.set(s, -4000);
  strictEqual(c.width, 8);
  strictEqual(c.get(50), -4000);
  // ... a chunked stream's lengths widen the column: exact, and the side map empties.
  const v = (s: number) => [1, 50, 99, 130].includes(s) ? -4000 : 80 + ((s * 7919) % 900);
  for (let s = 0; s < cap; s++) c.set(s, v(s));
  strictEqual(c.width, 16);
  for (let s = 0; s < cap; s++) strictEqual(c.get(s), v(s), `slot ${s}`);
  strictEqual(c.bytes, 2 * cap + (cap / BLOCK) * 8, "the gaps too fit 16 bits: no side map left");
  // Absolute columns widen the same way, up to 32 bits.
  const a = new BlockColumn(cap, 8, false);
  for (let s = 0; s < cap; s++) a.set(s, s * 100_000);
  strictEqual(a.width, 32);
  for (let s = 0; s < cap; s++) strictEqual(a.get(s), s * 100_000);
});

Deno.test("block column: 24-bit offsets (capture-time jitter in ns) read back exactly, signs and far values too", () => {
  const cap = 4 * BLOCK;
  const c = new BlockColumn(cap, 24);
  // ±4 ms around 1e15 ns: offsets from a block's first within ±8 ms, the widest 24 bits hold.
  const v = (s: number) => 1e15 + ((s * 2_654_435_761) % 8_000_000) - 4_000_000;
  for (let s = 0; s < cap; s++) c.set(s, v(s));
  strictEqual(c.width, 24);
  for (let s = 0; s < cap; s++) strictEqual(c.get(s), v(s), `slot ${s}`);
  strictEqual(c.bytes, cap * 3 + (cap / BLOCK) * 8);
  // One 20 ms off: in the side map, exact.
  c.set(5, 1e15 + 20_000_000);
  strictEqual(c.get(5), 1e15 + 20_000_000);
  strictEqual(c.width, 24);
  // A bursty stage: seconds off, more than 1/64 of the slots: 32 bits.
  for (let s = 0; s < cap; s++) c.set(s, 1e15 + (s % 3) * 1e9);
  strictEqual(c.width, 32);
  for (let s = 0; s < cap; s++) strictEqual(c.get(s), 1e15 + (s % 3) * 1e9);
});

Deno.test("block column: running sums of |value| along a block are the sums of get, at every width, far values too", () => {
  let seed = 7;
  const rnd = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 4294967296;
  for (const width of [8, 16, 24, 32] as const) {
    for (const relative of [true, false]) {
      const cap = 4 * BLOCK;
      const col = new BlockColumn(cap, width, relative);
      for (let i = 0; i < 3 * cap; i++) {
        // Lengths around a typical one, negative ones (gaps), and a few far beyond the width.
        const x = rnd();
        const v = x < 0.05 ? Math.round((rnd() - 0.5) * 2 ** 40) : Math.round((rnd() - 0.3) * 300);
        col.set(i % cap, v);
        if (i % 7 !== 6) continue;
        const b = Math.floor(rnd() * 4), s0 = b * BLOCK;
        const run = new Float64Array(BLOCK);
        run[0] = rnd() * 1000;
        const from = 1 + Math.floor(rnd() * (BLOCK - 1)), to = from + Math.floor(rnd() * (BLOCK - from));
        // From 1 first (as a reader starting a block), then the rest from `from`.
        col.runAbs(run, s0, 1, from - 1 < 1 ? 1 : from - 1);
        col.runAbs(run, s0, from, to);
        let want = run[0]!;
        for (let k = 1; k <= to; k++) {
          want += Math.abs(col.get(s0 + k - 1));
          strictEqual(run[k], want, `width ${width} relative ${relative} slot ${s0 + k - 1}`);
        }
      }
    }
  }
});
