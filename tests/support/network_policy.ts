/**
 * What a set of NetworkPolicies lets through between a pod and an address that is not a pod's (a node, the API
 * server, the internet), as network plugins apply them: the union of the rules of the policies that select the
 * pod for that direction; no such policy, everything. Only `ipBlock` peers can match such an address: a
 * host-network pod's traffic is its node's (NetworkPolicy's common implementation), which pod and namespace
 * selectors do not match. IPv4 only.
 * @module
 */
import type { Obj } from "./k8s_component.ts";

const ip4 = (a: string) => a.split(".").reduce((n, o) => n * 256 + Number(o), 0);

/** Whether `addr` is inside `cidr` (IPv4). */
export function inCidr(addr: string, cidr: string): boolean {
  const [net, bits] = cidr.split("/");
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ip4(addr) / size) === Math.floor(ip4(net!) / size);
}

/**
 * Whether `policies` let a pod with `labels` open a TCP connection to `addr:port` (egress), or let `addr` open one
 * to the pod's `port` (ingress).
 */
export function allowsAddress(
  policies: Obj[],
  direction: "Ingress" | "Egress",
  labels: Obj,
  addr: string,
  port: number,
): boolean {
  const selecting = policies.filter((np) => {
    const spec = np.spec as Obj;
    const want = ((spec.podSelector as Obj).matchLabels ?? {}) as Obj;
    const types = (spec.policyTypes ?? (direction === "Ingress" ? ["Ingress"] : [])) as string[];
    return Object.entries(want).every(([k, v]) => labels[k] === v) && types.includes(direction);
  });
  if (selecting.length === 0) return true;
  const rulesKey = direction === "Ingress" ? "ingress" : "egress";
  const peersKey = direction === "Ingress" ? "from" : "to";
  return selecting.some((np) =>
    (((np.spec as Obj)[rulesKey] ?? []) as Obj[]).some((rule) => {
      const ports = (rule.ports ?? []) as Obj[];
      const portOk = ports.length === 0 ||
        ports.some((p) => (p.protocol ?? "TCP") === "TCP" && (p.port === undefined || p.port === port));
      const peers = (rule[peersKey] ?? []) as Obj[];
      const peerOk = peers.length === 0 || peers.some((peer) => {
        const block = peer.ipBlock as Obj | undefined;
        return block !== undefined && inCidr(addr, String(block.cidr)) &&
          !((block.except ?? []) as string[]).some((e) => inCidr(addr, e));
      });
      return portOk && peerOk;
    })
  );
}
