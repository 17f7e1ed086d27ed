// Builders shared by the plugin tests: nodes and pods in the few shapes scheduling cares about,
// NodeInfos built the way the cache builds them, and a Handle over fakes.

import type {
  Affinity,
  Container,
  ContainerPort,
  Node,
  NodeSelectorTerm,
  Pod,
  PreferredSchedulingTerm,
  ResourceList,
  Taint,
  Toleration,
} from "../../api/index.ts";
import { FakeClient, FakeRecorder } from "../../client/index.ts";
import { newNodeInfo } from "../framework/nodeinfo.ts";
import type { Handle, NodeInfo, NodeInfoLister } from "../framework/types.ts";

export interface NodeOptions {
  labels?: Record<string, string>;
  taints?: Taint[];
  unschedulable?: boolean;
  /** Default: 4 cpu, 8Gi memory, 110 pods. */
  allocatable?: ResourceList;
}

export const DEFAULT_ALLOCATABLE: ResourceList = { cpu: "4", memory: "8Gi", pods: "110" };

export function makeNode(name: string, opts: NodeOptions = {}): Node {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name, uid: `uid-${name}`, labels: { "kubernetes.io/hostname": name, ...opts.labels } },
    spec: { ...(opts.taints ? { taints: opts.taints } : {}), ...(opts.unschedulable ? { unschedulable: true } : {}) },
    status: { allocatable: opts.allocatable ?? DEFAULT_ALLOCATABLE, capacity: opts.allocatable ?? DEFAULT_ALLOCATABLE },
  };
}

export function nodeWithTaints(name: string, ...taints: Taint[]): Node {
  return makeNode(name, { taints });
}

export function nodeWithLabels(name: string, labels: Record<string, string>): Node {
  return makeNode(name, { labels });
}

export function nodeWithAllocatable(name: string, allocatable: ResourceList): Node {
  return makeNode(name, { allocatable });
}

export interface PodOptions {
  namespace?: string;
  uid?: string;
  labels?: Record<string, string>;
  nodeName?: string;
  /** One container per entry; `{}` is a container with no requests. Default: one container, no requests. */
  requests?: ResourceList[];
  /** Init containers' requests (plain init containers, not sidecars). */
  initRequests?: ResourceList[];
  overhead?: ResourceList;
  ports?: ContainerPort[];
  tolerations?: Toleration[];
  nodeSelector?: Record<string, string>;
  affinity?: Affinity;
}

export function makePod(name: string, opts: PodOptions = {}): Pod {
  const containers: Container[] = (opts.requests ?? [{}]).map((requests, i) => ({
    name: `c${i}`,
    image: "registry.k8s.io/pause:3.9",
    ...(Object.keys(requests).length > 0 ? { resources: { requests } } : {}),
  }));
  if (opts.ports) containers[0] = { ...containers[0]!, ports: opts.ports };
  const initContainers: Container[] | undefined = opts.initRequests?.map((requests, i) => ({
    name: `init${i}`,
    image: "registry.k8s.io/pause:3.9",
    resources: { requests },
  }));
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: opts.namespace ?? "default", uid: opts.uid ?? `uid-${name}`, labels: opts.labels ?? {} },
    spec: {
      containers,
      ...(initContainers ? { initContainers } : {}),
      ...(opts.overhead ? { overhead: opts.overhead } : {}),
      ...(opts.nodeName ? { nodeName: opts.nodeName } : {}),
      ...(opts.tolerations ? { tolerations: opts.tolerations } : {}),
      ...(opts.nodeSelector ? { nodeSelector: opts.nodeSelector } : {}),
      ...(opts.affinity ? { affinity: opts.affinity } : {}),
    },
    status: { phase: "Pending" },
  };
}

export function podWithTolerations(name: string, ...tolerations: Toleration[]): Pod {
  return makePod(name, { tolerations });
}

/** A pod with one container per ResourceList (one container without requests when none is given). */
export function podWithRequests(name: string, ...requests: ResourceList[]): Pod {
  return makePod(name, { requests: requests.length > 0 ? requests : [{}] });
}

export function podWithHostPorts(name: string, ...ports: ContainerPort[]): Pod {
  return makePod(name, { ports });
}

export function podWithNodeSelector(name: string, nodeSelector: Record<string, string>): Pod {
  return makePod(name, { nodeSelector });
}

/** A pod whose required node affinity is these ORed terms. */
export function podWithRequiredNodeAffinity(name: string, ...nodeSelectorTerms: NodeSelectorTerm[]): Pod {
  return makePod(name, { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms } } } });
}

export function podWithPreferredNodeAffinity(name: string, ...terms: PreferredSchedulingTerm[]): Pod {
  return makePod(name, { affinity: { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: terms } } });
}

/** A NodeInfo as the scheduler cache would build it for this node running these pods. */
export function nodeInfoFor(node: Node, ...pods: Pod[]): NodeInfo {
  return newNodeInfo(node, pods);
}

/** A snapshot over fixed NodeInfos. */
export function snapshotOf(infos: readonly NodeInfo[]): NodeInfoLister {
  const byName = new Map(infos.map((i) => [i.node.metadata.name ?? "", i]));
  return {
    list: () => infos,
    get: (name) => byName.get(name),
    havePodsWithAffinityList: () => infos.filter((i) => i.podsWithAffinity.length > 0),
    havePodsWithRequiredAntiAffinityList: () => infos.filter((i) => i.podsWithRequiredAntiAffinity.length > 0),
  };
}

/** A Handle over a FakeClient (which records actions) and a FakeRecorder. */
export function fakeHandle(opts: { client?: FakeClient; nodes?: readonly NodeInfo[] } = {}): Handle & { client: FakeClient; recorder: FakeRecorder } {
  const snapshot = snapshotOf(opts.nodes ?? []);
  return { snapshot: () => snapshot, client: opts.client ?? new FakeClient(), recorder: new FakeRecorder() };
}
