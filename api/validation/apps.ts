// Validation of apps/v1 Deployments, ReplicaSets, DaemonSets, StatefulSets and ControllerRevisions and batch/v1 Jobs.

import { JobControllerUidLabel, JobNameLabel, LegacyJobControllerUidLabel, LegacyJobNameLabel } from "../batch/v1.ts";
import { intOrPercentValue } from "../intstr.ts";
import { labelSelectorAsSelector, type Selector } from "../labels.ts";
import type { FieldError } from "./field.ts";
import { child, forbidden, invalid, key, notSupported, required } from "./field.ts";
import { validateAnnotations, validateImmutableField, validateLabels, validateLabelSelector, validateNonnegative } from "./meta.ts";
import { validatePodTemplateSpec } from "./pod.ts";
import { deepEqual, isInt, isRec, rec, str, strMap, type Rec } from "./util.ts";

const SELECTOR_MISMATCH = "`selector` does not match template `labels`";

/**
 * The selector checks shared by Deployment, ReplicaSet and Job: required, valid, non-empty
 * (workloads), and convertible. Returns the selector when it could be built.
 */
function validateWorkloadSelector(sel: unknown, fldPath: string, allowEmpty: boolean, kind = "deployment"): { errs: FieldError[]; selector?: Selector } {
  if (sel === undefined || sel === null) return { errs: [required(fldPath, "")] };
  const errs = validateLabelSelector(sel, fldPath);
  const s = rec(sel);
  const n = Object.keys(rec(s.matchLabels)).length + (Array.isArray(s.matchExpressions) ? s.matchExpressions.length : 0);
  if (n === 0 && !allowEmpty) errs.push(invalid(fldPath, sel, `empty selector is invalid for ${kind}`));
  if (errs.length) return { errs };
  try {
    return { errs, selector: labelSelectorAsSelector(s) };
  } catch {
    return { errs: [invalid(fldPath, sel, "invalid label selector")] };
  }
}

/** ValidatePodTemplateSpecForReplicaSet: labels match the selector; restartPolicy Always only. */
function validateTemplateForReplicaSet(template: unknown, selector: Selector | undefined, fldPath: string): FieldError[] {
  if (!isRec(template)) return [required(fldPath, "")];
  const errs: FieldError[] = [];
  const labels = strMap(rec(template.metadata).labels);
  if (selector && !selector.empty() && !selector.matches(labels)) {
    errs.push(invalid(child(fldPath, "metadata", "labels"), labels, SELECTOR_MISMATCH));
  }
  errs.push(...validatePodTemplateSpec(template, fldPath, { restartPolicies: ["Always"] }));
  const spec = rec(template.spec);
  if (spec.activeDeadlineSeconds !== undefined && spec.activeDeadlineSeconds !== null) {
    errs.push(invalid(child(fldPath, "spec", "activeDeadlineSeconds"), spec.activeDeadlineSeconds, "activeDeadlineSeconds in ReplicaSet is not Supported"));
  }
  return errs;
}

/** ValidatePositiveIntOrPercent. */
function validatePositiveIntOrPercent(v: unknown, fldPath: string): FieldError[] {
  if (v === undefined || v === null) return [];
  if (typeof v === "string") {
    if (!/^[0-9]+%$/.test(v)) return [invalid(fldPath, v, "must be an integer or percentage (e.g '5%')")];
    return [];
  }
  if (typeof v === "number") return validateNonnegative(v, fldPath);
  return [invalid(fldPath, v, "must be an integer or percentage (e.g '5%')")];
}

function intOrPercentOrZero(v: unknown): number {
  if (typeof v !== "number" && typeof v !== "string") return 0;
  try {
    return intOrPercentValue(v).value;
  } catch {
    return 0;
  }
}

function validateDeploymentStrategy(strategy: unknown, fldPath: string): FieldError[] {
  const errs: FieldError[] = [];
  const s = rec(strategy);
  switch (s.type) {
    case "Recreate":
      if (s.rollingUpdate !== undefined && s.rollingUpdate !== null) {
        errs.push(forbidden(child(fldPath, "rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'"));
      }
      break;
    case "RollingUpdate": {
      if (!isRec(s.rollingUpdate)) {
        errs.push(required(child(fldPath, "rollingUpdate"), "this should be defaulted and never be nil"));
        break;
      }
      const ru = s.rollingUpdate;
      const ruPath = child(fldPath, "rollingUpdate");
      errs.push(...validatePositiveIntOrPercent(ru.maxUnavailable, child(ruPath, "maxUnavailable")));
      errs.push(...validatePositiveIntOrPercent(ru.maxSurge, child(ruPath, "maxSurge")));
      if (intOrPercentOrZero(ru.maxUnavailable) === 0 && intOrPercentOrZero(ru.maxSurge) === 0) {
        errs.push(invalid(child(ruPath, "maxUnavailable"), ru.maxUnavailable ?? 0, "may not be 0 when `maxSurge` is 0"));
      }
      if (typeof ru.maxUnavailable === "string" && /^[0-9]+%$/.test(ru.maxUnavailable) && intOrPercentOrZero(ru.maxUnavailable) > 100) {
        errs.push(invalid(child(ruPath, "maxUnavailable"), ru.maxUnavailable, "must not be greater than 100%"));
      }
      break;
    }
    default:
      errs.push(notSupported(child(fldPath, "type"), s.type ?? "", ["Recreate", "RollingUpdate"]));
  }
  return errs;
}

export function validateDeploymentSpec(spec: unknown, fldPath = "spec"): FieldError[] {
  if (!isRec(spec)) return [required(fldPath, "")];
  const errs = validateNonnegative(spec.replicas, child(fldPath, "replicas"));
  const { errs: selErrs, selector } = validateWorkloadSelector(spec.selector, child(fldPath, "selector"), false);
  errs.push(...selErrs);
  errs.push(...validateTemplateForReplicaSet(spec.template, selector, child(fldPath, "template")));
  errs.push(...validateDeploymentStrategy(spec.strategy, child(fldPath, "strategy")));
  errs.push(...validateNonnegative(spec.minReadySeconds, child(fldPath, "minReadySeconds")));
  errs.push(...validateNonnegative(spec.revisionHistoryLimit, child(fldPath, "revisionHistoryLimit")));
  if (spec.progressDeadlineSeconds !== undefined && spec.progressDeadlineSeconds !== null) {
    const pds = spec.progressDeadlineSeconds;
    const nn = validateNonnegative(pds, child(fldPath, "progressDeadlineSeconds"));
    errs.push(...nn);
    if (nn.length === 0 && isInt(pds) && pds <= (isInt(spec.minReadySeconds) ? spec.minReadySeconds : 0)) {
      errs.push(invalid(child(fldPath, "progressDeadlineSeconds"), pds, "must be greater than minReadySeconds"));
    }
  }
  return errs;
}

export function validateReplicaSetSpec(spec: unknown, fldPath = "spec"): FieldError[] {
  if (!isRec(spec)) return [required(fldPath, "")];
  const errs = validateNonnegative(spec.replicas, child(fldPath, "replicas"));
  errs.push(...validateNonnegative(spec.minReadySeconds, child(fldPath, "minReadySeconds")));
  const { errs: selErrs, selector } = validateWorkloadSelector(spec.selector, child(fldPath, "selector"), false);
  errs.push(...selErrs);
  errs.push(...validateTemplateForReplicaSet(spec.template, selector, child(fldPath, "template")));
  return errs;
}

/** Deployment, ReplicaSet and DaemonSet updates: spec.selector is immutable in apps/v1. */
export function validateSelectorUpdate(spec: unknown, oldSpec: unknown, fldPath = "spec"): FieldError[] {
  return validateImmutableField(rec(spec).selector, rec(oldSpec).selector, child(fldPath, "selector"), deepEqual);
}

// ---------------------------------------------------------------------------------------------
// DaemonSet

/** IsNotMoreThan100Percent. */
function notMoreThan100Percent(v: unknown, fldPath: string): FieldError[] {
  if (typeof v !== "string" || !/^[0-9]+%$/.test(v)) return [];
  return intOrPercentOrZero(v) > 100 ? [invalid(fldPath, v, "must not be greater than 100%")] : [];
}

/** ValidateDaemonSetUpdateStrategy and ValidateRollingUpdateDaemonSet: exactly one of maxUnavailable and maxSurge is non-zero. */
function validateDaemonSetUpdateStrategy(strategy: unknown, fldPath: string): FieldError[] {
  const s = rec(strategy);
  switch (s.type) {
    case "OnDelete":
      return [];
    case "RollingUpdate": {
      if (!isRec(s.rollingUpdate)) return [required(child(fldPath, "rollingUpdate"), "")];
      const ru = s.rollingUpdate;
      const ruPath = child(fldPath, "rollingUpdate");
      const errs = [
        ...validatePositiveIntOrPercent(ru.maxUnavailable, child(ruPath, "maxUnavailable")),
        ...validatePositiveIntOrPercent(ru.maxSurge, child(ruPath, "maxSurge")),
        ...notMoreThan100Percent(ru.maxUnavailable, child(ruPath, "maxUnavailable")),
        ...notMoreThan100Percent(ru.maxSurge, child(ruPath, "maxSurge")),
      ];
      const hasUnavailable = intOrPercentOrZero(ru.maxUnavailable) !== 0;
      const hasSurge = intOrPercentOrZero(ru.maxSurge) !== 0;
      if (hasUnavailable && hasSurge) errs.push(invalid(child(ruPath, "maxSurge"), ru.maxSurge, "may not be set when maxUnavailable is non-zero"));
      else if (!hasUnavailable && !hasSurge) errs.push(required(child(ruPath, "maxUnavailable"), "cannot be 0 when maxSurge is 0"));
      return errs;
    }
    default:
      return [notSupported(child(fldPath, "type"), s.type ?? "", ["OnDelete", "RollingUpdate"])];
  }
}

/** ValidateDaemonSetSpec: a non-empty selector matching the template, restartPolicy Always, a valid update strategy. */
export function validateDaemonSetSpec(spec: unknown, fldPath = "spec"): FieldError[] {
  if (!isRec(spec)) return [required(fldPath, "")];
  const { errs, selector } = validateWorkloadSelector(spec.selector, child(fldPath, "selector"), false, "daemonset");
  const template = spec.template;
  if (!isRec(template)) {
    errs.push(required(child(fldPath, "template"), ""));
  } else {
    const labels = strMap(rec(template.metadata).labels);
    if (selector && !selector.matches(labels)) errs.push(invalid(child(fldPath, "template", "metadata", "labels"), labels, SELECTOR_MISMATCH));
    errs.push(...validatePodTemplateSpec(template, child(fldPath, "template"), { restartPolicies: ["Always"] }));
    const tspec = rec(template.spec);
    if (tspec.activeDeadlineSeconds !== undefined && tspec.activeDeadlineSeconds !== null) {
      errs.push(invalid(child(fldPath, "template", "spec", "activeDeadlineSeconds"), tspec.activeDeadlineSeconds, "activeDeadlineSeconds in DaemonSet is not Supported"));
    }
  }
  errs.push(...validateNonnegative(spec.minReadySeconds, child(fldPath, "minReadySeconds")));
  errs.push(...validateDaemonSetUpdateStrategy(spec.updateStrategy, child(fldPath, "updateStrategy")));
  errs.push(...validateNonnegative(spec.revisionHistoryLimit, child(fldPath, "revisionHistoryLimit")));
  return errs;
}

// ---------------------------------------------------------------------------------------------
// Job

/** ValidateHasLabel. */
function validateHasLabel(meta: Rec, fldPath: string, k: string, expected: string): FieldError[] {
  const labels = strMap(meta.labels);
  if (!(k in labels)) return [required(key(child(fldPath, "labels"), k), expected)];
  if (labels[k] !== expected) return [invalid(key(child(fldPath, "labels"), k), labels, `must be '${expected}'`)];
  return [];
}

/** validateGeneratedSelector: with a server-generated selector, the uid and name labels must be in place. */
function validateGeneratedSelector(job: Rec, selector: Selector | undefined): FieldError[] {
  const spec = rec(job.spec);
  if (spec.manualSelector === true || spec.selector === undefined || spec.selector === null) return [];
  const meta = rec(job.metadata);
  const uid = str(meta.uid);
  const name = str(meta.name);
  const tmeta = rec(rec(spec.template).metadata);
  const tpath = child("spec", "template", "metadata");
  const errs: FieldError[] = [];
  errs.push(...validateHasLabel(tmeta, tpath, LegacyJobControllerUidLabel, uid));
  errs.push(...validateHasLabel(tmeta, tpath, LegacyJobNameLabel, name));
  errs.push(...validateHasLabel(tmeta, tpath, JobControllerUidLabel, uid));
  errs.push(...validateHasLabel(tmeta, tpath, JobNameLabel, name));
  if (selector && !selector.matches({ [JobControllerUidLabel]: uid })) {
    errs.push(invalid(child("spec", "selector"), spec.selector, "`selector` not auto-generated"));
  }
  return errs;
}

/** ValidateJob's spec rules; `fldPath` is "spec", or "spec.jobTemplate.spec" for a CronJob's template. */
export function validateJob(job: Rec, fldPath = "spec"): FieldError[] {
  if (!isRec(job.spec)) return [required(fldPath, "")];
  const spec = job.spec;
  const errs: FieldError[] = [];
  for (const f of ["parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished", "backoffLimitPerIndex", "maxFailedIndexes"]) {
    errs.push(...validateNonnegative(spec[f], child(fldPath, f)));
  }
  const { errs: selErrs, selector } = validateWorkloadSelector(spec.selector, child(fldPath, "selector"), true);
  errs.push(...selErrs);
  const template = spec.template;
  if (!isRec(template)) {
    errs.push(required(child(fldPath, "template"), ""));
  } else {
    const labels = strMap(rec(template.metadata).labels);
    if (selector && !selector.empty() && !selector.matches(labels)) {
      errs.push(invalid(child(fldPath, "template", "metadata", "labels"), labels, SELECTOR_MISMATCH));
    }
    errs.push(...validatePodTemplateSpec(template, child(fldPath, "template"), { restartPolicies: ["OnFailure", "Never"] }));
  }
  const mode = spec.completionMode ?? "NonIndexed";
  if (mode !== "NonIndexed" && mode !== "Indexed") {
    errs.push(notSupported(child(fldPath, "completionMode"), mode, ["NonIndexed", "Indexed"]));
  }
  if (mode === "Indexed" && (spec.completions === undefined || spec.completions === null)) {
    errs.push(required(child(fldPath, "completions"), "when completion mode is Indexed"));
  }
  if (spec.backoffLimitPerIndex !== undefined && spec.backoffLimitPerIndex !== null && mode !== "Indexed") {
    errs.push(invalid(child(fldPath, "backoffLimitPerIndex"), spec.backoffLimitPerIndex, "requires indexed completion mode"));
  }
  // The generated-selector labels are known only once the uid is assigned (defaultJobSelector).
  if (str(rec(job.metadata).uid)) errs.push(...validateGeneratedSelector(job, selector));
  return errs;
}

/** Job update: selector, template, completionMode immutable; completions only with Indexed scaling. */
export function validateJobUpdate(job: Rec, old: Rec): FieldError[] {
  const ns = rec(job.spec);
  const os = rec(old.spec);
  const errs: FieldError[] = [];
  errs.push(...validateImmutableField(ns.selector, os.selector, child("spec", "selector"), deepEqual));
  errs.push(...validateImmutableField(ns.template, os.template, child("spec", "template"), deepEqual));
  errs.push(...validateImmutableField(ns.completionMode ?? "NonIndexed", os.completionMode ?? "NonIndexed", child("spec", "completionMode"), deepEqual));
  const elasticIndexed = ns.completionMode === "Indexed" && ns.completions === ns.parallelism && os.completions === os.parallelism;
  if (!elasticIndexed) errs.push(...validateImmutableField(ns.completions, os.completions, child("spec", "completions"), deepEqual));
  return errs;
}

// ---------------------------------------------------------------------------------------------
// StatefulSet and ControllerRevision

const STATEFULSET_SPEC_FORBIDDEN =
  "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden";

function validateRollingUpdateStatefulSet(ru: Rec, fldPath: string): FieldError[] {
  const errs = validateNonnegative(ru.partition, child(fldPath, "partition"));
  const mu = ru.maxUnavailable;
  if (mu !== undefined && mu !== null) {
    const muPath = child(fldPath, "maxUnavailable");
    const pos = validatePositiveIntOrPercent(mu, muPath);
    errs.push(...pos);
    if (pos.length === 0 && intOrPercentOrZero(mu) === 0) errs.push(invalid(muPath, mu, "cannot be 0"));
    if (typeof mu === "string" && /^[0-9]+%$/.test(mu) && intOrPercentOrZero(mu) > 100) errs.push(invalid(muPath, mu, "must not be greater than 100%"));
  }
  return errs;
}

function validateStatefulSetUpdateStrategy(strategy: unknown, fldPath: string): FieldError[] {
  const s = rec(strategy);
  switch (s.type) {
    case undefined:
    case null:
    case "":
      return [required(child(fldPath, "type"), "")];
    case "OnDelete":
      return isRec(s.rollingUpdate) ? [invalid(child(fldPath, "rollingUpdate"), s.rollingUpdate, "only allowed for updateStrategy 'RollingUpdate'")] : [];
    case "RollingUpdate":
      return isRec(s.rollingUpdate) ? validateRollingUpdateStatefulSet(s.rollingUpdate, child(fldPath, "rollingUpdate")) : [];
    default:
      return [invalid(child(fldPath, "type"), s.type, "must be 'RollingUpdate' or 'OnDelete'")];
  }
}

function validateRetentionPolicy(policy: unknown, fldPath: string): FieldError[] {
  if (!isRec(policy)) return [];
  const errs: FieldError[] = [];
  for (const f of ["whenDeleted", "whenScaled"]) {
    if (policy[f] !== "Retain" && policy[f] !== "Delete") errs.push(notSupported(child(fldPath, f), policy[f] ?? "", ["Retain", "Delete"]));
  }
  return errs;
}

/**
 * ValidateStatefulSetSpec. As upstream, the pod template's spec is not validated here (its volumes
 * may name claim templates); only its labels (matching the selector), annotations, restartPolicy
 * Always and the absence of activeDeadlineSeconds.
 */
export function validateStatefulSetSpec(spec: unknown, fldPath = "spec"): FieldError[] {
  if (!isRec(spec)) return [required(fldPath, "")];
  const errs: FieldError[] = [];
  const pmp = spec.podManagementPolicy;
  if (pmp === undefined || pmp === null || pmp === "") errs.push(required(child(fldPath, "podManagementPolicy"), ""));
  else if (pmp !== "OrderedReady" && pmp !== "Parallel") errs.push(invalid(child(fldPath, "podManagementPolicy"), pmp, "must be 'OrderedReady' or 'Parallel'"));
  errs.push(...validateStatefulSetUpdateStrategy(spec.updateStrategy, child(fldPath, "updateStrategy")));
  errs.push(...validateRetentionPolicy(spec.persistentVolumeClaimRetentionPolicy, child(fldPath, "persistentVolumeClaimRetentionPolicy")));
  errs.push(...validateNonnegative(spec.replicas, child(fldPath, "replicas")));
  errs.push(...validateNonnegative(spec.minReadySeconds, child(fldPath, "minReadySeconds")));
  if (isRec(spec.ordinals)) errs.push(...validateNonnegative(spec.ordinals.start, child(fldPath, "ordinals.start")));
  let selector: Selector | undefined;
  if (spec.selector === undefined || spec.selector === null) {
    errs.push(required(child(fldPath, "selector"), ""));
  } else {
    const selErrs = validateLabelSelector(spec.selector, child(fldPath, "selector"));
    errs.push(...selErrs);
    const s = rec(spec.selector);
    if (Object.keys(rec(s.matchLabels)).length + (Array.isArray(s.matchExpressions) ? s.matchExpressions.length : 0) === 0) {
      errs.push(invalid(child(fldPath, "selector"), spec.selector, "empty selector is invalid for statefulset"));
    }
    if (selErrs.length === 0) {
      try {
        selector = labelSelectorAsSelector(s);
      } catch {
        errs.push(invalid(child(fldPath, "selector"), spec.selector, ""));
      }
    }
  }
  const tPath = child(fldPath, "template");
  const template = rec(spec.template);
  const tmeta = rec(template.metadata);
  const labels = strMap(tmeta.labels);
  if (selector && !selector.empty() && !selector.matches(labels)) errs.push(invalid(child(tPath, "metadata", "labels"), labels, SELECTOR_MISMATCH));
  errs.push(...validateLabels(tmeta.labels, child(tPath, "labels")));
  errs.push(...validateAnnotations(tmeta.annotations, child(tPath, "annotations")));
  const tspec = rec(template.spec);
  if (tspec.restartPolicy !== "Always") errs.push(notSupported(child(tPath, "spec", "restartPolicy"), tspec.restartPolicy ?? "", ["Always"]));
  if (tspec.activeDeadlineSeconds !== undefined && tspec.activeDeadlineSeconds !== null) {
    errs.push(forbidden(child(tPath, "spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in StatefulSet is not Supported"));
  }
  return errs;
}

/** ValidateStatefulSetUpdate: only replicas, ordinals, template, updateStrategy, revisionHistoryLimit, the retention policy and minReadySeconds may change. */
export function validateStatefulSetUpdate(spec: unknown, oldSpec: unknown): FieldError[] {
  const mutable = ["replicas", "ordinals", "template", "updateStrategy", "revisionHistoryLimit", "persistentVolumeClaimRetentionPolicy", "minReadySeconds"];
  const strip = (s: unknown): Rec => {
    const c = { ...rec(s) };
    for (const f of mutable) delete c[f];
    return c;
  };
  return deepEqual(strip(spec), strip(oldSpec)) ? [] : [forbidden("spec", STATEFULSET_SPEC_FORBIDDEN)];
}

/** ValidateStatefulSetStatus: counts non-negative, none above replicas, as upstream. */
export function validateStatefulSetStatus(status: unknown, fldPath = "status"): FieldError[] {
  const s = rec(status);
  const errs: FieldError[] = [];
  for (const f of ["replicas", "readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas", "observedGeneration", "collisionCount"]) {
    errs.push(...validateNonnegative(s[f], child(fldPath, f)));
  }
  const replicas = isInt(s.replicas) ? s.replicas : 0;
  for (const f of ["readyReplicas", "currentReplicas", "updatedReplicas"]) {
    if (isInt(s[f]) && s[f] > replicas) errs.push(invalid(child(fldPath, f), s[f], "cannot be greater than status.replicas"));
  }
  if (isInt(s.availableReplicas) && isInt(s.readyReplicas) && s.availableReplicas > s.readyReplicas) {
    errs.push(invalid(child(fldPath, "availableReplicas"), s.availableReplicas, "cannot be greater than status.readyReplicas"));
  }
  return errs;
}

/** ValidateControllerRevision: data is mandatory, revision non-negative. */
export function validateControllerRevision(o: Rec): FieldError[] {
  const errs: FieldError[] = [];
  if (o.data === undefined || o.data === null) errs.push(required("data", "data is mandatory"));
  errs.push(...validateNonnegative(o.revision, "revision"));
  return errs;
}

/** ValidateControllerRevisionUpdate: data is immutable (the revision number may change). */
export function validateControllerRevisionUpdate(o: Rec, old: Rec): FieldError[] {
  return validateImmutableField(o.data, old.data, "data", deepEqual);
}
