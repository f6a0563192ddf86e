/**
 * Subprocess fixture: a two-actor pipeline with 200 messages queued behind a gate that opens only when the
 * shutdown starts, so every message is still queued when SIGTERM arrives. Prints counts on stdout.
 * @module
 */
import { ActorSystem } from "../../actors/runtime.ts";
import { installSignalHandlers } from "../../actors/shutdown.ts";

const N = 200;
const system = new ActorSystem();
let processed = 0;
let forwarded = 0;
let openGate: () => void = () => {};
const gate = new Promise<void>((resolve) => openGate = resolve);

// Spawn order is pipeline order; the source's factory refers to `sink`, spawned just after it.
const source = system.spawn<number>("source", () => ({
  async receive(n) {
    await sink.tell(n);
    forwarded++;
  },
}), { capacity: 50, overflow: "backpressure" });
const sink = system.spawn<number>("sink", () => ({
  async receive() {
    await gate;
    processed++;
  },
  onStop() {
    console.log(`sink-stopped processed=${processed}`);
  },
}), { capacity: 50, overflow: "backpressure" });

const input = system.ingress(source);
// Nothing else keeps the process alive while it waits for the signal (a real node has its connections).
const keepAlive = setInterval(() => {}, 60_000);
system.stopping.addEventListener("abort", () => {
  const late = input.tryTell(-1);
  console.log(`stopping processed=${processed} lateAccepted=${late ? 1 : 0}`);
  openGate();
});
system.onFlush(() => {
  const dropped = system.stats().reduce(
    (n, s) => n + s.dropped.overflow + s.dropped.stopping + s.dropped.deadline,
    0,
  );
  console.log(`flushed processed=${processed} forwarded=${forwarded} dropped=${dropped}`);
  clearInterval(keepAlive);
  return Promise.resolve();
});
installSignalHandlers(system, { deadlineMs: 20_000 });

for (let i = 0; i < N; i++) void input.tell(i);
setTimeout(() => {
  const queued = system.stats().reduce((n, s) => n + s.depth + s.waitingSenders, 0);
  console.log(`ready queued=${queued}`);
}, 20);
