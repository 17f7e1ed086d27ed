// What the DaemonSet controller decides per node and per pod (pkg/controller/daemon/util and the
// predicates of daemon_controller.go): which nodes should run the daemon pod, the template a daemon
// pod is created from (automatic tolerations, revision labels, node affinity to its one node), and
// which pods are up to date.

import {
  DaemonSetTemplateGenerationAnnotation,
  DaemonSetTemplateGenerationKey,
  DefaultDaemonSetUniqueLabelKey,
  findMatchingUntoleratedTaint,
  scaledValue,
  type Affinity,
  type DaemonSet,
  type Node,
  type Pod,
  type PodSpec,
  type PodTemplateSpec,
  type Toleration,
} from "../../api/index.ts";
import { getRequiredNodeAffinity, OBJECT_NAME_FIELD } from "../../scheduler/plugins/nodeaffinity/index.ts";
import { deepCopy, parseTime } from "../podcontrol.ts";

// Well-known taints (k8s.io/api/core/v1 well_known_taints.go).
export const TaintNodeNotReady = "node.kubernetes.io/not-ready";
export const TaintNodeUnreachable = "node.kubernetes.io/unreachable";
export const TaintNodeUnschedulable = "node.kubernetes.io/unschedulable";
export const TaintNodeMemoryPressure = "node.kubernetes.io/memory-pressure";
export const TaintNodeDiskPressure = "node.kubernetes.io/disk-pressure";
export const TaintNodeNetworkUnavailable = "node.kubernetes.io/network-unavailable";
export const TaintNodePIDPressure = "node.kubernetes.io/pid-pressure";

/** Toleration.MatchToleration: same key, operator, value and effect. */
function matchToleration(a: Readonly<Toleration>, b: Readonly<Toleration>): boolean {
  return (a.key ?? "") === (b.key ?? "") && (a.operator ?? "") === (b.operator ?? "") && (a.value ?? "") === (b.value ?? "") && (a.effect ?? "") === (b.effect ?? "");
}

/** v1helper.AddOrUpdateTolerationInPodSpec: replaces a matching toleration (e.g. one with tolerationSeconds) or appends. */
function addOrUpdateToleration(spec: PodSpec, toleration: Toleration): void {
  const out: Toleration[] = [];
  let updated = false;
  for (const t of spec.tolerations ?? []) {
    if (matchToleration(toleration, t)) {
      out.push({ ...toleration });
      updated = true;
    } else {
      out.push(t);
    }
  }
  if (!updated) out.push({ ...toleration });
  spec.tolerations = out;
}

/**
 * util.AddOrUpdateDaemonPodTolerations: daemon pods tolerate not-ready and unreachable (NoExecute,
 * forever, so node problems never evict them), the node-condition taints and unschedulable
 * (NoSchedule), and network-unavailable when they use the host's network.
 */
export function addOrUpdateDaemonPodTolerations(spec: PodSpec): void {
  addOrUpdateToleration(spec, { key: TaintNodeNotReady, operator: "Exists", effect: "NoExecute" });
  addOrUpdateToleration(spec, { key: TaintNodeUnreachable, operator: "Exists", effect: "NoExecute" });
  addOrUpdateToleration(spec, { key: TaintNodeDiskPressure, operator: "Exists", effect: "NoSchedule" });
  addOrUpdateToleration(spec, { key: TaintNodeMemoryPressure, operator: "Exists", effect: "NoSchedule" });
  addOrUpdateToleration(spec, { key: TaintNodePIDPressure, operator: "Exists", effect: "NoSchedule" });
  addOrUpdateToleration(spec, { key: TaintNodeUnschedulable, operator: "Exists", effect: "NoSchedule" });
  if (spec.hostNetwork) addOrUpdateToleration(spec, { key: TaintNodeNetworkUnavailable, operator: "Exists", effect: "NoSchedule" });
}

/** The DaemonSet's template generation (the apiserver's deprecated.daemonset.template.generation), if readable. */
export function getTemplateGeneration(ds: Readonly<DaemonSet>): number | undefined {
  const v = ds.metadata.annotations?.[DaemonSetTemplateGenerationAnnotation];
  if (v === undefined || !/^-?\d+$/.test(v)) return undefined;
  return Number.parseInt(v, 10);
}

/** util.CreatePodTemplate: the template plus the daemon tolerations, pod-template-generation and controller-revision-hash labels. */
export function createPodTemplate(template: Readonly<PodTemplateSpec>, generation: number | undefined, hash: string): PodTemplateSpec {
  const t = deepCopy(template);
  t.spec ??= { containers: [] };
  addOrUpdateDaemonPodTolerations(t.spec);
  t.metadata ??= {};
  const labels = { ...(t.metadata.labels ?? {}) };
  if (generation !== undefined) labels[DaemonSetTemplateGenerationKey] = String(generation);
  if (hash) labels[DefaultDaemonSetUniqueLabelKey] = hash;
  t.metadata.labels = labels;
  return t;
}

/**
 * util.ReplaceDaemonSetPodNodeNameNodeAffinity: the required node affinity becomes the single term
 * `metadata.name In [nodeName]` (matchFields), so the default scheduler binds the pod to that node.
 * Safe because NodeShouldRunDaemonPod already checked the template's own required terms against it.
 */
export function replaceDaemonSetPodNodeNameNodeAffinity(affinity: Affinity | undefined, nodeName: string): Affinity {
  const term = { matchFields: [{ key: OBJECT_NAME_FIELD, operator: "In" as const, values: [nodeName] }] };
  const a: Affinity = affinity ? deepCopy(affinity) : {};
  a.nodeAffinity ??= {};
  a.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution = { nodeSelectorTerms: [term] };
  return a;
}

/**
 * util.GetTargetNodeName: the node a daemon pod is bound to, or for an unscheduled pod the node its
 * `metadata.name In [node]` affinity names. Undefined when the pod names no single node.
 */
export function getTargetNodeName(pod: Readonly<Pod>): string | undefined {
  if (pod.spec?.nodeName) return pod.spec.nodeName;
  const terms = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
  for (const term of terms) {
    for (const r of term.matchFields ?? []) {
      if (r.key === OBJECT_NAME_FIELD && r.operator === "In") return r.values?.length === 1 ? r.values[0] : undefined;
    }
  }
  return undefined;
}

/** The pod the DaemonSet would run on `node` (NewPod): its template with the daemon tolerations, bound there. */
function newPod(ds: Readonly<DaemonSet>, nodeName: string): Pod {
  const t = ds.spec?.template;
  const spec = deepCopy(t?.spec ?? { containers: [] });
  spec.nodeName = nodeName;
  addOrUpdateDaemonPodTolerations(spec);
  return { apiVersion: "v1", kind: "Pod", metadata: { ...(t?.metadata ?? {}), namespace: ds.metadata.namespace }, spec };
}

/**
 * NodeShouldRunDaemonPod: `shouldRun` — the node passes the template's nodeName, nodeSelector and
 * required node affinity and has no NoSchedule/NoExecute taint the daemon pod does not tolerate;
 * `shouldContinueRunning` — a pod already there may stay (only an untolerated NoExecute taint, or a
 * selector/affinity mismatch, evicts it). Unschedulable (cordoned) nodes keep their daemon pods:
 * daemon pods tolerate node.kubernetes.io/unschedulable.
 */
export function nodeShouldRunDaemonPod(node: Readonly<Node>, ds: Readonly<DaemonSet>): { shouldRun: boolean; shouldContinueRunning: boolean } {
  const name = node.metadata.name ?? "";
  const templateNode = ds.spec?.template?.spec?.nodeName;
  if (templateNode && templateNode !== name) return { shouldRun: false, shouldContinueRunning: false };
  const pod = newPod(ds, name);
  if (!getRequiredNodeAffinity(pod).match(node)) return { shouldRun: false, shouldContinueRunning: false };
  const taints = node.spec?.taints;
  const tolerations = pod.spec?.tolerations;
  const fitsTaints = !findMatchingUntoleratedTaint(taints, tolerations, (t) => t.effect === "NoSchedule" || t.effect === "NoExecute");
  if (!fitsTaints) {
    const untoleratedNoExecute = findMatchingUntoleratedTaint(taints, tolerations, (t) => t.effect === "NoExecute");
    return { shouldRun: false, shouldContinueRunning: !untoleratedNoExecute };
  }
  return { shouldRun: true, shouldContinueRunning: true };
}

/** util.IsPodUpdated: the pod carries the current revision's hash, or the current template generation. */
export function isPodUpdated(pod: Readonly<Pod>, hash: string, generation: number | undefined): boolean {
  const labels = pod.metadata.labels ?? {};
  const templateMatches = generation !== undefined && labels[DaemonSetTemplateGenerationKey] === String(generation);
  const hashMatches = hash.length > 0 && labels[DefaultDaemonSetUniqueLabelKey] === hash;
  return hashMatches || templateMatches;
}

/** util.AllowsSurge: a RollingUpdate whose maxSurge is non-zero. */
export function allowsSurge(ds: Readonly<DaemonSet>): boolean {
  const ru = ds.spec?.updateStrategy?.rollingUpdate;
  if (ds.spec?.updateStrategy?.type !== "RollingUpdate" || ru?.maxSurge === undefined) return false;
  try {
    return scaledValue(ru.maxSurge, 100, true) !== 0;
  } catch {
    return false;
  }
}

/** util.SurgeCount / UnavailableCount: maxSurge or maxUnavailable of `numberToSchedule`, percentages rounded up; 0 unless RollingUpdate. */
export function rollingUpdateCount(ds: Readonly<DaemonSet>, field: "maxSurge" | "maxUnavailable", numberToSchedule: number): number {
  if (ds.spec?.updateStrategy?.type !== "RollingUpdate") return 0;
  const v = ds.spec.updateStrategy.rollingUpdate?.[field];
  if (v === undefined || v === null) return 0;
  return scaledValue(v, numberToSchedule, true);
}

const scheduledRank = (p: Readonly<Pod>): number => (p.spec?.nodeName ? 0 : 1);

/** podByCreationTimestampAndPhase: scheduled pods first, then the oldest first (ties by name), so index 0 is the pod a node keeps. */
export function byCreationTimestampAndPhase(a: Readonly<Pod>, b: Readonly<Pod>): number {
  const ra = scheduledRank(a);
  const rb = scheduledRank(b);
  if (ra !== rb) return ra - rb;
  const ta = parseTime(a.metadata.creationTimestamp);
  const tb = parseTime(b.metadata.creationTimestamp);
  if (ta !== tb) return ta - tb;
  const na = a.metadata.name ?? "";
  const nb = b.metadata.name ?? "";
  return na < nb ? -1 : na > nb ? 1 : 0;
}
