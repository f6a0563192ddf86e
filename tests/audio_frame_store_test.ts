// The frame store's columns (audio/fingerprint/fingerprint.ts FrameStore): 14 bytes a frame, the weak-bit indices
// in 16 bits.
import { strictEqual } from "node:assert/strict";
import { FrameStore, subFingerprint, weakMask } from "../audio/fingerprint/fingerprint.ts";

Deno.test("frame store: 14 bytes a frame (weak-bit indices in 16 bits: two 4-bit indices per half)", () => {
  const store = new FrameStore(2027); // the target's 30 s lookback and a block
  strictEqual(store.capacity, 2048);
  strictEqual(store.bytes, 2048 * 14, "bits, strong and energy 4 bytes each, weak 2 (it was 4)");
});

Deno.test("frame store: every pair of weak bits per half survives the store and reads back through weakMask", () => {
  const store = new FrameStore(64);
  const res = new Uint32Array(3);
  const prev = new Float64Array(33);
  const cur = new Float64Array(33);
  for (let h = 0; h < 16; h++) {
    for (let l = 16; l < 32; l++) {
      // |d| 10 + m everywhere but two small ones per half: h and its neighbour, l and its neighbour.
      const h2 = (h + 1) % 16, l2 = 16 + ((l - 15) % 16);
      const d = Array.from({ length: 32 }, (_, m) => 10 + m);
      d[h] = 0.1, d[h2] = 0.2, d[l] = 0.3, d[l2] = 0.4;
      for (let m = 31; m >= 0; m--) cur[m] = cur[m + 1]! + d[m]!;
      subFingerprint(cur, prev, res, new Float64Array(32), 1);
      store.push(res[0]!, res[1]!, 0, res[2]!);
      const w = store.weak[(store.end - 1) & store.mask]!;
      strictEqual(w, res[1]!, "the store holds the whole packing");
      strictEqual(weakMask(w, 0), (1 << (31 - h)) >>> 0);
      strictEqual(weakMask(w, 1), (1 << (31 - h2)) >>> 0);
      strictEqual(weakMask(w, 2), (1 << (31 - l)) >>> 0);
      strictEqual(weakMask(w, 3), (1 << (31 - l2)) >>> 0);
    }
  }
});
