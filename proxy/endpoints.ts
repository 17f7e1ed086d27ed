// What the service proxy and the ingress controller both need from the API: the backends of one
// Service port, read from its EndpointSlices as kube-proxy reads them (pkg/proxy/endpointslicecache.go
// and topology.go): a slice belongs to a Service by the `kubernetes.io/service-name` label; its port
// is matched to the Service port by name and protocol; an endpoint is used when ready (an absent
// condition counts as ready), and when none is ready, the serving-and-terminating ones are used
// instead, so connections drain instead of failing during a rollout.

import { LabelServiceName, type EndpointSlice, type Service, type ServicePort, type Protocol } from "../api/index.ts";

/** One address:port a connection for a Service port may go to. */
export interface Backend {
  ip: string;
  port: number;
  nodeName?: string;
  zone?: string;
  /** "namespace/name" of the pod (targetRef), when the slice names one. */
  pod?: string;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
}

/** The slice's port for a Service port: same name ("" when unnamed) and protocol (default TCP). */
function slicePortFor(slice: EndpointSlice, sp: ServicePort): number | undefined {
  const name = sp.name ?? "";
  const proto: Protocol = sp.protocol ?? "TCP";
  for (const p of slice.ports ?? []) {
    if ((p.name ?? "") === name && (p.protocol ?? "TCP") === proto && typeof p.port === "number") return p.port;
  }
  return undefined;
}

/**
 * Every endpoint of `slices` (the Service's slices) for the Service port `sp`, de-duplicated by
 * ip:port (an endpoint may sit in two slices while the controller moves it), in a stable order.
 */
export function allBackends(slices: readonly Readonly<EndpointSlice>[], sp: ServicePort): Backend[] {
  const seen = new Map<string, Backend>();
  for (const s of slices) {
    if (s.addressType !== "IPv4") continue;
    const port = slicePortFor(s, sp);
    if (port === undefined) continue;
    for (const e of s.endpoints ?? []) {
      const c = e.conditions ?? {};
      const ready = c.ready !== false;
      const serving = c.serving ?? ready;
      const terminating = c.terminating === true;
      for (const ip of e.addresses ?? []) {
        const key = `${ip}:${port}`;
        const prev = seen.get(key);
        // An endpoint listed twice: keep the first, unless a later copy is ready and it is not.
        if (prev && (prev.ready || !ready)) continue;
        const ref = e.targetRef;
        seen.set(key, {
          ip,
          port,
          nodeName: e.nodeName,
          zone: e.zone,
          pod: ref && ref.kind === "Pod" && ref.name ? `${ref.namespace ?? s.metadata.namespace}/${ref.name}` : undefined,
          ready,
          serving,
          terminating,
        });
      }
    }
  }
  return [...seen.values()].sort((a, b) => (a.ip === b.ip ? a.port - b.port : a.ip < b.ip ? -1 : 1));
}

/**
 * The backends traffic should go to: the ready ones; if there are none, the serving-and-terminating
 * ones (upstream's terminating-endpoint fallback); optionally restricted by `filter` (a node for
 * internal/externalTrafficPolicy Local) with the same fallback applied after the restriction.
 */
export function usableBackends(slices: readonly Readonly<EndpointSlice>[], sp: ServicePort, filter?: (b: Backend) => boolean): Backend[] {
  const all = allBackends(slices, sp).filter((b) => !filter || filter(b));
  const ready = all.filter((b) => b.ready);
  if (ready.length > 0) return ready;
  return all.filter((b) => b.serving && b.terminating);
}

/** "namespace/name" of the Service a slice belongs to, or undefined for a slice with no such label. */
export function sliceServiceKey(slice: Readonly<EndpointSlice>): string | undefined {
  const svc = slice.metadata.labels?.[LabelServiceName];
  return svc ? `${slice.metadata.namespace}/${svc}` : undefined;
}

/** The Service port named `name` (or numbered `port`), as an Ingress backend or SRV lookup names it. */
export function findServicePort(svc: Readonly<Service>, ref: { name?: string; number?: number }): ServicePort | undefined {
  const ports = svc.spec?.ports ?? [];
  if (ref.name) return ports.find((p) => p.name === ref.name);
  if (ref.number !== undefined) return ports.find((p) => p.port === ref.number);
  return ports.length === 1 ? ports[0] : undefined;
}

/** An index function for an EndpointSlice informer: slices by their Service's "namespace/name". */
export const INDEX_BY_SERVICE = "byService";
export function indexSliceByService(slice: Readonly<EndpointSlice>): string[] {
  const k = sliceServiceKey(slice);
  return k ? [k] : [];
}
