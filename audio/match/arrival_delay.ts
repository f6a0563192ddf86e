/**
 * How late signatures reach the Matcher, in its event time: a signature is made a span after its instant (its
 * block of sub-fingerprints), and one from another node comes later still by the difference of the two nodes'
 * capture delays (Pixie's polling, a busier node's backlog). The repeat guard (repeats.ts) holds each match that
 * long past its target instant, so that a nearer twin made after it can still be weighed against it.
 * @module
 */

import { FP_PARAMS } from "../fingerprint/fingerprint.ts";
import { SIGNATURE_MAX_FRAMES } from "../fingerprint/signature.ts";

/** The least allowance, ns: a whole block and its last frame after the instant, and a little more. */
export const ARRIVAL_FLOOR_NS = BigInt(
  Math.round(((SIGNATURE_MAX_FRAMES * FP_PARAMS.hop + FP_PARAMS.frame) / FP_PARAMS.sampleRate + 0.3) * 1e9),
);
/** Added to the latest arrival seen, ns (the next may be a little later). */
export const ARRIVAL_MARGIN_NS = 500_000_000n;
/** Arrivals remembered: the allowance follows the latest of the last this many signatures. */
export const ARRIVAL_WINDOW = 64;

/** The latest of the recent signatures' arrival delays, as an allowance for the next. */
export class ArrivalDelay {
  readonly #delays = new BigInt64Array(ARRIVAL_WINDOW);
  #count = 0;
  #next = 0;

  /** A signature arrived `delayNs` after its source instant (event time of the Matcher; ≤ 0: before it). */
  observe(delayNs: bigint): void {
    this.#delays[this.#next] = delayNs > 0n ? delayNs : 0n;
    this.#next = (this.#next + 1) % ARRIVAL_WINDOW;
    if (this.#count < ARRIVAL_WINDOW) this.#count++;
  }

  /** How long to wait for a signature made after an instant, ns: at least the floor, at most `capNs`. */
  allowanceNs(capNs: bigint): bigint {
    let latest = 0n;
    for (let i = 0; i < this.#count; i++) if (this.#delays[i]! > latest) latest = this.#delays[i]!;
    const want = latest + ARRIVAL_MARGIN_NS > ARRIVAL_FLOOR_NS
      ? latest + ARRIVAL_MARGIN_NS
      : ARRIVAL_FLOOR_NS;
    return want < capNs ? want : capNs;
  }
}
