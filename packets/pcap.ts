/**
 * Streaming reader of capture files: classic pcap (microsecond and nanosecond magic, both byte orders, and the
 * "modified" Kuznetzov variant) and pcapng (SHB/IDB/EPB/SPB and the obsolete packet block, per-interface
 * `if_tsresol`/`if_tsoffset`, several sections, both byte orders).
 *
 * The core is a synchronous push parser ({@link PcapParser}): bytes go in with `push`, frames come out of `next`.
 * {@link PcapReader} wraps it around a file or stream as an async iterator and {@link parseFrames} around one
 * in-memory buffer. Memory stays bounded whatever the file size: the parser keeps at most one record (capped at
 * {@link MAX_RECORD_BYTES}) plus the chunks it has been handed and not yet consumed.
 *
 * Damage never throws once the file has been recognised: a record cut short by the end of the file, a garbage
 * record length or a corrupt block is counted in {@link CaptureStats} with its file offset and a reason, and the
 * parser looks for the next plausible record (bounded search) before giving up on the rest of the file. Only a
 * file that is not a capture at all (wrong magic) raises {@link PcapFormatError}, naming the bytes it found.
 * @module
 */

import type { Frame } from "./types.ts";

/** Largest record (pcap record or pcapng block) the parser buffers; longer lengths count as corrupt. */
export const MAX_RECORD_BYTES = 16 * 1024 * 1024;
/** Packets longer than this (captured length) are taken for a garbage length unless the snap length allows them. */
const MAX_PACKET_BYTES = 262_144;
/** How far past a corrupt record the parser searches for the next plausible one before giving up. */
const MAX_RESYNC_BYTES = 1024 * 1024;
/** Problems kept with details (all are counted). */
const MAX_PROBLEM_DETAILS = 100;

const PCAP_US = 0xa1b2c3d4;
const PCAP_NS = 0xa1b23c4d;
const PCAP_MODIFIED = 0xa1b2cd34;
const PCAPNG_SHB = 0x0a0d0d0a;
const PCAPNG_BOM = 0x1a2b3c4d;
const BLOCK_IDB = 1;
const BLOCK_OPB = 2;
const BLOCK_SPB = 3;
const BLOCK_EPB = 6;

/** Capture file layouts this module reads. */
export type CaptureFormat = "pcap" | "pcap-ns" | "pcap-modified" | "pcapng";

/** Why part of a capture file was not turned into frames. */
export type CaptureProblemReason =
  /** The file ends inside a record or block (a capture cut short while being written or copied). */
  | "truncated_record"
  /** A classic pcap record header with an impossible length or timestamp: the rest is searched for the next record. */
  | "bad_record_length"
  /** A pcapng block with an impossible length, mismatched trailing length or a malformed body. */
  | "bad_block"
  /** A pcapng packet block naming an interface no IDB of its section described. */
  | "unknown_interface"
  /** No plausible record within the search distance after a corrupt one: the rest of the file is skipped. */
  | "resync_failed";

/** One problem found in a capture file. */
export interface CaptureProblem {
  /** Byte offset in the file where the bad record or block starts. */
  offset: number;
  reason: CaptureProblemReason;
  /** Human-readable detail (lengths found, bytes skipped). */
  detail: string;
}

/** What a parser has read so far. */
export interface CaptureStats {
  /** Null until the file header has been read. */
  format: CaptureFormat | null;
  /** Byte order of the current section. */
  littleEndian: boolean;
  frames: number;
  /** File bytes consumed. */
  bytes: number;
  /** pcapng sections seen (1 for classic pcap). */
  sections: number;
  /** pcapng interfaces seen over all sections (1 for classic pcap). */
  interfaces: number;
  /** Bytes skipped as unreadable (corrupt regions, truncated tail). */
  skippedBytes: number;
  /** Problem counts by reason. */
  problemCounts: Partial<Record<CaptureProblemReason, number>>;
  /** The first problems with details (at most 100). */
  problems: CaptureProblem[];
}

/** The input is not a pcap or pcapng file (or is empty / shorter than a file header). */
export class PcapFormatError extends Error {
  /** The first four bytes, as found (big-endian reading), or null when the file is shorter than four bytes. */
  readonly magic: number | null;
  constructor(message: string, magic: number | null) {
    super(message);
    this.name = "PcapFormatError";
    this.magic = magic;
  }
}

/** One pcapng interface (or the single implicit interface of classic pcap). */
interface Iface {
  linkType: number;
  snapLen: number;
  /** Index exposed as Frame.iface: unique across sections. */
  index: number;
  /** ns = units * mul / div, exact in bigint; mulSmall marks mul as a small number for the fast path. */
  mul: bigint;
  div: bigint;
  /** Power-of-two resolution: ns = (units * 1e9) >> shift. -1 when decimal. */
  shift: bigint;
  offsetNs: bigint;
  /** True when units are microseconds with no offset (the common case, number fast path). */
  micro: boolean;
}

const enum State {
  Header,
  Records,
  Resync,
  Dead,
}

function hex32(v: number): string {
  return "0x" + (v >>> 0).toString(16).padStart(8, "0");
}

/**
 * Synchronous push parser. Feed chunks with {@link push} (they are kept by reference and must not be modified
 * afterwards), take frames with {@link next} until it returns `undefined`, push more, and call {@link end} when
 * the input is complete (then drain {@link next} once more). Frame `data` are views into the pushed chunks
 * (copies when a record spans two chunks), so frames stay valid after later pushes.
 */
export class PcapParser {
  /** What has been read so far; problems are recorded here, never thrown. */
  readonly stats: CaptureStats = {
    format: null,
    littleEndian: true,
    frames: 0,
    bytes: 0,
    sections: 0,
    interfaces: 0,
    skippedBytes: 0,
    problemCounts: {},
    problems: [],
  };

  #buf: Uint8Array = new Uint8Array(0);
  #view: DataView = new DataView(this.#buf.buffer);
  #pos = 0;
  /** File offset of #buf[0]. */
  #base = 0;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #ended = false;
  #state = State.Header;
  #le = true;
  #ng = false;
  #ns = false;
  #recHdr = 16;
  #snapLimit = MAX_PACKET_BYTES;
  #ifaces: Iface[] = [];
  #ifaceCount = 0;
  #lastSec = -1;
  #lastTimeNs = 0n;
  #resyncStart = 0;
  #resyncFrom = 0;

  /** Hands the parser the next chunk of the file. */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.#pos >= this.#buf.length && this.#pending.length === 0) {
      this.#base += this.#buf.length;
      this.#setBuf(chunk);
      this.#pos = 0;
    } else {
      this.#pending.push(chunk);
      this.#pendingBytes += chunk.length;
    }
  }

  /** Marks the end of input: a partial record left over is reported as `truncated_record`. */
  end(): void {
    this.#ended = true;
  }

  /** Bytes handed in and not yet consumed (what the parser holds on to; bounded by one record plus a chunk). */
  get buffered(): number {
    return this.#available();
  }

  /** True once the input has ended and every complete record has been returned. */
  get done(): boolean {
    return this.#state === State.Dead || (this.#ended && this.#available() === 0);
  }

  /**
   * The next frame, or `undefined` when more input is needed (or the input is exhausted).
   * @throws PcapFormatError when the first bytes are not a pcap/pcapng header.
   */
  next(): Frame | undefined {
    for (;;) {
      switch (this.#state) {
        case State.Header:
          if (!this.#readFileHeader()) return undefined;
          continue;
        case State.Records: {
          const r = this.#ng ? this.#readBlock() : this.#readRecord();
          if (r === null) return undefined; // need more input
          if (r === undefined) continue; // non-packet block or skipped record
          return r;
        }
        case State.Resync:
          if (!this.#resync()) return undefined;
          continue;
        case State.Dead:
          return undefined;
      }
    }
  }

  // ---- buffer ----

  #setBuf(b: Uint8Array): void {
    this.#buf = b;
    this.#view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  #available(): number {
    return this.#buf.length - this.#pos + this.#pendingBytes;
  }

  #offset(): number {
    return this.#base + this.#pos;
  }

  /** Makes `n` bytes from #pos contiguous in #buf; false when the input does not hold them yet. */
  #ensure(n: number): boolean {
    const have = this.#buf.length - this.#pos;
    if (have >= n) return true;
    if (have + this.#pendingBytes < n) return false;
    // Merge the remainder with as many whole pending chunks as needed (copying each byte at most once per
    // record that spans chunks); the merged buffer is fresh, so views handed out earlier stay intact.
    let size = have;
    let k = 0;
    while (size < n) size += this.#pending[k++]!.length;
    const merged = new Uint8Array(size);
    merged.set(this.#buf.subarray(this.#pos), 0);
    let at = have;
    for (let i = 0; i < k; i++) {
      const c = this.#pending[i]!;
      merged.set(c, at);
      at += c.length;
      this.#pendingBytes -= c.length;
    }
    this.#pending.splice(0, k);
    this.#base += this.#pos;
    this.#setBuf(merged);
    this.#pos = 0;
    return true;
  }

  /** Advances past `n` bytes (which may extend into pending chunks). */
  #skip(n: number): void {
    let left = n;
    for (;;) {
      const have = this.#buf.length - this.#pos;
      if (left <= have) {
        this.#pos += left;
        break;
      }
      left -= have;
      this.#base += this.#buf.length;
      const nextChunk = this.#pending.shift();
      if (nextChunk === undefined) {
        this.#setBuf(new Uint8Array(0));
        this.#pos = 0;
        this.#base += left; // nothing left to skip into; keeps offsets honest
        break;
      }
      this.#pendingBytes -= nextChunk.length;
      this.#setBuf(nextChunk);
      this.#pos = 0;
    }
    this.stats.bytes = this.#offset();
  }

  #u32(at: number): number {
    return this.#view.getUint32(this.#pos + at, this.#le);
  }

  #u16(at: number): number {
    return this.#view.getUint16(this.#pos + at, this.#le);
  }

  #problem(reason: CaptureProblemReason, offset: number, detail: string): void {
    const c = this.stats.problemCounts;
    c[reason] = (c[reason] ?? 0) + 1;
    if (this.stats.problems.length < MAX_PROBLEM_DETAILS) {
      this.stats.problems.push({ offset, reason, detail });
    }
  }

  /** Reports a truncated tail: the rest of the input is skipped. */
  #truncated(need: number, what: string): void {
    const left = this.#available();
    this.#problem(
      "truncated_record",
      this.#offset(),
      `file ends ${left} bytes into a ${need > 0 ? need + "-byte " : ""}${what}`,
    );
    this.stats.skippedBytes += left;
    this.#skip(left);
    this.#state = State.Dead;
  }

  // ---- file header ----

  #readFileHeader(): boolean {
    if (!this.#ensure(4)) {
      if (!this.#ended) return false;
      const got = this.#available();
      if (got === 0) throw new PcapFormatError("not a pcap or pcapng file: it is empty", null);
      this.#ensure(got);
      const bytes = Array.from(
        this.#buf.subarray(this.#pos, this.#pos + got),
        (b) => b.toString(16).padStart(2, "0"),
      );
      throw new PcapFormatError(`not a pcap or pcapng file: only ${got} bytes (${bytes.join(" ")})`, null);
    }
    const be = this.#view.getUint32(this.#pos, false);
    const le = this.#view.getUint32(this.#pos, true);
    if (be === PCAPNG_SHB) {
      this.#ng = true;
      this.stats.format = "pcapng";
      this.#state = State.Records;
      return true;
    }
    let magic = 0;
    if (be === PCAP_US || be === PCAP_NS || be === PCAP_MODIFIED) {
      this.#le = false;
      magic = be;
    } else if (le === PCAP_US || le === PCAP_NS || le === PCAP_MODIFIED) {
      this.#le = true;
      magic = le;
    } else {
      throw new PcapFormatError(
        `not a pcap or pcapng file: magic ${
          hex32(be)
        } (expected a1b2c3d4, a1b23c4d or a1b2cd34 in either byte ` +
          `order for pcap, 0a0d0d0a for pcapng)`,
        be,
      );
    }
    if (!this.#ensure(24)) {
      if (this.#ended) {
        throw new PcapFormatError(`pcap file header cut short: ${this.#available()} of 24 bytes`, be);
      }
      return false;
    }
    this.#ns = magic === PCAP_NS;
    this.#recHdr = magic === PCAP_MODIFIED ? 24 : 16;
    this.stats.format = magic === PCAP_NS ? "pcap-ns" : magic === PCAP_MODIFIED ? "pcap-modified" : "pcap";
    this.stats.littleEndian = this.#le;
    const snapLen = this.#u32(16);
    // Low 16 bits are the link type; the upper bits carry FCS information we do not need.
    const linkType = this.#u32(20) & 0xffff;
    this.#snapLimit = Math.max(MAX_PACKET_BYTES, Math.min(snapLen, MAX_RECORD_BYTES));
    this.#ifaces = [{
      linkType,
      snapLen,
      index: 0,
      mul: 1000n,
      div: 1n,
      shift: -1n,
      offsetNs: 0n,
      micro: !this.#ns,
    }];
    this.stats.sections = 1;
    this.stats.interfaces = 1;
    this.#skip(24);
    this.#state = State.Records;
    return true;
  }

  // ---- classic pcap ----

  /** Is a record header at `at` (relative to #pos) plausible? Returns its total length, or -1. */
  #plausibleRecord(at: number): number {
    const sec = this.#u32(at);
    const frac = this.#u32(at + 4);
    const cap = this.#u32(at + 8);
    const orig = this.#u32(at + 12);
    if (cap > this.#snapLimit || cap > orig || orig > MAX_RECORD_BYTES) return -1;
    if (frac >= (this.#ns ? 1_000_000_000 : 1_000_000)) return -1;
    if (this.#lastSec >= 0 && Math.abs(sec - this.#lastSec) > 86_400) return -1;
    return this.#recHdr + cap;
  }

  #readRecord(): Frame | undefined | null {
    const h = this.#recHdr;
    if (!this.#ensure(h)) {
      if (this.#ended && this.#available() > 0) this.#truncated(h, "record header");
      return null;
    }
    const cap = this.#u32(8);
    const orig = this.#u32(12);
    if (cap > this.#snapLimit) {
      this.#problem(
        "bad_record_length",
        this.#offset(),
        `captured length ${cap} exceeds the limit ${this.#snapLimit} (original length ${orig})`,
      );
      this.#startResync();
      return undefined;
    }
    if (!this.#ensure(h + cap)) {
      if (this.#ended) this.#truncated(h + cap, "record");
      return null;
    }
    const sec = this.#u32(0);
    const frac = this.#u32(4);
    const iface = this.#ifaces[0]!;
    const timeNs = this.#ns
      ? BigInt(sec) * 1_000_000_000n + BigInt(frac)
      : BigInt(sec * 1_000_000 + frac) * 1000n;
    this.#lastSec = sec;
    const start = this.#pos + h;
    const data = this.#buf.subarray(start, start + cap);
    this.#pos = start + cap;
    this.stats.bytes = this.#offset();
    this.stats.frames++;
    return { timeNs, linkType: iface.linkType, data, origLen: orig, iface: 0 };
  }

  #startResync(): void {
    this.#resyncStart = this.#offset();
    this.#resyncFrom = this.#ng ? 4 : 1; // pcapng blocks are 4-byte aligned
    this.#state = State.Resync;
  }

  /**
   * Searches for the next plausible record or block after a corrupt one: a candidate must be followed by another
   * plausible one (or the end of the input), which makes a false hit on payload bytes unlikely.
   * Returns false when more input is needed.
   */
  #resync(): boolean {
    const step = this.#ng ? 4 : 1;
    const minHdr = this.#ng ? 12 : this.#recHdr;
    for (let q = this.#resyncFrom;; q += step) {
      if (q > MAX_RESYNC_BYTES) {
        this.#problem(
          "resync_failed",
          this.#resyncStart,
          `no plausible ${
            this.#ng ? "block" : "record"
          } within ${MAX_RESYNC_BYTES} bytes; rest of file skipped`,
        );
        const left = this.#available();
        this.stats.skippedBytes += left;
        this.#skip(left);
        this.#state = State.Dead;
        return true;
      }
      if (!this.#ensure(q + minHdr)) {
        this.#resyncFrom = q;
        if (!this.#ended) return false;
        // Out of input: everything after the corrupt record is unusable.
        const left = this.#available();
        this.stats.skippedBytes += left;
        this.#skip(left);
        this.#state = State.Dead;
        return true;
      }
      const len = this.#ng ? this.#plausibleBlock(q) : this.#plausibleRecord(q);
      if (len < 0) continue;
      // The candidate's follower must be plausible too, or the input must end exactly after the candidate.
      if (!this.#ensure(q + len + minHdr)) {
        if (!this.#ended) {
          this.#resyncFrom = q;
          return false;
        }
        if (this.#available() !== q + len) continue;
      } else {
        const len2 = this.#ng ? this.#plausibleBlock(q + len) : this.#plausibleRecord(q + len);
        if (len2 < 0) continue;
      }
      this.stats.skippedBytes += q;
      const start = this.#resyncStart;
      this.#skip(q);
      const kept = this.stats.problems[this.stats.problems.length - 1];
      if (kept && kept.offset === start) kept.detail += `; resumed ${q} bytes later at offset ${start + q}`;
      this.#state = State.Records;
      return true;
    }
  }

  // ---- pcapng ----

  /** Is a pcapng block at `at` plausible (known type, sane length, matching trailer when buffered)? */
  #plausibleBlock(at: number): number {
    const type = this.#u32(at);
    if (type === PCAPNG_SHB) {
      const bom = this.#view.getUint32(this.#pos + at + 8, true);
      const le = bom === PCAPNG_BOM ? true : bom === 0x4d3c2b1a ? false : null;
      if (le === null) return -1;
      const len = this.#view.getUint32(this.#pos + at + 4, le);
      return len >= 28 && len % 4 === 0 && len <= MAX_RECORD_BYTES ? len : -1;
    }
    // Known block types only: a garbage word rarely is one of these.
    if (!(type >= 1 && type <= 10) && type !== 0xbad && type !== 0x40000bad) return -1;
    const len = this.#u32(at + 4);
    if (len < 12 || len % 4 !== 0 || len > MAX_RECORD_BYTES) return -1;
    if (this.#pos + at + len <= this.#buf.length && this.#u32(at + len - 4) !== len) return -1;
    return len;
  }

  #readBlock(): Frame | undefined | null {
    if (!this.#ensure(12)) {
      if (this.#ended && this.#available() > 0) this.#truncated(0, "block header");
      return null;
    }
    const blockStart = this.#offset();
    if (this.#view.getUint32(this.#pos, true) === PCAPNG_SHB) {
      const bom = this.#view.getUint32(this.#pos + 8, true);
      if (bom === PCAPNG_BOM) this.#le = true;
      else if (bom === 0x4d3c2b1a) this.#le = false;
      else {
        if (this.stats.sections === 0) {
          throw new PcapFormatError(
            `pcapng section header with an unknown byte-order magic ${hex32(bom)}`,
            PCAPNG_SHB,
          );
        }
        this.#problem("bad_block", blockStart, `section header with unknown byte-order magic ${hex32(bom)}`);
        this.#startResync();
        return undefined;
      }
    }
    const type = this.#u32(0);
    const len = this.#u32(4);
    if (len < 12 || len % 4 !== 0 || len > MAX_RECORD_BYTES) {
      this.#problem("bad_block", blockStart, `block type ${hex32(type)} with impossible length ${len}`);
      this.#startResync();
      return undefined;
    }
    if (!this.#ensure(len)) {
      if (this.#ended) this.#truncated(len, `block (type ${hex32(type)})`);
      return null;
    }
    if (this.#u32(len - 4) !== len) {
      this.#problem(
        "bad_block",
        blockStart,
        `block type ${hex32(type)}: trailing length ${this.#u32(len - 4)} differs from leading length ${len}`,
      );
      this.#startResync();
      return undefined;
    }
    let frame: Frame | undefined;
    switch (type) {
      case PCAPNG_SHB:
        this.#sectionHeader(blockStart, len);
        break;
      case BLOCK_IDB:
        this.#interfaceBlock(blockStart, len);
        break;
      case BLOCK_EPB:
      case BLOCK_OPB:
        if (len < 32) {
          this.#problem("bad_block", blockStart, `packet block of ${len} bytes (at least 32)`);
          break;
        }
        // EPB: interface u32; obsolete packet block: interface u16 + drops u16. Then the same layout.
        frame = this.#packetBlock(
          blockStart,
          len,
          type === BLOCK_EPB ? this.#u32(8) : this.#u16(8),
          this.#u32(20),
          this.#u32(24),
        );
        break;
      case BLOCK_SPB:
        frame = this.#simpleBlock(blockStart, len);
        break;
      default:
        break; // statistics, name resolution, secrets, custom blocks: nothing we need
    }
    this.#pos += len;
    this.stats.bytes = this.#offset();
    return frame;
  }

  #sectionHeader(at: number, len: number): void {
    if (len < 28) {
      this.#problem("bad_block", at, `section header of ${len} bytes (at least 28)`);
      return;
    }
    const major = this.#u16(12);
    if (major !== 1) {
      this.#problem("bad_block", at, `section header version ${major}.${this.#u16(14)} (expected 1.x)`);
    }
    this.#ifaces = [];
    this.stats.sections++;
    this.stats.littleEndian = this.#le;
  }

  #interfaceBlock(at: number, len: number): void {
    if (len < 20) {
      this.#problem("bad_block", at, `interface block of ${len} bytes (at least 20)`);
      // Keep interface numbering aligned with the file's: a placeholder no packet can use sensibly.
    }
    const linkType = len >= 20 ? this.#u16(8) : -1;
    const snapLen = len >= 20 ? this.#u32(12) : 0;
    let tsresol = 6;
    let offsetSec = 0n;
    // Options: code u16, length u16, value padded to 4 bytes; the region ends before the trailing length.
    for (let o = 16; o + 4 <= len - 4;) {
      const code = this.#u16(o);
      const olen = this.#u16(o + 2);
      if (code === 0) break;
      if (o + 4 + olen > len - 4) {
        this.#problem("bad_block", at, `interface option ${code} overruns its block`);
        break;
      }
      if (code === 9 && olen >= 1) tsresol = this.#buf[this.#pos + o + 4]!;
      if (code === 14 && olen >= 8) {
        const hi = this.#view.getInt32(this.#pos + o + 4 + (this.#le ? 4 : 0), this.#le);
        const lo = this.#view.getUint32(this.#pos + o + 4 + (this.#le ? 0 : 4), this.#le);
        offsetSec = (BigInt(hi) << 32n) + BigInt(lo);
      }
      o += 4 + ((olen + 3) & ~3);
    }
    let mul = 1n, div = 1n, shift = -1n;
    if (tsresol & 0x80) {
      shift = BigInt(tsresol & 0x7f);
    } else if (tsresol <= 9) {
      mul = 10n ** BigInt(9 - tsresol);
    } else {
      div = 10n ** BigInt(tsresol - 9);
    }
    this.#ifaces.push({
      linkType,
      snapLen,
      index: this.#ifaceCount++,
      mul,
      div,
      shift,
      offsetNs: offsetSec * 1_000_000_000n,
      micro: tsresol === 6 && offsetSec === 0n,
    });
    this.stats.interfaces = this.#ifaceCount;
  }

  #packetBlock(at: number, len: number, ifId: number, cap: number, orig: number): Frame | undefined {
    const tsOff = 12;
    const dataOff = 28;
    const iface = this.#ifaces[ifId];
    if (iface === undefined) {
      this.#problem(
        "unknown_interface",
        at,
        `packet block names interface ${ifId}, section has ${this.#ifaces.length}`,
      );
      return undefined;
    }
    if (dataOff + cap + 4 > len) {
      this.#problem("bad_block", at, `packet block: captured length ${cap} overruns the ${len}-byte block`);
      return undefined;
    }
    const hi = this.#u32(tsOff);
    const lo = this.#u32(tsOff + 4);
    const timeNs = this.#toNs(iface, hi, lo);
    this.#lastTimeNs = timeNs;
    const start = this.#pos + dataOff;
    this.stats.frames++;
    return {
      timeNs,
      linkType: iface.linkType,
      data: this.#buf.subarray(start, start + cap),
      origLen: orig,
      iface: iface.index,
    };
  }

  #simpleBlock(at: number, len: number): Frame | undefined {
    const iface = this.#ifaces[0];
    if (iface === undefined) {
      this.#problem("unknown_interface", at, "simple packet block in a section without an interface");
      return undefined;
    }
    if (len < 16) {
      this.#problem("bad_block", at, `simple packet block of ${len} bytes`);
      return undefined;
    }
    const orig = this.#u32(8);
    let cap = Math.min(orig, len - 16);
    if (iface.snapLen > 0) cap = Math.min(cap, iface.snapLen);
    const start = this.#pos + 12;
    this.stats.frames++;
    // A simple packet block has no timestamp: it takes the previous packet's so time never runs backwards.
    return {
      timeNs: this.#lastTimeNs,
      linkType: iface.linkType,
      data: this.#buf.subarray(start, start + cap),
      origLen: orig,
      iface: iface.index,
    };
  }

  #toNs(iface: Iface, hi: number, lo: number): bigint {
    if (iface.micro && hi < 0x200000) return BigInt(hi * 4294967296 + lo) * 1000n;
    const units = hi < 0x200000 ? BigInt(hi * 4294967296 + lo) : (BigInt(hi) << 32n) + BigInt(lo);
    let ns: bigint;
    if (iface.shift >= 0n) ns = (units * 1_000_000_000n) >> iface.shift;
    else ns = (units * iface.mul) / iface.div;
    return ns + iface.offsetNs;
  }
}

/** Anything the reader can pull bytes from. */
export type CaptureSource = ReadableStream<Uint8Array> | Deno.FsFile | AsyncIterable<Uint8Array>;

/** Bytes read from a file per chunk. */
const FILE_CHUNK = 256 * 1024;

async function* chunksOf(source: CaptureSource): AsyncGenerator<Uint8Array> {
  if (source instanceof ReadableStream) {
    const reader = source.getReader();
    try {
      for (;;) {
        const r = await reader.read();
        if (r.done) return;
        yield r.value;
      }
    } finally {
      reader.releaseLock();
    }
  } else if (Symbol.asyncIterator in source) {
    yield* source as AsyncIterable<Uint8Array>;
  } else {
    const file = source as Deno.FsFile;
    for (;;) {
      // A fresh buffer per read: frames handed out are views into it.
      const buf = new Uint8Array(FILE_CHUNK);
      const n = await file.read(buf);
      if (n === null) return;
      if (n > 0) yield n === FILE_CHUNK ? buf : buf.subarray(0, n);
    }
  }
}

/**
 * Reads frames from a capture file or stream as an async iterator, in constant memory.
 *
 * ```ts
 * using file = await Deno.open("calls.pcap");
 * const reader = new PcapReader(file);
 * for await (const frame of reader) { ... }
 * console.log(reader.stats.problems);
 * ```
 *
 * Iterating throws only {@link PcapFormatError} (not a capture file) or an I/O error of the source; damage
 * inside the file is recorded in {@link stats}. The caller keeps ownership of a file it passes (close it).
 */
export class PcapReader implements AsyncIterable<Frame> {
  readonly #parser = new PcapParser();
  readonly #source: CaptureSource;

  constructor(source: CaptureSource) {
    this.#source = source;
  }

  /** Counters and problems so far (final once iteration has finished). */
  get stats(): CaptureStats {
    return this.#parser.stats;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Frame> {
    for await (const batch of this.batches()) yield* batch;
  }

  /**
   * The same frames in arrays, one per chunk read (hundreds of frames): one `await` per chunk instead of per
   * frame, for hot loops (about twice as fast end to end as iterating frames).
   */
  async *batches(): AsyncGenerator<Frame[]> {
    const p = this.#parser;
    for await (const chunk of chunksOf(this.#source)) {
      p.push(chunk);
      const batch: Frame[] = [];
      for (let f = p.next(); f !== undefined; f = p.next()) batch.push(f);
      if (batch.length > 0) yield batch;
      if (p.done) return;
    }
    p.end();
    const batch: Frame[] = [];
    for (let f = p.next(); f !== undefined; f = p.next()) batch.push(f);
    if (batch.length > 0) yield batch;
  }
}

/** Parses a whole in-memory capture file (tests, small files). Damage is in `stats`, as with the reader. */
export function parseFrames(bytes: Uint8Array): { frames: Frame[]; stats: CaptureStats } {
  const p = new PcapParser();
  p.push(bytes);
  p.end();
  const frames: Frame[] = [];
  for (let f = p.next(); f !== undefined; f = p.next()) frames.push(f);
  return { frames, stats: p.stats };
}
