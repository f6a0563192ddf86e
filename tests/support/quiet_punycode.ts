/**
 * Drops Node's DEP0040 warning ("The `punycode` module is deprecated"), which kubernetes-models' validators
 * (ajv formats, uri-js) trigger on import: a newcomer reads it as a problem of this project. Every other warning
 * still prints. Import this module before kubernetes-models.
 * @module
 */
import process from "node:process";

const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;

/** The warning code of an `emitWarning` call, in either of its signatures. */
function codeOf(args: unknown[]): unknown {
  const opts = args[1];
  if (typeof opts === "object" && opts !== null) return (opts as { code?: unknown }).code;
  return args[2];
}

(process as { emitWarning: (...args: unknown[]) => void }).emitWarning = (...args: unknown[]) => {
  if (codeOf(args) === "DEP0040") return;
  emit(...args);
};
