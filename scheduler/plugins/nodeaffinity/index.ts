// NodeAffinity: spec.nodeSelector and required node affinity decide which nodes a pod may use;
// preferred terms add their weights to the nodes they match (plugins/nodeaffinity). The selector
// matching (component-helpers' nodeaffinity) is exported for the plugins that honor node affinity.

import type { Node, NodeAffinity as NodeAffinitySpec, NodeSelectorRequirement, NodeSelectorTerm, Pod, PreferredSchedulingTerm } from "../../../api/index.ts";
import {
  ActionType,
  MAX_NODE_SCORE,
  Status,
  type ClusterEvent,
  type CycleState,
  type EnqueueExtensions,
  type FilterPlugin,
  type NodeInfo,
  type NodeScore,
  type PluginFactory,
  type PreFilterPlugin,
  type PreFilterResult,
  type PreScorePlugin,
  type ScorePlugin,
} from "../../framework/types.ts";
import { defaultNormalizeScore } from "../tainttoleration/index.ts";

export const NAME = "NodeAffinity";

/** Reasons, word for word as kube-scheduler's. */
export const ERR_REASON_POD = "node(s) didn't match Pod's node affinity/selector";
export const ERR_REASON_ENFORCED = "node(s) didn't match scheduler-enforced node affinity";
export const ERR_REASON_CONFLICT = "pod affinity terms conflict";

/** NodeAffinityArgs: an affinity the profile adds to every pod (e.g. to keep a scheduler to some nodes). */
export interface NodeAffinityArgs {
  addedAffinity?: NodeAffinitySpec;
}

export class NodeAffinity implements PreFilterPlugin, FilterPlugin, PreScorePlugin, ScorePlugin, EnqueueExtensions {
  readonly name = NAME;
  private readonly addedNodeSelector?: NodeSelectorMatcher;
  private readonly addedPreferred: readonly WeightedTerm[];

  constructor(args: NodeAffinityArgs = {}) {
    const required = args.addedAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
    if (required) this.addedNodeSelector = compileNodeSelector(required.nodeSelectorTerms);
    this.addedPreferred = compilePreferred(args.addedAffinity?.preferredDuringSchedulingIgnoredDuringExecution);
  }

  /** Only a node's labels (or a new node) can change whether it matches. */
  eventsToRegister(): ClusterEvent[] {
    return [{ resource: "Node", actionType: ActionType.Add | ActionType.UpdateNodeLabel }];
  }

  /**
   * Skip when the pod constrains nothing. When every required term names nodes by metadata.name,
   * return those names so Filter runs on them alone.
   */
  preFilter(state: CycleState, pod: Readonly<Pod>): { result?: PreFilterResult; status: Status } {
    const required = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
    const hasNodeSelector = Object.keys(pod.spec?.nodeSelector ?? {}).length > 0;
    if (!required && !hasNodeSelector && !this.addedNodeSelector) return { status: Status.skip() };
    state.write(PRE_FILTER_STATE_KEY, getRequiredNodeAffinity(pod));
    if (!required || required.nodeSelectorTerms.length === 0) return { status: Status.success() };

    let nodeNames: Set<string> | undefined;
    for (const term of required.nodeSelectorTerms) {
      let termNames: Set<string> | undefined;
      for (const r of term.matchFields ?? []) {
        if (r.key !== OBJECT_NAME_FIELD || r.operator !== "In") continue;
        // Requirements within a term are ANDed: intersect.
        const s = new Set(r.values ?? []);
        termNames = termNames ? new Set([...termNames].filter((n) => s.has(n))) : s;
      }
      // Terms are ORed: one term not naming nodes leaves every node eligible.
      if (!termNames) return { status: Status.success() };
      nodeNames = new Set([...(nodeNames ?? []), ...termNames]);
    }
    if (nodeNames && nodeNames.size === 0) return { status: Status.unresolvable(ERR_REASON_CONFLICT) };
    return { result: { nodeNames }, status: Status.success() };
  }

  /** Unresolvable: preemption does not relabel nodes. */
  filter(state: CycleState, pod: Readonly<Pod>, nodeInfo: NodeInfo): Status {
    const node = nodeInfo.node;
    if (this.addedNodeSelector && !this.addedNodeSelector.match(node)) return Status.unresolvable(ERR_REASON_ENFORCED);
    // PreFilter normally ran; computing here keeps Filter correct if a profile disabled it.
    const required = state.read<RequiredNodeAffinity>(PRE_FILTER_STATE_KEY) ?? getRequiredNodeAffinity(pod);
    if (!required.match(node)) return Status.unresolvable(ERR_REASON_POD);
    return Status.success();
  }

  /** Skip when neither the pod nor the profile has preferred terms. */
  preScore(state: CycleState, pod: Readonly<Pod>): Status {
    const terms = this.preferredTerms(pod);
    if (terms.length === 0) return Status.skip();
    state.write(PRE_SCORE_STATE_KEY, terms);
    return Status.success();
  }

  /** Raw score: the sum of the weights of the preferred terms the node matches. */
  score(state: CycleState, pod: Readonly<Pod>, nodeInfo: NodeInfo): { score: number; status: Status } {
    const terms = state.read<readonly WeightedTerm[]>(PRE_SCORE_STATE_KEY) ?? this.preferredTerms(pod);
    let score = 0;
    for (const t of terms) if (t.term.match(nodeInfo.node)) score += t.weight;
    return { score, status: Status.success() };
  }

  /** Scales so the best-matching node gets 100. */
  normalizeScore(_state: CycleState, _pod: Readonly<Pod>, scores: NodeScore[]): Status {
    defaultNormalizeScore(MAX_NODE_SCORE, false, scores);
    return Status.success();
  }

  private preferredTerms(pod: Readonly<Pod>): WeightedTerm[] {
    return [...this.addedPreferred, ...compilePreferred(pod.spec?.affinity?.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution)];
  }
}

// ---- cycle state -------------------------------------------------------------------------------

export const PRE_FILTER_STATE_KEY = "PreFilter" + NAME;
export const PRE_SCORE_STATE_KEY = "PreScore" + NAME;

// ---- node selector matching (component-helpers/scheduling/corev1/nodeaffinity) -----------------

/** The only field node selector terms may match on. */
export const OBJECT_NAME_FIELD = "metadata.name";

/** Something a node matches or not. */
export interface NodeSelectorMatcher {
  match(node: Readonly<Node>): boolean;
}

/** nodeSelector AND required node affinity: the pod's hard node constraints. */
export type RequiredNodeAffinity = NodeSelectorMatcher;

interface WeightedTerm {
  weight: number;
  term: NodeSelectorMatcher;
}

/** The pod's nodeSelector and required node affinity as one matcher (nodeaffinity.GetRequiredNodeAffinity). */
export function getRequiredNodeAffinity(pod: Readonly<Pod>): RequiredNodeAffinity {
  const selector = Object.entries(pod.spec?.nodeSelector ?? {});
  const required = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  const affinity = required ? compileNodeSelector(required.nodeSelectorTerms) : undefined;
  return {
    match(node) {
      const labels = node.metadata.labels ?? {};
      for (const [k, v] of selector) if (labels[k] !== v) return false;
      return !affinity || affinity.match(node);
    },
  };
}

/**
 * ORed terms. Empty terms and terms that don't parse match nothing, but never spoil the others
 * (upstream's LazyErrorNodeSelector); with no usable term the selector matches no node.
 */
export function compileNodeSelector(terms: readonly NodeSelectorTerm[]): NodeSelectorMatcher {
  const compiled = terms.map(compileTerm).filter((t): t is NodeSelectorMatcher => t !== undefined);
  return { match: (node) => compiled.some((t) => t.match(node)) };
}

/** Every preferred term with a weight and at least one requirement; others are ignored. */
function compilePreferred(terms: readonly PreferredSchedulingTerm[] | undefined): WeightedTerm[] {
  const out: WeightedTerm[] = [];
  for (const t of terms ?? []) {
    if (!t.weight) continue;
    const term = compileTerm(t.preference);
    if (term) out.push({ weight: t.weight, term });
  }
  return out;
}

type Predicate = (values: Readonly<Record<string, string>>) => boolean;

/** ANDed requirements; undefined for an empty term or one with an invalid requirement. */
export function compileTerm(term: Readonly<NodeSelectorTerm>): NodeSelectorMatcher | undefined {
  const exprs = term.matchExpressions ?? [];
  const fields = term.matchFields ?? [];
  if (exprs.length === 0 && fields.length === 0) return undefined;
  const labelPreds: Predicate[] = [];
  for (const r of exprs) {
    const p = labelRequirement(r);
    if (!p) return undefined;
    labelPreds.push(p);
  }
  const fieldPreds: Predicate[] = [];
  for (const r of fields) {
    const p = fieldRequirement(r);
    if (!p) return undefined;
    fieldPreds.push(p);
  }
  return {
    match(node) {
      const labels = node.metadata.labels ?? {};
      if (!labelPreds.every((p) => p(labels))) return false;
      if (fieldPreds.length === 0) return true;
      const nodeFields = { [OBJECT_NAME_FIELD]: node.metadata.name ?? "" };
      return fieldPreds.every((p) => p(nodeFields));
    },
  };
}

const INTEGER = /^[+-]?\d+$/;

/** A label requirement, or undefined when its values don't fit its operator. */
function labelRequirement(r: Readonly<NodeSelectorRequirement>): Predicate | undefined {
  const key = r.key;
  const values = r.values ?? [];
  const has = (l: Readonly<Record<string, string>>) => Object.hasOwn(l, key);
  switch (r.operator) {
    case "In": {
      if (values.length === 0) return undefined;
      const set = new Set(values);
      return (l) => has(l) && set.has(l[key]!);
    }
    case "NotIn": {
      if (values.length === 0) return undefined;
      const set = new Set(values);
      return (l) => !has(l) || !set.has(l[key]!);
    }
    case "Exists":
      return values.length === 0 ? has : undefined;
    case "DoesNotExist":
      return values.length === 0 ? (l) => !has(l) : undefined;
    case "Gt":
    case "Lt": {
      if (values.length !== 1 || !INTEGER.test(values[0]!)) return undefined;
      const bound = Number.parseInt(values[0]!, 10);
      const gt = r.operator === "Gt";
      return (l) => {
        if (!has(l) || !INTEGER.test(l[key]!)) return false;
        const v = Number.parseInt(l[key]!, 10);
        return gt ? v > bound : v < bound;
      };
    }
    default:
      return undefined;
  }
}

/** A field requirement: In or NotIn with exactly one value. */
function fieldRequirement(r: Readonly<NodeSelectorRequirement>): Predicate | undefined {
  const values = r.values ?? [];
  if (values.length !== 1) return undefined;
  const want = values[0]!;
  switch (r.operator) {
    case "In":
      return (f) => (f[r.key] ?? "") === want;
    case "NotIn":
      return (f) => (f[r.key] ?? "") !== want;
    default:
      return undefined;
  }
}

// ---- factory -----------------------------------------------------------------------------------

export const newNodeAffinity: PluginFactory = (args) => {
  const added = args?.["addedAffinity"];
  if (added !== undefined && (typeof added !== "object" || added === null)) throw new Error(`${NAME} args: addedAffinity must be an object`);
  return new NodeAffinity({ addedAffinity: added as NodeAffinitySpec | undefined });
};
