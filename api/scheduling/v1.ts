// scheduling.k8s.io/v1: PriorityClass, which maps a class name to the integer priority pods get.

import type { KubeObject } from "../meta.ts";

export interface PriorityClass extends KubeObject {
  /** The priority pods of this class get; user classes at most 1,000,000,000 (higher is reserved for system classes). */
  value: number;
  /** At most one class may be the default for pods that name none. */
  globalDefault?: boolean;
  description?: string;
  /** PreemptLowerPriority (default) or Never. */
  preemptionPolicy?: string;
}

/** The system classes every cluster has (created by the apiserver at startup, as upstream). */
export const SYSTEM_PRIORITY_CLASSES: readonly { name: string; value: number; description: string }[] = [
  { name: "system-node-critical", value: 2000001000, description: "Used for system critical pods that must not be moved from their current node." },
  { name: "system-cluster-critical", value: 2000000000, description: "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary." },
];

/** Values above this are reserved for the system classes. */
export const HIGHEST_USER_DEFINABLE_PRIORITY = 1000000000;
