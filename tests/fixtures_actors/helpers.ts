/**
 * Test helpers for the actor runtime tests: a metrics recorder and a log capture.
 * @module
 */
import { ActorSystem, type DropReason, type RuntimeMetrics } from "../../actors/runtime.ts";
import { VirtualClock } from "../../actors/clock.ts";
import { setLogSink } from "../../util/log.ts";

/** One metrics hook call. */
export type MetricEvent =
  | { readonly kind: "depth"; readonly actor: string; readonly depth: number }
  | { readonly kind: "dropped"; readonly actor: string; readonly reason: DropReason; readonly n: number }
  | { readonly kind: "restarted" | "poison" | "escalated"; readonly actor: string };

/** Records every hook call in order. */
export class RecordingMetrics implements RuntimeMetrics {
  /** Calls so far. */
  readonly events: MetricEvent[] = [];
  /** @inheritdoc */
  mailboxDepth(actor: string, depth: number): void {
    this.events.push({ kind: "depth", actor, depth });
  }
  /** @inheritdoc */
  dropped(actor: string, reason: DropReason, n: number): void {
    this.events.push({ kind: "dropped", actor, reason, n });
  }
  /** @inheritdoc */
  restarted(actor: string): void {
    this.events.push({ kind: "restarted", actor });
  }
  /** @inheritdoc */
  poison(actor: string): void {
    this.events.push({ kind: "poison", actor });
  }
  /** @inheritdoc */
  escalated(actor: string): void {
    this.events.push({ kind: "escalated", actor });
  }
  /** Sum of dropped counts for an actor and reason. */
  droppedTotal(actor: string, reason: DropReason): number {
    let n = 0;
    for (const e of this.events) {
      if (e.kind === "dropped" && e.actor === actor && e.reason === reason) n += e.n;
    }
    return n;
  }
  /** Number of calls of one kind for an actor. */
  count(kind: "restarted" | "poison" | "escalated", actor: string): number {
    return this.events.filter((e) => e.kind === kind && e.actor === actor).length;
  }
  /** The last depth reported for an actor. */
  lastDepth(actor: string): number | undefined {
    for (let i = this.events.length - 1; i >= 0; i--) {
      const e = this.events[i];
      if (e?.kind === "depth" && e.actor === actor) return e.depth;
    }
    return undefined;
  }
}

/** Parsed log lines captured while `fn` runs (the previous sink is restored afterwards). */
export async function captureLogs<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; lines: Record<string, unknown>[] }> {
  const lines: Record<string, unknown>[] = [];
  const prev = setLogSink((line) => lines.push(JSON.parse(line) as Record<string, unknown>));
  try {
    const result = await fn();
    return { result, lines };
  } finally {
    setLogSink(prev);
  }
}

/** A system on a virtual clock that records its metrics hooks. */
export function setup(opts: { metrics?: RecordingMetrics } = {}) {
  const clock = new VirtualClock();
  const metrics = opts.metrics ?? new RecordingMetrics();
  const system = new ActorSystem({ clock, metrics });
  return { clock, metrics, system };
}

/** The stats snapshot of one actor. */
export function statsOf(system: ActorSystem, name: string) {
  const s = system.stats().find((x) => x.name === name);
  if (!s) throw new Error(`no actor ${name}`);
  return s;
}

/** A promise opened from outside: blocks an actor's receive until the test lets it go. */
export function gate(): { wait: Promise<void>; open: () => void } {
  let open: () => void = () => {};
  const wait = new Promise<void>((resolve) => open = resolve);
  return { wait, open };
}
