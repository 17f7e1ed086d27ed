// CronJobs: generation tracks spec changes; status (active, lastScheduleTime) belongs to the controller.
// Deleting a batch/v1 CronJob deletes its Jobs in the background (upstream's DeleteDependents for v1).

import type { ResourceInfo } from "../../../../api/index.ts";
import { genericStrategy, type Strategy } from "../../strategy.ts";

export function cronJobStrategy(info: ResourceInfo): Strategy {
  return genericStrategy(info, { tracksGeneration: true, defaultPropagationPolicy: "Background" });
}
