// The autoscaler's view of the node groups (upstream's clusterstate.ClusterStateRegistry, simplified):
// each group+zone ConfigMap joined with the Nodes of its instances — which are Ready, which are
// registered but not started, which were launched but have no Node yet (unregistered, "long" after
// max-node-provision-time), and how many the group will still launch (desiredCapacity beyond the
// instances listed). Upcoming nodes (not started, unregistered, not launched) count as capacity for
// scale-up, so a pod is never given a second new node while the first is booting.

import type { ConfigMap, Node } from "../../../api/index.ts";
import type { Logger } from "../../../client/index.ts";
import { parseCloudConfigMap, type CloudGroupState } from "../cloudapi.ts";
import { CLOUD_NAMESPACE, NODEGROUP_LABEL } from "../types.ts";

/** The taint the autoscaler puts on a node it is deleting (value: unix seconds). */
export const TO_BE_DELETED_TAINT = "ToBeDeletedByClusterAutoscaler";

export interface NodeCounts {
  /** Listed instances whose Node exists. */
  registered: number;
  ready: number;
  /** Registered, not Ready, launched less than max-node-provision-time ago. */
  notStarted: number;
  /** Registered, not Ready, for longer. */
  unready: number;
  /** Listed without a Node, launched less than max-node-provision-time ago. */
  unregistered: number;
  longUnregistered: number;
  /** Registered nodes carrying ToBeDeletedByClusterAutoscaler. */
  beingDeleted: number;
}

export interface GroupInfo {
  /** The ConfigMap's name (the "ASG name"), e.g. kubelab-nodegroup-general-local-1b. */
  name: string;
  state: CloudGroupState;
  counts: NodeCounts;
  /** Nodes the group is bringing up: not started + unregistered + desiredCapacity not yet launched. */
  upcoming: number;
  /** The group's Ready Nodes. */
  readyNodes: Readonly<Node>[];
}

export function isNodeReady(node: Readonly<Node>): boolean {
  return (node.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
}

export function isBeingDeleted(node: Readonly<Node>): boolean {
  return (node.spec?.taints ?? []).some((t) => t.key === TO_BE_DELETED_TAINT);
}

function emptyCounts(): NodeCounts {
  return { registered: 0, ready: 0, notStarted: 0, unready: 0, unregistered: 0, longUnregistered: 0, beingDeleted: 0 };
}

/** The node groups of the cloud ConfigMaps (serverless and unreadable ones skipped, the latter logged), by ConfigMap name. */
export function nodeGroups(
  cms: readonly Readonly<ConfigMap>[],
  nodes: ReadonlyMap<string, Readonly<Node>>,
  now: number,
  maxNodeProvisionTimeMs: number,
  log?: Logger,
): GroupInfo[] {
  const out: GroupInfo[] = [];
  for (const cm of cms) {
    if (cm.metadata.namespace !== CLOUD_NAMESPACE) continue;
    const state = parseCloudConfigMap(cm);
    if (state instanceof Error) {
      log?.warn({ err: state.message }, "ignoring an unreadable node group ConfigMap");
      continue;
    }
    if (state.kind !== "nodegroup") continue;
    const counts = emptyCounts();
    const readyNodes: Readonly<Node>[] = [];
    for (const inst of state.instances) {
      const node = nodes.get(inst.name);
      const launched = Date.parse(inst.launchTime);
      const long = Number.isFinite(launched) && now - launched > maxNodeProvisionTimeMs;
      if (!node) {
        if (long) counts.longUnregistered++;
        else counts.unregistered++;
        continue;
      }
      counts.registered++;
      if (isBeingDeleted(node)) counts.beingDeleted++;
      if (isNodeReady(node)) {
        counts.ready++;
        readyNodes.push(node);
      } else if (long) counts.unready++;
      else counts.notStarted++;
    }
    const notLaunched = Math.max(0, state.desiredCapacity - state.instances.length);
    out.push({ name: cm.metadata.name ?? "", state, counts, upcoming: counts.notStarted + counts.unregistered + notLaunched, readyNodes });
  }
  out.sort((a, b) => a.name.localeCompare(b.name));
  return out;
}

/** The group (ConfigMap name) listing a node as one of its instances, if any. */
export function groupOfNode(groups: readonly GroupInfo[], node: Readonly<Node>): GroupInfo | undefined {
  const name = node.metadata.name ?? "";
  const label = node.metadata.labels?.[NODEGROUP_LABEL];
  if (!label) return undefined;
  return groups.find((g) => g.state.group === label && g.state.instances.some((i) => i.name === name));
}
