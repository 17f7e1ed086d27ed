// Deployment helpers (pkg/controller/deployment/util): pod-template-hash, revisions and their
// annotations, maxSurge/maxUnavailable fenceposts, replica counts, conditions and sort orders.

import {
  DefaultDeploymentUniqueLabelKey,
  DeploymentRevisionAnnotation,
  DesiredReplicasAnnotation,
  MaxReplicasAnnotation,
  scaledValue,
  type Deployment,
  type DeploymentCondition,
  type DeploymentStatus,
  type LabelSelector,
  type PodTemplateSpec,
  type ReplicaSet,
} from "../../api/index.ts";
import { parseTime } from "../podcontrol.ts";

export const RevisionHistoryAnnotation = "deployment.kubernetes.io/revision-history";
/** Longest revision-history annotation kept (the controller's --max-revision-history-length default). */
export const MaxRevHistoryLengthInChars = 2000;
const MaxInt32 = 2147483647;

/** Deployment annotations never copied onto its ReplicaSets (annotationsToSkip). */
const annotationsToSkip = new Set([
  "kubectl.kubernetes.io/last-applied-configuration",
  DeploymentRevisionAnnotation,
  RevisionHistoryAnnotation,
  DesiredReplicasAnnotation,
  MaxReplicasAnnotation,
  "deprecated.deployment.rollback.to",
]);

// ---- Progressing/Available reasons (deploymentutil) ----
export const NewReplicaSetReason = "NewReplicaSetCreated";
export const FoundNewRSReason = "FoundNewReplicaSet";
export const ReplicaSetUpdatedReason = "ReplicaSetUpdated";
export const NewRSAvailableReason = "NewReplicaSetAvailable";
export const TimedOutReason = "ProgressDeadlineExceeded";
export const PausedDeployReason = "DeploymentPaused";
export const ResumedDeployReason = "DeploymentResumed";
export const FailedRSCreateReason = "ReplicaSetCreateError";
export const MinimumReplicasAvailable = "MinimumReplicasAvailable";
export const MinimumReplicasUnavailable = "MinimumReplicasUnavailable";

// ---------------------------------------------------------------------------------------------
// Hashing

/** JSON with object keys sorted and undefined members dropped: the same template always hashes the same. */
export function canonicalJSON(v: unknown): string {
  if (v === null || typeof v !== "object") return JSON.stringify(v) ?? "null";
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? "null" : canonicalJSON(x))).join(",")}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJSON(o[k])}`).join(",")}}`;
}

/** FNV-1a, 32 bits, over bytes. */
export function fnv32a(bytes: Uint8Array, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

const safeAlphanums = "bcdfghjklmnpqrstvwxz2456789";

/** rand.SafeEncodeString: maps each character to a consonant or digit so no words (or bad words) form. */
export function safeEncodeString(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) out += safeAlphanums[s.charCodeAt(i) % safeAlphanums.length];
  return out;
}

/**
 * controller.ComputeHash: FNV-32a of the template (here its canonical JSON), then the collision
 * count as 4 little-endian bytes when set, rendered as SafeEncodeString of the decimal value.
 */
export function computeHash(template: Readonly<PodTemplateSpec>, collisionCount?: number): string {
  const enc = new TextEncoder();
  let h = fnv32a(enc.encode(canonicalJSON(template)));
  if (collisionCount !== undefined && collisionCount !== null) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, collisionCount >>> 0, true);
    h = fnv32a(b, h);
  }
  return safeEncodeString(String(h));
}

/** Semantic equality of JSON values, where absent, null, [] and {} are all "empty" (apimachinery's DeepEqual). */
export function semanticEqual(a: unknown, b: unknown): boolean {
  const empty = (v: unknown): boolean =>
    v === undefined || v === null || (Array.isArray(v) && v.length === 0) || (typeof v === "object" && !Array.isArray(v) && Object.keys(v as object).every((k) => (v as Record<string, unknown>)[k] === undefined));
  if (empty(a) && empty(b)) return true;
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => semanticEqual(x, b[i]));
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  for (const k of new Set([...Object.keys(ao), ...Object.keys(bo)])) if (!semanticEqual(ao[k], bo[k])) return false;
  return true;
}

/** EqualIgnoreHash: the templates are the same once the pod-template-hash label is dropped from both. */
export function equalIgnoreHash(a: Readonly<PodTemplateSpec> | undefined, b: Readonly<PodTemplateSpec> | undefined): boolean {
  const strip = (t: Readonly<PodTemplateSpec> | undefined): PodTemplateSpec => {
    const c = structuredClone(t ?? {}) as PodTemplateSpec;
    if (c.metadata?.labels) delete c.metadata.labels[DefaultDeploymentUniqueLabelKey];
    return c;
  };
  return semanticEqual(strip(a), strip(b));
}

/** CloneSelectorAndAddLabel */
export function selectorWithLabel(sel: Readonly<LabelSelector>, key: string, value: string): LabelSelector {
  const c = structuredClone(sel) as LabelSelector;
  c.matchLabels = { ...(c.matchLabels ?? {}), [key]: value };
  return c;
}

// ---------------------------------------------------------------------------------------------
// Spec with defaults (objects from the apiserver are defaulted; tests and old objects may not be)

export function deploymentReplicas(d: Readonly<Deployment>): number {
  return d.spec?.replicas ?? 1;
}

export function rsReplicas(rs: Readonly<ReplicaSet>): number {
  return rs.spec?.replicas ?? 1;
}

export function isRollingUpdate(d: Readonly<Deployment>): boolean {
  return (d.spec?.strategy?.type ?? "RollingUpdate") === "RollingUpdate";
}

/** ResolveFenceposts: maxSurge rounds up, maxUnavailable down; both 0 would stall, so maxUnavailable becomes 1. */
export function resolveFenceposts(d: Readonly<Deployment>): { surge: number; unavailable: number } {
  const desired = deploymentReplicas(d);
  const ru = d.spec?.strategy?.rollingUpdate;
  const surge = scaledValue(ru?.maxSurge ?? "25%", desired, true);
  let unavailable = scaledValue(ru?.maxUnavailable ?? "25%", desired, false);
  if (surge === 0 && unavailable === 0) unavailable = 1;
  return { surge, unavailable };
}

export function maxSurge(d: Readonly<Deployment>): number {
  if (!isRollingUpdate(d)) return 0;
  return resolveFenceposts(d).surge;
}

export function maxUnavailable(d: Readonly<Deployment>): number {
  const replicas = deploymentReplicas(d);
  if (!isRollingUpdate(d) || replicas === 0) return 0;
  return Math.min(resolveFenceposts(d).unavailable, replicas);
}

export function hasProgressDeadline(d: Readonly<Deployment>): boolean {
  const s = d.spec?.progressDeadlineSeconds ?? 600;
  return s !== MaxInt32;
}

export function progressDeadlineSeconds(d: Readonly<Deployment>): number {
  return d.spec?.progressDeadlineSeconds ?? 600;
}

export function revisionHistoryLimit(d: Readonly<Deployment>): number | undefined {
  const l = d.spec?.revisionHistoryLimit ?? 10;
  return l === MaxInt32 ? undefined : l;
}

// ---------------------------------------------------------------------------------------------
// Replica counts over sets of ReplicaSets

/** Sum of spec.replicas. */
export function replicaCount(rss: readonly (Readonly<ReplicaSet> | undefined)[]): number {
  return rss.reduce((n, rs) => n + (rs ? rsReplicas(rs) : 0), 0);
}
/** Sum of status.replicas. */
export function actualReplicaCount(rss: readonly (Readonly<ReplicaSet> | undefined)[]): number {
  return rss.reduce((n, rs) => n + (rs?.status?.replicas ?? 0), 0);
}
export function readyReplicaCount(rss: readonly (Readonly<ReplicaSet> | undefined)[]): number {
  return rss.reduce((n, rs) => n + (rs?.status?.readyReplicas ?? 0), 0);
}
export function availableReplicaCount(rss: readonly (Readonly<ReplicaSet> | undefined)[]): number {
  return rss.reduce((n, rs) => n + (rs?.status?.availableReplicas ?? 0), 0);
}

/** FilterActiveReplicaSets: those with spec.replicas > 0. */
export function activeReplicaSets(rss: readonly (Readonly<ReplicaSet> | undefined)[]): Readonly<ReplicaSet>[] {
  return rss.filter((rs): rs is Readonly<ReplicaSet> => rs !== undefined && rsReplicas(rs) > 0);
}

// ---------------------------------------------------------------------------------------------
// Sort orders

function byCreation(a: Readonly<ReplicaSet>, b: Readonly<ReplicaSet>): number {
  const ta = parseTime(a.metadata.creationTimestamp);
  const tb = parseTime(b.metadata.creationTimestamp);
  if (ta !== tb) return ta - tb;
  return (a.metadata.name ?? "").localeCompare(b.metadata.name ?? "");
}

/** ReplicaSetsByCreationTimestamp: oldest first, then by name. */
export function sortByCreation(rss: Readonly<ReplicaSet>[]): Readonly<ReplicaSet>[] {
  return rss.sort(byCreation);
}

/** ReplicaSetsByRevision: lowest revision first, then oldest. */
export function sortByRevision(rss: Readonly<ReplicaSet>[]): Readonly<ReplicaSet>[] {
  return rss.sort((a, b) => revisionOf(a) - revisionOf(b) || byCreation(a, b));
}

/** ReplicaSetsBySizeNewer: largest first, newer first among equals (scale-up leftovers go to the newest). */
export function sortBySizeNewer(rss: Readonly<ReplicaSet>[]): Readonly<ReplicaSet>[] {
  return rss.sort((a, b) => rsReplicas(b) - rsReplicas(a) || byCreation(b, a));
}

/** ReplicaSetsBySizeOlder: largest first, older first among equals. */
export function sortBySizeOlder(rss: Readonly<ReplicaSet>[]): Readonly<ReplicaSet>[] {
  return rss.sort((a, b) => rsReplicas(b) - rsReplicas(a) || byCreation(a, b));
}

// ---------------------------------------------------------------------------------------------
// Revisions and annotations

/** deploymentutil.Revision: the revision annotation as a number (0 when absent or malformed). */
export function revisionOf(obj: { metadata: { annotations?: Record<string, string> } }): number {
  const v = obj.metadata.annotations?.[DeploymentRevisionAnnotation];
  if (v === undefined || !/^\d+$/.test(v)) return 0;
  return Number.parseInt(v, 10);
}

export function maxRevision(rss: readonly Readonly<ReplicaSet>[]): number {
  return rss.reduce((m, rs) => Math.max(m, revisionOf(rs)), 0);
}

/** FindNewReplicaSet: the oldest ReplicaSet whose template equals the deployment's (ignoring the hash label). */
export function findNewReplicaSet(d: Readonly<Deployment>, rss: readonly Readonly<ReplicaSet>[]): Readonly<ReplicaSet> | undefined {
  return sortByCreation([...rss]).find((rs) => equalIgnoreHash(rs.spec?.template, d.spec?.template));
}

/** FindOldReplicaSets: every other ReplicaSet (all of them, whether or not they still have replicas). */
export function findOldReplicaSets(d: Readonly<Deployment>, rss: readonly Readonly<ReplicaSet>[]): Readonly<ReplicaSet>[] {
  const newRS = findNewReplicaSet(d, rss);
  return rss.filter((rs) => rs.metadata.uid !== newRS?.metadata.uid);
}

/** copyDeploymentAnnotationsToReplicaSet; returns whether anything changed. */
function copyDeploymentAnnotations(d: Readonly<Deployment>, rs: ReplicaSet): boolean {
  let changed = false;
  const ann = (rs.metadata.annotations ??= {});
  for (const [k, v] of Object.entries(d.metadata.annotations ?? {})) {
    if (annotationsToSkip.has(k) || ann[k] === v) continue;
    ann[k] = v;
    changed = true;
  }
  return changed;
}

/** SetReplicasAnnotations: desired-replicas and max-replicas; returns whether anything changed. */
export function setReplicasAnnotations(rs: ReplicaSet, desired: number, max: number): boolean {
  const ann = (rs.metadata.annotations ??= {});
  let changed = false;
  if (ann[DesiredReplicasAnnotation] !== String(desired)) {
    ann[DesiredReplicasAnnotation] = String(desired);
    changed = true;
  }
  if (ann[MaxReplicasAnnotation] !== String(max)) {
    ann[MaxReplicasAnnotation] = String(max);
    changed = true;
  }
  return changed;
}

export function replicasAnnotationsNeedUpdate(rs: Readonly<ReplicaSet>, desired: number, max: number): boolean {
  const ann = rs.metadata.annotations ?? {};
  return ann[DesiredReplicasAnnotation] !== String(desired) || ann[MaxReplicasAnnotation] !== String(max);
}

/**
 * SetNewReplicaSetAnnotations: copies the deployment's annotations, raises the revision to
 * `newRevision`, and when an existing revision is superseded (a rollback to this template) appends
 * it to revision-history, trimmed from the front to MaxRevHistoryLengthInChars. A ReplicaSet about
 * to be created (`exists` false) also gets the desired/max replicas annotations.
 */
export function setNewReplicaSetAnnotations(d: Readonly<Deployment>, rs: ReplicaSet, newRevision: number, exists: boolean): boolean {
  let changed = copyDeploymentAnnotations(d, rs);
  const ann = (rs.metadata.annotations ??= {});
  const oldRevisionStr = ann[DeploymentRevisionAnnotation];
  const oldRevision = revisionOf(rs);
  if (oldRevision < newRevision) {
    ann[DeploymentRevisionAnnotation] = String(newRevision);
    changed = true;
    if (oldRevisionStr !== undefined && oldRevisionStr !== "") {
      const history = ann[RevisionHistoryAnnotation] ?? "";
      if (history === "") {
        ann[RevisionHistoryAnnotation] = oldRevisionStr;
      } else {
        let revs = history.split(",");
        let total = history.length + oldRevisionStr.length + 1;
        while (total > MaxRevHistoryLengthInChars && revs.length > 0) {
          total -= revs[0].length + 1;
          revs = revs.slice(1);
        }
        ann[RevisionHistoryAnnotation] = [...revs, oldRevisionStr].join(",");
      }
    }
  }
  if (!exists && setReplicasAnnotations(rs, deploymentReplicas(d), deploymentReplicas(d) + maxSurge(d))) changed = true;
  return changed;
}

// ---------------------------------------------------------------------------------------------
// Replica arithmetic of a rollout

/**
 * NewRSNewReplicas: how far the new ReplicaSet may grow now — up to replicas + maxSurge pods in
 * total across every ReplicaSet, never beyond the deployment's replicas. Recreate: all at once.
 */
export function newRSNewReplicas(d: Readonly<Deployment>, allRSs: readonly (Readonly<ReplicaSet> | undefined)[], newRS: Readonly<ReplicaSet>): number {
  if (!isRollingUpdate(d)) return deploymentReplicas(d);
  const desired = deploymentReplicas(d);
  const maxTotal = desired + maxSurge(d);
  // Upstream sums spec.replicas only, so pods can briefly exceed replicas + maxSurge while an old
  // ReplicaSet's scale-down has not yet removed its pod. Counting the larger of spec and observed
  // replicas per ReplicaSet keeps the pods themselves within the surge, at the cost of waiting for
  // the old ReplicaSet's status to catch up.
  const current = allRSs.reduce((n, rs) => n + (rs ? Math.max(rsReplicas(rs), rs.status?.replicas ?? 0) : 0), 0);
  if (current >= maxTotal) return rsReplicas(newRS);
  const scaleUp = Math.min(maxTotal - current, desired - rsReplicas(newRS));
  return rsReplicas(newRS) + scaleUp;
}

/** IsSaturated: the new ReplicaSet has every replica, all of them available. */
export function isSaturated(d: Readonly<Deployment>, rs: Readonly<ReplicaSet> | undefined): boolean {
  if (!rs) return false;
  const desired = rs.metadata.annotations?.[DesiredReplicasAnnotation];
  return desired === String(deploymentReplicas(d)) && rsReplicas(rs) === deploymentReplicas(d) && (rs.status?.availableReplicas ?? 0) === deploymentReplicas(d);
}

/** FindActiveOrLatest: the only active ReplicaSet, or — when none is active — the newest one. */
export function findActiveOrLatest(newRS: Readonly<ReplicaSet> | undefined, oldRSs: readonly Readonly<ReplicaSet>[]): Readonly<ReplicaSet> | undefined {
  if (!newRS && oldRSs.length === 0) return undefined;
  const all = [...oldRSs, ...(newRS ? [newRS] : [])];
  const active = activeReplicaSets(all);
  if (active.length === 0) return newRS ?? sortByCreation([...oldRSs]).reverse()[0];
  if (active.length === 1) return active[0];
  return undefined;
}

/**
 * GetProportion: this ReplicaSet's share of `toAdd` replicas, proportional to its size against the
 * max-replicas annotation, never more than what is left to distribute.
 */
export function getProportion(rs: Readonly<ReplicaSet>, d: Readonly<Deployment>, toAdd: number, added: number): number {
  if (rsReplicas(rs) === 0 || toAdd === 0 || toAdd === added) return 0;
  const fraction = replicaSetFraction(rs, d);
  const allowed = toAdd - added;
  return toAdd > 0 ? Math.min(fraction, allowed) : Math.max(fraction, allowed);
}

function replicaSetFraction(rs: Readonly<ReplicaSet>, d: Readonly<Deployment>): number {
  if (deploymentReplicas(d) === 0) return -rsReplicas(rs);
  const deploymentMax = deploymentReplicas(d) + maxSurge(d);
  const annotated = Number.parseInt(rs.metadata.annotations?.[MaxReplicasAnnotation] ?? "", 10);
  const base = Number.isNaN(annotated) ? (d.status?.replicas ?? 0) : annotated;
  if (base === 0) return 0;
  // Go's math.Round rounds half away from zero.
  const size = (rsReplicas(rs) * deploymentMax) / base;
  return Math.sign(size) * Math.round(Math.abs(size)) - rsReplicas(rs);
}

// ---------------------------------------------------------------------------------------------
// Conditions and completeness

export function getCondition(status: Readonly<DeploymentStatus> | undefined, type: string): Readonly<DeploymentCondition> | undefined {
  return status?.conditions?.find((c) => c.type === type);
}

export function newCondition(type: string, status: DeploymentCondition["status"], reason: string, message: string, now: string): DeploymentCondition {
  return { type, status, lastUpdateTime: now, lastTransitionTime: now, reason, message };
}

/** SetDeploymentCondition: no-op when status and reason are unchanged; keeps lastTransitionTime when only the reason changes. */
export function setCondition(status: DeploymentStatus, cond: DeploymentCondition): void {
  const cur = getCondition(status, cond.type);
  if (cur && cur.status === cond.status && cur.reason === cond.reason) return;
  const next = { ...cond };
  if (cur && cur.status === cond.status) next.lastTransitionTime = cur.lastTransitionTime;
  status.conditions = [...(status.conditions ?? []).filter((c) => c.type !== cond.type), next];
}

export function removeCondition(status: DeploymentStatus, type: string): void {
  if (!status.conditions) return;
  status.conditions = status.conditions.filter((c) => c.type !== type);
}

/** DeploymentComplete: every replica updated and available, no old ones left, latest generation observed. */
export function deploymentComplete(d: Readonly<Deployment>, s: Readonly<DeploymentStatus>): boolean {
  const want = deploymentReplicas(d);
  return (
    (s.updatedReplicas ?? 0) === want &&
    (s.replicas ?? 0) === want &&
    (s.availableReplicas ?? 0) === want &&
    (s.observedGeneration ?? 0) >= (d.metadata.generation ?? 0)
  );
}

/** DeploymentProgressing: more updated, ready or available replicas, or fewer old ones, than last time. */
export function deploymentProgressing(d: Readonly<Deployment>, s: Readonly<DeploymentStatus>): boolean {
  const old = d.status ?? {};
  const oldOld = (old.replicas ?? 0) - (old.updatedReplicas ?? 0);
  const newOld = (s.replicas ?? 0) - (s.updatedReplicas ?? 0);
  return (
    (s.updatedReplicas ?? 0) > (old.updatedReplicas ?? 0) ||
    newOld < oldOld ||
    (s.readyReplicas ?? 0) > (old.readyReplicas ?? 0) ||
    (s.availableReplicas ?? 0) > (old.availableReplicas ?? 0)
  );
}

/** DeploymentTimedOut: the Progressing condition has not been updated for progressDeadlineSeconds. */
export function deploymentTimedOut(d: Readonly<Deployment>, s: Readonly<DeploymentStatus>, nowMs: number): boolean {
  if (!hasProgressDeadline(d)) return false;
  const cond = getCondition(s, "Progressing");
  if (!cond) return false;
  if (cond.reason === NewRSAvailableReason) return false;
  if (cond.reason === TimedOutReason) return true;
  const from = parseTime(cond.lastUpdateTime);
  return from + progressDeadlineSeconds(d) * 1000 < nowMs;
}
