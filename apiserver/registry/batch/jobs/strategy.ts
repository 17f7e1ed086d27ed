// Jobs: the server generates the selector from the job's uid; batch/v1's default deletion policy orphans pods.

import type { ResourceInfo } from "../../../../api/index.ts";
import { defaultJobSelector } from "../../../../api/index.ts";
import { genericStrategy, type Strategy } from "../../strategy.ts";

export function jobStrategy(info: ResourceInfo): Strategy {
  const base = genericStrategy(info, { tracksGeneration: true });
  return genericStrategy(info, {
    tracksGeneration: true,
    defaultPropagationPolicy: "Orphan",
    prepareForCreate(obj, ctx) {
      base.prepareForCreate(obj, ctx);
      defaultJobSelector(obj, obj.metadata.uid!);
    },
  });
}
