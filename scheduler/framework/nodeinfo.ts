// NodeInfo construction and immutable updates: per-node aggregates (requests, ports, affinity pods)
// computed once so Filter and Score never walk a node's pods (framework.NodeInfo).

import { parseQuantityMilli, parseQuantityValue, type Container, type Node, type Pod, type ResourceList } from "../../api/index.ts";
import type { NodeInfo, PodInfo, Resource } from "./types.ts";

/** Scoring defaults for containers that request nothing (upstream's DefaultMilliCPURequest/DefaultMemoryRequest). */
export const DEFAULT_MILLI_CPU_REQUEST = 100;
export const DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024;

let generationCounter = 0;
/** A process-wide monotonic generation, as upstream's nextGeneration: every change gets a new one. */
export function nextGeneration(): number {
  return ++generationCounter;
}

export function emptyResource(): Resource {
  return { milliCPU: 0, memory: 0, ephemeralStorage: 0, allowedPodNumber: 0, scalar: {} };
}

export function cloneResource(r: Resource): Resource {
  return { ...r, scalar: { ...r.scalar } };
}

/** The resources in a ResourceList, in base units (cpu in milli; memory and storage in bytes, rounded up). */
export function resourceFromList(list: ResourceList | undefined): Resource {
  const r = emptyResource();
  if (!list) return r;
  for (const [name, q] of Object.entries(list)) {
    switch (name) {
      case "cpu":
        r.milliCPU += parseQuantityMilli(q);
        break;
      case "memory":
        r.memory += parseQuantityValue(q);
        break;
      case "ephemeral-storage":
        r.ephemeralStorage += parseQuantityValue(q);
        break;
      case "pods":
        r.allowedPodNumber += parseQuantityValue(q);
        break;
      default:
        r.scalar[name] = (r.scalar[name] ?? 0) + parseQuantityValue(q);
    }
  }
  return r;
}

/** a += b, in place. */
export function addResource(a: Resource, b: Resource, sign: 1 | -1 = 1): Resource {
  a.milliCPU += sign * b.milliCPU;
  a.memory += sign * b.memory;
  a.ephemeralStorage += sign * b.ephemeralStorage;
  a.allowedPodNumber += sign * b.allowedPodNumber;
  for (const [k, v] of Object.entries(b.scalar)) a.scalar[k] = (a.scalar[k] ?? 0) + sign * v;
  return a;
}

/** a = max(a, b) per resource, in place. */
function maxResource(a: Resource, b: Resource): Resource {
  a.milliCPU = Math.max(a.milliCPU, b.milliCPU);
  a.memory = Math.max(a.memory, b.memory);
  a.ephemeralStorage = Math.max(a.ephemeralStorage, b.ephemeralStorage);
  a.allowedPodNumber = Math.max(a.allowedPodNumber, b.allowedPodNumber);
  for (const [k, v] of Object.entries(b.scalar)) a.scalar[k] = Math.max(a.scalar[k] ?? 0, v);
  return a;
}

function containerRequests(c: Container, nonZero: boolean): Resource {
  const requests = c.resources?.requests;
  const r = resourceFromList(requests);
  if (nonZero) {
    if (requests?.["cpu"] === undefined) r.milliCPU = DEFAULT_MILLI_CPU_REQUEST;
    if (requests?.["memory"] === undefined) r.memory = DEFAULT_MEMORY_REQUEST;
  }
  return r;
}

/**
 * Upstream's resource.PodRequests: the max of (sum of containers + sidecars) and each init
 * container's request (plus the sidecars started before it), plus the pod overhead.
 */
function computeRequests(pod: Readonly<Pod>, nonZero: boolean): Resource {
  const spec = pod.spec;
  const reqs = emptyResource();
  for (const c of spec?.containers ?? []) addResource(reqs, containerRequests(c, nonZero));
  const sidecars = emptyResource();
  const initMax = emptyResource();
  for (const c of spec?.initContainers ?? []) {
    const r = containerRequests(c, nonZero);
    if (c.restartPolicy === "Always") {
      // A sidecar keeps running beside the app containers and every later init container.
      addResource(reqs, r);
      addResource(sidecars, r);
      maxResource(initMax, sidecars);
    } else {
      maxResource(initMax, addResource(r, sidecars));
    }
  }
  maxResource(reqs, initMax);
  if (spec?.overhead) addResource(reqs, resourceFromList(spec.overhead));
  reqs.allowedPodNumber = 1;
  return reqs;
}

/** The pod's effective request (upstream's computePodResourceRequest); `allowedPodNumber` is 1. */
export function podRequests(pod: Readonly<Pod>): Resource {
  return computeRequests(pod, false);
}

/** Like podRequests, but containers without a cpu/memory request count 100m / 200 MiB (for scoring). */
export function nonZeroRequests(pod: Readonly<Pod>): Resource {
  return computeRequests(pod, true);
}

/** The host ports a pod uses, as "<protocol>/<hostIP>/<hostPort>". */
export function podHostPorts(pod: Readonly<Pod>): string[] {
  const out: string[] = [];
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c.ports ?? []) {
      if (!p.hostPort || p.hostPort <= 0) continue;
      out.push(hostPortKey(p.protocol ?? "TCP", p.hostIP, p.hostPort));
    }
  }
  return out;
}

export function hostPortKey(protocol: string, hostIP: string | undefined, hostPort: number): string {
  return `${protocol}/${hostIP || "0.0.0.0"}/${hostPort}`;
}

export function hasAffinity(pod: Readonly<Pod>): boolean {
  const a = pod.spec?.affinity;
  return !!a && (!!a.podAffinity || !!a.podAntiAffinity);
}

export function hasRequiredAntiAffinity(pod: Readonly<Pod>): boolean {
  return (pod.spec?.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.length ?? 0) > 0;
}

/** The identity of a pod across updates: its UID, or namespace/name when it has none (tests). */
export function podKey(pod: Readonly<Pod>): string {
  return pod.metadata.uid || `${pod.metadata.namespace ?? ""}/${pod.metadata.name ?? ""}`;
}

export function newPodInfo(pod: Readonly<Pod>): PodInfo {
  return { pod };
}

/** A NodeInfo for the node with these pods, every aggregate computed. */
export function newNodeInfo(node: Readonly<Node>, pods: readonly Readonly<Pod>[] = []): NodeInfo {
  let info: NodeInfo = {
    node,
    pods: [],
    requested: emptyResource(),
    nonZeroRequested: emptyResource(),
    allocatable: resourceFromList(node.status?.allocatable),
    usedPorts: new Set(),
    podsWithAffinity: [],
    podsWithRequiredAntiAffinity: [],
    generation: nextGeneration(),
  };
  if (pods.length > 0) info = addPods(info, pods);
  return info;
}

/** The same pods on an updated Node object (allocatable recomputed). */
export function setNode(info: NodeInfo, node: Readonly<Node>): NodeInfo {
  return { ...info, node, allocatable: resourceFromList(node.status?.allocatable), generation: nextGeneration() };
}

function addPods(info: NodeInfo, pods: readonly Readonly<Pod>[]): NodeInfo {
  const requested = cloneResource(info.requested);
  const nonZeroRequested = cloneResource(info.nonZeroRequested);
  const usedPorts = new Set(info.usedPorts);
  const all = [...info.pods];
  const withAffinity = [...info.podsWithAffinity];
  const withAnti = [...info.podsWithRequiredAntiAffinity];
  for (const pod of pods) {
    const pi = newPodInfo(pod);
    all.push(pi);
    addResource(requested, podRequests(pod));
    addResource(nonZeroRequested, nonZeroRequests(pod));
    for (const p of podHostPorts(pod)) usedPorts.add(p);
    if (hasAffinity(pod)) withAffinity.push(pi);
    if (hasRequiredAntiAffinity(pod)) withAnti.push(pi);
  }
  return {
    node: info.node,
    pods: all,
    requested,
    nonZeroRequested,
    allocatable: info.allocatable,
    usedPorts,
    podsWithAffinity: withAffinity,
    podsWithRequiredAntiAffinity: withAnti,
    generation: nextGeneration(),
  };
}

/** A new NodeInfo with the pod added; `info` is left unchanged. */
export function addPod(info: NodeInfo, pod: Readonly<Pod>): NodeInfo {
  return addPods(info, [pod]);
}

/**
 * A new NodeInfo without the pod (matched by UID, else namespace/name). Returns `info` itself when
 * the pod is not there, so callers can tell by identity.
 */
export function removePod(info: NodeInfo, pod: Readonly<Pod>): NodeInfo {
  const key = podKey(pod);
  const idx = info.pods.findIndex((p) => podKey(p.pod) === key);
  if (idx < 0) return info;
  const old = info.pods[idx]!.pod;
  const pods = info.pods.filter((_, i) => i !== idx);
  const requested = addResource(cloneResource(info.requested), podRequests(old), -1);
  const nonZeroRequested = addResource(cloneResource(info.nonZeroRequested), nonZeroRequests(old), -1);
  // Ports are a set; recompute from the remaining pods rather than risk dropping one another pod shares.
  const usedPorts = new Set<string>();
  for (const p of pods) for (const port of podHostPorts(p.pod)) usedPorts.add(port);
  return {
    node: info.node,
    pods,
    requested,
    nonZeroRequested,
    allocatable: info.allocatable,
    usedPorts,
    podsWithAffinity: info.podsWithAffinity.filter((p) => podKey(p.pod) !== key),
    podsWithRequiredAntiAffinity: info.podsWithRequiredAntiAffinity.filter((p) => podKey(p.pod) !== key),
    generation: nextGeneration(),
  };
}
