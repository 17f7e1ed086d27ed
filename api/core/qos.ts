// A pod's QoS class (v1qos.GetPodQOS, cpu and memory only): shared by the apiserver, which sets
// status.qosClass on create, and the kubelet, which places the pod's cgroup by it.

interface ContainerLike {
  resources?: { requests?: Record<string, unknown>; limits?: Record<string, unknown> };
}

export type QOSClass = "Guaranteed" | "Burstable" | "BestEffort";

/** Tolerates untyped input (the apiserver calls it before validation). */
export function podQOSClass(spec: { containers?: readonly ContainerLike[]; initContainers?: readonly ContainerLike[] } | undefined): QOSClass {
  const list = (v: unknown): ContainerLike[] => (Array.isArray(v) ? (v as ContainerLike[]) : []);
  const containers = [...list(spec?.containers), ...list(spec?.initContainers)].filter((c) => typeof c === "object" && c !== null);
  let any = false;
  let guaranteed = true;
  for (const c of containers) {
    const req = asRecord(asRecord(c.resources).requests);
    const lim = asRecord(asRecord(c.resources).limits);
    for (const r of ["cpu", "memory"]) {
      if (req[r] !== undefined || lim[r] !== undefined) any = true;
      if (lim[r] === undefined) guaranteed = false;
      else if (req[r] !== undefined && String(req[r]) !== String(lim[r])) guaranteed = false;
    }
  }
  if (!any) return "BestEffort";
  return guaranteed ? "Guaranteed" : "Burstable";
}

function asRecord(v: unknown): Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}
