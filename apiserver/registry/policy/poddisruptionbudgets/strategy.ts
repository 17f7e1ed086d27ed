// PodDisruptionBudgets: generation tracks spec changes, so the eviction API can tell a status the
// disruption controller computed for an older spec (observedGeneration < generation) and wait.

import type { ResourceInfo } from "../../../../api/index.ts";
import { genericStrategy, type Strategy } from "../../strategy.ts";

export function podDisruptionBudgetStrategy(info: ResourceInfo): Strategy {
  return genericStrategy(info, { tracksGeneration: true });
}
