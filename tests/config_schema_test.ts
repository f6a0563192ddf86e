import { deepEqual, equal, ok } from "node:assert/strict";
import { parse } from "yaml";
import { configJsonSchema, type JsonSchema, writeConfigJsonSchema } from "../config/json_schema.ts";
import { parseConfigText } from "../config/load.ts";

const EXAMPLE = new URL("../example-config.yaml", import.meta.url);
const FIXTURES = new URL("./fixtures_config/", import.meta.url);

/**
 * A small JSON Schema (2020-12) checker for the keywords the generated schema uses; any other keyword fails
 * the test, so the checker cannot silently skip part of the schema.
 */
function validate(schema: JsonSchema, value: unknown, root: JsonSchema, at = "$"): string[] {
  const known = new Set([
    "$schema",
    "$id",
    "$defs",
    "$ref",
    "title",
    "description",
    "default",
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "enum",
    "const",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "anyOf",
    "propertyNames",
    "minLength",
    "maxLength",
  ]);
  for (const k of Object.keys(schema)) if (!known.has(k)) return [`${at}: unsupported keyword ${k}`];
  if (typeof schema.$ref === "string") {
    const name = schema.$ref.replace("#/$defs/", "");
    return validate((root.$defs as Record<string, JsonSchema>)[name]!, value, root, at);
  }
  if (Array.isArray(schema.anyOf)) {
    const branches = (schema.anyOf as JsonSchema[]).map((s) => validate(s, value, root, at));
    return branches.some((b) => b.length === 0)
      ? []
      : [`${at}: no anyOf branch matched (${branches.flat()[0]})`];
  }
  const errors: string[] = [];
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    const actual = Array.isArray(value)
      ? "array"
      : value === null
      ? "null"
      : Number.isInteger(value)
      ? "integer"
      : typeof value;
    const fits = types.includes(actual) || (actual === "integer" && types.includes("number"));
    if (!fits) return [`${at}: expected ${types.join("|")}, got ${actual}`];
  }
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) errors.push(`${at}: not in enum`);
  if (schema.const !== undefined && schema.const !== value) errors.push(`${at}: not the const`);
  if (
    typeof schema.pattern === "string" && typeof value === "string" && !new RegExp(schema.pattern).test(value)
  ) {
    errors.push(`${at}: does not match ${schema.pattern}`);
  }
  if (typeof schema.minLength === "number" && typeof value === "string" && value.length < schema.minLength) {
    errors.push(`${at}: shorter than ${schema.minLength}`);
  }
  if (typeof schema.maxLength === "number" && typeof value === "string" && value.length > schema.maxLength) {
    errors.push(`${at}: longer than ${schema.maxLength}`);
  }
  if (typeof value === "number") {
    if (typeof schema.minimum === "number" && value < schema.minimum) errors.push(`${at}: below minimum`);
    if (typeof schema.maximum === "number" && value > schema.maximum) errors.push(`${at}: above maximum`);
    if (typeof schema.exclusiveMinimum === "number" && value <= schema.exclusiveMinimum) {
      errors.push(`${at}: <= min`);
    }
    if (typeof schema.exclusiveMaximum === "number" && value >= schema.exclusiveMaximum) {
      errors.push(`${at}: >= max`);
    }
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === "number" && value.length < schema.minItems) {
      errors.push(`${at}: too few items`);
    }
    if (schema.items) {
      value.forEach((v, i) => errors.push(...validate(schema.items as JsonSchema, v, root, `${at}[${i}]`)));
    }
  } else if (value !== null && typeof value === "object") {
    const props = (schema.properties ?? {}) as Record<string, JsonSchema>;
    for (const r of (schema.required ?? []) as string[]) {
      if (!(r in value)) errors.push(`${at}: missing ${r}`);
    }
    for (const [k, v] of Object.entries(value)) {
      if (schema.propertyNames) {
        errors.push(...validate(schema.propertyNames as JsonSchema, k, root, `${at}{${k}}`));
      }
      if (props[k]) errors.push(...validate(props[k], v, root, `${at}.${k}`));
      else if (typeof schema.additionalProperties === "object") {
        errors.push(...validate(schema.additionalProperties as JsonSchema, v, root, `${at}.${k}`));
      } else if (schema.additionalProperties === false) errors.push(`${at}: unknown key ${k}`);
    }
  }
  return errors;
}

/** Every key path the schema describes, with [] for list items. */
function schemaPaths(schema: JsonSchema, root: JsonSchema, prefix = ""): string[] {
  const out: string[] = [];
  const branches = Array.isArray(schema.anyOf) ? schema.anyOf as JsonSchema[] : [schema];
  for (const s of branches) {
    if (s.items) out.push(...schemaPaths(s.items as JsonSchema, root, `${prefix}[]`));
    for (const [k, v] of Object.entries((s.properties ?? {}) as Record<string, JsonSchema>)) {
      out.push(`${prefix}.${k}`, ...schemaPaths(v, root, `${prefix}.${k}`));
    }
  }
  return out;
}

/** Every key path present in a document, with [] for list items. */
function dataPaths(value: unknown, prefix = ""): string[] {
  if (Array.isArray(value)) return value.flatMap((v) => dataPaths(v, `${prefix}[]`));
  if (value === null || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([k, v]) => [`${prefix}.${k}`, ...dataPaths(v, `${prefix}.${k}`)]);
}

Deno.test("JSON schema: an object describing every top-level key, closed to unknown keys", () => {
  const schema = configJsonSchema();
  equal(schema.$schema, "https://json-schema.org/draft/2020-12/schema");
  equal(schema.type, "object");
  equal(schema.additionalProperties, false);
  deepEqual(Object.keys(schema.properties as object), [
    "log_level",
    "node",
    "pixie",
    "nats",
    "metrics",
    "otlp",
    "engine",
    "packets",
    "measurements",
  ]);
  deepEqual(schema.required, ["measurements"]);
  // It must survive a JSON round trip unchanged (no functions, no cycles).
  deepEqual(JSON.parse(JSON.stringify(schema)), schema);
});

Deno.test("JSON schema accepts example-config.yaml, the quickstart and the contract example as editors see them", async () => {
  const schema = configJsonSchema();
  for (const url of [EXAMPLE, new URL("quickstart.yaml", FIXTURES), new URL("contract.yaml", FIXTURES)]) {
    const doc = parse(await Deno.readTextFile(url));
    deepEqual(validate(schema, doc, schema), [], url.pathname);
  }
});

Deno.test("JSON schema rejects what the loader rejects: unknown keys, wrong enums, out-of-range numbers", () => {
  const schema = configJsonSchema();
  const base = {
    measurements: [{ name: "m", signature_rules: { stream_filter: "df = px.DataFrame(table='x')" } }],
  };
  deepEqual(validate(schema, base, schema), []);
  deepEqual(validate(schema, { ...base, colour: 1 }, schema), ["$: unknown key colour"]);
  ok(validate(schema, { ...base, log_level: "verbose" }, schema).length > 0);
  ok(validate(schema, { ...base, nats: { replicas: 9 } }, schema).length > 0);
  ok(validate(schema, {}, schema).includes("$: missing measurements"));
  // A measurement name longer than signatures carry (tests/config_s30_measurement_name_test.ts).
  const longName = { measurements: [{ ...base.measurements[0]!, name: "m".repeat(41) }] };
  ok(validate(schema, longName, schema).length > 0);
  // ${VAR} expressions are accepted where a number, boolean or enum is expected.
  deepEqual(
    validate(schema, { ...base, nats: { replicas: "${NATS_REPLICAS:-3}" }, log_level: "${LVL}" }, schema),
    [],
  );
  ok(validate(schema, { ...base, nats: { replicas: "three" } }, schema).length > 0);
});

Deno.test("JSON schema takes the codec names the loader takes: any case, telephony aliases", () => {
  // The schema listed mulaw|alaw|... only: editors flagged `codec: PCMU` or `codec: G711A`, which load.
  const schema = configJsonSchema();
  const withCodec = (codec: string) => ({
    measurements: [{
      name: "m",
      signature_rules: { stream_filter: "df = px.DataFrame(table='http_events')", audio: { codec } },
    }],
  });
  for (const codec of ["mulaw", "PCMU", "Mulaw", "g711u", "G711-ALAW", "pcma", "PCM16LE", "float32le"]) {
    deepEqual(validate(schema, withCodec(codec), schema), [], codec);
    parseConfigText(JSON.stringify({ node: "n", ...withCodec(codec) }), "c.yaml", {});
  }
  for (const codec of ["ulaw", "pcm16", "xmulaw", "mulaws"]) {
    ok(validate(schema, withCodec(codec), schema).length > 0, codec);
  }
});

Deno.test("example-config.yaml shows every option the schema knows", async () => {
  const schema = configJsonSchema();
  // A match rule's columns and audio are the source's shape, documented once under signature_rules; so are its
  // packets, whose http_bodies the example shows on an http stage (its source is RTP).
  const shared = (p: string) =>
    p.replace(".match_rules[].columns", ".signature_rules.columns").replace(
      ".match_rules[].audio",
      ".signature_rules.audio",
    ).replace(".match_rules[].packets.http_bodies", ".signature_rules.packets.http_bodies");
  const shown = new Set(dataPaths(parse(await Deno.readTextFile(EXAMPLE))).map(shared));
  const missing = schemaPaths(schema, schema).map(shared).filter((p) => !shown.has(p));
  deepEqual(missing, []);
});

Deno.test("every option in example-config.yaml has a comment", async () => {
  const lines = (await Deno.readTextFile(EXAMPLE)).split("\n");
  const undocumented: string[] = [];
  lines.forEach((line, i) => {
    const key = /^\s*(?:- )?([a-z_]+):/.exec(line)?.[1];
    if (!key) return;
    const commentAbove = /^\s*(#|- #)/.test(lines[i - 1] ?? "");
    const trailing = line.includes(" # ");
    if (!commentAbove && !trailing) undocumented.push(`${i + 1}: ${key}`);
  });
  deepEqual(undocumented, []);
});

Deno.test("writeConfigJsonSchema writes the schema as JSON", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fsmpx_schema_" });
  try {
    const path = `${dir}/config.schema.json`;
    await writeConfigJsonSchema(path);
    deepEqual(JSON.parse(await Deno.readTextFile(path)), configJsonSchema());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
