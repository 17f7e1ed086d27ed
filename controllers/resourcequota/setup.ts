// Wires the resource quota controller to the shared informers: quotas, and every namespaced
// resource a quota can count (pods, services, claims, and count/<resource> for the rest), plus the
// periodic full resync (--resource-quota-sync-period, upstream's 5 minutes).

import { RESOURCES, type KubeObject, type ResourceQuota } from "../../api/index.ts";
import { newRateLimitingQueue, realClock, runController, type Informer, type ObjectKey } from "../../client/index.ts";
import type { ControllerSetup } from "../env.ts";
import { allQuotaKeys, ChargeTracker, ResourceQuotaController, ResourceQuotaHandlers, trackedResource, type QuotaTrackedResource } from "./index.ts";

/** Upstream's --resource-quota-sync-period default. */
export const DEFAULT_RESOURCE_QUOTA_SYNC_PERIOD_MS = 5 * 60_000;

/** Resources never counted (upstream's DefaultIgnoredResources: events). */
const IGNORED = new Set(["/events", "events.k8s.io/events"]);

export const setupResourceQuotaController: ControllerSetup = (env) => {
  const clock = realClock;
  const quotas = env.informers.informer<ResourceQuota>("", "resourcequotas");
  const queue = newRateLimitingQueue<ObjectKey>({ name: "resourcequota", registry: env.registry });
  const charges = new ChargeTracker();
  const handlers = new ResourceQuotaHandlers(quotas.lister, clock, charges);
  const add = (keys: ObjectKey[]) => keys.forEach((k) => queue.add(k));
  quotas.addEventHandler({ onAdd: (q) => add(handlers.onQuotaAdd(q)), onUpdate: (a, b) => add(handlers.onQuotaUpdate(a, b)) });

  const informers: Informer<KubeObject>[] = [quotas as unknown as Informer<KubeObject>];
  const resources: QuotaTrackedResource[] = [];
  for (const info of RESOURCES) {
    if (!info.namespaced || IGNORED.has(`${info.group}/${info.resource}`) || !info.verbs.includes("watch")) continue;
    const informer =
      info.group === "" && info.resource === "resourcequotas" ? (quotas as unknown as Informer<KubeObject>) : env.informers.informer<KubeObject>(info.group, info.resource);
    if (informer !== informers[0]) informers.push(informer);
    const tracked = trackedResource(info.group, info.resource, informer.lister);
    resources.push(tracked);
    informer.addEventHandler({
      onAdd: (o) => add(handlers.replenish(tracked.evaluator, o)),
      onUpdate: (a, b) => add(handlers.onObjectUpdate(tracked.evaluator, a, b)),
      onDelete: (o) => add(handlers.replenish(tracked.evaluator, o)),
    });
  }
  const reconciler = new ResourceQuotaController({ client: env.client, quotas: quotas.lister, resources, clock, charges });
  const resyncMs = env.config.resourceQuotaSyncPeriodMs ?? DEFAULT_RESOURCE_QUOTA_SYNC_PERIOD_MS;
  return {
    name: "resourcequota",
    run: async (ctx) => {
      const resync = (async () => {
        while (!ctx.signal.aborted) {
          await clock.sleep(resyncMs, ctx.signal);
          if (!ctx.signal.aborted) add(allQuotaKeys(quotas.lister));
        }
      })();
      await runController(ctx, { name: "resourcequota", reconciler, queue, workers: env.workers, informers });
      await resync;
    },
  };
};
