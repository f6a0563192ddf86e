// The block score (audio/match/score.ts): one weighted-error formula behind the whole-block score, the per-frame
// terms of split scoring and the pre-checks' sampled score, which therefore agree to the last bit.
import { ok, strictEqual } from "node:assert/strict";
import { FrameStore } from "../audio/fingerprint/fingerprint.ts";
import {
  type BlockScore,
  frameErrors,
  sampledBer,
  scoreBlock,
  significance,
  WEAK_WEIGHT,
} from "../audio/match/score.ts";
import { frameSlotOf } from "../audio/match/signature_index.ts";
import { signatureOf } from "../audio/fingerprint/signature.ts";
import { xorshift32 } from "./support/rng.ts";

Deno.test("score: strong bits count fully, weak bits WEAK_WEIGHT", () => {
  const fp = Uint32Array.of(0, 0);
  const store = new FrameStore(64);
  // Frame 0: all bits strong, 3 errors. Frame 1: no bit strong, 10 errors.
  store.push(0b111, 0, -20, 0xffffffff);
  store.push(0b1111111111, 0, -20, 0);
  const out: BlockScore = { ber: 0, z: 0, used: 0 };
  scoreBlock(fp, undefined, store, 0, out);
  const e = 3 + WEAK_WEIGHT * 10, w = 32 + WEAK_WEIGHT * 32, w2 = 32 + WEAK_WEIGHT * WEAK_WEIGHT * 32;
  strictEqual(out.used, 2);
  ok(Math.abs(out.ber - e / w) < 1e-15, `${out.ber}`);
  ok(Math.abs(out.z - significance(e / w, w, w2)) < 1e-12);
});

Deno.test("score: whole-block, per-frame and sampled scores agree to the last bit", () => {
  const r = xorshift32(5);
  const n = 128;
  const fp = Uint32Array.from({ length: n }, () => r());
  // Every fifth frame masked.
  const mask = new Uint8Array(16);
  for (let j = 0; j < n; j += 5) mask[j >> 3]! |= 1 << (j & 7);
  const sig = signatureOf({
    id: "sig",
    measurement: "m",
    source: { node: "a", pod: "p", stream: "s", timeNs: 0n, offsetMs: 0 },
    fingerprint: fp,
    mask,
    ids: {},
  });
  const store = new FrameStore(512);
  // The store starts at frame 20 and ends at 230: alignments near the edges see part of the block.
  store.reset(20);
  for (let t = 20; t < 230; t++) store.push(r() & r(), 0, -20, r() | r());
  const slot = frameSlotOf(sig);
  const e = new Float64Array(n), w = new Float64Array(n), w2 = new Float64Array(n);
  const out: BlockScore = { ber: 0, z: 0, used: 0 };
  for (const s of [0, 20, 50, 101, 102, 150]) {
    scoreBlock(fp, mask, store, s, out);
    frameErrors(fp, mask, store, s, e, w, w2);
    let se = 0, sw = 0, sw2 = 0, used = 0;
    for (let j = 0; j < n; j++) {
      if (w[j]! > 0) used++;
      se += e[j]!;
      sw += w[j]!;
      sw2 += w2[j]!;
    }
    strictEqual(out.used, used, `used at ${s}`);
    strictEqual(out.ber, se / sw, `ber at ${s}`);
    strictEqual(out.z, significance(se / sw, sw, sw2), `z at ${s}`);
    strictEqual(sampledBer(store, slot, 0, slot[0]!, 1, s), out.ber, `sampled at ${s}`);
  }
});
