// Services: the apiserver allocates a ClusterIP from the service range and NodePorts from 30000-32767.

import type { KubeObject, ResourceInfo } from "../../../../api/index.ts";
import { errors } from "../../../errors.ts";
import { genericStrategy, type Strategy, type StrategyContext } from "../../strategy.ts";

/** The service ClusterIP range. Not routed anywhere: the proxy owns it and blackholes the rest. */
export const SERVICE_CIDR = { base: (10 << 24) | (96 << 16), size: 1 << 16, text: "10.96.0.0/16" };
export const NODE_PORT_RANGE = { min: 30000, max: 32767 };

interface ServicePort {
  port?: number;
  nodePort?: number;
}
interface ServiceSpec {
  type?: string;
  clusterIP?: string;
  clusterIPs?: string[];
  ports?: ServicePort[];
  ipFamilies?: string[];
}

function ipToString(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join(".");
}

function ipToNumber(ip: string): number | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
  if (!m) return undefined;
  return ((+m[1] << 24) | (+m[2] << 16) | (+m[3] << 8) | +m[4]) >>> 0;
}

function inUse(ctx: StrategyContext): { ips: Set<string>; ports: Set<number> } {
  const ips = new Set<string>();
  const ports = new Set<number>();
  for (const it of ctx.registry.store("", "services").cache.list("/registry/services/").items) {
    const spec = (it.obj.spec ?? {}) as ServiceSpec;
    if (spec.clusterIP) ips.add(spec.clusterIP);
    for (const p of spec.ports ?? []) if (p.nodePort) ports.add(p.nodePort);
  }
  return { ips, ports };
}

function allocateIP(used: Set<string>): string {
  // Random probing from a random start, skipping the network address and .1 (the kubernetes service).
  const start = 2 + Math.floor(Math.random() * (SERVICE_CIDR.size - 3));
  for (let i = 0; i < SERVICE_CIDR.size - 3; i++) {
    const off = 2 + ((start - 2 + i) % (SERVICE_CIDR.size - 3));
    const ip = ipToString((SERVICE_CIDR.base + off) >>> 0);
    if (!used.has(ip)) return ip;
  }
  throw errors.internal(`failed to allocate a serviceIP: range is full`);
}

function allocatePort(used: Set<number>): number {
  const span = NODE_PORT_RANGE.max - NODE_PORT_RANGE.min + 1;
  const start = Math.floor(Math.random() * span);
  for (let i = 0; i < span; i++) {
    const p = NODE_PORT_RANGE.min + ((start + i) % span);
    if (!used.has(p)) return p;
  }
  throw errors.internal("failed to allocate a nodePort: range is full");
}

function invalidIP(obj: KubeObject, ip: string, why: string) {
  return errors.invalid("", "Service", obj.metadata.name ?? "", [
    { field: "spec.clusterIPs[0]", type: "FieldValueInvalid", message: `spec.clusterIPs[0]: Invalid value: "${ip}": ${why}` },
  ]);
}

export function serviceStrategy(info: ResourceInfo): Strategy {
  return genericStrategy(info, {
    prepareForCreate(obj, ctx) {
      obj.status = { loadBalancer: {} };
      const spec = (obj.spec ?? {}) as ServiceSpec;
      obj.spec = spec;
      const used = inUse(ctx);
      if (spec.type !== "ExternalName") {
        if (!spec.clusterIP && spec.clusterIPs?.length) spec.clusterIP = spec.clusterIPs[0];
        if (!spec.clusterIP) spec.clusterIP = allocateIP(used.ips);
        else if (spec.clusterIP !== "None") {
          const n = ipToNumber(spec.clusterIP);
          if (n === undefined || n < SERVICE_CIDR.base >>> 0 || n >= (SERVICE_CIDR.base + SERVICE_CIDR.size) >>> 0) {
            throw invalidIP(obj, spec.clusterIP, `provided IP is not in the valid range. The range of valid IPs is ${SERVICE_CIDR.text}`);
          }
          if (used.ips.has(spec.clusterIP)) throw invalidIP(obj, spec.clusterIP, "provided IP is already allocated");
        }
        spec.clusterIPs = [spec.clusterIP];
        spec.ipFamilies ??= ["IPv4"];
      }
      if (spec.type === "NodePort" || spec.type === "LoadBalancer") {
        for (const p of spec.ports ?? []) {
          if (p.nodePort) {
            if (used.ports.has(p.nodePort)) {
              throw errors.invalid("", "Service", obj.metadata.name ?? "", [
                { field: "spec.ports[0].nodePort", type: "FieldValueInvalid", message: `spec.ports[0].nodePort: Invalid value: ${p.nodePort}: provided port is already allocated` },
              ]);
            }
          } else p.nodePort = allocatePort(used.ports);
          used.ports.add(p.nodePort);
        }
      }
    },
    prepareForUpdate(obj, old, ctx) {
      obj.status = old.status;
      const spec = (obj.spec ?? {}) as ServiceSpec;
      const oldSpec = (old.spec ?? {}) as ServiceSpec;
      obj.spec = spec;
      // An update that omits the allocated IP keeps it (kubectl apply and replace send none).
      if (!spec.clusterIP && oldSpec.clusterIP && spec.type !== "ExternalName") {
        spec.clusterIP = oldSpec.clusterIP;
        spec.clusterIPs = oldSpec.clusterIPs;
      }
      if (spec.clusterIP && !spec.clusterIPs) spec.clusterIPs = [spec.clusterIP];
      if (spec.type === "NodePort" || spec.type === "LoadBalancer") {
        const used = inUse(ctx);
        for (const p of spec.ports ?? []) {
          if (!p.nodePort) {
            const prev = oldSpec.ports?.find((o) => o.port === p.port)?.nodePort;
            p.nodePort = prev ?? allocatePort(used.ports);
            used.ports.add(p.nodePort);
          }
        }
      }
    },
  });
}
