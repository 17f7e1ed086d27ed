// The ReplicaSet controller: keeps spec.replicas active pods matching the selector, adopting
// orphans and releasing strays, creating in slow-start batches and deleting the least valuable
// pods first, guarded by expectations so a stale cache never double-creates.

import { labelSelectorAsSelector, selectorFromSet, type Pod, type ReplicaSet, type ReplicaSetCondition, type ReplicaSetStatus, type Selector } from "../../api/index.ts";
import { isConflict, isNotFound, TerminalError } from "../../client/errors.ts";
import type { Client, Clock, EventRecorder, Lister, ObjectKey, ReconcileContext, Reconciler, ResourceClient, Result } from "../../client/types.ts";
import type { Expectations } from "../expectations.ts";
import {
  ControllerRefManager,
  deepCopy,
  errorMessage,
  getControllerOf,
  isPodActive,
  isPodAvailable,
  isPodReady,
  keyOf,
  newControllerRef,
  PodControl,
  podsToDelete,
  recheckController,
  rfc3339,
  slowStartBatch,
} from "../podcontrol.ts";

export const ReplicaSetGVK = { apiVersion: "apps/v1", kind: "ReplicaSet" } as const;
/** controller.SlowStartInitialBatchSize */
export const SlowStartInitialBatchSize = 1;
/** Upstream's default: at most this many creates or deletes per reconcile. */
export const BurstReplicas = 500;

export interface ReplicaSetControllerDeps {
  client: Client;
  pods: Lister<Pod>;
  replicaSets: Lister<ReplicaSet>;
  expectations: Expectations;
  recorder: EventRecorder;
  clock?: Pick<Clock, "now">;
  burstReplicas?: number;
}

export class ReplicaSetController implements Reconciler {
  private readonly rsClient: ResourceClient<ReplicaSet>;
  private readonly podControl: PodControl;
  private readonly clock: Pick<Clock, "now">;
  private readonly burstReplicas: number;

  constructor(private readonly deps: ReplicaSetControllerDeps) {
    this.rsClient = deps.client.resource<ReplicaSet>("apps", "replicasets");
    this.podControl = new PodControl(deps.client, deps.recorder);
    this.clock = deps.clock ?? { now: () => Date.now() };
    this.burstReplicas = deps.burstReplicas ?? BurstReplicas;
  }

  async reconcile(ctx: ReconcileContext, key: ObjectKey): Promise<Result> {
    const { replicaSets, pods, expectations } = this.deps;
    const rs = replicaSets.get(key);
    if (!rs) {
      // Deleted: its pods are the garbage collector's business; forget what we were waiting for.
      expectations.delete(key);
      return {};
    }
    // Read before listing pods: an observation arriving in between makes us wait one more round, never act twice.
    const needsSync = expectations.satisfied(key);
    let selector: Selector;
    try {
      selector = labelSelectorAsSelector(rs.spec?.selector);
    } catch (e) {
      throw new TerminalError(`invalid selector on ReplicaSet ${key}: ${errorMessage(e)}`, { cause: e });
    }
    const active = pods.listNamespace(rs.metadata.namespace ?? "").filter(isPodActive);
    const owned = await this.claimPods(rs, selector, active);

    let manageErr: unknown;
    if (needsSync && !rs.metadata.deletionTimestamp) {
      try {
        await this.manageReplicas(ctx, key, rs, owned);
      } catch (e) {
        manageErr = e;
      }
    }

    const status = calculateStatus(rs, owned, manageErr, this.clock.now());
    const updated = await this.updateStatus(rs, status);
    if (manageErr !== undefined) throw manageErr;

    const minReady = updated.spec?.minReadySeconds ?? 0;
    const want = updated.spec?.replicas ?? 1;
    if (minReady > 0 && updated.status?.readyReplicas === want && updated.status?.availableReplicas !== want) {
      // Ready pods become available after minReadySeconds without any event to wake us.
      return { requeueAfterMs: minReady * 1000 };
    }
    return {};
  }

  /** Adopts matching orphans, releases owned pods that stopped matching; returns the pods this RS owns. */
  private claimPods(rs: Readonly<ReplicaSet>, selector: Selector, pods: readonly Readonly<Pod>[]): Promise<Readonly<Pod>[]> {
    const m = new ControllerRefManager<Pod>({
      controller: rs,
      gvk: ReplicaSetGVK,
      selector,
      children: this.deps.client.resource<Pod>("", "pods"),
      canAdopt: () => recheckController(this.rsClient, rs),
    });
    return m.claim(pods);
  }

  private async manageReplicas(ctx: ReconcileContext, key: ObjectKey, rs: Readonly<ReplicaSet>, owned: readonly Readonly<Pod>[]): Promise<void> {
    const { expectations } = this.deps;
    const ns = rs.metadata.namespace ?? "";
    let diff = owned.length - (rs.spec?.replicas ?? 1);
    if (diff < 0) {
      const n = Math.min(-diff, this.burstReplicas);
      const template = rs.spec?.template ?? {};
      const ref = newControllerRef(rs, ReplicaSetGVK);
      // Expect before creating: the informer may deliver a created pod before create() resolves.
      expectations.expectCreations(key, n);
      ctx.log.debug({ replicaSet: key, need: n }, "too few replicas, creating");
      const { successes, error } = await slowStartBatch(n, SlowStartInitialBatchSize, async () => {
        await this.podControl.createPod(ns, template, rs, ref);
      });
      // Pods never created will never be observed: lower the expectations for them, and for the failed ones.
      for (let i = 0; i < n - successes; i++) expectations.creationObserved(key);
      if (error !== undefined) throw error;
      return;
    }
    if (diff > 0) {
      diff = Math.min(diff, this.burstReplicas);
      const victims = podsToDelete(owned, this.relatedPods(rs), diff);
      expectations.expectDeletions(key, victims.map((p) => p.metadata.uid ?? ""));
      ctx.log.debug({ replicaSet: key, surplus: diff }, "too many replicas, deleting");
      const results = await Promise.allSettled(
        victims.map(async (pod) => {
          try {
            await this.podControl.deletePod(ns, pod.metadata.name ?? "", rs);
          } catch (e) {
            // This deletion will never be observed.
            expectations.deletionObserved(key, pod.metadata.uid ?? "");
            if (!isNotFound(e)) throw e;
          }
        }),
      );
      const failed = results.find((r) => r.status === "rejected");
      if (failed) throw failed.reason;
    }
  }

  /**
   * getIndirectlyRelatedPods: active pods of every ReplicaSet sharing this one's controller (the
   * Deployment's other revisions), so scale-down prefers pods doubled up on a node across revisions.
   */
  private relatedPods(rs: Readonly<ReplicaSet>): Readonly<Pod>[] {
    const ns = rs.metadata.namespace ?? "";
    const owner = getControllerOf(rs);
    const siblings = owner
      ? this.deps.replicaSets.listNamespace(ns).filter((r) => getControllerOf(r)?.uid === owner.uid)
      : [rs];
    const uids = new Set(siblings.map((r) => r.metadata.uid));
    if (!uids.has(rs.metadata.uid)) uids.add(rs.metadata.uid);
    return this.deps.pods.listNamespace(ns).filter((p) => isPodActive(p) && uids.has(getControllerOf(p)?.uid));
  }

  /** Writes status when it changed (one retry with a fresh read on conflict); returns the RS as it now stands. */
  private async updateStatus(rs: Readonly<ReplicaSet>, status: ReplicaSetStatus): Promise<Readonly<ReplicaSet>> {
    const cur = rs.status;
    if (
      cur !== undefined &&
      cur.replicas === status.replicas &&
      (cur.fullyLabeledReplicas ?? 0) === status.fullyLabeledReplicas &&
      (cur.readyReplicas ?? 0) === status.readyReplicas &&
      (cur.availableReplicas ?? 0) === status.availableReplicas &&
      rs.metadata.generation === cur.observedGeneration &&
      sameConditions(cur.conditions, status.conditions)
    ) {
      return rs;
    }
    let obj = deepCopy(rs);
    for (let attempt = 0; ; attempt++) {
      obj.status = { ...status, observedGeneration: obj.metadata.generation };
      try {
        return await this.rsClient.updateStatus(obj);
      } catch (e) {
        if (attempt >= 1 || !isConflict(e)) throw e;
        obj = await this.rsClient.get(rs.metadata.namespace ?? "", rs.metadata.name ?? "");
      }
    }
  }
}

function sameConditions(a: ReplicaSetCondition[] | undefined, b: ReplicaSetCondition[] | undefined): boolean {
  return JSON.stringify(a ?? []) === JSON.stringify(b ?? []);
}

/** The status a ReplicaSet should have given the active pods it owns (replica_set_utils.calculateStatus). */
export function calculateStatus(rs: Readonly<ReplicaSet>, pods: readonly Readonly<Pod>[], manageErr: unknown, nowMs: number): ReplicaSetStatus {
  const templateLabels = selectorFromSet(rs.spec?.template?.metadata?.labels);
  const minReady = rs.spec?.minReadySeconds ?? 0;
  let fullyLabeled = 0;
  let ready = 0;
  let available = 0;
  for (const pod of pods) {
    if (templateLabels.matches(pod.metadata.labels)) fullyLabeled++;
    if (isPodReady(pod)) {
      ready++;
      if (isPodAvailable(pod, minReady, nowMs)) available++;
    }
  }
  let conditions = (rs.status?.conditions ?? []).map((c) => ({ ...c }));
  const failure = conditions.find((c) => c.type === "ReplicaFailure");
  if (manageErr !== undefined && !failure) {
    const diff = pods.length - (rs.spec?.replicas ?? 1);
    const reason = diff < 0 ? "FailedCreate" : diff > 0 ? "FailedDelete" : "";
    conditions.push({ type: "ReplicaFailure", status: "True", lastTransitionTime: rfc3339(nowMs), reason, message: errorMessage(manageErr) });
  } else if (manageErr === undefined && failure) {
    conditions = conditions.filter((c) => c.type !== "ReplicaFailure");
  }
  const status: ReplicaSetStatus = {
    replicas: pods.length,
    fullyLabeledReplicas: fullyLabeled,
    readyReplicas: ready,
    availableReplicas: available,
  };
  if (rs.status?.observedGeneration !== undefined) status.observedGeneration = rs.status.observedGeneration;
  if (conditions.length > 0) status.conditions = conditions;
  return status;
}

// ---------------------------------------------------------------------------------------------
// Event handlers: the harness wires these to the pod informer and adds the returned keys.

/**
 * Maps pod events to ReplicaSet keys and records expectation observations (replica_set.go
 * addPod/updatePod/deletePod). Every method returns the keys to enqueue.
 */
export class ReplicaSetPodHandlers {
  constructor(private readonly deps: { replicaSets: Lister<ReplicaSet>; expectations: Expectations }) {}

  /** The owning ReplicaSet's key, or — for an orphan — every ReplicaSet whose selector matches. */
  podEventKeys(pod: Readonly<Pod>): ObjectKey[] {
    const owner = this.resolveOwner(pod);
    if (owner) return [keyOf(owner)];
    if (getControllerOf(pod)) return [];
    return this.matchingReplicaSets(pod).map(keyOf);
  }

  onPodAdd(pod: Readonly<Pod>): ObjectKey[] {
    // A pod that arrives already being deleted (after a relist) counts as a deletion.
    if (pod.metadata.deletionTimestamp) return this.onPodDelete(pod);
    const owner = this.resolveOwner(pod);
    if (owner) {
      this.deps.expectations.creationObserved(keyOf(owner));
      return [keyOf(owner)];
    }
    if (getControllerOf(pod)) return [];
    return this.matchingReplicaSets(pod).map(keyOf);
  }

  onPodUpdate(oldPod: Readonly<Pod>, cur: Readonly<Pod>): ObjectKey[] {
    if (oldPod.metadata.resourceVersion === cur.metadata.resourceVersion) return [];
    const keys = new Set<ObjectKey>();
    if (cur.metadata.deletionTimestamp) {
      // Graceful deletion began: the pod is no longer active, so the RS can replace it now.
      for (const k of this.onPodDelete(cur)) keys.add(k);
      return [...keys];
    }
    const oldOwner = this.resolveOwner(oldPod);
    const curOwner = this.resolveOwner(cur);
    if (oldOwner && oldOwner.metadata.uid !== curOwner?.metadata.uid) keys.add(keyOf(oldOwner));
    if (curOwner) keys.add(keyOf(curOwner));
    else if (!getControllerOf(cur)) for (const rs of this.matchingReplicaSets(cur)) keys.add(keyOf(rs));
    return [...keys];
  }

  onPodDelete(pod: Readonly<Pod>): ObjectKey[] {
    const owner = this.resolveOwner(pod);
    if (!owner) return [];
    this.deps.expectations.deletionObserved(keyOf(owner), pod.metadata.uid ?? "");
    return [keyOf(owner)];
  }

  /** resolveControllerRef: the ReplicaSet named by the pod's controller reference, if it is the same object (uid). */
  private resolveOwner(pod: Readonly<Pod>): Readonly<ReplicaSet> | undefined {
    const ref = getControllerOf(pod);
    if (!ref || ref.kind !== ReplicaSetGVK.kind) return undefined;
    const rs = this.deps.replicaSets.get(`${pod.metadata.namespace ?? ""}/${ref.name}`);
    return rs && rs.metadata.uid === ref.uid ? rs : undefined;
  }

  private matchingReplicaSets(pod: Readonly<Pod>): Readonly<ReplicaSet>[] {
    return this.deps.replicaSets.listNamespace(pod.metadata.namespace ?? "").filter((rs) => {
      try {
        const sel = labelSelectorAsSelector(rs.spec?.selector);
        return !sel.empty() && sel.matches(pod.metadata.labels);
      } catch {
        return false;
      }
    });
  }
}
