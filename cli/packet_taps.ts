/**
 * The wiring from config to the packet layer: the `packets:` rules of every measurement as {@link PacketTap}s,
 * and the live capture settings.
 * @module
 */
import { queryName } from "../util/query_name.ts";
import type { Config, PacketTapConfig } from "../config/schema.ts";
import { type PacketTap, parseCidr } from "../packets/taps.ts";
import { parseRtpCodecName, type RtpCodec } from "../packets/rtp_codecs.ts";
import { SOURCE_TAP } from "../pixie/row.ts";

function tapOf(query: string, p: PacketTapConfig): PacketTap {
  const payloadTypes = new Map<number, RtpCodec>();
  for (const [pt, name] of Object.entries(p.payload_types)) {
    const c = parseRtpCodecName(name);
    // The schema already refused names that do not parse.
    if (!("error" in c)) payloadTypes.set(Number(pt), c);
  }
  return {
    query,
    protocol: p.protocol,
    ports: p.ports,
    portRanges: p.port_ranges,
    host: p.host === undefined ? undefined : parseCidr(p.host),
    pod: p.pod,
    direction: p.direction,
    payloadTypes,
    httpBodies: p.http_bodies,
  };
}

/** Every packet tap of the config (rules with `packets:`), one per query `<measurement>/<tap>`. */
export function packetTapsFromConfig(config: Config): PacketTap[] {
  const taps: PacketTap[] = [];
  for (const m of config.measurements) {
    if (m.signature_rules.packets) {
      taps.push(tapOf(queryName(m.name, SOURCE_TAP), m.signature_rules.packets));
    }
    for (const r of m.match_rules) if (r.packets) taps.push(tapOf(queryName(m.name, r.stage), r.packets));
  }
  return taps;
}

/** Whether any rule reads Pixie (a `stream_filter`). */
export function usesPixie(config: Config): boolean {
  return config.measurements.some((m) =>
    m.signature_rules.stream_filter !== undefined || m.match_rules.some((r) => r.stream_filter !== undefined)
  );
}
