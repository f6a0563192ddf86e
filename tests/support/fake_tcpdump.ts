/**
 * A stand-in tcpdump for live packet-source tests (a script behind a `tcpdump` path the sensor runs).
 * @module
 */
import { join } from "node:path";

/**
 * A stand-in tcpdump writing `pcap`, then exiting (`exit`) or staying up with nothing more to say: answering
 * SIGUSR1 with its statistics as tcpdump does (`stay`), hung and answering nothing (`hang`), or answering its
 * statistics but deaf to SIGTERM and SIGINT (`deaf`: a tcpdump stuck where it does not act on its stop; only
 * SIGKILL ends it).
 */
export async function fakeTcpdump(
  pcap: Uint8Array,
  then: "exit" | "stay" | "hang" | "deaf",
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
${
      then === "deaf"
        ? 'for (const s of ["SIGTERM", "SIGINT"] as const) Deno.addSignalListener(s, () => {});'
        : ""
    }
await Deno.stderr.write(new TextEncoder().encode("listening on lo, link-type EN10MB (Ethernet)\\n"));
const out = Deno.stdout.writable.getWriter();
await out.write(await Deno.readFile(${JSON.stringify(bytes)}));
${
      then === "exit"
        ? "await out.close();\nDeno.exit(0);"
        // Deaf, it stays up for 30 s only: a test of a stop that waits on it fails without hanging for long.
        : `await new Promise((r) => setTimeout(r, ${then === "deaf" ? 30_000 : 600_000}));`
    }
`,
  );
  const path = join(dir, "tcpdump");
  await Deno.writeTextFile(path, `#!/bin/sh\nexec '${Deno.execPath()}' run -A --no-check '${script}'\n`);
  await Deno.chmod(path, 0o755);
  return { path, dir };
}
