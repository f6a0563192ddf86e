/**
 * A tap's `host` written with host bits set (`10.1.2.3/8`, as the config accepts and as matching reads it: the
 * block 10.0.0.0/8) becomes a BPF filter tcpdump compiles. libpcap refuses `net 10.1.2.3/8` ("non-network bits
 * set"), so the live capture failed at every start and the packet side of the sensor never captured anything.
 */
import assert from "node:assert/strict";
import { bpfFilter, inCidr, parseCidr } from "../packets/taps.ts";
import { rtpTap } from "./support/packet_build.ts";
import { gatedTest } from "./support/tools.ts";

const tcpdumpTest = await gatedTest(import.meta.url, ["tcpdump"]);

/** What an RTP tap's filter adds for fragments (see tests/packets_s28_bpf_fragments_test.ts). */
const UDP_FRAGMENTS = "((ip proto 17 and ip[6:2] & 0x1fff != 0) or (ip6[6] == 44 and ip6[40] == 17))";

const taps = () => [
  rtpTap({ ports: [40000], host: parseCidr("10.1.2.3/8") }),
  rtpTap({ protocol: "websocket", ports: [8080], host: parseCidr("fd00::1:2/64") }),
  rtpTap({ protocol: "nats", ports: [4222], host: parseCidr("192.168.7.9/20") }),
];

Deno.test("bpf: a host block is written as its network, the block matching reads", () => {
  assert.equal(
    bpfFilter(taps()),
    "(udp and port 40000 and net 10.0.0.0/8) or " +
      `(${UDP_FRAGMENTS} and net 10.0.0.0/8) or (tcp and port 8080 and net fd00:0:0:0:0:0:0:0/64) or ` +
      "(tcp and port 4222 and net 192.168.0.0/20)",
  );
  // The same block the taps match flows by.
  assert.ok(inCidr("10.200.0.1", parseCidr("10.1.2.3/8")!));
  assert.ok(inCidr("192.168.15.255", parseCidr("192.168.7.9/20")!));
  assert.ok(!inCidr("192.168.16.0", parseCidr("192.168.7.9/20")!));
  // Addresses and blocks without host bits are written as before.
  assert.equal(
    bpfFilter([rtpTap({ host: parseCidr("10.0.0.7") })]),
    `(udp and net 10.0.0.7/32) or (${UDP_FRAGMENTS} and net 10.0.0.7/32)`,
  );
  assert.equal(
    bpfFilter([rtpTap({ host: parseCidr("10.0.0.0/8") })]),
    `(udp and net 10.0.0.0/8) or (${UDP_FRAGMENTS} and net 10.0.0.0/8)`,
  );
});

tcpdumpTest("bpf: tcpdump compiles the filter of taps whose hosts have host bits set", async () => {
  const out = await new Deno.Command("tcpdump", {
    args: ["-d", "-y", "EN10MB", bpfFilter(taps())],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
});
