/**
 * IPv4 fragment reassembly for UDP: a datagram larger than the path's MTU (L16 at 44.1 or 48 kHz in 20 ms
 * packets is 1,764-3,840 bytes; large Opus frames) reaches the capture as fragments, of which only the first
 * carries the UDP header. The capture sees them before the kernel reassembles them, so without this every such
 * packet was skipped (`ip_fragment`) and the stream never seen.
 *
 * Fragments are collected per (source, destination, protocol, identification); when every byte up to the last
 * fragment's end has arrived, the whole datagram comes out as a raw-IP {@link Frame} (link type RAW, flags and
 * offset cleared) timed by the fragment that completed it, which then decodes like any other frame.
 *
 * Bounded: at most {@link MAX_DATAGRAMS} datagrams in progress and {@link MAX_HELD_BYTES} of their fragments (the
 * oldest datagrams are given up beyond either), each at most 65,535 bytes, and a datagram not complete {@link FRAGMENT_TIMEOUT_NS} of capture time after its first fragment
 * is given up. Every fragment that does not become part of a datagram is counted `ip_fragment` (given up,
 * overlapping, IPv6 or TCP fragments, cut by the snap length), so the count keeps its meaning: fragments skipped.
 * @module
 */

import { type Frame, LinkType, type SkipCounter } from "./types.ts";
import type { L3Location } from "./link.ts";

/** Datagrams reassembled at once (a burst of large RTP packets from a few hundred streams). */
const MAX_DATAGRAMS = 1024;
/** Capture time a datagram may take to complete, ns (fragments of one datagram arrive back to back). */
const FRAGMENT_TIMEOUT_NS = 1e9;
/** Largest IPv4 datagram. */
const MAX_DATAGRAM = 65_535;
/**
 * Fragment bytes held at once: 1,024 datagrams of up to 64 KiB would be 64 MiB of a sensor's memory for whoever
 * sends first fragments that never complete; 4 MiB holds a thousand 20 ms L16 48 kHz stereo packets (3,840 bytes)
 * in flight at once, far more than fragments that arrive back to back ever leave pending.
 */
export const MAX_HELD_BYTES = 4 * 1024 * 1024;

interface Pending {
  /** Capture time of the first fragment seen. */
  firstNs: number;
  /** The IP header of the offset-0 fragment, once it has come. */
  header: Uint8Array | undefined;
  /** Fragment payloads by byte offset. */
  parts: { off: number; bytes: Uint8Array }[];
  /** Payload bytes held (fragments never overlap here: an overlapping one ends the datagram). */
  have: number;
  /** Payload length, known once the last fragment (MF clear) has come; -1 before. */
  total: number;
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

/** Collects IPv4 fragments of UDP datagrams; see the module doc. */
export class FragmentReassembler {
  readonly stats: FragmentStats = { reassembled: 0, abandoned: 0 };
  readonly #skips: SkipCounter;
  readonly #pending = new Map<string, Pending>();
  #held = 0;

  /** Creates a reassembler counting what it skips in `skips`. */
  constructor(skips: SkipCounter) {
    this.#skips = skips;
  }

  /** Datagrams in progress. */
  get size(): number {
    return this.#pending.size;
  }

  /** Fragment payload bytes held by the datagrams in progress. */
  get heldBytes(): number {
    return this.#held;
  }

  /**
   * Takes a frame the decoder found to be an IP fragment (its IP header at `l3`). Returns the whole datagram as a
   * raw-IP frame when this fragment completed it; otherwise undefined (held, or counted `ip_fragment`).
   */
  push(frame: Frame, l3: L3Location): Frame | undefined {
    const data = frame.data;
    const ip = l3.offset;
    const now = Number(frame.timeNs);
    this.#expire(now);
    // IPv6 fragments (rare: senders must avoid them) and TCP fragments are not put back together.
    if (l3.family !== 4 || data[ip + 9] !== 17) {
      this.#skips.add("ip_fragment");
      return undefined;
    }
    const ihl = (data[ip]! & 0x0f) * 4;
    const totalLen = (data[ip + 2]! << 8) | data[ip + 3]!;
    const frag = (data[ip + 6]! << 8) | data[ip + 7]!;
    const off = (frag & 0x1fff) * 8;
    const more = (frag & 0x2000) !== 0;
    const len = totalLen - ihl;
    // A fragment cut by the snap length, or an empty or misaligned one, cannot be used.
    if (
      len <= 0 || ip + totalLen > data.length || (more && len % 8 !== 0) || off + len > MAX_DATAGRAM - ihl
    ) {
      this.#skips.add("ip_fragment");
      return undefined;
    }
    let key = String.fromCharCode(data[ip + 4]!, data[ip + 5]!);
    for (let i = 12; i < 20; i++) key += String.fromCharCode(data[ip + i]!);
    let p = this.#pending.get(key);
    if (p === undefined) {
      if (this.#pending.size >= MAX_DATAGRAMS) {
        const [oldest, q] = this.#pending.entries().next().value!;
        this.#giveUp(oldest, q);
      }
      p = { firstNs: now, header: undefined, parts: [], have: 0, total: -1, frames: 0 };
      this.#pending.set(key, p);
    }
    p.frames++;
    for (const q of p.parts) {
      if (off < q.off + q.bytes.length && q.off < off + len) {
        // The same fragment again (a capture on two interfaces, a retransmission): nothing new.
        if (q.off === off && q.bytes.length === len) {
          p.frames--;
          this.#skips.add("ip_fragment");
          return undefined;
        }
        // Overlapping fragments of different extents (an attack, or two datagrams sharing an id): unusable.
        this.#giveUp(key, p);
        return undefined;
      }
    }
    if (!more) {
      if (p.total >= 0 && p.total !== off + len) {
        this.#giveUp(key, p);
        return undefined;
      }
      p.total = off + len;
    }
    // Room for its bytes: older datagrams go first, then this one if it alone would be over.
    for (const [k, q] of this.#pending) {
      if (this.#held + len <= MAX_HELD_BYTES) break;
      if (q !== p) this.#giveUp(k, q);
    }
    if (this.#held + len > MAX_HELD_BYTES) {
      this.#giveUp(key, p);
      return undefined;
    }
    if (off === 0) p.header = data.slice(ip, ip + ihl);
    // Copied: the frame's bytes are a view into a file chunk the reader moves past.
    p.parts.push({ off, bytes: data.slice(ip + ihl, ip + totalLen) });
    p.have += len;
    this.#held += len;
    if (p.total < 0 || p.have < p.total || p.header === undefined) return undefined;
    if (p.have !== p.total) {
      this.#giveUp(key, p);
      return undefined;
    }
    this.#pending.delete(key);
    this.#held -= p.have;
    const h = p.header;
    const out = new Uint8Array(h.length + p.total);
    out.set(h, 0);
    const whole = h.length + p.total;
    out[2] = whole >> 8;
    out[3] = whole & 0xff;
    out[6] = 0;
    out[7] = 0;
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

  /** Gives up datagrams whose first fragment came more than the timeout before `now`. */
  #expire(now: number): void {
    // Insertion order is the order of first fragments: stop at the first one still in time.
    for (const [key, p] of this.#pending) {
      if (now - p.firstNs < FRAGMENT_TIMEOUT_NS) break;
      this.#giveUp(key, p);
    }
  }

  #giveUp(key: string, p: Pending): void {
    this.#pending.delete(key);
    this.#held -= p.have;
    this.#skips.add("ip_fragment", p.frames);
    this.stats.abandoned++;
  }

  /** End of input: datagrams still incomplete are given up (their fragments counted). */
  flush(): void {
    for (const [key, p] of this.#pending) this.#giveUp(key, p);
  }
}
