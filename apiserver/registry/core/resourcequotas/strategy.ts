// ResourceQuotas: a create or spec update never sets status (the quota controller and the quota
// admission own status.hard and status.used); the status subresource keeps the spec.

import type { ResourceInfo } from "../../../../api/index.ts";
import { genericStrategy, type Strategy } from "../../strategy.ts";

export function resourceQuotaStrategy(info: ResourceInfo): Strategy {
  // genericStrategy already drops status on create and keeps the stored status on a main-resource
  // update (ResourceQuota has a status subresource); quotas track no generation upstream.
  return genericStrategy(info);
}
