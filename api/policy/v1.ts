// policy/v1 types: Eviction (the pods/eviction subresource body) and PodDisruptionBudget.

import type { Condition, KubeObject, DeleteOptions, LabelSelector } from "../meta.ts";
import type { IntOrString } from "../intstr.ts";

/** POSTed to pods/eviction; metadata.name names the pod to evict. */
export interface Eviction extends KubeObject {
  deleteOptions?: DeleteOptions;
}

/** What the eviction API does with pods that are Running but not Ready. Unset means IfHealthyBudget. */
export type UnhealthyPodEvictionPolicyType = "IfHealthyBudget" | "AlwaysAllow";

export interface PodDisruptionBudgetSpec {
  /** At most one of minAvailable and maxUnavailable: a count, or a percentage of the pods' controllers' scale. */
  minAvailable?: IntOrString;
  maxUnavailable?: IntOrString;
  /** An empty (or missing) selector selects no pods in policy/v1. */
  selector?: LabelSelector;
  unhealthyPodEvictionPolicy?: UnhealthyPodEvictionPolicyType;
}

export interface PodDisruptionBudgetStatus {
  /** The generation the disruption controller last computed this status for; evictions wait for it. */
  observedGeneration?: number;
  /** Pods the eviction API is about to delete (name → time), not yet seen gone by the controller. */
  disruptedPods?: Record<string, string>;
  disruptionsAllowed: number;
  currentHealthy: number;
  desiredHealthy: number;
  expectedPods: number;
  conditions?: Condition[];
}

export interface PodDisruptionBudget extends KubeObject {
  spec?: PodDisruptionBudgetSpec;
  status?: PodDisruptionBudgetStatus;
}

/** The condition the disruption controller maintains, and its reasons (policy/v1 constants). */
export const DisruptionAllowedCondition = "DisruptionAllowed";
export const SyncFailedReason = "SyncFailed";
export const SufficientPodsReason = "SufficientPods";
export const InsufficientPodsReason = "InsufficientPods";
/** The StatusCause type of a 429 from the eviction API. */
export const DisruptionBudgetCause = "DisruptionBudget";
