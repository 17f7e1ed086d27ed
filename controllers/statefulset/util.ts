// StatefulSet helpers (upstream's stateful_set_utils.go): ordinals and stable identities, claim
// templates turned into per-ordinal PVCs and pod volumes, pod predicates, revisions as template
// patches, and the PVC ownerReferences that implement persistentVolumeClaimRetentionPolicy.

import {
  ControllerRevisionHashLabelKey,
  PodIndexLabel,
  scaledValue,
  StatefulSetPodNameLabel,
  type ControllerRevision,
  type KubeObject,
  type OwnerReference,
  type PersistentVolumeClaim,
  type Pod,
  type PodTemplateSpec,
  type StatefulSet,
  type StatefulSetPersistentVolumeClaimRetentionPolicy,
  type Volume,
} from "../../api/index.ts";
import { canonicalJSON } from "../deployment/util.ts";
import { newControllerRevision } from "../history/index.ts";
import { deepCopy, getPodFromTemplate, isPodAvailable, isPodReady, newControllerRef } from "../podcontrol.ts";

export const StatefulSetGVK = { apiVersion: "apps/v1", kind: "StatefulSet" } as const;
export const PodGVK = { apiVersion: "v1", kind: "Pod" } as const;

const statefulPodRegex = /^(.*)-([0-9]+)$/;

/** getParentNameAndOrdinal: "web-3" → ("web", 3); ("", -1) when the name has no ordinal. */
export function parentNameAndOrdinal(pod: Readonly<KubeObject>): { parent: string; ordinal: number } {
  const m = statefulPodRegex.exec(pod.metadata.name ?? "");
  if (!m) return { parent: "", ordinal: -1 };
  const ordinal = Number.parseInt(m[2]!, 10);
  return { parent: m[1]!, ordinal: Number.isSafeInteger(ordinal) && ordinal <= 2147483647 ? ordinal : -1 };
}

export function getOrdinal(pod: Readonly<KubeObject>): number {
  return parentNameAndOrdinal(pod).ordinal;
}

/** isMemberOf: the pod's name says it belongs to the set. */
export function isMemberOf(set: Readonly<StatefulSet>, pod: Readonly<Pod>): boolean {
  return parentNameAndOrdinal(pod).parent === set.metadata.name;
}

export function replicasOf(set: Readonly<StatefulSet>): number {
  return set.spec?.replicas ?? 1;
}

/** The first ordinal (spec.ordinals.start). */
export function startOrdinal(set: Readonly<StatefulSet>): number {
  return set.spec?.ordinals?.start ?? 0;
}

/** The last ordinal the set keeps (start + replicas - 1). */
export function endOrdinal(set: Readonly<StatefulSet>): number {
  return startOrdinal(set) + replicasOf(set) - 1;
}

export function podInOrdinalRange(pod: Readonly<Pod>, set: Readonly<StatefulSet>): boolean {
  const ord = getOrdinal(pod);
  return ord >= startOrdinal(set) && ord <= endOrdinal(set);
}

export function podName(set: Readonly<StatefulSet>, ordinal: number): string {
  return `${set.metadata.name ?? ""}-${ordinal}`;
}

/** getPersistentVolumeClaimName: `<template>-<set>-<ordinal>`. */
export function claimName(set: Readonly<StatefulSet>, template: Readonly<PersistentVolumeClaim>, ordinal: number): string {
  return `${template.metadata.name ?? ""}-${set.metadata.name ?? ""}-${ordinal}`;
}

export function retentionPolicy(set: Readonly<StatefulSet>): Required<StatefulSetPersistentVolumeClaimRetentionPolicy> {
  const p = set.spec?.persistentVolumeClaimRetentionPolicy;
  return { whenDeleted: p?.whenDeleted ?? "Retain", whenScaled: p?.whenScaled ?? "Retain" };
}

/**
 * getPersistentVolumeClaims: the pod's claims by template name — each template's copy named for the
 * pod's ordinal, in the set's namespace, labelled with the template's labels plus the selector's
 * matchLabels.
 */
export function claimsFor(set: Readonly<StatefulSet>, pod: Readonly<Pod>): Map<string, PersistentVolumeClaim> {
  const ordinal = getOrdinal(pod);
  const claims = new Map<string, PersistentVolumeClaim>();
  for (const t of set.spec?.volumeClaimTemplates ?? []) {
    const claim = deepCopy(t);
    claim.apiVersion = "v1";
    claim.kind = "PersistentVolumeClaim";
    claim.metadata = {
      ...claim.metadata,
      name: claimName(set, t, ordinal),
      namespace: set.metadata.namespace,
      labels: { ...(claim.metadata.labels ?? {}), ...(set.spec?.selector?.matchLabels ?? {}) },
    };
    delete claim.status;
    claims.set(t.metadata.name ?? "", claim);
  }
  return claims;
}

/** identityMatches: name, namespace and pod-name label are the ones the ordinal implies. */
export function identityMatches(set: Readonly<StatefulSet>, pod: Readonly<Pod>): boolean {
  const { parent, ordinal } = parentNameAndOrdinal(pod);
  return (
    ordinal >= 0 &&
    set.metadata.name === parent &&
    pod.metadata.name === podName(set, ordinal) &&
    pod.metadata.namespace === set.metadata.namespace &&
    pod.metadata.labels?.[StatefulSetPodNameLabel] === pod.metadata.name
  );
}

/** storageMatches: every claim template is mounted as a volume of the template's name on this ordinal's claim. */
export function storageMatches(set: Readonly<StatefulSet>, pod: Readonly<Pod>): boolean {
  const ordinal = getOrdinal(pod);
  if (ordinal < 0) return false;
  const volumes = new Map((pod.spec?.volumes ?? []).map((v) => [v.name, v]));
  for (const t of set.spec?.volumeClaimTemplates ?? []) {
    const v = volumes.get(t.metadata.name ?? "");
    if (!v?.persistentVolumeClaim || v.persistentVolumeClaim.claimName !== claimName(set, t, ordinal)) return false;
  }
  return true;
}

/** updateIdentity: name, namespace, and the pod-name and pod-index labels. */
export function updateIdentity(set: Readonly<StatefulSet>, pod: Pod): void {
  const ordinal = getOrdinal(pod);
  pod.metadata.name = podName(set, ordinal);
  pod.metadata.namespace = set.metadata.namespace;
  pod.metadata.labels = { ...(pod.metadata.labels ?? {}), [StatefulSetPodNameLabel]: pod.metadata.name, [PodIndexLabel]: String(ordinal) };
}

/** updateStorage: the claims' volumes first (template order), then the pod's other volumes. */
export function updateStorage(set: Readonly<StatefulSet>, pod: Pod): void {
  const claims = claimsFor(set, pod);
  const volumes: Volume[] = [];
  for (const [name, claim] of claims) volumes.push({ name, persistentVolumeClaim: { claimName: claim.metadata.name ?? "" } });
  for (const v of pod.spec?.volumes ?? []) if (!claims.has(v.name)) volumes.push(v);
  if (!pod.spec) return;
  if (volumes.length > 0) pod.spec.volumes = volumes;
}

/** newStatefulSetPod: the template's pod named `<set>-<ordinal>`, hostname = name, subdomain = serviceName, claims mounted. */
export function newStatefulSetPod(set: Readonly<StatefulSet>, ordinal: number): Pod {
  const pod = getPodFromTemplate(set.spec?.template ?? {}, set, newControllerRef(set, StatefulSetGVK));
  pod.metadata.name = podName(set, ordinal);
  pod.spec ??= { containers: [] };
  updateIdentity(set, pod);
  pod.spec.hostname = pod.metadata.name;
  if (set.spec?.serviceName) pod.spec.subdomain = set.spec.serviceName;
  updateStorage(set, pod);
  return pod;
}

export function getPodRevision(pod: Readonly<Pod>): string {
  return pod.metadata.labels?.[ControllerRevisionHashLabelKey] ?? "";
}

export function setPodRevision(pod: Pod, revision: string): void {
  pod.metadata.labels = { ...(pod.metadata.labels ?? {}), [ControllerRevisionHashLabelKey]: revision };
}

/**
 * newVersionedStatefulSetPod: ordinals below the partition (or, without rollingUpdate, below the
 * current replica count) get the current revision, the rest the update revision. The condition
 * keeps upstream's operator precedence.
 */
export function newVersionedStatefulSetPod(
  currentSet: Readonly<StatefulSet>,
  updateSet: Readonly<StatefulSet>,
  currentRevision: string,
  updateRevision: string,
  ordinal: number,
): Pod {
  const strategy = currentSet.spec?.updateStrategy;
  const start = startOrdinal(currentSet);
  const useCurrent =
    (strategy?.type === "RollingUpdate" && strategy.rollingUpdate === undefined && ordinal < start + (currentSet.status?.currentReplicas ?? 0)) ||
    (strategy?.rollingUpdate !== undefined && ordinal < start + (strategy.rollingUpdate.partition ?? 0));
  const pod = newStatefulSetPod(useCurrent ? currentSet : updateSet, ordinal);
  setPodRevision(pod, useCurrent ? currentRevision : updateRevision);
  return pod;
}

// ---------------------------------------------------------------------------------------------
// Pod predicates

/** isCreated: the apiserver has the pod (it has a phase). */
export const isCreated = (pod: Readonly<Pod>): boolean => (pod.status?.phase ?? "") !== "";
export const isPending = (pod: Readonly<Pod>): boolean => pod.status?.phase === "Pending";
export const isFailed = (pod: Readonly<Pod>): boolean => pod.status?.phase === "Failed";
export const isSucceeded = (pod: Readonly<Pod>): boolean => pod.status?.phase === "Succeeded";
export const isTerminating = (pod: Readonly<Pod>): boolean => pod.metadata.deletionTimestamp !== undefined;
export const isRunningAndReady = (pod: Readonly<Pod>): boolean => pod.status?.phase === "Running" && isPodReady(pod);
export const isRunningAndAvailable = (pod: Readonly<Pod>, minReadySeconds: number, nowMs: number): boolean => isPodAvailable(pod, minReadySeconds, nowMs);
/** isHealthy: running, ready and not terminating. */
export const isHealthy = (pod: Readonly<Pod>): boolean => isRunningAndReady(pod) && !isTerminating(pod);

/** allowsBurst: Parallel pod management. */
export function allowsBurst(set: Readonly<StatefulSet>): boolean {
  return set.spec?.podManagementPolicy === "Parallel";
}

/** getStatefulSetMaxUnavailable: maxUnavailable of replicas (percentages round down), at least 1. */
export function maxUnavailable(set: Readonly<StatefulSet>): number {
  const n = scaledValue(set.spec?.updateStrategy?.rollingUpdate?.maxUnavailable ?? 1, replicasOf(set), false);
  return Math.max(1, n);
}

// ---------------------------------------------------------------------------------------------
// Revisions

/** JSON with every object's keys in sorted order (what Go's json.Marshal of a map produces). */
function sortedKeys(v: unknown): unknown {
  return JSON.parse(canonicalJSON(v)) as unknown;
}

/**
 * getPatch: the revision data for a set — a strategic merge patch replacing spec.template, keys
 * sorted as Go marshals them, so `kubectl rollout undo` sees the bytes it would compute itself.
 */
export function revisionPatch(set: Readonly<StatefulSet>): unknown {
  return sortedKeys({ spec: { template: { ...asGoMarshals(set.spec?.template ?? {}), $patch: "replace" } } });
}

/**
 * The template as Go's encoding/json writes a typed PodTemplateSpec: the struct-valued fields that
 * omitempty cannot drop are always there (metadata.creationTimestamp: null, spec, each container's
 * resources: {}). Upstream's revision data carries them, and kubectl rebuilds the same patch from
 * the typed StatefulSet when it checks whether `rollout undo` has anything to do.
 */
function asGoMarshals(template: Readonly<PodTemplateSpec>): PodTemplateSpec {
  const t = deepCopy(template);
  t.metadata = { creationTimestamp: null, ...(t.metadata ?? {}) } as PodTemplateSpec["metadata"];
  t.spec ??= { containers: [] };
  t.spec.containers ??= [];
  for (const c of [...(t.spec.initContainers ?? []), ...t.spec.containers]) c.resources ??= {};
  return t;
}

/** newRevision: an unsaved revision of the set's template, carrying the set's annotations (kubernetes.io/change-cause). */
export function newRevision(set: Readonly<StatefulSet>, revision: number, collisionCount: number): ControllerRevision {
  const cr = newControllerRevision(set, StatefulSetGVK, set.spec?.template?.metadata?.labels, revisionPatch(set), revision, collisionCount);
  cr.metadata.annotations = { ...(set.metadata.annotations ?? {}) };
  return cr;
}

/** ApplyRevision: the set with the revision's template (the patch replaces spec.template). */
export function applyRevision(set: Readonly<StatefulSet>, revision: Readonly<ControllerRevision>): StatefulSet {
  const clone = deepCopy(set);
  const template = (revision.data as { spec?: { template?: Record<string, unknown> } } | undefined)?.spec?.template;
  if (template && typeof template === "object" && clone.spec) {
    const t = deepCopy(template);
    delete t.$patch;
    clone.spec.template = t as PodTemplateSpec;
  }
  return clone;
}

// ---------------------------------------------------------------------------------------------
// PVC retention: ownerReferences on claims

function matchesRef(ref: Readonly<OwnerReference>, obj: Readonly<KubeObject>, gvk: { apiVersion: string; kind: string }): boolean {
  return ref.apiVersion === gvk.apiVersion && ref.kind === gvk.kind && ref.name === obj.metadata.name;
}

function hasOwnerRef(target: Readonly<KubeObject>, owner: Readonly<KubeObject>): boolean {
  return (target.metadata.ownerReferences ?? []).some((r) => r.uid === owner.metadata.uid);
}

/** hasStaleOwnerRef: a reference to an object of this kind and name but another uid (a previous incarnation). */
export function hasStaleOwnerRef(target: Readonly<KubeObject>, obj: Readonly<KubeObject>, gvk: { apiVersion: string; kind: string }): boolean {
  return (target.metadata.ownerReferences ?? []).some((r) => matchesRef(r, obj, gvk) && r.uid !== obj.metadata.uid);
}

/** hasUnexpectedController: with a non-Retain policy, someone other than this set or pod controls the claim. */
function hasUnexpectedController(claim: Readonly<PersistentVolumeClaim>, set: Readonly<StatefulSet>, pod: Readonly<Pod>): boolean {
  const policy = retentionPolicy(set);
  if (policy.whenScaled === "Retain" && policy.whenDeleted === "Retain") return false;
  for (const ref of claim.metadata.ownerReferences ?? []) {
    if (matchesRef(ref, set, StatefulSetGVK)) {
      if (ref.uid !== set.metadata.uid) return true;
      continue;
    }
    if (matchesRef(ref, pod, PodGVK)) {
      if (ref.uid !== pod.metadata.uid) return true;
      continue;
    }
    if (ref.controller === true) return true;
  }
  return false;
}

function hasNonControllerOwner(claim: Readonly<PersistentVolumeClaim>, set: Readonly<StatefulSet>, pod: Readonly<Pod>): boolean {
  return (claim.metadata.ownerReferences ?? []).some((r) => (r.uid === set.metadata.uid || r.uid === pod.metadata.uid) && r.controller !== true);
}

/**
 * isClaimOwnerUpToDate: the claim's ownerReferences implement the policy —
 * Retain/Retain: none; whenDeleted Delete: the set while the pod is in range; whenScaled Delete:
 * the pod once it is scaled out of range. Stale or foreign controllers are left alone.
 */
export function isClaimOwnerUpToDate(claim: Readonly<PersistentVolumeClaim>, set: Readonly<StatefulSet>, pod: Readonly<Pod>): boolean {
  if (hasStaleOwnerRef(claim, set, StatefulSetGVK) || hasStaleOwnerRef(claim, pod, PodGVK)) return true;
  if (hasUnexpectedController(claim, set, pod)) return !(hasOwnerRef(claim, set) || hasOwnerRef(claim, pod));
  if (hasNonControllerOwner(claim, set, pod)) return false;
  const policy = retentionPolicy(set);
  const scaledDown = !podInOrdinalRange(pod, set);
  if (policy.whenScaled === "Delete" && policy.whenDeleted === "Delete") {
    return scaledDown !== hasOwnerRef(claim, set) && scaledDown === hasOwnerRef(claim, pod);
  }
  if (policy.whenScaled === "Delete") return !hasOwnerRef(claim, set) && scaledDown === hasOwnerRef(claim, pod);
  if (policy.whenDeleted === "Delete") return hasOwnerRef(claim, set) && !hasOwnerRef(claim, pod);
  return !hasOwnerRef(claim, set) && !hasOwnerRef(claim, pod);
}

/** updateClaimOwnerRefForSetAndPod: rewrites the set's and pod's references on the claim to match the policy. */
export function updateClaimOwnerRefs(claim: PersistentVolumeClaim, set: Readonly<StatefulSet>, pod: Readonly<Pod>): void {
  const unexpected = hasUnexpectedController(claim, set, pod);
  let refs = (claim.metadata.ownerReferences ?? []).filter((r) => !matchesRef(r, set, StatefulSetGVK) && !matchesRef(r, pod, PodGVK));
  if (!unexpected) {
    const add = (owner: Readonly<KubeObject>, gvk: { apiVersion: string; kind: string }) => {
      if (!refs.some((r) => r.uid === owner.metadata.uid)) refs = [...refs, newControllerRef(owner, gvk)];
    };
    const policy = retentionPolicy(set);
    const scaledDown = !podInOrdinalRange(pod, set);
    if (policy.whenScaled === "Delete" && scaledDown) add(pod, PodGVK);
    // Retain on scale-down, Delete with the set: the set owns the claim whatever the ordinal.
    if (policy.whenDeleted === "Delete" && (policy.whenScaled !== "Delete" || !scaledDown)) add(set, StatefulSetGVK);
  }
  claim.metadata.ownerReferences = refs.length > 0 ? refs : undefined;
}
