import { deepEqual, equal, throws } from "node:assert/strict";
import { interleave, selectChannel } from "../audio/decode/channels.ts";

Deno.test("selectChannel: mono passes through untouched", () => {
  const x = new Float32Array([0.1, 0.2]);
  equal(selectChannel(x, 1, 0), x);
  equal(selectChannel(x, 1, "mix"), x);
});

Deno.test("selectChannel: picks one channel of interleaved frames", () => {
  const x = new Float32Array([1, 10, 100, 2, 20, 200]);
  deepEqual(Array.from(selectChannel(x, 3, 0)), [1, 2]);
  deepEqual(Array.from(selectChannel(x, 3, 1)), [10, 20]);
  deepEqual(Array.from(selectChannel(x, 3, 2)), [100, 200]);
});

Deno.test("selectChannel: mix averages the channels of each frame", () => {
  const x = new Float32Array([0.5, -0.5, 0.25, 0.75]);
  deepEqual(Array.from(selectChannel(x, 2, "mix")), [0, 0.5]);
});

Deno.test("selectChannel: a trailing partial frame is dropped", () => {
  deepEqual(Array.from(selectChannel(new Float32Array([1, 2, 3]), 2, 1)), [2]);
});

Deno.test("selectChannel: a channel outside the layout is a RangeError", () => {
  throws(() => selectChannel(new Float32Array(4), 2, 2), RangeError);
  throws(() => selectChannel(new Float32Array(4), 2, -1), RangeError);
  throws(() => selectChannel(new Float32Array(4), 0, 0), RangeError);
});

Deno.test("interleave is the inverse of picking each channel", () => {
  const left = new Float32Array([1, 2, 3]);
  const right = new Float32Array([4, 5, 6]);
  const x = interleave([left, right]);
  deepEqual(Array.from(x), [1, 4, 2, 5, 3, 6]);
  deepEqual(Array.from(selectChannel(x, 2, 0)), Array.from(left));
  deepEqual(Array.from(selectChannel(x, 2, 1)), Array.from(right));
});
