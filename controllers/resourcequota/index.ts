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
import { isNotFound } from "../../client/errors.ts";
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
  /** When each quota's status.used was last seen to change (the handlers record admission's charges). */
  charges?: ChargeTracker;
  /** How long after a charge a recount may not lower usage (default 1 s; see ChargeTracker). */
  chargeGraceMs?: number;
}

/**
 * Admission charges a quota before it stores the object, so for a moment the charge is in
 * status.used while the object is not yet in any cache. A recount in that moment would give the
 * charge back and let one more object past the limit. So a recount lowers usage only once no charge
 * has been seen for the grace period; until then it keeps the higher figures and looks again.
 */
export class ChargeTracker {
  private readonly seen = new Map<ObjectKey, number>();

  observe(key: ObjectKey, at: number): void {
    this.seen.set(key, at);
  }

  forget(key: ObjectKey): void {
    this.seen.delete(key);
  }

  /** ms since the last charge seen on `key`, or Infinity. */
  since(key: ObjectKey, now: number): number {
    const t = this.seen.get(key);
    return t === undefined ? Infinity : now - t;
  }
}

export const DEFAULT_CHARGE_GRACE_MS = 1_000;

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
    if (!q) {
      this.deps.charges?.forget(key);
      return {};
    }
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

    // Too soon after a charge: keep what is above the recount, and recount again once it settles.
    let requeueAfterMs: number | undefined;
    const grace = this.deps.chargeGraceMs ?? DEFAULT_CHARGE_GRACE_MS;
    const since = this.deps.charges?.since(key, now.getTime()) ?? Infinity;
    if (since < grace) {
      const previous = toQuantities(q.status?.used);
      for (const [k, v] of used) {
        const before = previous.get(k);
        if (before && before.cmp(v) > 0) {
          used.set(k, before);
          requeueAfterMs = grace - since;
        }
      }
    }

    const newHard = fromQuantities(hard);
    const newUsed = fromQuantities(used);
    const dirty =
      q.status?.hard === undefined ||
      q.status?.used === undefined ||
      !deepEqual(newHard, q.status.hard) ||
      !equalQuantities(used, toQuantities(q.status.used)) ||
      !deepEqual(newUsed, q.status.used);
    if (!dirty) return requeueAfterMs !== undefined ? { requeueAfterMs } : {};
    // The write carries the cached resourceVersion: if admission charged the quota meanwhile the
    // update conflicts and the reconcile is retried on the fresher copy.
    const next: ResourceQuota = { ...structuredClone(q), status: { hard: newHard, used: newUsed } };
    try {
      await this.deps.client.resource<ResourceQuota>("", "resourcequotas").updateStatus(next);
    } catch (e) {
      if (isNotFound(e)) return {}; // deleted meanwhile: nothing to report on
      throw e;
    }
    return requeueAfterMs !== undefined ? { requeueAfterMs } : {};
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
    private readonly charges?: ChargeTracker,
  ) {}

  onQuotaAdd(q: ResourceQuota): ObjectKey[] {
    return [objectKey(q)];
  }

  onQuotaUpdate(old: ResourceQuota, cur: ResourceQuota): ObjectKey[] {
    if (!deepEqual(old.status?.used, cur.status?.used)) this.charges?.observe(objectKey(cur), this.clock.now());
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
