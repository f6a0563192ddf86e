/**
 * Subprocess fixture: an actor that crashes on every message exceeds its restart limit; the system shuts
 * down cleanly (the healthy actor still drains) and the process exits with code 1.
 * @module
 */
import { ActorSystem } from "../../actors/runtime.ts";
import { installSignalHandlers } from "../../actors/shutdown.ts";

const system = new ActorSystem({
  restart: { maxRestarts: 2, windowMs: 60_000, backoffInitialMs: 1, backoffMaxMs: 5, factor: 2 },
  escalationDeadlineMs: 10_000,
});
let healthyProcessed = 0;
const flaky = system.spawn<number>("flaky", () => ({
  receive() {
    throw new Error("cannot parse row");
  },
}), { capacity: 10, overflow: "drop-oldest" });
const healthy = system.spawn<number>("healthy", (ctx) => ({
  async receive() {
    await ctx.clock.sleep(5);
    healthyProcessed++;
  },
}), { capacity: 10, overflow: "backpressure" });

// Registered before the exit hook, so it prints before the process exits.
void system.terminated.then((t) => {
  console.log(`terminated code=${t.code} healthyProcessed=${healthyProcessed} reason=${t.reason}`);
});
installSignalHandlers(system, { deadlineMs: 10_000 });

for (let i = 0; i < 3; i++) await healthy.tell(i);
for (let i = 0; i < 5; i++) await flaky.tell(i);
