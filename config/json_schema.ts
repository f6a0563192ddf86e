/**
 * JSON Schema of the config file for editors (`deno task schema`). It describes what may be written, before
 * defaults; values that are not free strings also accept a `${VAR}` / `${VAR:-default}` expression, since
 * interpolation happens before validation.
 * @module
 */

import { z } from "zod";
import { CODEC_ALIASES, CODEC_SCHEMA, configSchema } from "./schema.ts";

/** A JSON Schema document (draft 2020-12). */
export type JsonSchema = Record<string, unknown>;

const INTERPOLATION = {
  type: "string",
  pattern: "\\$\\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\\}",
  description: "A ${VAR} or ${VAR:-default} expression, resolved from the environment at load time.",
};
const INTERPOLATION_REF = { $ref: "#/$defs/interpolation" };

/** The config file's JSON Schema (draft 2020-12). */
export function configJsonSchema(): JsonSchema {
  const schema = z.toJSONSchema(configSchema, {
    io: "input",
    unrepresentable: "any",
    target: "draft-2020-12",
    override: (ctx) => {
      // The loader takes a codec in any case and by its telephony names (PCMU, g711a): the plain enum of
      // canonical names made editors flag such configs as wrong.
      if (ctx.zodSchema === CODEC_SCHEMA) {
        delete ctx.jsonSchema.enum;
        ctx.jsonSchema.pattern = anyCasePattern([...CODEC_SCHEMA.options, ...Object.keys(CODEC_ALIASES)]);
      }
    },
  });
  const out = allowInterpolation(schema) as JsonSchema;
  return {
    $schema: out.$schema,
    title: "fsm-px configuration",
    description: "Audio latency measurement for voice pipelines: config.yaml. See example-config.yaml.",
    ...out,
    $defs: { ...(out.$defs as JsonSchema | undefined), interpolation: INTERPOLATION },
  };
}

/** A pattern matching exactly `words`, in any case (JSON Schema patterns take no flags). */
function anyCasePattern(words: readonly string[]): string {
  const anyCase = (w: string) =>
    [...w].map((c) =>
      c.toLowerCase() !== c.toUpperCase()
        ? `[${c.toLowerCase()}${c.toUpperCase()}]`
        : c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
    ).join("");
  return `^(?:${words.map(anyCase).join("|")})$`;
}

/** Writes {@link configJsonSchema} as pretty JSON to `path` (for `deno task schema`). */
export async function writeConfigJsonSchema(path: string): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify(configJsonSchema(), null, 2) + "\n");
}

/** Wraps every constrained leaf (non-string, enum or pattern) so an interpolation expression also validates. */
function allowInterpolation(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(allowInterpolation);
  if (node === null || typeof node !== "object") return node;
  const s: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) s[k] = allowInterpolation(v);
  const types = Array.isArray(s.type) ? s.type : [s.type];
  const constrainedLeaf = types.some((t) => t === "number" || t === "integer" || t === "boolean") ||
    (types.includes("string") && (s.enum !== undefined || s.pattern !== undefined || s.const !== undefined));
  if (!constrainedLeaf || s.anyOf !== undefined) return s;
  const { description, default: dflt, ...rest } = s;
  const wrapped: Record<string, unknown> = { anyOf: [rest, INTERPOLATION_REF] };
  if (description !== undefined) wrapped.description = description;
  if (dflt !== undefined) wrapped.default = dflt;
  return wrapped;
}
