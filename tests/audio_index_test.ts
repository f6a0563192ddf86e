import { deepStrictEqual, notStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { buildSignature, initSignatureHasher } from "../audio/fingerprint/signature.ts";
import { HitBuffer, MAX_BUCKET, popcount32, SignatureIndex } from "../audio/match/signature_index.ts";
import type { Signature } from "../audio/types.ts";

await initSignatureHasher();

function sig(seed: number, frames = 128, mask?: Uint8Array): Signature {
  let s = seed >>> 0;
  const fp = new Uint32Array(frames).map(() => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0));
  return buildSignature({
    measurement: "m",
    node: "n",
    pod: "p",
    stream: `s${seed}`,
    timeNs: BigInt(seed),
    offsetMs: 0,
    fingerprint: fp,
    mask,
    ids: {},
  });
}

/** All hits of `value` (both halves, exact halves only, within `maxDist`) as "slot:pos:dist" strings. */
function hits(index: SignatureIndex, value: number, maxDist = 4): string[] {
  const out = new HitBuffer(2);
  index.lookupHalf(0, value >>> 16, value, maxDist, out);
  index.lookupHalf(1, value & 0xffff, value, maxDist, out);
  const list: string[] = [];
  for (let i = 0; i < out.count; i++) list.push(`${out.slot[i]}:${out.pos[i]}:${out.dist[i]}`);
  return [...new Set(list)].sort();
}

Deno.test("popcount32 counts bits of any 32-bit value", () => {
  for (const [v, n] of [[0, 0], [1, 1], [0xffffffff, 32], [0x80000001, 2], [0x12345678, 13]] as const) {
    strictEqual(popcount32(v), n);
  }
});

Deno.test("a frame is found through either exact half within the Hamming distance, at its position", () => {
  const index = new SignatureIndex();
  const a = sig(1);
  index.add(a);
  strictEqual(index.size, 1);
  const slot = index.slotOf(a.id);
  const v = a.fingerprint[37]!;
  deepStrictEqual(hits(index, v), [`${slot}:37:0`]);
  // Three bits flipped in the low half: the high half still finds it, at distance 3.
  deepStrictEqual(hits(index, (v ^ 0b1011) >>> 0), [`${slot}:37:3`]);
  // Flips in both halves: no exact half, no hit.
  deepStrictEqual(hits(index, (v ^ 0x00010001) >>> 0), []);
  // Too far: one half exact but 6 bits off.
  deepStrictEqual(hits(index, (v ^ 0x3f) >>> 0), []);
});

Deno.test("masked frames are not indexed", () => {
  const mask = new Uint8Array(16);
  mask[0] = 0b0000_0100; // frame 2
  const index = new SignatureIndex();
  const a = sig(2, 128, mask);
  index.add(a);
  deepStrictEqual(hits(index, a.fingerprint[2]!), []);
  strictEqual(hits(index, a.fingerprint[3]!).length, 1);
  strictEqual(index.stats().entries, 2 * 127);
});

Deno.test("remove drops every entry and bumps the slot's generation; adding twice is a no-op", () => {
  const index = new SignatureIndex();
  const a = sig(3), b = sig(4);
  index.add(a);
  index.add(a);
  strictEqual(index.stats().duplicates, 1);
  index.add(b);
  const slot = index.slotOf(a.id);
  const gen = index.generation(slot);
  index.remove(a.id);
  strictEqual(index.has(a.id), false);
  strictEqual(index.signatureAt(slot), undefined);
  notStrictEqual(index.generation(slot), gen);
  for (const v of a.fingerprint) deepStrictEqual(hits(index, v), []);
  strictEqual(index.stats().entries, 2 * 128);
  index.remove("0000000000000000");
  strictEqual(index.size, 1);
});

Deno.test("the oldest signature is evicted beyond maxActive", () => {
  const index = new SignatureIndex({ maxActive: 3 });
  const sigs = [5, 6, 7, 8, 9].map((s) => sig(s));
  for (const s of sigs) index.add(s);
  strictEqual(index.size, 3);
  deepStrictEqual(sigs.map((s) => index.has(s.id)), [false, false, true, true, true]);
  strictEqual(index.stats().evicted, 2);
  throws(() => new SignatureIndex({ maxActive: 0 }), RangeError);
});

Deno.test("a bucket stops taking entries at MAX_BUCKET and lookups skip it", () => {
  const index = new SignatureIndex();
  // Every frame of every signature shares the high half 0xabcd.
  const make = (k: number) => {
    const fp = new Uint32Array(16).map((_, i) => (0xabcd0000 | ((k * 16 + i) & 0xffff)) >>> 0);
    return buildSignature({
      measurement: "m",
      node: "n",
      pod: "p",
      stream: `hot${k}`,
      timeNs: BigInt(k),
      offsetMs: 0,
      fingerprint: fp,
      ids: {},
    });
  };
  for (let k = 0; k < MAX_BUCKET / 16 + 2; k++) index.add(make(k));
  ok(index.stats().bucketFull > 0);
  const out = new HitBuffer();
  index.lookupHalf(0, 0xabcd, 0xabcd0001, 4, out);
  strictEqual(out.count, 0, "a full bucket is not scanned");
  // The low half still finds the frame.
  index.lookupHalf(1, 0x0001, 0xabcd0001, 4, out);
  strictEqual(out.count, 1);
});

Deno.test("blockLength gives each slot's block length, through growth of the slots and slot reuse", () => {
  const index = new SignatureIndex({ maxActive: 100 });
  const sigs = Array.from({ length: 40 }, (_, i) => sig(500 + i, 16 + i * 2));
  for (const s of sigs) index.add(s);
  for (const s of sigs) strictEqual(index.blockLength(index.slotOf(s.id)), s.fingerprint.length);
  const slot = index.slotOf(sigs[3]!.id);
  index.remove(sigs[3]!.id);
  const again = sig(900, 77);
  index.add(again);
  strictEqual(index.slotOf(again.id), slot, "the freed slot is reused");
  strictEqual(index.blockLength(slot), 77);
});
