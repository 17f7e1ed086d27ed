// Helpers shared by the workload controllers: pods from templates, pod readiness and ranking, owner
// references, and the ControllerRefManager that adopts orphans and releases children by PATCH.

import type { KubeObject, OwnerReference, Pod, PodTemplateSpec, Selector } from "../api/index.ts";
import { isInvalid, isNotFound } from "../client/errors.ts";
import type { Client, EventRecorder, ResourceClient } from "../client/types.ts";

// ---------------------------------------------------------------------------------------------
// Keys, time and copies

/** "namespace/name" (client-go's MetaNamespaceKeyFunc). */
export function keyOf(obj: Readonly<KubeObject>): string {
  const ns = obj.metadata.namespace;
  return ns ? `${ns}/${obj.metadata.name ?? ""}` : (obj.metadata.name ?? "");
}

/** RFC 3339 with second precision, as metav1.Time marshals. */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Milliseconds of an RFC 3339 timestamp; 0 ("zero time") when absent or unparsable. */
export function parseTime(t: string | undefined | null): number {
  if (!t) return 0;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? 0 : ms;
}

/** A deep, mutable copy of a cached object (cached objects are read-only). */
export function deepCopy<T>(obj: Readonly<T>): T {
  return structuredClone(obj) as T;
}

// ---------------------------------------------------------------------------------------------
// Pods

/** Not finished and not being deleted (controller.IsPodActive). */
export function isPodActive(pod: Readonly<Pod>): boolean {
  const phase = pod.status?.phase;
  return phase !== "Succeeded" && phase !== "Failed" && !pod.metadata.deletionTimestamp;
}

function readyCondition(pod: Readonly<Pod>) {
  return pod.status?.conditions?.find((c) => c.type === "Ready");
}

/** The pod's Ready condition is True (podutil.IsPodReady). */
export function isPodReady(pod: Readonly<Pod>): boolean {
  return readyCondition(pod)?.status === "True";
}

/** Ready for at least minReadySeconds at `nowMs` (podutil.IsPodAvailable). */
export function isPodAvailable(pod: Readonly<Pod>, minReadySeconds: number, nowMs: number): boolean {
  const c = readyCondition(pod);
  if (c?.status !== "True") return false;
  if (!minReadySeconds) return true;
  const since = parseTime(c.lastTransitionTime);
  return since !== 0 && since + minReadySeconds * 1000 < nowMs;
}

/** Annotation ranking pods for scale-down: lower cost is deleted first. */
export const PodDeletionCostAnnotation = "controller.kubernetes.io/pod-deletion-cost";

const phaseOrdinal: Record<string, number> = { Pending: 0, Unknown: 1, Running: 2 };

function deletionCost(pod: Readonly<Pod>): number {
  const v = pod.metadata.annotations?.[PodDeletionCostAnnotation];
  if (v === undefined || !/^-?\d+$/.test(v)) return 0;
  return Number.parseInt(v, 10);
}

function maxRestarts(pod: Readonly<Pod>): number {
  let max = 0;
  for (const s of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    max = Math.max(max, s.restartCount ?? 0);
  }
  return max;
}

/** afterOrZero: a zero time sorts first, otherwise the later time first. Returns <0 when `a` goes first. */
function newerFirst(a: number, b: number): number {
  if (a === b) return 0;
  if (a === 0 || b === 0) return a === 0 ? -1 : 1;
  return a > b ? -1 : 1;
}

/** A pod with its rank: how many related active pods share its node (doubled-up pods go first). */
export interface RankedPod {
  pod: Readonly<Pod>;
  rank: number;
}

/**
 * controller.ActivePodsWithRanks: orders pods so the ones to delete come first —
 * unassigned < assigned; Pending < Unknown < Running; not ready < ready; lower deletion cost first;
 * more pods on the same node first; ready for less time first; more restarts first; newer first.
 */
export function activePodsRank(a: RankedPod, b: RankedPod): number {
  const pa = a.pod;
  const pb = b.pod;
  const na = pa.spec?.nodeName ?? "";
  const nb = pb.spec?.nodeName ?? "";
  if (na !== nb && (na === "" || nb === "")) return na === "" ? -1 : 1;
  const oa = phaseOrdinal[pa.status?.phase ?? ""] ?? 0;
  const ob = phaseOrdinal[pb.status?.phase ?? ""] ?? 0;
  if (oa !== ob) return oa - ob;
  const ra = isPodReady(pa);
  const rb = isPodReady(pb);
  if (ra !== rb) return ra ? 1 : -1;
  const ca = deletionCost(pa);
  const cb = deletionCost(pb);
  if (ca !== cb) return ca - cb;
  if (a.rank !== b.rank) return b.rank - a.rank;
  if (ra && rb) {
    const c = newerFirst(parseTime(readyCondition(pa)?.lastTransitionTime), parseTime(readyCondition(pb)?.lastTransitionTime));
    if (c !== 0) return c;
  }
  const xa = maxRestarts(pa);
  const xb = maxRestarts(pb);
  if (xa !== xb) return xb - xa;
  return newerFirst(parseTime(pa.metadata.creationTimestamp), parseTime(pb.metadata.creationTimestamp));
}

/**
 * Ranks `pods` by how many of `related` (active pods of the same workload, including `pods`) run
 * on the same node, then returns the first `n` in deletion order (getPodsToDelete).
 */
export function podsToDelete(pods: readonly Readonly<Pod>[], related: readonly Readonly<Pod>[], n: number): Readonly<Pod>[] {
  if (n >= pods.length) return [...pods];
  const perNode = new Map<string, number>();
  for (const p of related) {
    const node = p.spec?.nodeName;
    if (node && isPodActive(p)) perNode.set(node, (perNode.get(node) ?? 0) + 1);
  }
  const ranked = pods.map((pod) => ({ pod, rank: pod.spec?.nodeName ? (perNode.get(pod.spec.nodeName) ?? 0) : 0 }));
  // Array.prototype.sort is stable, as sort.Sort is not — ties keep lister order.
  ranked.sort(activePodsRank);
  return ranked.slice(0, n).map((r) => r.pod);
}

// ---------------------------------------------------------------------------------------------
// Owner references

/** The owner reference with controller: true, if any (metav1.GetControllerOf). */
export function getControllerOf(obj: Readonly<KubeObject>): Readonly<OwnerReference> | undefined {
  return obj.metadata.ownerReferences?.find((r) => r.controller === true);
}

/** metav1.NewControllerRef: the reference a controller puts on the objects it creates. */
export function newControllerRef(owner: Readonly<KubeObject>, gvk: { apiVersion: string; kind: string }): OwnerReference {
  return {
    apiVersion: gvk.apiVersion,
    kind: gvk.kind,
    name: owner.metadata.name ?? "",
    uid: owner.metadata.uid ?? "",
    controller: true,
    blockOwnerDeletion: true,
  };
}

/**
 * controller.GetPodFromTemplate: a pod to create for `parent` — the template's labels,
 * annotations, finalizers and spec, generateName `<parent>-`, and the controller reference.
 */
export function getPodFromTemplate(
  template: Readonly<PodTemplateSpec>,
  parent: Readonly<KubeObject>,
  controllerRef?: OwnerReference,
): Pod {
  const t = deepCopy(template);
  const metadata: Pod["metadata"] = {
    generateName: `${parent.metadata.name ?? ""}-`,
    labels: { ...(t.metadata?.labels ?? {}) },
  };
  if (t.metadata?.annotations) metadata.annotations = { ...t.metadata.annotations };
  if (t.metadata?.finalizers?.length) metadata.finalizers = [...t.metadata.finalizers];
  if (controllerRef) metadata.ownerReferences = [{ ...controllerRef }];
  const pod: Pod = { apiVersion: "v1", kind: "Pod", metadata };
  if (t.spec) pod.spec = t.spec;
  return pod;
}

/** PodControl: creates and deletes pods on behalf of a controller, recording the upstream events. */
export class PodControl {
  private readonly pods: ResourceClient<Pod>;
  constructor(
    client: Client,
    private readonly recorder: EventRecorder,
  ) {
    this.pods = client.resource<Pod>("", "pods");
  }

  /** Creates one pod from the template; records SuccessfulCreate or FailedCreate on the parent. */
  async createPod(namespace: string, template: Readonly<PodTemplateSpec>, parent: Readonly<KubeObject>, controllerRef: OwnerReference): Promise<Pod> {
    const pod = getPodFromTemplate(template, parent, controllerRef);
    pod.metadata.namespace = namespace;
    if (Object.keys(pod.metadata.labels ?? {}).length === 0) {
      throw new Error("unable to create pods, no labels");
    }
    let created: Pod;
    try {
      created = await this.pods.create(namespace, pod);
    } catch (e) {
      this.recorder.event(parent, "Warning", "FailedCreate", `Error creating: ${errorMessage(e)}`);
      throw e;
    }
    this.recorder.event(parent, "Normal", "SuccessfulCreate", `Created pod: ${created?.metadata?.name ?? pod.metadata.generateName ?? ""}`);
    return created;
  }

  /** Deletes a pod; records SuccessfulDelete or FailedDelete (not on NotFound: someone else won). */
  async deletePod(namespace: string, name: string, parent: Readonly<KubeObject>): Promise<void> {
    try {
      await this.pods.delete(namespace, name);
    } catch (e) {
      if (!isNotFound(e)) this.recorder.event(parent, "Warning", "FailedDelete", `Error deleting: ${errorMessage(e)}`);
      throw e;
    }
    this.recorder.event(parent, "Normal", "SuccessfulDelete", `Deleted pod: ${name}`);
  }
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

// ---------------------------------------------------------------------------------------------
// Adoption and release

/** The merge patch that makes `owner` the controller of `obj`; metadata.uid makes it fail on a recreated object. */
export function adoptPatch(obj: Readonly<KubeObject>, ref: OwnerReference): unknown {
  const others = (obj.metadata.ownerReferences ?? []).filter((r) => r.uid !== ref.uid);
  return { metadata: { ownerReferences: [...others, ref], uid: obj.metadata.uid } };
}

/** The merge patch that drops `ownerUID` from obj's ownerReferences (metadata.uid as precondition). */
export function releasePatch(obj: Readonly<KubeObject>, ownerUID: string): unknown {
  const rest = (obj.metadata.ownerReferences ?? []).filter((r) => r.uid !== ownerUID);
  return { metadata: { ownerReferences: rest.length > 0 ? rest : null, uid: obj.metadata.uid } };
}

/**
 * controller.ControllerRefManager: decides which of `objects` a controller owns. Owned objects
 * that still match are kept; owned ones that no longer match are released; orphans that match are
 * adopted (after `canAdopt`, a fresh read proving the controller still exists and is not being
 * deleted). Objects owned by another controller are ignored. Errors are collected: every object is
 * tried, then the first error is thrown, so one failing patch does not stall the rest.
 */
export class ControllerRefManager<T extends KubeObject> {
  private adoptCheck: Promise<void> | undefined;
  constructor(
    private readonly opts: {
      controller: Readonly<KubeObject>;
      gvk: { apiVersion: string; kind: string };
      selector: Selector;
      /** Where the children live (pods, replicasets). */
      children: ResourceClient<T>;
      canAdopt: () => Promise<void>;
    },
  ) {}

  async claim(objects: readonly Readonly<T>[]): Promise<Readonly<T>[]> {
    const claimed: Readonly<T>[] = [];
    const errors: unknown[] = [];
    for (const obj of objects) {
      try {
        if (await this.claimObject(obj)) claimed.push(obj);
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length > 0) throw errors[0];
    return claimed;
  }

  private async claimObject(obj: Readonly<T>): Promise<boolean> {
    const { controller, selector } = this.opts;
    const ref = getControllerOf(obj);
    const matches = selector.matches(obj.metadata.labels);
    if (ref) {
      if (ref.uid !== controller.metadata.uid) return false;
      if (matches) return true;
      if (controller.metadata.deletionTimestamp) return false;
      await this.release(obj);
      return false;
    }
    if (controller.metadata.deletionTimestamp || !matches) return false;
    if (obj.metadata.deletionTimestamp) return false;
    if (controller.metadata.namespace && controller.metadata.namespace !== obj.metadata.namespace) return false;
    try {
      await this.adopt(obj);
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
    return true;
  }

  private async adopt(obj: Readonly<T>): Promise<void> {
    this.adoptCheck ??= this.opts.canAdopt();
    await this.adoptCheck;
    const ref = newControllerRef(this.opts.controller, this.opts.gvk);
    await this.opts.children.patch(obj.metadata.namespace ?? "", obj.metadata.name ?? "", "merge", adoptPatch(obj, ref));
  }

  private async release(obj: Readonly<T>): Promise<void> {
    try {
      await this.opts.children.patch(obj.metadata.namespace ?? "", obj.metadata.name ?? "", "merge", releasePatch(obj, this.opts.controller.metadata.uid ?? ""));
    } catch (e) {
      // Gone, or recreated under another uid (the uid precondition failed): nothing left to release.
      if (isNotFound(e) || isInvalid(e)) return;
      throw e;
    }
  }
}

/**
 * controller.RecheckDeletionTimestamp: before adopting, re-read the controller from the apiserver
 * (not the cache) and refuse if it was deleted, recreated or is being deleted.
 */
export async function recheckController(resource: ResourceClient, controller: Readonly<KubeObject>): Promise<void> {
  const fresh = await resource.get(controller.metadata.namespace ?? "", controller.metadata.name ?? "");
  if (fresh.metadata.uid !== controller.metadata.uid) {
    throw new Error(`original ${keyOf(controller)} is gone: got uid ${fresh.metadata.uid}, wanted ${controller.metadata.uid}`);
  }
  if (fresh.metadata.deletionTimestamp) {
    throw new Error(`${keyOf(controller)} has just been deleted at ${fresh.metadata.deletionTimestamp}`);
  }
}

/** controller.SlowStartBatch: runs fn count times in batches of 1, 2, 4, …; stops after the first batch with an error. */
export async function slowStartBatch(count: number, initialBatchSize: number, fn: () => Promise<void>): Promise<{ successes: number; error?: unknown }> {
  let remaining = count;
  let successes = 0;
  for (let batch = Math.min(remaining, initialBatchSize); batch > 0; batch = Math.min(2 * batch, remaining)) {
    const results = await Promise.allSettled(Array.from({ length: batch }, () => fn()));
    let error: unknown;
    for (const r of results) {
      if (r.status === "fulfilled") successes++;
      else error ??= r.reason;
    }
    if (error !== undefined) return { successes, error };
    remaining -= batch;
  }
  return { successes };
}
