/**
 * `demo` with traces on: the line that reports the spans sent names the collector without the password an
 * `otlp.endpoint` may carry (README: endpoint credentials are never logged). Real parts: the demo process and an
 * OTLP/HTTP receiver on loopback.
 */
import { equal, ok } from "node:assert/strict";
import { startOtlpReceiver } from "./support/otlp_receiver.ts";
import { ROOT } from "./support/sensor_process.ts";

Deno.test("demo: the traces line masks a password in otlp.endpoint", async () => {
  const rx = await startOtlpReceiver();
  const dir = await Deno.makeTempDir({ prefix: "fsmpx-demo-otlp-" });
  try {
    const password = "Tr0ub4dor-s3cret";
    const config = (await Deno.readTextFile(`${ROOT}fixtures/demo/config.yaml`)) +
      `\notlp:\n  endpoint: ${rx.endpoint.replace("://", `://fsm:${password}@`)}\n`;
    await Deno.writeTextFile(`${dir}/config.yaml`, config);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${ROOT}main.ts`,
        "demo",
        "--config",
        `${dir}/config.yaml`,
        "--speed",
        "1000",
        "--exit",
        "--listen",
        "127.0.0.1:0",
        "--ui",
        "127.0.0.1:0",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    equal(out.code, 0, text);
    ok(/traces: [1-9]\d* spans sent to /.test(text), text);
    ok(rx.spans.length > 0, "the collector got the spans");
    ok(
      !text.includes(password),
      `the password is printed:\n${text.split("\n").filter((l) => l.includes(password))}`,
    );
  } finally {
    await rx.close();
    await Deno.remove(dir, { recursive: true });
  }
});
