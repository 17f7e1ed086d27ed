// NodeUnschedulable: a cordoned node (spec.unschedulable) takes only pods that tolerate the
// node.kubernetes.io/unschedulable:NoSchedule taint (plugins/nodeunschedulable).

import { tolerationsTolerateTaint, type Pod, type Taint } from "../../../api/index.ts";
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

export const NAME = "NodeUnschedulable";

/** The Filter reason, word for word as kube-scheduler's ErrReasonUnschedulable. */
export const ERR_REASON_UNSCHEDULABLE = "node(s) were unschedulable";

/** The taint the node lifecycle controller puts on cordoned nodes; tolerating it is how DaemonSets land there. */
export const TAINT_NODE_UNSCHEDULABLE = "node.kubernetes.io/unschedulable";
const unschedulableTaint: Taint = { key: TAINT_NODE_UNSCHEDULABLE, effect: "NoSchedule" };

export class NodeUnschedulable implements FilterPlugin, EnqueueExtensions {
  readonly name = NAME;

  /** Uncordoning updates the node's spec (and its unschedulable taint). */
  eventsToRegister(): ClusterEvent[] {
    return [{ resource: "Node", actionType: ActionType.Add | ActionType.UpdateNodeTaint }];
  }

  /** Unresolvable: preempting pods does not uncordon a node. */
  filter(_state: CycleState, pod: Readonly<Pod>, nodeInfo: NodeInfo): Status {
    if (!nodeInfo.node.spec?.unschedulable) return Status.success();
    if (tolerationsTolerateTaint(pod.spec?.tolerations, unschedulableTaint)) return Status.success();
    return Status.unresolvable(ERR_REASON_UNSCHEDULABLE);
  }
}

export const newNodeUnschedulable: PluginFactory = () => new NodeUnschedulable();
