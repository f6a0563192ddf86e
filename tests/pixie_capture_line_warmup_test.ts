import { equal, ok } from "node:assert/strict";
import { join } from "node:path";

const ROOT = new URL("../", import.meta.url).pathname;

Deno.test("capture line reader: branches first taken late in a capture do not throw its optimized code away", async () => {
  // 40,000 usual lines (the reader gets optimized on them), then lines of kinds it had not read yet: base64 cells,
  // booleans, negative and long numbers, times of other lengths, another key order. Without the warm-up each
  // kind is a branch without type feedback, and V8 deoptimizes the reader (and compiles it again).
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "n.jsonl");
    const lines = ['{"capture":1,"node":"n"}'];
    const body = `{\\"event\\":\\"media\\",\\"media\\":{\\"payload\\":\\"${"QUJD".repeat(40)}\\"}}`;
    for (let i = 0; i < 40_000; i++) {
      lines.push(
        `{"query":"m/a","row":{"time_":"${1763900000000000000n + BigInt(i)}","pod":"ns/p","port":${
          20000 + (i % 50)
        },"req_body":"${body}"}}`,
      );
    }
    for (let i = 0; i < 2000; i++) {
      lines.push(
        `{"query":"m/b","row":{"time_":"${
          1763900001000000000n + BigInt(i)
        }","pod":"ns/q","port":-${i},"n":1234567890123456${i % 10},"req_body":{"base64":"${
          "QUJD".repeat(30)
        }${i % 2 ? "QQ==" : "QUI="}"},"t":true,"f":false}}`,
      );
      lines.push(`{"query":"m/c","row":{"req_body":"x${i}","time_":"${i}","e":""}}`);
    }
    await Deno.writeTextFile(file, lines.join("\n") + "\n");
    const script = join(dir, "read.ts");
    await Deno.writeTextFile(
      script,
      `import { openCapture } from ${JSON.stringify(join(ROOT, "pixie/capture.ts"))};
const r = await openCapture(${JSON.stringify(file)});
let n = 0;
for await (const b of r.batches()) { n += b.length; r.release(b); }
console.log("rows", n, "problems", r.problemCount);
`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--v8-flags=--trace-deopt", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    ok(out.success, new TextDecoder().decode(out.stderr));
    ok(text.includes(`rows ${40_000 + 4000} problems 0`), text.slice(-500));
    const deopts = text.split("\n").filter((l) =>
      l.includes("bailout") && l.includes("Insufficient type feedback") &&
      /<JSFunction (readLine|readCaptureLine|stringCell|base64Cell|decimalString|integer|name) /.test(l)
    );
    equal(deopts.length, 0, deopts.join("\n"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
