/**
 * The in-process bus: one process, several nodes (tests, `analyze`, `demo`). It keeps JetStream's semantics that
 * matter to the nodes: signatures deduplicated by id and delivered to every subscriber (the publisher's own node
 * included), match records deduplicated by (signature id, stage, target stream).
 * @module
 */
import type { Signature } from "../audio/types.ts";
import type { MatchRecord } from "../report/records.ts";
import type { Bus, Handler, Subscription } from "./bus.ts";
import { matchDedupeId } from "./subjects.ts";
import { logger } from "../util/log.ts";

export { matchDedupeId } from "./subjects.ts";

const log = logger("bus");

/** Like JetStream's duplicate window, dedupe memory is bounded (oldest ids forgotten first). */
const DEDUPE_MEMORY = 200_000;

function remember(set: Set<string>, id: string): void {
  set.add(id);
  if (set.size > DEDUPE_MEMORY) {
    const oldest = set.values().next().value;
    if (oldest !== undefined) set.delete(oldest);
  }
}

/** An in-memory bus shared by the nodes of one process. */
export class InProcessBus implements Bus {
  readonly #sigSubs = new Set<{ measurements: Set<string>; handler: Handler<Signature> }>();
  readonly #matchSubs = new Set<Handler<MatchRecord>>();
  readonly #seenSigs = new Set<string>();
  readonly #seenMatches = new Set<string>();
  readonly #pending = new Set<Promise<void>>();
  /** Messages a subscriber failed on (counted and skipped). */
  handlerErrors = 0;

  publishSignature(sig: Signature): Promise<void> {
    if (this.#seenSigs.has(sig.id)) return Promise.resolve();
    remember(this.#seenSigs, sig.id);
    const deliveries: Promise<void>[] = [];
    for (const sub of this.#sigSubs) {
      if (sub.measurements.size === 0 || sub.measurements.has(sig.measurement)) {
        deliveries.push(this.#deliver(sub.handler, sig));
      }
    }
    return this.#track(Promise.all(deliveries).then(() => {}));
  }

  publishMatch(rec: MatchRecord): Promise<void> {
    const id = matchDedupeId(rec);
    if (this.#seenMatches.has(id)) return Promise.resolve();
    remember(this.#seenMatches, id);
    return this.#track(Promise.all([...this.#matchSubs].map((h) => this.#deliver(h, rec))).then(() => {}));
  }

  subscribeSignatures(measurements: readonly string[], handler: Handler<Signature>): Promise<Subscription> {
    const sub = { measurements: new Set(measurements), handler };
    this.#sigSubs.add(sub);
    return Promise.resolve({ unsubscribe: () => Promise.resolve(void this.#sigSubs.delete(sub)) });
  }

  /** Receives every match record (in-process only; JetStream consumers read the stream instead). */
  subscribeMatches(handler: Handler<MatchRecord>): Subscription {
    this.#matchSubs.add(handler);
    return { unsubscribe: () => Promise.resolve(void this.#matchSubs.delete(handler)) };
  }

  async flush(_deadlineMs: number): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  close(): Promise<void> {
    this.#sigSubs.clear();
    this.#matchSubs.clear();
    return Promise.resolve();
  }

  async #deliver<T>(handler: Handler<T>, msg: T): Promise<void> {
    try {
      await handler(msg);
    } catch (e) {
      this.handlerErrors++;
      log.warn("subscriber failed on a message; skipped", { error: (e as Error).message });
    }
  }

  #track(p: Promise<void>): Promise<void> {
    this.#pending.add(p);
    return p.finally(() => this.#pending.delete(p));
  }
}
