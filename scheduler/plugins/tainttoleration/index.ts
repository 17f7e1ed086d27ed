// TaintToleration: NoSchedule/NoExecute taints a pod doesn't tolerate rule the node out; untolerated
// PreferNoSchedule taints lower its score (plugins/tainttoleration). The toleration matching it
// uses lives in api/taints.ts, shared with the node lifecycle and DaemonSet controllers.

import { doNotScheduleTaint, findMatchingUntoleratedTaint, tolerationsTolerateTaint, type Pod, type Taint, type Toleration } from "../../../api/index.ts";
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
  type PreScorePlugin,
  type ScorePlugin,
} from "../../framework/types.ts";

export const NAME = "TaintToleration";

/** The Filter reason, formatted as kube-scheduler does: `node(s) had untolerated taint {key: value}`. */
export function untoleratedTaintReason(taint: Readonly<Taint>): string {
  return `node(s) had untolerated taint {${taint.key}: ${taint.value ?? ""}}`;
}

export class TaintToleration implements FilterPlugin, PreScorePlugin, ScorePlugin, EnqueueExtensions {
  readonly name = NAME;

  /** A new node, or a node whose taints changed, may now accept the pod. */
  eventsToRegister(): ClusterEvent[] {
    return [{ resource: "Node", actionType: ActionType.Add | ActionType.UpdateNodeTaint }];
  }

  /** Unresolvable: evicting pods never removes a taint. */
  filter(_state: CycleState, pod: Readonly<Pod>, nodeInfo: NodeInfo): Status {
    const taint = findMatchingUntoleratedTaint(nodeInfo.node.spec?.taints, pod.spec?.tolerations, doNotScheduleTaint);
    if (!taint) return Status.success();
    return Status.unresolvable(untoleratedTaintReason(taint));
  }

  preScore(state: CycleState, pod: Readonly<Pod>): Status {
    state.write(PRE_SCORE_STATE_KEY, preScoreStateOf(pod));
    return Status.success();
  }

  /** Raw score: how many PreferNoSchedule taints the pod does not tolerate (more is worse). */
  score(state: CycleState, pod: Readonly<Pod>, nodeInfo: NodeInfo): { score: number; status: Status } {
    // PreScore normally ran; computing here keeps Score usable on its own (e.g. in what-if runs).
    const s = state.read<PreScoreState>(PRE_SCORE_STATE_KEY) ?? preScoreStateOf(pod);
    return { score: countIntolerableTaintsPreferNoSchedule(nodeInfo.node.spec?.taints, s.tolerationsPreferNoSchedule), status: Status.success() };
  }

  /** Fewer untolerated taints is better: scale to 0..100 and reverse. */
  normalizeScore(_state: CycleState, _pod: Readonly<Pod>, scores: NodeScore[]): Status {
    defaultNormalizeScore(MAX_NODE_SCORE, true, scores);
    return Status.success();
  }
}

// ---- pre-score state ---------------------------------------------------------------------------

export const PRE_SCORE_STATE_KEY = "PreScore" + NAME;

interface PreScoreState {
  /** The tolerations that can tolerate a PreferNoSchedule taint (effect empty or PreferNoSchedule). */
  tolerationsPreferNoSchedule: readonly Toleration[];
}

function preScoreStateOf(pod: Readonly<Pod>): PreScoreState {
  const tolerations = (pod.spec?.tolerations ?? []).filter((t) => !t.effect || t.effect === "PreferNoSchedule");
  return { tolerationsPreferNoSchedule: tolerations };
}

function countIntolerableTaintsPreferNoSchedule(taints: readonly Taint[] | undefined, tolerations: readonly Toleration[]): number {
  let n = 0;
  for (const taint of taints ?? []) {
    if (taint.effect !== "PreferNoSchedule") continue;
    if (!tolerationsTolerateTaint(tolerations, taint)) n++;
  }
  return n;
}

// ---- score normalization (plugins/helper.DefaultNormalizeScore) --------------------------------

/**
 * Scales scores in place so the highest becomes maxPriority (integer division, as upstream);
 * `reverse` flips them so the lowest raw score wins. All-zero raw scores become maxPriority when
 * reversed (nobody is worse than anybody) and stay 0 otherwise.
 */
export function defaultNormalizeScore(maxPriority: number, reverse: boolean, scores: NodeScore[]): void {
  let max = 0;
  for (const s of scores) if (s.score > max) max = s.score;
  if (max === 0) {
    if (reverse) for (const s of scores) s.score = maxPriority;
    return;
  }
  for (const s of scores) {
    let v = Math.trunc((maxPriority * s.score) / max);
    if (reverse) v = maxPriority - v;
    s.score = v;
  }
}

export const newTaintToleration: PluginFactory = () => new TaintToleration();
