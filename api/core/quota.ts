// v1 ResourceQuota and LimitRange, and the quota evaluators (k8s.io/kubernetes/pkg/quota/v1/evaluator/core
// and apiserver/pkg/quota/v1/generic): what an object charges against a quota, and which quotas it
// falls under. Shared by the apiserver's ResourceQuota admission and the quota controller. Pure.

import type { KubeObject } from "../meta.ts";
import type { ResourceList } from "../quantity.ts";
import { podQOSClass } from "./qos.ts";
import { addQuantities, ExactQuantity, toQuantities, type Quantities } from "./resourcelist.ts";

// ---------------------------------------------------------------------------------------------
// Types

export type ResourceQuotaScope = "Terminating" | "NotTerminating" | "BestEffort" | "NotBestEffort" | "PriorityClass" | "CrossNamespacePodAffinity";
export type ScopeSelectorOperator = "In" | "NotIn" | "Exists" | "DoesNotExist";

export interface ScopedResourceSelectorRequirement {
  scopeName: ResourceQuotaScope;
  operator: ScopeSelectorOperator;
  values?: string[];
}

export interface ScopeSelector {
  matchExpressions?: ScopedResourceSelectorRequirement[];
}

export interface ResourceQuotaSpec {
  hard?: ResourceList;
  scopes?: ResourceQuotaScope[];
  scopeSelector?: ScopeSelector;
}

/** Written by the quota controller (hard copied from spec.hard, used recomputed) and charged by admission. */
export interface ResourceQuotaStatus {
  hard?: ResourceList;
  used?: ResourceList;
}

export interface ResourceQuota extends KubeObject {
  spec?: ResourceQuotaSpec;
  status?: ResourceQuotaStatus;
}

export type LimitType = "Container" | "Pod" | "PersistentVolumeClaim";

export interface LimitRangeItem {
  type: LimitType;
  max?: ResourceList;
  min?: ResourceList;
  default?: ResourceList;
  defaultRequest?: ResourceList;
  maxLimitRequestRatio?: ResourceList;
}

export interface LimitRange extends KubeObject {
  spec?: { limits?: LimitRangeItem[] };
}

export const RESOURCE_QUOTA_SCOPES: readonly ResourceQuotaScope[] = [
  "Terminating",
  "NotTerminating",
  "BestEffort",
  "NotBestEffort",
  "PriorityClass",
  "CrossNamespacePodAffinity",
];

// ---------------------------------------------------------------------------------------------
// Resource names

/** count/<resource> for the core group, count/<resource>.<group> otherwise (ObjectCountQuotaResourceNameFor). */
export function objectCountName(group: string, resource: string): string {
  return group ? `count/${resource}.${group}` : `count/${resource}`;
}

/** The legacy names that count objects of a core resource ("pods", "configmaps", …). */
const LEGACY_COUNT_ALIASES: Record<string, string> = {
  configmaps: "configmaps",
  resourcequotas: "resourcequotas",
  replicationcontrollers: "replicationcontrollers",
  secrets: "secrets",
};

const POD_RESOURCES = new Set([
  "count/pods",
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
]);
const SERVICE_RESOURCES = new Set(["count/services", "services", "services.nodeports", "services.loadbalancers"]);
const PVC_RESOURCES = new Set(["count/persistentvolumeclaims", "persistentvolumeclaims", "requests.storage"]);
const STORAGE_CLASS_SUFFIX = ".storageclass.storage.k8s.io/";

/** Native resources (kubernetes.io/ or no domain): what is not an extended resource. */
function isNativeResource(name: string): boolean {
  return !name.includes("/") || name.includes("kubernetes.io/");
}

// ---------------------------------------------------------------------------------------------
// Evaluators

/** What an admission request asks of an evaluator. */
export type QuotaOperation = "CREATE" | "UPDATE";

/**
 * quota.Evaluator: measures one kind of object. `usage` is what one object charges; `matchingResources`
 * which of a quota's resource names it measures; `matchesScope` whether it falls under one scope
 * requirement; `constraints` refuses objects a quota cannot measure (pods without cpu requests
 * under a cpu quota).
 */
export interface QuotaEvaluator {
  group: string;
  resource: string;
  handles(op: QuotaOperation, subresource?: string): boolean;
  matchingResources(names: readonly string[]): string[];
  matchesScope(req: ScopedResourceSelectorRequirement, obj: KubeObject): boolean;
  constraints(required: readonly string[], obj: KubeObject): string | undefined;
  usage(obj: KubeObject, now: Date): Quantities;
}

function rec(v: unknown): Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/** generic.NewObjectCountEvaluator: count/<resource>[.<group>] (and the legacy alias), charged at create. */
export function objectCountEvaluator(group: string, resource: string): QuotaEvaluator {
  const names = new Set([objectCountName(group, resource)]);
  const alias = group === "" ? LEGACY_COUNT_ALIASES[resource] : undefined;
  if (alias) names.add(alias);
  return {
    group,
    resource,
    handles: (op) => op === "CREATE",
    matchingResources: (input) => input.filter((n) => names.has(n)),
    matchesScope: () => true,
    constraints: () => undefined,
    usage: () => new Map([...names].map((n) => [n, ExactQuantity.ofInt(1)])),
  };
}

// ---- pods ----

/** quota/v1/evaluator/core.QuotaV1Pod: terminal pods and pods past their deletion grace do not count. */
export function podCountsForQuota(pod: KubeObject, now: Date): boolean {
  const phase = rec(pod.status).phase;
  if (phase === "Succeeded" || phase === "Failed") return false;
  const ts = pod.metadata.deletionTimestamp;
  const grace = pod.metadata.deletionGracePeriodSeconds;
  if (ts && typeof grace === "number") {
    const deadline = Date.parse(ts) + grace * 1000;
    if (now.getTime() > deadline) return false;
  }
  return true;
}

interface ContainerResources {
  name: string;
  requests: Quantities;
  limits: Quantities;
  sidecar: boolean;
}

function containersOf(spec: Record<string, unknown>, field: "containers" | "initContainers"): ContainerResources[] {
  return arr(spec[field]).map((c) => {
    const r = rec(c);
    const res = rec(r.resources);
    return {
      name: typeof r.name === "string" ? r.name : "",
      requests: toQuantities(res.requests),
      limits: toQuantities(res.limits),
      sidecar: field === "initContainers" && r.restartPolicy === "Always",
    };
  });
}

function maxQuantities(a: Quantities, b: Quantities): Quantities {
  const out: Quantities = new Map(a);
  for (const [k, v] of b) {
    const o = out.get(k);
    if (!o || v.cmp(o) > 0) out.set(k, v);
  }
  return out;
}

/**
 * resourcehelper.PodRequests / PodLimits: the containers' sum, or the largest init container if
 * larger (sidecars — restartable init containers — add to the sum and to every later init
 * container's peak), plus spec.overhead.
 */
export function podResourceTotals(podSpec: unknown, which: "requests" | "limits"): Quantities {
  const spec = rec(podSpec);
  let sum: Quantities = new Map();
  for (const c of containersOf(spec, "containers")) sum = addQuantities(sum, c[which]);
  let sidecars: Quantities = new Map();
  let initPeak: Quantities = new Map();
  for (const c of containersOf(spec, "initContainers")) {
    if (c.sidecar) {
      sidecars = addQuantities(sidecars, c[which]);
      initPeak = maxQuantities(initPeak, sidecars);
    } else {
      initPeak = maxQuantities(initPeak, addQuantities(sidecars, c[which]));
    }
  }
  let total = maxQuantities(addQuantities(sum, sidecars), initPeak);
  const overhead = toQuantities(spec.overhead);
  if (overhead.size) total = addQuantities(total, overhead);
  return total;
}

/** podComputeUsageHelper: pods=1, cpu/memory/ephemeral-storage (= requests.*), limits.*, hugepages, extended requests. */
function podComputeUsage(requests: Quantities, limits: Quantities): Quantities {
  const out: Quantities = new Map([["pods", ExactQuantity.ofInt(1)]]);
  for (const r of ["cpu", "memory", "ephemeral-storage"]) {
    const req = requests.get(r);
    if (req) {
      out.set(r, req);
      out.set(`requests.${r}`, req);
    }
    const lim = limits.get(r);
    if (lim) out.set(`limits.${r}`, lim);
  }
  for (const [r, q] of requests) {
    if (r.startsWith("hugepages-")) {
      out.set(r, q);
      out.set(`requests.${r}`, q);
    } else if (!isNativeResource(r) && !r.startsWith("requests.")) {
      out.set(`requests.${r}`, q);
    }
  }
  return out;
}

/** The cpu/memory names that make a quota require every container to declare them (upstream's validationSet). */
const POD_VALIDATION_SET = new Set(["cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"]);

function isTerminatingPod(spec: Record<string, unknown>): boolean {
  return typeof spec.activeDeadlineSeconds === "number" && spec.activeDeadlineSeconds >= 0;
}

function usesCrossNamespacePodAffinity(spec: Record<string, unknown>): boolean {
  const affinity = rec(spec.affinity);
  const crossNs = (t: unknown) => arr(rec(t).namespaces).length > 0 || rec(t).namespaceSelector !== undefined;
  for (const kind of ["podAffinity", "podAntiAffinity"]) {
    const a = rec(affinity[kind]);
    if (arr(a.requiredDuringSchedulingIgnoredDuringExecution).some(crossNs)) return true;
    if (arr(a.preferredDuringSchedulingIgnoredDuringExecution).some((w) => crossNs(rec(w).podAffinityTerm))) return true;
  }
  return false;
}

/** A scope selector requirement matched against a value set ({PriorityClass: name} or nothing). */
function scopeRequirementMatches(req: ScopedResourceSelectorRequirement, value: string | undefined): boolean {
  const values = req.values ?? [];
  switch (req.operator) {
    case "In":
      return value !== undefined && values.includes(value);
    case "NotIn":
      return value === undefined || !values.includes(value);
    case "Exists":
      return value !== undefined;
    case "DoesNotExist":
      return value === undefined;
    default:
      return false;
  }
}

export function podMatchesScope(req: ScopedResourceSelectorRequirement, pod: KubeObject): boolean {
  const spec = rec(pod.spec);
  switch (req.scopeName) {
    case "Terminating":
      return isTerminatingPod(spec);
    case "NotTerminating":
      return !isTerminatingPod(spec);
    case "BestEffort":
      return podQOSClass(spec as Parameters<typeof podQOSClass>[0]) === "BestEffort";
    case "NotBestEffort":
      return podQOSClass(spec as Parameters<typeof podQOSClass>[0]) !== "BestEffort";
    case "PriorityClass": {
      const pc = typeof spec.priorityClassName === "string" && spec.priorityClassName !== "" ? spec.priorityClassName : undefined;
      if (req.operator === "Exists") return pc !== undefined;
      return scopeRequirementMatches(req, pc);
    }
    case "CrossNamespacePodAffinity":
      return usesCrossNamespacePodAffinity(spec);
    default:
      return false;
  }
}

/** The pod usage of one object (PodUsageFunc): count/pods always, compute resources while it is not terminal. */
export function podUsage(pod: KubeObject, now: Date): Quantities {
  const out: Quantities = new Map([["count/pods", ExactQuantity.ofInt(1)]]);
  if (!podCountsForQuota(pod, now)) return out;
  const requests = podResourceTotals(pod.spec, "requests");
  const limits = podResourceTotals(pod.spec, "limits");
  return addQuantities(out, podComputeUsage(requests, limits));
}

export const podEvaluator: QuotaEvaluator = {
  group: "",
  resource: "pods",
  handles: (op, subresource) => (subresource ? false : op === "CREATE"),
  matchingResources: (input) =>
    input.filter((n) => POD_RESOURCES.has(n) || n.startsWith("hugepages-") || n.startsWith("requests.hugepages-") || (!isNativeResource(n) && n.startsWith("requests."))),
  matchesScope: podMatchesScope,
  constraints(required, pod) {
    const requiredSet = required.filter((r) => POD_VALIDATION_SET.has(r));
    if (requiredSet.length === 0) return undefined;
    const spec = rec(pod.spec);
    const missing = new Map<string, Set<string>>();
    for (const c of [...containersOf(spec, "containers"), ...containersOf(spec, "initContainers")]) {
      const have = podComputeUsage(c.requests, c.limits);
      for (const r of requiredSet) {
        if (have.has(r)) continue;
        if (!missing.has(r)) missing.set(r, new Set());
        missing.get(r)!.add(c.name);
      }
    }
    if (missing.size === 0) return undefined;
    const parts = [...missing.keys()].sort().map((r) => `${r} for: ${[...missing.get(r)!].sort().join(",")}`);
    return `must specify ${parts.join("; ")}`;
  },
  usage: podUsage,
};

// ---- services ----

export function serviceUsage(svc: KubeObject): Quantities {
  const spec = rec(svc.spec);
  const ports = arr(spec.ports);
  const out: Quantities = new Map([
    ["count/services", ExactQuantity.ofInt(1)],
    ["services", ExactQuantity.ofInt(1)],
    ["services.loadbalancers", ExactQuantity.zero()],
    ["services.nodeports", ExactQuantity.zero()],
  ]);
  if (spec.type === "NodePort") out.set("services.nodeports", ExactQuantity.ofInt(ports.length));
  else if (spec.type === "LoadBalancer") {
    const nodePorts = spec.allocateLoadBalancerNodePorts === false ? ports.filter((p) => typeof rec(p).nodePort === "number" && rec(p).nodePort !== 0).length : ports.length;
    out.set("services.nodeports", ExactQuantity.ofInt(nodePorts));
    out.set("services.loadbalancers", ExactQuantity.ofInt(1));
  }
  return out;
}

export const serviceEvaluator: QuotaEvaluator = {
  group: "",
  resource: "services",
  handles: (op, subresource) => !subresource && (op === "CREATE" || op === "UPDATE"),
  matchingResources: (input) => input.filter((n) => SERVICE_RESOURCES.has(n)),
  matchesScope: () => true,
  constraints: () => undefined,
  usage: serviceUsage,
};

// ---- persistent volume claims ----

function storageClassOf(pvc: KubeObject): string | undefined {
  const annotation = pvc.metadata.annotations?.["volume.beta.kubernetes.io/storage-class"];
  if (annotation) return annotation;
  const cls = rec(pvc.spec).storageClassName;
  return typeof cls === "string" && cls !== "" ? cls : undefined;
}

export function pvcUsage(pvc: KubeObject): Quantities {
  const out: Quantities = new Map([
    ["count/persistentvolumeclaims", ExactQuantity.ofInt(1)],
    ["persistentvolumeclaims", ExactQuantity.ofInt(1)],
  ]);
  const cls = storageClassOf(pvc);
  if (cls) out.set(`${cls}${STORAGE_CLASS_SUFFIX}persistentvolumeclaims`, ExactQuantity.ofInt(1));
  let storage = toQuantities(rec(rec(pvc.spec).resources).requests).get("storage");
  // A claim whose expansion was allocated is charged for the larger of request and allocation.
  const allocated = toQuantities(rec(pvc.status).allocatedResources).get("storage");
  if (allocated && (!storage || allocated.cmp(storage) > 0)) storage = allocated;
  if (storage) {
    out.set("requests.storage", storage);
    if (cls) out.set(`${cls}${STORAGE_CLASS_SUFFIX}requests.storage`, storage);
  }
  return out;
}

export const pvcEvaluator: QuotaEvaluator = {
  group: "",
  resource: "persistentvolumeclaims",
  handles: (op, subresource) => !subresource && (op === "CREATE" || op === "UPDATE"),
  matchingResources: (input) =>
    input.filter(
      (n) =>
        PVC_RESOURCES.has(n) ||
        (n.includes(STORAGE_CLASS_SUFFIX) && (n.endsWith(`${STORAGE_CLASS_SUFFIX}requests.storage`) || n.endsWith(`${STORAGE_CLASS_SUFFIX}persistentvolumeclaims`))),
    ),
  matchesScope: () => true,
  constraints: () => undefined,
  usage: (pvc) => pvcUsage(pvc),
};

const EVALUATORS: Record<string, QuotaEvaluator> = {
  "/pods": podEvaluator,
  "/services": serviceEvaluator,
  "/persistentvolumeclaims": pvcEvaluator,
};

/** The evaluator of a resource: pods, services and claims have their own; everything else counts objects. */
export function quotaEvaluatorFor(group: string, resource: string): QuotaEvaluator {
  return EVALUATORS[`${group}/${resource}`] ?? objectCountEvaluator(group, resource);
}

/** The scope requirements of a quota: each of spec.scopes as Exists, then spec.scopeSelector's. */
export function quotaScopeSelectors(q: ResourceQuota): ScopedResourceSelectorRequirement[] {
  const out: ScopedResourceSelectorRequirement[] = (q.spec?.scopes ?? []).map((s) => ({ scopeName: s, operator: "Exists" }));
  for (const r of q.spec?.scopeSelector?.matchExpressions ?? []) out.push(r);
  return out;
}

/** generic.Matches: the object's evaluator measures a resource of `hard` and the object falls under every scope. */
export function quotaMatches(ev: QuotaEvaluator, q: ResourceQuota, hardNames: readonly string[], obj: KubeObject): boolean {
  if (ev.matchingResources(hardNames).length === 0) return false;
  return quotaScopeSelectors(q).every((s) => ev.matchesScope(s, obj));
}

/**
 * The usage of `objects` (one namespace's objects of the evaluator's resource) that fall under the
 * quota's scopes, restricted to `names` (generic.CalculateUsageStats): every name starts at zero.
 */
export function calculateUsage(ev: QuotaEvaluator, q: ResourceQuota, names: readonly string[], objects: Iterable<KubeObject>, now: Date): Quantities {
  const matching = ev.matchingResources(names);
  let used: Quantities = new Map(matching.map((n) => [n, ExactQuantity.zero()]));
  const scopes = quotaScopeSelectors(q);
  for (const o of objects) {
    if (!scopes.every((s) => ev.matchesScope(s, o))) continue;
    const u = ev.usage(o, now);
    const masked: Quantities = new Map();
    for (const n of matching) {
      const v = u.get(n);
      if (v) masked.set(n, v);
    }
    used = addQuantities(used, masked);
  }
  return used;
}
