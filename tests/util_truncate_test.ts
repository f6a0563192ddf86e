import { deepStrictEqual } from "node:assert/strict";
import { truncate } from "../util/truncate.ts";

Deno.test("truncate: shortens to the first n elements, leaves a shorter array as it is", () => {
  const a: number[] = [1, 2, 3, 4, 5];
  truncate(a, 2);
  deepStrictEqual(a, [1, 2]);
  truncate(a, 5);
  deepStrictEqual(a, [1, 2]);
  truncate(a, 0);
  deepStrictEqual(a.length, 0);
  a.push(7);
  deepStrictEqual(a, [7]);
});
