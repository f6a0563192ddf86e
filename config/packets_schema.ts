/**
 * The packet-capture parts of the config (a contract: extend, never reshape):
 * - `packets:` inside `signature_rules` and each `match_rules` entry, instead of `stream_filter:`, selects a tap
 *   from the node's own packets (or a pcap file) by protocol, ports, hosts, pod and direction;
 * - the top-level `packets:` section configures live capture on the node (`interface`, buffer, snap length).
 * @module
 */
import { z } from "zod";
import { parseCidr } from "../packets/taps.ts";
import { parseRtpCodecName } from "../packets/rtp_codecs.ts";

function expected(text: string): { error: string } {
  return { error: `expected ${text}` };
}

const port = z.number(expected("a port from 1 to 65535")).int(expected("a port from 1 to 65535"))
  .min(1, expected("a port from 1 to 65535")).max(65535, expected("a port from 1 to 65535"));

const PORT_RANGE = /^(\d{1,5})\s*-\s*(\d{1,5})$/;

/** Parses `40000-40999`; undefined when malformed or out of order. */
export function parsePortRange(text: string): [number, number] | undefined {
  const m = PORT_RANGE.exec(text.trim());
  if (!m) return undefined;
  const lo = Number(m[1]);
  const hi = Number(m[2]);
  return lo >= 1 && hi <= 65535 && lo <= hi ? [lo, hi] : undefined;
}

const POD_GLOB = /^[A-Za-z0-9*?._-]+(?:\/[A-Za-z0-9*?._-]+)?$/;

const payloadTypes = z
  .record(
    z.string().regex(/^(?:\d|[1-9]\d|1[01]\d|12[0-7])$/, expected("an RTP payload type from 0 to 127")),
    z.string().superRefine((s, ctx) => {
      const parsed = parseRtpCodecName(s);
      if ("error" in parsed) {
        ctx.addIssue({
          code: "custom",
          message:
            "expected a codec such as opus/48000, L16/16000, PCMU/8000, G722/8000 or telephone-event/8000",
          params: { found: `${JSON.stringify(s)} (${parsed.error})` },
        });
      }
    }),
  )
  .default({})
  .describe("rtp: dynamic payload types, e.g. { 96: opus/48000, 97: L16/16000 }.");

/** `packets:` of a signature or match rule: which packets make up this tap. */
export const packetTapSchema = z
  .strictObject({
    protocol: z.enum(["rtp", "websocket", "http", "nats", "redis", "grpc"])
      .describe("rtp | websocket | http | nats | redis | grpc (over cleartext HTTP/2)"),
    port: port.optional().describe("A port on either side of the flow."),
    ports: z.array(port).min(1, expected("at least one port")).optional(),
    port_range: z.string().refine(
      (s) => parsePortRange(s) !== undefined,
      expected("a range such as 40000-40999"),
    )
      .optional(),
    host: z.string().refine((s) => parseCidr(s) !== undefined, expected("an IPv4/IPv6 address or CIDR"))
      .optional().describe("An address or CIDR on either side of the flow."),
    pod: z.string().regex(POD_GLOB, expected("a glob on namespace/pod such as voice/telephony-*")).optional()
      .describe("Live capture with pod metadata: a glob on namespace/pod."),
    direction: z.enum(["any", "to_pod", "from_pod"]).default("any")
      .describe("Live capture with pod metadata: traffic into or out of the pod."),
    payload_types: payloadTypes,
    http_bodies: z.enum(["requests", "responses", "both"]).optional().describe(
      "http, grpc: which messages carry the audio: requests (default), responses (a TTS service's answers) or " +
        "both.",
    ),
  })
  .superRefine((p, ctx) => {
    if (p.http_bodies !== undefined && p.protocol !== "http" && p.protocol !== "grpc") {
      ctx.addIssue({
        code: "custom",
        path: ["http_bodies"],
        message: "expected no http_bodies: it applies to protocols http and grpc only",
        params: { found: `http_bodies with protocol ${p.protocol}` },
      });
    }
  })
  .transform((p) => ({
    protocol: p.protocol,
    ports: [...(p.port === undefined ? [] : [p.port]), ...(p.ports ?? [])],
    port_ranges: p.port_range === undefined ? [] : [parsePortRange(p.port_range)!],
    host: p.host,
    pod: p.pod,
    direction: p.direction,
    payload_types: p.payload_types,
    http_bodies: p.http_bodies ?? "requests",
  }));

/** A validated `packets:` tap. */
export type PacketTapConfig = z.output<typeof packetTapSchema>;

/** The top-level `packets:` section: live capture on this node. */
export const packetsSectionSchema = z.strictObject({
  interface: z.string().regex(/^[A-Za-z0-9_.:@-]*$/, expected("an interface name such as any or eth0"))
    .default("").describe("Live capture interface (e.g. any); empty: no live capture."),
  tcpdump: z.string().default("tcpdump").describe("The tcpdump binary that captures for the sensor."),
  snaplen: z.number().int().min(256, expected("an integer >= 256")).max(262144, expected("at most 262144"))
    .default(262144).describe("Bytes kept of each packet."),
  buffer_mib: z.number().int().min(1, expected("an integer >= 1")).max(4096, expected("at most 4096"))
    .default(32).describe("Kernel capture buffer per sensor (tcpdump -B)."),
  reorder_ms: z.number().int().min(0, expected("an integer >= 0")).max(2000, expected("at most 2000"))
    .default(200).describe("RTP: how long a reordered packet may arrive late and still take its place."),
  pod_metadata: z.enum(["auto", "kubernetes", "off"]).default("auto")
    .describe(
      "auto: the Kubernetes API when running in a pod; kubernetes: required; off: pods are addresses.",
    ),
});

/** The validated top-level `packets:` section. */
export type PacketsSection = z.output<typeof packetsSectionSchema>;
