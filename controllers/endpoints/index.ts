// The Endpoints controller: for every Service with a selector, an Endpoints object of the same name
// listing the selected pods' addresses (ready and not ready) per resolved port set
// (pkg/controller/endpoint's syncService). Written only when it changes; deleted with the service.

import type { EndpointAddress, EndpointPort, Endpoints, EndpointSubset, Pod, Service } from "../../api/index.ts";
import { isNotFound } from "../../client/errors.ts";
import { splitKey } from "../../client/store.ts";
import type { Client, Lister, ObjectKey, ReconcileContext, Reconciler, ResourceClient, Result } from "../../client/types.ts";
import { deepCopy } from "../podcontrol.ts";
import { canonical, findPort, hostnameFor, isPodReady, podIPv4, selectedPods, serviceSelector, shouldPodBeInEndpoints } from "./util.ts";

export { PodServiceHandlers } from "./util.ts";

/** Set on the Endpoints of headless services (clusterIP None), as upstream does. */
export const LabelHeadlessService = "service.kubernetes.io/headless";

export interface EndpointsControllerDeps {
  client: Client;
  services: Lister<Service>;
  pods: Lister<Pod>;
  endpoints: Lister<Endpoints>;
}

export class EndpointsController implements Reconciler {
  private readonly epClient: ResourceClient<Endpoints>;

  constructor(private readonly deps: EndpointsControllerDeps) {
    this.epClient = deps.client.resource<Endpoints>("", "endpoints");
  }

  /** Key: the service's "namespace/name". */
  async reconcile(ctx: ReconcileContext, key: ObjectKey): Promise<Result> {
    const { namespace, name } = splitKey(key);
    const svc = this.deps.services.get(key);
    if (!svc) {
      // The service is gone: so are its endpoints (upstream deletes without looking at the cache).
      try {
        await this.epClient.delete(namespace, name);
        ctx.log.info({ service: key }, "service deleted; deleted its endpoints");
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
      return {};
    }
    // Without a selector, the Endpoints are maintained by hand (or by another controller).
    if (!serviceSelector(svc)) return {};

    const subsets = desiredSubsets(svc, selectedPods(svc, this.deps.pods));
    const labels = endpointsLabels(svc);
    const current = this.deps.endpoints.get(key);
    if (current && canonical(repackSubsets(current.subsets ?? [])) === canonical(subsets) && canonical(current.metadata.labels ?? {}) === canonical(labels)) {
      return {};
    }
    if (!current) {
      await this.epClient.create(namespace, { apiVersion: "v1", kind: "Endpoints", metadata: { name, namespace, labels }, subsets });
      ctx.log.info({ service: key }, "created endpoints");
      return {};
    }
    const next = deepCopy(current);
    next.metadata.labels = labels;
    next.subsets = subsets;
    // resourceVersion from the cache: a stale cache is a 409, retried after the informer catches up.
    await this.epClient.update(next);
    ctx.log.debug({ service: key }, "updated endpoints");
    return {};
  }
}

function endpointsLabels(svc: Readonly<Service>): Record<string, string> {
  const labels: Record<string, string> = { ...(svc.metadata.labels ?? {}) };
  if (svc.spec?.clusterIP === "None") labels[LabelHeadlessService] = "";
  else delete labels[LabelHeadlessService];
  return labels;
}

/**
 * The subsets for a service and the pods it selects: each pod's address under the ports it
 * serves, ready or not ready, then repacked so pods serving the same ports share a subset.
 */
export function desiredSubsets(svc: Readonly<Service>, pods: readonly Readonly<Pod>[]): EndpointSubset[] {
  const publishNotReady = svc.spec?.publishNotReadyAddresses === true;
  const subsets: EndpointSubset[] = [];
  for (const pod of pods) {
    if (!shouldPodBeInEndpoints(pod, publishNotReady)) continue;
    const addr: EndpointAddress = {
      ip: podIPv4(pod)!,
      targetRef: { kind: "Pod", namespace: pod.metadata.namespace, name: pod.metadata.name, uid: pod.metadata.uid },
    };
    if (pod.spec?.nodeName) addr.nodeName = pod.spec.nodeName;
    const hostname = hostnameFor(pod, svc);
    if (hostname) addr.hostname = hostname;
    const ready = publishNotReady || isPodReady(pod);
    const ports = svc.spec?.ports ?? [];
    const place = (epPorts: EndpointPort[] | undefined): EndpointSubset =>
      ready ? { addresses: [addr], ...(epPorts ? { ports: epPorts } : {}) } : { notReadyAddresses: [addr], ...(epPorts ? { ports: epPorts } : {}) };
    if (ports.length === 0) {
      // Headless without ports: addresses only.
      if (svc.spec?.clusterIP === "None") subsets.push(place(undefined));
      continue;
    }
    for (const sp of ports) {
      const port = findPort(pod, sp);
      if (port === undefined) continue; // this pod does not serve that named port
      const epp: EndpointPort = { port, protocol: sp.protocol ?? "TCP" };
      if (sp.name) epp.name = sp.name;
      if (sp.appProtocol) epp.appProtocol = sp.appProtocol;
      subsets.push(place([epp]));
    }
  }
  return repackSubsets(subsets);
}

const addrKey = (a: Readonly<EndpointAddress>) => `${a.ip}/${a.targetRef?.uid ?? ""}`;
const portKey = (p: Readonly<EndpointPort>) => `${p.name ?? ""}/${p.protocol ?? "TCP"}/${p.port}`;

/**
 * endpoints.RepackSubsets: one subset per distinct set of ports, holding every address (ready, or
 * not ready when it is ready nowhere) that serves exactly that set; everything sorted so equal
 * content compares equal.
 */
export function repackSubsets(subsets: readonly Readonly<EndpointSubset>[]): EndpointSubset[] {
  const addrs = new Map<string, { addr: EndpointAddress; ready: boolean; ports: Map<string, EndpointPort> }>();
  for (const s of subsets) {
    for (const [list, ready] of [
      [s.addresses ?? [], true],
      [s.notReadyAddresses ?? [], false],
    ] as const) {
      for (const a of list) {
        const k = addrKey(a);
        let e = addrs.get(k);
        if (!e) addrs.set(k, (e = { addr: deepCopy(a), ready, ports: new Map() }));
        e.ready ||= ready;
        for (const p of s.ports ?? []) e.ports.set(portKey(p), { ...p });
      }
    }
  }
  const groups = new Map<string, EndpointSubset>();
  for (const { addr, ready, ports } of addrs.values()) {
    const sorted = [...ports.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const gk = sorted.map(([k]) => k).join(",");
    let g = groups.get(gk);
    if (!g) groups.set(gk, (g = sorted.length > 0 ? { ports: sorted.map(([, p]) => p) } : {}));
    const field = ready ? "addresses" : "notReadyAddresses";
    (g[field] ??= []).push(addr);
  }
  const byAddr = (a: EndpointAddress, b: EndpointAddress) => (addrKey(a) < addrKey(b) ? -1 : addrKey(a) > addrKey(b) ? 1 : 0);
  const out = [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, g]) => g);
  for (const g of out) {
    g.addresses?.sort(byAddr);
    g.notReadyAddresses?.sort(byAddr);
  }
  return out;
}
