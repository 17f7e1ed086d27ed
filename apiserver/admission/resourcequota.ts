// The ResourceQuota admission plugin (k8s.io/apiserver/pkg/admission/plugin/resourcequota): an
// object that would push a matching quota past its hard limits is refused with upstream's
// "exceeded quota" message; otherwise its usage is added to status.used of every matching quota
// with a resourceVersion-checked write BEFORE the object is stored, retrying on conflict with the
// quota re-read from storage — so two creates racing for the last unit cannot both pass. Usage is
// given back by the quota controller, which recomputes status.used from the live objects.

import {
  addQuantities,
  fromQuantities,
  lessThanOrEqual,
  maskQuantities,
  negativeKeys,
  prettyPrintQuantities,
  quotaEvaluatorFor,
  quotaMatches,
  removeZeros,
  subtractNonNegative,
  toQuantities,
  type KubeObject,
  type Quantities,
  type QuotaEvaluator,
  type ResourceQuota,
} from "../../api/index.ts";
import { ApiError } from "../errors.ts";
import { forbidden, type AdmissionAttributes, type ValidatingPlugin } from "./index.ts";

/** How the plugin reads and writes quotas: the apiserver's own resourcequotas store. */
export interface QuotaAccessor {
  /** The namespace's quotas as the watch cache has them (may lag a write by milliseconds). */
  cached(namespace: string): readonly ResourceQuota[];
  /** One quota read from storage (current), or undefined when it is gone. */
  get(namespace: string, name: string): Promise<ResourceQuota | undefined>;
  /** Writes status, failing with a 409 ApiError unless metadata.resourceVersion is still current. */
  updateStatus(quota: ResourceQuota): Promise<ResourceQuota>;
}

/** Never charged (upstream's DefaultIgnoredResources; the quota controller ignores them too). */
const IGNORED = new Set(["/events", "events.k8s.io/events"]);

/** Conflicting writes are retried this many times before the request fails (upstream: 3). */
const MAX_RETRIES = 5;

function rv(q: ResourceQuota): number {
  return Number(q.metadata.resourceVersion ?? 0);
}

/** The resource names a quota limits: status.hard once computed, and spec.hard so a quota binds from its creation. */
function hardNames(q: ResourceQuota): string[] {
  return [...new Set([...Object.keys(q.status?.hard ?? {}), ...Object.keys(q.spec?.hard ?? {})])].sort();
}

export class ResourceQuotaAdmission implements ValidatingPlugin {
  readonly name = "ResourceQuota";
  /** Per-namespace serialization of this apiserver's checks (other apiservers are fenced by the CAS). */
  private readonly locks = new Map<string, Promise<void>>();
  /** Quotas this plugin wrote last, newer than the watch cache until it catches up (upstream's updatedQuotas). */
  private readonly written = new Map<string, ResourceQuota>();
  /** What each admitted request charged, by quota name, until it is stored or released. */
  private readonly charges = new WeakMap<AdmissionAttributes, Map<string, Quantities>>();

  constructor(
    private readonly quotas: QuotaAccessor,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async validate(a: AdmissionAttributes): Promise<void> {
    if (!a.info.namespaced || !a.namespace || IGNORED.has(`${a.info.group}/${a.info.resource}`)) return;
    const ev = quotaEvaluatorFor(a.info.group, a.info.resource);
    if (a.operation === "DELETE" || !ev.handles(a.operation, a.subresource)) return;
    if (this.quotas.cached(a.namespace).length === 0) return;
    await this.withLock(a.namespace, () => this.evaluate(a, ev));
  }

  private async withLock(namespace: string, fn: () => Promise<void>): Promise<void> {
    const prev = this.locks.get(namespace) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.locks.set(namespace, tail);
    await prev;
    try {
      await fn();
    } finally {
      release();
      if (this.locks.get(namespace) === tail) this.locks.delete(namespace);
    }
  }

  /** The namespace's quotas, each the newer of the cache's copy and the one this plugin last wrote. */
  private current(namespace: string): ResourceQuota[] {
    const out: ResourceQuota[] = [];
    for (const q of this.quotas.cached(namespace)) {
      const k = `${namespace}/${q.metadata.name}`;
      const w = this.written.get(k);
      if (w && w.metadata.uid === q.metadata.uid && rv(w) > rv(q)) out.push(w);
      else {
        if (w) this.written.delete(k);
        out.push(q);
      }
    }
    return out;
  }

  private async evaluate(a: AdmissionAttributes, ev: QuotaEvaluator): Promise<void> {
    let quotas = this.current(a.namespace);
    for (let attempt = 0; ; attempt++) {
      const charged = this.checkRequest(quotas, a, ev);
      if (charged.length === 0 || a.dryRun) return;
      const failed: string[] = [];
      let lastErr: unknown;
      for (const { quota: q, delta } of charged) {
        try {
          const saved = await this.quotas.updateStatus(q);
          this.written.set(`${a.namespace}/${saved.metadata.name}`, saved);
          const mine = this.charges.get(a) ?? new Map<string, Quantities>();
          mine.set(saved.metadata.name!, delta);
          this.charges.set(a, mine);
        } catch (e) {
          if (!(e instanceof ApiError) || (e.code !== 409 && e.code !== 404)) throw e;
          if (e.code === 409) failed.push(q.metadata.name!);
          lastErr = e;
        }
      }
      if (failed.length === 0) return;
      if (attempt >= MAX_RETRIES) throw lastErr;
      // Someone else charged first: re-read the quotas that failed from storage and check again.
      const fresh = await Promise.all(failed.map((n) => this.quotas.get(a.namespace, n)));
      quotas = fresh.filter((q): q is ResourceQuota => q !== undefined);
      if (quotas.length === 0) return;
    }
  }

  /**
   * Gives back what `a` charged when its write then failed for certain (the name was taken): the
   * charge would otherwise stay until the controller's next recount. Same CAS loop as the charge.
   */
  async release(a: AdmissionAttributes): Promise<void> {
    const mine = this.charges.get(a);
    if (!mine) return;
    this.charges.delete(a);
    await this.withLock(a.namespace, async () => {
      for (const [name, delta] of mine) {
        for (let attempt = 0; attempt <= MAX_RETRIES; attempt++) {
          const q = await this.quotas.get(a.namespace, name);
          if (!q) break;
          const used = subtractNonNegative(toQuantities(q.status?.used), maskQuantities(delta, Object.keys(q.status?.used ?? {})));
          try {
            const saved = await this.quotas.updateStatus({ ...q, status: { ...q.status, used: fromQuantities(used) } });
            this.written.set(`${a.namespace}/${name}`, saved);
            break;
          } catch (e) {
            if (!(e instanceof ApiError) || e.code !== 409) throw e;
          }
        }
      }
    });
  }

  /**
   * checkRequest: the quotas whose status.used this request changes, with the new usage and the
   * amount added; throws the Forbidden error when the object does not fit.
   */
  checkRequest(quotas: readonly ResourceQuota[], a: AdmissionAttributes, ev: QuotaEvaluator): { quota: ResourceQuota; delta: Quantities }[] {
    const obj: KubeObject = a.object;
    const interesting: ResourceQuota[] = [];
    for (const q of quotas) {
      const names = hardNames(q);
      if (!quotaMatches(ev, q, names, obj)) continue;
      const restricted = ev.matchingResources(names);
      const why = ev.constraints(restricted, obj);
      if (why) throw forbidden(a, `failed quota: ${q.metadata.name}: ${why}`);
      const hard = q.status?.hard ?? {};
      const used = q.status?.used ?? {};
      if (restricted.some((r) => !(r in hard) || !(r in used))) {
        throw forbidden(a, `status unknown for quota: ${q.metadata.name}, resources: ${[...restricted].sort().join(",")}`);
      }
      interesting.push(q);
    }
    if (interesting.length === 0) return [];

    const now = this.now();
    let delta = ev.usage(obj, now);
    const negative = negativeKeys(delta);
    if (negative.length) throw forbidden(a, `quota usage is negative for resource(s): ${negative.sort().join(",")}`);
    if (a.operation === "UPDATE" && a.oldObject) delta = subtractNonNegative(delta, ev.usage(a.oldObject, now));
    delta = removeZeros(delta);
    if (delta.size === 0) return [];

    const out: { quota: ResourceQuota; delta: Quantities }[] = [];
    for (const q of interesting) {
      const hard = toQuantities(q.status?.hard);
      const used = toQuantities(q.status?.used);
      const requested = maskQuantities(delta, hard.keys());
      if (requested.size === 0) continue;
      const newUsage = addQuantities(used, requested);
      const { ok, exceeded } = lessThanOrEqual(maskQuantities(newUsage, requested.keys()), hard);
      if (!ok) {
        throw forbidden(
          a,
          `exceeded quota: ${q.metadata.name}, requested: ${prettyPrintQuantities(maskQuantities(requested, exceeded))}, used: ${prettyPrintQuantities(maskQuantities(used, exceeded))}, limited: ${prettyPrintQuantities(maskQuantities(hard, exceeded))}`,
        );
      }
      out.push({ quota: { ...q, status: { ...q.status, used: fromQuantities(newUsage) } }, delta: requested });
    }
    return out;
  }
}
