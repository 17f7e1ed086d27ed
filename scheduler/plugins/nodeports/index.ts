// NodePorts: a pod's host ports must be free on the node, 0.0.0.0 conflicting with every address
// (plugins/nodeports).

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
  type PreFilterPlugin,
  type PreFilterResult,
} from "../../framework/types.ts";

export const NAME = "NodePorts";

/** The Filter reason, word for word as kube-scheduler's ErrReason. */
export const ERR_REASON = "node(s) didn't have free ports for the requested pod ports";

/** The address that means "every address" (upstream's DefaultBindAllHostIP). */
export const BIND_ALL_HOST_IP = "0.0.0.0";

export class NodePorts implements PreFilterPlugin, FilterPlugin, EnqueueExtensions {
  readonly name = NAME;

  /** A pod leaving frees its ports; a new node has all of them free. */
  eventsToRegister(): ClusterEvent[] {
    return [
      { resource: "Pod", actionType: ActionType.Delete },
      { resource: "Node", actionType: ActionType.Add | ActionType.Update },
    ];
  }

  /** Skip when the pod asks for no host port: Filter has nothing to check. */
  preFilter(state: CycleState, pod: Readonly<Pod>): { result?: PreFilterResult; status: Status } {
    const ports = wantedHostPorts(pod);
    state.write(PRE_FILTER_STATE_KEY, ports);
    return { status: ports.length === 0 ? Status.skip() : Status.success() };
  }

  /** Unschedulable (not unresolvable): preempting the pod holding the port frees it. */
  filter(state: CycleState, pod: Readonly<Pod>, nodeInfo: NodeInfo): Status {
    // PreFilter normally ran; computing here keeps Filter correct if a profile disabled it.
    const wanted = state.read<readonly HostPort[]>(PRE_FILTER_STATE_KEY) ?? wantedHostPorts(pod);
    if (!fitsPorts(wanted, nodeInfo.usedPorts)) return Status.unschedulable(ERR_REASON);
    return Status.success();
  }
}

// ---- pre-filter state --------------------------------------------------------------------------

export const PRE_FILTER_STATE_KEY = "PreFilter" + NAME;

/** A host port a pod wants, defaults applied (protocol TCP, hostIP 0.0.0.0). */
export interface HostPort {
  protocol: string;
  hostIP: string;
  port: number;
}

/** The host ports the pod's containers ask for (ports without a hostPort use none). */
export function wantedHostPorts(pod: Readonly<Pod>): HostPort[] {
  const out: HostPort[] = [];
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c.ports ?? []) {
      if (!p.hostPort || p.hostPort <= 0) continue;
      out.push({ protocol: p.protocol || "TCP", hostIP: p.hostIP || BIND_ALL_HOST_IP, port: p.hostPort });
    }
  }
  return out;
}

/**
 * True when none of the wanted ports conflicts with the node's used ports (keys
 * "<protocol>/<hostIP>/<port>"): the same protocol and port conflict when either side binds
 * 0.0.0.0 or both bind the same address.
 */
export function fitsPorts(wanted: readonly HostPort[], used: ReadonlySet<string>): boolean {
  if (wanted.length === 0 || used.size === 0) return true;
  for (const w of wanted) {
    if (w.hostIP === BIND_ALL_HOST_IP) {
      // Any address holding protocol/port conflicts; the key puts the address in the middle, so scan.
      const prefix = `${w.protocol}/`;
      const suffix = `/${w.port}`;
      for (const key of used) {
        if (key.startsWith(prefix) && key.endsWith(suffix) && key.length > prefix.length + suffix.length) return false;
      }
    } else if (used.has(`${w.protocol}/${w.hostIP}/${w.port}`) || used.has(`${w.protocol}/${BIND_ALL_HOST_IP}/${w.port}`)) {
      return false;
    }
  }
  return true;
}

export const newNodePorts: PluginFactory = () => new NodePorts();
