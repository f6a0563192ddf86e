/**
 * The packet-capture variant (k8s/packet-capture/, a kustomize Component): its patches applied to the base
 * deployment the way kustomize's strategic merge does (maps merged, `containers` merged by name), then every
 * resulting object validated against its Kubernetes schema, and the privileges checked to be exactly what capture
 * needs. Where kubectl is installed, the README's overlay is rendered by the real kustomize too.
 */
import { denoTasks, taskAllowsEnv } from "./support/deno_tasks.ts";
import { deepEqual, equal, ok } from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { loadConfig } from "../config/load.ts";
import { packetTapsFromConfig } from "../cli/packet_taps.ts";
import { bpfFilter } from "../packets/taps.ts";
import { formatProblem, parseManifests, validateManifest } from "./support/k8s_validate.ts";
import { isObj, key, type Obj, renderComponent } from "./support/k8s_component.ts";
import { allowsAddress } from "./support/network_policy.ts";
import { gatedTest } from "./support/tools.ts";
import { LiveCapture } from "../packets/live_capture.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const OVERLAY = join(ROOT, "k8s", "packet-capture");

const rendered = async () => (await renderComponent(ROOT, OVERLAY)).objs;

Deno.test("k8s/packet-capture: the patched objects validate against their Kubernetes schemas", async () => {
  const objs = await rendered();
  const problems = [...objs.values()].flatMap((o) => {
    const text = stringify(o);
    return parseManifests(text, `rendered ${key(o)}`).docs.flatMap(validateManifest);
  });
  deepEqual(problems.map(formatProblem), []);
});

Deno.test("k8s/packet-capture: host network, root with CAP_NET_RAW and CAP_SETGID only, read-only root, pods read-only", async () => {
  const objs = await rendered();
  const ds = objs.get("DaemonSet/fsm-px-sensor") as Obj;
  const spec = ((ds.spec as Obj).template as Obj).spec as Obj;
  equal(spec.hostNetwork, true);
  equal(spec.dnsPolicy, "ClusterFirstWithHostNet");
  equal(spec.automountServiceAccountToken, true);
  const c = (spec.containers as Obj[]).find((x) => x.name === "sensor")!;
  const sc = c.securityContext as Obj;
  deepEqual(sc.capabilities, { drop: ["ALL"], add: ["NET_RAW", "SETGID"] });
  equal(sc.allowPrivilegeEscalation, false);
  equal(sc.readOnlyRootFilesystem, true);
  equal((spec.containers as Obj[]).length, 1, "the base's container was patched, not duplicated");

  const ns = objs.get("Namespace/fsm-px") as Obj;
  equal(((ns.metadata as Obj).labels as Obj)["pod-security.kubernetes.io/enforce"], "privileged");
  const role = objs.get("ClusterRole/fsm-px-pod-reader") as Obj;
  deepEqual(role.rules, [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] }]);
  const binding = objs.get("ClusterRoleBinding/fsm-px-pod-reader") as Obj;
  deepEqual(binding.subjects, [{ kind: "ServiceAccount", name: "fsm-px-sensor", namespace: "fsm-px" }]);
});

Deno.test("k8s/packet-capture: NATS lets the host-network sensors in, which reach it from their nodes' addresses", async () => {
  const objs = await rendered();
  const { base } = await renderComponent(ROOT, OVERLAY);
  const sts = objs.get("StatefulSet/nats") as Obj;
  const natsLabels = ((((sts.spec as Obj).template as Obj).metadata as Obj).labels) as Obj;
  const policies = (m: Map<string, Obj>) => [...m.values()].filter((o) => o.kind === "NetworkPolicy");
  // A host-network pod's connections come from its node's address, which the NATS policy's podSelector for the
  // sensors does not match (NetworkPolicy's usual implementation for host-network pods).
  for (const node of ["10.0.0.10", "172.16.3.4", "192.168.1.10", "100.64.0.7"]) {
    ok(
      allowsAddress(policies(objs), "Ingress", natsLabels, node, 4222),
      `a sensor on node ${node} reaches NATS`,
    );
    ok(!allowsAddress(policies(objs), "Ingress", natsLabels, node, 6222), `node ${node} is no NATS route`);
    ok(
      !allowsAddress(policies(base), "Ingress", natsLabels, node, 4222),
      "the base keeps NATS to its sensors' pods",
    );
  }
  ok(!allowsAddress(policies(objs), "Ingress", natsLabels, "203.0.113.9", 4222), "nor from the internet");
});

Deno.test("k8s/packet-capture: its config captures on the node, with pod metadata, and the image has tcpdump", async () => {
  const env = { NODE_NAME: "n1", PIXIE_API_KEY: "k", PIXIE_CLUSTER: "c", NATS_USER: "u", NATS_PASSWORD: "p" };
  const { config } = await loadConfig(join(OVERLAY, "config.yaml"), env);
  equal(config.packets.interface, "any");
  equal(config.packets.pod_metadata, "kubernetes");
  const taps = packetTapsFromConfig(config);
  ok(taps.length >= 2);
  ok(bpfFilter(taps).includes("udp and portrange 40000-40999"));
  const docker = await Deno.readTextFile(join(ROOT, "Dockerfile"));
  ok(/apt-get install[^\n]*tcpdump/.test(docker), "the image installs tcpdump");
  const run = (await denoTasks()).run ?? "";
  ok(run.includes("--allow-run=tcpdump"), "the run task may start tcpdump");
  ok(taskAllowsEnv(run, "KUBERNETES_SERVICE_HOST"), "and read the in-cluster API address");
});

Deno.test({
  name: "k8s/packet-capture: the README's overlay renders with the real kustomize (kubectl)",
  ignore: !(await new Deno.Command("sh", { args: ["-c", "command -v kubectl"], stdout: "null" }).output())
    .success,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const rel = (p: string) =>
        join("..", ...Array(dir.split("/").length - 1).fill(".."), p).replace(/^\.\.\//, "");
      await Deno.writeTextFile(
        join(dir, "kustomization.yaml"),
        `resources:\n  - ${rel(join(ROOT, "k8s"))}\ncomponents:\n  - ${rel(OVERLAY)}\n`,
      );
      const out = await new Deno.Command("kubectl", {
        args: ["kustomize", dir],
        stdout: "piped",
        stderr: "piped",
      })
        .output();
      const text = new TextDecoder().decode(out.stdout);
      equal(out.code, 0, new TextDecoder().decode(out.stderr));
      const docs = parseManifests(text, "kubectl kustomize").docs;
      const problems = docs.flatMap(validateManifest).map(formatProblem);
      deepEqual(problems, []);
      const ds = docs.find((d) => isObj(d.value) && d.value.kind === "DaemonSet")!.value as Obj;
      equal((((ds.spec as Obj).template as Obj).spec as Obj).hostNetwork, true);
      ok(text.includes("pod_metadata: kubernetes"), "the component's config replaced the base's");
      ok(docs.some((d) => isObj(d.value) && d.value.kind === "ClusterRoleBinding"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

const rootTest = await gatedTest(import.meta.url, ["root", "tcpdump"]);

rootTest(
  "k8s/packet-capture: the sensor's tcpdump starts with exactly the capabilities the DaemonSet grants",
  async () => {
    // The container as the kubelet starts it: root, every capability dropped but the patch's `add` (the bounding
    // set, which root's exec makes its permitted and effective set), no_new_privs from allowPrivilegeEscalation:
    // false. tcpdump as root always changes user (-Z root: to root), and that calls initgroups(): CAP_SETGID.
    const objs = await rendered();
    const ds = objs.get("DaemonSet/fsm-px-sensor") as Obj;
    const spec = ((ds.spec as Obj).template as Obj).spec as Obj;
    const c = (spec.containers as Obj[]).find((x) => x.name === "sensor")!;
    const sc = c.securityContext as Obj;
    const caps = (sc.capabilities as Obj).add as string[];
    equal((spec.securityContext as Obj).runAsUser, 0);
    const dir = await Deno.makeTempDir({ prefix: "fsmpx-caps-" });
    try {
      const wrapper = join(dir, "tcpdump");
      const bounding = ["-all", ...caps.map((x) => `+${x.toLowerCase()}`)].join(",");
      const nnp = sc.allowPrivilegeEscalation === false ? "--no-new-privs" : "";
      await Deno.writeTextFile(
        wrapper,
        `#!/bin/sh\nexec setpriv --bounding-set ${bounding} --inh-caps -all ${nnp} -- tcpdump "$@"\n`,
      );
      await Deno.chmod(wrapper, 0o755);
      const cap = await LiveCapture.start({
        tcpdump: wrapper,
        iface: "lo",
        filter: "udp port 9",
        snaplen: 1500,
        bufferMib: 1,
        startTimeoutMs: 20_000,
      });
      await cap.close();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
