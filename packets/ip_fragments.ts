/**
 * IP fragment reassembly for UDP, IPv4 and IPv6: a datagram larger than the path's MTU (L16 at 44.1 or 48 kHz in
 * 20 ms packets is 1,764-3,840 bytes; large Opus frames) reaches the capture as fragments, of which only the first
 * carries the UDP header. The capture sees them before the kernel reassembles them, so without this every such
 * packet was skipped (`ip_fragment`) and the stream never seen.
 *
 * Fragments are collected per (source, destination, identification: 16 bits in IPv4's header, 32 in IPv6's
 * Fragment header; UDP only, so the protocol needs no place in the key); when every byte up to the last
 * fragment's end has arrived, the whole datagram comes out as a raw-IP {@link Frame} timed by the fragment that
 * completed it, which then decodes like any other frame. Its headers are those of the offset-0 fragment with the
 * length fixed: IPv4's header with flags and offset cleared; IPv6's unfragmentable part (RFC 8200 §4.5: the header
 * chain before the Fragment header) and the Fragment header itself, kept as an atomic fragment (RFC 6946) that the
 * decoder reads through to its next header, the reassembled packet's. Overlapping fragments give the whole
 * datagram up (RFC 5722), as do fragments that lie past the last fragment's end; exact duplicates (a capture on two
 * interfaces) are ignored. Atomic IPv6 fragments never come here: the decoder takes them as whole packets.
 *
 * Bounded, both families together: at most {@link MAX_DATAGRAMS} datagrams in progress and {@link MAX_HELD_BYTES}
 * of their fragments (the oldest datagrams are given up beyond either), each at most 65,535 bytes, and a datagram
 * not complete {@link FRAGMENT_TIMEOUT_NS} of capture time after its first fragment is given up. Every fragment
 * that does not become part of a datagram is counted `ip_fragment` (given up, overlapping, TCP fragments, cut by
 * the snap length), so the count keeps its meaning: fragments skipped.
 * @module
 */

import { type Frame, LinkType, type SkipCounter } from "./types.ts";
import type { L3Location } from "./link.ts";

/** Datagrams reassembled at once (a burst of large RTP packets from a few hundred streams). */
const MAX_DATAGRAMS = 1024;
/** Capture time a datagram may take to complete, ns (fragments of one datagram arrive back to back). */
const FRAGMENT_TIMEOUT_NS = 1e9;
/** Largest IPv4 Total Length and IPv6 Payload Length (16-bit fields): what one datagram may hold. */
const MAX_LENGTH = 65_535;
/**
 * Fragment bytes held at once, each fragment charged its payload and {@link FRAGMENT_OVERHEAD}: 1,024 datagrams
 * of up to 64 KiB would be 64 MiB of a sensor's memory for whoever sends first fragments that never complete; 4 MiB
 * holds nine hundred 20 ms L16 48 kHz stereo packets (3,840 bytes, three fragments) in flight at once, far more
 * than fragments that arrive back to back ever leave pending.
 */
export const MAX_HELD_BYTES = 4 * 1024 * 1024;
/**
 * What a held fragment costs beyond its payload: its part record, its copy's typed array and backing store
 * (~240 bytes of heap measured for 8-byte ones). Charged with the payload, so that a storm of
 * the smallest fragments (8 bytes each, up to 8,192 a datagram) holds about MAX_HELD_BYTES too: counted by
 * payload alone, 4 MiB of them were half a million fragments and ~120 MiB of memory.
 */
const FRAGMENT_OVERHEAD = 256;

interface Pending {
  /** Capture time of the first fragment seen. */
  firstNs: number;
  /**
   * The headers of the offset-0 fragment before its payload, once it has come: IPv4's header, or IPv6's header
   * chain through the Fragment header.
   */
  header: Uint8Array | undefined;
  /** Fragment payloads by byte offset. */
  parts: { off: number; bytes: Uint8Array }[];
  /** Payload bytes held (fragments never overlap here: an overlapping one ends the datagram). */
  have: number;
  /** What its fragments are charged ({@link MAX_HELD_BYTES}). */
  charged: number;
  /** Payload length, known once the last fragment (MF clear) has come; -1 before. */
  total: number;
  /** Largest end (offset + length) of the fragments held. */
  end: number;
  /** Frames taken, counted `ip_fragment` if the datagram is given up. */
  frames: number;
}

/** Counters of a {@link FragmentReassembler}. */
export interface FragmentStats {
  /** Datagrams put back together. */
  reassembled: number;
  /** Datagrams given up (timed out, evicted, overlapping or oversized fragments). */
  abandoned: number;
}

/** Collects IPv4 and IPv6 fragments of UDP datagrams; see the module doc. */
export class FragmentReassembler {
  readonly stats: FragmentStats = { reassembled: 0, abandoned: 0 };
  readonly #skips: SkipCounter;
  readonly #pending = new Map<string, Pending>();
  #held = 0;
  /** Latest capture time seen, ns (moved back only by a step back, see #expire). */
  #lastNs = -Infinity;

  /** Creates a reassembler counting what it skips in `skips`. */
  constructor(skips: SkipCounter) {
    this.#skips = skips;
  }

  /** Datagrams in progress. */
  get size(): number {
    return this.#pending.size;
  }

  /** Bytes charged for the fragments of the datagrams in progress (payload and overhead, see MAX_HELD_BYTES). */
  get heldBytes(): number {
    return this.#held;
  }

  /**
   * Takes a frame the decoder found to be an IP fragment (its IP header at `l3`; for IPv6, its Fragment header at
   * `fragmentHeader`, the decoder's `view.fragmentHeader` after the refusal). Returns the whole datagram as a
   * raw-IP frame when this fragment completed it; otherwise undefined (held, or counted `ip_fragment`).
   */
  push(frame: Frame, l3: L3Location, fragmentHeader = 0): Frame | undefined {
    const data = frame.data;
    const ip = l3.offset;
    const now = Number(frame.timeNs);
    this.#expire(now);
    // What differs by family: the key, where the fragment's payload starts and ends, its offset and more-fragments
    // flag, and how much payload a whole datagram may have (16-bit length fields that also count some headers).
    let key: string;
    let start: number;
    let end: number;
    let off: number;
    let more: boolean;
    let room: number;
    if (l3.family === 4) {
      // TCP fragments are not put back together (TCP sizes its segments to the path MTU; nothing here needs them).
      if (data[ip + 9] !== 17) return this.#skip();
      const ihl = (data[ip]! & 0x0f) * 4;
      start = ip + ihl;
      end = ip + ((data[ip + 2]! << 8) | data[ip + 3]!);
      const frag = (data[ip + 6]! << 8) | data[ip + 7]!;
      off = (frag & 0x1fff) * 8;
      more = (frag & 0x2000) !== 0;
      room = MAX_LENGTH - ihl; // Total Length counts the header
      // Identification, source, destination (the protocol is always UDP here).
      key = String.fromCharCode(data[ip + 4]!, data[ip + 5]!);
      for (let i = 12; i < 20; i++) key += String.fromCharCode(data[ip + i]!);
    } else {
      const fh = fragmentHeader;
      // The Fragment header's next header starts the fragmentable part: UDP only, as for IPv4.
      if (fh < ip + 40 || fh + 8 > data.length || data[fh] !== 17) return this.#skip();
      start = fh + 8;
      end = ip + 40 + ((data[ip + 4]! << 8) | data[ip + 5]!); // Payload Length 0 (a jumbogram): len < 0 below
      const offM = (data[fh + 2]! << 8) | data[fh + 3]!;
      off = offM & 0xfff8; // 13 bits of 8-octet units, already shifted into bytes
      more = (offM & 1) !== 0;
      // The reassembled Payload Length counts the extension headers before the Fragment header (RFC 8200 §4.5).
      room = MAX_LENGTH - (fh - ip - 40);
      // Identification (32 bits), source, destination: 36 characters where IPv4's key has 10, so they never meet.
      key = String.fromCharCode(data[fh + 4]!, data[fh + 5]!, data[fh + 6]!, data[fh + 7]!);
      for (let i = 8; i < 40; i++) key += String.fromCharCode(data[ip + i]!);
    }
    const len = end - start;
    // A fragment cut by the snap length, or an empty or misaligned one, cannot be used; nor one past the 16 bits.
    if (len <= 0 || end > data.length || (more && len % 8 !== 0) || off + len > room) return this.#skip();
    let p = this.#pending.get(key);
    if (p === undefined) {
      if (this.#pending.size >= MAX_DATAGRAMS) {
        const [oldest, q] = this.#pending.entries().next().value!;
        this.#giveUp(oldest, q);
      }
      p = { firstNs: now, header: undefined, parts: [], have: 0, charged: 0, total: -1, end: 0, frames: 0 };
      this.#pending.set(key, p);
    }
    p.frames++;
    for (const q of p.parts) {
      if (off < q.off + q.bytes.length && q.off < off + len) {
        // The same fragment again (a capture on two interfaces, a retransmission): nothing new.
        if (q.off === off && q.bytes.length === len) {
          p.frames--;
          return this.#skip();
        }
        // Overlapping fragments of different extents (an attack, or two datagrams sharing an id): unusable.
        this.#giveUp(key, p);
        return undefined;
      }
    }
    // Nothing lies past the last fragment's end: a fragment that does (another fragment claiming more data, before
    // or after the last one came) contradicts it, and held, its bytes would be written past the datagram.
    if (
      more
        ? p.total >= 0 && off + len > p.total
        : (p.total >= 0 && p.total !== off + len) || p.end > off + len
    ) {
      this.#giveUp(key, p);
      return undefined;
    }
    if (!more) p.total = off + len;
    // Room for its bytes: older datagrams go first, then this one if it alone would be over.
    const cost = len + FRAGMENT_OVERHEAD;
    for (const [k, q] of this.#pending) {
      if (this.#held + cost <= MAX_HELD_BYTES) break;
      if (q !== p) this.#giveUp(k, q);
    }
    if (this.#held + cost > MAX_HELD_BYTES) {
      this.#giveUp(key, p);
      return undefined;
    }
    if (off === 0) p.header = data.slice(ip, start);
    // Copied: the frame's bytes are a view into a file chunk the reader moves past.
    p.parts.push({ off, bytes: data.slice(start, end) });
    p.have += len;
    if (off + len > p.end) p.end = off + len;
    p.charged += cost;
    this.#held += cost;
    if (p.total < 0 || p.have < p.total || p.header === undefined) return undefined;
    if (p.have !== p.total) {
      this.#giveUp(key, p);
      return undefined;
    }
    this.#pending.delete(key);
    this.#held -= p.charged;
    const h = p.header;
    const whole = h.length + p.total;
    const out = new Uint8Array(whole);
    out.set(h, 0);
    if (l3.family === 4) {
      out[2] = whole >> 8;
      out[3] = whole & 0xff;
      out[6] = 0;
      out[7] = 0;
    } else {
      // The Fragment header stays, made atomic (offset 0, M clear: a whole packet, RFC 6946), so the header before
      // it still names it and the decoder reads on to its next header: the chain is not rewritten. Only within 8
      // bytes of the largest datagram does that header not fit the 16 bits: Payload Length 0 then has the decoder
      // take the frame's length, as for a jumbogram.
      const plen = whole - 40;
      out[4] = plen > MAX_LENGTH ? 0 : plen >> 8;
      out[5] = plen > MAX_LENGTH ? 0 : plen & 0xff;
      out[h.length - 6] = 0;
      out[h.length - 5] = 0;
    }
    for (const q of p.parts) out.set(q.bytes, h.length + q.off);
    this.stats.reassembled++;
    return {
      timeNs: frame.timeNs,
      linkType: LinkType.RAW,
      data: out,
      origLen: out.length,
      iface: frame.iface,
    };
  }

  /**
   * Gives up datagrams whose first fragment came more than the timeout before `now`. A step of the capture clock
   * back by more than the timeout (NTP, a VM resumed) moves the datagrams in progress with it, so that they keep
   * their age: left where they were, none would be given up until capture time passed them again (an hour's step,
   * an hour), and one held that long takes the fragments of a later datagram with its identification for its own.
   * A step ahead gives them all up, as a pause that long would.
   */
  #expire(now: number): void {
    if (now < this.#lastNs - FRAGMENT_TIMEOUT_NS) {
      const step = now - this.#lastNs;
      for (const p of this.#pending.values()) p.firstNs += step;
      this.#lastNs = now;
    } else if (now > this.#lastNs) this.#lastNs = now;
    // Insertion order is the order of first fragments (up to the timeout, the most the clock may go back without
    // being taken for a step): stop at the first one still in time.
    for (const [key, p] of this.#pending) {
      if (now - p.firstNs < FRAGMENT_TIMEOUT_NS) break;
      this.#giveUp(key, p);
    }
  }

  /** Counts one fragment that will not become part of a datagram. */
  #skip(): undefined {
    this.#skips.add("ip_fragment");
    return undefined;
  }

  #giveUp(key: string, p: Pending): void {
    this.#pending.delete(key);
    this.#held -= p.charged;
    this.#skips.add("ip_fragment", p.frames);
    this.stats.abandoned++;
  }

  /**
   * Capture time passed without a fragment (`nowNs`, live while traffic pauses or goes on without fragments):
   * datagrams whose fragments did not all come within the timeout are given up and counted now, not at the next
   * fragment, which may never come.
   */
  expire(nowNs: number): void {
    this.#expire(nowNs);
  }

  /** End of input: datagrams still incomplete are given up (their fragments counted). */
  flush(): void {
    for (const [key, p] of this.#pending) this.#giveUp(key, p);
  }
}
