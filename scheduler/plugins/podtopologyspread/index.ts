// PodTopologySpread: keeps matching pods spread across topology domains (zones, hosts) within
// maxSkew — a hard Filter for DoNotSchedule constraints, a Score for ScheduleAnyway ones and for the
// cluster's default constraints (upstream pkg/scheduler/framework/plugins/podtopologyspread).

import {
  labelSelectorAsSelector,
  type LabelSelector,
  type Node,
  type Pod,
  type Selector,
  type Taint,
  type TopologySpreadConstraint,
} from "../../../api/index.ts";
import {
  ActionType,
  MAX_NODE_SCORE,
  Status,
  type ClusterEvent,
  type CycleState,
  type EnqueueExtensions,
  type FilterPlugin,
  type Handle,
  type NodeInfo,
  type NodeScore,
  type PluginFactory,
  type PodInfo,
  type PreFilterPlugin,
  type PreFilterResult,
  type PreScorePlugin,
  type ScorePlugin,
} from "../../framework/types.ts";
import { podMatchesNodeAffinity } from "../../../api/index.ts";

export const NAME = "PodTopologySpread";

export const ErrReasonConstraintsNotMatch = "node(s) didn't match pod topology spread constraints";
export const ErrReasonNodeLabelNotMatch = `${ErrReasonConstraintsNotMatch} (missing required label)`;

export const LABEL_HOSTNAME = "kubernetes.io/hostname";
export const LABEL_TOPOLOGY_ZONE = "topology.kubernetes.io/zone";

/**
 * Applied, for scoring only, to pods that declare no constraints of their own (upstream's
 * systemDefaultConstraints). Upstream selects the pods of the same Service/ReplicaSet/StatefulSet;
 * we use the pod's own labels, which those controllers stamp on every replica.
 */
export const SYSTEM_DEFAULT_CONSTRAINTS: readonly TopologySpreadConstraint[] = [
  { topologyKey: LABEL_HOSTNAME, whenUnsatisfiable: "ScheduleAnyway", maxSkew: 3 },
  { topologyKey: LABEL_TOPOLOGY_ZONE, whenUnsatisfiable: "ScheduleAnyway", maxSkew: 5 },
];

/** Factory args (PodTopologySpreadArgs). */
export interface PodTopologySpreadArgs {
  /** "System" (default) uses SYSTEM_DEFAULT_CONSTRAINTS; "List" uses defaultConstraints. */
  defaultingType?: "System" | "List";
  defaultConstraints?: TopologySpreadConstraint[];
}

/** A constraint with its selector parsed and policies defaulted (upstream's topologySpreadConstraint). */
interface Constraint {
  maxSkew: number;
  topologyKey: string;
  minDomains: number;
  selector: Selector;
  nodeAffinityPolicy: "Honor" | "Ignore";
  nodeTaintsPolicy: "Honor" | "Ignore";
}

const PRE_FILTER_KEY = `PreFilter${NAME}`;
const PRE_SCORE_KEY = `PreScore${NAME}`;

/** Matching-pod counts per domain, per DoNotSchedule constraint; Filter reads it. */
class PreFilterState {
  constructor(
    readonly constraints: readonly Constraint[],
    /** [constraint index] → topology value → matching pods in that domain. */
    readonly tpValueToMatchNum: readonly Map<string, number>[],
  ) {}

  /** The smallest domain count, or 0 when fewer domains than minDomains exist (upstream minMatchNum). */
  minMatchNum(i: number): number {
    const counts = this.tpValueToMatchNum[i]!;
    if (counts.size < this.constraints[i]!.minDomains || counts.size === 0) return 0;
    let min = Infinity;
    for (const n of counts.values()) min = Math.min(min, n);
    return min;
  }

  clone(): PreFilterState {
    return new PreFilterState(this.constraints, this.tpValueToMatchNum.map((m) => new Map(m)));
  }
}

/** What Score needs: counts per (key, value) pair over all nodes, and the domain-size weights. */
interface PreScoreState {
  constraints: readonly Constraint[];
  /** Feasible nodes lacking a required topology key: scored 0. */
  ignoredNodes: ReadonlySet<string>;
  /** `${key}\0${value}` → matching pods. Hostname constraints are counted per node in Score. */
  pairCounts: ReadonlyMap<string, number>;
  /** log(domains + 2) per constraint: spreading over few domains weighs each pod more. */
  normalizingWeights: readonly number[];
}

export class PodTopologySpread implements PreFilterPlugin, FilterPlugin, PreScorePlugin, ScorePlugin, EnqueueExtensions {
  readonly name = NAME;

  constructor(
    private readonly handle: Handle,
    private readonly args: PodTopologySpreadArgs = {},
  ) {}

  /** A pod matching a selector, or a node gaining a domain label, can change the counts. */
  eventsToRegister(): ClusterEvent[] {
    return [
      { resource: "Pod", actionType: ActionType.Add | ActionType.Delete | ActionType.UpdatePodLabel },
      // Delete too (as upstream): removing a sparsely-filled domain raises the global minimum.
      { resource: "Node", actionType: ActionType.Add | ActionType.Delete | ActionType.UpdateNodeLabel },
    ];
  }

  preFilter(state: CycleState, pod: Readonly<Pod>, nodes: readonly NodeInfo[]): { result?: PreFilterResult; status: Status } {
    const constraints = parseConstraints(pod, pod.spec?.topologySpreadConstraints ?? [], "DoNotSchedule");
    if (constraints.length === 0) return { status: Status.skip() };
    const counts = constraints.map(() => new Map<string, number>());
    for (const ni of nodes) {
      const labels = ni.node.metadata.labels ?? {};
      // A node lacking any of the keys belongs to no domain; Filter rejects it as unresolvable.
      if (!constraints.every((c) => labels[c.topologyKey] !== undefined)) continue;
      constraints.forEach((c, i) => {
        if (!matchNodeInclusionPolicies(c, pod, ni.node)) return;
        const value = labels[c.topologyKey]!;
        const m = counts[i]!;
        m.set(value, (m.get(value) ?? 0) + countPodsMatchSelector(ni.pods, c.selector, pod.metadata.namespace ?? ""));
      });
    }
    state.write(PRE_FILTER_KEY, new PreFilterState(constraints, counts));
    return { status: Status.success() };
  }

  filter(state: CycleState, pod: Readonly<Pod>, nodeInfo: NodeInfo): Status {
    const s = state.read<PreFilterState>(PRE_FILTER_KEY);
    if (!s) return Status.success(); // PreFilter skipped: no DoNotSchedule constraints.
    const labels = nodeInfo.node.metadata.labels ?? {};
    const podLabels = pod.metadata.labels ?? {};
    for (let i = 0; i < s.constraints.length; i++) {
      const c = s.constraints[i]!;
      const value = labels[c.topologyKey];
      if (value === undefined) return Status.unresolvable(ErrReasonNodeLabelNotMatch);
      const selfMatch = c.selector.matches(podLabels) ? 1 : 0;
      const skew = (s.tpValueToMatchNum[i]!.get(value) ?? 0) + selfMatch - s.minMatchNum(i);
      if (skew > c.maxSkew) return Status.unschedulable(ErrReasonConstraintsNotMatch);
    }
    return Status.success();
  }

  preScore(state: CycleState, pod: Readonly<Pod>, nodes: readonly NodeInfo[]): Status {
    if (nodes.length === 0) return Status.skip();
    const own = pod.spec?.topologySpreadConstraints ?? [];
    const systemDefaulted = own.length === 0 && (this.args.defaultingType ?? "System") === "System";
    const constraints =
      own.length > 0
        ? parseConstraints(pod, own, "ScheduleAnyway")
        : defaultConstraints(pod, systemDefaulted ? SYSTEM_DEFAULT_CONSTRAINTS : (this.args.defaultConstraints ?? []));
    if (constraints.length === 0) return Status.skip();
    // Upstream: the system defaults tolerate nodes missing one of the keys; explicit constraints don't.
    const requireAllTopologies = !systemDefaulted;

    const ignoredNodes = new Set<string>();
    const pairCounts = new Map<string, number>();
    const topoSize = constraints.map(() => 0);
    for (const ni of nodes) {
      const labels = ni.node.metadata.labels ?? {};
      if (requireAllTopologies && !constraints.every((c) => labels[c.topologyKey] !== undefined)) {
        ignoredNodes.add(ni.node.metadata.name ?? "");
        continue;
      }
      constraints.forEach((c, i) => {
        const value = labels[c.topologyKey];
        if (c.topologyKey === LABEL_HOSTNAME || value === undefined) return;
        const pair = pairKey(c.topologyKey, value);
        if (!pairCounts.has(pair)) {
          pairCounts.set(pair, 0);
          topoSize[i]!++;
        }
      });
    }
    const normalizingWeights = constraints.map((c, i) =>
      Math.log((c.topologyKey === LABEL_HOSTNAME ? nodes.length - ignoredNodes.size : topoSize[i]!) + 2),
    );

    // Count over every node in the cluster, not just the feasible ones, but only for the domains
    // the feasible nodes belong to.
    const namespace = pod.metadata.namespace ?? "";
    for (const ni of this.handle.snapshot().list()) {
      const labels = ni.node.metadata.labels ?? {};
      if (requireAllTopologies && !constraints.every((c) => labels[c.topologyKey] !== undefined)) continue;
      for (const c of constraints) {
        const value = labels[c.topologyKey];
        if (value === undefined || !matchNodeInclusionPolicies(c, pod, ni.node)) continue;
        const pair = pairKey(c.topologyKey, value);
        const cur = pairCounts.get(pair);
        if (cur === undefined) continue;
        pairCounts.set(pair, cur + countPodsMatchSelector(ni.pods, c.selector, namespace));
      }
    }
    const s: PreScoreState = { constraints, ignoredNodes, pairCounts, normalizingWeights };
    state.write(PRE_SCORE_KEY, s);
    return Status.success();
  }

  /** Raw score: weighted matching pods in the node's domains — more is worse; NormalizeScore flips it. */
  score(state: CycleState, pod: Readonly<Pod>, nodeInfo: NodeInfo): { score: number; status: Status } {
    const s = state.read<PreScoreState>(PRE_SCORE_KEY);
    if (!s) return { score: 0, status: Status.success() };
    const node = nodeInfo.node;
    if (s.ignoredNodes.has(node.metadata.name ?? "")) return { score: 0, status: Status.success() };
    const labels = node.metadata.labels ?? {};
    let score = 0;
    s.constraints.forEach((c, i) => {
      const value = labels[c.topologyKey];
      if (value === undefined) return;
      const count =
        c.topologyKey === LABEL_HOSTNAME
          ? countPodsMatchSelector(nodeInfo.pods, c.selector, pod.metadata.namespace ?? "")
          : (s.pairCounts.get(pairKey(c.topologyKey, value)) ?? 0);
      // maxSkew-1 softens the preference for constraints that tolerate more skew.
      score += count * s.normalizingWeights[i]! + (c.maxSkew - 1);
    });
    return { score: Math.round(score), status: Status.success() };
  }

  normalizeScore(state: CycleState, _pod: Readonly<Pod>, scores: NodeScore[]): Status {
    const s = state.read<PreScoreState>(PRE_SCORE_KEY);
    if (!s) return Status.success();
    let min = Infinity;
    let max = 0;
    for (const ns of scores) {
      if (s.ignoredNodes.has(ns.name)) continue;
      min = Math.min(min, ns.score);
      max = Math.max(max, ns.score);
    }
    for (const ns of scores) {
      if (s.ignoredNodes.has(ns.name)) ns.score = 0;
      else if (max === 0) ns.score = MAX_NODE_SCORE;
      else ns.score = Math.floor((MAX_NODE_SCORE * (max + min - ns.score)) / max);
    }
    return Status.success();
  }
}

// ---- helpers -------------------------------------------------------------------------------------

function pairKey(key: string, value: string): string {
  return `${key}\u0000${value}`;
}

/** The constraints of one whenUnsatisfiable kind, with matchLabelKeys folded into the selector. */
function parseConstraints(pod: Readonly<Pod>, all: readonly TopologySpreadConstraint[], kind: TopologySpreadConstraint["whenUnsatisfiable"]): Constraint[] {
  const podLabels = pod.metadata.labels ?? {};
  const out: Constraint[] = [];
  for (const c of all) {
    if (c.whenUnsatisfiable !== kind) continue;
    let sel: LabelSelector | undefined = c.labelSelector;
    const keys = (c.matchLabelKeys ?? []).filter((k) => podLabels[k] !== undefined);
    if (keys.length > 0) {
      sel = {
        matchLabels: { ...sel?.matchLabels },
        matchExpressions: [...(sel?.matchExpressions ?? []), ...keys.map((k) => ({ key: k, operator: "In" as const, values: [podLabels[k]!] }))],
      };
    }
    out.push(toConstraint(c, selectorOrNothing(sel)));
  }
  return out;
}

/** Default constraints select the pod's siblings: here, pods with the pod's own labels. */
/**
 * Upstream builds the default selector from the Services, ReplicaSets and StatefulSets that select
 * or own the pod (helper.DefaultSelector); the scheduler has no listers for those yet, so a pod that
 * a controller owns is spread by its own labels (which include its ReplicaSet's pod-template-hash),
 * and a pod nobody owns gets no default constraints, as upstream gives it an empty selector.
 */
function defaultConstraints(pod: Readonly<Pod>, defaults: readonly TopologySpreadConstraint[]): Constraint[] {
  const labels = pod.metadata.labels ?? {};
  if (Object.keys(labels).length === 0) return []; // upstream: an empty default selector drops the constraints
  if (!(pod.metadata.ownerReferences ?? []).some((r) => r.controller === true)) return [];
  const selector = labelSelectorAsSelector({ matchLabels: labels });
  return defaults.filter((c) => c.whenUnsatisfiable === "ScheduleAnyway").map((c) => toConstraint(c, selector));
}

function toConstraint(c: TopologySpreadConstraint, selector: Selector): Constraint {
  return {
    maxSkew: c.maxSkew,
    topologyKey: c.topologyKey,
    minDomains: c.minDomains ?? 1,
    selector,
    nodeAffinityPolicy: c.nodeAffinityPolicy ?? "Honor",
    nodeTaintsPolicy: c.nodeTaintsPolicy ?? "Ignore",
  };
}

/** Validation rejects bad selectors; should one slip through, it matches nothing rather than throw. */
function selectorOrNothing(sel: LabelSelector | undefined): Selector {
  try {
    return labelSelectorAsSelector(sel);
  } catch {
    return labelSelectorAsSelector(undefined);
  }
}

/** Whether the node's domain counts at all for this constraint (nodeAffinityPolicy / nodeTaintsPolicy). */
function matchNodeInclusionPolicies(c: Constraint, pod: Readonly<Pod>, node: Readonly<Node>): boolean {
  if (c.nodeAffinityPolicy === "Honor" && !podMatchesNodeAffinity(pod, node)) return false;
  if (c.nodeTaintsPolicy === "Honor") {
    const taints = (node.spec?.taints ?? []).filter((t) => t.effect === "NoSchedule" || t.effect === "NoExecute");
    if (!taints.every((t) => tolerated(pod, t))) return false;
  }
  return true;
}

function tolerated(pod: Readonly<Pod>, taint: Taint): boolean {
  return (pod.spec?.tolerations ?? []).some((tol) => {
    if (tol.effect && tol.effect !== taint.effect) return false;
    if (tol.key && tol.key !== taint.key) return false;
    if (!tol.key && tol.operator !== "Exists") return false;
    return tol.operator === "Exists" || (tol.value ?? "") === (taint.value ?? "");
  });
}

/** Pods in the namespace matching the selector, terminating pods excluded (as upstream). */
export function countPodsMatchSelector(pods: readonly PodInfo[], selector: Selector, namespace: string): number {
  let n = 0;
  for (const { pod } of pods) {
    if (pod.metadata.deletionTimestamp || (pod.metadata.namespace ?? "") !== namespace) continue;
    if (selector.matches(pod.metadata.labels)) n++;
  }
  return n;
}

export const newPodTopologySpread: PluginFactory = (args, handle) => new PodTopologySpread(handle, (args ?? {}) as PodTopologySpreadArgs);
