// The split scoring's WebAssembly kernel (audio/match/split_kernel.ts): its per-frame terms are score.ts
// frameErrors' for every alignment, and the same to the last bit as its JS steps.
import { ok, strictEqual } from "node:assert/strict";
import { FrameStore } from "../audio/fingerprint/fingerprint.ts";
import { FRAME_WEIGHT, FRAME_WEIGHT_SQ, frameErrors } from "../audio/match/score.ts";
import { frameErrorsKernel, KERNEL_MAX_FRAMES, KERNEL_OFFSETS } from "../audio/match/split_kernel.ts";
import { xorshift32 } from "./support/rng.ts";

function popcount(x: number): number {
  let c = 0;
  for (let v = x >>> 0; v; v >>>= 1) c += v & 1;
  return c;
}

/** A store of random frames [100, 100 + frames) and a random block with some frames masked. */
function setup(seed: number, n: number, frames: number) {
  const r = xorshift32(seed);
  const store = new FrameStore(1024);
  store.reset(100);
  for (let t = 0; t < frames; t++) store.push(r(), 0, 0, r() & r());
  const fp = Uint32Array.from({ length: n }, () => r());
  const mask = new Uint8Array(Math.ceil(n / 8));
  for (let j = 0; j < n; j++) if (r() % 5 === 0) mask[j >> 3]! |= 1 << (j & 7);
  return { store, fp, mask };
}

/** The kernel's inputs for the block at alignments lo .. lo + 16 (as split.ts fills them). */
function fill(k: ReturnType<typeof frameErrorsKernel>, s: ReturnType<typeof setup>, lo: number): void {
  const { store, fp, mask } = s;
  for (let i = 0; i < fp.length + KERNEL_OFFSETS - 1; i++) {
    const t = lo + i;
    if (!store.has(t, 1)) {
      k.w[i] = 0;
      continue;
    }
    const c = popcount(store.strong[t & store.mask]!);
    k.bits[i] = store.bits[t & store.mask]!;
    k.strong[i] = store.strong[t & store.mask]!;
    k.w[i] = FRAME_WEIGHT[c]!;
    k.q[i] = FRAME_WEIGHT_SQ[c]!;
  }
  k.fp.set(fp);
  for (let j = 0; j < fp.length; j++) k.used[j] = (mask[j >> 3]! >> (j & 7)) & 1 ? 0 : 1;
}

Deno.test("split kernel: each alignment's terms are frameErrors', and the evidence w/2 - e summed in order", () => {
  const wasm = frameErrorsKernel();
  // Alignments reaching before the store's first frame and past its last: those frames count 0.
  for (
    const [seed, n, lo] of [[1, 128, 95], [2, 45, 300], [3, 128, 270], [4, KERNEL_MAX_FRAMES, 120]] as const
  ) {
    const s = setup(seed, n, 300);
    fill(wasm, s, lo);
    wasm.run(n);
    const e = new Float64Array(n), w = new Float64Array(n), q = new Float64Array(n);
    for (let o = 0; o < KERNEL_OFFSETS; o++) {
      frameErrors(s.fp, s.mask, s.store, lo + o, e, w, q);
      let total = 0;
      for (let j = 0; j < n; j++) {
        ok(
          Object.is(wasm.e[o]![j], e[j]) && Object.is(wasm.wo[o]![j], w[j]) &&
            Object.is(wasm.qo[o]![j], q[j]),
        );
        const v = 0.5 * w[j]! - e[j]!;
        ok(Object.is(wasm.v[o]![j], v), `v ${seed} ${o} ${j}`);
        total += v;
      }
      strictEqual(wasm.total[o], total);
    }
  }
});

Deno.test("split kernel: WebAssembly and JS steps agree to the last bit", () => {
  const wasm = frameErrorsKernel(), js = frameErrorsKernel({ wasm: false });
  ok(wasm.run !== js.run);
  for (let seed = 10; seed < 30; seed++) {
    const n = 1 + (seed * 37) % KERNEL_MAX_FRAMES;
    const s = setup(seed, n, 200 + seed * 7);
    for (const k of [wasm, js]) {
      fill(k, s, 90 + seed * 3);
      k.run(n);
    }
    for (let o = 0; o < KERNEL_OFFSETS; o++) {
      strictEqual(wasm.total[o], js.total[o]);
      for (let j = 0; j < n; j++) {
        ok(
          Object.is(wasm.e[o]![j], js.e[o]![j]) && Object.is(wasm.v[o]![j], js.v[o]![j]),
          `${seed} ${o} ${j}`,
        );
        ok(Object.is(wasm.wo[o]![j], js.wo[o]![j]) && Object.is(wasm.qo[o]![j], js.qo[o]![j]));
      }
    }
  }
});
