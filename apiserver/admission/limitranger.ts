// The LimitRanger admission plugin (plugin/pkg/admission/limitranger): containers of a new pod get
// the namespace's LimitRange `default` limits and `defaultRequest` requests they lack (noted in the
// kubernetes.io/limit-ranger annotation); then pods and claims are held to min, max and
// maxLimitRequestRatio, with upstream's messages.

import { ExactQuantity, podResourceTotals, toQuantities, type KubeObject, type LimitRange, type LimitRangeItem, type Quantities } from "../../api/index.ts";
import { aggregate, forbidden, type AdmissionAttributes, type MutatingPlugin, type ValidatingPlugin } from "./index.ts";

export const LIMIT_RANGER_ANNOTATION = "kubernetes.io/limit-ranger";

/** Where the plugin reads a namespace's LimitRanges (the apiserver's watch cache). */
export type LimitRangeSource = (namespace: string) => readonly LimitRange[];

type Rec = Record<string, unknown>;

function rec(v: unknown): Rec {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Rec) : {};
}

function containersOf(pod: KubeObject, field: "containers" | "initContainers"): Rec[] {
  const spec = rec(pod.spec);
  const list = spec[field];
  return Array.isArray(list) ? list.filter((c): c is Rec => typeof c === "object" && c !== null && !Array.isArray(c)) : [];
}

function limitsOf(lr: LimitRange): LimitRangeItem[] {
  const l = lr.spec?.limits;
  return Array.isArray(l) ? l.filter((x) => typeof x === "object" && x !== null) : [];
}

export class LimitRanger implements MutatingPlugin, ValidatingPlugin {
  readonly name = "LimitRanger";

  constructor(private readonly source: LimitRangeSource) {}

  private supports(a: AdmissionAttributes, mutating: boolean): "pod" | "pvc" | undefined {
    if (a.subresource) return undefined;
    if (a.info.group !== "") return undefined;
    // Containers cannot change after create: pod updates are not ranged.
    if (a.info.resource === "pods") return a.operation === "CREATE" ? "pod" : undefined;
    if (a.info.resource === "persistentvolumeclaims" && !mutating) return "pvc";
    return undefined;
  }

  admit(a: AdmissionAttributes): void {
    if (this.supports(a, true) !== "pod") return;
    for (const lr of this.source(a.namespace)) mergePodResourceRequirements(a.object, defaultRequirements(lr));
  }

  validate(a: AdmissionAttributes): void {
    const kind = this.supports(a, false);
    if (!kind) return;
    if (a.oldObject?.metadata.deletionTimestamp) return;
    for (const lr of this.source(a.namespace)) {
      const errs = kind === "pod" ? validatePodLimits(lr, a.object) : validateClaimLimits(lr, a.object);
      if (errs.length) throw forbidden(a, aggregate(errs));
    }
  }
}

/** defaultContainerResourceRequirements: the Container item's default (limits) and defaultRequest (requests). */
export function defaultRequirements(lr: LimitRange): { requests: Record<string, unknown>; limits: Record<string, unknown> } {
  const requests: Record<string, unknown> = {};
  const limits: Record<string, unknown> = {};
  for (const item of limitsOf(lr)) {
    if (item.type !== "Container") continue;
    Object.assign(requests, rec(item.defaultRequest));
    Object.assign(limits, rec(item.default));
  }
  return { requests, limits };
}

/** mergePodResourceRequirements: fills what each container lacks and annotates what was set. */
export function mergePodResourceRequirements(pod: KubeObject, defaults: { requests: Record<string, unknown>; limits: Record<string, unknown> }): void {
  if (Object.keys(defaults.requests).length === 0 && Object.keys(defaults.limits).length === 0) return;
  const notes: string[] = [];
  const merge = (c: Rec, prefix: string) => {
    const resources = rec(c.resources);
    const limits = { ...rec(resources.limits) };
    const requests = { ...rec(resources.requests) };
    const setLimits: string[] = [];
    const setRequests: string[] = [];
    for (const [k, v] of Object.entries(defaults.limits)) {
      if (!(k in limits)) {
        limits[k] = v;
        setLimits.push(k);
      }
    }
    for (const [k, v] of Object.entries(defaults.requests)) {
      if (!(k in requests)) {
        requests[k] = v;
        setRequests.push(k);
      }
    }
    if (setLimits.length === 0 && setRequests.length === 0) return;
    const next: Rec = { ...resources };
    if (Object.keys(limits).length) next.limits = limits;
    if (Object.keys(requests).length) next.requests = requests;
    c.resources = next;
    if (setRequests.length) notes.push(`${setRequests.sort().join(", ")} request for ${prefix} ${String(c.name ?? "")}`);
    if (setLimits.length) notes.push(`${setLimits.sort().join(", ")} limit for ${prefix} ${String(c.name ?? "")}`);
  };
  for (const c of containersOf(pod, "containers")) merge(c, "container");
  for (const c of containersOf(pod, "initContainers")) merge(c, "init container");
  // Annotations of the wrong JSON type are left for validation to report.
  const annotations: unknown = pod.metadata.annotations;
  if (notes.length && (annotations === undefined || (typeof annotations === "object" && annotations !== null && !Array.isArray(annotations)))) {
    pod.metadata.annotations = { ...(annotations as Record<string, string> | undefined), [LIMIT_RANGER_ANNOTATION]: `LimitRanger plugin set: ${notes.join("; ")}` };
  }
}

/** requestLimitEnforcedValues compares in milli-units (exact here: values never overflow). */
function milli(q: ExactQuantity | undefined): bigint {
  return q ? q.milliValue() : 0n;
}

function minConstraint(limitType: string, name: string, enforced: ExactQuantity, requests: Quantities, limits: Quantities): string | undefined {
  const req = requests.get(name);
  const lim = limits.get(name);
  if (!req) return `minimum ${name} usage per ${limitType} is ${enforced}.  No request is specified`;
  if (milli(req) < milli(enforced)) return `minimum ${name} usage per ${limitType} is ${enforced}, but request is ${req}`;
  if (lim && milli(lim) < milli(enforced)) return `minimum ${name} usage per ${limitType} is ${enforced}, but limit is ${lim}`;
  return undefined;
}

function maxConstraint(limitType: string, name: string, enforced: ExactQuantity, requests: Quantities, limits: Quantities): string | undefined {
  const req = requests.get(name);
  const lim = limits.get(name);
  if (!lim) return `maximum ${name} usage per ${limitType} is ${enforced}.  No limit is specified`;
  if (milli(lim) > milli(enforced)) return `maximum ${name} usage per ${limitType} is ${enforced}, but limit is ${lim}`;
  if (req && milli(req) > milli(enforced)) return `maximum ${name} usage per ${limitType} is ${enforced}, but request is ${req}`;
  return undefined;
}

function maxRequestConstraint(limitType: string, name: string, enforced: ExactQuantity, requests: Quantities): string | undefined {
  const req = requests.get(name);
  if (!req) return `maximum ${name} usage per ${limitType} is ${enforced}.  No request is specified`;
  if (milli(req) > milli(enforced)) return `maximum ${name} usage per ${limitType} is ${enforced}, but request is ${req}`;
  return undefined;
}

function ratioConstraint(limitType: string, name: string, enforced: ExactQuantity, requests: Quantities, limits: Quantities): string | undefined {
  const req = requests.get(name);
  const lim = limits.get(name);
  if (!req || milli(req) === 0n) return `${name} max limit to request ratio per ${limitType} is ${enforced}, but no request is specified or request is 0`;
  if (!lim || milli(lim) === 0n) return `${name} max limit to request ratio per ${limitType} is ${enforced}, but no limit is specified or limit is 0`;
  const observed = Number(milli(lim)) / Number(milli(req));
  if (observed * 1000 > Number(enforced.milliValue())) {
    return `${name} max limit to request ratio per ${limitType} is ${enforced}, but provided ratio is ${observed.toFixed(6)}`;
  }
  return undefined;
}

function sortedEntries(list: unknown): [string, ExactQuantity][] {
  return [...toQuantities(list)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function checkItem(item: LimitRangeItem, requests: Quantities, limits: Quantities, out: string[]): void {
  const t = item.type;
  for (const [k, v] of sortedEntries(item.min)) {
    const e = minConstraint(t, k, v, requests, limits);
    if (e) out.push(e);
  }
  for (const [k, v] of sortedEntries(item.max)) {
    const e = maxConstraint(t, k, v, requests, limits);
    if (e) out.push(e);
  }
  for (const [k, v] of sortedEntries(item.maxLimitRequestRatio)) {
    const e = ratioConstraint(t, k, v, requests, limits);
    if (e) out.push(e);
  }
}

/** PodValidateLimitFunc: Container items per (init) container, Pod items on the pod's totals. */
export function validatePodLimits(lr: LimitRange, pod: KubeObject): string[] {
  const out: string[] = [];
  for (const item of limitsOf(lr)) {
    if (item.type === "Container") {
      for (const c of [...containersOf(pod, "containers"), ...containersOf(pod, "initContainers")]) {
        const res = rec(c.resources);
        checkItem(item, toQuantities(res.requests), toQuantities(res.limits), out);
      }
    } else if (item.type === "Pod") {
      checkItem(item, podResourceTotals(pod.spec, "requests"), podResourceTotals(pod.spec, "limits"), out);
    }
  }
  return out;
}

/** PersistentVolumeClaimValidateLimitFunc: min and max against spec.resources.requests. */
export function validateClaimLimits(lr: LimitRange, pvc: KubeObject): string[] {
  const out: string[] = [];
  const requests = toQuantities(rec(rec(rec(pvc.spec).resources).requests));
  for (const item of limitsOf(lr)) {
    if (item.type !== "PersistentVolumeClaim") continue;
    for (const [k, v] of sortedEntries(item.min)) {
      const e = minConstraint(item.type, k, v, requests, new Map());
      if (e) out.push(e);
    }
    for (const [k, v] of sortedEntries(item.max)) {
      const e = maxRequestConstraint(item.type, k, v, requests);
      if (e) out.push(e);
    }
  }
  return out;
}
