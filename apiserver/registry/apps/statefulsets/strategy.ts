// StatefulSets: generation tracks spec changes (for `kubectl rollout status`); a new set starts with
// the zero status upstream serializes (replicas and availableReplicas have no omitempty); the status
// subresource keeps the spec, and status counts are validated on every update.

import type { ResourceInfo } from "../../../../api/index.ts";
import { genericStrategy, type Strategy } from "../../strategy.ts";

export function statefulSetStrategy(info: ResourceInfo): Strategy {
  const base = genericStrategy(info, { tracksGeneration: true });
  return genericStrategy(info, {
    tracksGeneration: true,
    prepareForCreate(obj, ctx) {
      base.prepareForCreate(obj, ctx);
      obj.status = { replicas: 0, availableReplicas: 0 };
    },
  });
}
