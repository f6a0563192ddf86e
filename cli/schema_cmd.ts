/**
 * `schema`: writes the config's JSON Schema for editors.
 * @module
 */
import { EXIT_OK, optString, type ParsedArgs } from "./command.ts";
import { configJsonSchema, writeConfigJsonSchema } from "../config/json_schema.ts";

/** Runs `schema`. */
export async function schemaCommand(args: ParsedArgs): Promise<number> {
  const out = optString(args, "out") ?? "config.schema.json";
  if (out === "-") {
    console.log(JSON.stringify(configJsonSchema(), null, 2));
  } else {
    await writeConfigJsonSchema(out);
    console.error(`wrote ${out}`);
  }
  return EXIT_OK;
}
