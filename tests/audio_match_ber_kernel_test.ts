// The pre-check's WebAssembly kernel (audio/match/ber_kernel.ts): its sampled BER is score.ts sampledBer's to the
// last bit, the pre-check through it is precheck.ts's, the index keeps its slots in the kernel's memory (growing it
// keeps them) with ring slots no signature takes, and a matcher finds the same with the kernel as without it.
import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { MULAW_TO_LINEAR } from "../audio/decode/codecs.ts";
import { SampleRing } from "../audio/decode/sample_ring.ts";
import { Fingerprinter, FP_PARAMS, FrameStore } from "../audio/fingerprint/fingerprint.ts";
import { buildSignature, initSignatureHasher, signatureOf } from "../audio/fingerprint/signature.ts";
import { berKernel, disableBerKernel, RING_FRAMES, SLOTS_AT } from "../audio/match/ber_kernel.ts";
import { precheck, PRECHECK_AFTER, precheckKernel } from "../audio/match/precheck.ts";
import { sampledBer } from "../audio/match/score.ts";
import {
  FRAME_POSITIONS_AT,
  FRAME_VALUES_AT,
  FRAME_WORDS,
  frameSlotOf,
  RESERVED_RING_SLOTS,
  SignatureIndex,
} from "../audio/match/signature_index.ts";
import { TargetMatcher } from "../audio/match/target_matcher.ts";
import { DEFAULT_THRESHOLDS } from "../audio/match/thresholds.ts";
import type { Signature } from "../audio/types.ts";
import { xorshift32 } from "./support/rng.ts";

await initSignatureHasher();

function signature(r: () => number, k: number, length: number): Signature {
  const fp = Uint32Array.from({ length }, () => r());
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

/** Copies frames [from, store.end) of `store` into the ring slot `ring` of `frames`. */
function fillRing(frames: Uint32Array, ring: number, store: FrameStore, from: number): void {
  for (let t = Math.max(from, store.end - RING_FRAMES); t < store.end; t++) {
    const r = ring * FRAME_WORDS + 2 * (t & (RING_FRAMES - 1));
    frames[r] = store.bits[t & store.mask]!;
    frames[r + 1] = store.strong[t & store.mask]!;
  }
}

Deno.test("ber kernel: the sampled BER of score.ts, to the last bit (fractional steps, missing frames)", () => {
  const r = xorshift32(5);
  const k = berKernel(4 * 4 * FRAME_WORDS)!;
  ok(k, "WebAssembly available");
  const frames = new Uint32Array(k.memory.buffer, SLOTS_AT, 4 * FRAME_WORDS);
  const sig = signature(r, 1, 128);
  frames.set(frameSlotOf(sig), 0);
  const n = frames[0]!;
  const store = new FrameStore(1024);
  store.reset(150);
  for (let t = 150; t < 400; t++) store.push(r(), 0, -20, r() | r());
  fillRing(frames, 2, store, store.start);
  const pos = SLOTS_AT + 4 * FRAME_POSITIONS_AT, val = SLOTS_AT + 4 * FRAME_VALUES_AT;
  let compared = 0;
  for (const s of [140, 151, 200, 272, 300, 398]) {
    for (const avail of [0, 1, 7, 33, n]) {
      for (const step of [1, 1.03125, 2.0625, 4.125, avail / 8]) {
        if (!(step > 0)) continue;
        // The kernel reads the ring's frames only: those at least RING_FRAMES old are not there.
        if (Math.max(s - 1, store.start) < store.end - RING_FRAMES) continue;
        const want = sampledBer(store, frames, 0, avail, step, s);
        strictEqual(
          k.ber(pos, val, avail, step, s, SLOTS_AT + 4 * 2 * FRAME_WORDS, store.start, store.end),
          want,
        );
        compared++;
      }
    }
  }
  ok(compared > 40, `${compared}`);
});

Deno.test("ber kernel: the pre-check through it is precheck.ts's, as scheduled and at other limits", () => {
  const r = xorshift32(23);
  const index = new SignatureIndex({ maxActive: 100 });
  const ring = index.reserveRing();
  ok(ring >= 0 && index.kernel !== undefined);
  let compared = 0;
  for (let k = 0; k < 200; k++) {
    const length = [128, 128, 100, 64, 40, 9][k % 6]!;
    const sig = signature(r, k, length);
    index.add(sig);
    const at = index.slotOf(sig.id) * FRAME_WORDS;
    // Target frames near the signature's, so that every stage and the neighbours' scores are reached.
    const flip = 0.1 + (k % 5) * 0.1;
    const s = 300;
    const store = new FrameStore(1024);
    store.reset(k % 4 === 0 ? s + 3 : 200);
    for (let t = store.start; t <= s + Math.min(length, 126); t++) {
      const j = t - s;
      let v = j >= 0 && j < length ? sig.fingerprint[j]! : r();
      for (let b = 0; b < 32; b++) if (r() / 4294967296 < flip) v ^= 1 << b;
      store.push(v >>> 0, 0, -20, r() | r());
      fillRing(index.frames, ring, store, store.end - 1);
      if (t - s - 1 < Math.min(PRECHECK_AFTER, length) - 2) continue;
      const ringAt = SLOTS_AT + 4 * ring * FRAME_WORDS;
      const got = precheckKernel(index.kernel!.ber, index.frames, at, s, ringAt, store.start, store.end);
      strictEqual(got, precheck(store, index.frames, at, s), `sig ${k} (${length} frames), end ${store.end}`);
      compared++;
    }
  }
  ok(compared > 5000, `${compared}`);
});

Deno.test("ber kernel: the index's slots stay as written when its memory grows, and no signature takes a ring", () => {
  const r = xorshift32(9);
  const index = new SignatureIndex({ maxActive: 1002 });
  const ring = index.reserveRing();
  index.frames.fill(7, ring * FRAME_WORDS, (ring + 1) * FRAME_WORDS);
  const first = index.kernel!.memory.buffer;
  // More rings than reserved (RESERVED_RING_SLOTS): the signatures after them grow the memory.
  const others = Array.from({ length: RESERVED_RING_SLOTS + 100 }, () => index.reserveRing());
  const sigs: Signature[] = [];
  for (let k = 0; k < 1000; k++) {
    const sig = signature(r, k, 128);
    sigs.push(sig);
    index.add(sig);
  }
  strictEqual(first.byteLength, 0, "grown past the reserved slots: the first buffer was detached");
  ok(index.frames.byteOffset === SLOTS_AT && index.frames.buffer === index.kernel!.memory.buffer);
  for (const o of others) index.releaseRing(o);
  for (const sig of sigs) {
    const slot = index.slotOf(sig.id);
    ok(slot !== ring);
    deepStrictEqual(index.frames.slice(slot * FRAME_WORDS, (slot + 1) * FRAME_WORDS), frameSlotOf(sig));
  }
  ok(index.frames.subarray(ring * FRAME_WORDS, (ring + 1) * FRAME_WORDS).every((w) => w === 7));
  // Given back, the slot is a signature's again.
  index.releaseRing(ring);
  index.remove(sigs[0]!.id);
  const a = signature(r, 5000, 128), b = signature(r, 5001, 128);
  index.add(a);
  index.add(b);
  deepStrictEqual(new Set([index.slotOf(a.id), index.slotOf(b.id)]).has(ring), true);
});

Deno.test("ber kernel: the index's memory never grows (no buffer detached) within its most signatures and rings", () => {
  const r = xorshift32(11);
  const index = new SignatureIndex({ maxActive: 3000 });
  index.add(signature(r, 0, 128));
  const buffer = index.kernel!.memory.buffer;
  for (let i = 0; i < 200; i++) index.reserveRing();
  for (let k = 1; k < 4000; k++) index.add(signature(r, k, 128));
  ok(buffer.byteLength > 0, "the kernel's buffer was detached (its memory grew)");
  strictEqual(index.frames.buffer, buffer);
  strictEqual(index.size, 3000);
});

const FIXTURES = new URL("../fixtures/audio_fp/", import.meta.url);
const T0 = 1_000_000_000_000n;

function frames(name: string): FrameStore {
  const x = Float32Array.from(Deno.readFileSync(new URL(name, FIXTURES)), (b) => MULAW_TO_LINEAR[b]! / 32768);
  const ring = new SampleRing(1 << 17);
  const store = new FrameStore(2048);
  ring.write(0, x, 0);
  new Fingerprinter(ring, store).advance();
  return store;
}

/** Matches and counters of a stream fed frame by frame against signatures cut from it (noisy copies). */
function run(): { found: string[]; stats: unknown; kernel: boolean } {
  const store = frames("speech_8k.ul");
  const r = xorshift32(3);
  const index = new SignatureIndex();
  for (let n = 10; n + 128 < store.end; n += 23) {
    // Every third bit pattern flipped a little: the pre-checks' scores spread over their thresholds.
    const fp = store.bits.slice(n, n + 128).map((v) =>
      (v ^ (r() & r() & r() & (n % 3 === 0 ? r() : 0))) >>> 0
    );
    index.add(buildSignature({
      measurement: "m",
      node: "a",
      pod: "p",
      stream: `s${n}`,
      timeNs: T0,
      offsetMs: 0,
      fingerprint: fp,
      ids: {},
    }));
  }
  const live = new FrameStore(2048);
  const m = new TargetMatcher({
    index,
    store: live,
    rule: DEFAULT_THRESHOLDS,
    hop: FP_PARAMS.hop,
    timeOfSample: (k) => T0 + BigInt(k) * 125_000n,
    firstSampleAtOrAfter: (t) => Math.max(0, Number((t - T0) / 125_000n)),
  });
  const found: string[] = [];
  // Two frames a call (the checks of a call's first frame read its second), and a gap that restarts the ring
  // two thirds in (the fixture holds ~457 frames).
  const restartAt = Math.floor((store.end * 2) / 3) & ~1;
  let restarted = false;
  for (let n = 0; n < store.end; n += 2) {
    const to = Math.min(store.end, n + 2);
    if (n === restartAt) {
      live.reset(n);
      restarted = true;
    }
    for (let t = n; t < to; t++) {
      live.push(store.bits[t]!, store.weak[t]!, store.energy[t]!, store.strong[t]!);
    }
    for (const c of m.onFrames(n, to)) found.push(`${c.sig.id} ${c.frame} ${c.ber}`);
  }
  for (const c of m.onFrames(live.end, live.end, true)) found.push(`${c.sig.id} ${c.frame} ${c.ber}`);
  if (!restarted) throw new Error("the ring was never restarted");
  return { found, stats: m.stats(), kernel: index.kernel !== undefined };
}

Deno.test("ber kernel: a matcher finds and counts the same with the kernel as with the JS pre-check", () => {
  const on = run();
  disableBerKernel(true);
  let off;
  try {
    off = run();
  } finally {
    disableBerKernel(false);
  }
  strictEqual(on.kernel, true);
  strictEqual(off.kernel, false);
  deepStrictEqual(on.found, off.found);
  deepStrictEqual(on.stats, off.stats);
  ok(on.found.length > 10, `${on.found.length} matches`);
  ok((on.stats as { rejected: number }).rejected > 10, JSON.stringify(on.stats));
});
