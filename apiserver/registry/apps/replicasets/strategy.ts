// ReplicaSets: generation tracks spec changes; status is written by the replicaset controller.

import type { ResourceInfo } from "../../../../api/index.ts";
import { genericStrategy, type Strategy } from "../../strategy.ts";

export function replicaSetStrategy(info: ResourceInfo): Strategy {
  return genericStrategy(info, { tracksGeneration: true });
}
