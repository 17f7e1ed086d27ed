// NodeName: a pod that names a node in spec.nodeName fits only that node (plugins/nodename).

import type { Pod } from "../../../api/index.ts";
import {
  ActionType,
  Status,
  type ClusterEvent,
  type CycleState,
  type EnqueueExtensions,
  type FilterPlugin,
  type NodeInfo,
  type PluginFactory,
} from "../../framework/types.ts";

export const NAME = "NodeName";

/** The Filter reason, word for word as kube-scheduler's ErrReason. */
export const ERR_REASON = "node(s) didn't match the requested node name";

export class NodeName implements FilterPlugin, EnqueueExtensions {
  readonly name = NAME;

  /** Only a new node (or a renamed one, which Kubernetes forbids) can be the one the pod names. */
  eventsToRegister(): ClusterEvent[] {
    return [{ resource: "Node", actionType: ActionType.Add | ActionType.Update }];
  }

  /** Unresolvable: no preemption on another node makes it the named one. */
  filter(_state: CycleState, pod: Readonly<Pod>, nodeInfo: NodeInfo): Status {
    if (!fits(pod, nodeInfo)) return Status.unresolvable(ERR_REASON);
    return Status.success();
  }
}

/** True when the pod names no node or names this one. */
export function fits(pod: Readonly<Pod>, nodeInfo: NodeInfo): boolean {
  const want = pod.spec?.nodeName;
  return !want || want === nodeInfo.node.metadata.name;
}

export const newNodeName: PluginFactory = () => new NodeName();
