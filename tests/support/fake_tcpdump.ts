/**
 * A stand-in tcpdump for live packet-source tests (a script behind a `tcpdump` path the sensor runs).
 * @module
 */
import { join } from "node:path";

/**
 * A stand-in tcpdump writing `pcap`, then exiting (`exit`) or staying up with nothing more to say: answering
 * SIGUSR1 with its statistics as tcpdump does (`stay`), or hung and answering nothing (`hang`).
 */
export async function fakeTcpdump(
  pcap: Uint8Array,
  then: "exit" | "stay" | "hang",
): Promise<{ path: string; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "fsmpx-fake-tcpdump-" });
  const bytes = join(dir, "out.pcap");
  await Deno.writeFile(bytes, pcap);
  const script = join(dir, "fake_tcpdump.ts");
  await Deno.writeTextFile(
    script,
    `Deno.addSignalListener("SIGUSR1", () => {
  ${
      then === "hang" ? "" : `Deno.stderr.writeSync(new TextEncoder().encode(
    "3 packets captured\\n3 packets received by filter\\n0 packets dropped by kernel\\n",
  ));`
    }
});
await Deno.stderr.write(new TextEncoder().encode("listening on lo, link-type EN10MB (Ethernet)\\n"));
const out = Deno.stdout.writable.getWriter();
await out.write(await Deno.readFile(${JSON.stringify(bytes)}));
${then === "exit" ? "await out.close();\nDeno.exit(0);" : "await new Promise((r) => setTimeout(r, 600_000));"}
`,
  );
  const path = join(dir, "tcpdump");
  await Deno.writeTextFile(path, `#!/bin/sh\nexec '${Deno.execPath()}' run -A --no-check '${script}'\n`);
  await Deno.chmod(path, 0o755);
  return { path, dir };
}
