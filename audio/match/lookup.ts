/**
 * Looking up target frames: the probes of a target value for the SignatureIndex (forward search), a
 * signature's own half-value tables (backward search), and what a hit is worth as a vote.
 * @module
 */

import { weakMask } from "../fingerprint/fingerprint.ts";
import { isMasked } from "../fingerprint/signature.ts";
import type { Signature } from "../types.ts";

/** Largest Hamming distance of a lookup hit (one half exact, the whole value within this). */
export const HIT_MAX_DIST = 4;
/** A single hit this close queues verification without a second vote. */
export const STRONG_HIT_DIST = 1;
/** Target frames quieter than this (dB, as FrameStore.energy) are not looked up: silence matches nothing. */
export const SILENT_FRAME_DB = -55;
/** Weak bits toggled per half when probing (of the two recorded per half). */
export const PROBE_BITS_PER_HALF = 1;
/** Length of a probe buffer for {@link probes}: (half, key) pairs of the value and its toggled variants. */
export const PROBE_WORDS = 2 * (2 + 2 * ((1 << PROBE_BITS_PER_HALF) - 1));

/** Votes a hit at Hamming distance `dist` gives its alignment: a near-exact hit counts two. */
export function hitVotes(dist: number): number {
  return dist <= STRONG_HIT_DIST ? 2 : 1;
}

const probeHi = new Int32Array(PROBE_BITS_PER_HALF);
const probeLo = new Int32Array(PROBE_BITS_PER_HALF);

/**
 * The probes of a target value: the value itself plus, per half, the value with that half's weakest
 * {@link PROBE_BITS_PER_HALF} bits toggled. Writes [halfKey...] pairs as (half, key) into `out` (of
 * {@link PROBE_WORDS}); returns count. The format of SignatureIndex.lookupProbes.
 */
export function probes(v: number, weak: number, out: Int32Array): number {
  let n = 0;
  out[n++] = 0;
  out[n++] = v >>> 16;
  out[n++] = 1;
  out[n++] = v & 0xffff;
  const hiMasks = PROBE_BITS_PER_HALF, loMasks = PROBE_BITS_PER_HALF;
  const hiList = probeHi, loList = probeLo;
  for (let k = 0; k < PROBE_BITS_PER_HALF; k++) {
    hiList[k] = weakMask(weak, k) >>> 16;
    loList[k] = weakMask(weak, 2 + k) & 0xffff;
  }
  for (let p = 1; p < 1 << hiMasks; p++) {
    let t = 0;
    for (let b = 0; b < hiMasks; b++) if ((p >> b) & 1) t ^= hiList[b]!;
    out[n++] = 0;
    out[n++] = (v >>> 16) ^ t;
  }
  for (let p = 1; p < 1 << loMasks; p++) {
    let t = 0;
    for (let b = 0; b < loMasks; b++) if ((p >> b) & 1) t ^= loList[b]!;
    out[n++] = 1;
    out[n++] = (v & 0xffff) ^ t;
  }
  return n >> 1;
}

/** A signature's half-values in a small open-addressed table, for the backward search. */
export class SigTable {
  readonly keys: Int32Array;
  readonly head: Int16Array;
  readonly next: Int16Array;
  readonly mask: number;

  /** The table of the high (`half` 0) or low (`half` 1) 16 bits of the unmasked frames of `fp`. */
  constructor(fp: Uint32Array, sigMask: Uint8Array | undefined, half: 0 | 1) {
    let cap = 64;
    while (cap < fp.length * 4) cap *= 2;
    this.mask = cap - 1;
    this.keys = new Int32Array(cap).fill(-1);
    this.head = new Int16Array(cap).fill(-1);
    this.next = new Int16Array(fp.length).fill(-1);
    for (let j = 0; j < fp.length; j++) {
      if (isMasked(sigMask, j)) continue;
      const key = half === 0 ? fp[j]! >>> 16 : fp[j]! & 0xffff;
      let h = Math.imul(key, 0x9e3779b1) >>> 0 & this.mask;
      while (this.keys[h] !== -1 && this.keys[h] !== key) h = (h + 1) & this.mask;
      this.keys[h] = key;
      this.next[j] = this.head[h]!;
      this.head[h] = j;
    }
  }

  /** First frame with this half-value (-1 if none); continue with `next[j]`. */
  first(key: number): number {
    let h = Math.imul(key, 0x9e3779b1) >>> 0 & this.mask;
    for (;;) {
      const k = this.keys[h]!;
      if (k === key) return this.head[h]!;
      if (k === -1) return -1;
      h = (h + 1) & this.mask;
    }
  }
}

const sigTables = new WeakMap<Signature, [SigTable, SigTable]>();

/** The high- and low-half tables of `sig` (cached per signature object). */
export function tablesOf(sig: Signature): [SigTable, SigTable] {
  let t = sigTables.get(sig);
  if (!t) {
    t = [new SigTable(sig.fingerprint, sig.mask, 0), new SigTable(sig.fingerprint, sig.mask, 1)];
    sigTables.set(sig, t);
  }
  return t;
}
