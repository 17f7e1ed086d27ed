// DefaultPreemption (PostFilter): when a pod fits nowhere, find the node where evicting the fewest,
// least important lower-priority pods lets it fit, evict them, and nominate that node for the pod
// (upstream pkg/scheduler/framework/plugins/defaultpreemption and framework/preemption).

import type { Pod } from "../../../api/index.ts";
import { isNotFound } from "../../../client/index.ts";
import { addPod, removePod } from "../../framework/nodeinfo.ts";
import {
  Code,
  Status,
  type CycleState,
  type Handle,
  type NodeInfo,
  type NodeToStatusMap,
  type PluginFactory,
  type PostFilterPlugin,
} from "../../framework/types.ts";

export const NAME = "DefaultPreemption";

/** Messages carry no final period: the framework appends one when it joins them into FitError's message. */
export const ErrReasonNotEligiblePolicy = "not eligible due to preemptionPolicy=Never";
export const ErrReasonNotEligibleTerminating = "not eligible due to a terminating pod on the nominated node";
export const ErrReasonNoVictims = "No preemption victims found for incoming pod";
export const ErrReasonNotHelpful = "Preemption is not helpful for scheduling";

/**
 * Runs the profile's Filter plugins for the pod on a what-if NodeInfo (the framework's
 * RunFilterPluginsWithNominatedPods). It gets a clone of the cycle state; PreFilter state that
 * counts pods (topology spread, inter-pod affinity) is not adjusted for the removed pods yet.
 */
export type RunFilters = (state: CycleState, pod: Readonly<Pod>, nodeInfo: NodeInfo) => Status;

/**
 * Where the profile's filters come from when the args don't carry them: the framework may expose
 * its own runFilterPlugins on the handle it gives plugins (it is built after the plugins, so it
 * can't pass itself in the args).
 */
export interface PreemptionHandle extends Handle {
  runFilterPlugins?: RunFilters;
}

/** Factory args. Only the framework knows the profile's filters: via runFilters here or on the handle. */
export interface DefaultPreemptionArgs {
  runFilters?: RunFilters;
  /** Evicts a victim; default: DELETE the pod through handle.client (a NotFound counts as done). */
  deletePod?: (victim: Readonly<Pod>) => Promise<void>;
}

/** A node where preemption helps, and the pods that must go. */
export interface Candidate {
  nodeName: string;
  victims: Readonly<Pod>[];
}

export class DefaultPreemption implements PostFilterPlugin {
  readonly name = NAME;
  private readonly deletePod: (victim: Readonly<Pod>) => Promise<void>;

  constructor(
    private readonly handle: PreemptionHandle,
    private readonly args: DefaultPreemptionArgs = {},
  ) {
    this.deletePod =
      args.deletePod ??
      (async (victim) => {
        try {
          await handle.client.resource<Pod>("", "pods").delete(victim.metadata.namespace ?? "", victim.metadata.name ?? "");
        } catch (e) {
          if (!isNotFound(e)) throw e; // already gone: as good as evicted
        }
      });
  }

  async postFilter(state: CycleState, pod: Readonly<Pod>, filtered: NodeToStatusMap): Promise<{ nominatedNodeName?: string; status: Status }> {
    const nodes = this.handle.snapshot().list();
    const ineligible = this.notEligible(pod, nodes);
    if (ineligible) return { status: Status.unschedulable(ineligible) };

    // Resolved per call: the framework finishes wiring its handle after building the plugins.
    const runFilters = this.args.runFilters ?? this.handle.runFilterPlugins;
    if (!runFilters) return { status: Status.error(`${NAME}: no runFilters in the args or runFilterPlugins on the handle`) };
    const candidates = this.findCandidates(runFilters, state, pod, nodes, filtered);
    if (candidates.length === 0) {
      const unresolvable = nodes.filter((ni) => filtered.get(ni.node.metadata.name ?? "")?.code === Code.UnschedulableAndUnresolvable).length;
      const parts = [
        ...(nodes.length - unresolvable > 0 ? [`${nodes.length - unresolvable} ${ErrReasonNoVictims}`] : []),
        ...(unresolvable > 0 ? [`${unresolvable} ${ErrReasonNotHelpful}`] : []),
      ];
      return { status: Status.unschedulable(`preemption: 0/${nodes.length} nodes are available: ${parts.join(", ")}`) };
    }

    const best = pickOneNode(candidates);
    for (const victim of best.victims) {
      try {
        await this.deletePod(victim);
      } catch (e) {
        return { status: Status.error(`preempting ${victim.metadata.namespace}/${victim.metadata.name}: ${String(e)}`) };
      }
      this.handle.recorder.event(victim, "Normal", "Preempted", `Preempted by pod ${pod.metadata.uid ?? ""} on node ${best.nodeName}`);
    }
    try {
      // The pod waits in the queue for the victims to terminate; the nomination keeps other pods off
      // the freed room and tells users where it is headed.
      await this.handle.client
        .resource<Pod>("", "pods")
        .patch(pod.metadata.namespace ?? "", pod.metadata.name ?? "", "merge", { status: { nominatedNodeName: best.nodeName } }, { subresource: "status" });
    } catch (e) {
      if (!isNotFound(e)) return { status: Status.error(`setting nominatedNodeName: ${String(e)}`) };
    }
    return { nominatedNodeName: best.nodeName, status: Status.success() };
  }

  /** Why the pod may not preempt, or undefined (upstream PodEligibleToPreemptOthers). */
  private notEligible(pod: Readonly<Pod>, nodes: readonly NodeInfo[]): string | undefined {
    if (pod.spec?.preemptionPolicy === "Never") return ErrReasonNotEligiblePolicy;
    // Victims of an earlier preemption are still terminating on the nominated node: wait for them
    // rather than evict more.
    const nominated = pod.status?.nominatedNodeName;
    if (nominated) {
      const ni = nodes.find((n) => n.node.metadata.name === nominated);
      const prio = priority(pod);
      if (ni?.pods.some((p) => p.pod.metadata.deletionTimestamp && priority(p.pod) < prio)) return ErrReasonNotEligibleTerminating;
    }
    return undefined;
  }

  /** Nodes where evicting lower-priority pods makes the pod fit, with the minimal victims on each. */
  findCandidates(runFilters: RunFilters, state: CycleState, pod: Readonly<Pod>, nodes: readonly NodeInfo[], filtered: NodeToStatusMap): Candidate[] {
    const out: Candidate[] = [];
    for (const ni of nodes) {
      // Unresolvable means no eviction can help (node affinity, taints, missing labels).
      if (filtered.get(ni.node.metadata.name ?? "")?.code === Code.UnschedulableAndUnresolvable) continue;
      const victims = selectVictimsOnNode(runFilters, state, pod, ni);
      if (victims && victims.length > 0) out.push({ nodeName: ni.node.metadata.name ?? "", victims });
    }
    return out;
  }
}

/**
 * Removes every lower-priority pod; if the pod then fits, adds them back most important first,
 * keeping each that still leaves room (the reprieve). What stays removed are the victims.
 */
function selectVictimsOnNode(runFilters: RunFilters, state: CycleState, pod: Readonly<Pod>, ni: NodeInfo): Readonly<Pod>[] | undefined {
  const prio = priority(pod);
  const lower = ni.pods.map((p) => p.pod).filter((p) => priority(p) < prio);
  if (lower.length === 0) return undefined;
  let info = ni;
  for (const p of lower) info = removePod(info, p);
  if (!runFilters(state.clone(), pod, info).isSuccess()) return undefined;
  const victims: Readonly<Pod>[] = [];
  for (const p of [...lower].sort(moreImportantFirst)) {
    const withP = addPod(info, p);
    if (runFilters(state.clone(), pod, withP).isSuccess()) info = withP;
    else victims.push(p);
  }
  return victims;
}

/** The candidate whose most important victim matters least, then the fewest victims; ties keep node order. */
export function pickOneNode(candidates: readonly Candidate[]): Candidate {
  let best = candidates[0]!;
  for (const c of candidates.slice(1)) {
    const a = highestPriority(c.victims);
    const b = highestPriority(best.victims);
    if (a < b || (a === b && c.victims.length < best.victims.length)) best = c;
  }
  return best;
}

function highestPriority(pods: readonly Readonly<Pod>[]): number {
  return Math.max(...pods.map(priority));
}

function priority(pod: Readonly<Pod>): number {
  return pod.spec?.priority ?? 0;
}

/** Higher priority first, then the longer-running (upstream MoreImportantPod). */
function moreImportantFirst(a: Readonly<Pod>, b: Readonly<Pod>): number {
  const d = priority(b) - priority(a);
  if (d !== 0) return d;
  return (a.status?.startTime ?? "").localeCompare(b.status?.startTime ?? "");
}

export const newDefaultPreemption: PluginFactory = (args, handle) => {
  const runFilters = args?.["runFilters"];
  return new DefaultPreemption(handle, typeof runFilters === "function" ? { ...args, runFilters: runFilters as RunFilters } : {});
};
