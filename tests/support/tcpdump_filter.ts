/**
 * A BPF filter applied by the real tcpdump to a capture file: `tcpdump -r IN -w OUT FILTER`, the same libpcap
 * compiler and filter machine as a live capture.
 * @module
 */

/** The frames of `pcap` that `filter` keeps, as the real tcpdump applies it. */
export async function filtered(pcap: Uint8Array, filter: string): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/in.pcap`, pcap);
    const out = await new Deno.Command("tcpdump", {
      args: ["--time-stamp-precision=nano", "-r", `${dir}/in.pcap`, "-w", `${dir}/out.pcap`, filter],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    return await Deno.readFile(`${dir}/out.pcap`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
