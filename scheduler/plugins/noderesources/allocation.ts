// The resource-allocation scoring shared by NodeResourcesFit and NodeResourcesBalancedAllocation
// (plugins/noderesources/resource_allocation.go and the three scorers).

import type { Pod } from "../../../api/index.ts";
import { MAX_NODE_SCORE, type NodeInfo, type Resource } from "../../framework/types.ts";
import { nonZeroRequests, podRequests } from "../../framework/nodeinfo.ts";

/** A resource to score on and its weight (config.ResourceSpec). */
export interface ResourceSpec {
  name: string;
  weight: number;
}

/** cpu and memory, weight 1 each: upstream's default for both scoring plugins. */
export const DEFAULT_RESOURCES: readonly ResourceSpec[] = [
  { name: "cpu", weight: 1 },
  { name: "memory", weight: 1 },
];

/** Combines per-resource requested/allocatable (same order as resources) into a 0..100 node score. */
export type Scorer = (requested: readonly number[], allocatable: readonly number[], resources: readonly ResourceSpec[]) => number;

const NATIVE = new Set(["cpu", "memory", "ephemeral-storage", "pods"]);

function amount(r: Resource, name: string): number {
  switch (name) {
    case "cpu":
      return r.milliCPU;
    case "memory":
      return r.memory;
    case "ephemeral-storage":
      return r.ephemeralStorage;
    case "pods":
      return r.allowedPodNumber;
    default:
      return r.scalar[name] ?? 0;
  }
}

/**
 * The pod's request for each resource. With `useRequested` false, containers that request no cpu
 * or memory count 100m / 200 MiB, so best-effort pods still spread (upstream's non-zero requests).
 */
export function podRequestList(pod: Readonly<Pod>, resources: readonly ResourceSpec[], useRequested: boolean): number[] {
  const r = useRequested ? podRequests(pod) : nonZeroRequests(pod);
  return resources.map((res) => amount(r, res.name));
}

/**
 * The node's allocatable and what would be requested with the pod placed, for one resource.
 * [0, 0] means "leave this resource out": an extended resource the pod doesn't ask for, or one
 * the node doesn't have.
 */
export function allocatableAndRequested(nodeInfo: NodeInfo, name: string, podRequest: number, useRequested: boolean): [number, number] {
  const requested = useRequested ? nodeInfo.requested : nodeInfo.nonZeroRequested;
  if (!NATIVE.has(name) && podRequest === 0) return [0, 0];
  switch (name) {
    case "cpu":
      return [nodeInfo.allocatable.milliCPU, requested.milliCPU + podRequest];
    case "memory":
      return [nodeInfo.allocatable.memory, requested.memory + podRequest];
    case "ephemeral-storage":
      return [nodeInfo.allocatable.ephemeralStorage, nodeInfo.requested.ephemeralStorage + podRequest];
    case "pods":
      return [0, 0];
    default:
      if (name in nodeInfo.allocatable.scalar) return [nodeInfo.allocatable.scalar[name] ?? 0, (nodeInfo.requested.scalar[name] ?? 0) + podRequest];
      return [0, 0];
  }
}

/** The node's score for the pod under a scorer. */
export function scoreNode(
  nodeInfo: NodeInfo,
  podRequestsList: readonly number[],
  resources: readonly ResourceSpec[],
  useRequested: boolean,
  scorer: Scorer,
): number {
  const requested = new Array<number>(resources.length).fill(0);
  const allocatable = new Array<number>(resources.length).fill(0);
  for (let i = 0; i < resources.length; i++) {
    const [alloc, req] = allocatableAndRequested(nodeInfo, resources[i]!.name, podRequestsList[i] ?? 0, useRequested);
    if (alloc === 0) continue;
    allocatable[i] = alloc;
    requested[i] = req;
  }
  return scorer(requested, allocatable, resources);
}

function weightedAverage(
  requested: readonly number[],
  allocatable: readonly number[],
  resources: readonly ResourceSpec[],
  perResource: (requested: number, capacity: number) => number,
): number {
  let nodeScore = 0;
  let weightSum = 0;
  for (let i = 0; i < requested.length; i++) {
    if (allocatable[i] === 0) continue;
    const weight = resources[i]!.weight;
    nodeScore += perResource(requested[i]!, allocatable[i]!) * weight;
    weightSum += weight;
  }
  return weightSum === 0 ? 0 : Math.trunc(nodeScore / weightSum);
}

/** Favors nodes with more left over: (capacity - requested) * 100 / capacity per resource. */
export const leastAllocatedScorer: Scorer = (requested, allocatable, resources) =>
  weightedAverage(requested, allocatable, resources, (req, cap) => {
    if (cap === 0 || req > cap) return 0;
    return Math.trunc(((cap - req) * MAX_NODE_SCORE) / cap);
  });

/** Favors fuller nodes (bin packing): requested * 100 / capacity, capped at capacity. */
export const mostAllocatedScorer: Scorer = (requested, allocatable, resources) =>
  weightedAverage(requested, allocatable, resources, (req, cap) => {
    if (cap === 0) return 0;
    return Math.trunc((Math.min(req, cap) * MAX_NODE_SCORE) / cap);
  });

/**
 * Favors nodes whose resources would be used in equal proportion: (1 - standard deviation of the
 * requested fractions) * 100. Weights play no part, as upstream.
 */
export const balancedAllocationScorer: Scorer = (requested, allocatable) => {
  const fractions: number[] = [];
  let total = 0;
  for (let i = 0; i < requested.length; i++) {
    if (allocatable[i] === 0) continue;
    const f = Math.min(requested[i]! / allocatable[i]!, 1);
    total += f;
    fractions.push(f);
  }
  let std = 0;
  if (fractions.length === 2) {
    std = Math.abs((fractions[0]! - fractions[1]!) / 2);
  } else if (fractions.length > 2) {
    const mean = total / fractions.length;
    let sum = 0;
    for (const f of fractions) sum += (f - mean) * (f - mean);
    std = Math.sqrt(sum / fractions.length);
  }
  return Math.trunc((1 - std) * MAX_NODE_SCORE);
};

/** Reads `resources: [{name, weight}]` from plugin args; throws on a malformed list (a config error). */
export function parseResources(value: unknown, where: string): ResourceSpec[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw new Error(`${where}: resources must be a list of {name, weight}`);
  return value.map((v: unknown, i) => {
    const o = (typeof v === "object" && v !== null ? v : {}) as { name?: unknown; weight?: unknown };
    if (typeof o.name !== "string" || o.name === "") throw new Error(`${where}: resources[${i}].name must be a non-empty string`);
    const weight = o.weight === undefined ? 1 : o.weight;
    if (typeof weight !== "number" || !Number.isInteger(weight) || weight < 1 || weight > 100) {
      throw new Error(`${where}: resources[${i}].weight must be an integer in 1..100`);
    }
    return { name: o.name, weight };
  });
}
