/**
 * A kustomize Component applied to the base deployment the way kustomize's strategic merge does (maps merged,
 * lists of named items merged by name, other lists replaced), for the tests of k8s/packet-capture/ and
 * k8s/pixie-pod-scope/ where kubectl is not installed.
 * @module
 */
import { deepEqual, ok } from "node:assert/strict";
import { join } from "node:path";
import { formatProblem, parseManifests, readKustomization } from "./k8s_validate.ts";

/** A manifest object. */
export type Obj = Record<string, unknown>;
/** Whether a value is a mapping. */
export const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** Strategic merge of `patch` into `base`: maps recursively, lists of named items by name, other lists replaced. */
export function merge(base: unknown, patch: unknown): unknown {
  if (isObj(base) && isObj(patch)) {
    const out: Obj = { ...base };
    for (const [k, v] of Object.entries(patch)) out[k] = k in base ? merge(base[k], v) : v;
    return out;
  }
  if (
    Array.isArray(base) && Array.isArray(patch) && patch.every((p) => isObj(p) && typeof p.name === "string")
  ) {
    const out = base.map((b) => {
      const p = patch.find((x) => isObj(x) && isObj(b) && x.name === b.name);
      return p ? merge(b, p) : b;
    });
    for (const p of patch) if (!out.some((b) => isObj(b) && isObj(p) && b.name === p.name)) out.push(p);
    return out;
  }
  return patch;
}

/** `Kind/name` of a manifest object. */
export const key = (v: unknown): string =>
  isObj(v) ? `${v.kind}/${(v.metadata as Obj | undefined)?.name}` : "";

/** The base's objects (k8s/), and the same with the component at `componentDir` applied. */
export async function renderComponent(
  root: string,
  componentDir: string,
): Promise<{ base: Map<string, Obj>; objs: Map<string, Obj> }> {
  const ROOT = root;
  const COMPONENT = componentDir;
  const base = await readKustomization(ROOT, join(ROOT, "k8s"));
  const component = await readKustomization(ROOT, COMPONENT);
  deepEqual(
    component.problems.map(formatProblem).filter((p) => !p.includes('expected kind "Kustomization"')),
    [],
  );
  const before = new Map<string, Obj>();
  for (const file of base.resources) {
    for (const d of parseManifests(await Deno.readTextFile(join(ROOT, file)), file).docs) {
      if (isObj(d.value)) before.set(key(d.value), d.value);
    }
  }
  const objs = new Map(before);
  for (const file of component.resources) {
    for (const d of parseManifests(await Deno.readTextFile(join(ROOT, file)), file).docs) {
      if (isObj(d.value)) {
        ok(!objs.has(key(d.value)), `${file}: ${key(d.value)} is already in the base`);
        objs.set(key(d.value), d.value);
      }
    }
  }
  const k = parseManifests(await Deno.readTextFile(join(COMPONENT, "kustomization.yaml")), "k").docs[0]!
    .value as Obj;
  for (const p of (k.patches as { path: string }[])) {
    const patch = parseManifests(await Deno.readTextFile(join(COMPONENT, p.path)), p.path).docs[0]!.value;
    const target = objs.get(key(patch));
    ok(target, `patch ${p.path} targets ${key(patch)}, which the base does not have`);
    objs.set(key(patch), merge(target, patch) as Obj);
  }
  return { base: before, objs };
}
