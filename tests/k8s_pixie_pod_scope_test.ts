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

/** An IPv4 address as a number. */
const ip4 = (a: string) => a.split(".").reduce((n, o) => n * 256 + Number(o), 0);
/** Whether `addr` is inside `cidr` (IPv4). */
function inCidr(addr: string, cidr: string): boolean {
  const [net, bits] = cidr.split("/");
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ip4(addr) / size) === Math.floor(ip4(net!) / size);
}

/**
 * Whether the NetworkPolicies let a pod with `labels` open a TCP connection to `addr:port` outside the cluster's
 * pods (the API server's address, as network plugins see it after the Service's translation): the union of the
 * egress rules of the policies that select the pod; no such policy, everything.
 */
function egressAllowed(policies: Obj[], labels: Obj, addr: string, port: number): boolean {
  const selecting = policies.filter((np) => {
    const spec = np.spec as Obj;
    const want = ((spec.podSelector as Obj).matchLabels ?? {}) as Obj;
    return Object.entries(want).every(([k, v]) => labels[k] === v) &&
      ((spec.policyTypes ?? []) as string[]).includes("Egress");
  });
  if (selecting.length === 0) return true;
  return selecting.some((np) =>
    (((np.spec as Obj).egress ?? []) as Obj[]).some((rule) => {
      const ports = (rule.ports ?? []) as Obj[];
      const portOk = ports.length === 0 ||
        ports.some((p) => (p.protocol ?? "TCP") === "TCP" && (p.port === undefined || p.port === port));
      const to = (rule.to ?? []) as Obj[];
      const peerOk = to.length === 0 || to.some((peer) => {
        const block = peer.ipBlock as Obj | undefined;
        return block !== undefined && inCidr(addr, String(block.cidr)) &&
          !((block.except ?? []) as string[]).some((e) => inCidr(addr, e));
      });
      return portOk && peerOk;
    })
  );
}

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
      egressAllowed(policies(objs), labels, addr, port),
      `the sensor cannot reach an API server at ${addr}:${port}`,
    );
    ok(!egressAllowed(policies(base), labels, addr, port), `the base alone keeps ${addr}:${port} closed`);
  }
  ok(
    !egressAllowed(policies(objs), labels, "169.254.169.254", 443),
    "the cloud metadata service stays closed",
  );
  ok(!egressAllowed(policies(objs), labels, "10.0.0.10", 5432), "other private ports stay closed");
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
