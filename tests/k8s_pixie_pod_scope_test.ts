/**
 * The pod-scope variant (k8s/pixie-pod-scope/, a kustomize Component for `pixie.scope: pods`): its patches
 * applied to the base deployment the way kustomize's strategic merge does (maps merged, lists of named items
 * merged by name), every resulting object validated against its Kubernetes schema, and the privileges checked
 * to be exactly what the scope needs (the ServiceAccount token, get/list/watch on pods). The shipped configs turn
 * the scope on from the component's environment variable; where kubectl is installed, the component renders
 * with the real kustomize, alone and beside k8s/packet-capture/.
 */
import { denoTasks, taskAllowsEnv } from "./support/deno_tasks.ts";
import { deepEqual, equal, ok } from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { loadConfig } from "../config/load.ts";
import { formatProblem, parseManifests, validateManifest } from "./support/k8s_validate.ts";
import { isObj, key, type Obj, renderComponent } from "./support/k8s_component.ts";
import { allowsAddress } from "./support/network_policy.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const COMPONENT = join(ROOT, "k8s", "pixie-pod-scope");

const rendered = () => renderComponent(ROOT, COMPONENT);

const podSpec = (ds: Obj) => ((ds.spec as Obj).template as Obj).spec as Obj;

Deno.test("k8s/pixie-pod-scope: the patched objects validate against their Kubernetes schemas", async () => {
  const { objs } = await rendered();
  const problems = [...objs.values()].flatMap((o) =>
    parseManifests(stringify(o), `rendered ${key(o)}`).docs.flatMap(validateManifest)
  );
  deepEqual(problems.map(formatProblem), []);
});

Deno.test("k8s/pixie-pod-scope: the token, pods read-only, FSMPX_PIXIE_SCOPE=pods, and nothing else", async () => {
  const { base, objs } = await rendered();
  const ds = objs.get("DaemonSet/fsm-px-sensor")!;
  const spec = podSpec(ds);
  equal(spec.automountServiceAccountToken, true);
  equal((objs.get("ServiceAccount/fsm-px-sensor")!).automountServiceAccountToken, true);
  const containers = spec.containers as Obj[];
  equal(containers.length, 1, "the base's container was patched, not duplicated");
  const env = containers[0]!.env as Obj[];
  deepEqual(env.filter((e) => e.name === "FSMPX_PIXIE_SCOPE"), [{
    name: "FSMPX_PIXIE_SCOPE",
    value: "pods",
  }]);
  const baseEnv = (podSpec(base.get("DaemonSet/fsm-px-sensor")!).containers as Obj[])[0]!.env as Obj[];
  deepEqual(env.filter((e) => e.name !== "FSMPX_PIXIE_SCOPE"), baseEnv, "the base's variables are kept");

  const role = objs.get("ClusterRole/fsm-px-pixie-pod-scope")!;
  deepEqual(role.rules, [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] }]);
  const binding = objs.get("ClusterRoleBinding/fsm-px-pixie-pod-scope")!;
  deepEqual(binding.roleRef, {
    apiGroup: "rbac.authorization.k8s.io",
    kind: "ClusterRole",
    name: "fsm-px-pixie-pod-scope",
  });
  deepEqual(binding.subjects, [{ kind: "ServiceAccount", name: "fsm-px-sensor", namespace: "fsm-px" }]);

  // Nothing else: the pod keeps the base's security (no host network, no root), the namespace stays restricted.
  const baseSpec = podSpec(base.get("DaemonSet/fsm-px-sensor")!);
  const { automountServiceAccountToken: _a, containers: _c, ...rest } = spec;
  const { automountServiceAccountToken: _b, containers: _d, ...baseRest } = baseSpec;
  deepEqual(rest, baseRest);
  deepEqual(
    { ...containers[0]!, env: undefined },
    { ...(baseSpec.containers as Obj[])[0]!, env: undefined },
  );
  deepEqual(
    [...objs.keys()].filter((k) => !base.has(k)).sort(),
    [
      "ClusterRole/fsm-px-pixie-pod-scope",
      "ClusterRoleBinding/fsm-px-pixie-pod-scope",
      "NetworkPolicy/fsm-px-sensor-kube-api",
    ],
  );
});

Deno.test("k8s/pixie-pod-scope: the NetworkPolicies let the sensor reach the Kubernetes API server it watches", async () => {
  const { base, objs } = await rendered();
  const labels = (((objs.get("DaemonSet/fsm-px-sensor")!.spec as Obj).template as Obj).metadata as Obj)
    .labels as Obj;
  const policies = (m: Map<string, Obj>) => [...m.values()].filter((o) => o.kind === "NetworkPolicy");
  // Where API servers listen, as the sensor's packets reach them: kubeadm and k3s on a node's private address
  // at 6443; GKE, EKS and AKS private endpoints at 443.
  const apiServers: [string, number][] = [["10.0.0.10", 6443], ["192.168.1.10", 6443], ["172.16.0.2", 443]];
  for (const [addr, port] of apiServers) {
    ok(
      allowsAddress(policies(objs), "Egress", labels, addr, port),
      `the sensor cannot reach an API server at ${addr}:${port}`,
    );
    ok(
      !allowsAddress(policies(base), "Egress", labels, addr, port),
      `the base alone keeps ${addr}:${port} closed`,
    );
  }
  ok(
    !allowsAddress(policies(objs), "Egress", labels, "169.254.169.254", 443),
    "the cloud metadata service stays closed",
  );
  ok(!allowsAddress(policies(objs), "Egress", labels, "10.0.0.10", 5432), "other private ports stay closed");
});

Deno.test("k8s/pixie-pod-scope: the shipped configs take the scope from FSMPX_PIXIE_SCOPE, which deno task run may read", async () => {
  const env = { NODE_NAME: "n1", PIXIE_API_KEY: "k", PIXIE_CLUSTER: "c", NATS_USER: "u", NATS_PASSWORD: "p" };
  for (const file of ["k8s/config/config.yaml", "k8s/packet-capture/config.yaml"]) {
    const on = await loadConfig(join(ROOT, file), { ...env, FSMPX_PIXIE_SCOPE: "pods" });
    equal(on.config.pixie.scope, "pods", `${file} with the component`);
    const off = await loadConfig(join(ROOT, file), env);
    equal(off.config.pixie.scope, "node", `${file} without it`);
  }
  const run = (await denoTasks()).run ?? "";
  ok(
    taskAllowsEnv(run, "FSMPX_PIXIE_SCOPE"),
    "deno task run runs with --ignore-env: the variable must be allowed",
  );
  for (const v of ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "FSMPX_SERVICE_ACCOUNT_DIR"]) {
    ok(taskAllowsEnv(run, v), `and the in-cluster API's ${v}`);
  }
});

Deno.test("k8s components: their own namespaced resources name fsm-px (the base's namespace does not reach them)", async () => {
  const clusterScoped = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding"]);
  const outside: string[] = [];
  for (const component of ["packet-capture", "pixie-pod-scope"]) {
    const dir = join(ROOT, "k8s", component);
    const k = parseManifests(await Deno.readTextFile(join(dir, "kustomization.yaml")), component).docs[0]!
      .value as Obj;
    for (const file of (k.resources ?? []) as string[]) {
      for (const d of parseManifests(await Deno.readTextFile(join(dir, file)), file).docs) {
        if (!isObj(d.value) || clusterScoped.has(String(d.value.kind))) continue;
        if ((d.value.metadata as Obj).namespace !== "fsm-px") {
          outside.push(`k8s/${component}/${file} ${key(d.value)}`);
        }
      }
    }
  }
  deepEqual(outside, []);
});

const hasKubectl =
  (await new Deno.Command("sh", { args: ["-c", "command -v kubectl"], stdout: "null" }).output())
    .success;

/** `kubectl kustomize` of the base with `components`; the rendered documents. */
async function kustomize(components: string[]): Promise<{ text: string; docs: Obj[] }> {
  const dir = await Deno.makeTempDir();
  try {
    const rel = (p: string) =>
      join("..", ...Array(dir.split("/").length - 1).fill(".."), p).replace(/^\.\.\//, "");
    await Deno.writeTextFile(
      join(dir, "kustomization.yaml"),
      `resources:\n  - ${rel(join(ROOT, "k8s"))}\ncomponents:\n${
        components.map((c) => `  - ${rel(c)}\n`).join("")
      }`,
    );
    const out = await new Deno.Command("kubectl", {
      args: ["kustomize", dir],
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const text = new TextDecoder().decode(out.stdout);
    const parsed = parseManifests(text, "kubectl kustomize").docs;
    deepEqual(parsed.flatMap(validateManifest).map(formatProblem), []);
    // A Component's own resources get no namespace from the base's kustomization: each must name fsm-px itself.
    const clusterScoped = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding"]);
    deepEqual(
      parsed.map((d) => d.value).filter(isObj).filter((d) =>
        !clusterScoped.has(String(d.kind)) && (d.metadata as Obj).namespace !== "fsm-px"
      ).map(key),
      [],
      "namespaced objects outside fsm-px",
    );
    return { text, docs: parsed.map((d) => d.value).filter(isObj) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "k8s/pixie-pod-scope: renders with the real kustomize, alone and beside k8s/packet-capture/",
  ignore: !hasKubectl,
  fn: async () => {
    for (const components of [[COMPONENT], [join(ROOT, "k8s", "packet-capture"), COMPONENT]]) {
      const { docs } = await kustomize(components);
      const ds = docs.find((d) => d.kind === "DaemonSet" && (d.metadata as Obj).name === "fsm-px-sensor")!;
      const spec = podSpec(ds);
      equal(spec.automountServiceAccountToken, true);
      const env = ((spec.containers as Obj[])[0]!.env as Obj[]).filter((e) => e.name === "FSMPX_PIXIE_SCOPE");
      deepEqual(env, [{ name: "FSMPX_PIXIE_SCOPE", value: "pods" }]);
      ok(
        docs.some((d) =>
          d.kind === "ClusterRoleBinding" && (d.metadata as Obj).name === "fsm-px-pixie-pod-scope"
        ),
      );
      ok(
        docs.some((d) => d.kind === "NetworkPolicy" && (d.metadata as Obj).name === "fsm-px-sensor-kube-api"),
        "the API server egress policy",
      );
      if (components.length === 2) {
        equal(spec.hostNetwork, true, "packet capture's patch is kept");
        const cm = docs.find((d) =>
          d.kind === "ConfigMap" && String((d.metadata as Obj).name).startsWith("fsm-px-config")
        )!;
        const config = String((cm.data as Obj)["config.yaml"]);
        ok(config.includes("pod_metadata: kubernetes"), "packet capture's config");
      }
    }
  },
});
