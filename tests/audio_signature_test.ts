import { deepStrictEqual, notStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { ENV_VALUES, packEnvelope, unpackEnvelope } from "../audio/align/level_envelope.ts";
import { WAVE_SIGN_BYTES } from "../audio/align/wave_signs.ts";
import {
  buildSignature,
  capName,
  decodeSignature,
  encodeSignature,
  initSignatureHasher,
  NAME_CAPS,
  SIGNATURE_MAX_FRAMES,
  SignatureDecodeError,
  type SignatureFields,
  signatureOf,
} from "../audio/fingerprint/signature.ts";
import type { Signature } from "../audio/types.ts";
import { signatureRecord } from "../report/records.ts";

await initSignatureHasher();

function fields(over: Partial<SignatureFields> = {}): SignatureFields {
  const fingerprint = new Uint32Array(SIGNATURE_MAX_FRAMES).map((_, i) => Math.imul(i + 1, 0x9e3779b1) >>> 0);
  const mask = new Uint8Array(16);
  mask[3] = 0b1010_0001;
  return {
    measurement: "voice-latency",
    node: "node-a",
    pod: "voice/gateway-0",
    stream: "MZ0123456789abcdef",
    timeNs: 1_763_900_000_123_456_789n,
    offsetMs: 12.625,
    fingerprint,
    mask,
    levelEnvelope: Uint8Array.from({ length: ENV_VALUES }, (_, i) => (i * 5) % 8),
    ids: { interval_id: "1b4e28ba-2fa1-11d2-883f-0016d3cca427" },
    ...over,
  };
}

Deno.test("a signature survives the wire unchanged", () => {
  const sig = buildSignature(fields());
  ok(/^[0-9a-f]{16}$/.test(sig.id));
  const bytes = encodeSignature(sig);
  ok(bytes.length < 1024, `${bytes.length} bytes`);
  deepStrictEqual(decodeSignature(bytes), sig);
  // Without mask and envelope too.
  const bare = buildSignature(fields({ mask: undefined, levelEnvelope: undefined, ids: {} }));
  deepStrictEqual(decodeSignature(encodeSignature(bare)), bare);
  strictEqual(encodeSignature(bare).length, 30 + 4 * 128 + 4 + 13 + 6 + 15 + 18 + 1);
});

Deno.test("worst case: longest names, two UUID ids with long keys and extra ids still encode under 1 KB", () => {
  const long = "x".repeat(300);
  const uuid = "123e4567-e89b-12d3-a456-426614174000";
  const sig = buildSignature(fields({
    measurement: long,
    node: "ñ".repeat(200),
    pod: `namespace-${long}/pod-${long}`,
    stream: `🎧${long}`,
    ids: {
      interval_id_0123456789abcdef: uuid,
      call_id_0123456789abcdefghij: uuid,
      too_long_value: "v".repeat(65),
      extra: "z".repeat(64),
      more: "y",
    },
  }));
  const bytes = encodeSignature(sig);
  ok(bytes.length <= 1023, `${bytes.length} bytes`);
  const back = decodeSignature(bytes);
  deepStrictEqual(back, sig);
  // The first two ids (UUIDs, 28-character keys) always fit; a value over 64 bytes is dropped whole, never cut;
  // what no longer fits the budget is dropped, what still does is kept.
  deepStrictEqual(back.ids, { interval_id_0123456789abcdef: uuid, call_id_0123456789abcdefghij: uuid });
  ok(new TextEncoder().encode(back.source.pod).length <= NAME_CAPS.pod);
});

Deno.test("capName keeps short names, cuts long ones on a character boundary with a hash suffix", () => {
  strictEqual(capName("node-a", 48), "node-a");
  const a = capName("é".repeat(100), 48), b = capName("é".repeat(99) + "e", 48);
  ok(new TextEncoder().encode(a).length <= 48);
  ok(/~[0-9a-f]{8}$/.test(a));
  notStrictEqual(a, b, "distinct long names stay distinct");
});

Deno.test("the id depends on the instant and the block, not on the ids", () => {
  const a = buildSignature(fields());
  strictEqual(buildSignature(fields({ ids: {} })).id, a.id);
  notStrictEqual(buildSignature(fields({ offsetMs: 12.75 })).id, a.id);
  notStrictEqual(buildSignature(fields({ timeNs: 1n })).id, a.id);
  const fp = fields().fingerprint.slice();
  fp[100] = fp[100]! ^ 1;
  notStrictEqual(buildSignature(fields({ fingerprint: fp })).id, a.id);
});

Deno.test("bad bytes are rejected with a clear SignatureDecodeError", () => {
  const good = encodeSignature(buildSignature(fields()));
  const bad = (mutate: (b: Uint8Array) => Uint8Array, msg: RegExp) =>
    throws(
      () => decodeSignature(mutate(good.slice())),
      (e: unknown) => e instanceof SignatureDecodeError && msg.test(String(e)),
    );
  bad((b) => b.subarray(0, 20), /too short/);
  bad((b) => b.subarray(0, b.length - 3), /truncated/);
  bad((b) => ((b[0] = 0), b), /magic/);
  bad((b) => ((b[2] = 9), b), /version/);
  bad((b) => ((b[3] = 0x80), b), /flags/);
  bad((b) => Uint8Array.from([...b, 0]), /trailing/);
  bad((b) => ((b[28] = 0), (b[29] = 0), b), /frames/);
  // The measurement's bytes start after header, fingerprint, mask and envelope; corrupt them to invalid UTF-8.
  bad((b) => ((b[30 + 512 + 16 + 96 + 1] = 0xff), b), /UTF-8/);
  throws(() => decodeSignature(new Uint8Array(2000)), SignatureDecodeError);
});

Deno.test("envelope levels pack to 96 bytes and back", () => {
  const levels = Uint8Array.from({ length: ENV_VALUES }, (_, i) => (i * 3 + (i >> 4)) % 8);
  const packed = packEnvelope(levels);
  strictEqual(packed.length, 96);
  deepStrictEqual(unpackEnvelope(packed), levels);
});

Deno.test("buildSignature refuses empty or oversized blocks and bad envelopes", () => {
  throws(() => buildSignature(fields({ fingerprint: new Uint32Array(0) })), RangeError);
  throws(() => buildSignature(fields({ fingerprint: new Uint32Array(129) })), RangeError);
  throws(() => buildSignature(fields({ levelEnvelope: new Uint8Array(10) })), RangeError);
});

function waveSigns(offset = -96): { offset: number; bits: Uint8Array } {
  return { offset, bits: Uint8Array.from({ length: WAVE_SIGN_BYTES }, (_, i) => (i * 37) & 0xff) };
}

Deno.test("waveform signs: an optional block after the envelope, carried only where it fits under 1 KB", () => {
  const sig = buildSignature(fields({ waveSigns: waveSigns() }));
  const bytes = encodeSignature(sig);
  strictEqual(bytes[3], 7, "flags: mask, envelope, waveform signs");
  strictEqual(bytes.length, encodeSignature(buildSignature(fields())).length + 2 + WAVE_SIGN_BYTES);
  deepStrictEqual(decodeSignature(bytes), sig);
  // A signature without them (every one before) decodes as it did.
  const old = buildSignature(fields());
  deepStrictEqual(decodeSignature(encodeSignature(old)), old);
  strictEqual(encodeSignature(old)[3], 3);
  // Names at their caps and a full ids budget: the signs are left out, the names and ids are not.
  const long = "x".repeat(300);
  const uuid = "123e4567-e89b-12d3-a456-426614174000";
  const full = buildSignature(fields({
    measurement: long,
    node: long,
    pod: long,
    stream: long,
    ids: { interval_id_0123456789abcdef: uuid, call_id_0123456789abcdefghij: uuid },
    waveSigns: waveSigns(),
  }));
  const fullBytes = encodeSignature(full);
  ok(fullBytes.length <= 1023, `${fullBytes.length} bytes`);
  const back = decodeSignature(fullBytes);
  strictEqual(back.waveSigns, undefined);
  deepStrictEqual(back.ids, full.ids);
});

Deno.test("waveform signs: bad offsets and lengths are refused on both sides", () => {
  throws(() => buildSignature(fields({ waveSigns: waveSigns(2000) })), RangeError);
  throws(() => buildSignature(fields({ waveSigns: { offset: 0, bits: new Uint8Array(8) } })), RangeError);
  const bytes = encodeSignature(buildSignature(fields({ waveSigns: waveSigns() })));
  const at = bytes.length - (2 + WAVE_SIGN_BYTES) - (1 + 13 + 1 + 6 + 1 + 15 + 1 + 18 + 1 + 2 + 11 + 36);
  strictEqual(new DataView(bytes.buffer).getInt16(at), -96);
  const bad = bytes.slice();
  new DataView(bad.buffer).setInt16(at, 30000);
  throws(() => decodeSignature(bad), SignatureDecodeError);
  throws(() => decodeSignature(bytes.slice(0, at + 10)), SignatureDecodeError);
});

Deno.test("every signature has one shape: all fields in one order, built, decoded or made, whatever it carries", () => {
  const keys = ["id", "measurement", "source", "fingerprint", "mask", "levelEnvelope", "waveSigns", "ids"];
  const tapKeys = ["node", "pod", "stream", "timeNs", "offsetMs"];
  const variants: Partial<SignatureFields>[] = [
    {},
    { waveSigns: waveSigns() },
    { mask: undefined },
    { mask: new Uint8Array(16) }, // no frame masked: no mask
    { levelEnvelope: undefined },
    { mask: undefined, levelEnvelope: undefined, ids: {} },
  ];
  for (const over of variants) {
    const sig = buildSignature(fields(over));
    for (const s of [sig, decodeSignature(encodeSignature(sig)), signatureOf({ ...sig })]) {
      deepStrictEqual(Object.keys(s), keys);
      deepStrictEqual(Object.keys(s.source), tapKeys);
    }
  }
  strictEqual(buildSignature(fields({ mask: new Uint8Array(16) })).mask, undefined);
  const made = signatureOf({
    id: "0".repeat(16),
    measurement: "m",
    source: buildSignature(fields()).source,
    fingerprint: new Uint32Array(1),
    ids: {},
  });
  deepStrictEqual(Object.keys(made), keys);
  strictEqual(made.mask, undefined);
});

Deno.test("absent parts as undefined keys: the same wire bytes and the same record JSON as without the keys", () => {
  const variants: Partial<SignatureFields>[] = [{}, { mask: undefined, levelEnvelope: undefined }, {
    waveSigns: waveSigns(),
  }];
  let compared = 0;
  for (const over of variants) {
    const sig = buildSignature(fields(over));
    // The shape signatures had before every field was present: the absent parts left out.
    const sparse = Object.fromEntries(Object.entries(sig).filter(([, v]) => v !== undefined)) as Signature;
    deepStrictEqual(encodeSignature(sig), encodeSignature(sparse));
    const rec = signatureRecord(sig, 600), sparseRec = signatureRecord(sparse, 600);
    deepStrictEqual(Object.keys(rec), Object.keys(sparseRec));
    strictEqual(JSON.stringify(rec), JSON.stringify(sparseRec));
    if (Object.keys(sparse).length < Object.keys(sig).length) compared++;
  }
  strictEqual(compared, 2, "both signatures without some part were compared with their sparse form");
});
