/** util/input_meter.ts: the share of recent time a stream's reader found input waiting, on a synthetic clock. */
import { equal, ok } from "node:assert/strict";
import { InputMeter } from "../util/input_meter.ts";

Deno.test("input meter: near 1 while responses are always waiting, low once the reader waits for them", () => {
  let now = 0;
  const m = new InputMeter(() => now);
  equal(m.busyFraction(), 0);
  // 3 s: each response handled in 9 ms, the next one there after 1 ms (a backlog in the peer).
  for (let i = 0; i < 300; i++) {
    m.working();
    now += 9;
    m.waiting();
    now += 1;
  }
  ok(m.busyFraction() > 0.85, `${m.busyFraction()}`);
  // 3 s: each handled in 2 ms, then 18 ms until the next (a slow peer): it falls within a few seconds.
  for (let i = 0; i < 150; i++) {
    m.working();
    now += 2;
    m.waiting();
    now += 18;
  }
  ok(m.busyFraction() < 0.2, `${m.busyFraction()}`);
});
