// The desired-listener computation: which listeners exist and where their routes go, from fake
// Services, EndpointSlices and Nodes.

import { describe, expect, it } from "vitest";
import type { Endpoint, EndpointSlice, Node, Service, ServiceSpec } from "../../api/index.ts";
import { backendsFor, computeProxyState, type RulesInput } from "./rules.ts";

function service(name: string, spec: ServiceSpec, annotations?: Record<string, string>): Service {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: "default", annotations },
    spec: { type: "ClusterIP", clusterIP: "127.20.0.5", ports: [{ name: "http", port: 80, protocol: "TCP" }], ...spec },
  };
}

function ep(ip: string, node: string, zone: string, more: Partial<Endpoint> = {}): Endpoint {
  return { addresses: [ip], nodeName: node, zone, conditions: { ready: true }, ...more };
}

function slice(svc: string, endpoints: Endpoint[], ports: NonNullable<EndpointSlice["ports"]> = [{ name: "http", port: 8080, protocol: "TCP" }]): EndpointSlice {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name: `${svc}-abc`, namespace: "default", labels: { "kubernetes.io/service-name": svc } },
    addressType: "IPv4",
    endpoints,
    ports,
  };
}

function node(name: string, zone: string, ip: string, podCIDR: string): Node {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name, labels: { "topology.kubernetes.io/zone": zone } },
    spec: { podCIDR, podCIDRs: [podCIDR] },
    status: { addresses: [{ type: "InternalIP", address: ip }] },
  };
}

const nodes = [node("a1", "za", "127.130.0.1", "127.130.0.0/24"), node("a2", "za", "127.130.1.1", "127.130.1.0/24"), node("b1", "zb", "127.131.0.1", "127.131.0.0/24")];
const threePods = [ep("127.130.0.2", "a1", "za"), ep("127.130.1.2", "a2", "za"), ep("127.131.0.2", "b1", "zb")];

function state(services: Service[], slices: EndpointSlice[], o: Partial<RulesInput> = {}) {
  return computeProxyState({
    services,
    slicesFor: (key) => slices.filter((s) => `default/${s.metadata.labels!["kubernetes.io/service-name"]}` === key),
    nodes,
    zone: "za",
    ...o,
  });
}

const ips = (bs: readonly { ip: string }[]) => bs.map((b) => b.ip);

describe("computeProxyState", () => {
  it("gives a ClusterIP service port with ready endpoints one listener routing to all of them", () => {
    const s = state([service("web", {})], [slice("web", threePods)]);
    expect([...s.listeners.keys()]).toEqual(["TCP/127.20.0.5:80"]);
    const l = s.listeners.get("TCP/127.20.0.5:80")!;
    expect(l.kind).toBe("ClusterIP");
    expect(l.route!.backends.map((b) => `${b.ip}:${b.port}`)).toEqual(["127.130.0.2:8080", "127.130.1.2:8080", "127.131.0.2:8080"]);
    expect(l.route!.affinityTimeoutMs).toBe(0);
  });

  it("opens no listener for a service port without usable endpoints, so connections are refused", () => {
    const s = state([service("web", {})], [slice("web", [ep("127.130.0.2", "a1", "za", { conditions: { ready: false } })])]);
    expect(s.listeners.size).toBe(0);
    expect(s.clusterIPs.has("127.20.0.5")).toBe(true); // the address still belongs to the Service
  });

  it("falls back to serving, terminating endpoints when none is ready", () => {
    const s = state([service("web", {})], [slice("web", [ep("127.130.0.2", "a1", "za", { conditions: { ready: false, serving: true, terminating: true } })])]);
    expect(ips(s.listeners.get("TCP/127.20.0.5:80")!.route!.backends)).toEqual(["127.130.0.2"]);
  });

  it("skips headless and ExternalName services", () => {
    const s = state(
      [service("headless", { clusterIP: "None" }), service("ext", { type: "ExternalName", externalName: "example.com", clusterIP: undefined })],
      [slice("headless", threePods), slice("ext", threePods)],
    );
    expect(s.listeners.size).toBe(0);
    expect(s.clusterIPs.size).toBe(0);
  });

  it("proxies UDP ports on their own listener and ignores SCTP", () => {
    const svc = service("dns", { ports: [{ name: "dns", port: 53, protocol: "UDP" }, { name: "dns-tcp", port: 53, protocol: "TCP" }, { name: "s", port: 99, protocol: "SCTP" }] });
    const sl = slice("dns", threePods, [{ name: "dns", port: 1053, protocol: "UDP" }, { name: "dns-tcp", port: 1053, protocol: "TCP" }, { name: "s", port: 99, protocol: "SCTP" }]);
    expect([...state([svc], [sl]).listeners.keys()].sort()).toEqual(["TCP/127.20.0.5:53", "UDP/127.20.0.5:53"]);
  });

  it("carries ClientIP affinity with its timeout, 10800 s by default", () => {
    const s = state([service("a", { sessionAffinity: "ClientIP" }), service("b", { clusterIP: "127.20.0.6", sessionAffinity: "ClientIP", sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } })], [slice("a", threePods), slice("b", threePods)]);
    expect(s.listeners.get("TCP/127.20.0.5:80")!.route!.affinityTimeoutMs).toBe(10800_000);
    expect(s.listeners.get("TCP/127.20.0.6:80")!.route!.affinityTimeoutMs).toBe(60_000);
  });

  it("listens on NodePorts of this zone's node addresses and 127.0.0.1 only, filtered by --nodeport-addresses", () => {
    const svc = service("web", { type: "NodePort", ports: [{ name: "http", port: 80, nodePort: 30080, protocol: "TCP" }] });
    const all = [...state([svc], [slice("web", threePods)]).listeners.values()].filter((l) => l.kind === "NodePort").map((l) => l.ip);
    expect(all.sort()).toEqual(["127.0.0.1", "127.130.0.1", "127.130.1.1"]);
    const only = state([svc], [slice("web", threePods)], { nodePortAddresses: [{ network: 0x7f820000, prefix: 24, size: 256 }] });
    expect([...only.listeners.values()].filter((l) => l.kind === "NodePort").map((l) => l.ip)).toEqual(["127.130.0.1"]);
  });

  it("with externalTrafficPolicy Local routes a node's NodePort only to its own endpoints, and has no listener on a node without any", () => {
    const svc = service("web", { type: "NodePort", externalTrafficPolicy: "Local", ports: [{ name: "http", port: 80, nodePort: 30080, protocol: "TCP" }] });
    const s = state([svc], [slice("web", [ep("127.130.0.2", "a1", "za"), ep("127.131.0.2", "b1", "zb")])]);
    expect(ips(s.listeners.get("TCP/127.130.0.1:30080")!.route!.backends)).toEqual(["127.130.0.2"]);
    expect(s.listeners.has("TCP/127.130.1.1:30080")).toBe(false); // a2 has none
    // 127.0.0.1 stands for any node of the zone: only za's endpoints.
    expect(ips(s.listeners.get("TCP/127.0.0.1:30080")!.route!.backends)).toEqual(["127.130.0.2"]);
    // The ClusterIP is not affected by externalTrafficPolicy.
    expect(ips(s.listeners.get("TCP/127.20.0.5:80")!.route!.backends)).toHaveLength(2);
  });

  it("serves the health check node port of a Local LoadBalancer on each of our nodes with its local endpoint count", () => {
    const svc = service("lb", { type: "LoadBalancer", externalTrafficPolicy: "Local", healthCheckNodePort: 31999, ports: [{ name: "http", port: 80, nodePort: 30080, protocol: "TCP" }] });
    const s = state([svc], [slice("lb", [ep("127.130.0.2", "a1", "za"), ep("127.130.0.3", "a1", "za"), ep("127.131.0.2", "b1", "zb")])]);
    expect(s.listeners.get("TCP/127.130.0.1:31999")!.health).toEqual({ namespace: "default", name: "lb", localEndpoints: 2 });
    expect(s.listeners.get("TCP/127.130.1.1:31999")!.health!.localEndpoints).toBe(0);
    expect(s.listeners.has("TCP/127.0.0.1:31999")).toBe(false);
  });

  it("with internalTrafficPolicy Local routes by the client's node: node IP, podCIDR or pod IP; unknown clients get nothing", () => {
    const svc = service("web", { internalTrafficPolicy: "Local" });
    const s = state([svc], [slice("web", [...threePods, ep("127.200.0.9", "b1", "zb")])]);
    const route = s.listeners.get("TCP/127.20.0.5:80")!.route!;
    expect(ips(backendsFor(route, "127.130.0.1", s.clients))).toEqual(["127.130.0.2"]); // a1's InternalIP
    expect(ips(backendsFor(route, "127.130.1.77", s.clients))).toEqual(["127.130.1.2"]); // inside a2's podCIDR
    expect(ips(backendsFor(route, "::ffff:127.200.0.9", s.clients))).toEqual(["127.131.0.2", "127.200.0.9"]); // a pod of b1
    expect(backendsFor(route, "127.0.0.1", s.clients)).toEqual([]);
  });

  it("prefers endpoints hinted for our zone when the Service asks for topology and every endpoint has hints", () => {
    const hinted = [
      ep("127.130.0.2", "a1", "za", { hints: { forZones: [{ name: "za" }] } }),
      ep("127.131.0.2", "b1", "zb", { hints: { forZones: [{ name: "zb" }] } }),
      ep("127.131.0.3", "b1", "zb", { hints: { forZones: [{ name: "za" }] } }),
    ];
    const svc = service("web", {}, { "service.kubernetes.io/topology-mode": "Auto" });
    expect(ips(state([svc], [slice("web", hinted)]).listeners.get("TCP/127.20.0.5:80")!.route!.backends)).toEqual(["127.130.0.2", "127.131.0.3"]);
    // Without the annotation: hints are ignored.
    expect(ips(state([service("web", {})], [slice("web", hinted)]).listeners.get("TCP/127.20.0.5:80")!.route!.backends)).toHaveLength(3);
    // One ready endpoint without hints: all of them (upstream's all-or-nothing rule).
    const partial = [...hinted, ep("127.131.0.4", "b1", "zb")];
    expect(ips(state([svc], [slice("web", partial)]).listeners.get("TCP/127.20.0.5:80")!.route!.backends)).toHaveLength(4);
    // No hint for our zone: all of them.
    const elsewhere = hinted.map((e) => ({ ...e, hints: { forZones: [{ name: "zb" }] } }));
    expect(ips(state([svc], [slice("web", elsewhere)]).listeners.get("TCP/127.20.0.5:80")!.route!.backends)).toHaveLength(3);
  });

  it("treats an address shared by several nodes (containerd mode: all on 127.0.0.1) as all of them", () => {
    const shared = [node("c1", "za", "127.0.0.1", "10.88.1.0/24"), node("c2", "za", "127.0.0.1", "10.88.2.0/24")];
    const svc = service("lb", { type: "LoadBalancer", externalTrafficPolicy: "Local", healthCheckNodePort: 31999, ports: [{ name: "http", port: 80, nodePort: 30080, protocol: "TCP" }] });
    const s = state([svc], [slice("lb", [ep("10.88.1.5", "c1", "za"), ep("10.88.2.5", "c2", "za")])], { nodes: shared });
    expect([...s.listeners.keys()].sort()).toEqual(["TCP/127.0.0.1:30080", "TCP/127.0.0.1:31999", "TCP/127.20.0.5:80"]);
    expect(ips(s.listeners.get("TCP/127.0.0.1:30080")!.route!.backends)).toEqual(["10.88.1.5", "10.88.2.5"]);
    expect(s.listeners.get("TCP/127.0.0.1:31999")!.health!.localEndpoints).toBe(2);
    expect(s.clients.nodeOf("10.88.2.77")).toBe("c2");
  });

  it("drops services being deleted", () => {
    const svc = service("web", {});
    svc.metadata.deletionTimestamp = "2026-01-01T00:00:00Z";
    expect(state([svc], [slice("web", threePods)]).listeners.size).toBe(0);
  });
});
