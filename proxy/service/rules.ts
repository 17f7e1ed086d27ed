// The service proxy's desired state, computed whole from the informer caches on every sync (as
// kube-proxy's syncProxyRules rebuilds every rule): which (ip, port, protocol) listeners exist and,
// for each, the route a connection takes — the backends (pkg/proxy/topology.go's CategorizeEndpoints:
// topology hints, internal/externalTrafficPolicy Local), session affinity — plus the source-IP → node
// map that internalTrafficPolicy Local needs. Pure: no I/O; the value is immutable once built.

import {
  LabelTopologyZone,
  cidrContains,
  parseCIDR,
  parseIPv4,
  type EndpointSlice,
  type IPv4CIDR,
  type Node,
  type Service,
  type ServicePort,
} from "../../api/index.ts";
import { allBackends, usableBackends, type Backend } from "../endpoints.ts";

export type Protocol = "TCP" | "UDP";

/** Upstream's ServicePortName: one port of one Service, the unit of load balancing. */
export interface Route {
  /** "namespace/name:portName/PROTO": the key of round-robin and affinity state. */
  id: string;
  namespace: string;
  service: string;
  portName: string;
  protocol: Protocol;
  /** sessionAffinity ClientIP: how long a client sticks to its backend; 0 without affinity. */
  affinityTimeoutMs: number;
  /** Where connections go (empty never: a route without backends has no listener). */
  backends: readonly Backend[];
  /** internalTrafficPolicy Local: backends by the client's node; a client on no listed node is closed. */
  byClientNode?: ReadonlyMap<string, readonly Backend[]>;
}

export type ListenerKind = "ClusterIP" | "NodePort" | "HealthCheck";

export interface ListenerSpec {
  /** "PROTO/ip:port", unique on the host. */
  key: string;
  kind: ListenerKind;
  ip: string;
  port: number;
  protocol: Protocol;
  /** "namespace/name" of the Service (events go to it). */
  service: string;
  /** Forwarding listeners. */
  route?: Route;
  /** HealthCheck listeners: the node's ready local endpoints of the Service. */
  health?: { namespace: string; name: string; localEndpoints: number };
}

/** Which node a source address belongs to: node InternalIPs, pod IPs from endpoint slices, podCIDRs. */
export class ClientNodeResolver {
  constructor(
    private readonly byIP: ReadonlyMap<string, string>,
    private readonly cidrs: readonly { cidr: IPv4CIDR; node: string }[],
  ) {}

  nodeOf(ip: string): string | undefined {
    const v4 = ip.startsWith("::ffff:") ? ip.slice(7) : ip;
    const exact = this.byIP.get(v4);
    if (exact) return exact;
    const n = parseIPv4(v4);
    if (n === undefined) return undefined;
    return this.cidrs.find((c) => cidrContains(c.cidr, n))?.node;
  }
}

export interface ProxyState {
  listeners: ReadonlyMap<string, ListenerSpec>;
  /** Every ClusterIP of a Service that gets one (headless and ExternalName excluded), for --service-interface. */
  clusterIPs: ReadonlySet<string>;
  clients: ClientNodeResolver;
}

export interface RulesInput {
  services: readonly Readonly<Service>[];
  /** The slices of a Service, by "namespace/name". */
  slicesFor(serviceKey: string): readonly Readonly<EndpointSlice>[];
  nodes: readonly Readonly<Node>[];
  /** This proxy's zone: its nodes get NodePort listeners; topology hints are read for it. Unset: every node. */
  zone?: string;
  /** --nodeport-addresses: NodePort (and health check) addresses must lie in one of these. Empty: all. */
  nodePortAddresses?: readonly IPv4CIDR[];
}

/** The annotations that turn on topology-aware routing (the newer one first), and their "on" values. */
export const AnnotationTopologyMode = "service.kubernetes.io/topology-mode";
export const AnnotationTopologyAwareHints = "service.kubernetes.io/topology-aware-hints";
export const DEFAULT_AFFINITY_TIMEOUT_SECONDS = 10800;

export function nodeInternalIP(n: Readonly<Node>): string | undefined {
  const ip = n.status?.addresses?.find((a) => a.type === "InternalIP")?.address;
  return ip && parseIPv4(ip) !== undefined ? ip : undefined;
}

/** The ClusterIP a listener binds, or undefined for headless, ExternalName and non-IPv4 services. */
export function serviceClusterIP(svc: Readonly<Service>): string | undefined {
  const spec = svc.spec;
  if (!spec || spec.type === "ExternalName") return undefined;
  const ip = spec.clusterIP ?? spec.clusterIPs?.[0];
  if (!ip || ip === "None" || parseIPv4(ip) === undefined) return undefined;
  return ip;
}

function protocolOf(sp: ServicePort): Protocol | undefined {
  const p = sp.protocol ?? "TCP";
  return p === "TCP" || p === "UDP" ? p : undefined; // SCTP is not proxied
}

/**
 * Upstream's canUseTopology: the Service asks for it (topology-mode or the older topology-aware-hints
 * annotation set to Auto), this proxy has a zone, every ready endpoint carries zone hints, and at
 * least one is hinted for our zone. Otherwise hints are ignored altogether.
 */
function zoneHintFilter(svc: Readonly<Service>, slices: readonly Readonly<EndpointSlice>[], sp: ServicePort, zone: string | undefined): ((b: Backend) => boolean) | undefined {
  const a = svc.metadata.annotations ?? {};
  const mode = a[AnnotationTopologyMode] ?? a[AnnotationTopologyAwareHints];
  if (mode !== "Auto" && mode !== "auto") return undefined;
  if (!zone) return undefined;
  const hints = new Map<string, Set<string>>();
  for (const s of slices) {
    for (const e of s.endpoints ?? []) {
      const zones = e.hints?.forZones?.map((z) => z.name) ?? [];
      for (const ip of e.addresses ?? []) hints.set(ip, new Set([...(hints.get(ip) ?? []), ...zones]));
    }
  }
  let forUs = false;
  for (const b of allBackends(slices, sp)) {
    if (!b.ready) continue;
    const h = hints.get(b.ip);
    if (!h || h.size === 0) return undefined;
    if (h.has(zone)) forUs = true;
  }
  if (!forUs) return undefined;
  return (b) => hints.get(b.ip)?.has(zone) === true;
}

function inAny(cidrs: readonly IPv4CIDR[] | undefined, ip: string): boolean {
  if (!cidrs || cidrs.length === 0) return true;
  const n = parseIPv4(ip);
  return n !== undefined && cidrs.some((c) => cidrContains(c, n));
}

/** Builds the whole desired state. Services being deleted are gone already (as kube-proxy treats them). */
export function computeProxyState(input: RulesInput): ProxyState {
  const listeners = new Map<string, ListenerSpec>();
  const clusterIPs = new Set<string>();
  const add = (l: ListenerSpec) => {
    // NodePorts and ClusterIP:port pairs are unique by allocation; the first one wins if not.
    if (!listeners.has(l.key)) listeners.set(l.key, l);
  };

  // Our nodes: their InternalIPs get NodePort listeners; 127.0.0.1 stands for "any node of the zone".
  const ourNodes = input.nodes.filter((n) => input.zone === undefined || n.metadata.labels?.[LabelTopologyZone] === input.zone);
  const ourNodeNames = new Set(ourNodes.map((n) => n.metadata.name!));
  // Several nodes may share an address (containerd mode: every kubelet is 127.0.0.1); such an
  // address stands for all of them.
  const byAddr = new Map<string, Set<string>>();
  for (const n of ourNodes) {
    const ip = nodeInternalIP(n);
    if (ip && inAny(input.nodePortAddresses, ip)) byAddr.set(ip, new Set([...(byAddr.get(ip) ?? []), n.metadata.name!]));
  }
  if (inAny(input.nodePortAddresses, "127.0.0.1")) byAddr.set("127.0.0.1", new Set([...(byAddr.get("127.0.0.1") ?? []), ...ourNodeNames]));
  const nodePortAddrs = [...byAddr].map(([ip, nodes]) => ({ ip, nodes }));

  const byIP = new Map<string, string>();
  const cidrs: { cidr: IPv4CIDR; node: string }[] = [];
  for (const n of input.nodes) {
    const ip = nodeInternalIP(n);
    if (ip) byIP.set(ip, n.metadata.name!);
    for (const c of n.spec?.podCIDRs ?? (n.spec?.podCIDR ? [n.spec.podCIDR] : [])) {
      const parsed = parseCIDR(c);
      if (parsed) cidrs.push({ cidr: parsed, node: n.metadata.name! });
    }
  }

  for (const svc of input.services) {
    if (svc.metadata.deletionTimestamp) continue;
    const spec = svc.spec ?? {};
    const ns = svc.metadata.namespace ?? "default";
    const name = svc.metadata.name ?? "";
    const key = `${ns}/${name}`;
    const slices = input.slicesFor(key);
    for (const s of slices) {
      for (const e of s.endpoints ?? []) {
        if (!e.nodeName) continue;
        for (const ip of e.addresses ?? []) if (!byIP.has(ip)) byIP.set(ip, e.nodeName);
      }
    }
    const clusterIP = serviceClusterIP(svc);
    if (spec.type === "ExternalName") continue;
    if (clusterIP) clusterIPs.add(clusterIP);
    const affinityTimeoutMs =
      spec.sessionAffinity === "ClientIP" ? (spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? DEFAULT_AFFINITY_TIMEOUT_SECONDS) * 1000 : 0;
    const nodePorts = spec.type === "NodePort" || spec.type === "LoadBalancer";
    const externalLocal = nodePorts && spec.externalTrafficPolicy === "Local";

    for (const sp of spec.ports ?? []) {
      const protocol = protocolOf(sp);
      if (!protocol) continue;
      const portName = sp.name ?? "";
      const base = { id: `${key}:${portName}/${protocol}`, namespace: ns, service: name, portName, protocol, affinityTimeoutMs };
      const hinted = zoneHintFilter(svc, slices, sp, input.zone);
      const cluster = usableBackends(slices, sp, hinted);
      const any = cluster.length > 0 || usableBackends(slices, sp).length > 0;

      if (clusterIP && any) {
        let route: Route;
        if (spec.internalTrafficPolicy === "Local") {
          const byClientNode = new Map<string, Backend[]>();
          for (const node of new Set(allBackends(slices, sp).flatMap((b) => (b.nodeName ? [b.nodeName] : [])))) {
            const local = usableBackends(slices, sp, (b) => b.nodeName === node);
            if (local.length) byClientNode.set(node, local);
          }
          route = { ...base, backends: [], byClientNode };
        } else {
          route = { ...base, backends: cluster };
        }
        add({ key: `${protocol}/${clusterIP}:${sp.port}`, kind: "ClusterIP", ip: clusterIP, port: sp.port, protocol, service: key, route });
      }

      if (nodePorts && sp.nodePort) {
        for (const a of nodePortAddrs) {
          // externalTrafficPolicy Local: only the dialled node's endpoints (any node of ours for
          // 127.0.0.1); without one there is no listener, so the connection is refused.
          const backends = externalLocal ? usableBackends(slices, sp, (b) => b.nodeName !== undefined && a.nodes.has(b.nodeName)) : cluster;
          if (backends.length === 0) continue;
          add({ key: `${protocol}/${a.ip}:${sp.nodePort}`, kind: "NodePort", ip: a.ip, port: sp.nodePort, protocol, service: key, route: { ...base, backends } });
        }
      }
    }

    // The health check node port of a LoadBalancer with externalTrafficPolicy Local, on each of our
    // node addresses: 200 while the node has a ready local endpoint, 503 otherwise.
    if (spec.type === "LoadBalancer" && externalLocal && spec.healthCheckNodePort) {
      for (const a of nodePortAddrs) {
        if (a.ip === "127.0.0.1" && !ourNodes.some((n) => nodeInternalIP(n) === "127.0.0.1")) continue;
        const local = new Set<string>();
        for (const sp of spec.ports ?? []) {
          for (const b of allBackends(slices, sp)) if (b.ready && b.nodeName && a.nodes.has(b.nodeName)) local.add(b.ip);
        }
        add({
          key: `TCP/${a.ip}:${spec.healthCheckNodePort}`,
          kind: "HealthCheck",
          ip: a.ip,
          port: spec.healthCheckNodePort,
          protocol: "TCP",
          service: key,
          health: { namespace: ns, name, localEndpoints: local.size },
        });
      }
    }
  }
  return { listeners, clusterIPs, clients: new ClientNodeResolver(byIP, cidrs) };
}

/** The backends a connection from `clientIP` may use on `route` (empty: close it). */
export function backendsFor(route: Route, clientIP: string, clients: ClientNodeResolver): readonly Backend[] {
  if (!route.byClientNode) return route.backends;
  const node = clients.nodeOf(clientIP);
  return (node && route.byClientNode.get(node)) || [];
}
