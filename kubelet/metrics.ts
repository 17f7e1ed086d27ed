// The kubelet's metrics under upstream's names, labels and buckets (pkg/kubelet/metrics):
// kubelet_node_name, kubelet_running_pods, kubelet_running_containers, kubelet_pod_start_duration_seconds,
// kubelet_pod_worker_duration_seconds, kubelet_pleg_relist_duration_seconds and
// kubelet_pleg_relist_interval_seconds. Process-wide, as upstream's are: a simulated pool runs many
// nodes in one process, so its histograms hold every node's observations, the gauges are sums over
// its nodes, and kubelet_node_name has one series per node (each 1).

import { Gauge, Histogram, type Registry } from "prom-client";

/** Prometheus' DefBuckets, which upstream uses for the pod worker and PLEG histograms. */
export const DEF_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** upstream's podStartupDurationBuckets. */
export const POD_START_BUCKETS = [0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600];

/** kubecontainer.ContainerState, the container_state label of kubelet_running_containers. */
export type ContainerStateLabel = "created" | "running" | "exited" | "unknown";

/** What the last PLEG relist of one node found (upstream's updateRunningPodAndContainerMetrics). */
export interface RuntimeCounts {
  /** Pods with a ready sandbox. */
  runningPods: number;
  containers: Record<ContainerStateLabel, number>;
}

/** One node agent, as the gauges read it at scrape time. */
export interface NodeMetricsSource {
  readonly nodeName: string;
  runtimeCounts(): RuntimeCounts;
}

/** A sync's kind, the operation_type label (upstream's SyncPodType; no "kill": our workers do not know it up front). */
export type PodWorkerOperation = "create" | "update" | "sync";

const nodes = new Set<NodeMetricsSource>();

/** Counts a node agent in the gauges until the returned function is called. */
export function trackNode(node: NodeMetricsSource): () => void {
  nodes.add(node);
  return () => nodes.delete(node);
}

function sum(f: (c: RuntimeCounts) => number): number {
  let n = 0;
  for (const node of nodes) n += f(node.runtimeCounts());
  return n;
}

export const kubeletMetrics = {
  podWorkerDuration: new Histogram({
    name: "kubelet_pod_worker_duration_seconds",
    help: "Duration in seconds to sync a single pod. Broken down by operation type: create, update, or sync",
    labelNames: ["operation_type"] as const,
    buckets: DEF_BUCKETS,
    registers: [],
  }),
  podStartDuration: new Histogram({
    name: "kubelet_pod_start_duration_seconds",
    help: "Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run",
    buckets: POD_START_BUCKETS,
    registers: [],
  }),
  plegRelistDuration: new Histogram({
    name: "kubelet_pleg_relist_duration_seconds",
    help: "Duration in seconds for relisting pods in PLEG.",
    buckets: DEF_BUCKETS,
    registers: [],
  }),
  plegRelistInterval: new Histogram({
    name: "kubelet_pleg_relist_interval_seconds",
    help: "Interval in seconds between relisting in PLEG.",
    buckets: DEF_BUCKETS,
    registers: [],
  }),
  nodeName: new Gauge({
    name: "kubelet_node_name",
    help: "The node's name. The count is always 1.",
    labelNames: ["node"] as const,
    registers: [],
    collect() {
      this.reset();
      for (const n of nodes) this.set({ node: n.nodeName }, 1);
    },
  }),
  runningPods: new Gauge({
    name: "kubelet_running_pods",
    help: "Number of pods that have a running pod sandbox",
    registers: [],
    collect() {
      this.set(sum((c) => c.runningPods));
    },
  }),
  runningContainers: new Gauge({
    name: "kubelet_running_containers",
    help: "Number of containers currently running",
    labelNames: ["container_state"] as const,
    registers: [],
    collect() {
      for (const state of ["created", "running", "exited", "unknown"] as const) this.set({ container_state: state }, sum((c) => c.containers[state]));
    },
  }),
};

/** Adds the kubelet metrics to a component's registry (again is a no-op; another metric of one of these names throws). */
export function registerKubeletMetrics(registry: Registry): void {
  for (const m of Object.values(kubeletMetrics)) registry.registerMetric(m);
}
