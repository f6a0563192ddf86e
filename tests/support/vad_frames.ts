/** VAD frames of a known level for the energy VAD's tests. */
import { RING_SCALE } from "../../audio/decode/sample_ring.ts";
import { VAD_FRAME } from "../../audio/detect/vad.ts";

/** A frame of a sine at `db` dBFS (RMS, ring scale). */
export function tone(db: number): Int16Array {
  const a = Math.sqrt(2) * Math.pow(10, db / 20) * RING_SCALE;
  return Int16Array.from({ length: VAD_FRAME }, (_, i) => Math.round(a * Math.sin(i * 0.7)));
}

/** A frame of uniform noise at `db` dBFS (RMS, ring scale), from an LCG seeded with `seed`. */
export function noise(db: number, seed: number): Int16Array {
  let s = seed;
  const a = Math.sqrt(3) * Math.pow(10, db / 20) * RING_SCALE;
  return Int16Array.from({ length: VAD_FRAME }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.round(a * (2 * (s / 4294967296) - 1));
  });
}
