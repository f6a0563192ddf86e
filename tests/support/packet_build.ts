/**
 * Hand-built packets, capture files and taps for the packet-layer unit tests: RTP, UDP, TCP, IPv4 (with options),
 * IPv6 (with extension headers), Ethernet (with VLAN tags), Linux cooked v1/v2, NULL/LOOP, and pcapng files
 * (either byte order, any if_tsresol / if_tsoffset, several sections). Written from the RFCs and the pcapng
 * draft, independently of the decoders they test.
 * @module
 */
import type { PacketTap } from "../../packets/taps.ts";

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function u16be(v: number): number[] {
  return [(v >> 8) & 0xff, v & 0xff];
}

function u32be(v: number): number[] {
  return [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
}

/** RTP packet fields; defaults make a plain PCMU packet. */
export interface RtpSpec {
  pt?: number;
  seq: number;
  ts: number;
  ssrc: number;
  marker?: boolean;
  csrc?: number[];
  /** Header extension: profile and data (padded by the caller to a multiple of 4). */
  ext?: { profile: number; data: Uint8Array };
  /** Padding bytes to append (the last one holds the count). */
  padding?: number;
  version?: number;
}

/** An RTP packet with `payload`. */
export function rtp(spec: RtpSpec, payload: Uint8Array): Uint8Array {
  const cc = spec.csrc?.length ?? 0;
  const b0 = ((spec.version ?? 2) << 6) | (spec.padding ? 0x20 : 0) | (spec.ext ? 0x10 : 0) | cc;
  const b1 = (spec.marker ? 0x80 : 0) | (spec.pt ?? 0);
  const head = [b0, b1, ...u16be(spec.seq), ...u32be(spec.ts), ...u32be(spec.ssrc)];
  for (const c of spec.csrc ?? []) head.push(...u32be(c));
  const parts: Uint8Array[] = [new Uint8Array(head)];
  if (spec.ext) {
    parts.push(
      new Uint8Array([...u16be(spec.ext.profile), ...u16be(spec.ext.data.length / 4)]),
      spec.ext.data,
    );
  }
  parts.push(payload);
  if (spec.padding) {
    const pad = new Uint8Array(spec.padding);
    pad[spec.padding - 1] = spec.padding;
    parts.push(pad);
  }
  return concat(...parts);
}

/** A UDP header + payload (checksum left 0, as offloaded captures have it). */
export function udp(srcPort: number, dstPort: number, payload: Uint8Array, lengthField?: number): Uint8Array {
  return concat(
    new Uint8Array([...u16be(srcPort), ...u16be(dstPort), ...u16be(lengthField ?? 8 + payload.length), 0, 0]),
    payload,
  );
}

/** A TCP header (20 bytes + `options`, padded to 4) + payload. */
export function tcp(
  srcPort: number,
  dstPort: number,
  seq: number,
  ack: number,
  flags: number,
  payload: Uint8Array,
  options: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const optLen = (options.length + 3) & ~3;
  const doff = (20 + optLen) / 4;
  const head = new Uint8Array(20 + optLen);
  head.set([
    ...u16be(srcPort),
    ...u16be(dstPort),
    ...u32be(seq),
    ...u32be(ack),
    doff << 4,
    flags,
    0xff,
    0xff,
  ]);
  head.set(options, 20);
  return concat(head, payload);
}

function parseV4(a: string): number[] {
  return a.split(".").map(Number);
}

/** IPv4 header + transport. `options` (multiple of 4 bytes) lengthen the header; `frag` is the flags/offset word. */
export function ipv4(
  src: string,
  dst: string,
  proto: number,
  transport: Uint8Array,
  opts: { options?: Uint8Array; frag?: number; totalLength?: number } = {},
): Uint8Array {
  const optLen = opts.options?.length ?? 0;
  const ihl = (20 + optLen) / 4;
  const total = opts.totalLength ?? 20 + optLen + transport.length;
  const head = new Uint8Array(20 + optLen);
  head.set([0x40 | ihl, 0, ...u16be(total), 0x12, 0x34, ...u16be(opts.frag ?? 0x4000), 64, proto, 0, 0]);
  head.set(parseV4(src), 12);
  head.set(parseV4(dst), 16);
  if (opts.options) head.set(opts.options, 20);
  return concat(head, transport);
}

/** 16 bytes of an IPv6 address written in full or with one "::". */
export function v6Bytes(a: string): number[] {
  const [l, r] = a.includes("::") ? a.split("::") : [a, undefined];
  const left = l ? l.split(":") : [];
  const right = r ? r.split(":") : [];
  const groups = r === undefined
    ? left
    : [...left, ...Array(8 - left.length - right.length).fill("0"), ...right];
  return groups.flatMap((g) => u16be(parseInt(g, 16)));
}

/** One IPv6 extension header: next header is filled in by {@link ipv6}. */
export interface V6Ext {
  /** 0 hop-by-hop, 43 routing, 60 destination options, 44 fragment, 51 AH. */
  type: number;
  /** Body after the 2-byte (next header, length) prefix; for fragment: [offsetAndFlags u16, id u32]. */
  body: Uint8Array;
}

/** IPv6 header + extension headers + transport. */
export function ipv6(
  src: string,
  dst: string,
  proto: number,
  transport: Uint8Array,
  exts: V6Ext[] = [],
): Uint8Array {
  const extBytes: Uint8Array[] = [];
  for (let i = 0; i < exts.length; i++) {
    const e = exts[i]!;
    const next = i + 1 < exts.length ? exts[i + 1]!.type : proto;
    const total = 2 + e.body.length;
    let lenField: number;
    if (e.type === 44) lenField = 0;
    else if (e.type === 51) lenField = total / 4 - 2;
    else lenField = total / 8 - 1;
    extBytes.push(concat(new Uint8Array([next, lenField]), e.body));
  }
  const payload = concat(...extBytes, transport);
  const head = new Uint8Array(40);
  head.set([0x60, 0, 0, 0, ...u16be(payload.length), exts[0]?.type ?? proto, 64]);
  head.set(v6Bytes(src), 8);
  head.set(v6Bytes(dst), 24);
  return concat(head, payload);
}

/** Ethernet frame with optional VLAN tags (outer first: [tpid, vid]). */
export function ethernet(etherType: number, payload: Uint8Array, tags: [number, number][] = []): Uint8Array {
  const head = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
  for (const [tpid, vid] of tags) head.push(...u16be(tpid), ...u16be(vid));
  head.push(...u16be(etherType));
  return concat(new Uint8Array(head), payload);
}

/** Linux cooked v1 header (16 bytes) + payload. */
export function sll(protocol: number, payload: Uint8Array): Uint8Array {
  return concat(
    new Uint8Array([0, 0, 0x03, 0x04, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, ...u16be(protocol)]),
    payload,
  );
}

/** Linux cooked v2 header (20 bytes) + payload. */
export function sll2(protocol: number, payload: Uint8Array): Uint8Array {
  return concat(
    new Uint8Array([...u16be(protocol), 0, 0, 0, 0, 0, 1, 0x03, 0x04, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0]),
    payload,
  );
}

/** NULL (host order, here little-endian) or LOOP (network order) 4-byte family + payload. */
export function loopback(af: number, payload: Uint8Array, bigEndian: boolean): Uint8Array {
  const h = new Uint8Array(4);
  new DataView(h.buffer).setUint32(0, af, !bigEndian);
  return concat(h, payload);
}

/**
 * A nanosecond pcap record of a 20 ms PCMU packet (payload bytes all `seq`) from 10.0.0.1:`srcPort` to
 * 10.0.0.2:40000 over Ethernet, captured `ms` after `sec`: the live packet-source tests' stream.
 */
export function pcmuRecord(
  srcPort: number,
  ssrc: number,
  seq: number,
  ms: number,
  sec = 1_700_000_000,
): { sec: number; frac: number; data: Uint8Array } {
  const payload = rtp({ seq, ts: seq * 160, ssrc }, new Uint8Array(160).fill(seq));
  return {
    sec,
    frac: ms * 1_000_000,
    data: ethernet(0x0800, ipv4("10.0.0.1", "10.0.0.2", 17, udp(srcPort, 40000, payload))),
  };
}

/** Classic pcap with either magic and byte order; records given as raw (sec, frac, caplen, origlen, data). */
export function classicPcap(
  opts: { nanosecond: boolean; littleEndian: boolean; linkType: number; snapLen?: number },
  records: { sec: number; frac: number; data: Uint8Array; origLen?: number; capLenField?: number }[],
): Uint8Array {
  const le = opts.littleEndian;
  const head = new Uint8Array(24);
  const v = new DataView(head.buffer);
  v.setUint32(0, opts.nanosecond ? 0xa1b23c4d : 0xa1b2c3d4, le);
  v.setUint16(4, 2, le);
  v.setUint16(6, 4, le);
  v.setUint32(16, opts.snapLen ?? 262144, le);
  v.setUint32(20, opts.linkType, le);
  const parts: Uint8Array[] = [head];
  for (const r of records) {
    const h = new Uint8Array(16);
    const hv = new DataView(h.buffer);
    hv.setUint32(0, r.sec, le);
    hv.setUint32(4, r.frac, le);
    hv.setUint32(8, r.capLenField ?? r.data.length, le);
    hv.setUint32(12, r.origLen ?? r.data.length, le);
    parts.push(h, r.data);
  }
  return concat(...parts);
}

/** pcapng builder: blocks in the chosen byte order. */
export class PcapngBuilder {
  readonly #parts: Uint8Array[] = [];
  #le = true;

  #block(type: number, body: Uint8Array): this {
    const padded = (body.length + 3) & ~3;
    const len = 12 + padded;
    const b = new Uint8Array(len);
    const v = new DataView(b.buffer);
    v.setUint32(0, type, this.#le);
    v.setUint32(4, len, this.#le);
    b.set(body, 8);
    v.setUint32(len - 4, len, this.#le);
    this.#parts.push(b);
    return this;
  }

  #opts(list: [number, Uint8Array][]): Uint8Array {
    const parts: Uint8Array[] = [];
    for (const [code, val] of list) {
      const h = new Uint8Array(4);
      const v = new DataView(h.buffer);
      v.setUint16(0, code, this.#le);
      v.setUint16(2, val.length, this.#le);
      parts.push(h, val, new Uint8Array(((val.length + 3) & ~3) - val.length));
    }
    if (list.length > 0) parts.push(new Uint8Array(4)); // opt_endofopt
    return concat(...parts);
  }

  /** Section header block; starts a new section in the given byte order. */
  section(littleEndian: boolean): this {
    this.#le = littleEndian;
    const body = new Uint8Array(16);
    const v = new DataView(body.buffer);
    v.setUint32(0, 0x1a2b3c4d, littleEndian);
    v.setUint16(4, 1, littleEndian);
    v.setUint16(6, 0, littleEndian);
    v.setInt32(8, -1, littleEndian);
    v.setInt32(12, -1, littleEndian);
    return this.#block(0x0a0d0d0a, body);
  }

  /** Interface description block with optional if_tsresol (code 9) and if_tsoffset (code 14, seconds). */
  iface(linkType: number, opts: { tsresol?: number; tsoffset?: bigint; snapLen?: number } = {}): this {
    const head = new Uint8Array(8);
    const v = new DataView(head.buffer);
    v.setUint16(0, linkType, this.#le);
    v.setUint32(4, opts.snapLen ?? 0, this.#le);
    const options: [number, Uint8Array][] = [];
    if (opts.tsresol !== undefined) options.push([9, new Uint8Array([opts.tsresol])]);
    if (opts.tsoffset !== undefined) {
      const o = new Uint8Array(8);
      new DataView(o.buffer).setBigInt64(0, opts.tsoffset, this.#le);
      options.push([14, o]);
    }
    return this.#block(1, concat(head, this.#opts(options)));
  }

  /** Enhanced packet block with a 64-bit timestamp in the interface's units. */
  epb(ifId: number, units: bigint, data: Uint8Array, origLen?: number): this {
    const head = new Uint8Array(20);
    const v = new DataView(head.buffer);
    v.setUint32(0, ifId, this.#le);
    v.setUint32(4, Number(units >> 32n), this.#le);
    v.setUint32(8, Number(units & 0xffffffffn), this.#le);
    v.setUint32(12, data.length, this.#le);
    v.setUint32(16, origLen ?? data.length, this.#le);
    return this.#block(6, concat(head, data));
  }

  /** Simple packet block (no timestamp, interface 0). */
  spb(data: Uint8Array, origLen?: number): this {
    const head = new Uint8Array(4);
    new DataView(head.buffer).setUint32(0, origLen ?? data.length, this.#le);
    return this.#block(3, concat(head, data));
  }

  /** Any other block (e.g. interface statistics, type 5), to be skipped. */
  other(type: number, body: Uint8Array): this {
    return this.#block(type, body);
  }

  /** Raw bytes appended as they are (for corrupt-file tests). */
  raw(bytes: Uint8Array): this {
    this.#parts.push(bytes);
    return this;
  }

  bytes(): Uint8Array {
    return concat(...this.#parts);
  }
}

/** A tap for tests: RTP on any port and direction, no payload-type table, query `m/source`; `p` overrides. */
export function rtpTap(p: Partial<PacketTap> = {}): PacketTap {
  return {
    query: "m/source",
    protocol: "rtp",
    ports: [],
    portRanges: [],
    direction: "any",
    payloadTypes: new Map(),
    ...p,
  };
}

/** A Fragment header: offset `off` in bytes (a multiple of 8: the 13-bit field in 8-octet units), M, 32-bit id. */
export function fragmentHeader(off: number, more: boolean, id: number): V6Ext {
  return {
    type: 44,
    body: new Uint8Array([
      off >> 8,
      (off & 0xf8) | (more ? 1 : 0),
      id >>> 24,
      (id >> 16) & 0xff,
      (id >> 8) & 0xff,
      id & 0xff,
    ]),
  };
}
