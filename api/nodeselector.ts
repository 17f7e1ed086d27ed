// Node selector matching (component-helpers' nodeaffinity / v1helper.MatchNodeSelectorTerms): a
// PersistentVolume's node affinity (the scheduler's VolumeBinding, the volume controller, the
// kubelet's mount check) and a pod's required node affinity (PodTopologySpread). Pure. The
// scheduler's NodeAffinity plugin compiles selectors for speed (scheduler/plugins/nodeaffinity).

import type { Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod, PersistentVolume } from "./core/v1.ts";

function requirementMatches(req: NodeSelectorRequirement, value: string | undefined): boolean {
  const values = req.values ?? [];
  switch (req.operator) {
    case "In":
      return value !== undefined && values.includes(value);
    case "NotIn":
      return value === undefined || !values.includes(value);
    case "Exists":
      return value !== undefined;
    case "DoesNotExist":
      return value === undefined;
    case "Gt":
    case "Lt": {
      // Both sides must parse as integers, as upstream; anything else never matches.
      if (value === undefined || values.length !== 1 || !/^-?\d+$/.test(value) || !/^-?\d+$/.test(values[0]!)) return false;
      const have = Number(value);
      const want = Number(values[0]);
      return req.operator === "Gt" ? have > want : have < want;
    }
    default:
      return false;
  }
}

/** One term: all its expressions and fields hold. A term with neither matches nothing (as upstream). */
export function nodeSelectorTermMatches(term: NodeSelectorTerm, node: Readonly<Node>): boolean {
  const exprs = term.matchExpressions ?? [];
  const fields = term.matchFields ?? [];
  if (exprs.length === 0 && fields.length === 0) return false;
  const labels = node.metadata.labels ?? {};
  for (const e of exprs) if (!requirementMatches(e, labels[e.key])) return false;
  // The only field upstream supports is metadata.name.
  for (const f of fields) if (f.key !== "metadata.name" || !requirementMatches(f, node.metadata.name)) return false;
  return true;
}

/** The terms are ORed; an absent selector matches every node. */
export function nodeSelectorMatches(selector: NodeSelector | undefined, node: Readonly<Node>): boolean {
  if (!selector) return true;
  return selector.nodeSelectorTerms.some((t) => nodeSelectorTermMatches(t, node));
}

/** The PV's spec.nodeAffinity.required admits the node (a volume without affinity admits every node). */
export function volumeNodeAffinityMatches(pv: Readonly<PersistentVolume>, node: Readonly<Node>): boolean {
  const required = pv.spec?.nodeAffinity?.required;
  return !required?.nodeSelectorTerms?.length || nodeSelectorMatches(required, node);
}

/** The pod's spec.nodeSelector and required node affinity both hold on the node (RequiredNodeAffinity.Match). */
export function podMatchesNodeAffinity(pod: Readonly<Pod>, node: Readonly<Node>): boolean {
  const labels = node.metadata.labels ?? {};
  for (const [k, v] of Object.entries(pod.spec?.nodeSelector ?? {})) if (labels[k] !== v) return false;
  return nodeSelectorMatches(pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution, node);
}
