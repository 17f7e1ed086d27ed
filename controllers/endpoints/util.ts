// Helpers shared by the Endpoints and EndpointSlice controllers: which pods back a service, their
// addresses, named-port resolution, and the mapping of pod events to service keys
// (pkg/controller/util/endpoint and pkg/api/v1/pod FindPort).

import { selectorFromSet, type Pod, type Protocol, type Service, type ServicePort } from "../../api/index.ts";
import type { Lister, ObjectKey } from "../../client/types.ts";
import { isPodReady, keyOf } from "../podcontrol.ts";

export { isPodReady };

/** The service's selector as a Selector, or undefined for a service without one (its endpoints are someone else's). */
export function serviceSelector(svc: Readonly<Service>) {
  const sel = svc.spec?.selector;
  return sel && Object.keys(sel).length > 0 ? selectorFromSet(sel) : undefined;
}

/** The pods a service selects, in its namespace. */
export function selectedPods(svc: Readonly<Service>, pods: Lister<Pod>): readonly Readonly<Pod>[] {
  const sel = serviceSelector(svc);
  return sel ? pods.listNamespace(svc.metadata.namespace ?? "", sel) : [];
}

/** The pod's IPv4 address (podIPs first, then podIP), or undefined. */
export function podIPv4(pod: Readonly<Pod>): string | undefined {
  const ips = [...(pod.status?.podIPs ?? []).map((p) => p.ip), pod.status?.podIP ?? ""];
  return ips.find((ip) => !!ip && ip.includes(".") && !ip.includes(":"));
}

/**
 * endpointutil.ShouldPodBeInEndpoints: a pod with an address that is not finished; a terminating
 * pod only when `includeTerminating` (EndpointSlices carry it with terminating: true).
 */
export function shouldPodBeInEndpoints(pod: Readonly<Pod>, includeTerminating: boolean): boolean {
  if (!podIPv4(pod)) return false;
  const phase = pod.status?.phase;
  if (phase === "Succeeded" || phase === "Failed") return false;
  if (!includeTerminating && pod.metadata.deletionTimestamp) return false;
  return true;
}

/** endpointutil.ShouldSetHostname: the pod's hostname when its subdomain is the service's name. */
export function hostnameFor(pod: Readonly<Pod>, svc: Readonly<Service>): string | undefined {
  const h = pod.spec?.hostname;
  return h && pod.spec?.subdomain === svc.metadata.name && pod.metadata.namespace === svc.metadata.namespace ? h : undefined;
}

/**
 * podutil.FindPort: the container port a service port targets on this pod. A numeric targetPort (or
 * none: the service port) is used as is; a named one is looked up among the containers' ports with
 * the same protocol, and undefined means "this pod does not serve that port".
 */
export function findPort(pod: Readonly<Pod>, port: Readonly<ServicePort>): number | undefined {
  const target = port.targetPort ?? port.port;
  if (typeof target === "number") return target;
  const protocol: Protocol = port.protocol ?? "TCP";
  for (const c of pod.spec?.containers ?? []) {
    for (const cp of c.ports ?? []) if (cp.name === target && (cp.protocol ?? "TCP") === protocol) return cp.containerPort;
  }
  // A string holding a number ("8080") is a port number in Kubernetes' IntOrString parsing.
  return /^\d+$/.test(target) ? Number(target) : undefined;
}

/** The services (with selectors) in the pod's namespace whose selector matches the pod's labels. */
export function servicesForPod(pod: Readonly<Pod>, services: Lister<Service>): Readonly<Service>[] {
  return services.listNamespace(pod.metadata.namespace ?? "").filter((s) => serviceSelector(s)?.matches(pod.metadata.labels) ?? false);
}

/** Whether a pod update can change any endpoint (podEndpointsChanged): address, readiness, deletion, node, hostname, labels. */
export function podEndpointsChanged(a: Readonly<Pod>, b: Readonly<Pod>): boolean {
  const view = (p: Readonly<Pod>) =>
    JSON.stringify([
      podIPv4(p),
      isPodReady(p),
      !!p.metadata.deletionTimestamp,
      p.status?.phase,
      p.spec?.nodeName,
      p.spec?.hostname,
      p.spec?.subdomain,
      p.metadata.labels ?? {},
      (p.spec?.containers ?? []).map((c) => c.ports ?? []),
    ]);
  return view(a) !== view(b);
}

/** Maps pod events to the keys of the services selecting the pod (before and after a label change). */
export class PodServiceHandlers {
  constructor(private readonly services: Lister<Service>) {}

  onAdd(pod: Readonly<Pod>): ObjectKey[] {
    return servicesForPod(pod, this.services).map(keyOf);
  }

  onUpdate(oldPod: Readonly<Pod>, cur: Readonly<Pod>): ObjectKey[] {
    if (oldPod.metadata.resourceVersion === cur.metadata.resourceVersion || !podEndpointsChanged(oldPod, cur)) return [];
    return [...new Set([...this.onAdd(oldPod), ...this.onAdd(cur)])];
  }

  onDelete(pod: Readonly<Pod>): ObjectKey[] {
    return this.onAdd(pod);
  }
}

/** JSON with object keys sorted, for comparing desired and current state regardless of key order. */
export function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) =>
    val && typeof val === "object" && !Array.isArray(val)
      ? Object.fromEntries(Object.entries(val as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : val,
  );
}
