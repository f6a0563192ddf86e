/**
 * The tests' seeded generator, so a failing test reproduces: xorshift32, and the draws several tests share.
 *
 * Tests with fixed expectations (the match tests' frames, the payload guesser's calls, the live calls the load
 * bench replays) were written against xorshift32 with these seeds: it stays the generator so their frames stay
 * the same. The corpus generator has its own (fixtures/gen/prng.ts, mulberry32 with labelled forks): the bench's
 * corpora depend on its sequence.
 * @module
 */

/**
 * Seeded xorshift32: a function returning the next unsigned 32-bit integer (never 0). The seed is taken modulo
 * 2^32; 0, which xorshift cannot leave, counts as 1.
 */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>>= 0);
  };
}

/** Seeded uniform draws in (0, 1): {@link xorshift32} over 2^32. */
export function rng(seed: number): () => number {
  const next = xorshift32(seed);
  return () => next() / 2 ** 32;
}

/** Seeded uniform draws in (-0.5, 0.5): a test signal centred on zero. */
export function centeredRng(seed: number): () => number {
  const next = rng(seed);
  return () => next() - 0.5;
}

/**
 * `v` with `n` distinct bits flipped, at positions drawn from `r` (a {@link xorshift32}: its low 5 bits pick a
 * bit). A fingerprint frame received with `n` bit errors.
 */
export function flipBits(v: number, n: number, r: () => number): number {
  let m = 0;
  while (n > 0) {
    const b = 1 << (r() & 31);
    if (m & b) continue;
    m |= b;
    n--;
  }
  return (v ^ m) >>> 0;
}
