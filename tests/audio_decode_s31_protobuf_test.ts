/**
 * The `protobuf` envelope (audio/decode/protobuf_path.ts): audio in a bytes field of a Protocol Buffers message,
 * named by field numbers, read from the wire format without a schema.
 */
import { deepEqual, equal } from "node:assert/strict";
import { parseProtobufPath, protobufField } from "../audio/decode/protobuf_path.ts";
import { extractAudioField } from "../audio/decode/payload.ts";
import { StreamDecoder } from "../audio/decode/stream_decoder.ts";
import { checkAudioFormat } from "../audio/decode/stream_decoder.ts";
import { rawFormat } from "./support/formats.ts";
import { bytesField, varint } from "./support/protobuf_build.ts";

const te = new TextEncoder();

Deno.test("s31 protobuf path: fields by number, nested, first occurrence; other wire types stepped over", () => {
  const audio = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
  // StreamingRecognizeRequest-like: field 1 a config message (not this one), field 2 the audio.
  const msg = new Uint8Array([
    ...varint(3 * 8 + 0), // field 3 varint
    ...varint(300_000_000_000),
    ...varint(4 * 8 + 1), // field 4 fixed64
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    ...varint(5 * 8 + 5), // field 5 fixed32
    1,
    2,
    3,
    4,
    ...bytesField(1, [...bytesField(3, te.encode("call-7")), ...bytesField(9, [0x0a, 0x00])]),
    ...bytesField(2, audio),
    ...bytesField(2, [9, 9, 9]),
  ]);
  deepEqual(protobufField(msg, "2"), audio);
  deepEqual(protobufField(msg, "1.3"), te.encode("call-7"));
  deepEqual(protobufField(msg, "1.9.1"), new Uint8Array(0));
  equal(protobufField(msg, "7"), "missing_path");
  equal(protobufField(msg, "1.4"), "missing_path");
  // A length past the message's end, a truncated varint, field 0, wire types 6 and 7: malformed.
  equal(protobufField(new Uint8Array([...varint(2 * 8 + 2), 50, 1, 2]), "2"), "bad_protobuf");
  equal(protobufField(new Uint8Array([0x80, 0x80]), "2"), "bad_protobuf");
  equal(protobufField(new Uint8Array([0x02, 0x00]), "2"), "bad_protobuf");
  equal(protobufField(new Uint8Array([2 * 8 + 6]), "2"), "bad_protobuf");
  // JSON is not a message.
  equal(protobufField(te.encode('{"media":{"payload":"AAAA"}}'), "2"), "bad_protobuf");
});

Deno.test("s31 protobuf path: paths are field numbers 1..2^29-1", () => {
  deepEqual(parseProtobufPath("2"), [2]);
  deepEqual(parseProtobufPath("1.3"), [1, 3]);
  deepEqual(parseProtobufPath("536870911"), [536870911]);
  for (const bad of ["", "0", "1.", ".2", "a", "1.0", "536870912", "media.payload", " 2"]) {
    equal(parseProtobufPath(bad), undefined, bad);
  }
  const fmt = { ...rawFormat(), envelope: "protobuf" as const, path: "media.payload" };
  deepEqual(checkAudioFormat(fmt), [
    'protobuf path must be field numbers such as 2 or 1.3, not "media.payload"',
  ]);
  deepEqual(checkAudioFormat({ ...fmt, path: "2" }), []);
});

Deno.test("s31 protobuf envelope: the decoder reads μ-law from field 2 of each message; other messages are counted", () => {
  const fmt = { ...rawFormat(), envelope: "protobuf" as const, path: "2" };
  const chunk = new Uint8Array(160).fill(0x7f);
  const env = extractAudioField(new Uint8Array(bytesField(2, chunk)), fmt);
  deepEqual(env.ok ? env.data : env.reason, chunk);
  const d = new StreamDecoder(fmt, { keepTimeline: true });
  let samples = 0;
  const reasons: string[] = [];
  for (let i = 0; i < 10; i++) {
    // The first message is the recognizer's config (field 1 only).
    const body = i === 0 ? bytesField(1, bytesField(1, te.encode("en-US"))) : bytesField(2, chunk);
    const o = d.push({ timeNs: BigInt(i + 1) * 20_000_000n, payload: new Uint8Array(body) });
    if (o.kind === "audio") samples += o.ring?.length ?? o.samples.length;
    else if (o.kind === "error") reasons.push(o.reason);
  }
  equal(samples, 9 * 160);
  deepEqual(reasons, ["missing_path"]);
});

Deno.test("s31 config: envelope protobuf needs field numbers as its path, named at the key", async () => {
  const { loadConfig } = await import("../config/load.ts");
  const dir = await Deno.makeTempDir();
  try {
    const f = `${dir}/c.yaml`;
    const write = (audio: string) =>
      Deno.writeTextFile(
        f,
        `node: n\nmeasurements:\n  - name: m\n    signature_rules:\n      packets: { protocol: websocket, port: 80 }\n` +
          `      audio: ${audio}\n`,
      );
    await write("{ envelope: protobuf, path: '2', encoding: binary }");
    equal((await loadConfig(f, {})).config.measurements[0]!.signature_rules.audio.path, "2");
    for (const audio of ["{ envelope: protobuf, encoding: binary }", "{ envelope: protobuf, path: audio }"]) {
      await write(audio);
      const err = await loadConfig(f, {}).then(() => "", (e: Error) => e.message);
      equal(/c\.yaml:\d+:\d+: .*audio.*field numbers of the audio's bytes field/.test(err), true, err);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
