import { deepEqual, equal, ok, rejects, throws } from "node:assert/strict";
import { parseFrames, PcapFormatError, PcapParser, PcapReader } from "../packets/pcap.ts";
import type { Frame } from "../packets/types.ts";
import { classicPcap, concat, PcapngBuilder } from "./support/packet_build.ts";
import { FIX, tsharkTruth } from "./support/packet_truth.ts";

function bytesOf(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (seed + i * 7) & 0xff;
  return b;
}

function streamOf(bytes: Uint8Array, chunk: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.slice(at, at + chunk));
      at += chunk;
    },
  });
}

async function collect(r: PcapReader): Promise<Frame[]> {
  const out: Frame[] = [];
  for await (const f of r) out.push(f);
  return out;
}

Deno.test("classic pcap: microsecond and nanosecond magic in both byte orders give exact ns times", () => {
  for (const littleEndian of [true, false]) {
    const us = parseFrames(classicPcap({ nanosecond: false, littleEndian, linkType: 1 }, [
      { sec: 1_700_000_000, frac: 999_999, data: bytesOf(60, 1), origLen: 1514 },
      { sec: 1_700_000_001, frac: 5, data: bytesOf(42, 2) },
    ]));
    equal(us.stats.format, "pcap");
    equal(us.stats.littleEndian, littleEndian);
    equal(us.frames.length, 2);
    equal(us.frames[0]!.timeNs, 1_700_000_000_999_999_000n);
    equal(us.frames[1]!.timeNs, 1_700_000_001_000_005_000n);
    equal(us.frames[0]!.origLen, 1514);
    equal(us.frames[0]!.linkType, 1);
    equal(us.frames[0]!.iface, 0);
    deepEqual(us.frames[1]!.data, bytesOf(42, 2));

    const ns = parseFrames(classicPcap({ nanosecond: true, littleEndian, linkType: 276 }, [
      { sec: 4_000_000_000, frac: 999_999_999, data: bytesOf(20, 3) },
    ]));
    equal(ns.stats.format, "pcap-ns");
    // Beyond 2^53 ns and past 2038 (uint32 seconds): still exact.
    equal(ns.frames[0]!.timeNs, 4_000_000_000_999_999_999n);
    equal(ns.frames[0]!.linkType, 276);
    deepEqual(ns.stats.problems, []);
  }
});

Deno.test("pcapng: sections in both byte orders, if_tsresol (decimal and power of two), if_tsoffset, SPB, skipped blocks", () => {
  const b = new PcapngBuilder()
    .section(true)
    .iface(1) // default resolution: microseconds
    .iface(101, { tsresol: 9 }) // nanoseconds
    .other(5, new Uint8Array(16)) // interface statistics: skipped
    .epb(0, 1_700_000_000_123_456n, bytesOf(30, 1), 1000)
    .epb(1, 1_700_000_000_123_456_789n, bytesOf(31, 2))
    .section(false) // big-endian section: interfaces start again
    .iface(113, { tsresol: 0x80 | 20, tsoffset: 1_600_000_000n }) // 2^-20 s units, +1.6e9 s
    .iface(276, { tsresol: 3 }) // milliseconds
    .iface(1, { tsresol: 12 }) // picoseconds: divided down
    .epb(0, (5n << 20n) + (1n << 19n), bytesOf(32, 3)) // 5.5 s after the offset
    .epb(1, 1_700_000_000_001n, bytesOf(33, 4))
    .epb(2, 12_345_678_901_234_567n, bytesOf(34, 5)) // ps: 12345.678901234567 s
    .spb(bytesOf(35, 6), 35);
  const { frames, stats } = parseFrames(b.bytes());
  deepEqual(stats.problems, []);
  equal(stats.format, "pcapng");
  equal(stats.sections, 2);
  equal(stats.interfaces, 5);
  equal(stats.littleEndian, false);
  deepEqual(frames.map((f) => f.timeNs), [
    1_700_000_000_123_456_000n,
    1_700_000_000_123_456_789n,
    1_600_000_005_500_000_000n,
    1_700_000_000_001_000_000n,
    12_345_678_901_234n, // floored to the ns
    12_345_678_901_234n, // SPB: no timestamp of its own, the previous packet's
  ]);
  deepEqual(frames.map((f) => f.linkType), [1, 101, 113, 276, 1, 113]);
  // Interface numbers are unique across sections.
  deepEqual(frames.map((f) => f.iface), [0, 1, 2, 3, 4, 2]);
  equal(frames[0]!.origLen, 1000);
  deepEqual(frames[3]!.data, bytesOf(33, 4));
  deepEqual(frames[5]!.data, bytesOf(35, 6));
});

Deno.test("pcapng: power-of-two resolution keeps sub-microsecond precision (2^-30 s)", () => {
  const units = (1_700_000_000n << 30n) + 1n; // one unit past a whole second: 0.93 ns, floored
  const { frames } = parseFrames(
    new PcapngBuilder().section(true).iface(1, { tsresol: 0x80 | 30 }).epb(0, units, bytesOf(14, 0)).bytes(),
  );
  equal(frames[0]!.timeNs, 1_700_000_000_000_000_000n);
  const u2 = (1_700_000_000n << 30n) + (1n << 29n) + 3n; // +0.5 s + 2.79 ns
  const f2 = parseFrames(
    new PcapngBuilder().section(true).iface(1, { tsresol: 0x80 | 30 }).epb(0, u2, bytesOf(14, 0)).bytes(),
  );
  equal(f2.frames[0]!.timeNs, 1_700_000_000_500_000_002n);
});

Deno.test("streaming: any chunking gives the same frames as one buffer, and memory stays bounded", async () => {
  const recs = Array.from(
    { length: 50 },
    (_, i) => ({ sec: 1_700_000_000 + i, frac: i * 1000, data: bytesOf(40 + i * 13, i) }),
  );
  const file = classicPcap({ nanosecond: true, littleEndian: true, linkType: 1 }, recs);
  const whole = parseFrames(file).frames;
  equal(whole.length, 50);
  for (const chunk of [1, 3, 7, 64, 1000, file.length]) {
    const frames = await collect(new PcapReader(streamOf(file, chunk)));
    deepEqual(
      frames.map((f) => [f.timeNs, f.data.length, f.data[5]]),
      whole.map((f) => [f.timeNs, f.data.length, f.data[5]]),
    );
    for (let i = 0; i < 50; i++) deepEqual(frames[i]!.data, whole[i]!.data);
  }
  // pcapng too, through an async iterable of chunks.
  const ng = new PcapngBuilder().section(false).iface(1, { tsresol: 9 });
  for (let i = 0; i < 20; i++) ng.epb(0, 1_000_000_000n * BigInt(i) + BigInt(i), bytesOf(33 + i, i));
  const ngBytes = ng.bytes();
  async function* pieces() {
    for (let at = 0; at < ngBytes.length; at += 5) yield ngBytes.slice(at, at + 5);
  }
  const ngFrames = await collect(new PcapReader(pieces()));
  equal(ngFrames.length, 20);
  equal(ngFrames[19]!.timeNs, 19_000_000_019n);
  deepEqual(ngFrames[7]!.data, bytesOf(40, 7));

  // A long synthetic capture pushed in 64 KiB chunks: the parser never holds more than a chunk plus a record.
  const rec = classicPcap({ nanosecond: true, littleEndian: true, linkType: 1 }, [{
    sec: 1,
    frac: 2,
    data: bytesOf(200, 9),
  }]);
  const one = rec.subarray(24);
  const chunk = new Uint8Array(65536 - (65536 % one.length));
  for (let at = 0; at < chunk.length; at += one.length) chunk.set(one, at);
  const p = new PcapParser();
  p.push(rec.subarray(0, 24));
  let n = 0, maxHeld = 0;
  for (let i = 0; i < 800; i++) { // ~52 MB
    p.push(chunk);
    maxHeld = Math.max(maxHeld, p.buffered);
    while (p.next() !== undefined) n++;
  }
  p.end();
  while (p.next() !== undefined) n++;
  equal(n, 800 * (chunk.length / one.length));
  ok(maxHeld <= chunk.length + one.length, `held ${maxHeld}`);
});

Deno.test("truncated file: the partial last record is reported, the complete ones are read, nothing throws", async () => {
  const file = classicPcap({ nanosecond: false, littleEndian: true, linkType: 1 }, [
    { sec: 10, frac: 1, data: bytesOf(100, 1) },
    { sec: 11, frac: 2, data: bytesOf(100, 2) },
  ]);
  for (const cut of [file.length - 1, file.length - 100, 24 + 116 + 5]) {
    const { frames, stats } = parseFrames(file.subarray(0, cut));
    equal(frames.length, 1);
    equal(stats.problemCounts.truncated_record, 1);
    equal(stats.problems[0]!.offset, 24 + 116);
    ok(
      /file ends \d+ bytes into a \d+-byte record/.test(stats.problems[0]!.detail),
      stats.problems[0]!.detail,
    );
    const streamed = new PcapReader(streamOf(file.subarray(0, cut), 17));
    equal((await collect(streamed)).length, 1);
    equal(streamed.stats.problemCounts.truncated_record, 1);
  }
  // pcapng cut inside a block.
  const ng = new PcapngBuilder().section(true).iface(1).epb(0, 5n, bytesOf(50, 1)).epb(0, 6n, bytesOf(50, 2))
    .bytes();
  const r = parseFrames(ng.subarray(0, ng.length - 10));
  equal(r.frames.length, 1);
  equal(r.stats.problemCounts.truncated_record, 1);
});

Deno.test("garbage record length: counted with its offset, and reading resumes at the next record", () => {
  const recs = Array.from(
    { length: 6 },
    (_, i) => ({ sec: 1_700_000_000 + i, frac: i, data: bytesOf(80, i) }),
  );
  const bad = { ...recs[2]!, capLenField: 0x7fff0000 };
  const file = classicPcap({ nanosecond: true, littleEndian: true, linkType: 1 }, [
    ...recs.slice(0, 2),
    bad,
    ...recs.slice(3),
  ]);
  const { frames, stats } = parseFrames(file);
  equal(stats.problemCounts.bad_record_length, 1);
  equal(stats.problems[0]!.offset, 24 + 2 * 96);
  ok(stats.problems[0]!.detail.includes("2147418112"), stats.problems[0]!.detail);
  ok(stats.problems[0]!.detail.includes("resumed 96 bytes later"), stats.problems[0]!.detail);
  deepEqual(
    frames.map((f) => f.timeNs),
    [0, 1, 3, 4, 5].map((i) => 1_700_000_000_000_000_000n + BigInt(i) * 1_000_000_001n),
  );
  equal(stats.skippedBytes, 96);

  // Garbage with no record after it: the rest is skipped, never an exception.
  const tail = concat(file.subarray(0, 24 + 96), new Uint8Array(16).fill(0xff), bytesOf(300, 3));
  const r2 = parseFrames(tail);
  equal(r2.frames.length, 1);
  equal(r2.stats.problemCounts.bad_record_length, 1);
});

Deno.test("pcapng corrupt blocks: mismatched trailer and unknown interface are counted, reading goes on", () => {
  const good = new PcapngBuilder().section(true).iface(1).epb(0, 1n, bytesOf(40, 1)).bytes();
  const b2 = new PcapngBuilder().section(true).iface(1).epb(0, 2n, bytesOf(40, 2)).bytes();
  const epb2 = b2.subarray(b2.length - (12 + 20 + 40));
  const broken = epb2.slice();
  new DataView(broken.buffer).setUint32(broken.length - 4, 999, true); // trailing length lies
  const b3 = new PcapngBuilder().section(true).iface(1).epb(0, 3n, bytesOf(40, 3)).epb(7, 4n, bytesOf(40, 4))
    .epb(0, 5n, bytesOf(40, 5)).bytes();
  const tail = b3.subarray(b3.length - 3 * 72);
  const { frames, stats } = parseFrames(concat(good, broken, tail));
  equal(stats.problemCounts.bad_block, 1);
  equal(stats.problemCounts.unknown_interface, 1);
  deepEqual(frames.map((f) => f.timeNs), [1000n, 3000n, 5000n]);
});

Deno.test("not a capture file: a clear error naming the magic found", async () => {
  throws(() => parseFrames(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n")), (e: unknown) => {
    ok(e instanceof PcapFormatError);
    ok(e.message.includes("magic 0x47455420"), e.message);
    equal(e.magic, 0x47455420);
    return true;
  });
  throws(() => parseFrames(new Uint8Array(0)), /it is empty/);
  throws(() => parseFrames(new Uint8Array([0xd4, 0xc3])), /only 2 bytes \(d4 c3\)/);
  throws(() => parseFrames(new Uint8Array([0xd4, 0xc3, 0xb2, 0xa1, 2, 0])), /header cut short/);
  await rejects(
    collect(new PcapReader(streamOf(new TextEncoder().encode('{"capture":1}\n'), 4))),
    PcapFormatError,
  );
});

const FIXTURES = [
  ["rtp_v4_ns.pcap", "pcap-ns", 1],
  ["rtp_v6_us.pcap", "pcap", 1],
  ["rtp_any_sll.pcap", "pcap-ns", 113],
  ["rtp_any_sll2.pcap", "pcap-ns", 276],
  ["rtp_dumpcap.pcapng", "pcapng", -1],
  ["rtp_v4_lossy.pcap", "pcap-ns", 1],
] as const;

Deno.test("real captures (tcpdump, dumpcap): frames, ns times, lengths and interfaces agree exactly with tshark", async () => {
  for (const [name, format, linkType] of FIXTURES) {
    using file = await Deno.open(new URL(name, FIX));
    const reader = new PcapReader(file);
    const frames = await collect(reader);
    const truth = await tsharkTruth(name);
    equal(reader.stats.format, format, name);
    deepEqual(reader.stats.problems, [], name);
    equal(frames.length, truth.length, name);
    ok(frames.length >= 100, name);
    for (let i = 0; i < frames.length; i++) {
      equal(frames[i]!.timeNs, truth[i]!.timeNs, `${name} #${i}`);
      equal(frames[i]!.data.length, truth[i]!.capLen, `${name} #${i}`);
      equal(frames[i]!.iface, truth[i]!.iface, `${name} #${i}`);
    }
    if (linkType >= 0) ok(frames.every((f) => f.linkType === linkType), name);
    else {
      // dumpcap on lo and any: interface 0 is Ethernet (lo), 1 is Linux cooked.
      equal(reader.stats.interfaces, 2);
      ok(frames.every((f) => f.linkType === (f.iface === 0 ? 1 : 113)), name);
    }
  }
});

Deno.test("a truncated copy of a real capture: all complete records, one truncation, no throw", async () => {
  const bytes = await Deno.readFile(new URL("rtp_v4_ns.pcap", FIX));
  const truth = await tsharkTruth("rtp_v4_ns.pcap");
  const reader = new PcapReader(streamOf(bytes.subarray(0, bytes.length - 50), 4096));
  const frames = await collect(reader);
  equal(frames.length, truth.length - 1);
  equal(reader.stats.problemCounts.truncated_record, 1);
  equal(frames[frames.length - 1]!.timeNs, truth[truth.length - 2]!.timeNs);
});

Deno.test("tshark, when installed, still reads the fixtures as their .tshark.csv says", async () => {
  let has = true;
  try {
    await new Deno.Command("tshark", { args: ["-v"], stdout: "null", stderr: "null" }).output();
  } catch {
    has = false;
  }
  if (!has) {
    console.log("tshark not installed: cross-check skipped (apt-get install tshark)");
    return;
  }
  for (const [name] of FIXTURES) {
    const port = name.startsWith("rtp_v6")
      ? 40002
      : name.includes("sll2")
      ? 40006
      : name.includes("sll")
      ? 40004
      : name.includes("dumpcap")
      ? 40008
      : 40000;
    const out = await new Deno.Command("tshark", {
      args: [
        "-r",
        new URL(name, FIX).pathname,
        "-d",
        `udp.port==${port},rtp`,
        "-T",
        "fields",
        "-E",
        "separator=,",
        "-e",
        "frame.time_epoch",
        "-e",
        "frame.interface_id",
        "-e",
        "frame.cap_len",
        "-e",
        "rtp.seq",
        "-e",
        "rtp.timestamp",
        "-e",
        "rtp.ssrc",
        "-e",
        "rtp.p_type",
      ],
      stdout: "piped",
      stderr: "null",
    }).output();
    equal(
      new TextDecoder().decode(out.stdout),
      await Deno.readTextFile(new URL(name + ".tshark.csv", FIX)),
      name,
    );
  }
});
