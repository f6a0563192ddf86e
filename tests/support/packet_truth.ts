/**
 * Ground truth of the real packet fixtures: the `<fixture>.tshark.csv` files tshark wrote when
 * `fixtures/packets/capture.sh` made them, and the sidecar of the lossy capture.
 * @module
 */

/** The fixtures directory. */
export const FIX: URL = new URL("../../fixtures/packets/", import.meta.url);

/** One line of a fixture's tshark ground truth. */
export interface TsharkLine {
  timeNs: bigint;
  iface: number;
  capLen: number;
  seq: number | null;
  ts: number | null;
  ssrc: number | null;
  pt: number | null;
}

/** Reads `<fixture>.tshark.csv` (written by tshark when the fixture was captured). */
export async function tsharkTruth(name: string): Promise<TsharkLine[]> {
  const text = await Deno.readTextFile(new URL(name + ".tshark.csv", FIX));
  return text.trim().split("\n").map((line) => {
    const [t, iface, cap, seq, ts, ssrc, pt] = line.split(",");
    const [s, frac] = t!.split(".");
    const num = (x: string | undefined) => (x ? Number(x) : null);
    return {
      timeNs: BigInt(s!) * 1_000_000_000n + BigInt(frac!.padEnd(9, "0")),
      iface: iface ? Number(iface) : 0,
      capLen: Number(cap),
      seq: num(seq),
      ts: num(ts),
      ssrc: num(ssrc),
      pt: num(pt),
    };
  });
}
