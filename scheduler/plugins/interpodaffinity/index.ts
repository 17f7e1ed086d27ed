// InterPodAffinity: places a pod relative to the pods already running — required affinity and
// anti-affinity (its own and, symmetrically, existing pods' anti-affinity against it) as a Filter,
// preferred terms as a Score (upstream pkg/scheduler/framework/plugins/interpodaffinity).

import {
  labelSelectorAsSelector,
  type LabelSelector,
  type LabelSelectorRequirement,
  type Node,
  type Pod,
  type PodAffinityTerm,
  type Selector,
  type WeightedPodAffinityTerm,
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
  type PreFilterPlugin,
  type PreFilterResult,
  type PreScorePlugin,
  type ScorePlugin,
} from "../../framework/types.ts";

export const NAME = "InterPodAffinity";

export const ErrReasonAffinityRulesNotMatch = "node(s) didn't match pod affinity rules";
export const ErrReasonAntiAffinityRulesNotMatch = "node(s) didn't match pod anti-affinity rules";
export const ErrReasonExistingAntiAffinityRulesNotMatch = "node(s) didn't satisfy existing pods anti-affinity rules";

/** Factory args (InterPodAffinityArgs). */
export interface InterPodAffinityArgs {
  /** Score weight of an existing pod's *required* affinity term matching the incoming pod; default 1, 0 disables. */
  hardPodAffinityWeight?: number;
}

/** A term resolved against the pod that declares it: which namespaces, which labels, which domain key. */
export interface AffinityTerm {
  /** undefined: every namespace (an empty namespaceSelector). */
  namespaces: ReadonlySet<string> | undefined;
  selector: Selector;
  topologyKey: string;
}

interface WeightedAffinityTerm extends AffinityTerm {
  weight: number;
}

const PRE_FILTER_KEY = `PreFilter${NAME}`;
const PRE_SCORE_KEY = `PreScore${NAME}`;

/** Counts per topology pair (`${key}\0${value}`), computed once in PreFilter and read by Filter on each node. */
class PreFilterState {
  constructor(
    readonly affinityTerms: readonly AffinityTerm[],
    readonly antiAffinityTerms: readonly AffinityTerm[],
    /** Domains holding a pod that matches all the incoming pod's required affinity terms. */
    readonly affinityCounts: Map<string, number>,
    /** Domains holding a pod that matches one of the incoming pod's required anti-affinity terms. */
    readonly antiAffinityCounts: Map<string, number>,
    /** Domains holding an existing pod whose required anti-affinity matches the incoming pod. */
    readonly existingAntiAffinityCounts: Map<string, number>,
  ) {}

  clone(): PreFilterState {
    return new PreFilterState(
      this.affinityTerms,
      this.antiAffinityTerms,
      new Map(this.affinityCounts),
      new Map(this.antiAffinityCounts),
      new Map(this.existingAntiAffinityCounts),
    );
  }
}

/** topology key → value → summed weight; Score adds up the entries for the node's labels. */
type PreScoreState = ReadonlyMap<string, ReadonlyMap<string, number>>;

export class InterPodAffinity implements PreFilterPlugin, FilterPlugin, PreScorePlugin, ScorePlugin, EnqueueExtensions {
  readonly name = NAME;
  private readonly hardPodAffinityWeight: number;

  constructor(
    private readonly handle: Handle,
    args: InterPodAffinityArgs = {},
  ) {
    this.hardPodAffinityWeight = args.hardPodAffinityWeight ?? 1;
  }

  /** A matching pod appearing or leaving, or a node gaining the topology label, can change the verdict. */
  eventsToRegister(): ClusterEvent[] {
    return [
      { resource: "Pod", actionType: ActionType.Add | ActionType.Delete | ActionType.UpdatePodLabel },
      { resource: "Node", actionType: ActionType.Add | ActionType.UpdateNodeLabel },
    ];
  }

  preFilter(state: CycleState, pod: Readonly<Pod>, nodes: readonly NodeInfo[]): { result?: PreFilterResult; status: Status } {
    const affinity = pod.spec?.affinity;
    const affinityTerms = resolveTerms(pod, affinity?.podAffinity?.requiredDuringSchedulingIgnoredDuringExecution);
    const antiAffinityTerms = resolveTerms(pod, affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution);

    const existingAntiAffinityCounts = new Map<string, number>();
    for (const ni of nodes) {
      for (const { pod: existing } of ni.podsWithRequiredAntiAffinity) {
        for (const term of resolveTerms(existing, existing.spec?.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution)) {
          if (termMatches(term, pod)) increment(existingAntiAffinityCounts, ni.node, term.topologyKey, 1);
        }
      }
    }

    const affinityCounts = new Map<string, number>();
    const antiAffinityCounts = new Map<string, number>();
    if (affinityTerms.length > 0 || antiAffinityTerms.length > 0) {
      for (const ni of nodes) {
        for (const { pod: existing } of ni.pods) {
          if (affinityTerms.length > 0 && affinityTerms.every((t) => termMatches(t, existing))) {
            for (const t of affinityTerms) increment(affinityCounts, ni.node, t.topologyKey, 1);
          }
          for (const t of antiAffinityTerms) if (termMatches(t, existing)) increment(antiAffinityCounts, ni.node, t.topologyKey, 1);
        }
      }
    }

    if (existingAntiAffinityCounts.size === 0 && affinityTerms.length === 0 && antiAffinityTerms.length === 0) {
      return { status: Status.skip() };
    }
    state.write(PRE_FILTER_KEY, new PreFilterState(affinityTerms, antiAffinityTerms, affinityCounts, antiAffinityCounts, existingAntiAffinityCounts));
    return { status: Status.success() };
  }

  filter(state: CycleState, pod: Readonly<Pod>, nodeInfo: NodeInfo): Status {
    const s = state.read<PreFilterState>(PRE_FILTER_KEY);
    if (!s) return Status.success(); // PreFilter skipped: nothing to check.
    const node = nodeInfo.node;
    // Affinity is unresolvable: removing pods (preemption) can never create the pods it needs.
    if (!satisfyPodAffinity(s, pod, node)) return Status.unresolvable(ErrReasonAffinityRulesNotMatch);
    if (!satisfyPodAntiAffinity(s, node)) return Status.unschedulable(ErrReasonAntiAffinityRulesNotMatch);
    if (!satisfyExistingPodsAntiAffinity(s, node)) return Status.unschedulable(ErrReasonExistingAntiAffinityRulesNotMatch);
    return Status.success();
  }

  preScore(state: CycleState, pod: Readonly<Pod>, nodes: readonly NodeInfo[]): Status {
    if (nodes.length === 0) return Status.skip();
    const affinity = pod.spec?.affinity;
    const preferredAffinity = resolveWeightedTerms(pod, affinity?.podAffinity?.preferredDuringSchedulingIgnoredDuringExecution);
    const preferredAntiAffinity = resolveWeightedTerms(pod, affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution);
    const hasPreferred = preferredAffinity.length > 0 || preferredAntiAffinity.length > 0;

    // Without preferred terms of its own, only existing pods' terms can score the pod.
    const snapshot = this.handle.snapshot();
    const walk = hasPreferred ? snapshot.list() : snapshot.havePodsWithAffinityList();
    if (walk.length === 0) return Status.skip();

    const scores = new Map<string, Map<string, number>>();
    const add = (node: Readonly<Node>, key: string, weight: number): void => {
      const value = node.metadata.labels?.[key];
      if (value === undefined || weight === 0) return;
      let byValue = scores.get(key);
      if (!byValue) scores.set(key, (byValue = new Map()));
      byValue.set(value, (byValue.get(value) ?? 0) + weight);
    };
    for (const ni of walk) {
      for (const { pod: existing } of hasPreferred ? ni.pods : ni.podsWithAffinity) {
        for (const t of preferredAffinity) if (termMatches(t, existing)) add(ni.node, t.topologyKey, t.weight);
        for (const t of preferredAntiAffinity) if (termMatches(t, existing)) add(ni.node, t.topologyKey, -t.weight);
        const ex = existing.spec?.affinity;
        if (!ex) continue;
        if (this.hardPodAffinityWeight > 0) {
          for (const t of resolveTerms(existing, ex.podAffinity?.requiredDuringSchedulingIgnoredDuringExecution)) {
            if (termMatches(t, pod)) add(ni.node, t.topologyKey, this.hardPodAffinityWeight);
          }
        }
        for (const t of resolveWeightedTerms(existing, ex.podAffinity?.preferredDuringSchedulingIgnoredDuringExecution)) {
          if (termMatches(t, pod)) add(ni.node, t.topologyKey, t.weight);
        }
        for (const t of resolveWeightedTerms(existing, ex.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution)) {
          if (termMatches(t, pod)) add(ni.node, t.topologyKey, -t.weight);
        }
      }
    }
    const s: PreScoreState = scores;
    state.write(PRE_SCORE_KEY, s);
    return Status.success();
  }

  score(state: CycleState, _pod: Readonly<Pod>, nodeInfo: NodeInfo): { score: number; status: Status } {
    const s = state.read<PreScoreState>(PRE_SCORE_KEY);
    if (!s) return { score: 0, status: Status.success() };
    const labels = nodeInfo.node.metadata.labels ?? {};
    let score = 0;
    for (const [key, byValue] of s) {
      const value = labels[key];
      if (value !== undefined) score += byValue.get(value) ?? 0;
    }
    return { score, status: Status.success() };
  }

  /** Raw scores may be negative (anti-affinity); rescale min..max to 0..MAX_NODE_SCORE. */
  normalizeScore(state: CycleState, _pod: Readonly<Pod>, scores: NodeScore[]): Status {
    const s = state.read<PreScoreState>(PRE_SCORE_KEY);
    if (!s || s.size === 0) return Status.success();
    let min = Infinity;
    let max = -Infinity;
    for (const ns of scores) {
      min = Math.min(min, ns.score);
      max = Math.max(max, ns.score);
    }
    const diff = max - min;
    for (const ns of scores) ns.score = diff > 0 ? Math.trunc((MAX_NODE_SCORE * (ns.score - min)) / diff) : 0;
    return Status.success();
  }
}

// ---- Filter checks -------------------------------------------------------------------------------

function satisfyPodAffinity(s: PreFilterState, pod: Readonly<Pod>, node: Readonly<Node>): boolean {
  if (s.affinityTerms.length === 0) return true;
  const labels = node.metadata.labels ?? {};
  let podsExist = true;
  for (const t of s.affinityTerms) {
    const value = labels[t.topologyKey];
    if (value === undefined) return false; // the node belongs to no domain of this term
    if ((s.affinityCounts.get(pairKey(t.topologyKey, value)) ?? 0) <= 0) podsExist = false;
  }
  if (podsExist) return true;
  // The first pod of a group whose affinity selects itself: with no matching pod anywhere in the
  // cluster, it may go anywhere — otherwise such a group could never start (as upstream).
  return s.affinityCounts.size === 0 && s.affinityTerms.every((t) => termMatches(t, pod));
}

function satisfyPodAntiAffinity(s: PreFilterState, node: Readonly<Node>): boolean {
  const labels = node.metadata.labels ?? {};
  for (const t of s.antiAffinityTerms) {
    const value = labels[t.topologyKey];
    if (value !== undefined && (s.antiAffinityCounts.get(pairKey(t.topologyKey, value)) ?? 0) > 0) return false;
  }
  return true;
}

function satisfyExistingPodsAntiAffinity(s: PreFilterState, node: Readonly<Node>): boolean {
  if (s.existingAntiAffinityCounts.size === 0) return true;
  for (const [key, value] of Object.entries(node.metadata.labels ?? {})) {
    if ((s.existingAntiAffinityCounts.get(pairKey(key, value)) ?? 0) > 0) return false;
  }
  return true;
}

// ---- terms -----------------------------------------------------------------------------------------

function pairKey(key: string, value: string): string {
  return `${key}\u0000${value}`;
}

function increment(counts: Map<string, number>, node: Readonly<Node>, key: string, by: number): void {
  const value = node.metadata.labels?.[key];
  if (value === undefined) return;
  const k = pairKey(key, value);
  counts.set(k, (counts.get(k) ?? 0) + by);
}

/** Whether the pod is in one of the term's namespaces and carries the labels it selects. */
export function termMatches(term: AffinityTerm, pod: Readonly<Pod>): boolean {
  if (term.namespaces && !term.namespaces.has(pod.metadata.namespace ?? "")) return false;
  return term.selector.matches(pod.metadata.labels);
}

/**
 * Resolves terms against the pod that declares them: no namespaces and no namespaceSelector mean
 * the pod's own namespace; an empty namespaceSelector means all namespaces. A non-empty
 * namespaceSelector needs namespace labels the snapshot does not carry yet, so it adds no
 * namespaces beyond the listed ones. matchLabelKeys/mismatchLabelKeys fold the pod's own label
 * values into the selector.
 */
export function resolveTerms(pod: Readonly<Pod>, terms: readonly PodAffinityTerm[] | undefined): AffinityTerm[] {
  return (terms ?? []).map((t) => resolveTerm(pod, t));
}

function resolveWeightedTerms(pod: Readonly<Pod>, terms: readonly WeightedPodAffinityTerm[] | undefined): WeightedAffinityTerm[] {
  return (terms ?? []).map((w) => ({ ...resolveTerm(pod, w.podAffinityTerm), weight: w.weight }));
}

function resolveTerm(pod: Readonly<Pod>, t: PodAffinityTerm): AffinityTerm {
  let namespaces: Set<string> | undefined = new Set(t.namespaces ?? []);
  const nsSel = t.namespaceSelector;
  if (nsSel && (nsSel.matchLabels === undefined || Object.keys(nsSel.matchLabels).length === 0) && (nsSel.matchExpressions ?? []).length === 0) {
    namespaces = undefined;
  } else if (namespaces.size === 0 && !nsSel) {
    namespaces.add(pod.metadata.namespace ?? "");
  }
  const podLabels = pod.metadata.labels ?? {};
  const extra: LabelSelectorRequirement[] = [];
  for (const k of t.matchLabelKeys ?? []) if (podLabels[k] !== undefined) extra.push({ key: k, operator: "In", values: [podLabels[k]!] });
  for (const k of t.mismatchLabelKeys ?? []) if (podLabels[k] !== undefined) extra.push({ key: k, operator: "NotIn", values: [podLabels[k]!] });
  let sel: LabelSelector | undefined = t.labelSelector;
  if (extra.length > 0 && sel) sel = { matchLabels: sel.matchLabels, matchExpressions: [...(sel.matchExpressions ?? []), ...extra] };
  return { namespaces, selector: selectorOrNothing(sel), topologyKey: t.topologyKey };
}

/** An absent selector matches no pods (as upstream); an invalid one (validation should stop it) too. */
function selectorOrNothing(sel: LabelSelector | undefined): Selector {
  try {
    return labelSelectorAsSelector(sel);
  } catch {
    return labelSelectorAsSelector(undefined);
  }
}

export const newInterPodAffinity: PluginFactory = (args, handle) => new InterPodAffinity(handle, (args ?? {}) as InterPodAffinityArgs);
