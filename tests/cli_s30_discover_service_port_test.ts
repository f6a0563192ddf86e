/**
 * `discover` on a packet capture proposes TCP taps on the service's port. A NATS server greets every client first
 * (`INFO {...}`), and `discover` took the sender of a connection's first bytes for the client: every NATS group was
 * proposed on a client's ephemeral port (one group, and one useless tap, per connection, none of them on the server's
 * port). The port a connection was opened to (its SYN) is the service port; without the SYN (a capture begun
 * mid-connection), a server's first bytes (NATS `INFO`/`MSG`, an HTTP or WebSocket response, a RESP reply) say so.
 * Real parts: nats-server and the NATS client on loopback, captured by tcpdump; the discover code on the file.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { discoverPacketFile } from "../cli/discover_packets.ts";
import { NatsServer } from "./support/nats_server.ts";
import { readPcap, tcpPacket, writePcap } from "./support/pcap_min.ts";
import { startTcpdump } from "./support/tcp_capture.ts";
import { gatedTest } from "./support/tools.ts";
import { TcpFlag } from "../packets/types.ts";

const test = await gatedTest(import.meta.url, ["root", "tcpdump", "nats-server"]);

/** μ-law of a 16-bit sample (G.711). */
function mulaw(x: number): number {
  let s = Math.max(-32635, Math.min(32635, Math.round(x)));
  const sign = s < 0 ? 0x80 : 0;
  if (s < 0) s = -s;
  s += 0x84;
  let exp = 7;
  for (let m = 0x4000; (s & m) === 0 && exp > 0; m >>= 1) exp--;
  return ~(sign | (exp << 4) | ((s >> (exp + 3)) & 0x0f)) & 0xff;
}

test("discover: NATS taps go on the server's port, with or without the connections' SYNs", async () => {
  const dir = await Deno.makeTempDir();
  const server = await NatsServer.start();
  try {
    const file = join(dir, "nats.pcap");
    const dump = await startTcpdump(file, `tcp port ${server.port}`);
    const pub = await connect({ servers: server.url });
    const sub = await connect({ servers: server.url });
    let got = 0;
    const s = sub.subscribe("audio.call1");
    const done = (async () => {
      for await (const _ of s) if (++got === 100) break;
    })();
    await sub.flush();
    // 2 s of a modulated tone as 20 ms μ-law messages, published and delivered to the subscriber.
    let n = 0;
    for (let i = 0; i < 100; i++) {
      const b = new Uint8Array(160);
      for (let k = 0; k < 160; k++, n++) {
        const t = n / 8000;
        b[k] = mulaw(8000 * Math.sin(2 * Math.PI * 440 * t) * (0.5 + 0.5 * Math.sin(2 * Math.PI * 3 * t)));
      }
      pub.publish("audio.call1", b);
      await new Promise((r) => setTimeout(r, 20));
    }
    await done;
    await pub.close();
    await sub.close();
    assert.equal(await dump.stop(), 0, "kernel drops");

    const check = async (path: string) => {
      const d = await discoverPacketFile(path);
      const nats = d.groups.filter((g) => g.protocol === "nats");
      const seen = d.groups.map((g) => `${g.protocol} ${g.port} ${g.direction ?? ""}`).join("; ");
      assert.ok(nats.length > 0, seen);
      assert.deepEqual([...new Set(nats.map((g) => g.port))], [server.port], seen);
      assert.ok(
        d.config?.includes(`packets: { protocol: nats, port: ${server.port} }`),
        d.config ?? "no config",
      );
    };
    await check(file);
    // The same capture begun after the connections were opened: no SYN, the server's INFO comes first.
    const pcap = readPcap(await Deno.readFile(file));
    pcap.records = pcap.records.filter((r) =>
      ((tcpPacket(pcap.linkType, r)?.tcp?.flags ?? 0) & TcpFlag.SYN) === 0
    );
    const noSyn = join(dir, "nosyn.pcap");
    await Deno.writeFile(noSyn, writePcap(pcap));
    await check(noSyn);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
