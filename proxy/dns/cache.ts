// What the DNS resolver reads: the informer caches of Services, EndpointSlices and Namespaces, with
// the indexes that make every lookup a map access (CoreDNS's dnsController keeps the same three
// caches and indexes services by name and cluster IP, endpoints by service and address). Nothing here
// calls the API: a query is answered from memory.

import type { EndpointSlice, Namespace, Service } from "../../api/index.ts";
import type { Lister } from "../../client/index.ts";
import { INDEX_BY_SERVICE, indexSliceByService } from "../endpoints.ts";

/** Services by each of their IPv4 cluster IPs (not "None"). */
export const INDEX_BY_CLUSTER_IP = "byClusterIP";
/** EndpointSlices by each IPv4 address of their endpoints. */
export const INDEX_BY_ADDRESS = "byAddress";

export function serviceClusterIPs(svc: Readonly<Service>): string[] {
  const spec = svc.spec ?? {};
  const ips = spec.clusterIPs && spec.clusterIPs.length > 0 ? spec.clusterIPs : spec.clusterIP ? [spec.clusterIP] : [];
  return ips.filter((ip) => ip !== "None" && ip !== "" && ip.includes("."));
}

export function indexServiceByClusterIP(svc: Readonly<Service>): string[] {
  return svc.spec?.type === "ExternalName" ? [] : serviceClusterIPs(svc);
}

export function indexSliceByAddress(slice: Readonly<EndpointSlice>): string[] {
  if (slice.addressType !== "IPv4") return [];
  const out = new Set<string>();
  for (const e of slice.endpoints ?? []) for (const a of e.addresses ?? []) out.add(a);
  return [...out];
}

/** The read-only view of the cluster a Resolver answers from. */
export interface ClusterCache {
  service(namespace: string, name: string): Readonly<Service> | undefined;
  /** The EndpointSlices of one Service (by the kubernetes.io/service-name label). */
  slicesOf(namespace: string, service: string): readonly Readonly<EndpointSlice>[];
  namespaceExists(namespace: string): boolean;
  servicesByClusterIP(ip: string): readonly Readonly<Service>[];
  slicesByAddress(ip: string): readonly Readonly<EndpointSlice>[];
  /** The SOA serial: seconds since the epoch of the last change seen (CoreDNS's Modified()). */
  serial(): number;
}

export interface CacheListers {
  services: Lister<Service>;
  endpointSlices: Lister<EndpointSlice>;
  namespaces: Lister<Namespace>;
  /** Defaults to the time the cache was made. */
  serial?: () => number;
}

/**
 * A ClusterCache over listers that carry INDEX_BY_CLUSTER_IP (services) and INDEX_BY_SERVICE and
 * INDEX_BY_ADDRESS (slices); `addDNSIndexers` adds them to informers before they start.
 */
export function listerCache(l: CacheListers): ClusterCache {
  const made = Math.floor(Date.now() / 1000);
  return {
    service: (ns, name) => l.services.get(`${ns}/${name}`),
    slicesOf: (ns, name) => l.endpointSlices.byIndex(INDEX_BY_SERVICE, `${ns}/${name}`),
    namespaceExists: (ns) => l.namespaces.get(ns) !== undefined,
    servicesByClusterIP: (ip) => l.services.byIndex(INDEX_BY_CLUSTER_IP, ip),
    slicesByAddress: (ip) => l.endpointSlices.byIndex(INDEX_BY_ADDRESS, ip),
    serial: l.serial ?? (() => made),
  };
}

/** The indexers a listerCache needs, by lister. */
export const dnsIndexers = {
  services: { [INDEX_BY_CLUSTER_IP]: indexServiceByClusterIP },
  endpointSlices: { [INDEX_BY_SERVICE]: indexSliceByService, [INDEX_BY_ADDRESS]: indexSliceByAddress },
};
