import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { groupDigits } from "../util/group_digits.ts";

Deno.test("groupDigits prints integers as Intl.NumberFormat en-US does", () => {
  const nf = new Intl.NumberFormat("en-US", { maximumFractionDigits: 20 });
  for (const x of [0, 7, 12, 999, 1000, 1001, 12345, 999999, 1000000, 1234567890, -1, -1000, -987654321]) {
    assertEquals(groupDigits(x), nf.format(x), String(x));
  }
  assertEquals(groupDigits(Number.MAX_SAFE_INTEGER), nf.format(Number.MAX_SAFE_INTEGER));
});

Deno.test("groupDigits keeps a fraction and leaves what is not a plain number alone", () => {
  assertEquals(groupDigits(1234.5), "1,234.5");
  assertEquals(groupDigits(-0.25), "-0.25");
  assertEquals(groupDigits(NaN), "NaN");
  assertEquals(groupDigits(Infinity), "Infinity");
  assertEquals(groupDigits(1e21), "1e+21");
});
