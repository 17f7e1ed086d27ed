// NodeResourcesFit: the pod's requests (init containers and overhead included) must fit in what the
// node has left; Score ranks nodes by LeastAllocated (spread) or MostAllocated (bin packing)
// (plugins/noderesources/fit.go). NodeResourcesBalancedAllocation lives in balanced.ts.

import type { Pod } from "../../../api/index.ts";
import {
  ActionType,
  Code,
  Status,
  type ClusterEvent,
  type CycleState,
  type EnqueueExtensions,
  type FilterPlugin,
  type NodeInfo,
  type PluginFactory,
  type PreFilterPlugin,
  type PreFilterResult,
  type PreScorePlugin,
  type Resource,
  type ScorePlugin,
} from "../../framework/types.ts";
import { podRequests } from "../../framework/nodeinfo.ts";
import {
  DEFAULT_RESOURCES,
  leastAllocatedScorer,
  mostAllocatedScorer,
  parseResources,
  podRequestList,
  scoreNode,
  type ResourceSpec,
  type Scorer,
} from "./allocation.ts";

export { BALANCED_ALLOCATION_NAME, BalancedAllocation, newBalancedAllocation, type BalancedAllocationArgs } from "./balanced.ts";
export { DEFAULT_RESOURCES, type ResourceSpec } from "./allocation.ts";

export const NAME = "NodeResourcesFit";

/** Reasons, word for word as kube-scheduler's; an extended resource reads "Insufficient <name>". */
export const REASON_TOO_MANY_PODS = "Too many pods";
export const insufficientReason = (resource: string): string => `Insufficient ${resource}`;

export type ScoringStrategyType = "LeastAllocated" | "MostAllocated";

/** NodeResourcesFitArgs, as they appear in the profile's pluginConfig. */
export interface FitArgs {
  /** Extended resources Filter does not check (e.g. ones a device plugin admits itself). */
  ignoredResources?: string[];
  /** Extended resource groups (the part before "/") Filter does not check. */
  ignoredResourceGroups?: string[];
  scoringStrategy?: { type?: ScoringStrategyType; resources?: ResourceSpec[] };
}

/** One resource the node lacks for the pod (noderesources.InsufficientResource). */
export interface InsufficientResource {
  resourceName: string;
  reason: string;
  requested: number;
  used: number;
  capacity: number;
  /** The pod asks for more than the whole node has: preemption cannot help. */
  unresolvable: boolean;
}

export class Fit implements PreFilterPlugin, FilterPlugin, PreScorePlugin, ScorePlugin, EnqueueExtensions {
  readonly name = NAME;
  private readonly ignoredResources: ReadonlySet<string>;
  private readonly ignoredResourceGroups: ReadonlySet<string>;
  private readonly resources: readonly ResourceSpec[];
  private readonly scorer: Scorer;

  constructor(args: FitArgs = {}) {
    this.ignoredResources = new Set(args.ignoredResources ?? []);
    this.ignoredResourceGroups = new Set(args.ignoredResourceGroups ?? []);
    this.resources = args.scoringStrategy?.resources ?? DEFAULT_RESOURCES;
    this.scorer = args.scoringStrategy?.type === "MostAllocated" ? mostAllocatedScorer : leastAllocatedScorer;
  }

  /** Room appears when a pod leaves, a node joins, or a node's allocatable grows. */
  eventsToRegister(): ClusterEvent[] {
    return [
      { resource: "Pod", actionType: ActionType.Delete },
      { resource: "Node", actionType: ActionType.Add | ActionType.UpdateNodeAllocatable },
    ];
  }

  preFilter(state: CycleState, pod: Readonly<Pod>): { result?: PreFilterResult; status: Status } {
    state.write(PRE_FILTER_STATE_KEY, podRequests(pod));
    return { status: Status.success() };
  }

  /**
   * One Status with every reason the node falls short. Unschedulable, unless some request exceeds
   * the node's whole allocatable: then UnschedulableAndUnresolvable, since no preemption helps.
   */
  filter(state: CycleState, pod: Readonly<Pod>, nodeInfo: NodeInfo): Status {
    const request = state.read<Resource>(PRE_FILTER_STATE_KEY) ?? podRequests(pod);
    const insufficient = fitsRequest(request, nodeInfo, this.ignoredResources, this.ignoredResourceGroups);
    if (insufficient.length === 0) return Status.success();
    const code = insufficient.some((r) => r.unresolvable) ? Code.UnschedulableAndUnresolvable : Code.Unschedulable;
    return new Status(code, insufficient.map((r) => r.reason));
  }

  preScore(state: CycleState, pod: Readonly<Pod>): Status {
    state.write(PRE_SCORE_STATE_KEY, podRequestList(pod, this.resources, false));
    return Status.success();
  }

  /** Already 0..100: no NormalizeScore. */
  score(state: CycleState, pod: Readonly<Pod>, nodeInfo: NodeInfo): { score: number; status: Status } {
    const requests = state.read<readonly number[]>(PRE_SCORE_STATE_KEY) ?? podRequestList(pod, this.resources, false);
    return { score: scoreNode(nodeInfo, requests, this.resources, false, this.scorer), status: Status.success() };
  }
}

// ---- cycle state -------------------------------------------------------------------------------

/** The pod's effective requests (framework Resource), written by PreFilter. */
export const PRE_FILTER_STATE_KEY = "PreFilter" + NAME;
/** The pod's non-zero requests for each scored resource, written by PreScore. */
export const PRE_SCORE_STATE_KEY = "PreScore" + NAME;

// ---- fit -----------------------------------------------------------------------------------------

/** What the node lacks for a pod with these requests; empty when it fits. */
export function fitsRequest(
  request: Resource,
  nodeInfo: NodeInfo,
  ignoredResources: ReadonlySet<string> = new Set(),
  ignoredResourceGroups: ReadonlySet<string> = new Set(),
): InsufficientResource[] {
  const out: InsufficientResource[] = [];
  const alloc = nodeInfo.allocatable;
  const used = nodeInfo.requested;

  if (nodeInfo.pods.length + 1 > alloc.allowedPodNumber) {
    out.push({
      resourceName: "pods",
      reason: REASON_TOO_MANY_PODS,
      requested: 1,
      used: nodeInfo.pods.length,
      capacity: alloc.allowedPodNumber,
      unresolvable: false,
    });
  }
  const scalarNames = Object.keys(request.scalar);
  if (request.milliCPU === 0 && request.memory === 0 && request.ephemeralStorage === 0 && scalarNames.length === 0) return out;

  const check = (resourceName: string, want: number, usedAmount: number, capacity: number) => {
    if (want > 0 && want > capacity - usedAmount) {
      out.push({ resourceName, reason: insufficientReason(resourceName), requested: want, used: usedAmount, capacity, unresolvable: want > capacity });
    }
  };
  check("cpu", request.milliCPU, used.milliCPU, alloc.milliCPU);
  check("memory", request.memory, used.memory, alloc.memory);
  check("ephemeral-storage", request.ephemeralStorage, used.ephemeralStorage, alloc.ephemeralStorage);
  for (const name of scalarNames) {
    if (isExtendedResourceName(name)) {
      if (ignoredResources.has(name) || ignoredResourceGroups.has(name.split("/")[0]!)) continue;
    }
    check(name, request.scalar[name] ?? 0, used.scalar[name] ?? 0, alloc.scalar[name] ?? 0);
  }
  return out;
}

/** Extended resources are domain-qualified and outside kubernetes.io (v1helper.IsExtendedResourceName). */
export function isExtendedResourceName(name: string): boolean {
  if (!name.includes("/") || name.startsWith("requests.")) return false;
  const domain = name.split("/")[0]!;
  return domain !== "kubernetes.io" && !domain.endsWith(".kubernetes.io");
}

// ---- factory -----------------------------------------------------------------------------------

/** Validates the untyped pluginConfig args; a malformed config throws (the profile fails to build). */
export function parseFitArgs(args: Record<string, unknown> | undefined): FitArgs {
  if (!args) return {};
  const strings = (v: unknown, field: string): string[] | undefined => {
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || !v.every((s): s is string => typeof s === "string")) throw new Error(`${NAME} args: ${field} must be a list of strings`);
    return v;
  };
  const out: FitArgs = {
    ignoredResources: strings(args["ignoredResources"], "ignoredResources"),
    ignoredResourceGroups: strings(args["ignoredResourceGroups"], "ignoredResourceGroups"),
  };
  const strategy = args["scoringStrategy"];
  if (strategy !== undefined) {
    if (typeof strategy !== "object" || strategy === null) throw new Error(`${NAME} args: scoringStrategy must be an object`);
    const { type, resources } = strategy as { type?: unknown; resources?: unknown };
    if (type !== undefined && type !== "LeastAllocated" && type !== "MostAllocated") {
      throw new Error(`${NAME} args: scoringStrategy.type must be LeastAllocated or MostAllocated, got ${JSON.stringify(type)}`);
    }
    out.scoringStrategy = { type, resources: parseResources(resources, `${NAME} args: scoringStrategy`) };
  }
  return out;
}

export const newFit: PluginFactory = (args) => new Fit(parseFitArgs(args));
