// Deployments: generation tracks spec changes so `kubectl rollout status` can wait for observedGeneration.

import type { ResourceInfo } from "../../../../api/index.ts";
import { genericStrategy, type Strategy } from "../../strategy.ts";

export function deploymentStrategy(info: ResourceInfo): Strategy {
  return genericStrategy(info, { tracksGeneration: true });
}
