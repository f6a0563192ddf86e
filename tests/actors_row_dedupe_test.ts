import { equal } from "node:assert/strict";
import { DEDUPE_MAX_ROWS, DEDUPE_WINDOW_NS, hash32, RecentRows } from "../actors/row_dedupe.ts";

/** The rows' previous form, one string key per row in a Map, kept as the reference the ring must agree with. */
class ReferenceRows {
  readonly #seen = new Map<string, bigint>();
  #newest: bigint | undefined;
  #jump: bigint | undefined;

  seen(timeNs: bigint, payload: Uint8Array | undefined): boolean {
    const id = `${timeNs}:${payload?.length ?? -1}:${payload ? hash32(payload) : 0}`;
    if (this.#seen.has(id)) return true;
    if (this.#seen.size >= DEDUPE_MAX_ROWS) {
      const first = this.#seen.keys().next().value;
      if (first !== undefined) this.#seen.delete(first);
    }
    this.#seen.set(id, timeNs);
    const n = this.#newest;
    let plausible = n === undefined || (timeNs > n && timeNs - n <= DEDUPE_WINDOW_NS);
    if (n !== undefined && (timeNs - n > DEDUPE_WINDOW_NS || n - timeNs > DEDUPE_WINDOW_NS)) {
      // A jump past the window, either way, counts once the next row follows on from it; back, the rows held from
      // beyond the window after it are forgotten.
      const j = this.#jump;
      plausible = j !== undefined && timeNs > j && timeNs - j <= DEDUPE_WINDOW_NS;
      this.#jump = plausible ? undefined : timeNs;
      if (plausible && timeNs < n) {
        for (const [k, t] of this.#seen) if (t - timeNs > DEDUPE_WINDOW_NS) this.#seen.delete(k);
      }
    } else if (plausible) this.#jump = undefined;
    if (plausible) {
      this.#newest = timeNs;
      const oldest = timeNs - DEDUPE_WINDOW_NS;
      for (const [k, t] of this.#seen) {
        if (t >= oldest) break;
        this.#seen.delete(k);
      }
    }
    return false;
  }

  get size(): number {
    return this.#seen.size;
  }
}

Deno.test("duplicate rows: the ring agrees with the string-keyed map on repeats, jumps, floods and silence", () => {
  let seed = 11;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const payloads = [undefined, new Uint8Array(0), new Uint8Array([1, 2, 3]), new Uint8Array(160).fill(0xff)];
  for (let i = 0; i < 40; i++) payloads.push(new Uint8Array(160).map((_, j) => (i * 31 + j) & 0xff));
  for (let run = 0; run < 30; run++) {
    const a = new RecentRows();
    const b = new ReferenceRows();
    let t = 1_763_900_000_000_000_000n;
    const recent: [bigint, Uint8Array | undefined][] = [];
    for (let i = 0; i < 3000; i++) {
      const op = rnd(20);
      let row: [bigint, Uint8Array | undefined];
      if (op < 4 && recent.length > 0) row = recent[rnd(recent.length)]!; // a repeat, maybe forgotten by now
      else {
        // Mostly 20 ms steps; sometimes the same instant, a step back, a jump ahead or back, or far into the
        // future (two rows in a row at times: a clock's garbage).
        t += op === 4
          ? 0n
          : op === 5
          ? -40_000_000n
          : op === 6
          ? 7_000_000_000n
          : op === 8
          ? -9_000_000_000n
          : 20_000_000n;
        const time = op === 7 || (op === 9 && rnd(2) === 0) ? t + 3_600_000_000_000n : t;
        row = [time, payloads[rnd(payloads.length)]];
      }
      recent.push(row);
      if (recent.length > 600) recent.shift();
      equal(a.seen(row[0], row[1]), b.seen(row[0], row[1]), `run ${run} row ${i}`);
      equal(a.size, b.size);
    }
  }
});

Deno.test("duplicate rows: a stream's 5 s at 50 messages/s is one buffer of 16 bytes a row", () => {
  const r = new RecentRows();
  // A new stream starts with room for 64 rows (1 KB): two doublings to its 5 s, not four.
  equal(r.bytes, 64 * 16);
  const t = 1_763_900_000_000_000_000n;
  for (let i = 0; i < 400; i++) r.seen(t + BigInt(i) * 20_000_000n, new Uint8Array([i & 0xff, 1, 2]));
  equal(r.size, 251);
  // 256 rows: time (8 bytes), length and hash (4 each); before, two index slots of 2 bytes more, and before
  // that 24 bytes a row in six buffers (6 KB).
  equal(r.bytes, 256 * 16);
});

Deno.test("duplicate rows: after a pause longer than the window, the window moves on again", () => {
  // A call on hold, or rows shed under overload: the stream's next row is more than 5 s after the last. Before,
  // its newest row stayed behind for good, nothing was forgotten by time any more, and every such stream held
  // its bound of rows (513, in a ring of 1,024: 16 KB instead of 4 KB; 1,662 streams of a 1,000-call sensor
  // under overload held 27 MB where 7 MB was right).
  const r = new RecentRows();
  const t = 1_763_900_000_000_000_000n;
  const p = (i: number) => new Uint8Array([i & 0xff, i >> 8, 5]);
  let at = t;
  for (let i = 0; i < 300; i++, at += 20_000_000n) r.seen(at, p(i));
  at += 7_000_000_000n;
  for (let i = 300; i < 1300; i++, at += 20_000_000n) r.seen(at, p(i));
  equal(r.size, 251);
  equal(r.bytes, 256 * 16);
  // One row from the future alone still forgets nothing.
  equal(r.seen(at + 3_600_000_000_000n, p(0)), false);
  equal(r.seen(at, p(1)), false);
  equal(r.size, 252);
  equal(r.seen(at - 20_000_000n, p(1299)), true, "the rows before the future one are still held");
});

Deno.test("duplicate rows: after rows from the future or a clock stepped back, the window moves on again", () => {
  // Two rows in a row far ahead (a clock's garbage), a stream's first row far ahead, or a step of the clock back
  // by more than the window: before, every later row was behind the stream's newest, nothing was forgotten, and
  // the ring sat at its bound (512 rows) with every row searched for in all of it.
  const t = 1_763_900_000_000_000_000n;
  const H = 3_600_000_000_000n, STEP = 20_000_000n;
  const p = (i: number) => new Uint8Array([i & 0xff, i >> 8, 7]);
  const future = new RecentRows();
  let at = t;
  for (let i = 0; i < 100; i++, at += STEP) future.seen(at, p(i));
  future.seen(at + H, p(5000));
  future.seen(at + H + STEP, p(5001));
  for (let i = 100; i < 3100; i++, at += STEP) future.seen(at, p(i));
  equal(future.size, 251);
  equal(future.seen(at - STEP, p(3099)), true, "a copy of a recent row is still seen");
  const first = new RecentRows();
  first.seen(t + H, p(0));
  at = t;
  for (let i = 1; i < 3000; i++, at += STEP) first.seen(at, p(i));
  equal(first.size, 251);
  const back = new RecentRows();
  at = t;
  for (let i = 0; i < 1000; i++, at += STEP) back.seen(at, p(i));
  at -= 60_000_000_000n;
  for (let i = 1000; i < 2000; i++, at += STEP) back.seen(at, p(i));
  equal(back.size, 251);
  equal(back.seen(at - STEP, p(1999)), true);
});

Deno.test("duplicate rows: a full ring stays at its bound of rows in one buffer of that size", () => {
  const r = new RecentRows();
  const t = 1_763_900_000_000_000_000n;
  for (let i = 0; i < 3 * DEDUPE_MAX_ROWS; i++) r.seen(t, new Uint8Array([i & 0xff, i >> 8]));
  equal(r.size, DEDUPE_MAX_ROWS);
  equal(r.bytes, DEDUPE_MAX_ROWS * 16);
});

Deno.test("duplicate rows: rows back in time are looked for in the whole ring, wrapped or not", () => {
  const p = (i: number) => new Uint8Array([i & 0xff, i >> 8, 9]);
  const t = 1_763_900_000_000_000_000n;
  for (const lead of [0, 100, 250]) {
    const r = new RecentRows();
    // `lead` rows forgotten first (the window moves on), so the ring wraps at another place each time.
    for (let i = 0; i < lead; i++) r.seen(t + BigInt(i) * 20_000_000n, p(i));
    const base = t + BigInt(lead + 300) * 20_000_000n;
    for (let i = 0; i < 200; i++) equal(r.seen(base + BigInt(i) * 20_000_000n, p(i)), false);
    // Every one of them again, newest first: each seen; a row between two of them with another payload not.
    for (let i = 199; i >= 0; i--) {
      equal(r.seen(base + BigInt(i) * 20_000_000n, p(i)), true, `lead ${lead} row ${i}`);
      equal(r.seen(base + BigInt(i) * 20_000_000n, p(i + 1)), false, `lead ${lead} row ${i}`);
    }
    // The latest again, and a row later than every row held that was seen long ago (forgotten since).
    equal(r.seen(base + 199n * 20_000_000n, p(199)), true);
    equal(r.seen(base + 200n * 20_000_000n, p(200)), false);
    equal(r.seen(base + 200n * 20_000_000n, p(200)), true);
  }
});

Deno.test("duplicate rows: a flood at one instant stays bounded and forgets the oldest first", () => {
  const r = new RecentRows();
  const t = 1_763_900_000_000_000_000n;
  const p = (i: number) => new Uint8Array([i & 0xff, i >> 8]);
  for (let i = 0; i <= DEDUPE_MAX_ROWS; i++) equal(r.seen(t, p(i)), false);
  equal(r.size, DEDUPE_MAX_ROWS);
  equal(r.seen(t, p(DEDUPE_MAX_ROWS)), true);
  equal(r.seen(t, p(0)), false, "the oldest was forgotten");
});

Deno.test("duplicate rows: the window's edge to the nanosecond, across 32-bit word and sign boundaries", () => {
  const p = new Uint8Array([7]);
  for (const base of [1_763_900_000_000_000_000n, (1n << 32n) - 3n, -2_500_000_000n, 0n, -(1n << 62n)]) {
    const a = new RecentRows();
    const b = new ReferenceRows();
    const times = [
      base,
      base + 1n,
      base + DEDUPE_WINDOW_NS, // base is exactly a window old: kept
      base + DEDUPE_WINDOW_NS + 1n, // now base is older than the window: forgotten
      base + 1n + DEDUPE_WINDOW_NS + 1n,
      base,
      base + 1n,
      base + 2n * DEDUPE_WINDOW_NS + 2n, // a full window ahead at once: a plausible step
      base + DEDUPE_WINDOW_NS + 1n,
    ];
    for (const [i, t] of times.entries()) {
      equal(a.seen(t, p), b.seen(t, p), `base ${base} row ${i}`);
      equal(a.size, b.size, `base ${base} row ${i}`);
    }
  }
});

/** xxHash32 (seed 0) read a byte at a time, as its specification states it: hash32's values, whatever its loads. */
function referenceHash(b: Uint8Array): number {
  const P1 = 0x9e3779b1, P2 = 0x85ebca77, P3 = 0xc2b2ae3d, P4 = 0x27d4eb2f, P5 = 0x165667b1;
  const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r));
  const at = (i: number) => b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
  const lane = (v: number, k: number) => Math.imul(rotl((v + Math.imul(k, P2)) | 0, 13), P1);
  const n = b.length;
  let i = 0;
  let h: number;
  if (n >= 16) {
    const v = [(P1 + P2) | 0, P2 | 0, 0, -P1 | 0];
    for (; i + 16 <= n; i += 16) for (let l = 0; l < 4; l++) v[l] = lane(v[l]!, at(i + 4 * l));
    h = (rotl(v[0]!, 1) + rotl(v[1]!, 7) + rotl(v[2]!, 12) + rotl(v[3]!, 18)) | 0;
  } else h = P5;
  h = (h + n) | 0;
  for (; i + 4 <= n; i += 4) h = Math.imul(rotl((h + Math.imul(at(i), P3)) | 0, 17), P4);
  for (; i < n; i++) h = Math.imul(rotl((h + Math.imul(b[i]!, P5)) | 0, 11), P1);
  h ^= h >>> 15;
  h = Math.imul(h, P2);
  h ^= h >>> 13;
  h = Math.imul(h, P3);
  h ^= h >>> 16;
  return h >>> 0;
}

Deno.test("duplicate rows: hash32 is xxHash32 (the published test values)", () => {
  const te = new TextEncoder();
  equal(hash32(new Uint8Array(0)), 0x02cc5d05);
  equal(hash32(te.encode("abc")), 0x32d153ff);
  equal(hash32(te.encode("Nobody inspects the spammish repetition")), 0xe2293b2f);
  equal(referenceHash(te.encode("Nobody inspects the spammish repetition")), 0xe2293b2f);
});

Deno.test("duplicate rows: hash32 reads words of the payload's buffer at any offset, length and buffer size", () => {
  for (const size of [64, 67, 1030]) {
    const buf = new Uint8Array(size).map((_, i) => Math.imul(i + size, 2654435761) >>> 24);
    for (let off = 0; off < 8; off++) {
      for (let n = 0; off + n <= size; n++) {
        const v = buf.subarray(off, off + n);
        equal(hash32(v), referenceHash(v), `buffer ${size} offset ${off} length ${n}`);
      }
    }
    // Views that end at the buffer's last byte (its last word partial when the size is not a multiple of 4).
    for (let off = 0; off < size; off++) {
      const v = buf.subarray(off);
      equal(hash32(v), referenceHash(v), `buffer ${size} tail from ${off}`);
    }
  }
});

Deno.test("duplicate rows: a copy of the latest row, or of an older one after it, is still seen", () => {
  const r = new RecentRows();
  const t = 1_763_900_000_000_000_000n;
  const p = (i: number) => new Uint8Array(40).fill(i);
  equal(r.seen(t, p(1)), false);
  equal(r.seen(t, p(1)), true, "the latest again");
  equal(r.seen(t + 20_000_000n, p(2)), false);
  equal(r.seen(t, p(1)), true, "an older one");
  equal(r.seen(t + 20_000_000n, p(3)), false, "same time, other payload");
  equal(r.seen(t + 20_000_000n, p(3)), true);
});
