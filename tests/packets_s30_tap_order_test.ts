/**
 * Which parser reads a TCP direction when taps of different protocols take it: one that names the flow's port
 * before one of any port. Before, the first tap in the config decided, so a measurement of every HTTP body (an
 * `http` tap without ports) put ahead of a WebSocket measurement had the HTTP parser read the WebSocket's port:
 * an upgrade, then nothing, and the WebSocket measurement got no row at all ("no source rows").
 * Real parts: the bundled demo capture (a Deno client, voice bot and ASR over WebSocket on loopback, tcpdump) read
 * by the packet source.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { PacketSource } from "../packets/packet_source.ts";
import { PcapReader } from "../packets/pcap.ts";
import type { PacketTap } from "../packets/taps.ts";
import { ROOT } from "./support/sensor_process.ts";

const tap = (query: string, protocol: PacketTap["protocol"], ports: number[]): PacketTap => ({
  query,
  protocol,
  ports,
  portRanges: [],
  direction: "any",
  payloadTypes: new Map(),
});

async function rowsPerQuery(taps: PacketTap[]): Promise<Map<string, number>> {
  const src = new PacketSource({ taps, node: "n" });
  using file = await Deno.open(join(ROOT, "fixtures/demo_packets/node-ws.pcap"));
  const counts = new Map<string, number>();
  const take = (rows: { query: string }[]) => {
    for (const r of rows) counts.set(r.query, (counts.get(r.query) ?? 0) + 1);
  };
  for await (const f of new PcapReader(file)) take(src.push(f));
  take(src.finish());
  return counts;
}

Deno.test("tap order: an http tap of any port ahead of WebSocket taps does not take their ports", async () => {
  const alone = await rowsPerQuery([
    tap("ws/source", "websocket", [28080]),
    tap("ws/asr", "websocket", [28090]),
  ]);
  assert.ok(
    (alone.get("ws/source") ?? 0) > 700 && (alone.get("ws/asr") ?? 0) > 150,
    JSON.stringify([...alone]),
  );
  const both = await rowsPerQuery([
    tap("uploads/source", "http", []),
    tap("ws/source", "websocket", [28080]),
    tap("ws/asr", "websocket", [28090]),
  ]);
  assert.equal(both.get("ws/source"), alone.get("ws/source"));
  assert.equal(both.get("ws/asr"), alone.get("ws/asr"));
  assert.equal(both.get("uploads/source"), undefined);
});
