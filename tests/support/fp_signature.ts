/** Signatures over given sub-fingerprints, for the matcher's unit tests. */
import { signatureOf } from "../../audio/fingerprint/signature.ts";
import type { Signature } from "../../audio/types.ts";
import { xorshift32 } from "./rng.ts";

/** Signature "sig" of measurement `m` over `fp`, from stream `s` of pod `p` on node `a` at `timeNs`. */
export function fpSignature(fp: Uint32Array, timeNs: bigint): Signature {
  return signatureOf({
    id: "sig",
    measurement: "m",
    source: { node: "a", pod: "p", stream: "s", timeNs, offsetMs: 0 },
    fingerprint: fp,
    ids: {},
  });
}

/** A signature's 128 random sub-fingerprints and 400 of unrelated background after them, from `seed`. */
export function randomFrames(seed: number): { fp: Uint32Array; background: Uint32Array } {
  const r = xorshift32(seed);
  const fp = Uint32Array.from({ length: 128 }, () => r());
  return { fp, background: Uint32Array.from({ length: 400 }, () => r()) };
}
