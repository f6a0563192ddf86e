import { deepEqual, equal } from "node:assert/strict";
import { detectPixieMarker, PayloadEnvelope } from "../audio/decode/payload.ts";
import { cellHash, checkKeySpec, renderCell, StreamKeyer, streamKeyOf } from "../audio/decode/stream_key.ts";

const enc = new TextEncoder();

const columns = {
  pod: enc.encode("voice/telephony-0"),
  remote_addr: "10.0.0.5",
  remote_port: 40000n,
  trace_role: 2,
  encrypted: false,
};

Deno.test("stream key: columns and envelope fields, joined with |", () => {
  const env = new PayloadEnvelope(enc.encode('{"streamSid":"MZ123","start":{"callSid":"CA9"},"n":5}'));
  equal(
    streamKeyOf(columns, env, ["pod", "remote_addr", "remote_port", "$.streamSid"]),
    "voice/telephony-0|10.0.0.5|40000|MZ123",
  );
  equal(streamKeyOf(columns, env, ["$.start.callSid", "$.n", "trace_role", "encrypted"]), "CA9|5|2|false");
  // The key is read by scanning; no full parse is left behind.
  equal(env.parsed, false);
});

Deno.test("stream key: missing columns and fields render empty", () => {
  const env = enc.encode('{"a":null}');
  equal(streamKeyOf(columns, env, ["nope", "$.a", "$.b", "pod"]), "|||voice/telephony-0");
  equal(streamKeyOf(columns, enc.encode("not json"), ["pod", "$.streamSid"]), "voice/telephony-0|");
  equal(streamKeyOf(columns, undefined, ["$.streamSid"]), "");
});

Deno.test("stream key: separators inside values are escaped so parts cannot collide", () => {
  const a = streamKeyOf({ x: "a|b", y: "c" }, undefined, ["x", "y"]);
  const b = streamKeyOf({ x: "a", y: "b|c" }, undefined, ["x", "y"]);
  equal(a, "a\\|b|c");
  equal(b, "a|b\\|c");
  equal(streamKeyOf({ x: "a\\" }, undefined, ["x"]), "a\\\\");
});

Deno.test("stream key: object-valued fields render as JSON", () => {
  equal(streamKeyOf({}, enc.encode('{"o":{"k":[1,2]}}'), ["$.o"]), '{"k":[1,2]}');
});

Deno.test("renderCell: bytes as UTF-8, numbers in decimal", () => {
  equal(renderCell(enc.encode("h\u00e9")), "h\u00e9");
  equal(renderCell(12345678901234567890n), "12345678901234567890");
  equal(renderCell(1.5), "1.5");
  equal(renderCell(undefined), "");
});

Deno.test("StreamKeyer: a marker message joins the last stream with the same columns", () => {
  const keyer = new StreamKeyer(["pod", "$.streamSid"]);
  const good = enc.encode('{"streamSid":"MZ1","media":{"payload":"AAAA"}}');
  equal(keyer.keyOf(columns, good), "voice/telephony-0|MZ1");
  const cut = enc.encode('{"media":{"payload":"AAAA... [TRUNCATED]');
  equal(keyer.keyOf(columns, cut), "voice/telephony-0|MZ1");
  equal(keyer.keyOf(columns, new PayloadEnvelope(enc.encode("<removed: binary>"))), "voice/telephony-0|MZ1");
  // Another pod never saw a good message: its marker keeps the empty field.
  const other = { ...columns, pod: enc.encode("voice/other") };
  equal(keyer.keyOf(other, cut), "voice/other|");
  // Non-marker messages are keyed as they are, even with the field missing.
  equal(keyer.keyOf(columns, enc.encode('{"event":"start"}')), "voice/telephony-0|");
  equal(keyer.keyOf(columns, cut), "voice/telephony-0|");
});

Deno.test("StreamKeyer: without envelope fields it is streamKeyOf", () => {
  const keyer = new StreamKeyer(["pod", "remote_port"]);
  equal(keyer.keyOf(columns), "voice/telephony-0|40000");
});

Deno.test("StreamKeyer: remembered column combinations are bounded", () => {
  const keyer = new StreamKeyer(["pod", "$.s"], 2);
  const msg = (s: string) => enc.encode(`{"s":"${s}"}`);
  const cut = enc.encode("x... [TRUNCATED]");
  keyer.keyOf({ pod: "a" }, msg("1"));
  keyer.keyOf({ pod: "b" }, msg("2"));
  keyer.keyOf({ pod: "c" }, msg("3"));
  equal(keyer.keyOf({ pod: "a" }, cut), "a|");
  equal(keyer.keyOf({ pod: "c" }, cut), "c|3");
});

Deno.test("StreamKeyer: a combination forgotten right after it was made is not kept for the next marker", () => {
  // With room for one combination, the second forgets both; its marker then has no stream to join.
  const keyer = new StreamKeyer(["pod", "$.s"], 1);
  const cut = enc.encode("x... [TRUNCATED]");
  equal(keyer.keyOf({ pod: enc.encode("a") }, enc.encode('{"s":"1"}')), "a|1");
  equal(keyer.keyOf({ pod: enc.encode("b") }, enc.encode('{"s":"2"}')), "b|2");
  equal(keyer.keyOf({ pod: enc.encode("b") }, cut), "b|");
  equal(keyer.keyOf({ pod: enc.encode("b") }, enc.encode('{"s":"3"}')), "b|3");
  equal(keyer.keyOf({ pod: enc.encode("b") }, cut), "b|3");
});

Deno.test("checkKeySpec flags empty entries and bare $", () => {
  deepEqual(checkKeySpec(["pod", "$.a"]), []);
  equal(checkKeySpec(["", "$.", "$"]).length, 3);
});

Deno.test("StreamKeyer: remembered column keys are the keys streamKeyOf renders, whatever the cells", () => {
  let seed = 5;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const values: (() => unknown)[] = [
    () => enc.encode(`voice/p-${rnd(40)}`),
    () => `voice/p-${rnd(40)}`, // the same text as bytes and as a string: one key
    () => rnd(3),
    () => BigInt(rnd(3)),
    () => (rnd(2) === 0 ? NaN : -0),
    () => rnd(2) === 0,
    () => undefined,
    () => enc.encode(`a|b\\${rnd(3)}`),
    () => new Uint8Array([0xff, rnd(256)]), // not UTF-8
  ];
  const spec = ["pod", "remote_addr", "remote_port"];
  const keyer = new StreamKeyer(spec);
  for (let i = 0; i < 20_000; i++) {
    const cols: Record<string, bigint | number | boolean | string | Uint8Array> = {};
    for (const name of spec) {
      const v = values[rnd(values.length)]!();
      if (v !== undefined) cols[name] = v as bigint | number | boolean | string | Uint8Array;
    }
    equal(keyer.keyOf(cols), streamKeyOf(cols, undefined, spec));
    // A row's bytes may be a view of a buffer that is written again later: the keyer keeps its own copy.
    const pod = cols["pod"];
    if (pod instanceof Uint8Array && pod.length > 0) pod[0] = 0x7a;
  }
});

/** The keyer as it was (two key strings and a Map update per message), the reference for the one that reuses keys. */
class ReferenceKeyer {
  readonly #last = new Map<string, string>();
  constructor(readonly spec: string[]) {}
  keyOf(columns: Record<string, string | Uint8Array>, bytes: Uint8Array): string {
    const env = new PayloadEnvelope(bytes);
    const colSig = streamKeyOf(columns, undefined, this.spec.filter((e) => !e.startsWith("$")));
    const marker = detectPixieMarker(bytes) !== undefined;
    if (marker && this.#last.has(colSig)) return this.#last.get(colSig)!;
    const key = streamKeyOf(columns, env, this.spec);
    if (!marker) this.#last.set(colSig, key);
    return key;
  }
}

Deno.test("StreamKeyer: keys with envelope fields are the reference's, markers and changed fields included", () => {
  let seed = 11;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const bodies = [
    () => `{"streamSid":"MZ${rnd(500)}","media":{"track":"${rnd(2) ? "in" : "out"}","payload":"AAAA"}}`,
    () => `{"streamSid":"MZ${rnd(500)}","media":{"payload":"AAAA"}}`,
    () => `{"event":"start","streamSid":{"a":${rnd(3)}}}`,
    () => `{"media":{"payload":"AAAA... [TRUNCATED]`,
    () => "<removed: binary>",
  ];
  for (const spec of [["pod", "$.streamSid", "remote_port", "$.media.track"], ["pod", "$.streamSid"]]) {
    const keyer = new StreamKeyer(spec);
    const ref = new ReferenceKeyer(spec);
    for (let i = 0; i < 20_000; i++) {
      // Few pods, many streams each (calls told apart by their streamSid only).
      const cols = { pod: enc.encode(`voice/p-${rnd(3)}`), remote_port: `${rnd(3)}` };
      const body = enc.encode(bodies[rnd(bodies.length)]!());
      equal(keyer.keyOf(cols, body), ref.keyOf(cols, body));
    }
  }
});

Deno.test("StreamKeyer: keys stay right when the kept cells fill their store and it starts again", () => {
  const spec = ["pod", "remote_port"];
  const keyer = new StreamKeyer(spec);
  // 3,000 combinations of 300-byte pods (~900 KB of cells, several times the store), each seen twice, and pods
  // too long to keep.
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 3000; i++) {
      const cols = { pod: enc.encode(`p${i}-`.padEnd(300, "x")), remote_port: i % 7 };
      equal(keyer.keyOf(cols), streamKeyOf(cols, undefined, spec));
    }
  }
  for (const n of [65535, 65536, 70000]) {
    const cols = { pod: new Uint8Array(n).fill(0x61), remote_port: 1 };
    equal(keyer.keyOf(cols), streamKeyOf(cols, undefined, spec));
    cols.pod[n - 1] = 0x62;
    equal(keyer.keyOf(cols), streamKeyOf(cols, undefined, spec));
  }
});

Deno.test("StreamKeyer: a stream's key is found by its fields' bytes, nothing decoded, the same as streamKeyOf", () => {
  const pods = [enc.encode("voice/telephony-0"), enc.encode("voice/relay-0")];
  const long = "L".repeat(300);
  // Spellings of one value (an escape, a number written two ways) are the same stream; a long value, an object,
  // a missing field and a separator inside a value are keyed too.
  const bodies = [
    ...Array.from({ length: 300 }, (_, i) => `{"streamSid":"MZ${i}","media":{"payload":"AQ=="}}`),
    '{"streamSid":"MZ\\u0031","media":{"payload":"AQ=="}}',
    '{"streamSid":7,"media":{"payload":"AQ=="}}',
    '{"streamSid":7.0,"media":{"payload":"AQ=="}}',
    '{"streamSid":{"a":[1,2]},"media":{"payload":"AQ=="}}',
    '{"streamSid":"a|b\\\\c"}',
    `{"streamSid":"${long}"}`,
    '{"media":{"payload":"AQ=="}}',
    '{"streamSid":"MZ5","streamSid":"MZ6"}',
  ].map((b) => enc.encode(b));
  for (const spec of [["pod", "$.streamSid"], ["$.streamSid", "pod", "$.media.payload"]]) {
    const keyer = new StreamKeyer(spec);
    const want = (pod: Uint8Array, body: Uint8Array) => streamKeyOf({ pod }, new PayloadEnvelope(body), spec);
    for (const pod of pods) for (const body of bodies) equal(keyer.keyOf({ pod }, body), want(pod, body));
    // Again: every key is known by now, and read without decoding a field to text (but the long one).
    const decode = TextDecoder.prototype.decode;
    let decoded = 0;
    TextDecoder.prototype.decode = function (this: TextDecoder, ...a: Parameters<TextDecoder["decode"]>) {
      decoded++;
      return decode.apply(this, a);
    };
    const keys: string[] = [];
    try {
      for (const pod of pods) for (const body of bodies) keys.push(keyer.keyOf({ pod }, body));
    } finally {
      TextDecoder.prototype.decode = decode;
    }
    deepEqual(keys, pods.flatMap((pod) => bodies.map((body) => want(pod, body))));
    equal(decoded, 2, "the long value, once per pod");
  }
});

Deno.test("the key cache's slot hash tells bigint cells apart (Pixie's INT64 remote_port)", () => {
  const hashes = new Set<number>();
  for (let port = 20000n; port < 21000n; port++) hashes.add(cellHash(port, 0x811c9dc5));
  equal(hashes.size, 1000, "each port its own hash: the rows of 1,000 connections do not share two slots");
  equal(cellHash(1n << 40n, 7), cellHash(1n << 40n, 7), "equal cells hash equal");
});
