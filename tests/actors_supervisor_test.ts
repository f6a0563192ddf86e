import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import {
  backoffDelay,
  DEFAULT_RESTART_POLICY,
  resolveRestartPolicy,
  type RestartDecision,
  RestartTracker,
} from "../actors/supervisor.ts";

const policy = resolveRestartPolicy({
  maxRestarts: 3,
  windowMs: 1000,
  backoffInitialMs: 10,
  backoffMaxMs: 50,
  factor: 3,
});

function delays(ds: RestartDecision[]): (number | "escalate")[] {
  return ds.map((d) => d.action === "restart" ? d.delayMs : "escalate");
}

Deno.test("backoffDelay grows by the factor and is capped", () => {
  deepStrictEqual([1, 2, 3, 4, 5].map((n) => backoffDelay(policy, n)), [10, 30, 50, 50, 50]);
  strictEqual(backoffDelay(DEFAULT_RESTART_POLICY, 1), 100);
  strictEqual(backoffDelay(DEFAULT_RESTART_POLICY, 3), 400);
});

Deno.test("RestartTracker: more than maxRestarts failures within the window escalates", () => {
  const t = new RestartTracker(policy);
  const ds = [0, 100, 200, 300].map((at) => t.recordFailure(at));
  deepStrictEqual(delays(ds), [10, 30, 50, "escalate"]);
  strictEqual(ds[3]?.failuresInWindow, 4);
});

Deno.test("RestartTracker: failures that left the window are forgotten, resetting the backoff", () => {
  const t = new RestartTracker(policy);
  deepStrictEqual(delays([t.recordFailure(0), t.recordFailure(500), t.recordFailure(900)]), [10, 30, 50]);
  // At 1000 the failure at 0 is exactly windowMs old and has left the window: 3 in window, no escalation.
  deepStrictEqual(delays([t.recordFailure(1000)]), [50]);
  // Long quiet period: back to the initial delay.
  const d = t.recordFailure(10_000);
  deepStrictEqual(delays([d]), [10]);
  strictEqual(d.failuresInWindow, 1);
});

Deno.test("RestartTracker: maxRestarts 0 escalates on the first failure", () => {
  const t = new RestartTracker(resolveRestartPolicy({ maxRestarts: 0 }));
  strictEqual(t.recordFailure(0).action, "escalate");
});

Deno.test("resolveRestartPolicy fills defaults, layers on a base and rejects bad values", () => {
  deepStrictEqual(resolveRestartPolicy(), DEFAULT_RESTART_POLICY);
  const p = resolveRestartPolicy({ factor: 1.5 }, policy);
  strictEqual(p.factor, 1.5);
  strictEqual(p.maxRestarts, 3);
  throws(() => resolveRestartPolicy({ maxRestarts: -1 }), /restart.maxRestarts/);
  throws(() => resolveRestartPolicy({ maxRestarts: 1.5 }), /restart.maxRestarts/);
  throws(() => resolveRestartPolicy({ windowMs: 0 }), /restart.windowMs/);
  throws(() => resolveRestartPolicy({ backoffInitialMs: -1 }), /restart.backoffInitialMs/);
  throws(() => resolveRestartPolicy({ backoffInitialMs: 100, backoffMaxMs: 50 }), /restart.backoffMaxMs/);
  throws(() => resolveRestartPolicy({ factor: 0.5 }), /restart.factor/);
  throws(() => resolveRestartPolicy({ windowMs: Number.NaN }), /restart.windowMs/);
});
