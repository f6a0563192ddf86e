/** Decode counters turned into deltas (actors/decode_reporter.ts), ticks with nothing new included. */
import { deepStrictEqual } from "node:assert/strict";
import { DecodeReporter } from "../actors/decode_reporter.ts";

Deno.test("decode reporter: each tick's delta is what moved since the last, whatever ticks moved nothing", () => {
  const r = new DecodeReporter({ measurement: "m", name: "relay", query: "m/relay" });
  const delta = (markers: Record<string, number>, errors: Record<string, number>) => [
    { measurement: "m", tap: "relay", query: "m/relay", markers, errors },
  ];
  r.observe("a", { markers: { gap: 1 }, errors: {} });
  r.observe("b", { markers: {}, errors: { bad_base64: 2, short: 0 } });
  deepStrictEqual(r.deltas(), delta({ gap: 1 }, { bad_base64: 2 }));
  // Nothing moved (the same counters, also as new objects): no delta, tick after tick.
  for (let k = 0; k < 3; k++) {
    r.observe("a", { markers: { gap: 1 }, errors: {} });
    r.observe("b", { markers: {}, errors: { bad_base64: 2, short: 0 } });
    deepStrictEqual(r.deltas(), []);
  }
  // A counter that moves later, one seen at 0 before, a stream forgotten with its last counts.
  const a = { markers: { gap: 4 }, errors: { short: 1 } };
  r.observe("a", a);
  a.markers.gap = 9;
  r.forget("b", { markers: {}, errors: { bad_base64: 2, short: 3 } });
  deepStrictEqual(r.deltas(), delta({ gap: 3 }, { short: 4 }));
  // The counts were copied: a caller's object that changes afterwards is seen as moved at the next observe.
  r.observe("a", a);
  deepStrictEqual(r.deltas(), delta({ gap: 5 }, {}));
});
