// Builders shared by the DNS unit tests: a small cluster as listers, and the resolver over it.

import type { EndpointSlice, Namespace, Service } from "../../api/index.ts";
import { fakeLister } from "../../client/index.ts";
import { dnsIndexers, listerCache, type ClusterCache } from "./cache.ts";
import { Resolver } from "./resolver.ts";

export function ns(name: string): Namespace {
  return { apiVersion: "v1", kind: "Namespace", metadata: { name } };
}

export function svc(name: string, spec: Service["spec"], namespace = "default"): Service {
  return { apiVersion: "v1", kind: "Service", metadata: { name, namespace }, spec };
}

export interface Ep {
  ip: string;
  hostname?: string;
  ready?: boolean;
}

export function slice(service: string, eps: Ep[], ports: EndpointSlice["ports"], opts: { name?: string; namespace?: string } = {}): EndpointSlice {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name: opts.name ?? `${service}-abc`, namespace: opts.namespace ?? "default", labels: { "kubernetes.io/service-name": service } },
    addressType: "IPv4",
    endpoints: eps.map((e) => ({
      addresses: [e.ip],
      ...(e.hostname ? { hostname: e.hostname } : {}),
      ...(e.ready === undefined ? {} : { conditions: { ready: e.ready } }),
    })),
    ports,
  };
}

export function cacheOf(objs: { services?: Service[]; slices?: EndpointSlice[]; namespaces?: string[]; serial?: number }): ClusterCache {
  return listerCache({
    services: fakeLister(objs.services ?? [], dnsIndexers.services),
    endpointSlices: fakeLister(objs.slices ?? [], dnsIndexers.endpointSlices),
    namespaces: fakeLister((objs.namespaces ?? ["default", "kube-system"]).map(ns)),
    serial: () => objs.serial ?? 1700000000,
  });
}

/** A cluster with one of each kind of Service. */
export function sampleCluster(extra: { services?: Service[]; slices?: EndpointSlice[] } = {}): ClusterCache {
  return cacheOf({
    services: [
      svc("web", { clusterIP: "10.0.0.10", clusterIPs: ["10.0.0.10"], ports: [{ name: "http", port: 80, protocol: "TCP" }, { name: "dns", port: 53, protocol: "UDP" }] }),
      svc("db", { clusterIP: "None", ports: [{ name: "pg", port: 5432 }] }),
      svc("ext", { type: "ExternalName", externalName: "example.com" }),
      svc("alias", { type: "ExternalName", externalName: "web.default.svc.cluster.local" }),
      svc("empty", { clusterIP: "None", ports: [{ name: "x", port: 1 }] }),
      svc("bare", { clusterIP: "None" }),
      ...(extra.services ?? []),
    ],
    slices: [
      slice(
        "db",
        [
          { ip: "10.1.0.1", hostname: "db-0" },
          { ip: "10.1.0.2", hostname: "db-1", ready: true },
          { ip: "10.1.0.3", hostname: "db-2", ready: false },
          { ip: "10.1.0.4" },
        ],
        [{ name: "pg", protocol: "TCP", port: 5432 }],
      ),
      slice("web", [{ ip: "10.1.1.1" }], [{ name: "http", protocol: "TCP", port: 8080 }, { name: "dns", protocol: "UDP", port: 5353 }]),
      slice("bare", [{ ip: "10.1.2.1" }], undefined),
      ...(extra.slices ?? []),
    ],
  });
}

export function sampleResolver(extra?: Parameters<typeof sampleCluster>[0]): Resolver {
  return new Resolver(sampleCluster(extra), { domain: "cluster.local", ttl: 5, nameserverIPs: ["10.0.0.53"] });
}
