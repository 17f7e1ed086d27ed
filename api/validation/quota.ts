// ResourceQuota and LimitRange validation (k8s.io/kubernetes/pkg/apis/core/validation:
// ValidateResourceQuota, ValidateResourceQuotaUpdate, ValidateLimitRange), messages as upstream's.

import { RESOURCE_QUOTA_SCOPES } from "../core/quota.ts";
import { ExactQuantity } from "../core/resourcelist.ts";
import { QUANTITY_FORMAT_ERROR } from "../quantity.ts";
import type { FieldError } from "./field.ts";
import { child, duplicate, forbidden, index, invalid, key, required } from "./field.ts";
import { isQualifiedName } from "./names.ts";
import { arr, isRec, rec, str, type Rec } from "./util.ts";

const STANDARD_RESOURCES = new Set([
  "cpu",
  "memory",
  "ephemeral-storage",
  "requests.cpu",
  "requests.memory",
  "requests.ephemeral-storage",
  "limits.cpu",
  "limits.memory",
  "limits.ephemeral-storage",
  "pods",
  "services",
  "replicationcontrollers",
  "resourcequotas",
  "secrets",
  "persistentvolumeclaims",
  "storage",
  "requests.storage",
  "services.nodeports",
  "services.loadbalancers",
  "configmaps",
]);

const STANDARD_QUOTA_RESOURCES = new Set([
  "cpu",
  "memory",
  "ephemeral-storage",
  "requests.cpu",
  "requests.memory",
  "requests.storage",
  "requests.ephemeral-storage",
  "limits.cpu",
  "limits.memory",
  "limits.ephemeral-storage",
  "pods",
  "services",
  "replicationcontrollers",
  "resourcequotas",
  "secrets",
  "persistentvolumeclaims",
  "configmaps",
  "services.nodeports",
  "services.loadbalancers",
]);

const STANDARD_CONTAINER_RESOURCES = new Set(["cpu", "memory", "ephemeral-storage"]);

/** Counted in whole objects: a fractional quantity is refused. */
const INTEGER_RESOURCES = new Set([
  "pods",
  "services",
  "replicationcontrollers",
  "resourcequotas",
  "secrets",
  "configmaps",
  "persistentvolumeclaims",
  "services.nodeports",
  "services.loadbalancers",
]);

const POD_COUNT_RESOURCES = new Set(["pods"]);
const POD_COMPUTE_RESOURCES = new Set(["cpu", "memory", "limits.cpu", "limits.memory", "requests.cpu", "requests.memory"]);

const LIMIT_TYPES = ["Container", "Pod", "PersistentVolumeClaim"];

function isHugePages(name: string): boolean {
  return name.startsWith("hugepages-");
}

function isQuotaHugePages(name: string): boolean {
  return name.startsWith("hugepages-") || name.startsWith("requests.hugepages-");
}

function isStandardQuotaResourceName(name: string): boolean {
  return STANDARD_QUOTA_RESOURCES.has(name) || isQuotaHugePages(name);
}

/** validateResourceName: a qualified name, and a standard one when it has no domain. */
function validateResourceName(name: string, fldPath: string): FieldError[] {
  const errs = isQualifiedName(name).map((m) => invalid(fldPath, name, m));
  if (errs.length) return errs;
  if (!name.includes("/") && !STANDARD_RESOURCES.has(name) && !isQuotaHugePages(name)) {
    return [invalid(fldPath, name, "must be a standard resource type or fully qualified")];
  }
  return [];
}

/** ValidateResourceQuotaResourceName */
function validateQuotaResourceName(name: string, fldPath: string): FieldError[] {
  const errs = validateResourceName(name, fldPath);
  if (errs.length) return errs;
  if (!name.includes("/") && !isStandardQuotaResourceName(name)) return [invalid(fldPath, name, "must be a standard resource for quota")];
  return [];
}

/** A quantity that parses, is not negative and, for counted resources, is whole. */
function validateQuantityValue(name: string, value: unknown, fldPath: string): { errs: FieldError[]; q?: ExactQuantity } {
  const q = ExactQuantity.tryParse(value);
  if (!q) return { errs: [invalid(fldPath, value, QUANTITY_FORMAT_ERROR)] };
  const errs: FieldError[] = [];
  if (q.sign() < 0) errs.push(invalid(fldPath, q.toString(), "must be greater than or equal to 0"));
  if (INTEGER_RESOURCES.has(name) && q.milliValue() % 1000n !== 0n) errs.push(invalid(fldPath, q.toString(), "must be an integer"));
  return { errs, q };
}

function validateQuotaResourceList(list: unknown, fldPath: string): FieldError[] {
  const errs: FieldError[] = [];
  for (const [k, v] of Object.entries(rec(list))) {
    const p = key(fldPath, k);
    errs.push(...validateQuotaResourceName(k, p));
    errs.push(...validateQuantityValue(k, v, p).errs);
  }
  return errs;
}

/** IsResourceQuotaScopeValidForResource */
function scopeValidForResource(scope: string, resource: string): boolean {
  switch (scope) {
    case "Terminating":
    case "NotTerminating":
    case "NotBestEffort":
    case "PriorityClass":
    case "CrossNamespacePodAffinity":
      return POD_COUNT_RESOURCES.has(resource) || POD_COMPUTE_RESOURCES.has(resource);
    case "BestEffort":
      return POD_COUNT_RESOURCES.has(resource);
    default:
      return true;
  }
}

const CONFLICTING_SCOPES: [string, string][] = [
  ["BestEffort", "NotBestEffort"],
  ["Terminating", "NotTerminating"],
];

function validateScopes(spec: Rec, fldPath: string): FieldError[] {
  const scopes = arr(spec.scopes);
  if (scopes.length === 0) return [];
  const errs: FieldError[] = [];
  const hard = Object.keys(rec(spec.hard)).sort();
  const p = child(fldPath, "scopes");
  const seen = new Set<string>();
  for (const s of scopes) {
    const scope = str(s);
    if (!(RESOURCE_QUOTA_SCOPES as readonly string[]).includes(scope)) errs.push(invalid(p, scopes, "unsupported scope"));
    for (const k of hard) {
      if (isStandardQuotaResourceName(k) && !scopeValidForResource(scope, k)) errs.push(invalid(p, scopes, "unsupported scope applied to resource"));
    }
    seen.add(scope);
  }
  for (const [a, b] of CONFLICTING_SCOPES) if (seen.has(a) && seen.has(b)) errs.push(invalid(p, scopes, "conflicting scopes"));
  return errs;
}

function validateScopeSelector(spec: Rec, fldPath: string): FieldError[] {
  if (spec.scopeSelector === undefined || spec.scopeSelector === null) return [];
  const errs: FieldError[] = [];
  const hard = Object.keys(rec(spec.hard)).sort();
  const p = child(fldPath, "scopeSelector", "matchExpressions");
  const seen = new Set<string>();
  for (const r of arr(rec(spec.scopeSelector).matchExpressions)) {
    const req = rec(r);
    const scope = str(req.scopeName);
    const values = arr(req.values);
    if (!(RESOURCE_QUOTA_SCOPES as readonly string[]).includes(scope)) errs.push(invalid(child(p, "scopeName"), req.scopeName, "unsupported scope"));
    for (const k of hard) {
      if (isStandardQuotaResourceName(k) && !scopeValidForResource(scope, k)) errs.push(invalid(p, spec.scopeSelector, "unsupported scope applied to resource"));
    }
    if (["BestEffort", "NotBestEffort", "Terminating", "NotTerminating", "CrossNamespacePodAffinity"].includes(scope) && req.operator !== "Exists") {
      errs.push(
        invalid(
          child(p, "operator"),
          req.operator,
          "must be 'Exist' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity",
        ),
      );
    }
    switch (req.operator) {
      case "In":
      case "NotIn":
        if (values.length === 0) errs.push(required(child(p, "values"), "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector"));
        break;
      case "Exists":
      case "DoesNotExist":
        if (values.length !== 0) errs.push(invalid(child(p, "values"), values, "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector"));
        break;
      default:
        errs.push(invalid(child(p, "operator"), req.operator, "not a valid selector operator"));
    }
    seen.add(scope);
  }
  for (const [a, b] of CONFLICTING_SCOPES) if (seen.has(a) && seen.has(b)) errs.push(invalid(p, spec.scopeSelector, "conflicting scopes"));
  return errs;
}

/** ValidateResourceQuota (without metadata): spec.hard, scopes, scopeSelector, and status.hard/used. */
export function validateResourceQuota(obj: Rec): FieldError[] {
  const spec = rec(obj.spec);
  const status = rec(obj.status);
  return [
    ...validateQuotaResourceList(spec.hard, "spec.hard"),
    ...validateScopes(spec, "spec"),
    ...validateScopeSelector(spec, "spec"),
    ...validateQuotaResourceList(status.hard, "status.hard"),
    ...validateQuotaResourceList(status.used, "status.used"),
  ];
}

/** ValidateResourceQuotaUpdate: spec.scopes may not change. */
export function validateResourceQuotaUpdate(obj: Rec, old: Rec): FieldError[] {
  const a = new Set(arr(rec(obj.spec).scopes).map(str));
  const b = new Set(arr(rec(old.spec).scopes).map(str));
  const same = a.size === b.size && [...a].every((s) => b.has(s));
  return same ? [] : [invalid("spec.scopes", rec(obj.spec).scopes ?? null, "field is immutable")];
}

/** validateLimitRangeResourceName: containers and pods take container resources; claims anything qualified. */
function validateLimitRangeResourceName(limitType: string, name: string, fldPath: string): FieldError[] {
  if (limitType === "Pod" || limitType === "Container") {
    const errs = isQualifiedName(name).map((m) => invalid(fldPath, name, m));
    if (errs.length) return errs;
    if (!name.includes("/") && !STANDARD_CONTAINER_RESOURCES.has(name) && !isHugePages(name)) {
      return [invalid(fldPath, name, "must be a standard limit type or fully qualified")];
    }
    return [];
  }
  return validateResourceName(name, fldPath);
}

/** Overcommit (request < limit) is refused for hugepages and extended resources. */
function isOvercommitAllowed(name: string): boolean {
  return (!name.includes("/") || name.includes("kubernetes.io/")) && !isHugePages(name);
}

/** ValidateLimitRange (without metadata): types, names, quantities and min ≤ defaultRequest ≤ default ≤ max. */
export function validateLimitRange(obj: Rec): FieldError[] {
  const errs: FieldError[] = [];
  const limits = arr(rec(obj.spec).limits);
  const base = "spec.limits";
  const seenTypes = new Set<string>();
  limits.forEach((l, i) => {
    const item = rec(l);
    const p = index(base, i);
    const type = str(item.type);
    if (!isRec(l)) {
      errs.push(required(p, ""));
      return;
    }
    if (!LIMIT_TYPES.includes(type)) {
      const msgs = isQualifiedName(type);
      if (msgs.length) for (const m of msgs) errs.push(invalid(child(p, "type"), item.type, m));
      else if (!type.includes("/")) errs.push(invalid(child(p, "type"), item.type, "must be a standard limit type or fully qualified"));
    }
    if (seenTypes.has(type)) errs.push(duplicate(child(p, "type"), item.type));
    seenTypes.add(type);

    const keys = new Set<string>();
    const read = (field: string): Map<string, ExactQuantity> => {
      const out = new Map<string, ExactQuantity>();
      for (const [k, v] of Object.entries(rec(item[field]))) {
        const kp = key(child(p, field), k);
        errs.push(...validateLimitRangeResourceName(type, k, kp));
        keys.add(k);
        const q = ExactQuantity.tryParse(v);
        if (!q) errs.push(invalid(kp, v, QUANTITY_FORMAT_ERROR));
        else out.set(k, q);
      }
      return out;
    };
    const max = read("max");
    const min = read("min");
    let defaults = new Map<string, ExactQuantity>();
    let defaultRequests = new Map<string, ExactQuantity>();
    if (type === "Pod") {
      if (Object.keys(rec(item.default)).length > 0) errs.push(forbidden(child(p, "default"), "may not be specified when `type` is 'Pod'"));
      if (Object.keys(rec(item.defaultRequest)).length > 0) errs.push(forbidden(child(p, "defaultRequest"), "may not be specified when `type` is 'Pod'"));
    } else {
      defaults = read("default");
      defaultRequests = read("defaultRequest");
    }
    if (type === "PersistentVolumeClaim" && !min.has("storage") && !max.has("storage")) {
      errs.push(required(child(p, "limits"), "either minimum or maximum storage value is required, but neither was provided"));
    }
    const ratios = read("maxLimitRequestRatio");

    for (const k of [...keys].sort()) {
      const mn = min.get(k);
      const mx = max.get(k);
      const df = defaults.get(k);
      const dr = defaultRequests.get(k);
      const ratio = ratios.get(k);
      if (mn && mx && mn.cmp(mx) > 0) errs.push(invalid(key(child(p, "min"), k), mn.toString(), `min value ${mn} is greater than max value ${mx}`));
      if (dr && mn && mn.cmp(dr) > 0) errs.push(invalid(key(child(p, "defaultRequest"), k), dr.toString(), `min value ${mn} is greater than default request value ${dr}`));
      if (dr && mx && dr.cmp(mx) > 0) errs.push(invalid(key(child(p, "defaultRequest"), k), dr.toString(), `default request value ${dr} is greater than max value ${mx}`));
      if (dr && df && dr.cmp(df) > 0) errs.push(invalid(key(child(p, "defaultRequest"), k), dr.toString(), `default request value ${dr} is greater than default limit value ${df}`));
      if (df && mn && mn.cmp(df) > 0) errs.push(invalid(key(child(p, "default"), k), mn.toString(), `min value ${mn} is greater than default value ${df}`));
      if (df && mx && df.cmp(mx) > 0) errs.push(invalid(key(child(p, "default"), k), mx.toString(), `default value ${df} is greater than max value ${mx}`));
      if (ratio && ratio.cmp(ExactQuantity.ofInt(1)) < 0) errs.push(invalid(key(child(p, "maxLimitRequestRatio"), k), ratio.toString(), `ratio ${ratio} is less than 1`));
      if (ratio && mn && mx) {
        const limit = mx.toNumber() / mn.toNumber();
        if (ratio.toNumber() > limit) {
          errs.push(invalid(key(child(p, "maxLimitRequestRatio"), k), ratio.toString(), `ratio ${ratio} is greater than max/min = ${limit.toFixed(6)}`));
        }
      }
      if (!isOvercommitAllowed(k) && df && dr && df.cmp(dr) !== 0) {
        errs.push(invalid(key(child(p, "defaultRequest"), k), dr.toString(), `default value ${df} must equal to defaultRequest value ${dr} in ${k}`));
      }
    }
  });
  return errs;
}
