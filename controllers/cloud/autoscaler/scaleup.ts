// Scale-up planning (upstream's core/scaleup/orchestrator, estimator/binpacking_estimator and
// expander/waste): which pending pods are really unschedulable (not fitting existing or upcoming
// nodes), which node group+zone could run each of them (the scheduler's Filter plugins against the
// group's template node), how many new nodes each option needs (first-fit decreasing by cpu onto
// template nodes, capped at maxSize), the least-waste option, and upstream's event messages.

import type { Pod } from "../../../api/index.ts";
import { DEFAULT_SCHEDULER_NAME } from "../../../scheduler/framework/runtime.ts";
import { podRequests, resourceFromList } from "../../../scheduler/framework/nodeinfo.ts";
import type { GroupInfo } from "./clusterstate.ts";
import { ClusterSnapshot, templateNode, templateNodeName, type PredicateChecker } from "./simulator.ts";

/** Upstream's skipped-group reasons, word for word. */
export const MAX_LIMIT_REACHED_REASON = "max node group size reached";
export const NOT_READY_REASON = "not ready for scale-up";
export const BACKOFF_REASON = "in backoff after failed scale-up";

/** Upstream's --expendable-pods-priority-cutoff default: pods below it never trigger a scale-up. */
export const EXPENDABLE_PODS_PRIORITY_CUTOFF = -10;

/** kube-scheduler marked it unschedulable, it is the default scheduler's to place, and it is not expendable. */
export function isUnschedulablePod(pod: Readonly<Pod>): boolean {
  if (pod.spec?.nodeName || pod.metadata.deletionTimestamp) return false;
  if ((pod.spec?.priority ?? 0) < EXPENDABLE_PODS_PRIORITY_CUTOFF) return false;
  const scheduler = pod.spec?.schedulerName;
  if (scheduler && scheduler !== DEFAULT_SCHEDULER_NAME) return false;
  const phase = pod.status?.phase;
  if (phase === "Succeeded" || phase === "Failed") return false;
  return (pod.status?.conditions ?? []).some((c) => c.type === "PodScheduled" && c.status === "False" && c.reason === "Unschedulable");
}

/** Adds a template node for every upcoming node of every group, so pending pods that will land on them are not counted again. */
export function addUpcomingNodes(snapshot: ClusterSnapshot, groups: readonly GroupInfo[], region?: string): void {
  for (const g of groups) {
    for (let i = 0; i < g.upcoming; i++) {
      const node = templateNode(g.state, templateNodeName(g.state, `upcoming-${i}`), region);
      if (node) snapshot.addNode(node);
    }
  }
}

/**
 * Upstream's filterOutSchedulable: the pods that fit somewhere in the snapshot (existing and
 * upcoming nodes) are placed there, one after the other; the rest are returned.
 */
export function filterOutSchedulable(snapshot: ClusterSnapshot, checker: PredicateChecker, pods: readonly Readonly<Pod>[]): { schedulable: Readonly<Pod>[]; unschedulable: Readonly<Pod>[] } {
  const schedulable: Readonly<Pod>[] = [];
  const unschedulable: Readonly<Pod>[] = [];
  for (const pod of pods) {
    const node = checker.fitsAny(snapshot, pod);
    if (node) {
      snapshot.addPod(node, pod);
      schedulable.push(pod);
    } else unschedulable.push(pod);
  }
  return { schedulable, unschedulable };
}

export interface ScaleUpOption {
  group: GroupInfo;
  /** New nodes needed. */
  nodeCount: number;
  /** The pods they would run. */
  pods: Readonly<Pod>[];
  /** Upstream's least-waste score: unused cpu fraction + unused memory fraction of the new nodes. */
  waste: number;
}

export interface NoScaleUp {
  pod: Readonly<Pod>;
  /** `pod didn't trigger scale-up: ...` */
  message: string;
}

export interface ScaleUpPlan {
  /** Every option that helps at least one pod. */
  options: ScaleUpOption[];
  /** The least-waste option, with the size it sets (capped at maxSize). */
  best?: ScaleUpOption & { from: number; to: number };
  /** Pods no group can help now, with upstream's aggregated reasons. */
  noScaleUp: NoScaleUp[];
  /** Pods that fit a group that is still bringing nodes up: they wait for those. */
  waiting: Readonly<Pod>[];
}

/** `{<name> <from>-><to> (max: <max>)}`, as upstream's GroupSizeChange prints in TriggeredScaleUp. */
export function triggeredScaleUpMessage(changes: readonly { name: string; from: number; to: number; max: number }[]): string {
  return `pod triggered scale-up: [${changes.map((c) => `{${c.name} ${c.from}->${c.to} (max: ${c.max})}`).join(" ")}]`;
}

/** Upstream's ReasonsMessage: each reason counted once per node group, "<n> <reason>" sorted, joined by ", ". */
export function notTriggerScaleUpMessage(reasonsByGroup: ReadonlyMap<string, ReadonlySet<string>>): string {
  const counts = new Map<string, number>();
  for (const reasons of reasonsByGroup.values()) for (const r of reasons) counts.set(r, (counts.get(r) ?? 0) + 1);
  const parts = [...counts].map(([r, n]) => `${n} ${r}`).sort();
  return `pod didn't trigger scale-up: ${parts.join(", ")}`;
}

function cpuOf(pod: Readonly<Pod>): number {
  return podRequests(pod).milliCPU;
}

/**
 * Upstream's BinpackingNodeEstimator (first-fit decreasing by cpu): places pods onto new template
 * nodes of the group, opening at most `limit` of them. Returns the pods placed and nodes used.
 */
export function estimate(
  snapshot: ClusterSnapshot,
  checker: PredicateChecker,
  group: GroupInfo,
  pods: readonly Readonly<Pod>[],
  limit: number,
  region?: string,
): { nodeCount: number; pods: Readonly<Pod>[] } {
  const sim = snapshot.clone();
  const bins: string[] = [];
  const placed: Readonly<Pod>[] = [];
  const sorted = [...pods].sort((a, b) => cpuOf(b) - cpuOf(a));
  for (const pod of sorted) {
    const fit = checker.fitsAny(sim, pod, bins);
    if (fit) {
      sim.addPod(fit, pod);
      placed.push(pod);
      continue;
    }
    if (bins.length >= limit) continue;
    const name = templateNodeName(group.state, `new-${bins.length}`);
    const node = templateNode(group.state, name, region);
    if (!node) break;
    sim.addNode(node);
    if (!checker.check(sim, pod, name).isSuccess()) {
      sim.removeNode(name);
      continue;
    }
    bins.push(name);
    sim.addPod(name, pod);
    placed.push(pod);
  }
  return { nodeCount: bins.length, pods: placed };
}

/** Upstream's waste expander score for an option. */
export function wasteScore(group: GroupInfo, nodeCount: number, pods: readonly Readonly<Pod>[]): number {
  const cap = resourceFromList(group.state.template?.capacity);
  let cpu = 0;
  let mem = 0;
  for (const p of pods) {
    const r = podRequests(p);
    cpu += r.milliCPU;
    mem += r.memory;
  }
  const availCPU = cap.milliCPU * nodeCount;
  const availMem = cap.memory * nodeCount;
  const wastedCPU = availCPU > 0 ? (availCPU - cpu) / availCPU : 1;
  const wastedMem = availMem > 0 ? (availMem - mem) / availMem : 1;
  return wastedCPU + wastedMem;
}

/** Least waste; ties: more pods helped, then fewer nodes, then the ConfigMap name (deterministic where upstream picks at random). */
export function bestOption(options: readonly ScaleUpOption[]): ScaleUpOption | undefined {
  const sorted = [...options].sort((a, b) => a.waste - b.waste || b.pods.length - a.pods.length || a.nodeCount - b.nodeCount || a.group.name.localeCompare(b.group.name));
  return sorted[0];
}

/**
 * The scale-up for `pending` (already filtered of pods that fit existing and upcoming nodes),
 * against `snapshot` (the cluster with those placed). Groups in backoff or at maxSize are skipped
 * ("in backoff after failed scale-up", "max node group size reached"); groups still bringing nodes up are not scaled again (pods fitting them
 * wait); every other group is an option for the pods its template node passes.
 */
export function planScaleUp(input: {
  groups: readonly GroupInfo[];
  snapshot: ClusterSnapshot;
  pending: readonly Readonly<Pod>[];
  checker: PredicateChecker;
  region?: string;
  /** Groups in backoff after a failed scale-up (their nodes never registered): skipped. */
  backoff?: ReadonlySet<string>;
}): ScaleUpPlan {
  const { groups, snapshot, pending, checker, region } = input;
  /** pod → group → reasons */
  const reasons = new Map<Readonly<Pod>, Map<string, Set<string>>>(pending.map((p) => [p, new Map()]));
  const waiting = new Set<Readonly<Pod>>();
  const helped = new Set<Readonly<Pod>>();
  const options: ScaleUpOption[] = [];
  const addReasons = (pod: Readonly<Pod>, group: string, rs: readonly string[]) => {
    const m = reasons.get(pod)!;
    const set = m.get(group) ?? new Set<string>();
    for (const r of rs) set.add(r);
    m.set(group, set);
  };

  for (const g of groups) {
    const s = g.state;
    if (!s.template) continue;
    if (input.backoff?.has(g.name)) {
      for (const p of pending) addReasons(p, g.name, [BACKOFF_REASON]);
      continue;
    }
    if (s.desiredCapacity >= s.maxSize) {
      for (const p of pending) addReasons(p, g.name, [MAX_LIMIT_REACHED_REASON]);
      continue;
    }
    const name = templateNodeName(s, "template");
    const sim = snapshot.clone();
    sim.addNode(templateNode(s, name, region)!);
    const fitting: Readonly<Pod>[] = [];
    for (const p of pending) {
      const st = checker.check(sim, p, name);
      if (st.isSuccess()) fitting.push(p);
      else addReasons(p, g.name, st.reasons.length ? st.reasons : [st.message() || "node(s) didn't fit"]);
    }
    if (fitting.length === 0) continue;
    if (g.upcoming > 0 || g.counts.longUnregistered > 0) {
      // Still bringing nodes up (or stuck doing so): do not add more until they register.
      for (const p of fitting) {
        if (g.upcoming > 0) waiting.add(p);
        else addReasons(p, g.name, [NOT_READY_REASON]);
      }
      continue;
    }
    const est = estimate(snapshot, checker, g, fitting, s.maxSize - s.desiredCapacity, region);
    for (const p of fitting) if (!est.pods.includes(p)) addReasons(p, g.name, [MAX_LIMIT_REACHED_REASON]);
    if (est.nodeCount === 0) continue;
    for (const p of est.pods) helped.add(p);
    options.push({ group: g, nodeCount: est.nodeCount, pods: est.pods, waste: wasteScore(g, est.nodeCount, est.pods) });
  }

  const chosen = bestOption(options);
  const best = chosen && { ...chosen, from: chosen.group.state.desiredCapacity, to: Math.min(chosen.group.state.desiredCapacity + chosen.nodeCount, chosen.group.state.maxSize) };
  const noScaleUp: NoScaleUp[] = [];
  for (const p of pending) {
    if (helped.has(p) || waiting.has(p)) continue;
    noScaleUp.push({ pod: p, message: notTriggerScaleUpMessage(reasons.get(p)!) });
  }
  return { options, ...(best ? { best } : {}), noScaleUp, waiting: [...waiting].filter((p) => !helped.has(p)) };
}
