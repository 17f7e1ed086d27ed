// NodeResourcesBalancedAllocation: prefer nodes whose cpu and memory would be used in equal
// proportion after placing the pod (plugins/noderesources/balanced_allocation.go).

import type { Pod } from "../../../api/index.ts";
import {
  Status,
  type CycleState,
  type NodeInfo,
  type PluginFactory,
  type PreScorePlugin,
  type ScorePlugin,
} from "../../framework/types.ts";
import { balancedAllocationScorer, DEFAULT_RESOURCES, parseResources, podRequestList, scoreNode, type ResourceSpec } from "./allocation.ts";

export const BALANCED_ALLOCATION_NAME = "NodeResourcesBalancedAllocation";

export interface BalancedAllocationArgs {
  resources?: ResourceSpec[];
}

export class BalancedAllocation implements PreScorePlugin, ScorePlugin {
  readonly name = BALANCED_ALLOCATION_NAME;
  private readonly resources: readonly ResourceSpec[];

  constructor(args: BalancedAllocationArgs = {}) {
    this.resources = args.resources ?? DEFAULT_RESOURCES;
  }

  /**
   * Skip for a pod that requests nothing: every node would look equally balanced to it, and
   * scoring it would pile best-effort pods onto one node (kubernetes#129138).
   */
  preScore(state: CycleState, pod: Readonly<Pod>): Status {
    const requests = podRequestList(pod, this.resources, true);
    if (requests.every((r) => r === 0)) return Status.skip();
    state.write(PRE_SCORE_STATE_KEY, requests);
    return Status.success();
  }

  /** Uses actual requests, not the 100m/200Mi defaults: balance is about what pods really asked for. */
  score(state: CycleState, pod: Readonly<Pod>, nodeInfo: NodeInfo): { score: number; status: Status } {
    const requests = state.read<readonly number[]>(PRE_SCORE_STATE_KEY) ?? podRequestList(pod, this.resources, true);
    return { score: scoreNode(nodeInfo, requests, this.resources, true, balancedAllocationScorer), status: Status.success() };
  }
}

export const PRE_SCORE_STATE_KEY = "PreScore" + BALANCED_ALLOCATION_NAME;

export const newBalancedAllocation: PluginFactory = (args) =>
  new BalancedAllocation({ resources: parseResources(args?.["resources"], `${BALANCED_ALLOCATION_NAME} args`) });
