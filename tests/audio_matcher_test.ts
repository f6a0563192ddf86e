import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { MULAW_TO_LINEAR } from "../audio/decode/codecs.ts";
import { Fingerprinter, FP_PARAMS, FrameStore } from "../audio/fingerprint/fingerprint.ts";
import { DEFAULT_THRESHOLDS, requiredZ } from "../audio/match/thresholds.ts";
import { scoreBlock, significance } from "../audio/match/score.ts";
import { TargetMatcher, type VerifyTrace } from "../audio/match/mod.ts";
import { SampleRing } from "../audio/decode/sample_ring.ts";
import { buildSignature, initSignatureHasher } from "../audio/fingerprint/signature.ts";
import { SignatureIndex } from "../audio/match/signature_index.ts";
import type { Signature } from "../audio/types.ts";

await initSignatureHasher();

const FIXTURES = new URL("../fixtures/audio_fp/", import.meta.url);
const HOP = FP_PARAMS.hop;
const T0 = 1_000_000_000_000n;

function samples(name: string): Float32Array {
  return Float32Array.from(Deno.readFileSync(new URL(name, FIXTURES)), (b) => MULAW_TO_LINEAR[b]! / 32768);
}

function frames(x: Float32Array): FrameStore {
  const ring = new SampleRing(1 << 17);
  const store = new FrameStore(2048);
  ring.write(0, x, 0);
  new Fingerprinter(ring, store).advance();
  return store;
}

/** A signature cut from `store` at frame `n` (no mask), placed at source time `timeNs`. */
function sigAt(store: FrameStore, n: number, timeNs = T0): Signature {
  return buildSignature({
    measurement: "m",
    node: "a",
    pod: "p",
    stream: `s${n}`,
    timeNs,
    offsetMs: 0,
    fingerprint: store.bits.slice(n, n + 128),
    ids: {},
  });
}

/**
 * A matcher over `store`, its frames already computed; the target's frame k was captured at T0 + k·16 ms.
 * `observe` sees every verification.
 */
function matcher(
  store: FrameStore,
  index: SignatureIndex,
  observe?: (t: VerifyTrace) => void,
): TargetMatcher {
  return new TargetMatcher({
    index,
    store,
    rule: DEFAULT_THRESHOLDS,
    hop: HOP,
    timeOfSample: (k) => T0 + BigInt(k) * 125_000n,
    firstSampleAtOrAfter: (t) => Math.max(0, Number((t - T0) / 125_000n)),
    observe,
  });
}

Deno.test("scoreBlock: identical frames score 0 and high significance, inverted frames score 1", () => {
  const store = frames(samples("speech_8k.ul"));
  const fp = store.bits.slice(100, 228);
  const out = { ber: 0, z: 0, used: 0 };
  scoreBlock(fp, undefined, store, 100, out);
  strictEqual(out.ber, 0);
  strictEqual(out.used, 128);
  ok(out.z > 2 * DEFAULT_THRESHOLDS.minZ, `z ${out.z}`);
  scoreBlock(fp.map((v) => ~v >>> 0), undefined, store, 100, out);
  strictEqual(out.ber, 1);
  ok(out.z < -2 * DEFAULT_THRESHOLDS.minZ);
  // Masked frames do not count.
  const mask = new Uint8Array(16).fill(0xff);
  mask[0] = 0xfe;
  scoreBlock(fp, mask, store, 100, out);
  strictEqual(out.used, 1);
});

Deno.test("significance grows with the evidence and shorter blocks need more of it", () => {
  ok(significance(0.2, 3000, 2000) > significance(0.2, 1000, 700));
  ok(significance(0.1, 1000, 700) > significance(0.3, 1000, 700));
  strictEqual(significance(0.5, 1000, 700), 0);
  ok(requiredZ(DEFAULT_THRESHOLDS, 24) > requiredZ(DEFAULT_THRESHOLDS, 60));
  strictEqual(requiredZ(DEFAULT_THRESHOLDS, 128), DEFAULT_THRESHOLDS.minZ);
});

Deno.test("forward: each signature is found once, at its frame, as frames arrive", () => {
  const store = frames(samples("speech_8k.ul"));
  const index = new SignatureIndex();
  const at = [20, 150, 300];
  const sigs = at.map((n) => sigAt(store, n));
  for (const s of sigs) index.add(s);
  // Replay the frames into a fresh store in small steps, as a stream would.
  const live = new FrameStore(2048);
  const m = matcher(live, index);
  const found: { id: string; frame: number; ber: number }[] = [];
  for (let n = 0; n < store.end; n++) {
    live.push(store.bits[n]!, store.weak[n]!, store.energy[n]!, store.strong[n]!);
    for (const c of m.onFrames(n, n + 1)) found.push({ id: c.sig.id, frame: c.frame, ber: c.ber });
  }
  for (const c of m.onFrames(live.end, live.end, true)) {
    found.push({ id: c.sig.id, frame: c.frame, ber: c.ber });
  }
  deepStrictEqual(
    found.sort((a, b) => a.frame - b.frame),
    at.map((n, i) => ({ id: sigs[i]!.id, frame: n, ber: 0 })),
  );
  ok(m.matched(sigs[0]!.id));
});

Deno.test("forward: a signature matched here leaves another one whose slot shares its filter bit searchable", () => {
  const store = frames(samples("speech_8k.ul"));
  const index = new SignatureIndex();
  const a = sigAt(store, 20), b = sigAt(store, 300);
  index.add(a);
  // Unrelated blocks between, so that b's slot is 1,024 after a's (the matcher's filter of matched slots).
  let seed = 7;
  for (let k = 1; k < 1024; k++) {
    const fp = Uint32Array.from(
      { length: 128 },
      () => (seed = Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + k) >>> 0,
    );
    index.add({ ...sigAt(store, 0, T0 + BigInt(k)), id: `filler${k}`, fingerprint: fp });
  }
  index.add(b);
  strictEqual(index.slotOf(b.id) - index.slotOf(a.id), 1024);
  const live = new FrameStore(2048);
  const m = matcher(live, index);
  const found: string[] = [];
  for (let n = 0; n < store.end; n++) {
    live.push(store.bits[n]!, store.weak[n]!, store.energy[n]!, store.strong[n]!);
    for (const c of m.onFrames(n, n + 1)) found.push(c.sig.id);
  }
  for (const c of m.onFrames(live.end, live.end, true)) found.push(c.sig.id);
  deepStrictEqual(found, [a.id, b.id]);
});

Deno.test("forward: unrelated speech yields nothing", () => {
  const store = frames(samples("speech_8k.ul"));
  const index = new SignatureIndex();
  for (let n = 10; n + 128 < store.end; n += 40) index.add(sigAt(store, n));
  const other = frames(samples("other_8k.ul"));
  const m = matcher(other, index);
  deepStrictEqual([...m.onFrames(0, other.end), ...m.onFrames(other.end, other.end, true)], []);
});

Deno.test("verification: a message lost inside the block is recognised (split) and the instant stays before it", () => {
  const x = samples("speech_8k.ul");
  const store = frames(x);
  const sig = sigAt(store, 150);
  // The target lost 20 ms (160 samples) of audio 0.8 s after the instant.
  const cutAt = 150 * HOP + 6400;
  const y = new Float32Array(x.length - 160);
  y.set(x.subarray(0, cutAt));
  y.set(x.subarray(cutAt + 160), cutAt);
  const target = frames(y);
  const index = new SignatureIndex();
  index.add(sig);
  const traces: VerifyTrace[] = [];
  const m = matcher(target, index, (t) => traces.push(t));
  const got = [...m.onFrames(0, target.end), ...m.onFrames(target.end, target.end, true)];
  strictEqual(got.length, 1);
  strictEqual(got[0]!.frame, 150);
  const accepted = traces.filter((t) => t.accepted);
  strictEqual(accepted.length, 1);
  ok(
    accepted[0]!.split && accepted[0]!.z > accepted[0]!.wholeZ,
    `z ${accepted[0]!.z} whole ${accepted[0]!.wholeZ}`,
  );
});

Deno.test("backward: a signature is found in the lookback, but not in audio captured before its source time", () => {
  const store = frames(samples("speech_8k.ul"));
  const index = new SignatureIndex();
  const m = matcher(store, index);
  m.onFrames(0, store.end);
  const sig = sigAt(store, 120);
  const got = m.searchBackward(sig);
  strictEqual(got.length, 1);
  strictEqual(got[0]!.frame, 120);
  deepStrictEqual(m.searchBackward(sig), [], "already matched");
  // The same audio, but the signature's source instant is 10 s after the target audio: not a match.
  const late = sigAt(store, 200, T0 + 10_000_000_000n);
  deepStrictEqual(m.searchBackward(late), []);
});

Deno.test("forward: streams searched in turns find what each finds alone (the scratch is the process's)", () => {
  // Hit buffers, probes, vote outputs, the split scoring's arrays and the pool of pending checks are shared by
  // every matcher: frames of two streams interleaved a few at a time must give each stream's matches unchanged.
  const a = frames(samples("speech_8k.ul"));
  const b = frames(samples("other_8k.ul"));
  const index = new SignatureIndex();
  for (const n of [20, 150, 300]) index.add(sigAt(a, n));
  for (const n of [40, 200]) index.add(sigAt(b, n));
  const run = (stores: FrameStore[], step: number) => {
    const lives = stores.map(() => new FrameStore(2048));
    const ms = lives.map((l) => matcher(l, index));
    const found = stores.map(() => [] as string[]);
    const end = Math.max(...stores.map((s) => s.end));
    for (let n = 0; n < end; n += step) {
      stores.forEach((s, i) => {
        const live = lives[i]!, from = live.end;
        for (let k = n; k < Math.min(n + step, s.end); k++) {
          live.push(s.bits[k]!, s.weak[k]!, s.energy[k]!, s.strong[k]!);
        }
        for (const c of ms[i]!.onFrames(from, live.end)) found[i]!.push(`${c.sig.id}@${c.frame}:${c.ber}`);
      });
    }
    ms.forEach((m, i) => {
      for (const c of m.onFrames(lives[i]!.end, lives[i]!.end, true)) {
        found[i]!.push(`${c.sig.id}@${c.frame}`);
      }
    });
    return found;
  };
  const alone = [...run([a], 7), ...run([b], 7)];
  const together = run([a, b], 7);
  deepStrictEqual(together, alone);
  strictEqual(alone[0]!.length, 3);
  strictEqual(alone[1]!.length, 2);
});
