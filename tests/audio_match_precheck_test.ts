// The pre-check (audio/match/precheck.ts): as scheduled (the block's first min(64, length) frames there) it reads
// the slot's own copy of its stages' frames (signature_index.ts), and scores exactly what the stages over the
// whole slot score, to the last bit; at any other limit it reads the whole slot.
import { strictEqual } from "node:assert/strict";
import { FrameStore } from "../audio/fingerprint/fingerprint.ts";
import { precheck, PRECHECK_AFTER, PRECHECK_BER, PRECHECK_FRAMES } from "../audio/match/precheck.ts";
import { sampledBer } from "../audio/match/score.ts";
import {
  FRAME_SAMPLE_HEAD_AT,
  FRAME_WORDS,
  framesBelow,
  frameSlotOf,
  SignatureIndex,
} from "../audio/match/signature_index.ts";
import type { Signature } from "../audio/types.ts";
import { signatureOf } from "../audio/fingerprint/signature.ts";
import { xorshift32 } from "./support/rng.ts";

/** The pre-check over the whole slot (the stages' frames picked from the rank, positions and values). */
function wholeSlot(store: FrameStore, frames: Uint32Array, at: number, s: number): number {
  const avail = framesBelow(frames, at, store.end - s - 1);
  const step = Math.max(1, avail / PRECHECK_FRAMES);
  let best = sampledBer(store, frames, at, avail, step * 4, s);
  if (best > PRECHECK_BER + 0.14) return best;
  best = sampledBer(store, frames, at, avail, step * 2, s);
  if (best > PRECHECK_BER + 0.1) return best;
  best = sampledBer(store, frames, at, avail, step, s);
  if (best > PRECHECK_BER && best <= PRECHECK_BER + 0.08) {
    best = Math.min(
      best,
      sampledBer(store, frames, at, avail, step, s - 1),
      sampledBer(store, frames, at, avail, step, s + 1),
    );
  }
  return best;
}

function signature(r: () => number, k: number, length: number): Signature {
  const fp = Uint32Array.from({ length }, () => r());
  // Masks of every density, from none to nearly all.
  const mask = new Uint8Array(16);
  const every = 1 + (k % 7);
  for (let j = 0; j < length; j++) if (k % 3 !== 0 && r() % every === 0) mask[j >> 3]! |= 1 << (j & 7);
  return signatureOf({
    id: `sig${k}`,
    measurement: "m",
    source: { node: "a", pod: "p", stream: "s", timeNs: 0n, offsetMs: 0 },
    fingerprint: fp,
    mask,
    ids: {},
  });
}

Deno.test("pre-check: the slot's copy of its stages' frames scores as the whole slot, to the last bit", () => {
  const r = xorshift32(23);
  const index = new SignatureIndex({ maxActive: 100 });
  let scheduled = 0, close = 0;
  for (let k = 0; k < 300; k++) {
    const length = [128, 128, 100, 64, 40, 9][k % 6]!;
    const sig = signature(r, k, length);
    index.add(sig);
    const at = index.slotOf(sig.id) * FRAME_WORDS;
    const limit = Math.min(PRECHECK_AFTER, length);
    strictEqual((index.frames[at + FRAME_SAMPLE_HEAD_AT]! >>> 8) & 255, limit);
    // Target frames near the signature's (every bit off with a chance from 0.1 to 0.5), so that every stage
    // and the neighbours' scores are reached; the store starts late for some, so that frames are missing.
    const flip = 0.1 + (k % 5) * 0.1;
    const s = 300;
    const store = new FrameStore(1024);
    store.reset(k % 4 === 0 ? s + 3 : 200);
    for (let t = store.start; t <= s + limit; t++) {
      const j = t - s;
      let v = j >= 0 && j < length ? sig.fingerprint[j]! : r();
      for (let b = 0; b < 32; b++) if (r() / 4294967296 < flip) v ^= 1 << b;
      store.push(v >>> 0, 0, -20, r() | r());
      // As scheduled (end − s − 1 = limit), and a frame earlier and later (the whole slot is read).
      if (t - s - 1 >= limit - 2) {
        for (const f of [index.frames, frameSlotOf(sig)]) {
          const fat = f === index.frames ? at : 0;
          const got = precheck(store, f, fat, s), want = wholeSlot(store, f, fat, s);
          strictEqual(got, want, `sig ${k} (${length} frames), end ${store.end}`);
        }
        if (store.end - s - 1 === limit) {
          scheduled++;
          const b = wholeSlot(store, index.frames, at, s);
          if (b > PRECHECK_BER && b <= PRECHECK_BER + 0.08) close++;
        }
      }
    }
  }
  strictEqual(scheduled, 300);
  strictEqual(close > 0, true, "close calls (the neighbours' scores) reached");
});
