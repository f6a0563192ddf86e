/** The config error a config text gives. */
import { parseConfigText } from "../../config/load.ts";
import { ConfigError } from "../../config/errors.ts";

/** The ConfigError `text` (as file c.yaml, with `env`) is refused with; throws if it loads or fails otherwise. */
export function configErrorOf(text: string, env: Record<string, string> = {}): ConfigError {
  try {
    parseConfigText(text, "c.yaml", env);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("the config loaded");
}
