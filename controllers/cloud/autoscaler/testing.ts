// Fixtures for the autoscaler's unit tests: node group ConfigMaps, their Nodes and pods in the
// shapes the autoscaler cares about, listers that always read the FakeClient's current objects
// (so a loop sees what the previous one wrote), and an Autoscaler wired to them.

import type { ConfigMap, KubeObject, Node, Pod, PodDisruptionBudget, Selector, Toleration, Volume } from "../../../api/index.ts";
import { FakeClient, FakeClock, FakeRecorder, fakeLister, newLogger, type Context, type Lister } from "../../../client/index.ts";
import { cloudConfigMap, launchTime } from "../cloudapi.ts";
import { CLOUD_NAMESPACE, NODEGROUP_LABEL, ZONE_LABEL, nodeGroupConfigMapName, type TemplateTaint, type Topology } from "../types.ts";
import type { DeleteOptions } from "./scaledown.ts";
import { Autoscaler, type AutoscalerOptions } from "./index.ts";

export const T0 = Date.UTC(2026, 11, 3, 6, 0, 0);
export const REGION = "local";

export const topology: Topology = {
  region: REGION,
  zones: [
    { name: "local-1a", subnet: "127.64.0.0/16" },
    { name: "local-1b", subnet: "127.65.0.0/16" },
  ],
  instanceTypes: {},
  nodeGroups: [],
  serverless: [],
};

export interface GroupSpec {
  group: string;
  zone: string;
  min?: number;
  max?: number;
  /** Default: instances.length. */
  desired?: number;
  cpu?: string;
  memory?: string;
  labels?: Record<string, string>;
  taints?: TemplateTaint[];
  /** Instance (node) names; launched at `launchedAt` (default T0 − 1 h). */
  instances?: string[];
  launchedAt?: number;
}

export function groupConfigMap(g: GroupSpec): ConfigMap {
  const instances = (g.instances ?? []).map((name, i) => ({ name, id: `i-${String(i).padStart(17, "0")}`, launchTime: launchTime(g.launchedAt ?? T0 - 3_600_000) }));
  return cloudConfigMap(nodeGroupConfigMapName(g.group, g.zone), {
    kind: "nodegroup",
    group: g.group,
    zone: g.zone,
    instanceType: "m5.xlarge",
    minSize: g.min ?? 0,
    maxSize: g.max ?? 5,
    desiredCapacity: g.desired ?? instances.length,
    template: {
      capacity: { cpu: g.cpu ?? "4", memory: g.memory ?? "16Gi", pods: "58", "ephemeral-storage": "100Gi" },
      labels: { [NODEGROUP_LABEL]: g.group, [ZONE_LABEL]: g.zone, "topology.kubernetes.io/region": REGION, ...(g.labels ?? {}) },
      taints: g.taints ?? [],
    },
    instances,
  });
}

export interface NodeSpec {
  group?: string;
  zone?: string;
  cpu?: string;
  memory?: string;
  ready?: boolean;
  labels?: Record<string, string>;
  taints?: TemplateTaint[];
}

export function makeNode(name: string, n: NodeSpec = {}): Node {
  const capacity = { cpu: n.cpu ?? "4", memory: n.memory ?? "16Gi", pods: "58" };
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name,
      labels: {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        ...(n.zone ? { [ZONE_LABEL]: n.zone, "topology.kubernetes.io/region": REGION } : {}),
        ...(n.group ? { [NODEGROUP_LABEL]: n.group } : {}),
        ...(n.labels ?? {}),
      },
    },
    spec: n.taints?.length ? { taints: n.taints.map((t) => ({ ...t })) } : {},
    status: { capacity, allocatable: capacity, conditions: [{ type: "Ready", status: n.ready === false ? "False" : "True" }] },
  };
}

export interface PodSpecOpts {
  namespace?: string;
  cpu?: string;
  memory?: string;
  nodeName?: string;
  /** Unschedulable per the scheduler (PodScheduled=False, Unschedulable). Default: true when no nodeName. */
  pending?: boolean;
  nodeSelector?: Record<string, string>;
  tolerations?: Toleration[];
  /** Controller owner kind; "none" for a bare pod. Default ReplicaSet. */
  owner?: "ReplicaSet" | "DaemonSet" | "none";
  labels?: Record<string, string>;
  volumes?: Volume[];
  annotations?: Record<string, string>;
}

export function makePod(name: string, o: PodSpecOpts = {}): Pod {
  const owner = o.owner ?? "ReplicaSet";
  const pending = o.pending ?? !o.nodeName;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: o.namespace ?? "default",
      uid: `uid-${name}`,
      labels: o.labels ?? { app: "web" },
      ...(o.annotations ? { annotations: o.annotations } : {}),
      ...(owner === "none" ? {} : { ownerReferences: [{ apiVersion: "apps/v1", kind: owner, name: "owner", uid: "owner-uid", controller: true }] }),
    },
    spec: {
      containers: [{ name: "c", image: "busybox", resources: { requests: { cpu: o.cpu ?? "1", memory: o.memory ?? "1Gi" } } }],
      ...(o.nodeName ? { nodeName: o.nodeName } : {}),
      ...(o.nodeSelector ? { nodeSelector: o.nodeSelector } : {}),
      ...(o.tolerations ? { tolerations: o.tolerations } : {}),
      ...(o.volumes ? { volumes: o.volumes } : {}),
    },
    status: pending
      ? { phase: "Pending", conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message: "0/1 nodes are available" }] }
      : { phase: o.nodeName ? "Running" : "Pending" },
  };
}

export function makePDB(name: string, disruptionsAllowed: number, labels: Record<string, string> = { app: "web" }, namespace = "default"): PodDisruptionBudget {
  return {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: { name, namespace },
    spec: { selector: { matchLabels: labels }, minAvailable: 1 },
    status: { disruptionsAllowed, currentHealthy: 1, desiredHealthy: 1, expectedPods: 1 },
  };
}

/** A Lister that reads the tracker's current objects on every call. */
export function liveLister<T extends KubeObject>(client: FakeClient, group: string, resource: string, filter: (o: KubeObject) => boolean = () => true): Lister<T> {
  const now = () => fakeLister<T>(client.trackerList(group, resource).filter(filter) as T[]);
  return {
    get: (key) => now().get(key),
    list: (sel?: Selector) => now().list(sel),
    listNamespace: (ns: string, sel?: Selector) => now().listNamespace(ns, sel),
    byIndex: (index, value) => now().byIndex(index, value),
  };
}

export interface Harness {
  client: FakeClient;
  clock: FakeClock;
  recorder: FakeRecorder;
  autoscaler: Autoscaler;
  ctx: Context;
  /** The group's ConfigMap data as the tracker holds it. */
  group(group: string, zone: string): { desiredCapacity: number; instances: { name: string }[] };
  events(reason?: string): string[];
}

export function harness(objects: KubeObject[], opts: Partial<AutoscalerOptions> = {}, deleteOptions: DeleteOptions = {}): Harness {
  const clock = new FakeClock(T0);
  const client = new FakeClient(objects, { clock });
  const recorder = new FakeRecorder();
  const autoscaler = new Autoscaler(
    {
      client,
      topology,
      log: newLogger("autoscaler-test"),
      clock,
      scanIntervalMs: 10_000,
      scaleDownUnneededTimeMs: 600_000,
      scaleDownDelayAfterAddMs: 600_000,
      ...opts,
    },
    {
      pods: liveLister(client, "", "pods"),
      nodes: liveLister(client, "", "nodes"),
      pdbs: liveLister(client, "policy", "poddisruptionbudgets"),
      configMaps: liveLister(client, "", "configmaps", (o) => o.metadata.namespace === CLOUD_NAMESPACE && o.metadata.labels?.["kubelab.io/cloud"] === "nodegroup"),
      pvcs: liveLister(client, "", "persistentvolumeclaims"),
      pvs: liveLister(client, "", "persistentvolumes"),
      storageClasses: liveLister(client, "storage.k8s.io", "storageclasses"),
    },
    recorder,
    deleteOptions,
  );
  return {
    client,
    clock,
    recorder,
    autoscaler,
    ctx: { signal: new AbortController().signal, log: newLogger("autoscaler-test") },
    group(group, zone) {
      const cm = client.tracker("", "configmaps", CLOUD_NAMESPACE, nodeGroupConfigMapName(group, zone)) as ConfigMap;
      return { desiredCapacity: Number(cm.data?.desiredCapacity), instances: JSON.parse(cm.data?.instances ?? "[]") as { name: string }[] };
    },
    events(reason) {
      return recorder.events.filter((e) => !reason || e.split(" ")[1] === reason);
    },
  };
}
