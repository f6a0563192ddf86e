// The recent frames of a measurement's target streams (audio/match/recent_frames.ts): the hits a signature's walk
// gives a stream are exactly those the scan of its frames meets; a stream whose frames since the signature's time
// are not all held (evicted, indexed since later, its grid restarted) or a walk over budget falls back to the
// scan; the ring grows when searches find their frames gone; frames are indexed only while signatures arrive
// often enough; the backward search finds the same matches either way and scans no stream the index covers.
import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { FrameStore } from "../audio/fingerprint/fingerprint.ts";
import { HIT_MAX_DIST, PROBE_WORDS, probes, SILENT_FRAME_DB, tablesOf } from "../audio/match/lookup.ts";
import { hitKey, RecentFrames, RecentOwner } from "../audio/match/recent_frames.ts";
import { popcount32, SignatureIndex } from "../audio/match/signature_index.ts";
import { CLOCK_SKEW_NS, DEFAULT_THRESHOLDS } from "../audio/match/thresholds.ts";
import { Timeline } from "../audio/decode/timeline.ts";
import { CaptureTimes } from "../audio/decode/capture_times.ts";
import { BOUND_SLACK_NS, TargetMatcher } from "../audio/match/target_matcher.ts";
import type { MatcherContext } from "../audio/match/types.ts";
import { initAudioEngine, TargetPipeline } from "../audio/pipeline.ts";
import type { Match, Signature } from "../audio/types.ts";
import { signatureOf } from "../audio/fingerprint/signature.ts";
import { xorshift32 } from "./support/rng.ts";
import { FORMAT, messages, speech, speechSignatures, T0 as SPEECH_T0 } from "./support/speech_signatures.ts";

const T0 = 1_000_000_000_000n;

function signature(fp: Uint32Array, id = "sig", mask?: Uint8Array): Signature {
  return signatureOf({
    id,
    measurement: "m",
    source: { node: "a", pod: "p", stream: "s", timeNs: T0, offsetMs: 0 },
    fingerprint: fp,
    mask,
    ids: {},
  });
}

/**
 * `n` target frames: random, some silent, and every 7th one a signature frame with 0-5 bits flipped (hits of all
 * distances, beyond the largest too), with random weak bits.
 */
function frames(sig: Uint32Array, n: number, seed: number): { v: number; weak: number; energy: number }[] {
  const r = xorshift32(seed);
  return Array.from({ length: n }, (_, t) => {
    let v = r();
    if (t % 7 === 3) {
      v = sig[r() % sig.length]!;
      for (let b = r() % 6; b > 0; b--) v = (v ^ (1 << (r() % 32))) >>> 0;
    }
    return { v, weak: r() & 0xffff, energy: t % 11 === 5 ? SILENT_FRAME_DB - 10 : -20 };
  });
}

/** The hits the backward scan meets in frames [from, end) of `store`, as hit keys, sorted. */
function scanHits(sig: Signature, store: FrameStore, from: number): number[] {
  const [hiT, loT] = tablesOf(sig);
  const pr = new Int32Array(PROBE_WORDS);
  const out: number[] = [];
  for (let t = from; t < store.end; t++) {
    const i = t & store.mask;
    if (store.energy[i]! < SILENT_FRAME_DB) continue;
    const v = store.bits[i]!;
    const np = probes(v, store.weak[i]!, pr);
    for (let p = 0; p < np; p++) {
      const table = pr[2 * p] === 0 ? hiT : loT;
      for (let j = table.first(pr[2 * p + 1]!); j !== -1; j = table.next[j]!) {
        const d = popcount32((sig.fingerprint[j]! ^ v) >>> 0);
        if (d <= HIT_MAX_DIST) out.push(hitKey(t, p, j, d));
      }
    }
  }
  return out.sort((a, b) => a - b);
}

/** Frames into a store and the recent frames under `owner`, as a matcher indexes them. */
function feed(
  recent: RecentFrames,
  owner: RecentOwner,
  store: FrameStore,
  list: { v: number; weak: number; energy: number }[],
): void {
  const pr = new Int32Array(PROBE_WORDS);
  for (const f of list) {
    const t = store.end;
    store.push(f.v, f.weak, f.energy, 0xffffffff);
    if (f.energy >= SILENT_FRAME_DB) recent.add(owner, t, f.v, pr, probes(f.v, f.weak, pr));
    owner.end = store.end;
  }
}

const from = (hits: readonly number[] | undefined, t: number) =>
  [...(hits ?? [])].filter((k) => k >= hitKey(t, 0, 255, 0)).sort((a, b) => a - b);

Deno.test("recent frames: a walk gives each stream exactly the hits its scan meets, from any frame on", () => {
  const r = xorshift32(5);
  const fp = Uint32Array.from({ length: 128 }, () => r());
  // Frames 20-29 masked: their hits do not count.
  const mask = new Uint8Array(16);
  mask[2] = 0xff;
  mask[3] = 0x3f;
  const sig = signature(fp, "sig", mask);
  const recent = new RecentFrames({ keepFrames: 4096, minSignatures: 0 });
  const streams = [0, 1, 2, 3].map(() => ({ owner: new RecentOwner(0), store: new FrameStore(2048) }));
  // Interleaved as live streams are.
  const lists = streams.map((_, k) => frames(fp, 900, 40 + k));
  for (let at = 0; at < 900; at += 30) {
    streams.forEach((s, k) => feed(recent, s.owner, s.store, lists[k]!.slice(at, at + 30)));
  }
  let total = 0;
  const starts = [900, 899, 880, 600, 450, 123, 0];
  for (const start of starts) {
    // A signature object of its own: a walk of its own, which goes back only as far as this start needs.
    const each = signature(fp, "sig", mask);
    for (const s of streams) {
      const want = scanHits(each, s.store, start);
      total += want.length;
      deepStrictEqual(from(recent.hitsOf(each, s.owner, start), start), want, `from ${start}`);
    }
  }
  ok(total > 100, `hits to compare: ${total}`);
  // One walk per signature, however many streams asked.
  strictEqual(recent.stats().walks, starts.length);
  for (const s of streams) recent.hitsOf(sig, s.owner, 0);
  strictEqual(recent.stats().walks, starts.length + 1);
  // A new frame starts a new walk (its hits count too).
  feed(recent, streams[0]!.owner, streams[0]!.store, [{ v: fp[60]!, weak: 0, energy: -20 }]);
  deepStrictEqual(
    from(recent.hitsOf(sig, streams[0]!.owner, 890), 890),
    scanHits(sig, streams[0]!.store, 890),
  );
  strictEqual(recent.stats().walks, starts.length + 2);
});

Deno.test("recent frames: frames gone from the ring, or indexed only since later, are scanned for", () => {
  const r = xorshift32(9);
  const fp = Uint32Array.from({ length: 128 }, () => r());
  const sig = signature(fp);
  // A ring that never grows: 1,024 frames.
  const recent = new RecentFrames({ keepFrames: 0, horizonFrames: 0, maxFrames: 1024, minSignatures: 0 });
  const owner = new RecentOwner(100);
  const store = new FrameStore(4096);
  store.reset(100);
  const list = frames(fp, 3000, 3);
  feed(recent, owner, store, list);
  ok(owner.evictedTo > 100, "frames left the ring");
  // Before the frames held (or before the owner's first), no answer: the scan decides.
  strictEqual(recent.hitsOf(sig, owner, owner.evictedTo), undefined);
  strictEqual(recent.hitsOf(sig, owner, 50), undefined);
  // From the first frame still held on, the same hits as the scan.
  const held = owner.evictedTo + 1;
  ok(scanHits(sig, store, 100).length > scanHits(sig, store, held).length, "hits in frames no longer held");
  deepStrictEqual(from(recent.hitsOf(sig, owner, held), held), scanHits(sig, store, held));
  strictEqual(recent.stats().capacity, 1024);
});

Deno.test("recent frames: the ring grows when a search finds frames within the horizon gone", () => {
  const r = xorshift32(13);
  const fp = Uint32Array.from({ length: 128 }, () => r());
  const sig = signature(fp);
  const recent = new RecentFrames({ keepFrames: 0, horizonFrames: 1500, minSignatures: 0 });
  const owner = new RecentOwner(0);
  const store = new FrameStore(4096);
  feed(recent, owner, store, frames(fp, 3000, 4));
  const cap = recent.stats().capacity;
  strictEqual(cap, 1024, "nothing asked, nothing kept beyond the least ring");
  // Beyond the horizon: scanned, no growth.
  ok(owner.end - (owner.evictedTo - 500) > 1500);
  strictEqual(recent.hitsOf(sig, owner, owner.evictedTo - 500), undefined);
  feed(recent, owner, store, frames(fp, 10, 5));
  strictEqual(recent.stats().capacity, cap);
  // Within it: scanned, and the ring grows at the next frame.
  ok(owner.end - owner.evictedTo <= 1500);
  strictEqual(recent.hitsOf(sig, owner, owner.evictedTo), undefined);
  feed(recent, owner, store, frames(fp, 10, 6));
  ok(recent.stats().capacity > cap);
  // Frames less than keepFrames old are never dropped either.
  const keep = new RecentFrames({ keepFrames: 2000, horizonFrames: 0, minSignatures: 0 });
  const o2 = new RecentOwner(0);
  feed(keep, o2, new FrameStore(4096), frames(fp, 3000, 4));
  ok(o2.evictedTo < o2.end - 2000, `evicted up to ${o2.evictedTo} of ${o2.end}`);
  ok(keep.stats().capacity > 1024);
});

Deno.test("recent frames: the last frames of a stream that stopped writing do not make the ring grow", () => {
  const r = xorshift32(15);
  const fp = Uint32Array.from({ length: 128 }, () => r());
  const recent = new RecentFrames({ keepFrames: 500, horizonFrames: 0, minSignatures: 0 });
  // A call that ends after 1,000 frames (its last 500 stay young by its own newest frame), one that goes on.
  const ended = new RecentOwner(0), going = new RecentOwner(0);
  feed(recent, ended, new FrameStore(2048), frames(fp, 1000, 1));
  const store = new FrameStore(8192);
  feed(recent, going, store, frames(fp, 6000, 2));
  ok(ended.evictedTo >= 990, `the ended call's frames left: up to ${ended.evictedTo}`);
  ok(going.end - going.evictedTo > 500, "the going call's last 500 kept");
  ok(recent.stats().capacity < 4096, `capacity ${recent.stats().capacity}`);
});

Deno.test("recent frames: a walk over its budget answers nothing (every stream is scanned)", () => {
  const r = xorshift32(17);
  const fp = Uint32Array.from({ length: 128 }, () => r());
  const sig = signature(fp);
  const recent = new RecentFrames({ walkBudget: 10, minSignatures: 0 });
  const owner = new RecentOwner(0);
  const store = new FrameStore(1024);
  feed(recent, owner, store, frames(fp, 600, 8));
  strictEqual(recent.hitsOf(sig, owner, 0), undefined);
  strictEqual(recent.stats().overBudget, 1);
});

function matcher(store: FrameStore, index: SignatureIndex, recent?: RecentFrames): TargetMatcher {
  return new TargetMatcher({
    index,
    ...(recent ? { recent } : {}),
    store,
    rule: DEFAULT_THRESHOLDS,
    hop: 128,
    timeOfSample: (k) => T0 + BigInt(k) * 125_000n,
    firstSampleAtOrAfter: () => 0,
  });
}

Deno.test("recent frames: a stream whose frame grid restarted is not answered from the frames before", () => {
  const r = xorshift32(21);
  const fp = Uint32Array.from({ length: 128 }, () => r());
  const sig = signature(fp);
  const index = new SignatureIndex();
  const recent = new RecentFrames({ minSignatures: 0 });
  const store = new FrameStore(1024);
  const m = matcher(store, index, recent);
  // The signature's block at frame 200.
  for (let t = 0; t < 500; t++) store.push(t >= 200 && t < 328 ? fp[t - 200]! : r(), 0, -20, 0xffffffff);
  m.onFrames(0, 500);
  // The grid restarts at frame 100 with other audio, silent at first: the frames indexed before must not answer.
  store.reset(100);
  for (let t = 100; t < 500; t++) store.push(r(), 0, t < 200 ? SILENT_FRAME_DB - 20 : -20, 0xffffffff);
  m.onFrames(100, 500);
  index.add(sig);
  deepStrictEqual(m.searchBackward(sig), []);
  strictEqual(m.stats().prechecked, 0);
  // Without the restart the block's alignment is checked, from the index.
  const store2 = new FrameStore(1024);
  const recent2 = new RecentFrames({ minSignatures: 0 });
  const index2 = new SignatureIndex();
  const m2 = matcher(store2, index2, recent2);
  for (let t = 0; t < 500; t++) store2.push(t >= 200 && t < 328 ? fp[t - 200]! : r(), 0, -20, 0xffffffff);
  m2.onFrames(0, 500);
  index2.add(sig);
  m2.searchBackward(sig);
  ok(m2.stats().prechecked > 0);
  strictEqual(recent2.stats().searched, 1);
});

Deno.test("recent frames: late signatures in many streams: as the scan finds them, no stream scanned", async () => {
  await initAudioEngine();
  const sigs = speechSignatures();
  ok(sigs.length >= 3);
  const run = (recent: RecentFrames) => {
    const index = new SignatureIndex();
    // Eight streams of the speech at different capture times: the signatures' instants fall in the first one.
    const pipes = Array.from({ length: 8 }, (_, k) =>
      new TargetPipeline({
        measurement: "m",
        stage: "s",
        node: "b",
        pod: "p/b",
        stream: `t${k}`,
        format: FORMAT,
        index,
        recent,
      }));
    // Fed side by side, as live streams are (a stream that stops writing loses its place in the ring).
    const msgs = pipes.map((_, k) =>
      messages(speech, SPEECH_T0 + 250_000_000n + BigInt(k) * 30_000_000_000n, 2 + k)
    );
    for (let i = 0; msgs.some((m) => i < m.length); i++) {
      pipes.forEach((tp, k) => {
        const msg = msgs[k]![i];
        if (msg) tp.push(msg);
      });
    }
    const out: Match[] = [];
    for (const s of sigs) {
      index.add(s);
      for (const tp of pipes) out.push(...tp.searchSignature(s));
    }
    return out;
  };
  // A ring that holds every frame, and one whose walks are always over budget (every stream scanned).
  const indexed = new RecentFrames({ keepFrames: 4096, minSignatures: 0 });
  const got = run(indexed);
  const scanned = new RecentFrames({ walkBudget: 0 });
  const want = run(scanned);
  ok(want.length > 0, "the scan finds the signatures");
  deepStrictEqual(got, want);
  strictEqual(indexed.stats().searched, 8 * sigs.length, "every search answered by the index");
  strictEqual(indexed.stats().walks, sigs.length, "one walk per signature");
  strictEqual(scanned.stats().searched, 0);
});

Deno.test("recent frames: many streams and no signature: indexed for the first window only, then the least ring, every search scans", () => {
  const r = xorshift32(31);
  const fp = Uint32Array.from({ length: 128 }, () => r());
  const recent = new RecentFrames();
  const streams = Array.from(
    { length: 8 },
    () => ({ owner: new RecentOwner(0), store: new FrameStore(4096) }),
  );
  const lists = streams.map((_, k) => frames(fp, 2000, 60 + k));
  for (let at = 0; at < 2000; at += 20) {
    streams.forEach((s, k) => feed(recent, s.owner, s.store, lists[k]!.slice(at, at + 20)));
  }
  const st = recent.stats();
  // Always indexing, the ring would have grown to keep 375 frames of each of the 8 streams (3,000 > 1,024); the
  // first window's frames (256 of each stream, less the silent ones) were indexed and let go.
  strictEqual(st.indexing, false);
  strictEqual(st.stops, 1);
  strictEqual(st.capacity, 1024);
  ok(st.frames > 0 && st.frames <= 8 * 260, `frames ${st.frames}`);
  // A signature arriving now: every stream is scanned, from any frame.
  for (const s of streams) strictEqual(recent.hitsOf(signature(fp), s.owner, 1990), undefined);
});

Deno.test("recent frames: indexing starts with a window of signatures and stops with a window of none", () => {
  const r = xorshift32(33);
  const fp = Uint32Array.from({ length: 128 }, () => r());
  const recent = new RecentFrames({ keepFrames: 1000 });
  const streams = Array.from(
    { length: 4 },
    () => ({ owner: new RecentOwner(0), store: new FrameStore(4096) }),
  );
  const lists = streams.map((_, k) => frames(fp, 3000, 70 + k));
  let at = 0;
  const step = (ask: boolean) => {
    streams.forEach((s, k) => feed(recent, s.owner, s.store, lists[k]!.slice(at, at + 16)));
    at += 16;
    // A signature every 16 frames (16 a window), searched from 100 frames back in every stream.
    if (!ask) return;
    const sig = signature(fp);
    for (const s of streams) {
      const got = recent.hitsOf(sig, s.owner, at - 100);
      if (got !== undefined) deepStrictEqual(from(got, at - 100), scanHits(sig, s.store, at - 100));
    }
  };
  // Indexed from the start (the first window of signatures keeps it so): the searches are answered by the index,
  // with the scan's hits.
  while (at < 240) step(true);
  strictEqual(recent.stats().indexing, true);
  ok(recent.stats().searched > 0);
  while (at < 1600) step(true);
  let st = recent.stats();
  strictEqual(st.indexing, true);
  ok(st.searched > 4 * 50, `searched ${st.searched}`);
  ok(st.capacity > 1024, `capacity ${st.capacity}`);
  // A window of no signature: the ring lets every frame go and shrinks; the next search scans.
  while (at < 2200) step(false);
  st = recent.stats();
  strictEqual(st.indexing, false);
  strictEqual(st.stops, 1);
  strictEqual(st.capacity, 1024);
  for (const s of streams) strictEqual(recent.hitsOf(signature(fp), s.owner, at - 300), undefined);
  // Signatures again: indexed again, only frames from then on answered.
  while (at < 3000) step(true);
  st = recent.stats();
  strictEqual(st.indexing, true);
  const sig = signature(fp);
  for (const s of streams) {
    strictEqual(recent.hitsOf(sig, s.owner, 2100), undefined);
    deepStrictEqual(from(recent.hitsOf(sig, s.owner, 2800), 2800), scanHits(sig, s.store, 2800));
  }
});

Deno.test("recent frames: streams that come and go hand their frames' owner ids on, each hit still its stream's", () => {
  const r = xorshift32(51);
  const fp = Uint32Array.from({ length: 128 }, () => r());
  // A ring of 1,024 frames that never grows: each generation's three streams (600 frames) push out the last's.
  const recent = new RecentFrames({ keepFrames: 0, horizonFrames: 0, maxFrames: 1024, minSignatures: 0 });
  for (let gen = 0; gen < 12; gen++) {
    const streams = [0, 1, 2].map(() => ({ owner: new RecentOwner(0, {}), store: new FrameStore(512) }));
    const lists = streams.map((_, k) => frames(fp, 200, 100 * gen + k));
    for (let at = 0; at < 200; at += 20) {
      streams.forEach((s, k) => feed(recent, s.owner, s.store, lists[k]!.slice(at, at + 20)));
    }
    const sig = signature(fp, `g${gen}`);
    for (const s of streams) {
      const want = scanHits(sig, s.store, 0);
      ok(want.length > 0);
      deepStrictEqual(from(recent.hitsOf(sig, s.owner, 0), 0), want, `generation ${gen}`);
    }
  }
  strictEqual(recent.stats().capacity, 1024);
});

Deno.test("recent frames: no hits from a frame on is known without the exact frame, as hitsOf would say", () => {
  const r = xorshift32(41);
  const fp = Uint32Array.from({ length: 128 }, () => r());
  const recent = new RecentFrames({ keepFrames: 0, horizonFrames: 0, maxFrames: 1024, minSignatures: 0 });
  const owner = new RecentOwner(0);
  const store = new FrameStore(4096);
  feed(recent, owner, store, frames(fp, 2000, 12));
  const held = owner.evictedTo + 1;
  // Hits from some frame on: not "none"; none after the last hit: "none", and hitsOf agrees.
  const all = scanHits(signature(fp), store, held);
  ok(all.length > 0);
  const last = Math.floor(all[all.length - 1]! / hitKey(1, 0, 255, 0));
  strictEqual(recent.noHitsFrom(signature(fp), owner, held), false);
  const sig = signature(fp);
  strictEqual(recent.noHitsFrom(sig, owner, last + 1), true);
  deepStrictEqual(from(recent.hitsOf(sig, owner, last + 1), last + 1), []);
  // Frames not all held: not known, and nothing counted (the exact search's hitsOf counts it).
  const before = recent.stats();
  strictEqual(recent.noHitsFrom(signature(fp), owner, held - 1), false);
  const after = recent.stats();
  strictEqual(after.uncovered, before.uncovered);
  strictEqual(after.searched, before.searched);
});

/** A matcher whose stream's time search is counted: frame f's messages captured at T0 + f × 16 ms. */
function countedMatcher(store: FrameStore, index: SignatureIndex, recent: RecentFrames, bound: boolean) {
  const calls = { exact: 0, bound: 0 };
  const exact = (t: bigint) => {
    calls.exact++;
    return Math.max(0, Number((t - T0) / 125_000n));
  };
  const m = matcher16(index, recent, store, {
    firstSampleAtOrAfter: exact,
    // A bound up to 20 frames early, as the last search's answer is.
    ...(bound
      ? {
        sampleAtOrBefore: (t: bigint) => {
          calls.bound++;
          return Math.max(0, Number((t - T0) / 125_000n) - 20 * 128);
        },
      }
      : {}),
  });
  return { m, calls };
}

/**
 * A matcher of 16 ms frames (hop 128) of a stream whose sample k is at T0 + k × 125 µs, finding samples by time
 * with `times`.
 */
function matcher16(
  index: SignatureIndex,
  recent: RecentFrames,
  store: FrameStore,
  times: Pick<MatcherContext, "firstSampleAtOrAfter" | "sampleAtOrBefore">,
): TargetMatcher {
  return new TargetMatcher({
    index,
    recent,
    store,
    rule: DEFAULT_THRESHOLDS,
    hop: 128,
    timeOfSample: (k) => T0 + BigInt(k) * 125_000n,
    ...times,
  });
}

Deno.test("backward search: a stream with no hit is done without its exact first frame, the same matches", () => {
  const r = xorshift32(43);
  const fps = [0, 1, 2].map(() => Uint32Array.from({ length: 128 }, () => r()));
  const run = (bound: boolean) => {
    const index = new SignatureIndex();
    const recent = new RecentFrames({ keepFrames: 0, horizonFrames: 0, maxFrames: 1024, minSignatures: 0 });
    // Stream 0 holds signature 0's block at frame 700, stream 1 random frames, stream 2 random frames until 400
    // (a call that ended). The ring holds ~500 frames of each stream.
    const streams = [0, 1, 2].map(() => {
      const store = new FrameStore(2048);
      return { store, ...countedMatcher(store, index, recent, bound) };
    });
    const rs = xorshift32(44);
    for (let at = 0; at < 1000; at += 10) {
      streams.forEach((s, k) => {
        if (k === 2 && at >= 400) return;
        for (let t = at; t < at + 10; t++) {
          s.store.push(k === 0 && t >= 700 && t < 828 ? fps[0]![t - 700]! : rs(), 0, -20, 0xffffffff);
        }
        s.m.onFrames(at, at + 10);
      });
    }
    const out: string[] = [];
    // Signature 0 (instant at frame 700 + the 2 s allowance), then others, one late.
    const at = (f: number) => T0 + BigInt(f) * 16_000_000n + 2_000_000_000n;
    const sigs = [signature(fps[0]!, "s0"), signature(fps[1]!, "s1"), signature(fps[2]!, "s2")];
    sigs[0] = { ...sigs[0]!, source: { ...sigs[0]!.source, timeNs: at(690) } };
    sigs[1] = { ...sigs[1]!, source: { ...sigs[1]!.source, timeNs: at(800) } };
    sigs[2] = { ...sigs[2]!, source: { ...sigs[2]!.source, timeNs: at(300) } };
    for (const sig of sigs) {
      index.add(sig);
      for (const s of streams) for (const m of s.m.searchBackward(sig)) out.push(`${sig.id} ${m.frame}`);
    }
    return { out, streams, recent };
  };
  const want = run(false), got = run(true);
  deepStrictEqual(got.out, want.out);
  ok(want.out.includes("s0 700"), want.out.join());
  deepStrictEqual(
    got.streams.map((s) => s.m.stats().prechecked),
    want.streams.map((s) => s.m.stats().prechecked),
  );
  // Stream 1 (no hits) was searched for its exact frame only for the late signature, whose frames left the ring
  // (scanned); stream 0 for its hit too; stream 2 only for the late one (no frame since the others' instants).
  strictEqual(got.streams[1]!.calls.exact, 1);
  strictEqual(got.streams[0]!.calls.exact, 2);
  strictEqual(got.streams[2]!.calls.exact, 1);
  strictEqual(got.recent.stats().uncovered, 3);
  strictEqual(want.streams[1]!.calls.exact, 3);
  strictEqual(got.recent.stats().searched, want.recent.stats().searched);
  strictEqual(got.recent.stats().uncovered, want.recent.stats().uncovered);
  // Frames looked up: counted from the bound for the streams with no hit (at most its slack more).
  const lookups = (x: typeof got) => x.streams.map((s) => s.m.stats().lookups);
  ok(lookups(got)[1]! >= lookups(want)[1]! && lookups(got)[1]! <= lookups(want)[1]! + 3 * 20);
});

Deno.test("backward search: a stream the walk found hits in is not bounded first, the same match", () => {
  const r = xorshift32(47);
  const fp = Uint32Array.from({ length: 128 }, () => r());
  const run = (order: number[]) => {
    const index = new SignatureIndex();
    const recent = new RecentFrames({ keepFrames: 0, horizonFrames: 0, maxFrames: 1024, minSignatures: 0 });
    // Stream 0 holds the block at frame 700, stream 1 random frames.
    const streams = [0, 1].map(() => {
      const store = new FrameStore(2048);
      return { store, ...countedMatcher(store, index, recent, true) };
    });
    const rs = xorshift32(48);
    for (let at = 0; at < 1000; at += 10) {
      streams.forEach((s, k) => {
        for (let t = at; t < at + 10; t++) {
          s.store.push(k === 0 && t >= 700 && t < 828 ? fp[t - 700]! : rs(), 0, -20, ~0);
        }
        s.m.onFrames(at, at + 10);
      });
    }
    const sig = signature(fp, "s0");
    const timed = { ...sig, source: { ...sig.source, timeNs: T0 + 690n * 16_000_000n + 2_000_000_000n } };
    index.add(timed);
    const out: string[] = [];
    for (const k of order) for (const m of streams[k]!.m.searchBackward(timed)) out.push(`${k} ${m.frame}`);
    return { out, calls: streams.map((s) => s.calls), stats: streams.map((s) => s.m.stats()) };
  };
  // Stream 1 first: its bound starts the walk, which finds stream 0's hits; stream 0 then takes its exact frame
  // alone. Stream 0 first: no walk yet, so its bound is asked.
  const late = run([1, 0]), early = run([0, 1]);
  deepStrictEqual(late.out, ["0 700"]);
  deepStrictEqual(early.out, late.out);
  deepStrictEqual(late.calls[0], { exact: 1, bound: 0 });
  deepStrictEqual(early.calls[0], { exact: 1, bound: 1 });
  deepStrictEqual(late.calls[1], { exact: 0, bound: 1 });
  deepStrictEqual(late.stats, early.stats);
});

Deno.test("backward search bound: the last search's answer bounds a walk only for a time up to BOUND_SLACK_NS later", () => {
  // One stream whose time searches are CaptureTimes' over its timeline, as a pipeline's: 20 ms messages captured
  // at T0 + 20 ms × message, so frame f starts at T0 + 16 ms × f. Its frames are random with the high byte of each
  // half clear, the signatures' frames with it set: no hit anywhere, so each search is over at its bound.
  const tl = new Timeline(8000, { lookbackSamples: 200_000 });
  const times = new CaptureTimes(tl);
  let reads = 0;
  const read = tl.entryTimeOffset.bind(tl);
  tl.entryTimeOffset = (e: number) => (reads++, read(e));
  for (let i = 0; i < 800; i++) {
    tl.append(i, T0 + BigInt(i) * 20_000_000n, 160);
    times.push(T0 + BigInt(i) * 20_000_000n, i * 160);
  }
  const index = new SignatureIndex();
  const recent = new RecentFrames({ keepFrames: 0, horizonFrames: 0, maxFrames: 1024, minSignatures: 0 });
  const store = new FrameStore(2048);
  const m = matcher16(index, recent, store, {
    firstSampleAtOrAfter: (t) => times.firstSampleAtOrAfter(t, tl.length),
    sampleAtOrBefore: (t, slackNs) => times.sampleAtOrBefore(t, tl.length, slackNs),
  });
  const r = xorshift32(53);
  for (let at = 0; at < 1000; at += 10) {
    for (let t = at; t < at + 10; t++) store.push(r() & 0x00ff00ff, 0, -20, ~0);
    m.onFrames(at, at + 10);
  }
  // A signature whose search starts at frame f (its time less the clock skew allowance is frame f's).
  const searchFrom = (f: number, id: string) => {
    const sig = signature(Uint32Array.from({ length: 128 }, () => (r() | 0xff00ff00) >>> 0), id);
    const timed = { ...sig, source: { ...sig.source, timeNs: T0 + BigInt(f) * 16_000_000n + CLOCK_SKEW_NS } };
    const lookups = m.stats().lookups, before = reads;
    deepStrictEqual(m.searchBackward(timed), []);
    return { frames: m.stats().lookups - lookups, reads: reads - before };
  };
  // The first search finds its frame in the timeline: frames 700..999 looked at.
  const first = searchFrom(700, "a");
  strictEqual(first.frames, 300);
  ok(first.reads > 0);
  // 0.4 s later: within the slack, the last answer bounds it without reading the timeline (25 frames more).
  deepStrictEqual(searchFrom(725, "b"), { frames: 300, reads: 0 });
  // 1.2 s after the last search that read the timeline (a's; b took a's answer): beyond the slack, the search
  // goes no further back than its own first frame (with a's answer it would look at 75 frames more).
  const late = searchFrom(775, "c");
  strictEqual(late.frames, 225);
  ok(late.reads > 0);
  strictEqual(recent.stats().searched, 3, "each answered from the recent frames");
  // The two times sit either side of the slack.
  ok(400_000_000n <= BOUND_SLACK_NS && 1_200_000_000n > BOUND_SLACK_NS);
});

Deno.test("backward search: late signatures, streams not covered and a widened search: the scan's matches", async () => {
  await initAudioEngine();
  const sigs = speechSignatures();
  const noise = Uint8Array.from({ length: speech.length }, xorshift32(45));
  const run = (recent: RecentFrames) => {
    const index = new SignatureIndex();
    // Two streams of the speech (one 1 s later), four of noise; fed side by side.
    const audio = [speech, speech, noise, noise, noise, noise];
    const pipes = audio.map((_, k) =>
      new TargetPipeline({
        measurement: "m",
        stage: "s",
        node: "b",
        pod: "p/b",
        stream: `t${k}`,
        format: FORMAT,
        index,
        recent,
      })
    );
    const msgs = audio.map((a, k) =>
      messages(a, SPEECH_T0 + 250_000_000n + BigInt(k === 1) * 1_000_000_000n, 2 + k)
    );
    for (let i = 0; msgs.some((m) => i < m.length); i++) {
      pipes.forEach((tp, k) => {
        const msg = msgs[k]![i];
        if (msg) tp.push(msg);
      });
    }
    const out: Match[] = [];
    // Out of time order (late ones after later ones); from the third on, searched 4 s before their instants.
    [3, 1, 4, 0, 2].forEach((i, n) => {
      if (n === 2) { for (const tp of pipes) tp.searchBeforeNs = 4_000_000_000n; }
      index.add(sigs[i]!);
      for (const tp of pipes) out.push(...tp.searchSignature(sigs[i]!));
    });
    return out;
  };
  const want = run(new RecentFrames({ walkBudget: 0 }));
  ok(want.length >= 5, `${want.length} matches`);
  const all = new RecentFrames({ keepFrames: 4096, minSignatures: 0 });
  deepStrictEqual(run(all), want);
  strictEqual(all.stats().uncovered, 0);
  // A ring too short for six streams' 7 s: the first signatures' frames are gone, those streams scanned.
  const short = new RecentFrames({ keepFrames: 250, horizonFrames: 0, maxFrames: 4096, minSignatures: 0 });
  deepStrictEqual(run(short), want);
  ok(short.stats().uncovered > 0 && short.stats().searched > 0, JSON.stringify(short.stats()));
});

Deno.test("recent frames: the owners with hits since a time: every stream whose scan from then meets one", () => {
  const r = xorshift32(11);
  const fp = Uint32Array.from({ length: 64 }, () => r());
  const sig = signature(fp);
  const recent = new RecentFrames({ keepFrames: 8192, minSignatures: 0 });
  // Six streams, 20 frames a tick of 100 ns; two never hold a signature frame, one only in its first 200 frames.
  const streams = [0, 1, 2, 3, 4, 5].map((k) => {
    const tag = { k };
    const list = frames(fp, 1200, 60 + k).map((f, t) =>
      k >= 4 || (k === 3 && t >= 200) ? { ...f, v: (r() | 1) >>> 0 } : f
    );
    return { tag, owner: new RecentOwner(0, tag), store: new FrameStore(2048), list, times: [] as bigint[] };
  });
  for (let tick = 0; tick < 60; tick++) {
    const t = T0 + BigInt(tick) * 100n;
    recent.noteClock(t);
    for (const s of streams) {
      feed(recent, s.owner, s.store, s.list.slice(tick * 20, tick * 20 + 20));
      for (let i = 0; i < 20; i++) s.times.push(t);
    }
  }
  // A stream's search from `since`: its frames from the first captured at or after then (20 a tick here).
  const hasHits = (s: (typeof streams)[number], since: bigint) => {
    const first = s.times.findIndex((t) => t >= since);
    return first >= 0 && scanHits(sig, s.store, first).length > 0;
  };
  for (const tick of [-1, 0, 5, 9, 10, 11, 30, 59]) {
    // (Tick -1: before the first frame, every frame held is searched.)
    const since = T0 + BigInt(tick) * 100n;
    // A signature of its own each time: a walk of one signature goes on from where it got (and names more).
    const named = new Set(recent.ownersWithHits(signature(fp, `q${tick}`), since)!.map((o) => o.tag));
    for (const s of streams) if (hasHits(s, since)) ok(named.has(s.tag), `tick ${tick}: stream ${s.tag.k}`);
    for (const s of streams.slice(4)) ok(!named.has(s.tag), `tick ${tick}: stream ${s.tag.k} has no hit`);
    // Stream 3's hits are all in frames taken more than a clock block (256 frames) before tick 30.
    if (tick >= 30) ok(!named.has(streams[3]!.tag), `tick ${tick}: stream 3's hits are older`);
  }
  // No clock noted: not known.
  strictEqual(new RecentFrames({ minSignatures: 0 }).ownersWithHits(sig, T0), undefined);
});

Deno.test("recent frames: owners with hits are not known for frames not indexed, gone, or past the walk budget", () => {
  const r = xorshift32(12);
  const fp = Uint32Array.from({ length: 64 }, () => r());
  const sig = signature(fp);
  const run = (opts: ConstructorParameters<typeof RecentFrames>[0], ticks: number, askFrom = 0) => {
    const recent = new RecentFrames(opts);
    const owners = [0, 1, 2].map((k) => ({ owner: new RecentOwner(0, { k }), store: new FrameStore(4096) }));
    const lists = owners.map((_, k) => frames(fp, 20 * ticks, 80 + k));
    for (let tick = 0; tick < ticks; tick++) {
      recent.noteClock(T0 + BigInt(tick) * 100n);
      owners.forEach((s, k) => feed(recent, s.owner, s.store, lists[k]!.slice(tick * 20, tick * 20 + 20)));
      // A signature searched every tick from `askFrom` on (as the scan asks).
      if (tick >= askFrom) recent.hitsOf(signature(fp, `s${tick}`), owners[0]!.owner, owners[0]!.store.end);
    }
    return recent;
  };
  // Indexed from the start: known from any time.
  const early = run({ minSignatures: 1 }, 40);
  strictEqual(early.indexing, true);
  ok(early.ownersWithHits(sig, T0 + 500n) !== undefined);
  // No signature in the first window (indexing stops at frame 256: tick 13), then one every tick from tick 14:
  // indexing again since the second window (frame 512: tick 26), a search from before then not known, one after.
  const late = run({ minSignatures: 1 }, 40, 14);
  strictEqual(late.indexing, true);
  strictEqual(late.ownersWithHits(sig, T0 + 2000n), undefined);
  ok(late.ownersWithHits(sig, T0 + 3000n) !== undefined);
  // Not indexing at all: not known.
  strictEqual(run({ minSignatures: 1 }, 20, 14).ownersWithHits(sig, T0 + 1500n), undefined);
  // A ring of 1,024 frames holds ~17 ticks of three streams: a search from tick 5 of 40 wants frames gone.
  const short = run({ minSignatures: 0, keepFrames: 1, maxFrames: 1024 }, 40);
  strictEqual(short.ownersWithHits(sig, T0 + 500n), undefined);
  ok(short.ownersWithHits(sig, T0 + 3500n) !== undefined);
  strictEqual(run({ minSignatures: 0, walkBudget: 0 }, 40).ownersWithHits(sig, T0 + 1000n), undefined);
});

Deno.test("backward search: only the streams with hits since a signature's search begins, the same matches", async () => {
  await initAudioEngine();
  const sigs = speechSignatures();
  const noise = Uint8Array.from({ length: speech.length }, xorshift32(46));
  const run = (recent: RecentFrames, onlyWithHits: boolean) => {
    const index = new SignatureIndex();
    // Two streams of the speech (one 1 s later), four of noise, one of them beginning 3 s late; side by side.
    const audio = [speech, speech, noise, noise, noise, noise];
    const pipes = audio.map((_, k) =>
      new TargetPipeline({
        measurement: "m",
        stage: "s",
        node: "b",
        pod: "p/b",
        stream: `t${k}`,
        format: FORMAT,
        index,
        recent,
      })
    );
    const msgs = audio.map((a, k) =>
      messages(a, SPEECH_T0 + 250_000_000n + BigInt(k === 1) * 1_000_000_000n, 2 + k)
        .filter((m) => k !== 5 || m.timeNs >= SPEECH_T0 + 3_000_000_000n)
    );
    const order = msgs.flatMap((m, k) => m.map((msg) => ({ k, msg }))).sort((a, b) =>
      a.msg.timeNs < b.msg.timeNs ? -1 : a.msg.timeNs > b.msg.timeNs ? 1 : a.k - b.k
    );
    for (const { k, msg } of order) {
      recent.noteClock(msg.timeNs);
      pipes[k]!.push(msg);
    }
    const out: Match[] = [];
    let searched = 0;
    // Out of time order (late ones after later ones); from the third on, searched 4 s before their instants.
    [3, 1, 4, 0, 2].forEach((i, n) => {
      if (n === 2) { for (const tp of pipes) tp.searchBeforeNs = 4_000_000_000n; }
      const sig = sigs[i]!;
      index.add(sig);
      const owners = onlyWithHits
        ? recent.ownersWithHits(sig, sig.source.timeNs - pipes[0]!.searchBeforeNs)
        : undefined;
      const tags = owners === undefined ? undefined : new Set(owners.map((o) => o.tag));
      for (const tp of pipes) {
        if (tags !== undefined && !tags.has(tp)) continue;
        searched++;
        out.push(...tp.searchSignature(sig));
      }
    });
    return { out, searched };
  };
  const want = run(new RecentFrames({ keepFrames: 4096, minSignatures: 0 }), false);
  ok(want.out.length >= 5, `${want.out.length} matches`);
  const got = run(new RecentFrames({ keepFrames: 4096, minSignatures: 0 }), true);
  deepStrictEqual(got.out, want.out);
  // The noise streams hold no hit: not searched at all.
  ok(got.searched < want.searched, `${got.searched} of ${want.searched} searched`);
  // A ring too short for the late signatures: those search every stream, the same matches.
  const short = run(
    new RecentFrames({ keepFrames: 250, horizonFrames: 0, maxFrames: 4096, minSignatures: 0 }),
    true,
  );
  deepStrictEqual(short.out, want.out);
  ok(short.searched > got.searched);
});

Deno.test("recent frames: after ownersWithHits, a stream's search from its time on walks no further, with the scan's hits", () => {
  const r = xorshift32(43);
  const fp = Uint32Array.from({ length: 128 }, () => r());
  const recent = new RecentFrames({ minSignatures: 0 });
  const streams = Array.from(
    { length: 4 },
    () => ({ owner: new RecentOwner(0), store: new FrameStore(4096) }),
  );
  const lists = streams.map((_, k) => frames(fp, 1800, 80 + k));
  // Frame f of every stream is captured at T0 + f × 16 ms; each batch of 20 frames is taken with the clock at its
  // newest frame's time.
  const FRAME_NS = 16_000_000n;
  for (let at = 0; at < 1800; at += 20) {
    recent.noteClock(T0 + BigInt(at + 19) * FRAME_NS);
    streams.forEach((s, k) => feed(recent, s.owner, s.store, lists[k]!.slice(at, at + 20)));
  }
  const sig = signature(fp), first = 1630, since = T0 + BigInt(first) * FRAME_NS;
  const owners = recent.ownersWithHits(sig, since);
  ok(owners !== undefined && owners.length === streams.length);
  const steps = recent.stats().steps;
  for (const s of streams) {
    // A hit from a frame on already found: "not none" without walking on.
    strictEqual(recent.noHitsFrom(sig, s.owner, first - 40), false);
    const got = recent.hitsOf(sig, s.owner, first, since);
    deepStrictEqual(from(got, first), scanHits(sig, s.store, first));
  }
  // Each stream's frame marks (blocks of 32 frames) and the walk's quarter more would have taken it further back.
  strictEqual(recent.stats().steps, steps);
  // Without the time, the same hits, the walk taken to the stream's marks.
  deepStrictEqual(
    from(recent.hitsOf(sig, streams[0]!.owner, first), first),
    scanHits(sig, streams[0]!.store, first),
  );
  ok(recent.stats().steps > steps);
});

Deno.test("recent frames: indexed from the start until a first window with fewer signatures than pays", () => {
  const r = xorshift32(47);
  const fp = Uint32Array.from({ length: 64 }, () => r());
  const run = (every: number) => {
    const recent = new RecentFrames({ minSignatures: 4 });
    const s = { owner: new RecentOwner(0), store: new FrameStore(4096) };
    const list = frames(fp, 1200, 90);
    for (let at = 0; at < 1200; at += 16) {
      feed(recent, s.owner, s.store, list.slice(at, at + 16));
      if ((at / 16) % every === 0) recent.hitsOf(signature(fp, `s${at}`), s.owner, s.store.end);
    }
    return recent.stats();
  };
  // 16 frames a signature (16 a window): indexed throughout. 64 frames a signature (4 a window): too. 128 (2 a
  // window): stopped after the first window, and not begun again (2 < 4); after a later window with none it would
  // stop all the same.
  strictEqual(run(1).indexing, true);
  strictEqual(run(4).indexing, true);
  const rare = run(8);
  strictEqual(rare.indexing, false);
  strictEqual(rare.stops, 1);
});
