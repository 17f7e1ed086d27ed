// The autoscaler's Prometheus metrics, named as upstream's cluster-autoscaler/metrics (a subset):
// node counts by state, unschedulable pods, unneeded nodes, nodes scaled up and down, last activity.

import { Counter, Gauge, type Registry } from "prom-client";

export interface AutoscalerMetrics {
  nodesCount: Gauge<"state">;
  nodeGroupsCount: Gauge<"node_group_type">;
  unschedulablePods: Gauge;
  unneededNodes: Gauge;
  scaledUpNodes: Counter;
  scaledDownNodes: Counter<"reason">;
  failedScaleUps: Counter<"reason">;
  lastActivity: Gauge<"activity">;
  safeToAutoscale: Gauge;
}

/**
 * The metrics on `registry`; ones already registered there (the autoscaler restarted after a lost
 * lease in the same process) are reused rather than registered twice.
 */
export function newAutoscalerMetrics(registry: Registry): AutoscalerMetrics {
  const registers = [registry];
  const reuse = <T>(name: string, make: () => T): T => (registry.getSingleMetric(name) as T | undefined) ?? make();
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) => reuse(name, () => new Gauge<L>({ name, help, labelNames, registers }));
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) => reuse(name, () => new Counter<L>({ name, help, labelNames, registers }));
  return {
    nodesCount: gauge("cluster_autoscaler_nodes_count", "Number of nodes in cluster.", ["state"] as const),
    nodeGroupsCount: gauge("cluster_autoscaler_node_groups_count", "Number of node groups managed by CA.", ["node_group_type"] as const),
    unschedulablePods: gauge("cluster_autoscaler_unschedulable_pods_count", "Number of unschedulable pods in the cluster."),
    unneededNodes: gauge("cluster_autoscaler_unneeded_nodes_count", "Number of nodes currently considered unneeded by CA."),
    scaledUpNodes: counter("cluster_autoscaler_scaled_up_nodes_total", "Number of nodes added by CA."),
    scaledDownNodes: counter("cluster_autoscaler_scaled_down_nodes_total", "Number of nodes removed by CA.", ["reason"] as const),
    failedScaleUps: counter("cluster_autoscaler_failed_scale_ups_total", "Number of times scale-up operation has failed.", ["reason"] as const),
    lastActivity: gauge("cluster_autoscaler_last_activity", "Last time certain part of CA logic executed.", ["activity"] as const),
    safeToAutoscale: gauge("cluster_autoscaler_cluster_safe_to_autoscale", "Whether or not cluster is healthy enough for autoscaling. 1 if it is, 0 otherwise."),
  };
}
