/**
 * The slabs a capture reader carves string cells from, recycled once nothing can read them any more.
 *
 * A capture's payload bytes all pass through slabs: carved fresh, each 64 KiB slab was allocated, zeroed and
 * faulted in once (~75,000 minor page faults and a `clear_page` per page for the bench corpus's 309 MB; under the
 * run task's MALLOC_MMAP_THRESHOLD_ one mmap and munmap per slab, ~15 times the cost of a reused one). A slab is
 * recycled instead once every batch of rows that may hold a view of it has been released.
 *
 * The lifetime rule: a slab is held by the reader while it carves cells from it and by every batch sealed while
 * it was carved from (the batch's rows may view it); {@link SlabCarver.release} of a batch drops the batch's
 * holds, and a slab no one holds goes to a shared free list (bounded: {@link MAX_FREE_SLABS}). Releasing a batch
 * is a promise by the consumer that no row of it, and nothing made from one, is read from then on: whatever
 * outlives a row must copy what it keeps (the intake keeps a stream key's text, ids' text, a payload's hash; the
 * diagnosis sample packs rows into bytes of its own; repeating short cells are arrays of their own, see
 * capture_line_fast.ts). A batch never released only keeps its slabs from being recycled: they are collected as
 * before. Unpaced replays (`analyze`) release every batch once a merge step is done with (cli/capture_run.ts);
 * paced ones (`run --capture`), whose rows wait in the node's mailboxes for as long as the node takes, once the
 * node's Detectors and Matcher have taken every row of it (pixie/replay.ts RowLeases, SensorNode's onRowsDone).
 * With {@link setSlabPoison} on (tests, `FSMPX_SLAB_POISON=1`), a recycled slab is overwritten at once, so any
 * reader of a released row reads garbage and changes the records; `FSMPX_SLAB_RECYCLE=0` recycles nothing (the
 * reference such a run is compared with, and the A side of a timing).
 * @module
 */
import type { ByteSlab } from "./capture_line_fast.ts";

/** Bytes of a slab: small, since a row held past its batch (the rare reader that copies nothing) pins one. */
export const SLAB_BYTES = 64 * 1024;

/**
 * Free slabs kept for reuse (1 MiB): a reader carves a slab for every ~120 rows of the bench corpus and a merge
 * step releases up to 512 rows' worth, so a few suffice; more would only hold memory.
 */
export const MAX_FREE_SLABS = 16;

/** A slab and the holds on it (the reader's while it carves from it, and each sealed batch's). */
interface Slab {
  readonly bytes: Uint8Array;
  holds: number;
}

/** The slabs one batch of rows may view. */
export interface SlabLease {
  readonly slabs: readonly Slab[];
}

/** Byte written over a recycled slab in poison mode: not UTF-8, not base64, not JSON. */
const POISON = 0xff;

/** The value of an environment variable, read where env access is granted (never asked for). */
function envValue(name: string): string | undefined {
  try {
    if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") return undefined;
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

const free: Uint8Array[] = [];
/** `FSMPX_SLAB_POISON=1`: recycled slabs are overwritten (see the module doc). */
let poison = envValue("FSMPX_SLAB_POISON") === "1";
/** `FSMPX_SLAB_RECYCLE=0`: no slab is reused (every one is left to the collector), for comparisons. */
const recycle = envValue("FSMPX_SLAB_RECYCLE") !== "0";
let recycled = 0;
let made = 0;

/** Turns poisoning of recycled slabs on or off (see the module doc). */
export function setSlabPoison(on: boolean): void {
  poison = on;
}

/** Whether recycled slabs are poisoned (the line arena poisons its reused chunks alike, line_arena.ts). */
export function slabPoison(): boolean {
  return poison;
}

/** Slabs made and slabs recycled so far, every reader together (for tests and benches). */
export function slabCounts(): { made: number; recycled: number; free: number } {
  return { made, recycled, free: free.length };
}

/** A fresh or recycled slab. */
function takeSlab(): Uint8Array {
  const reused = free.pop();
  if (reused !== undefined) return reused;
  made++;
  return new Uint8Array(SLAB_BYTES);
}

/** Drops one hold; a slab no one holds is recycled. */
function drop(s: Slab): void {
  if (--s.holds > 0) return;
  if (s.holds < 0) throw new Error("a capture slab was released twice");
  if (!recycle) return;
  recycled++;
  if (poison) s.bytes.fill(POISON);
  if (free.length < MAX_FREE_SLABS && s.bytes.length === SLAB_BYTES) free.push(s.bytes);
}

/**
 * The slab one reader carves cells from ({@link ByteSlab}), and the batches' holds on its slabs: {@link seal}
 * when a batch is handed on, {@link release} when its rows are done with. The reader holds the slab it carves
 * from; the batch being read holds every slab carved from since the last seal, and {@link seal} hands those holds
 * to the batch's lease.
 */
export class SlabCarver implements ByteSlab {
  #cur: Slab = { bytes: takeSlab(), holds: 2 };
  #used = 0;
  /** Slabs carved from since the last seal (the current one last), each held for the batch being read. */
  #touched: Slab[] = [this.#cur];
  /** Where the current slab's carving stood at the last seal. */
  #sealedAt = 0;
  #closed = false;

  reserve(n: number): Uint8Array {
    if (this.#used + n > this.#cur.bytes.length) this.#next(n);
    return this.#cur.bytes;
  }

  used(): number {
    return this.#used;
  }

  /**
   * Marks `n` more bytes used, and the next cell's start rounded up to a multiple of 4: a payload that starts on
   * a word is hashed a word per load by the row dedupe (util/xxhash32.ts hash32; ~1.5x faster than shifting
   * two words together for every one).
   */
  advance(n: number): void {
    this.#used = (this.#used + n + 3) & ~3;
  }

  /** The lease of the rows read since the last seal: every slab they may view is held until it is released. */
  seal(): SlabLease {
    const slabs = this.#touched;
    // Closed (capture.ts closes it as its last deferred line is read, before the merge seals the step's rows): the
    // rows read since the last seal take its holds, and no batch follows to hold the current slab.
    if (this.#closed) {
      this.#touched = [];
      return { slabs };
    }
    this.#cur.holds++;
    this.#touched = [this.#cur];
    this.#sealedAt = this.#used;
    return { slabs };
  }

  /** Drops a lease's holds (once: its rows are no longer read). */
  release(lease: SlabLease): void {
    for (const s of lease.slabs) drop(s);
  }

  /**
   * The reader is done: its hold on the current slab goes, and the open batch's when it carved nothing. Rows read
   * since the last seal keep their slabs held until a {@link seal} after this one hands them to a lease; without
   * it nothing releases them, and their slabs are left to the collector.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const cur = this.#cur;
    if (this.#touched.length === 1 && this.#used === this.#sealedAt) {
      drop(cur);
      this.#touched = [];
    }
    drop(cur);
  }

  /** Moves to a slab with room for `n` bytes (one of its own when `n` is beyond a slab). */
  #next(n: number): void {
    drop(this.#cur);
    const bytes = n > SLAB_BYTES ? new Uint8Array(n) : takeSlab();
    this.#cur = { bytes, holds: 2 };
    this.#used = 0;
    this.#touched.push(this.#cur);
  }
}
