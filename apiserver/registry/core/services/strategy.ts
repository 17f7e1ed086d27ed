// Services: ClusterIPs and node ports are allocated by the Services store (store.ts, from the
// bitmaps in allocator.ts); the strategy keeps status server-owned and fills the derived fields.

import type { ResourceInfo } from "../../../../api/index.ts";
import { genericStrategy, type Strategy } from "../../strategy.ts";

interface ServiceSpec {
  type?: string;
  clusterIP?: string;
  clusterIPs?: string[];
  ipFamilies?: string[];
  ipFamilyPolicy?: string;
  ports?: { nodePort?: number }[];
  externalTrafficPolicy?: string;
  healthCheckNodePort?: number;
  allocateLoadBalancerNodePorts?: boolean;
  loadBalancerClass?: string;
}

const typeOf = (s: ServiceSpec) => s.type ?? "ClusterIP";
const needsClusterIP = (s: ServiceSpec) => typeOf(s) !== "ExternalName";
const needsNodePorts = (s: ServiceSpec) => typeOf(s) === "NodePort" || typeOf(s) === "LoadBalancer";
const isLB = (s: ServiceSpec) => typeOf(s) === "LoadBalancer";
const sameList = (a: unknown[] | undefined, b: unknown[] | undefined) => JSON.stringify(a ?? []) === JSON.stringify(b ?? []);

/**
 * Upstream's dropTypeDependentFields: on a type change, the fields the new type does not use are
 * cleared when the update left them as they were (the user did not ask for them): the ClusterIP
 * (and families) going to ExternalName, node ports going to ClusterIP, externalTrafficPolicy,
 * allocateLoadBalancerNodePorts and loadBalancerClass leaving LoadBalancer, healthCheckNodePort
 * when the Service no longer is a LoadBalancer with externalTrafficPolicy Local.
 */
export function dropTypeDependentFields(spec: ServiceSpec, old: ServiceSpec): void {
  if (needsClusterIP(old) && !needsClusterIP(spec)) {
    if ((spec.clusterIP ?? "") === (old.clusterIP ?? "") && (spec.clusterIPs === undefined || sameList(spec.clusterIPs, old.clusterIPs))) {
      delete spec.clusterIP;
      delete spec.clusterIPs;
      delete spec.ipFamilies;
      delete spec.ipFamilyPolicy;
    }
  }
  if (needsNodePorts(old) && !needsNodePorts(spec)) {
    const oldPorts = new Set((old.ports ?? []).map((p) => p.nodePort).filter(Boolean));
    if ((spec.ports ?? []).every((p) => !p.nodePort || oldPorts.has(p.nodePort))) for (const p of spec.ports ?? []) delete p.nodePort;
  }
  const needsHealthCheck = (s: ServiceSpec) => isLB(s) && s.externalTrafficPolicy === "Local";
  if (needsHealthCheck(old) && !needsHealthCheck(spec) && spec.healthCheckNodePort === old.healthCheckNodePort) delete spec.healthCheckNodePort;
  if (isLB(old) && !isLB(spec)) {
    if (spec.allocateLoadBalancerNodePorts === old.allocateLoadBalancerNodePorts) delete spec.allocateLoadBalancerNodePorts;
    if (spec.loadBalancerClass === old.loadBalancerClass) delete spec.loadBalancerClass;
  }
  if (needsNodePorts(old) && !needsNodePorts(spec) && spec.externalTrafficPolicy === old.externalTrafficPolicy) delete spec.externalTrafficPolicy;
}

export function serviceStrategy(info: ResourceInfo): Strategy {
  return genericStrategy(info, {
    prepareForCreate(obj) {
      obj.status = { loadBalancer: {} };
      const spec = (obj.spec ?? {}) as ServiceSpec;
      obj.spec = spec;
      if (spec.type !== "ExternalName" && spec.clusterIP && !spec.clusterIPs?.length) spec.clusterIPs = [spec.clusterIP];
    },
    prepareForUpdate(obj, old) {
      obj.status = old.status;
      const spec = (obj.spec ?? {}) as ServiceSpec;
      const oldSpec = (old.spec ?? {}) as ServiceSpec;
      obj.spec = spec;
      dropTypeDependentFields(spec, oldSpec);
      // An update that omits the allocated IP keeps it (kubectl apply and replace send none);
      // the store has already done this, and kept the node ports, before allocating.
      if (!spec.clusterIP && !spec.clusterIPs?.length && oldSpec.clusterIP && spec.type !== "ExternalName" && oldSpec.type !== "ExternalName") {
        spec.clusterIP = oldSpec.clusterIP;
        spec.clusterIPs = oldSpec.clusterIPs;
      }
      if (spec.clusterIP && !spec.clusterIPs?.length) spec.clusterIPs = [spec.clusterIP];
    },
  });
}
