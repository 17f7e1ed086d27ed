// The resource quota controller (pkg/controller/resourcequota): keeps each ResourceQuota's
// status.hard equal to spec.hard and status.used equal to what the namespace's live objects use,
// counted from the shared informer caches by the same evaluators the quota admission charges with.
// Admission only ever adds to status.used; this recomputation is what gives usage back.

import {
  calculateUsage,
  equalQuantities,
  fromQuantities,
  maskQuantities,
  quotaEvaluatorFor,
  toQuantities,
  type KubeObject,
  type Quantities,
  type QuotaEvaluator,
  type ResourceQuota,
} from "../../api/index.ts";
import type { Client, Clock, Lister, ObjectKey, ReconcileContext, Reconciler, Result } from "../../client/types.ts";
import { objectKey } from "../../client/store.ts";
import { deepEqual } from "../../api/validation/util.ts";

/** The objects of one resource the controller counts, with their evaluator. */
export interface QuotaTrackedResource {
  group: string;
  resource: string;
  lister: Lister<KubeObject>;
  evaluator: QuotaEvaluator;
}

export interface ResourceQuotaControllerDeps {
  client: Client;
  quotas: Lister<ResourceQuota>;
  resources: readonly QuotaTrackedResource[];
  clock?: Pick<Clock, "now">;
}

export function trackedResource(group: string, resource: string, lister: Lister<KubeObject>): QuotaTrackedResource {
  return { group, resource, lister, evaluator: quotaEvaluatorFor(group, resource) };
}

export class ResourceQuotaController implements Reconciler {
  private readonly clock: Pick<Clock, "now">;

  constructor(private readonly deps: ResourceQuotaControllerDeps) {
    this.clock = deps.clock ?? { now: () => Date.now() };
  }

  /** syncResourceQuota: recompute usage for the quota under `key` and write status if it moved. */
  async reconcile(_ctx: ReconcileContext, key: ObjectKey): Promise<Result> {
    const q = this.deps.quotas.get(key);
    if (!q) return {};
    const ns = q.metadata.namespace ?? "";
    const hard = toQuantities(q.spec?.hard);
    const names = [...hard.keys()];
    const now = new Date(this.clock.now());

    // Past observations are kept for resources nothing here measures; measured ones are replaced.
    let used: Quantities = new Map(toQuantities(q.status?.used));
    for (const r of this.deps.resources) {
      if (r.evaluator.matchingResources(names).length === 0) continue;
      const usage = calculateUsage(r.evaluator, q, names, r.lister.listNamespace(ns), now);
      used = new Map([...used, ...usage]);
    }
    used = maskQuantities(used, names);

    const newHard = fromQuantities(hard);
    const newUsed = fromQuantities(used);
    const dirty =
      q.status?.hard === undefined ||
      q.status?.used === undefined ||
      !deepEqual(newHard, q.status.hard) ||
      !equalQuantities(used, toQuantities(q.status.used)) ||
      !deepEqual(newUsed, q.status.used);
    if (!dirty) return {};
    // The write carries the cached resourceVersion: if admission charged the quota meanwhile the
    // update conflicts and the reconcile is retried on the fresher copy.
    const next: ResourceQuota = { ...structuredClone(q), status: { hard: newHard, used: newUsed } };
    await this.deps.client.resource<ResourceQuota>("", "resourcequotas").updateStatus(next);
    return {};
  }
}

/**
 * Turns informer events into quota keys. Quota events: a new quota, a spec change, or a status
 * lacking hard/used (status-only writes are admission's charges and are not recomputed). Object
 * events: replenishment — every quota of the namespace that counts that resource, when an object
 * is added, deleted, or changes what it uses (a pod turning Succeeded, a service becoming a
 * LoadBalancer, a claim growing).
 */
export class ResourceQuotaHandlers {
  constructor(
    private readonly quotas: Lister<ResourceQuota>,
    private readonly clock: Pick<Clock, "now"> = { now: () => Date.now() },
  ) {}

  onQuotaAdd(q: ResourceQuota): ObjectKey[] {
    return [objectKey(q)];
  }

  onQuotaUpdate(old: ResourceQuota, cur: ResourceQuota): ObjectKey[] {
    const specChanged = !equalQuantities(toQuantities(old.spec?.hard), toQuantities(cur.spec?.hard)) || !deepEqual(old.spec, cur.spec);
    const missing = cur.status?.hard === undefined || cur.status?.used === undefined || Object.keys(cur.spec?.hard ?? {}).some((k) => !(k in (cur.status?.used ?? {})));
    return specChanged || missing ? [objectKey(cur)] : [];
  }

  /** The quotas of `namespace` whose hard names the evaluator measures. */
  replenish(ev: QuotaEvaluator, obj: KubeObject): ObjectKey[] {
    const ns = obj.metadata.namespace;
    if (!ns) return [];
    const out: ObjectKey[] = [];
    for (const q of this.quotas.listNamespace(ns)) {
      const names = [...new Set([...Object.keys(q.status?.hard ?? {}), ...Object.keys(q.spec?.hard ?? {})])];
      if (ev.matchingResources(names).length > 0) out.push(objectKey(q));
    }
    return out;
  }

  onObjectUpdate(ev: QuotaEvaluator, old: KubeObject, cur: KubeObject): ObjectKey[] {
    if (old.metadata.resourceVersion === cur.metadata.resourceVersion) return [];
    const now = new Date(this.clock.now());
    if (equalQuantities(ev.usage(old, now), ev.usage(cur, now))) return [];
    return this.replenish(ev, cur);
  }
}

/** Keys of every quota, for the periodic full resync. */
export function allQuotaKeys(quotas: Lister<ResourceQuota>): ObjectKey[] {
  return quotas.list().map((q) => objectKey(q));
}
