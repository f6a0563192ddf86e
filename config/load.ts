/**
 * Loads a config file: YAML with positions → `${VAR}` interpolation → schema and cross-field checks, every
 * `stream_filter` checked against Pixie's PxL rules and tables (at its line and column in the file) → defaults
 * (the payload column of each Pixie tap from its table) → node name. Every problem is collected first, then
 * thrown as one {@link ConfigError} (exit code 2); warnings are logged and returned.
 * @module
 */

import { isAbsolute, join } from "node:path";
import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  type YAMLError,
  type YAMLMap,
} from "yaml";
import { logger, registerSecret } from "../util/log.ts";
import { crossFieldProblems, fillPayloadDefaults, streamFilterProblems } from "./checks.ts";
import { DEFAULT_CONFIG_FILES } from "./defaults.ts";
import { ConfigError, type ConfigIssue, formatIssue } from "./errors.ts";
import { type EnvLookup, type EnvReadable, interpolate } from "./interpolate.ts";
import { locate, valueOffsetMapper } from "./locate.ts";
import { formatKeyPath, type Problem, valueAt } from "./problem.ts";
import { type Config, configSchema } from "./schema.ts";
import { acceptsType, type KeyPath } from "./schema_walk.ts";
import { problemsFromZod } from "./zod_issues.ts";

/** A validated config and the file it came from. */
export interface LoadedConfig {
  /** Fully defaulted; `node` is a non-empty name. */
  config: Config;
  /** The file as it was opened (the `--config` value, or the default file that was found). */
  file: string;
  /** What loads but will not work as meant (a table that carries no audio, ...); already logged. */
  warnings: ConfigIssue[];
}

const log = logger("config");

/** Largest config file read (a real one is a few KB; a huge one would only cost memory and time). */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Longest string value or key, after `${VAR}` interpolation (a stream_filter is at most a few KB). */
export const MAX_CONFIG_STRING = 64 * 1024;

/** Environment variables by name; an absent or undefined entry is unset. */
export type Env = Record<string, string | undefined>;

/** Options of {@link loadConfig}. */
export interface LoadOptions {
  /** Directory that relative paths and the default files are resolved against (default: the process cwd). */
  cwd?: string;
}

/**
 * Loads and validates the config at `path`, or, without a path, the first of `config.yaml` and
 * `example-config.yaml` that exists. `env` defaults to the process environment (unpermitted variables read as
 * unset). Throws {@link ConfigError} listing every problem.
 */
export async function loadConfig(path?: string, env?: Env, options: LoadOptions = {}): Promise<LoadedConfig> {
  const file = await resolveConfigPath(path, options.cwd);
  const full = options.cwd ? join(options.cwd, file) : file;
  let text: string;
  try {
    // Checked before reading: a 50 MB file (or /dev/zero) must not be read whole first.
    const info = await Deno.stat(full);
    if (info.isFile && info.size > MAX_CONFIG_BYTES) {
      throw new ConfigError([
        fileIssue(file, `a config file of at most ${MAX_CONFIG_BYTES} bytes`, `${info.size} bytes`),
      ]);
    }
    text = await Deno.readTextFile(full);
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const issue = fileIssue(file, "a readable config file", e instanceof Error ? e.name : String(e));
    if (e instanceof Deno.errors.NotFound && !isAbsolute(full)) {
      // `deno task` runs in the repository's folder whatever folder it is started from: `--config config.yaml`
      // typed beside the file was looked for there.
      issue.hint =
        `looked for ${join(Deno.cwd(), full)}: a relative path is read from where the command runs ` +
        "(deno task runs in the repository's folder); give it from there, or an absolute path";
    }
    throw new ConfigError([issue]);
  }
  return parseConfigText(text, file, env);
}

/** Where each loaded config came from, so a command can report a setting it cannot use at its position. */
const origins = new WeakMap<Config, {
  doc: Document;
  file: string;
  position: (offset: number) => { line: number; col: number };
  keyIndex: WeakMap<YAMLMap, Map<string, number>>;
}>();

/**
 * A configuration error (exit 2) about a setting the schema accepts but a command cannot use, e.g. an empty
 * `pixie.api_key` for `record`, at the setting's line and column in the file it was loaded from (the deepest
 * part of the path that is written there; no position for a config that did not come from {@link loadConfig}).
 */
export function configIssue(
  config: Config,
  path: KeyPath,
  expected: string,
  found: string,
  hint?: string,
): ConfigError {
  const problem: Problem = { path, expected, found, hint };
  const origin = origins.get(config);
  if (!origin) {
    const issue: ConfigIssue = {
      file: "config",
      line: 0,
      col: 0,
      path: formatKeyPath(path),
      expected,
      found,
    };
    if (hint) issue.hint = hint;
    return new ConfigError([issue]);
  }
  return new ConfigError([toIssue(problem, origin.doc, origin.file, origin.position, origin.keyIndex)]);
}

/**
 * `file:line:col` of the setting at `path` in the file `config` was loaded from (the deepest part of the path
 * written there), for messages about a setting that loaded but did not do what was meant; undefined for a
 * config that did not come from {@link loadConfig}.
 */
export function configPosition(config: Config, path: KeyPath): string | undefined {
  const origin = origins.get(config);
  if (!origin) return undefined;
  const { line, col } = origin.position(locate(origin.doc, path));
  return `${origin.file}:${line}:${col}`;
}

/**
 * The config file to read: `path` when given, else the first default file that exists in `cwd`.
 * Throws {@link ConfigError} when no default file exists.
 */
export async function resolveConfigPath(path?: string, cwd?: string): Promise<string> {
  if (path !== undefined && path !== "") return path;
  for (const candidate of DEFAULT_CONFIG_FILES) {
    try {
      const info = await Deno.stat(cwd ? join(cwd, candidate) : candidate);
      if (info.isFile) return candidate;
    } catch {
      // Not there (or not readable): try the next default.
    }
  }
  throw new ConfigError([
    fileIssue(DEFAULT_CONFIG_FILES.join(" or "), "a config file (or pass --config FILE)", "neither file"),
  ]);
}

/** Parses and validates config text; `fileName` is used in messages only. */
export function parseConfigText(text: string, fileName: string, env?: Env): LoadedConfig {
  const lookup = envLookup(env);
  if (text.length > MAX_CONFIG_BYTES) {
    throw new ConfigError([{
      file: fileName,
      line: 1,
      col: 1,
      path: "",
      expected: `a config of at most ${MAX_CONFIG_BYTES} bytes`,
      found: `${text.length} characters`,
    }]);
  }
  const lineCounter = new LineCounter();
  // yaml's own uniqueKeys check compares every key with every other (64k keys: minutes); duplicateKeys is linear.
  const doc = parseDocument(text, { lineCounter, merge: true, prettyErrors: true, uniqueKeys: false });
  const position = (offset: number) => lineCounter.linePos(offset);
  const keyIndex = new WeakMap<YAMLMap, Map<string, number>>();

  if (doc.errors.length > 0) throw new ConfigError(doc.errors.map((e) => yamlIssue(e, fileName)));
  const duplicates = duplicateKeys(doc.contents);
  if (duplicates.length > 0) {
    throw new ConfigError(duplicates.map((d) => {
      const { line, col } = position(d.offset);
      return {
        file: fileName,
        line,
        col,
        path: formatKeyPath(d.path),
        expected: "valid YAML",
        found: "DUPLICATE_KEY: Map keys must be unique",
        hint: `${d.key} is set at line ${position(d.first).line} already: keep one of the two`,
      };
    }));
  }
  if (!isMap(doc.contents)) {
    const found = doc.contents === null
      ? "an empty document"
      : isSeq(doc.contents)
      ? "a list"
      : "a single value";
    const { line, col } = position(0);
    throw new ConfigError([{
      file: fileName,
      line,
      col,
      path: "",
      expected: "a mapping of config keys",
      found,
    }]);
  }

  const interpolated = interpolate(
    doc,
    text,
    lookup,
    (p, t) => acceptsType(configSchema, p, t),
    envReadable(env),
  );
  const problems: Problem[] = [...interpolated.problems, ...longStrings(doc.contents)];
  // A huge string would be copied into every later step (2 GB RSS for a 50 MB one): stop here.
  if (problems.length > interpolated.problems.length) {
    throw new ConfigError(problems.map((p) => toIssue(p, doc, fileName, position, keyIndex)));
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    problems.push({ path: [], expected: "a document without runaway aliases", found: String(e) });
  }

  if (data !== undefined) {
    // A value whose interpolation failed was already reported at its exact position.
    const reported = new Set(interpolated.problems.map((p) => formatKeyPath(p.path)));
    const parsed = configSchema.safeParse(data);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        for (const p of problemsFromZod(issue, configSchema, data, interpolated.secrets)) {
          if (!reported.has(formatKeyPath(p.path))) problems.push(p);
        }
      }
    }
    problems.push(...crossFieldProblems(data));
    // A value whose interpolation failed is not the text that would run: it is not checked as PxL.
    const filters = streamFilterProblems(data, (path, valueOffset) => {
      if (reported.has(formatKeyPath(path))) return undefined;
      const value = valueAt(data, path);
      return typeof value === "string" ? valueOffsetMapper(doc, path, text, value)(valueOffset) : undefined;
    });
    problems.push(...filters.errors.filter((p) => !reported.has(formatKeyPath(p.path))));

    if (problems.length === 0 && parsed.success) {
      const config = parsed.data;
      config.node = config.node || resolveNodeName(lookup);
      if (!config.node) {
        problems.push({
          path: ["node"],
          expected: "a node name ($NODE_NAME or the hostname)",
          found: "nothing",
        });
      }
      registerUrlPasswords(config.nats.url);
      fillPayloadDefaults(config, data);
      if (problems.length === 0) {
        const warnings = filters.warnings.map((p) => toIssue(p, doc, fileName, position, keyIndex));
        for (const w of warnings) log.warn(formatIssue(w));
        origins.set(config, { doc, file: fileName, position, keyIndex });
        return { config, file: fileName, warnings };
      }
    }
  }
  throw new ConfigError(problems.map((p) => toIssue(p, doc, fileName, position, keyIndex)));
}

function toIssue(
  p: Problem,
  doc: Document,
  file: string,
  position: (offset: number) => { line: number; col: number },
  keyIndex: WeakMap<YAMLMap, Map<string, number>>,
): ConfigIssue {
  const { line, col } = position(
    p.offset ?? unknownKeyOffset(doc, p, keyIndex) ?? locate(doc, p.path, p.onKey),
  );
  const issue: ConfigIssue = {
    file,
    line,
    col,
    path: formatKeyPath(p.path),
    expected: p.expected,
    found: p.found,
  };
  if (p.hint) issue.hint = p.hint;
  return issue;
}

function yamlIssue(e: YAMLError, file: string): ConfigIssue {
  const pos = e.linePos?.[0] ?? { line: 1, col: 1 };
  const reason = (e.message.split(/ at line \d+, column \d+/)[0] ?? e.message).trim();
  return {
    file,
    line: pos.line,
    col: pos.col,
    path: "",
    expected: "valid YAML",
    found: `${e.code}: ${reason}`,
  };
}

function fileIssue(file: string, expected: string, found: string): ConfigIssue {
  return { file, line: 0, col: 0, path: "", expected, found };
}

function envLookup(env: Env | undefined): EnvLookup {
  if (env) return (name) => Object.hasOwn(env, name) ? env[name] : undefined;
  return (name) => {
    try {
      return Deno.env.get(name);
    } catch {
      // Without --allow-env for this name the variable is treated as unset, as with --ignore-env.
      return undefined;
    }
  };
}

/** Given variables are all readable; the process's are those its permissions grant. */
function envReadable(env: Env | undefined): EnvReadable {
  if (env) return () => true;
  return (name) => {
    try {
      return Deno.permissions.querySync({ name: "env", variable: name }).state === "granted";
    } catch {
      return true;
    }
  };
}

function resolveNodeName(env: EnvLookup): string {
  const fromEnv = env("NODE_NAME");
  if (fromEnv) return fromEnv;
  try {
    const host = Deno.hostname();
    if (host) return host;
  } catch {
    // No --allow-sys=hostname: fall back to the shell's HOSTNAME.
  }
  return env("HOSTNAME") ?? "";
}

function registerUrlPasswords(url: string): void {
  for (const server of url.split(",")) {
    // Everything before the last `@` (scheme optional, as the bus accepts it): a literal password may hold `/`,
    // `@` or `:`, and then the URL is invalid and quoted in the error, so it must be hidden whole.
    const userInfo = /^(?:[a-z][a-z0-9+.-]*:\/\/)?(.*)@[^@]*$/i.exec(server.trim())?.[1];
    // `user:pass@` hides the password (all after the first `:`); a bare `TOKEN@` is a token, hidden whole.
    const colon = userInfo?.indexOf(":") ?? -1;
    const password = colon >= 0 ? userInfo!.slice(colon + 1) : userInfo;
    if (!password) continue;
    registerSecret(password);
    try {
      registerSecret(decodeURIComponent(password));
    } catch {
      // Not percent-encoded after all; the raw form is registered.
    }
  }
}

/** A key that repeats an earlier key of its mapping. */
interface DuplicateKey {
  /** Where the repeat is. */
  offset: number;
  /** Where the key was first set. */
  first: number;
  key: string;
  /** The repeated key's path. */
  path: (string | number)[];
}

/**
 * Keys that repeat an earlier key of the same mapping, in one pass with a map per mapping (what yaml's
 * `uniqueKeys` reports, without its comparison of every pair), with where the first one is, so the error can say
 * which two lines to reconcile.
 */
function duplicateKeys(root: unknown): DuplicateKey[] {
  const out: DuplicateKey[] = [];
  const stack: { node: unknown; path: (string | number)[] }[] = [{ node: root, path: [] }];
  while (stack.length > 0) {
    const { node, path } = stack.pop()!;
    if (isMap(node)) {
      const seen = new Map<string, number>();
      for (const pair of node.items) {
        // Complex keys (a mapping as a key) are compared by their text, as yaml does for scalars.
        const k = isScalar(pair.key)
          ? `${typeof pair.key.value}:${String(pair.key.value)}`
          : `node:${String(pair.key)}`;
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        const at = nodeStart(pair.key) ?? 0;
        const first = seen.get(k);
        if (first !== undefined) out.push({ offset: at, first, key, path: [...path, key] });
        else seen.set(k, at);
        stack.push({ node: pair.value, path: [...path, key] });
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => stack.push({ node: item, path: [...path, i] }));
    }
  }
  return out.sort((a, b) => a.offset - b.offset);
}

/** Problems for string values and keys over {@link MAX_CONFIG_STRING}, at their position. */
function longStrings(root: unknown): Problem[] {
  const out: Problem[] = [];
  const expected = `a string of at most ${MAX_CONFIG_STRING} characters`;
  const walk = (node: unknown, path: (string | number)[]): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? pair.key.value : pair.key;
        if (typeof key === "string" && key.length > MAX_CONFIG_STRING) {
          out.push({
            path,
            offset: nodeStart(pair.key),
            expected: `a key of at most ${MAX_CONFIG_STRING} characters`,
            found: `${key.length} characters`,
          });
          continue;
        }
        walk(pair.value, [...path, String(key)]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, [...path, i]));
    } else if (isScalar(node) && typeof node.value === "string" && node.value.length > MAX_CONFIG_STRING) {
      out.push({ path, offset: nodeStart(node), expected, found: `${node.value.length} characters` });
    }
  };
  walk(root, []);
  return out;
}

/**
 * The key offset of an unknown-key problem through a per-mapping index: `locate` searches the mapping's items
 * for each key, which made 64k unknown keys quadratic. Undefined for other problems.
 */
function unknownKeyOffset(
  doc: Document,
  p: Problem,
  keyIndex: WeakMap<YAMLMap, Map<string, number>>,
): number | undefined {
  if (!p.onKey || p.path.length === 0) return undefined;
  let node: unknown = doc.contents;
  for (let i = 0; i < p.path.length - 1; i++) {
    const seg = p.path[i]!;
    if (isAlias(node)) return undefined;
    if (isMap(node)) node = node.get(String(seg), true);
    else if (isSeq(node) && typeof seg === "number") node = node.items[seg];
    else return undefined;
  }
  if (!isMap(node)) return undefined;
  let index = keyIndex.get(node);
  if (!index) {
    index = new Map();
    for (const pair of node.items) {
      const k = String(isScalar(pair.key) ? pair.key.value : pair.key);
      const at = nodeStart(pair.key);
      if (at !== undefined && !index.has(k)) index.set(k, at);
    }
    keyIndex.set(node, index);
  }
  return index.get(String(p.path[p.path.length - 1]));
}

function nodeStart(node: unknown): number | undefined {
  if (node === null || typeof node !== "object" || !("range" in node)) return undefined;
  return (node as { range?: [number, number, number] | null }).range?.[0];
}
