/**
 * Fixtures for the domain actor tests: configs derived from the e2e fixture config, recording actors, counters
 * that remember, synthetic signatures, and the e2e capture rows.
 * @module
 */
import { parse, stringify } from "yaml";
import { parseConfigText } from "../../config/load.ts";
import type { Config } from "../../config/schema.ts";
import type { ActorFactory, ActorSystem } from "../../actors/runtime.ts";
import type { VirtualClock } from "../../actors/clock.ts";
import type { ExpireReason, NodeCounters } from "../../actors/messages.ts";
import type { Signature } from "../../audio/types.ts";
import { signatureOf } from "../../audio/fingerprint/signature.ts";
import { readCapture } from "../../pixie/capture.ts";
import type { Row } from "../../pixie/row.ts";
import { ROOT } from "./sensor_process.ts";

/** The e2e fixture directory. */
export const E2E = `${ROOT}fixtures/e2e/`;

/** The e2e config with `edit` applied to its parsed YAML (e.g. engine settings, extra rules). */
export async function e2eConfig(edit: (doc: Record<string, unknown>) => void = () => {}): Promise<Config> {
  const doc = parse(await Deno.readTextFile(`${E2E}config.yaml`)) as Record<string, unknown>;
  doc["log_level"] = "error";
  edit(doc);
  return parseConfigText(stringify(doc), "test.yaml", {}).config;
}

/** The rows of one node's e2e capture, in capture order. */
export async function e2eRows(node: "node-a" | "node-b" | "node-c"): Promise<Row[]> {
  return (await readCapture(`${E2E}${node}.jsonl`)).rows.map((r) => ({ ...r, node }));
}

/** Counters that remember every call. */
export class CountingCounters implements NodeCounters {
  readonly expired = new Map<string, number>();
  readonly evicted = new Map<string, number>();
  readonly skipped = new Map<string, number>();
  outliers = 0;
  signaturesExpired(measurement: string, reason: ExpireReason, n = 1): void {
    const k = `${measurement}/${reason}`;
    this.expired.set(k, (this.expired.get(k) ?? 0) + n);
  }
  streamsEvicted(measurement: string, stream: string, n = 1): void {
    const k = `${measurement}/${stream}`;
    this.evicted.set(k, (this.evicted.get(k) ?? 0) + n);
  }
  rowsSkipped(query: string, reason: string, n = 1): void {
    const k = `${query}:${reason}`;
    this.skipped.set(k, (this.skipped.get(k) ?? 0) + n);
  }
  clockOutliers(n = 1): void {
    this.outliers += n;
  }
}

/** An actor that records every message; `{kind: "finish", reply}` is answered. */
export function recorder<M>(into: M[]): ActorFactory<M> {
  return () => ({
    receive(msg) {
      into.push(msg);
      const m = msg as { kind?: string; reply?: (ok: true) => void };
      if (m.kind === "finish") m.reply?.(true);
    },
  });
}

/** A well-formed signature (random-looking bits) at `timeNs`. */
export function fakeSignature(
  id: string,
  timeNs: bigint,
  measurement = "call_audio",
  node = "node-x",
): Signature {
  const fingerprint = new Uint32Array(64);
  let x = 0x9e3779b9 ^ id.length;
  for (let i = 0; i < id.length; i++) x = Math.imul(x ^ id.charCodeAt(i), 0x01000193);
  for (let i = 0; i < fingerprint.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    fingerprint[i] = x >>> 0;
  }
  return signatureOf({
    id,
    measurement,
    source: { node, pod: "p", stream: "s", timeNs, offsetMs: 0 },
    fingerprint,
    ids: {},
  });
}

/** Seconds to ns. */
export function sec(s: number): bigint {
  return BigInt(Math.round(s * 1e9));
}

/**
 * Settles a virtual-clock system until nothing moves any more: an actor blocked on another's mailbox, or a
 * source's hand-off, takes more than one turn to run through.
 */
export async function settleAll(clock: VirtualClock, system: ActorSystem): Promise<void> {
  let last = "";
  for (let same = 0; same < 3;) {
    await clock.settle();
    const now = JSON.stringify(system.stats());
    same = now === last ? same + 1 : 0;
    last = now;
  }
}
