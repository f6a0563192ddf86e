import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { buildSignature, initSignatureHasher, isMasked } from "../audio/fingerprint/signature.ts";
import {
  FRAME_VALUES_AT,
  FRAME_WORDS,
  framePosition,
  framesBelow,
  HitBuffer,
  MAX_BUCKET,
  popcount32,
  SignatureIndex,
  writeFrameSlot,
} from "../audio/match/signature_index.ts";
import type { Signature } from "../audio/types.ts";
import { xorshift32 } from "./support/rng.ts";

await initSignatureHasher();

/**
 * Reference model of the index's buckets: per half-value a list of (value, slot, pos) in insertion order,
 * removal by swapping the last entry in, no entries beyond MAX_BUCKET, and lookups skip full buckets. The index
 * keeps its buckets in one pool that it reallocates and compacts; what a lookup reports, and in which order,
 * must not depend on that.
 */
class Model {
  readonly tables = [
    new Map<number, [number, number, number][]>(),
    new Map<number, [number, number, number][]>(),
  ];

  add(slot: number, sig: Signature): void {
    sig.fingerprint.forEach((v, j) => {
      if (isMasked(sig.mask, j)) return;
      for (const half of [0, 1] as const) {
        const key = half === 0 ? v >>> 16 : v & 0xffff;
        const b = this.tables[half]!.get(key) ?? [];
        if (b.length < MAX_BUCKET) b.push([v, slot, j]);
        this.tables[half]!.set(key, b);
      }
    });
  }

  remove(slot: number, sig: Signature): void {
    sig.fingerprint.forEach((v, j) => {
      if (isMasked(sig.mask, j)) return;
      for (const half of [0, 1] as const) {
        const b = this.tables[half]!.get(half === 0 ? v >>> 16 : v & 0xffff) ?? [];
        const i = b.findIndex(([, s, p]) => s === slot && p === j);
        if (i < 0) continue;
        b[i] = b[b.length - 1]!;
        b.pop();
      }
    });
  }

  lookup(half: 0 | 1, key: number, query: number, maxDist: number): string[] {
    const b = this.tables[half]!.get(key) ?? [];
    if (b.length >= MAX_BUCKET) return [];
    return b.filter(([v]) => popcount32((v ^ query) >>> 0) <= maxDist).map(([v, s, p]) =>
      `${s}:${p}:${popcount32((v ^ query) >>> 0)}`
    );
  }
}

/** A signature whose values share few high halves, so buckets grow, move and fill up. */
function sig(r: () => number, k: number): Signature {
  const fp = new Uint32Array(128).map(() => ((r() % 100) << 16 | (r() & 0xffff)) >>> 0);
  const mask = new Uint8Array(16).map(() => r() & r() & 0xff);
  return buildSignature({
    measurement: "m",
    node: "n",
    pod: "p",
    stream: `s${k}`,
    timeNs: BigInt(k),
    offsetMs: 0,
    fingerprint: fp,
    mask,
    ids: {},
  });
}

Deno.test("lookups equal a per-bucket reference model through growth, compaction, removal and eviction", () => {
  const r = xorshift32(5);
  const index = new SignatureIndex({ maxActive: 300 });
  const model = new Model();
  const live = new Map<string, Signature>();
  const slotOfId = new Map<string, number>();
  const all: Signature[] = [];
  for (let k = 0; k < 900; k++) {
    const s = sig(r, k);
    all.push(s);
    // Eviction takes the oldest: mirror it in the model before adding.
    if (live.size >= 300) {
      const oldest = [...live.values()][0]!;
      model.remove(slotOfId.get(oldest.id)!, oldest);
      live.delete(oldest.id);
    }
    index.add(s);
    const slot = index.slotOf(s.id);
    model.add(slot, s);
    live.set(s.id, s);
    slotOfId.set(s.id, slot);
    if (k % 7 === 3) {
      const victim = all[Math.floor(r() % all.length)]!;
      if (live.has(victim.id)) {
        model.remove(slotOfId.get(victim.id)!, victim);
        index.remove(victim.id);
        live.delete(victim.id);
      }
    }
    if (k % 50 === 49) {
      for (let q = 0; q < 200; q++) {
        const any = all[Math.floor(r() % all.length)]!;
        const query = (any.fingerprint[r() & 127]! ^ (1 << (r() & 31)) ^ (1 << (r() & 31))) >>> 0;
        for (const half of [0, 1] as const) {
          // The query's own half, or (as a probe of its weak bits) that half with a bit toggled: the index keeps
          // only the other half of each entry, and must add the key's own distance from the query.
          const own = half === 0 ? query >>> 16 : query & 0xffff;
          const key = q % 2 === 0 ? own : own ^ (1 << (q & 15));
          const out = new HitBuffer(2);
          index.lookupHalf(half, key, query, 4, out);
          const got: string[] = [];
          for (let i = 0; i < out.count; i++) got.push(`${out.slot[i]}:${out.pos[i]}:${out.dist[i]}`);
          deepStrictEqual(got, model.lookup(half, key, query, 4));
        }
      }
    }
  }
  strictEqual(index.size, live.size);
  // Some buckets filled up (entries refused, lookups skipped) along the way.
  strictEqual(index.stats().bucketFull > 0, true);
});

Deno.test("frames holds each active slot's unmasked positions and values in order", () => {
  const r = xorshift32(9);
  const index = new SignatureIndex({ maxActive: 50 });
  for (let k = 0; k < 80; k++) {
    const s = sig(r, k);
    index.add(s);
    const at = index.slotOf(s.id) * FRAME_WORDS;
    const used = [...index.usedFrames(index.slotOf(s.id))];
    const want: number[] = [];
    for (let j = 0; j < s.fingerprint.length; j++) if (!isMasked(s.mask, j)) want.push(j);
    deepStrictEqual(used, want);
    const f = index.frames;
    strictEqual(f[at], used.length);
    used.forEach((j, x) => {
      strictEqual(framePosition(f, at, x), j);
      strictEqual(f[at + FRAME_VALUES_AT + x], s.fingerprint[j]);
    });
  }
});

Deno.test("frames ranks count the unmasked positions below every limit (framesBelow), as writeFrameSlot lays out", () => {
  const r = xorshift32(13);
  const index = new SignatureIndex({ maxActive: 40 });
  for (let k = 0; k < 60; k++) {
    const s = sig(r, k);
    index.add(s);
    const slot = index.slotOf(s.id);
    const used = [...index.usedFrames(slot)];
    const own = new Uint32Array(FRAME_WORDS);
    writeFrameSlot(own, 0, s.fingerprint, used);
    deepStrictEqual(own, index.frames.slice(slot * FRAME_WORDS, (slot + 1) * FRAME_WORDS));
    for (let limit = -3; limit <= 140; limit++) {
      const want = used.filter((j) => j < limit).length;
      strictEqual(framesBelow(index.frames, slot * FRAME_WORDS, limit), want, `sig ${k} limit ${limit}`);
      strictEqual(framesBelow(own, 0, limit), want);
    }
  }
  // Edge layouts: nothing unmasked, and every position unmasked.
  const all = Array.from({ length: 128 }, (_, j) => j);
  for (const used of [[], all, [0], [127]]) {
    const f = new Uint32Array(FRAME_WORDS);
    writeFrameSlot(f, 0, new Uint32Array(128).fill(7), used);
    for (let limit = -1; limit <= 129; limit++) {
      strictEqual(framesBelow(f, 0, limit), used.filter((j) => j < limit).length, `${used.length} ${limit}`);
    }
  }
});

Deno.test("lookupProbes reports the hits of one lookupHalf per probe, in the same order", () => {
  const r = xorshift32(17);
  const index = new SignatureIndex({ maxActive: 400 });
  const all: Signature[] = [];
  for (let k = 0; k < 500; k++) {
    const s = sig(r, k);
    all.push(s);
    index.add(s);
  }
  const probes = new Int32Array(2 * 8);
  let total = 0;
  for (let q = 0; q < 300; q++) {
    const any = all[Math.floor(r() % all.length)]!;
    const query = (any.fingerprint[r() & 127]! ^ (1 << (r() & 31))) >>> 0;
    const count = 1 + (r() % 8);
    for (let p = 0; p < count; p++) {
      probes[2 * p] = r() & 1;
      // Mostly the query's own halves with a bit toggled; sometimes an empty or absent key.
      const key = probes[2 * p] === 0 ? query >>> 16 : query & 0xffff;
      probes[2 * p + 1] = p === 0 ? key : r() % 5 === 0 ? r() & 0xffff : key ^ (1 << (r() & 15));
    }
    const want = new HitBuffer(2);
    for (let p = 0; p < count; p++) {
      index.lookupHalf(probes[2 * p] as 0 | 1, probes[2 * p + 1]!, query, 4, want);
    }
    const got = new HitBuffer(2);
    index.lookupProbes(probes, count, query, 4, got);
    strictEqual(got.count, want.count);
    total += got.count;
    deepStrictEqual(got.slot.subarray(0, got.count), want.slot.subarray(0, want.count));
    deepStrictEqual(got.pos.subarray(0, got.count), want.pos.subarray(0, want.count));
    deepStrictEqual(got.dist.subarray(0, got.count), want.dist.subarray(0, want.count));
  }
  // Hits did happen, across several buckets per call (full buckets of the high halves are skipped).
  strictEqual(total > 300, true, `${total} hits`);
});
