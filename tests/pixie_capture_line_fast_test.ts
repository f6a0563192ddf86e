import { deepEqual, equal, ok } from "node:assert/strict";
import {
  base64ToBytes,
  encodeCaptureLine,
  parseCaptureLine,
  parseCaptureLineJson,
  utf8Bytes,
} from "../pixie/capture.ts";
import {
  type ByteSlab,
  lineEnd,
  parseCaptureLineBytes,
  parseCaptureLineFast,
  readCaptureLine,
} from "../pixie/capture_line_fast.ts";
import type { Row } from "../pixie/row.ts";
import { cellKernelBuffer, cellKernelOf, OUT_ROOM } from "../pixie/string_cell_simd.ts";

const enc = new TextEncoder();

/** A fresh slab for direct calls of the fast reader. */
function testSlab(): ByteSlab {
  let buf = new Uint8Array(1 << 16);
  let used = 0;
  return {
    reserve(n) {
      if (used + n > buf.length) {
        buf = new Uint8Array(Math.max(1 << 16, n));
        used = 0;
      }
      return buf;
    },
    used: () => used,
    advance(n) {
      used += n;
    },
  };
}

/** A row as plain data (bytes as arrays, key order kept), to compare what two readers made. */
function plain(r: Row | string): unknown {
  if (typeof r === "string") return r;
  return {
    query: r.query,
    node: r.node,
    time: r.time,
    proto: Object.getPrototypeOf(r.columns) === Object.prototype,
    columns: Object.keys(r.columns).map((k) => {
      const v = r.columns[k];
      return [k, v instanceof Uint8Array ? ["bytes", ...v] : v];
    }),
  };
}

const LINES = [
  encodeCaptureLine({
    query: "bench/alaw",
    node: "n",
    time: 1763900000542628796n,
    columns: {
      time_: 1763900000542628796n,
      pod: enc.encode("voice/alaw-0"),
      remote_addr: enc.encode("10.1.0.7"),
      remote_port: 20060n,
      req_body: enc.encode('{"data":"UddV19fR1FRXVFRWVdRW1NTV1VV\\/\\n","event":"media"}'),
    },
  }),
  encodeCaptureLine({
    query: "m/source",
    node: "n",
    time: 5n,
    columns: {
      time_: 5n,
      req_body: new Uint8Array([0xff, 0x00, 0x80, 0x22]),
      ok: true,
      no: false,
      neg: -12n,
      big: 9_007_199_254_740_993n,
      ratio: 0.25,
      upid: "00000001-0000-0002-0000-000000000003",
      text: enc.encode('tab\there \u0001 quote" back\\ slash/ del\u007f'),
    },
  }),
  '{"query":"m/s","row":{"pod":"p","time_":"-7","x":"h\\u00e9llo","y":"\\u0041\\u005a"}}',
  ' { "query" : "m/s" , "row" : { "time_" : "1" , "a" : 0 , "b" : { "base64" : "AA==" } } } ',
  // Long runs of plain bytes (a media payload), which the reader scans four bytes at a time and copies whole: a
  // mutation anywhere in them (a quote, an escape, a control or non-ASCII byte) must be seen where it is.
  encodeCaptureLine({
    query: "bench/identity",
    node: "n",
    time: 1763900001893077388n,
    columns: {
      time_: 1763900001893077388n,
      pod: enc.encode("voice/identity-0"),
      req_body: enc.encode(
        '{"event":"media","media":{"track":"inbound","payload":"' +
          "/3r3/n16fn39/X7+e3x4ev1+/v39fvj+9/z6+f59enr+/n18+/r/eH58fXz7fPx5/X54evn6/Xd6+3j9/nv3fvx9enz4+ft8ev74e"
            .repeat(3) +
          '=="},"streamSid":"identity/call01"}',
      ),
    },
  }),
];

Deno.test("direct capture line reader: the usual lines are read directly, as JSON.parse reads them", () => {
  const slab = testSlab();
  for (const line of [LINES[0]!, LINES[3]!.trim()]) {
    const fast = parseCaptureLineFast(line, "n", slab, base64ToBytes);
    ok(fast !== undefined, `read directly: ${line}`);
    deepEqual(plain(fast), plain(parseCaptureLineJson(line, "n")));
  }
  // Non-ASCII text and fractions are left to JSON.parse.
  equal(
    parseCaptureLineFast('{"query":"m/s","row":{"time_":"1","x":"é"}}', "n", slab, base64ToBytes),
    undefined,
  );
  equal(
    parseCaptureLineFast('{"query":"m/s","row":{"time_":"1","x":0.5}}', "n", slab, base64ToBytes),
    undefined,
  );
});

Deno.test("direct capture line reader: rows identical to JSON.parse's on every mutation of real lines", () => {
  // Characters that move a line between shapes: structure, escapes, digits, non-ASCII, controls.
  const alphabet = [
    '"',
    "\\",
    "{",
    "}",
    ":",
    ",",
    " ",
    "0",
    "1",
    "9",
    "-",
    ".",
    "e",
    "u",
    "t",
    "n",
    "a",
    "é",
    "\u0001",
    "[",
    "=",
    "_",
    "/",
    "x",
  ];
  let seed = 7;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  let direct = 0, fromBytes = 0, fromKernel = 0;
  // A file's bytes as the capture reader holds them: in the string cell kernel's memory, at any alignment.
  const kernelBytes = cellKernelBuffer(1 << 16);
  ok(cellKernelOf(kernelBytes) !== undefined, "WebAssembly SIMD kernel");
  for (let t = 0; t < 15_000; t++) {
    let line = LINES[rnd(LINES.length)]!;
    for (let m = 1 + rnd(3); m > 0; m--) {
      const at = rnd(line.length + 1);
      const op = rnd(3);
      const ch = alphabet[rnd(alphabet.length)]!;
      line = op === 0
        ? line.slice(0, at) + ch + line.slice(at)
        : op === 1
        ? line.slice(0, at) + line.slice(at + 1)
        : line.slice(0, at) + ch + line.slice(at + 1);
    }
    line = line.trim();
    const a = parseCaptureLine(line, "n");
    const b = parseCaptureLineJson(line, "n");
    deepEqual(plain(a), plain(b), line);
    if (typeof a !== "string" && parseCaptureLineFast(line, "n", testSlab(), base64ToBytes) !== undefined) {
      direct++;
    }
    // The same line read from a file's bytes (UTF-8, amid other bytes): the same row, or left to the text path.
    const bytes = enc.encode(`x\n${line}\ny`);
    const c = parseCaptureLineBytes(bytes, 2, bytes.length - 2, "n", testSlab(), base64ToBytes);
    if (c !== undefined) {
      fromBytes++;
      deepEqual(plain(c), plain(b), `bytes: ${line}`);
    }
    const shift = rnd(16);
    kernelBytes.set(bytes, shift);
    const k = parseCaptureLineBytes(
      kernelBytes,
      shift + 2,
      shift + bytes.length - 2,
      "n",
      testSlab(),
      base64ToBytes,
    );
    deepEqual(
      k === undefined ? undefined : plain(k),
      c === undefined ? undefined : plain(c),
      `kernel: ${line}`,
    );
    if (k !== undefined) fromKernel++;
  }
  ok(direct > 1000, `lines read directly: ${direct}`);
  ok(fromBytes > 1000, `lines read directly from bytes: ${fromBytes}`);
  ok(fromKernel === fromBytes, `lines read with the kernel: ${fromKernel}`);
});

Deno.test("direct capture line reader: keys JSON.parse treats specially go to JSON.parse", () => {
  const slab = testSlab();
  for (
    const line of [
      '{"query":"m/s","row":{"time_":"1","x":"a","x":"b"}}', // duplicate: the last wins
      '{"query":"m/s","row":{"time_":"1","b":1,"10":2}}', // index keys enumerate first
      '{"query":"m/s","row":{"time_":"1","__proto__":"x"}}',
      '{"query":"m/s","row":{"time_":"1","time_":"2"}}',
      '{"query":"m/s","row":{"time_":"1"},"extra":1}',
      '{"row":{"time_":"1"},"query":"m/s"}',
    ]
  ) {
    equal(parseCaptureLineFast(line, "n", slab, base64ToBytes), undefined, line);
    deepEqual(plain(parseCaptureLine(line, "n")), plain(parseCaptureLineJson(line, "n")), line);
  }
});

Deno.test("capture cells: base64 and UTF-8 bytes as atob and TextEncoder give them", () => {
  const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const extra = ["=", " ", "\n", "\t", "\r", "\f", "-", "_", "é", "\v", "*"];
  let seed = 3;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const ref = (s: string) => {
    try {
      return [...atob(s)].map((c) => c.charCodeAt(0));
    } catch {
      return "error";
    }
  };
  const mine = (s: string) => {
    try {
      return [...base64ToBytes(s)];
    } catch {
      return "error";
    }
  };
  for (let t = 0; t < 20_000; t++) {
    let s = "";
    for (let n = rnd(12); n > 0; n--) s += rnd(5) > 0 ? alpha[rnd(64)] : extra[rnd(extra.length)];
    deepEqual(mine(s), ref(s), JSON.stringify(s));
  }
  for (
    const s of ["", "abc", "é", "a\ud800b", "\udc00", "日本語", "x".repeat(5000), "é".repeat(3000), "a😀b"]
  ) {
    deepEqual([...utf8Bytes(s)], [...enc.encode(s)], JSON.stringify(s));
  }
});

Deno.test("direct capture line reader: a byte above 0x7f anywhere in a long run leaves the line to the text path", () => {
  // Invalid UTF-8 in a file is read as the whole-file decoder reads it (U+FFFD), which the direct reader cannot
  // do: it must see the byte wherever it is in a run it scans four bytes at a time.
  const line = enc.encode(LINES[4]!);
  for (let at = 40; at < line.length - 40; at += 7) {
    for (const byte of [0xff, 0x80, 0xc3]) {
      const bytes = line.slice();
      bytes[at] = byte;
      const text = new TextDecoder().decode(bytes);
      const c = parseCaptureLineBytes(bytes, 0, bytes.length, "n", testSlab(), base64ToBytes);
      if (c !== undefined) {
        deepEqual(plain(c), plain(parseCaptureLineJson(text, "n")), `0x${byte.toString(16)} at ${at}`);
      }
    }
  }
});

Deno.test("direct capture line reader: in a file's bytes a line ends at its newline, found as the line is read", () => {
  const text = LINES.map((l) => l.trim()).join("\n") + "\r\n" + LINES[0]!;
  const bytes = enc.encode(text);
  const lines = text.split("\n");
  let from = 0;
  for (let i = 0; i < lines.length; i++) {
    const last = i === lines.length - 1;
    const row = readCaptureLine(bytes, from, bytes.length, last, "n", testSlab(), base64ToBytes);
    const want = parseCaptureLineJson(lines[i]!.trim(), "n");
    const nl = last ? bytes.length : bytes.indexOf(0x0a, from);
    if (row !== undefined) {
      deepEqual(plain(row), plain(want), lines[i]!);
      equal(lineEnd(), nl, lines[i]!);
    }
    from = nl + 1;
  }
  // The usual line read in one pass: each of them directly.
  const usual = enc.encode(`${LINES[0]}\n${LINES[4]}\n`);
  const first = readCaptureLine(usual, 0, usual.length, false, "n", testSlab(), base64ToBytes);
  ok(first !== undefined);
  equal(lineEnd(), LINES[0]!.length);
  const second = readCaptureLine(usual, lineEnd() + 1, usual.length, false, "n", testSlab(), base64ToBytes);
  deepEqual(plain(second!), plain(parseCaptureLineJson(LINES[4]!, "n")));
  // A line whose newline is not in hand yet (the next chunk of the file) is not read: it may go on.
  const cut = enc.encode(LINES[0]!);
  equal(readCaptureLine(cut, 0, cut.length, false, "n", testSlab(), base64ToBytes), undefined);
  ok(readCaptureLine(cut, 0, cut.length, true, "n", testSlab(), base64ToBytes) !== undefined);
  // Nor one that goes on past its limit, nor one with more than whitespace after the row.
  const long = enc.encode(`${LINES[0]}\n`);
  equal(readCaptureLine(long, 0, long.length - 2, false, "n", testSlab(), base64ToBytes), undefined);
  const extra = enc.encode(`${LINES[0]} x\n${LINES[0]}\n`);
  equal(readCaptureLine(extra, 0, extra.length, false, "n", testSlab(), base64ToBytes), undefined);
  // A newline is whitespace in a line's text, never in a file's bytes (it ends the line).
  const spread = '{"query":"m/s",\n"row":{"time_":"1"}}';
  ok(parseCaptureLineFast(spread, "n", testSlab(), base64ToBytes) !== undefined);
  const spreadBytes = enc.encode(spread + "\n");
  equal(readCaptureLine(spreadBytes, 0, spreadBytes.length, true, "n", testSlab(), base64ToBytes), undefined);
});

Deno.test("direct capture line reader: time_ as BigInt reads it, at every length and at 2^63", () => {
  let seed = 11;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const times = ["9223372036854775807", "9223372036854775808", "9999999999999999999", "18446744073709551616"];
  times.push("4294967295999999999", "4294967296000000000", "1000000000000000000", "999999999999999999");
  for (let t = 0; t < 3000; t++) {
    let s = String(1 + rnd(9));
    for (let n = rnd(24); n > 0; n--) s += String(rnd(10));
    times.push(s, "-" + s, "00" + s);
  }
  for (const t of times) {
    const line = `{"query":"m/s","row":{"time_":"${t}","a":1}}`;
    const row = parseCaptureLineFast(line, "n", testSlab(), base64ToBytes);
    ok(row !== undefined, line);
    equal(row.time, BigInt(t), line);
    equal(row.columns["time_"], BigInt(t), line);
  }
});

Deno.test("direct capture line reader: keys compared with the line before still repeat nowhere", () => {
  const slab = testSlab();
  const read = (line: string) => parseCaptureLineFast(line, "n", slab, base64ToBytes);
  // A line that repeats a key is left to JSON.parse, and so is the same line again (its keys were not kept).
  const twice = '{"query":"m/s","row":{"time_":"1","a":"x","b":2,"a":"y"}}';
  equal(read(twice), undefined);
  equal(read(twice), undefined);
  // After a line of keys a, b: the same keys read directly, and a line that repeats one of them after them not.
  ok(read('{"query":"m/s","row":{"time_":"1","a":"x","b":2}}') !== undefined);
  ok(read('{"query":"m/s","row":{"time_":"2","a":"x","b":3}}') !== undefined);
  equal(read('{"query":"m/s","row":{"time_":"3","a":"x","b":3,"a":"z"}}'), undefined);
  equal(read('{"query":"m/s","row":{"time_":"3","a":"x","b":3,"b":4}}'), undefined);
  equal(read('{"query":"m/s","row":{"time_":"3","a":"x","c":3,"a":4}}'), undefined);
  equal(read('{"query":"m/s","row":{"time_":"3","time_":"4","b":3}}'), undefined);
  // What is kept is the last line's keys alone: after a, b then c, a, the line a, b, c, a repeats a.
  ok(read('{"query":"m/s","row":{"time_":"3","a":1,"b":2}}') !== undefined);
  ok(read('{"query":"m/s","row":{"time_":"3","c":1,"a":2}}') !== undefined);
  equal(read('{"query":"m/s","row":{"time_":"3","a":1,"b":2,"c":3,"a":4}}'), undefined);
  // Keys in another order, fewer or more of them, and a line with other keys: each as JSON.parse reads it.
  for (
    const line of [
      '{"query":"m/s","row":{"time_":"4","b":1,"a":"x"}}',
      '{"query":"m/s","row":{"time_":"5","a":"x"}}',
      '{"query":"m/s","row":{"time_":"6","a":"x","b":1,"c":true}}',
      '{"query":"m/t","row":{"a":"x","time_":"7","b":1}}',
      '{"query":"m/t","row":{"a":"x","time_":"7","b":1}}',
      '{"query":"m/t","row":{"time_":"8"}}',
    ]
  ) {
    const row = read(line);
    ok(row !== undefined, line);
    deepEqual(plain(row), plain(parseCaptureLineJson(line, "n")), line);
  }
  equal(read('{"query":"mt","row":{"time_":"8"}}'), undefined);
});

Deno.test("direct capture line reader: a string cell that outgrows its slab moves whole to a fresh one", () => {
  // A slab nearly full: a cell longer than what is left, and longer than the room it is first given.
  for (const size of [10, 100, 3000, 9000]) {
    for (const left of [0, 5, 64, 2100]) {
      let buf = new Uint8Array(1 << 16);
      let used = buf.length - left;
      const slab: ByteSlab = {
        reserve(n) {
          if (used + n > buf.length) {
            buf = new Uint8Array(Math.max(1 << 16, n));
            used = 0;
          }
          return buf;
        },
        used: () => used,
        advance(n) {
          used += n;
        },
      };
      const value = 'ab\\"cd\\\\ef/'.repeat(Math.ceil(size / 12)).slice(0, size).replace(/\\$/, "x");
      const line = `{"query":"m/s","row":{"time_":"1","v":"${value}","w":"z"}}`;
      const row = parseCaptureLineFast(line, "n", slab, base64ToBytes);
      ok(row !== undefined, `${size} ${left}`);
      deepEqual(plain(row), plain(parseCaptureLineJson(line, "n")), `${size} ${left}`);
    }
  }
});

Deno.test("direct capture line reader: a short cell that repeats is one array from its second sighting, a long one never", () => {
  const slab = testSlab();
  const body = "x".repeat(200);
  const line = (pod: string, addr: string) =>
    JSON.stringify({ query: "q/x", row: { time_: "1", pod, remote_addr: addr, req_body: body } });
  const rows: Row[] = [];
  for (let i = 0; i < 4; i++) {
    rows.push(parseCaptureLineFast(line("voice/zz-0", `10.77.${i}.9`), "n", slab, base64ToBytes)!);
  }
  const pods = rows.map((r) => r.columns["pod"] as Uint8Array);
  for (const p of pods) equal(new TextDecoder().decode(p), "voice/zz-0");
  // First sighting: a view of the slab; second: an array of its own, which every later row shares.
  ok(pods[0] !== pods[1]);
  ok(pods[1] === pods[2] && pods[2] === pods[3]);
  equal(pods[1]!.byteLength, pods[1]!.buffer.byteLength);
  // Values seen once each (the address here) stay views of the slab; the long body is never shared.
  const addrs = rows.map((r) => r.columns["remote_addr"] as Uint8Array);
  addrs.forEach((a, i) => equal(new TextDecoder().decode(a), `10.77.${i}.9`));
  ok(addrs.every((a) => a.buffer !== pods[1]!.buffer && a.byteLength < a.buffer.byteLength));
  ok(rows[2]!.columns["req_body"] !== rows[3]!.columns["req_body"]);
  // Many values, interleaved and colliding in the table: every cell holds its own bytes.
  const values = Array.from({ length: 20_000 }, (_, i) => `v${(i * 7919) % 9001}`);
  for (const v of values) {
    const r = parseCaptureLineFast(line(v, v.slice(0, 3)), "n", slab, base64ToBytes)!;
    equal(new TextDecoder().decode(r.columns["pod"] as Uint8Array), v);
    equal(new TextDecoder().decode(r.columns["remote_addr"] as Uint8Array), v.slice(0, 3));
  }
});

Deno.test("direct capture line reader: a cell longer than the kernel reads at once is finished by the JS reader", () => {
  // Escaped quotes only (each a kernel's step, no stop), then a \u escape (a stop) past the kernel's reach.
  const body = ('{\\"a\\":\\"' + "x".repeat(97) + '\\"}').repeat(Math.ceil((OUT_ROOM * 1.5) / 110)) +
    "\\u0041\\n";
  const line = `{"query":"m/s","row":{"time_":"1","pod":"p","body":"${body}","n":3}}`;
  const bytes = enc.encode(line);
  const kernelBytes = cellKernelBuffer(bytes.length + 64);
  kernelBytes.set(bytes, 3);
  const row = parseCaptureLineBytes(kernelBytes, 3, 3 + bytes.length, "n", testSlab(), base64ToBytes);
  ok(row !== undefined);
  deepEqual(plain(row), plain(parseCaptureLineJson(line, "n")));
  ok((row.columns["body"] as Uint8Array).length > OUT_ROOM);
});

Deno.test("direct capture line reader: base64 cells decoded from the line's bytes as atob decodes them", () => {
  let seed = 11;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  let direct = 0;
  for (let n = 0; n < 40; n++) {
    const bytes = Uint8Array.from({ length: n }, () => rnd(256));
    const padded = btoa(String.fromCharCode(...bytes));
    const bare = padded.replace(/=+$/, "");
    // Padding kept or dropped, bits set past the last byte, a lone digit, misplaced padding, a space, a bad digit.
    const tail = bare.length % 4 === 0 ? "" : bare.slice(-1);
    const dirty = tail === "" ? bare : bare.slice(0, -1) + (tail === "A" ? "B" : "A");
    for (const b64 of [padded, bare, dirty, bare + "A", bare + "=", padded + "=", " " + padded, bare + "*"]) {
      const line = `{"query":"m/s","row":{"time_":"1","b":{"base64":"${b64}"}}}`;
      const slab = testSlab();
      const fast = parseCaptureLineFast(line, "n", slab, base64ToBytes);
      deepEqual(plain(parseCaptureLine(line, "n")), plain(parseCaptureLineJson(line, "n")), line);
      if (fast !== undefined) deepEqual(plain(fast), plain(parseCaptureLineJson(line, "n")), line);
      // The usual digits are decoded into the reader's slab, not made text for base64ToBytes (its own slab).
      const cell = fast?.columns["b"];
      if (cell instanceof Uint8Array && cell.buffer === slab.reserve(0).buffer) direct++;
      else ok(b64 !== padded && b64 !== bare && b64 !== dirty, `decoded from bytes: ${line}`);
    }
  }
  ok(direct > 80, `read directly: ${direct}`);
});

Deno.test("direct capture line reader: a kernel's cell is copied to the slab without a view of its own, and whole", () => {
  // The cell's bytes go from the kernel's output through a view of a size class: every length around the classes'
  // bounds reads as JSON.parse reads it, and the bytes copied past a cell do not reach the cells before it.
  const lengths = [
    47,
    48,
    63,
    64,
    65,
    127,
    128,
    129,
    511,
    512,
    513,
    4095,
    4096,
    4097,
    OUT_ROOM - 1,
    OUT_ROOM,
  ];
  const lines = lengths.map((n, i) =>
    `{"query":"m/s","row":{"time_":"${i + 1}","a":"${"a".repeat(n)}","b":"${
      String.fromCharCode(98 + (i % 20)).repeat(n)
    }"}}`
  );
  const bytes = enc.encode(lines.join("\n") + "\n");
  const kernelBytes = cellKernelBuffer(bytes.length + 64);
  kernelBytes.set(bytes);
  const slab = testSlab();
  const rows: Row[] = [];
  for (let at = 0; at < bytes.length;) {
    const row = readCaptureLine(kernelBytes, at, bytes.length, true, "n", slab, base64ToBytes);
    ok(row !== undefined);
    rows.push(row);
    at = lineEnd() + 1;
  }
  deepEqual(rows, lines.map((l) => parseCaptureLineJson(l, "n")));
  // One view per cell read (the cell itself): a view of exactly the cell's bytes to copy it was one more per cell.
  const line = enc.encode(`{"query":"m/s","row":{"time_":"1","body":"${"x".repeat(300)}"}}`);
  kernelBytes.set(line);
  // Read once first: a key seen for the first time is made text through a view.
  ok(readCaptureLine(kernelBytes, 0, line.length, true, "n", slab, base64ToBytes) !== undefined);
  const subarray = Uint8Array.prototype.subarray;
  let views = 0;
  Uint8Array.prototype.subarray = function (this: Uint8Array, start?: number, end?: number) {
    views++;
    return subarray.call(this, start, end);
  } as typeof subarray;
  try {
    ok(readCaptureLine(kernelBytes, 0, line.length, true, "n", slab, base64ToBytes) !== undefined);
  } finally {
    Uint8Array.prototype.subarray = subarray;
  }
  equal(views, 1);
});
