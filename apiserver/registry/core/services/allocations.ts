// What a Service holds in the two bitmaps, and how create, update and delete change that: upstream's
// pkg/registry/core/service/storage/alloc.go (allocations are made before the write and rolled
// back if it fails; releases happen after it succeeds), plus the repair run at apiserver start
// (pkg/registry/core/service/ipallocator/controller/repair.go and portallocator/controller/repair.go).

import type { KubeObject } from "../../../../api/index.ts";
import { formatFieldError, invalid as fieldInvalid } from "../../../../api/validation/field.ts";
import { validateServiceSpec } from "../../../../api/validation/core.ts";
import type { Backend } from "../../../storage/index.ts";
import { dropTypeDependentFields } from "./strategy.ts";
import { errors } from "../../../errors.ts";
import {
  AllocationBitmap,
  DEFAULT_SERVICE_CLUSTER_IP_RANGE,
  DEFAULT_SERVICE_NODE_PORT_RANGE,
  IPRange,
  PortRange,
  RangeAllocator,
  RangeFullError,
  SERVICE_IPS_KEY,
  SERVICE_NODE_PORTS_KEY,
} from "./allocator.ts";

export interface ServiceRangeOptions {
  /** --service-cluster-ip-range (default 10.96.0.0/16). */
  serviceClusterIPRange?: string;
  /** --service-node-port-range (default 30000-32767). */
  serviceNodePortRange?: string;
}

interface Port {
  name?: string;
  port?: number;
  protocol?: string;
  nodePort?: number;
}
interface Spec {
  type?: string;
  clusterIP?: string;
  clusterIPs?: string[];
  ports?: Port[];
  ipFamilies?: string[];
  ipFamilyPolicy?: string;
  externalTrafficPolicy?: string;
  healthCheckNodePort?: number;
  allocateLoadBalancerNodePorts?: boolean;
}

/** Offsets allocated (or to release) in each bitmap. */
export interface Allocation {
  ips: number[];
  ports: number[];
}

const empty = (): Allocation => ({ ips: [], ports: [] });

function specOf(svc: KubeObject): Spec | undefined {
  const s = svc.spec;
  return s && typeof s === "object" && !Array.isArray(s) ? (s as Spec) : undefined;
}

const typeOf = (s: Spec | undefined) => s?.type ?? "ClusterIP";
export const needsNodePorts = (s: Spec | undefined) =>
  typeOf(s) === "NodePort" || (typeOf(s) === "LoadBalancer" && s?.allocateLoadBalancerNodePorts !== false);
const needsHealthCheckPort = (s: Spec | undefined) => typeOf(s) === "LoadBalancer" && s?.externalTrafficPolicy === "Local";

function invalidService(svc: KubeObject, field: string, value: unknown, detail: string) {
  const fe = fieldInvalid(field, value, detail);
  return errors.invalid("", "Service", svc.metadata.name ?? svc.metadata.generateName ?? "", [
    { field, type: fe.type, message: formatFieldError(fe) },
  ]);
}

export interface RepairReport {
  /** Bits set in the store with no Service holding them (freed). */
  leakedIPs: string[];
  leakedPorts: number[];
  /** Services' addresses the bitmap did not have (set). */
  missingIPs: string[];
  missingPorts: number[];
  /** One line per address held by more than one Service (the later ones are reported). */
  duplicates: { namespace: string; name: string; reason: string; message: string }[];
  /** Services whose address is outside the configured range. */
  outOfRange: { namespace: string; name: string; message: string }[];
}

export class ServiceAllocator {
  readonly ipRange: IPRange;
  readonly portRange: PortRange;
  readonly ips: RangeAllocator;
  readonly ports: RangeAllocator;

  constructor(
    private readonly backend: Backend,
    opts: ServiceRangeOptions = {},
    random: () => number = Math.random,
  ) {
    this.ipRange = new IPRange(opts.serviceClusterIPRange ?? DEFAULT_SERVICE_CLUSTER_IP_RANGE);
    this.portRange = new PortRange(opts.serviceNodePortRange ?? DEFAULT_SERVICE_NODE_PORT_RANGE);
    this.ips = new RangeAllocator(backend, SERVICE_IPS_KEY, this.ipRange.cidr, this.ipRange.size, this.ipRange.staticBand, random);
    this.ports = new RangeAllocator(backend, SERVICE_NODE_PORTS_KEY, this.portRange.toString(), this.portRange.size, this.portRange.staticBand, random);
  }

  async rollback(a: Allocation): Promise<void> {
    await this.ips.release(...a.ips);
    await this.ports.release(...a.ports);
  }

  /** What a stored Service holds: its ClusterIP (if in range) and its node ports. */
  held(svc: KubeObject): Allocation {
    const s = specOf(svc);
    const out = empty();
    if (!s) return out;
    if (typeOf(s) !== "ExternalName") {
      for (const ip of s.clusterIPs?.length ? s.clusterIPs : s.clusterIP ? [s.clusterIP] : []) {
        const off = this.ipRange.offsetOf(ip);
        if (off !== undefined) out.ips.push(off);
      }
    }
    const ports = new Set<number>();
    for (const p of s.ports ?? []) if (p.nodePort) ports.add(p.nodePort);
    if (s.healthCheckNodePort) ports.add(s.healthCheckNodePort);
    for (const p of ports) {
      const off = this.portRange.offsetOf(p);
      if (off !== undefined) out.ports.push(off);
    }
    return out;
  }

  private async allocateIP(svc: KubeObject, s: Spec, a: Allocation): Promise<void> {
    const requested = s.clusterIP || s.clusterIPs?.[0] || "";
    if (requested === "None") {
      s.clusterIP = "None";
      s.clusterIPs = ["None"];
      return;
    }
    // The cluster is single-stack IPv4, as kube-apiserver with one IPv4 --service-cluster-ip-range.
    const family = s.ipFamilies?.[0];
    if (s.ipFamilyPolicy === "PreferDualStack" && family !== "IPv6" && (s.ipFamilies?.length ?? 0) > 1) s.ipFamilies = ["IPv4"];
    if (family === "IPv6" || (s.ipFamilies?.length ?? 0) > 1 || s.ipFamilyPolicy === "RequireDualStack") {
      if (s.ipFamilyPolicy === "RequireDualStack") throw invalidService(svc, "spec.ipFamilyPolicy", s.ipFamilyPolicy, "this cluster is not configured for dual-stack services");
      const bad = family === "IPv6" ? 0 : 1;
      throw invalidService(svc, `spec.ipFamilies[${bad}]`, s.ipFamilies![bad], "not configured on this cluster");
    }
    let ip: string;
    if (requested) {
      const off = this.ipRange.offsetOf(requested);
      if (off === undefined) {
        throw invalidService(svc, "spec.clusterIPs", [requested], `failed to allocate IP ${requested}: the provided IP (${requested}) is not in the valid range. The range of valid IPs is ${this.ipRange.cidr}`);
      }
      if (!(await this.ips.allocate(off))) {
        throw invalidService(svc, "spec.clusterIPs", [requested], `failed to allocate IP ${requested}: provided IP is already allocated`);
      }
      a.ips.push(off);
      ip = requested;
    } else {
      try {
        const off = await this.ips.allocateNext();
        a.ips.push(off);
        ip = this.ipRange.ipAt(off);
      } catch (e) {
        if (e instanceof RangeFullError) throw errors.internal(`failed to allocate a serviceIP: ${e.message}`);
        throw e;
      }
    }
    s.clusterIP = ip;
    s.clusterIPs = [ip];
    s.ipFamilies ??= ["IPv4"];
    s.ipFamilyPolicy ??= "SingleStack";
  }

  /** Claims `port` for this service (already claimed by it in `mine`: fine). */
  private async claimPort(svc: KubeObject, field: string, port: number, a: Allocation, mine: Set<number>): Promise<void> {
    if (mine.has(port)) return;
    const off = this.portRange.offsetOf(port);
    if (off === undefined) {
      throw invalidService(svc, field, port, `provided port is not in the valid range. The range of valid ports is ${this.portRange.toString()}`);
    }
    if (!(await this.ports.allocate(off))) throw invalidService(svc, field, port, "provided port is already allocated");
    a.ports.push(off);
    mine.add(port);
  }

  private async nextPort(a: Allocation, mine: Set<number>): Promise<number> {
    try {
      const off = await this.ports.allocateNext();
      a.ports.push(off);
      const port = this.portRange.base + off;
      mine.add(port);
      return port;
    } catch (e) {
      if (e instanceof RangeFullError) throw errors.internal(`failed to allocate a nodePort: ${e.message}`);
      throw e;
    }
  }

  /** Node ports for every port of `s` (requested ones claimed, the rest allocated). `mine`: ports the service already holds. */
  private async allocatePorts(svc: KubeObject, s: Spec, a: Allocation, mine: Set<number>): Promise<void> {
    const ports = needsNodePorts(s) ? (s.ports ?? []) : [];
    // Requested ports first, so an automatic one never takes a port asked for later in the list.
    for (let i = 0; i < ports.length; i++) {
      const p = ports[i]!;
      if (p.nodePort) await this.claimPort(svc, `spec.ports[${i}].nodePort`, p.nodePort, a, mine);
    }
    // The same service port over two protocols shares one node port, as upstream.
    const byServicePort = new Map<number, number>();
    for (const p of ports) if (p.nodePort && p.port !== undefined) byServicePort.set(p.port, p.nodePort);
    for (const p of ports) {
      if (p.nodePort) continue;
      const shared = p.port !== undefined ? byServicePort.get(p.port) : undefined;
      p.nodePort = shared ?? (await this.nextPort(a, mine));
      if (p.port !== undefined) byServicePort.set(p.port, p.nodePort);
    }
    if (needsHealthCheckPort(s)) {
      if (s.healthCheckNodePort) await this.claimPort(svc, "spec.healthCheckNodePort", s.healthCheckNodePort, a, mine);
      else s.healthCheckNodePort = await this.nextPort(a, mine);
    }
  }

  /**
   * Allocates what a new Service needs, filling spec.clusterIP(s) and nodePorts. Nothing is
   * allocated for a spec that fails validation (the create fails on that instead). On error
   * nothing stays allocated.
   */
  async allocateCreate(svc: KubeObject): Promise<Allocation> {
    const a = empty();
    const s = specOf(svc);
    if (!s || validateServiceSpec(s).length > 0) return a;
    try {
      if (typeOf(s) !== "ExternalName") await this.allocateIP(svc, s, a);
      await this.allocatePorts(svc, s, a, new Set());
    } catch (e) {
      await this.rollback(a);
      throw e;
    }
    return a;
  }

  /**
   * An update: keeps what the old object held when the new one omits it (kubectl apply and replace
   * send no clusterIP or nodePort), allocates what the new type needs, and says what to release once
   * the write succeeds (a ClusterIP given up for ExternalName, node ports given up for ClusterIP).
   */
  async allocateUpdate(next: KubeObject, old: KubeObject): Promise<{ allocated: Allocation; release: Allocation }> {
    const allocated = empty();
    const s = specOf(next);
    const os = specOf(old) ?? {};
    if (!s) return { allocated, release: empty() };
    dropTypeDependentFields(s, os);
    const newType = typeOf(s);
    // Patch in the values the old object was given.
    if (newType !== "ExternalName" && !s.clusterIP && !s.clusterIPs?.length && os.clusterIP && typeOf(os) !== "ExternalName") {
      s.clusterIP = os.clusterIP;
      s.clusterIPs = os.clusterIPs ?? [os.clusterIP];
    }
    if (s.clusterIP && !s.clusterIPs?.length) s.clusterIPs = [s.clusterIP];
    if (needsNodePorts(s) && needsNodePorts(os)) {
      for (const p of s.ports ?? []) {
        if (p.nodePort) continue;
        const prev = (os.ports ?? []).find((o) => o.port === p.port && (o.protocol ?? "TCP") === (p.protocol ?? "TCP")) ?? (os.ports ?? []).find((o) => o.port === p.port);
        if (prev?.nodePort) p.nodePort = prev.nodePort;
      }
    }
    if (needsHealthCheckPort(s) && needsHealthCheckPort(os) && !s.healthCheckNodePort && os.healthCheckNodePort) s.healthCheckNodePort = os.healthCheckNodePort;
    if (validateServiceSpec(s).length > 0) return { allocated, release: empty() };

    const oldHeld = this.held(old);
    try {
      if (newType !== "ExternalName" && typeOf(os) === "ExternalName") await this.allocateIP(next, s, allocated);
      const oldPorts = new Set(oldHeld.ports.map((o) => this.portRange.base + o));
      await this.allocatePorts(next, s, allocated, oldPorts);
    } catch (e) {
      await this.rollback(allocated);
      throw e;
    }
    // Whatever the old object held and the new one does not is released after the write.
    const newHeld = this.held(next);
    const release: Allocation = {
      ips: oldHeld.ips.filter((o) => !newHeld.ips.includes(o)),
      ports: oldHeld.ports.filter((o) => !newHeld.ports.includes(o)),
    };
    return { allocated, release };
  }

  /**
   * The repair loop's pass, run at apiserver start: rebuilds both bitmaps from the Services in the
   * store and writes them with compare-and-swap (re-reading and redoing the pass if another
   * apiserver changed a bitmap meanwhile). Leaked bits are freed, missing ones set, addresses held by
   * two Services reported.
   */
  async repair(): Promise<RepairReport> {
    for (;;) {
      const ipSnap = await this.ips.snapshot();
      const portSnap = await this.ports.snapshot();
      const services = (await this.backend.list("/registry/services/")).kvs.map((kv) => JSON.parse(kv.value) as KubeObject);
      services.sort((x, y) => String(x.metadata.creationTimestamp ?? "").localeCompare(String(y.metadata.creationTimestamp ?? "")));
      const report: RepairReport = { leakedIPs: [], leakedPorts: [], missingIPs: [], missingPorts: [], duplicates: [], outOfRange: [] };
      const ipBits = new AllocationBitmap(this.ipRange.size);
      const portBits = new AllocationBitmap(this.portRange.size);
      for (const svc of services) {
        const s = specOf(svc);
        if (!s) continue;
        const ns = svc.metadata.namespace ?? "";
        const name = svc.metadata.name ?? "";
        if (typeOf(s) !== "ExternalName") {
          for (const ip of s.clusterIPs ?? (s.clusterIP ? [s.clusterIP] : [])) {
            if (!ip || ip === "None") continue;
            const off = this.ipRange.offsetOf(ip);
            if (off === undefined) {
              report.outOfRange.push({ namespace: ns, name, message: `Cluster IP [IPv4]:${ip} is not within the configured Service CIDR ${this.ipRange.cidr}; please recreate service` });
            } else if (ipBits.has(off)) {
              report.duplicates.push({ namespace: ns, name, reason: "ClusterIPAlreadyAllocated", message: `Cluster IP [IPv4]:${ip} was assigned to multiple services; please recreate service` });
            } else ipBits.set(off);
          }
        }
        const seen = new Set<number>();
        for (const port of [...(s.ports ?? []).map((p) => p.nodePort), s.healthCheckNodePort]) {
          if (!port || seen.has(port)) continue;
          seen.add(port);
          const off = this.portRange.offsetOf(port);
          if (off === undefined) {
            report.outOfRange.push({ namespace: ns, name, message: `Port ${port} is not within the port range ${this.portRange.toString()}; please recreate service` });
          } else if (portBits.has(off)) {
            report.duplicates.push({ namespace: ns, name, reason: "PortAlreadyAllocated", message: `Port ${port} was assigned to multiple services; please recreate service` });
          } else portBits.set(off);
        }
      }
      for (let i = 0; i < this.ipRange.size; i++) {
        if (ipSnap.bitmap.has(i) && !ipBits.has(i)) report.leakedIPs.push(this.ipRange.ipAt(i));
        if (!ipSnap.bitmap.has(i) && ipBits.has(i)) report.missingIPs.push(this.ipRange.ipAt(i));
      }
      for (let i = 0; i < this.portRange.size; i++) {
        if (portSnap.bitmap.has(i) && !portBits.has(i)) report.leakedPorts.push(this.portRange.base + i);
        if (!portSnap.bitmap.has(i) && portBits.has(i)) report.missingPorts.push(this.portRange.base + i);
      }
      const ipsOk = (ipSnap.revision !== 0 && ipBits.toBase64() === ipSnap.bitmap.toBase64()) || (await this.ips.restore(ipBits, ipSnap.revision));
      if (!ipsOk) continue;
      const portsOk = (portSnap.revision !== 0 && portBits.toBase64() === portSnap.bitmap.toBase64()) || (await this.ports.restore(portBits, portSnap.revision));
      if (!portsOk) continue;
      return report;
    }
  }
}

/** What the repair found, as the log lines kube-apiserver's repair controllers print. */
export function describeRepair(r: RepairReport): string[] {
  const out: string[] = [];
  if (r.leakedIPs.length) out.push(`service IP repair: ${r.leakedIPs.length} leaked IP(s) freed (${r.leakedIPs.slice(0, 10).join(", ")}${r.leakedIPs.length > 10 ? ", ..." : ""})`);
  if (r.missingIPs.length) out.push(`service IP repair: ${r.missingIPs.length} IP(s) in use by Services but not allocated, now marked (${r.missingIPs.slice(0, 10).join(", ")}${r.missingIPs.length > 10 ? ", ..." : ""})`);
  if (r.leakedPorts.length) out.push(`service node port repair: ${r.leakedPorts.length} leaked port(s) freed (${r.leakedPorts.slice(0, 10).join(", ")}${r.leakedPorts.length > 10 ? ", ..." : ""})`);
  if (r.missingPorts.length) out.push(`service node port repair: ${r.missingPorts.length} port(s) in use by Services but not allocated, now marked (${r.missingPorts.slice(0, 10).join(", ")}${r.missingPorts.length > 10 ? ", ..." : ""})`);
  for (const d of [...r.duplicates, ...r.outOfRange]) out.push(`service allocation repair: service ${d.namespace}/${d.name}: ${d.message}`);
  return out;
}

interface EventSink {
  store(group: string, resource: string): { create(namespace: string, obj: KubeObject): Promise<KubeObject> };
  now(): string;
}

/**
 * Logs the repair's findings and records a Warning Event on each Service holding a duplicate or
 * out-of-range address (reasons as upstream: ClusterIPAlreadyAllocated, ClusterIPOutOfRange,
 * PortAlreadyAllocated, PortOutOfRange).
 */
export async function reportRepair(sink: EventSink, r: RepairReport, log: (line: string) => void = (l) => console.warn(l)): Promise<void> {
  for (const line of describeRepair(r)) log(line);
  const problems = [
    ...r.duplicates.map((d) => ({ ...d })),
    ...r.outOfRange.map((d) => ({ ...d, reason: d.message.startsWith("Port") ? "PortOutOfRange" : "ClusterIPOutOfRange" })),
  ];
  for (const p of problems) {
    const now = sink.now();
    const event: KubeObject = {
      apiVersion: "v1",
      kind: "Event",
      // Named as client-go's recorder names events: <object>.<unix nanoseconds in hex>.
      metadata: { namespace: p.namespace, name: `${p.name}.${(BigInt(Date.parse(now) || Date.now()) * 1_000_000n + BigInt(problems.indexOf(p))).toString(16)}` },
      involvedObject: { apiVersion: "v1", kind: "Service", namespace: p.namespace, name: p.name },
      reason: p.reason,
      message: p.message,
      type: "Warning",
      source: { component: "ipallocator-repair-controller" },
      reportingComponent: "ipallocator-repair-controller",
      action: p.reason.startsWith("Port") ? "PortAllocation" : "ClusterIPAllocation",
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    } as KubeObject;
    try {
      await sink.store("", "events").create(p.namespace, event);
    } catch (e) {
      log(`service allocation repair: cannot record event for ${p.namespace}/${p.name}: ${String(e)}`);
    }
  }
}
