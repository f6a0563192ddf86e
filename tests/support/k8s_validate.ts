/**
 * Offline validation of the Kubernetes manifests in k8s/: YAML with positions, the kubernetes-models schemas
 * (and their Prometheus Operator models), a check for keys the schemas do not know, a PromQL metric-name
 * extractor, and the list of metric names the exporter exposes.
 *
 * kubernetes-models compiles its JSON schemas into ajv validators that accept unknown fields and do not ship the
 * schemas themselves. Its TypeScript declarations (one `.d.ts` per schema definition, generated from the same
 * OpenAPI document) do list every field, so unknown keys are found by walking an object against those
 * declarations ({@link DtsSchema}).
 * @module
 */

import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Document, isMap, isScalar, isSeq, LineCounter, type Node, parseAllDocuments } from "yaml";
import "./quiet_punycode.ts";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { Service } from "kubernetes-models/v1/Service";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { DaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { StatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ClusterRole } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole";
import { ClusterRoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding";
import { PodMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { didYouMean } from "../../util/suggest.ts";

// ---------------------------------------------------------------------------------------------------------------
// Problems and positions

/** One problem in a manifest, at a 1-based line and column. */
export interface ManifestProblem {
  file: string;
  line: number;
  col: number;
  /** Key path such as `spec.template.spec.containers[0].name`; empty for the whole document. */
  path: string;
  message: string;
}

/** `file:line:col: path: message`. */
export function formatProblem(p: ManifestProblem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.path ? `${p.path}: ` : ""}${p.message}`;
}

/** A key path into a YAML document: map keys and sequence indices. */
export type KeyPath = readonly (string | number)[];

/** Renders a key path as `a.b[0].c`. */
export function formatPath(path: KeyPath): string {
  let out = "";
  for (const seg of path) out += typeof seg === "number" ? `[${seg}]` : out === "" ? seg : `.${seg}`;
  return out;
}

/** One YAML document of a manifest file, with what is needed to point at its nodes. */
export interface ManifestDoc {
  /** The file as given to {@link parseManifests} (repo-relative in the tests). */
  file: string;
  /** 0-based index of the document in its file. */
  index: number;
  doc: Document;
  lineCounter: LineCounter;
  /** The document as plain data. */
  value: unknown;
}

/** Parses every document of a YAML file, keeping positions; YAML syntax errors are returned as problems. */
export function parseManifests(
  text: string,
  file: string,
): { docs: ManifestDoc[]; problems: ManifestProblem[] } {
  const lineCounter = new LineCounter();
  const parsed = parseAllDocuments(text, { lineCounter, prettyErrors: false });
  const docs: ManifestDoc[] = [];
  const problems: ManifestProblem[] = [];
  // An empty file parses to an EmptyStream (no documents), which is not an error.
  if (!Array.isArray(parsed)) return { docs, problems };
  parsed.forEach((doc, index) => {
    for (const err of [...doc.errors, ...doc.warnings]) {
      const pos = lineCounter.linePos(err.pos[0]);
      problems.push({
        file,
        line: pos.line,
        col: pos.col,
        path: "",
        message: `YAML: ${err.message.split("\n")[0]}`,
      });
    }
    // A document with syntax errors is not validated further: its content is not what the author meant.
    if (doc.contents === null || doc.errors.length > 0) return;
    docs.push({ file, index, doc, lineCounter, value: doc.toJS({ maxAliasCount: 100 }) });
  });
  return { docs, problems };
}

/**
 * Position of the node at `path`, or of its nearest existing ancestor. With `key`, the position of the map key
 * rather than its value (where an unknown key should be reported).
 */
export function positionOf(d: ManifestDoc, path: KeyPath, key = false): { line: number; col: number } {
  let node: unknown = d.doc.contents;
  let at = (node as Node | null)?.range?.[0] ?? 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      const keyStart = (pair.key as Node).range?.[0];
      if (last && key && keyStart !== undefined) {
        at = keyStart;
        break;
      }
      node = pair.value;
      at = (node as Node | null)?.range?.[0] ?? keyStart ?? at;
    } else if (isSeq(node) && typeof seg === "number") {
      node = node.items[seg];
      at = (node as Node | null)?.range?.[0] ?? at;
    } else {
      break;
    }
  }
  return d.lineCounter.linePos(at);
}

/** A problem at `path` of a document. */
export function problemAt(d: ManifestDoc, path: KeyPath, message: string, key = false): ManifestProblem {
  const pos = positionOf(d, path, key);
  return { file: d.file, line: pos.line, col: pos.col, path: formatPath(path), message };
}

// ---------------------------------------------------------------------------------------------------------------
// Models

interface ModelClass {
  new (data: never): { validate(): void };
}

interface ModelEntry {
  model: ModelClass;
  /** Module specifier of the model, whose `.d.ts` lists the fields. */
  specifier: string;
}

/**
 * The kinds k8s/ may use, by `apiVersion/kind`. A kind that is not here is reported, so that a new kind cannot
 * slip in unvalidated: add it here with its model.
 */
const MODELS: Record<string, ModelEntry> = {
  "v1/Namespace": { model: Namespace as unknown as ModelClass, specifier: "kubernetes-models/v1/Namespace" },
  "v1/ServiceAccount": {
    model: ServiceAccount as unknown as ModelClass,
    specifier: "kubernetes-models/v1/ServiceAccount",
  },
  "v1/Service": { model: Service as unknown as ModelClass, specifier: "kubernetes-models/v1/Service" },
  "v1/ConfigMap": { model: ConfigMap as unknown as ModelClass, specifier: "kubernetes-models/v1/ConfigMap" },
  "apps/v1/DaemonSet": {
    model: DaemonSet as unknown as ModelClass,
    specifier: "kubernetes-models/apps/v1/DaemonSet",
  },
  "apps/v1/StatefulSet": {
    model: StatefulSet as unknown as ModelClass,
    specifier: "kubernetes-models/apps/v1/StatefulSet",
  },
  "networking.k8s.io/v1/NetworkPolicy": {
    model: NetworkPolicy as unknown as ModelClass,
    specifier: "kubernetes-models/networking.k8s.io/v1/NetworkPolicy",
  },
  "rbac.authorization.k8s.io/v1/ClusterRole": {
    model: ClusterRole as unknown as ModelClass,
    specifier: "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole",
  },
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding": {
    model: ClusterRoleBinding as unknown as ModelClass,
    specifier: "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding",
  },
  "policy/v1/PodDisruptionBudget": {
    model: PodDisruptionBudget as unknown as ModelClass,
    specifier: "kubernetes-models/policy/v1/PodDisruptionBudget",
  },
  "monitoring.coreos.com/v1/PodMonitor": {
    model: PodMonitor as unknown as ModelClass,
    specifier: "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor",
  },
  "monitoring.coreos.com/v1/ServiceMonitor": {
    model: ServiceMonitor as unknown as ModelClass,
    specifier: "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor",
  },
  "monitoring.coreos.com/v1/PrometheusRule": {
    model: PrometheusRule as unknown as ModelClass,
    specifier: "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule",
  },
};

/** `apiVersion/kind` pairs the validator knows. */
export const SUPPORTED_KINDS: readonly string[] = Object.keys(MODELS);

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params?: Record<string, unknown>;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function pointerToPath(pointer: string, value: unknown): (string | number)[] {
  const out: (string | number)[] = [];
  let cur: unknown = value;
  for (const raw of pointer.split("/").slice(1)) {
    const seg = raw.replaceAll("~1", "/").replaceAll("~0", "~");
    if (Array.isArray(cur) && /^\d+$/.test(seg)) {
      out.push(Number(seg));
      cur = cur[Number(seg)];
    } else {
      out.push(seg);
      cur = isRecord(cur) ? cur[seg] : undefined;
    }
  }
  return out;
}

/** Validates one document against its model's schema and its declared fields. */
export function validateManifest(d: ManifestDoc): ManifestProblem[] {
  const v = d.value;
  if (!isRecord(v)) return [problemAt(d, [], "expected a Kubernetes object (a mapping)")];
  const apiVersion = typeof v.apiVersion === "string" ? v.apiVersion : "";
  const kind = typeof v.kind === "string" ? v.kind : "";
  const entry = MODELS[`${apiVersion}/${kind}`];
  if (!entry) {
    return [
      problemAt(
        d,
        ["kind"],
        `no schema for apiVersion "${apiVersion}" kind "${kind}" (supported: ${SUPPORTED_KINDS.join(", ")})`,
      ),
    ];
  }
  const problems: ManifestProblem[] = [];
  try {
    new entry.model(v as never).validate();
  } catch (e) {
    const errors = (e as { errors?: AjvError[] }).errors;
    if (!Array.isArray(errors)) throw e;
    for (const err of errors) {
      const path = pointerToPath(err.instancePath, v);
      problems.push(problemAt(d, path, `schema: ${err.message ?? err.keyword}`));
    }
  }
  const schema = DtsSchema.forModel(entry.specifier);
  for (const u of schema.unknownKeys(v)) {
    const hint = u.suggestion ? ` (did you mean "${u.suggestion}"?)` : "";
    problems.push(problemAt(d, u.path, `unknown key "${String(u.path.at(-1))}"${hint}`, true));
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------
// Declared fields, from the models' .d.ts files

type TypeExpr =
  | { t: "any" }
  | { t: "scalar" }
  | { t: "array"; of: TypeExpr }
  | { t: "map"; of: TypeExpr }
  | { t: "object"; props: Map<string, TypeExpr> }
  | { t: "ref"; name: string; file: string }
  | { t: "union"; of: TypeExpr[] };

interface DtsFile {
  imports: Map<string, string>;
  /** Exported alias → local name (`export type { IFoo as IIoK8sFoo }`). */
  reexports: Map<string, string>;
  interfaces: Map<string, { extends: string[]; props: Map<string, TypeExpr> }>;
  aliases: Map<string, TypeExpr>;
}

/** A key the declarations do not have, with the closest declared key when it looks like a typo. */
export interface UnknownKey {
  path: (string | number)[];
  suggestion?: string;
}

/** Strips comments, keeping string literals (which may contain `//` or `/*`). */
function stripComments(src: string): string {
  let out = "";
  for (let i = 0; i < src.length; i++) {
    const ch = src[i];
    if (ch === '"' || ch === "'") {
      let j = i + 1;
      while (j < src.length && src[j] !== ch) j += src[j] === "\\" ? 2 : 1;
      out += src.slice(i, j + 1);
      i = j;
    } else if (ch === "/" && src[i + 1] === "*") {
      const end = src.indexOf("*/", i + 2);
      i = end < 0 ? src.length : end + 1;
    } else if (ch === "/" && src[i + 1] === "/") {
      const end = src.indexOf("\n", i);
      i = end < 0 ? src.length : end - 1;
    } else {
      out += ch;
    }
  }
  return out;
}

const TOKEN = /\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|-?\d+(?:\.\d+)?|[A-Za-z_$][\w$]*|\S)/y;

function tokenize(src: string): string[] {
  const out: string[] = [];
  TOKEN.lastIndex = 0;
  for (;;) {
    const m = TOKEN.exec(src);
    if (!m || m[1] === undefined) break;
    out.push(m[1]);
  }
  return out;
}

/** Recursive-descent parser for the subset of TypeScript that the generated declarations use. */
class TypeParser {
  #i = 0;
  constructor(readonly tokens: string[], readonly file: string) {}

  peek(offset = 0): string | undefined {
    return this.tokens[this.#i + offset];
  }
  next(): string {
    const t = this.tokens[this.#i++];
    if (t === undefined) throw new Error(`${this.file}: unexpected end of declarations`);
    return t;
  }
  expect(t: string): void {
    const got = this.next();
    if (got !== t) throw new Error(`${this.file}: expected "${t}", found "${got}"`);
  }

  union(): TypeExpr {
    if (this.peek() === "|") this.next();
    const of = [this.postfix()];
    while (this.peek() === "|") {
      this.next();
      of.push(this.postfix());
    }
    return of.length === 1 ? of[0] as TypeExpr : { t: "union", of };
  }

  postfix(): TypeExpr {
    let ty = this.primary();
    while (this.peek() === "[" && this.peek(1) === "]") {
      this.next();
      this.next();
      ty = { t: "array", of: ty };
    }
    return ty;
  }

  primary(): TypeExpr {
    const tok = this.next();
    if (tok === "(") {
      const inner = this.union();
      this.expect(")");
      return inner;
    }
    if (tok === "{") return this.objectBody();
    if (tok === "Array" && this.peek() === "<") {
      this.next();
      const of = this.union();
      this.expect(">");
      return { t: "array", of };
    }
    if (tok === "Record" && this.peek() === "<") {
      this.next();
      this.union();
      this.expect(",");
      const of = this.union();
      this.expect(">");
      return { t: "map", of };
    }
    if (["any", "unknown", "object"].includes(tok)) return { t: "any" };
    if (
      /^["'\d-]/.test(tok) ||
      ["string", "number", "boolean", "null", "undefined", "true", "false"].includes(tok)
    ) {
      return { t: "scalar" };
    }
    if (/^[A-Za-z_$][\w$]*$/.test(tok)) {
      // `IFoo["kind"]` (indexed access) only appears for apiVersion/kind: a string.
      if (this.peek() === "[" && this.peek(1) !== "]") {
        while (this.next() !== "]");
        return { t: "scalar" };
      }
      return { t: "ref", name: tok, file: this.file };
    }
    throw new Error(`${this.file}: unexpected "${tok}" in a type`);
  }

  /** After `{`: members until the matching `}`. An index signature makes it a map. */
  objectBody(): TypeExpr {
    const props = new Map<string, TypeExpr>();
    let map: TypeExpr | undefined;
    while (this.peek() !== "}") {
      if (this.peek() === "[") {
        this.next();
        this.next();
        this.expect(":");
        this.union();
        this.expect("]");
        this.expect(":");
        map = this.union();
      } else {
        const rawKey = this.next();
        if (this.peek() === "?") this.next();
        this.expect(":");
        const key = /^["']/.test(rawKey) ? JSON.parse(rawKey.replace(/^'|'$/g, '"')) as string : rawKey;
        props.set(key, this.union());
      }
      if (this.peek() === ";" || this.peek() === ",") this.next();
    }
    this.expect("}");
    if (map && props.size === 0) return { t: "map", of: map };
    if (map) return { t: "any" };
    return { t: "object", props };
  }
}

function parseDts(src: string, file: string): DtsFile {
  const text = stripComments(src);
  const out: DtsFile = {
    imports: new Map(),
    reexports: new Map(),
    interfaces: new Map(),
    aliases: new Map(),
  };
  for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*"([^"]+)"/g)) {
    for (const name of (m[1] ?? "").split(",").map((s) => s.trim()).filter(Boolean)) {
      const [orig, local] = name.split(/\s+as\s+/);
      out.imports.set((local ?? orig ?? "").trim(), m[2] ?? "");
    }
  }
  for (const m of text.matchAll(/export\s+type\s*\{([^}]*)\}/g)) {
    for (const part of (m[1] ?? "").split(",").map((s) => s.trim()).filter(Boolean)) {
      const [local, exported] = part.split(/\s+as\s+/);
      if (local && exported) out.reexports.set(exported.trim(), local.trim());
    }
  }
  for (const m of text.matchAll(/export\s+interface\s+(\w+)(?:\s+extends\s+([^{]+))?\s*\{/g)) {
    const start = (m.index ?? 0) + m[0].length;
    let depth = 1;
    let end = start;
    for (; end < text.length && depth > 0; end++) {
      if (text[end] === "{") depth++;
      else if (text[end] === "}") depth--;
    }
    const p = new TypeParser(tokenize(text.slice(start, end - 1) + "}"), file);
    const body = p.objectBody();
    const props = body.t === "object" ? body.props : new Map<string, TypeExpr>();
    const ext = (m[2] ?? "").split(",").map((s) => s.trim()).filter(Boolean);
    out.interfaces.set(m[1] ?? "", { extends: ext, props });
  }
  for (const m of text.matchAll(/export\s+type\s+(\w+)\s*=\s*([^;]+);/g)) {
    const p = new TypeParser(tokenize(m[2] ?? ""), file);
    out.aliases.set(m[1] ?? "", p.union());
  }
  return out;
}

/** Finds `node_modules/<pkg>` walking up from `dir`, as Node's resolver does. */
function findPackage(dir: string, pkg: string): string | undefined {
  for (let d = dir;; d = dirname(d)) {
    const candidate = join(d, "node_modules", pkg);
    try {
      Deno.statSync(candidate);
      return candidate;
    } catch {
      // keep walking up
    }
    if (dirname(d) === d) return undefined;
  }
}

function resolveDts(fromFile: string, specifier: string): string | undefined {
  const withDts = (p: string) => p.replace(/\.js$/, "") + ".d.ts";
  if (specifier.startsWith(".")) return withDts(resolve(dirname(fromFile), specifier));
  const parts = specifier.split("/");
  const pkgLen = specifier.startsWith("@") ? 2 : 1;
  const pkg = parts.slice(0, pkgLen).join("/");
  const sub = parts.slice(pkgLen).join("/");
  if (!sub) return undefined; // a package root, e.g. @kubernetes-models/base: no schema types there
  const dir = findPackage(dirname(fromFile), pkg);
  return dir ? withDts(join(dir, sub)) : undefined;
}

/** The fields of a model, read from its TypeScript declarations. */
export class DtsSchema {
  static readonly #files = new Map<string, DtsFile>();
  readonly #root: TypeExpr;

  private constructor(root: TypeExpr) {
    this.#root = root;
  }

  /** The schema of a model module, e.g. `kubernetes-models/apps/v1/DaemonSet`. */
  static forModel(specifier: string): DtsSchema {
    const jsFile = fileURLToPath(import.meta.resolve(specifier));
    const dts = jsFile.replace(/\.js$/, ".d.ts");
    const name = `I${jsFile.split("/").at(-1)?.replace(/\.js$/, "")}`;
    return new DtsSchema({ t: "ref", name, file: dts });
  }

  static #load(file: string): DtsFile {
    let f = DtsSchema.#files.get(file);
    if (!f) {
      f = parseDts(Deno.readTextFileSync(file), file);
      DtsSchema.#files.set(file, f);
    }
    return f;
  }

  /** Resolves a reference to an object shape (own and inherited fields), a map, or anything else. */
  #deref(ty: TypeExpr, seen = 0): TypeExpr {
    if (ty.t !== "ref") return ty;
    if (seen > 20) return { t: "any" };
    if (ty.name === "TypeMeta") {
      return { t: "object", props: new Map([["apiVersion", { t: "scalar" }], ["kind", { t: "scalar" }]]) };
    }
    const f = DtsSchema.#load(ty.file);
    const local = f.reexports.get(ty.name) ?? ty.name;
    const iface = f.interfaces.get(local);
    if (iface) {
      const props = new Map(iface.props);
      for (const base of iface.extends) {
        const b = this.#deref({ t: "ref", name: base, file: ty.file }, seen + 1);
        if (b.t === "any") return b;
        if (b.t === "object") {
          for (const [k, v] of b.props) if (!props.has(k)) props.set(k, v);
        }
      }
      // An empty interface is an object the schema leaves open (x-kubernetes-preserve-unknown-fields).
      return props.size === 0 ? { t: "any" } : { t: "object", props };
    }
    const alias = f.aliases.get(local);
    if (alias) return this.#deref(alias, seen + 1);
    const from = f.imports.get(ty.name);
    if (from) {
      const target = resolveDts(ty.file, from);
      if (target) return this.#deref({ t: "ref", name: ty.name, file: target }, seen + 1);
    }
    // Unresolvable (a type from @kubernetes-models/base, say): do not guess, accept anything.
    return { t: "any" };
  }

  /** Every key of `value` that the declarations do not have. */
  unknownKeys(value: unknown): UnknownKey[] {
    const out: UnknownKey[] = [];
    this.#walk(value, this.#root, [], out);
    return out;
  }

  #walk(value: unknown, ty: TypeExpr, path: (string | number)[], out: UnknownKey[]): void {
    const t = this.#deref(ty);
    switch (t.t) {
      case "any":
      case "scalar":
        return;
      case "array":
        if (Array.isArray(value)) value.forEach((v, i) => this.#walk(v, t.of, [...path, i], out));
        return;
      case "map":
        if (isRecord(value)) {
          for (const [k, v] of Object.entries(value)) this.#walk(v, t.of, [...path, k], out);
        }
        return;
      case "object":
        if (!isRecord(value)) return;
        for (const [k, v] of Object.entries(value)) {
          const prop = t.props.get(k);
          if (prop) this.#walk(v, prop, [...path, k], out);
          else out.push({ path: [...path, k], suggestion: didYouMean(k, [...t.props.keys()]) });
        }
        return;
      case "union": {
        const members = t.of.map((m) => this.#deref(m));
        if (members.some((m) => m.t === "any")) return;
        const fitting = members.filter((m) =>
          Array.isArray(value) ? m.t === "array" : isRecord(value) ? m.t === "object" || m.t === "map" : false
        );
        if (fitting.length === 1 && fitting[0]) this.#walk(value, fitting[0], path, out);
        // Several object shapes: only keys none of them has are unknown.
        else if (fitting.length > 1 && isRecord(value)) {
          const merged = new Map<string, TypeExpr>();
          for (const m of fitting) {
            if (m.t === "map") return;
            if (m.t === "object") { for (const [k, v] of m.props) if (!merged.has(k)) merged.set(k, v); }
          }
          this.#walk(value, { t: "object", props: merged }, path, out);
        }
        return;
      }
      case "ref":
        return;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Kustomize

/** What a kustomization (recursively) applies and generates. */
export interface KustomizeTree {
  /** Every kustomization.yaml, repo-relative. */
  kustomizations: string[];
  /** Manifest files listed as resources. */
  resources: string[];
  /** configMapGenerator entries: name, key → file, labels, and whether the name is hash-suffixed. */
  configMaps: { name: string; files: Map<string, string>; labels: Record<string, string>; hashed: boolean }[];
  /** `images` entries of every kustomization. */
  images: { name: string; newName?: string; newTag?: string }[];
  problems: ManifestProblem[];
}

/**
 * The top-level keys of a kustomize v5 Kustomization, and of the entries we use. kubernetes-models has no schema
 * for it (it is a kustomize file, not an API object), so these lists stand in for one.
 */
const KUSTOMIZATION_KEYS: Record<string, readonly string[]> = {
  "": [
    "apiVersion",
    "kind",
    "metadata",
    "resources",
    "components",
    "namespace",
    "namePrefix",
    "nameSuffix",
    "labels",
    "commonLabels",
    "commonAnnotations",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
    "images",
    "patches",
    "replicas",
    "replacements",
    "helmCharts",
    "crds",
    "openapi",
    "sortOptions",
    "buildMetadata",
    "configurations",
    "generators",
    "transformers",
    "validators",
  ],
  configMapGenerator: ["name", "namespace", "behavior", "files", "literals", "envs", "options"],
  "configMapGenerator.options": ["labels", "annotations", "disableNameSuffixHash", "immutable"],
  labels: ["pairs", "includeSelectors", "includeTemplates", "fields"],
  images: ["name", "newName", "newTag", "digest"],
};

function checkKeys(
  d: ManifestDoc,
  value: unknown,
  path: KeyPath,
  allowed: readonly string[],
): ManifestProblem[] {
  if (!isRecord(value)) return [];
  return Object.keys(value).filter((k) => !allowed.includes(k)).map((k) => {
    const s = didYouMean(k, allowed);
    return problemAt(d, [...path, k], `unknown key "${k}"${s ? ` (did you mean "${s}"?)` : ""}`, true);
  });
}

/** Reads `dir/kustomization.yaml` and the kustomizations it includes; paths are relative to `root`. */
export async function readKustomization(root: string, dir: string): Promise<KustomizeTree> {
  const tree: KustomizeTree = { kustomizations: [], resources: [], configMaps: [], images: [], problems: [] };
  await walkKustomization(root, dir, tree);
  return tree;
}

async function walkKustomization(root: string, dir: string, tree: KustomizeTree): Promise<void> {
  const file = join(dir, "kustomization.yaml");
  const rel = relative(root, file);
  tree.kustomizations.push(rel);
  const { docs, problems } = parseManifests(await Deno.readTextFile(file), rel);
  tree.problems.push(...problems);
  const d = docs[0];
  if (!d || !isRecord(d.value)) {
    tree.problems.push({ file: rel, line: 1, col: 1, path: "", message: "expected a Kustomization mapping" });
    return;
  }
  const k = d.value;
  tree.problems.push(...checkKeys(d, k, [], KUSTOMIZATION_KEYS[""] ?? []));
  if (k.kind !== "Kustomization") tree.problems.push(problemAt(d, ["kind"], 'expected kind "Kustomization"'));
  const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
  for (const [i, l] of list(k.labels).entries()) {
    tree.problems.push(...checkKeys(d, l, ["labels", i], KUSTOMIZATION_KEYS.labels ?? []));
  }
  for (const [i, img] of list(k.images).entries()) {
    tree.problems.push(...checkKeys(d, img, ["images", i], KUSTOMIZATION_KEYS.images ?? []));
    if (isRecord(img) && typeof img.name === "string") {
      tree.images.push({
        name: img.name,
        newName: typeof img.newName === "string" ? img.newName : undefined,
        newTag: typeof img.newTag === "string" ? img.newTag : undefined,
      });
    }
  }
  for (const [i, res] of list(k.resources).entries()) {
    if (typeof res !== "string") {
      tree.problems.push(problemAt(d, ["resources", i], "expected a path"));
      continue;
    }
    const target = join(dir, res);
    let stat: Deno.FileInfo;
    try {
      stat = await Deno.stat(target);
    } catch {
      tree.problems.push(problemAt(d, ["resources", i], `no such file or directory: ${res}`));
      continue;
    }
    if (stat.isDirectory) await walkKustomization(root, target, tree);
    else tree.resources.push(relative(root, target));
  }
  for (const [i, gen] of list(k.configMapGenerator).entries()) {
    const path: KeyPath = ["configMapGenerator", i];
    tree.problems.push(...checkKeys(d, gen, path, KUSTOMIZATION_KEYS.configMapGenerator ?? []));
    if (!isRecord(gen)) continue;
    const options = isRecord(gen.options) ? gen.options : {};
    tree.problems.push(
      ...checkKeys(
        d,
        gen.options,
        [...path, "options"],
        KUSTOMIZATION_KEYS["configMapGenerator.options"] ?? [],
      ),
    );
    const files = new Map<string, string>();
    for (const [j, f] of list(gen.files).entries()) {
      if (typeof f !== "string") continue;
      const [key, src] = f.includes("=")
        ? f.split("=", 2) as [string, string]
        : [f.split("/").at(-1) ?? f, f];
      try {
        await Deno.stat(join(dir, src));
        files.set(key, relative(root, join(dir, src)));
      } catch {
        tree.problems.push(problemAt(d, [...path, "files", j], `no such file: ${src}`));
      }
    }
    const labels: Record<string, string> = {};
    if (isRecord(options.labels)) {
      for (const [lk, lv] of Object.entries(options.labels)) labels[lk] = String(lv);
    }
    tree.configMaps.push({
      name: typeof gen.name === "string" ? gen.name : "",
      files,
      labels,
      hashed: options.disableNameSuffixHash !== true,
    });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Pod security

/** A container or pod spec, loosely typed (validated by the schema before this runs). */
type Obj = Record<string, unknown>;

function obj(v: unknown): Obj {
  return isRecord(v) ? v : {};
}

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/**
 * Problems against the "restricted" Pod Security Standard, plus what fsm-px asks of every workload: a read-only
 * root filesystem, resource requests and a memory limit, liveness and readiness probes.
 */
export function podSpecProblems(d: ManifestDoc, podPath: KeyPath): ManifestProblem[] {
  let spec: unknown = d.value;
  for (const seg of podPath) spec = Array.isArray(spec) ? spec[seg as number] : obj(spec)[seg as string];
  const pod = obj(spec);
  const out: ManifestProblem[] = [];
  const at = (path: KeyPath, msg: string) => out.push(problemAt(d, [...podPath, ...path], msg));
  const psc = obj(pod.securityContext);
  for (const host of ["hostNetwork", "hostPID", "hostIPC"]) {
    if (pod[host] === true) at([host], `${host} is not allowed (restricted)`);
  }
  arr(pod.volumes).forEach((v, i) => {
    if (obj(v).hostPath !== undefined) {
      at(["volumes", i, "hostPath"], "hostPath volumes are not allowed (restricted)");
    }
  });
  const containers = [
    ...arr(pod.initContainers).map((c, i) => ({
      c: obj(c),
      path: ["initContainers", i] as KeyPath,
      init: true,
    })),
    ...arr(pod.containers).map((c, i) => ({ c: obj(c), path: ["containers", i] as KeyPath, init: false })),
  ];
  for (const { c, path, init } of containers) {
    const sc = obj(c.securityContext);
    const scPath = [...path, "securityContext"];
    if (sc.runAsNonRoot !== true && psc.runAsNonRoot !== true) {
      at(scPath, "runAsNonRoot must be true (restricted)");
    }
    if (sc.runAsUser === 0 || psc.runAsUser === 0) at(scPath, "runAsUser must not be 0 (restricted)");
    const seccomp = obj(sc.seccompProfile).type ?? obj(psc.seccompProfile).type;
    if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost") {
      at(scPath, "seccompProfile.type must be RuntimeDefault or Localhost (restricted)");
    }
    if (sc.allowPrivilegeEscalation !== false) {
      at(scPath, "allowPrivilegeEscalation must be false (restricted)");
    }
    if (sc.privileged === true) at(scPath, "privileged is not allowed (restricted)");
    const caps = obj(sc.capabilities);
    if (!arr(caps.drop).includes("ALL")) at(scPath, 'capabilities.drop must include "ALL" (restricted)');
    for (const add of arr(caps.add)) {
      if (add !== "NET_BIND_SERVICE") at(scPath, `capability ${String(add)} may not be added (restricted)`);
    }
    if (sc.readOnlyRootFilesystem !== true) at(scPath, "readOnlyRootFilesystem must be true");
    const res = obj(c.resources);
    if (obj(res.requests).cpu === undefined || obj(res.requests).memory === undefined) {
      at([...path, "resources"], "cpu and memory requests are required");
    }
    if (obj(res.limits).memory === undefined) at([...path, "resources"], "a memory limit is required");
    if (!init) {
      if (!c.livenessProbe) at(path, "a livenessProbe is required");
      if (!c.readinessProbe) at(path, "a readinessProbe is required");
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// PromQL metric names

const PROMQL_KEYWORDS = new Set([
  "and",
  "or",
  "unless",
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "bool",
  "offset",
  "atan2",
  "inf",
  "nan",
  "start",
  "end",
]);
const LABEL_LIST_KEYWORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right"]);

const PROMQL_TOKEN = new RegExp(
  [
    String.raw`\s+`,
    String.raw`#[^\n]*`,
    String.raw`"(?:[^"\\]|\\.)*"`,
    String.raw`'(?:[^'\\]|\\.)*'`,
    "`[^`]*`",
    String.raw`\$\{[^}]*\}`,
    String.raw`\$\w+`,
    String.raw`\[\[\w+\]\]`,
    String.raw`(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?(?:ms|[smhdwy])?(?:\d+(?:ms|[smhdwy]))*`,
    String.raw`0x[0-9a-fA-F]+`,
    String.raw`[A-Za-z_:][\w:]*`,
    String.raw`==|!=|=~|!~|<=|>=|[-+*/%^<>=(){}\[\],@]`,
  ].map((p) => `(${p})`).join("|"),
  "y",
);

/**
 * Metric names a PromQL expression selects (Grafana variables such as `$__rate_interval` or `${node}` allowed):
 * identifiers outside label matchers, `by (...)`-style label lists, ranges and strings, that are not functions
 * (followed by `(`) or keywords. Names are returned as written (histogram `_bucket` suffixes included), sorted.
 */
export function promqlMetricNames(expr: string): string[] {
  const tokens: string[] = [];
  PROMQL_TOKEN.lastIndex = 0;
  while (PROMQL_TOKEN.lastIndex < expr.length) {
    const at = PROMQL_TOKEN.lastIndex;
    const m = PROMQL_TOKEN.exec(expr);
    if (!m) throw new Error(`PromQL: cannot read "${expr.slice(at, at + 20)}" in: ${expr}`);
    const tok = m[0];
    if (/^\s/.test(tok) || tok.startsWith("#")) continue;
    tokens.push(tok);
  }
  const names = new Set<string>();
  let braces = 0;
  let brackets = 0;
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i] ?? "";
    if (tok === "{") braces++;
    else if (tok === "}") braces--;
    else if (tok === "[") brackets++;
    else if (tok === "]") brackets--;
    else if (braces === 0 && brackets === 0 && /^[A-Za-z_:][\w:]*$/.test(tok)) {
      const lower = tok.toLowerCase();
      if (LABEL_LIST_KEYWORDS.has(lower) && tokens[i + 1] === "(") {
        // Skip the label list.
        while (i < tokens.length && tokens[i] !== ")") i++;
        continue;
      }
      if (PROMQL_KEYWORDS.has(lower)) continue;
      const next = tokens[i + 1]?.toLowerCase();
      // A function, or an aggregation (`sum(...)`, `sum by (...) (...)`).
      if (next === "(" || next === "by" || next === "without") continue;
      names.add(tok);
    }
  }
  return [...names].sort();
}

/**
 * Metric names of a Grafana Prometheus variable query: `label_values(selector, label)`,
 * `query_result(expr)`, or plain PromQL. `label_values(label)` and `metrics(regex)` select no metric.
 */
export function grafanaQueryMetricNames(query: string): string[] {
  const q = query.trim();
  const lv = /^label_values\(\s*(.*)\s*,\s*[A-Za-z_]\w*\s*\)$/s.exec(q);
  if (lv) return promqlMetricNames(lv[1] ?? "");
  if (/^label_values\(\s*[A-Za-z_]\w*\s*\)$/.test(q) || /^metrics\(/.test(q)) return [];
  const qr = /^query_result\((.*)\)$/s.exec(q);
  return promqlMetricNames(qr ? qr[1] ?? "" : q);
}

/** Replaces Grafana's variables so that Prometheus can parse a dashboard query. */
export function substituteGrafanaVariables(expr: string): string {
  return expr
    .replace(
      /\$__rate_interval|\$\{__rate_interval\}|\$__interval|\$\{__interval\}|\$__range|\$\{__range\}/g,
      "5m",
    )
    .replace(/\$\{[^}]*\}|\$\w+|\[\[\w+\]\]/g, ".*");
}

/** Metric types of a Prometheus text exposition, by name (from its `# TYPE` lines). */
export function metricTypesFromExposition(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1] ?? "", m[2] ?? "");
  return out;
}

/** Series names that a set of metrics exposes: a histogram `h` adds `h_bucket`, `h_sum` and `h_count`. */
export function seriesNames(types: ReadonlyMap<string, string>): Set<string> {
  const out = new Set<string>();
  for (const [name, type] of types) {
    out.add(name);
    if (type === "histogram") { for (const s of ["_bucket", "_sum", "_count"]) out.add(name + s); }
    if (type === "summary") { for (const s of ["_sum", "_count"]) out.add(name + s); }
  }
  return out;
}

/**
 * The exporter's metrics and their types, as the metrics contract lists them. The lead replaces this with the
 * names read from a real scrape of the exporter (parse it with {@link metricTypesFromExposition}).
 */
export const EXPOSED_METRICS: ReadonlyMap<string, string> = new Map([
  ["audio_latency_seconds", "histogram"],
  ["signatures_detected_total", "counter"],
  ["signatures_matched_total", "counter"],
  ["active_signatures", "gauge"],
  ["audio_latency_last_seconds", "gauge"],
  ["fsmpx_rows_read_total", "counter"],
  ["fsmpx_payload_decode_errors_total", "counter"],
  ["fsmpx_payloads_truncated_total", "counter"],
  ["fsmpx_mailbox_depth", "gauge"],
  ["fsmpx_mailbox_dropped_total", "counter"],
  ["fsmpx_actor_restarts_total", "counter"],
  ["fsmpx_actor_poison_messages_total", "counter"],
  ["fsmpx_pixie_query_restarts_total", "counter"],
  ["fsmpx_pixie_stream_lag_seconds", "gauge"],
  ["fsmpx_pixie_healthy", "gauge"],
  ["fsmpx_pixie_last_response_timestamp_seconds", "gauge"],
  ["fsmpx_bus_outbox_depth", "gauge"],
  ["fsmpx_bus_outbox_overflow_total", "counter"],
  ["fsmpx_bus_published_total", "counter"],
  ["node_clock_offset_seconds", "gauge"],
  ["process_resident_memory_bytes", "gauge"],
  ["fsmpx_build_info", "gauge"],
]);

/** Series Prometheus itself adds to every scrape target (not the exporter's). */
export const SCRAPE_SERIES: ReadonlySet<string> = new Set([
  "up",
  "scrape_duration_seconds",
  "scrape_samples_scraped",
  "scrape_samples_post_metric_relabeling",
  "scrape_series_added",
]);

// ---------------------------------------------------------------------------------------------------------------
// .dockerignore

function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i] ?? "";
    if (ch === "*" && glob[i + 1] === "*") {
      re += ".*";
      i++;
      if (glob[i + 1] === "/") i++;
    } else if (ch === "*") re += "[^/]*";
    else if (ch === "?") re += "[^/]";
    else re += ch.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/**
 * Whether Docker leaves `path` (relative to the build context) out of the context under these .dockerignore
 * lines: the last matching pattern wins, `!` re-includes, and a matched directory excludes everything in it.
 */
export function dockerIgnored(dockerignore: string, path: string): boolean {
  const rules = dockerignore.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#")).map(
    (l) => {
      const negate = l.startsWith("!");
      const pattern = (negate ? l.slice(1) : l).replace(/^\/+/, "").replace(/\/+$/, "");
      return { negate, re: globToRegExp(pattern) };
    },
  );
  const parts = path.replace(/^\.?\//, "").split("/");
  let ignored = false;
  for (const rule of rules) {
    for (let n = 1; n <= parts.length; n++) {
      if (rule.re.test(parts.slice(0, n).join("/"))) {
        ignored = !rule.negate;
        break;
      }
    }
  }
  return ignored;
}
