/**
 * A measurement name longer than the signature wire format carries (40 bytes) was accepted by the config, and then
 * nothing of that measurement was ever measured, silently: each signature was built with the name cut to a prefix
 * and a hash, which names no measurement a node has, so the registry passed every one over (`analyze` on the demo
 * captures renamed so: 0 signatures, 0 matches, "the source audio decoded but gave no onset"), and the JetStream
 * bus refused each as a subject with a `~`.
 */
import { equal, match } from "node:assert/strict";
import { MEASUREMENT_NAME_MAX } from "../config/schema.ts";
import { parseConfigText } from "../config/load.ts";
import {
  buildSignature,
  decodeSignature,
  encodeSignature,
  initSignatureHasher,
  NAME_CAPS,
} from "../audio/fingerprint/signature.ts";
import { signatureSubject } from "../bus/subjects.ts";
import { configErrorOf } from "./support/config_errors.ts";

const configWith = (name: string) =>
  [
    "node: n1",
    "measurements:",
    `  - name: ${name}`,
    "    signature_rules:",
    "      stream_filter: |",
    "        df = px.DataFrame(table='http_events', start_time='-30s')",
    "",
  ].join("\n");

Deno.test("config: a measurement name longer than signatures carry is an error at its position", () => {
  equal(MEASUREMENT_NAME_MAX, NAME_CAPS.measurement);
  const long = "call_audio_of_the_customer_support_voice_line_x";
  const e = configErrorOf(configWith(long));
  equal(e.issues.length, 1, e.format());
  match(
    e.format(),
    /^c\.yaml:3:11: measurements\[0\]\.name: expected a measurement name of at most 40 characters/,
  );
  const longest = "m".repeat(MEASUREMENT_NAME_MAX);
  equal(parseConfigText(configWith(longest), "c.yaml", {}).config.measurements[0]!.name, longest);
});

Deno.test("signature: a measurement name at the limit crosses the wire as it is (the registry finds it)", async () => {
  await initSignatureHasher();
  const name = "m".repeat(MEASUREMENT_NAME_MAX);
  const sig = buildSignature({
    measurement: name,
    node: "n1",
    pod: "ns/p",
    stream: "s",
    timeNs: 1_700_000_000_000_000_000n,
    offsetMs: 1,
    fingerprint: new Uint32Array(128).fill(7),
    ids: {},
  });
  equal(sig.measurement, name);
  equal(decodeSignature(encodeSignature(sig)).measurement, name);
  equal(signatureSubject(sig.measurement), `fsmpx.sig.${name}`);
});
