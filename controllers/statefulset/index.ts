// The StatefulSet controller (upstream's stateful_set.go + stateful_set_control.go +
// stateful_pod_control.go): pods with stable names `<set>-<ordinal>`, created in order and removed
// in reverse order one at a time (OrderedReady) or all at once (Parallel); one PVC per claim
// template per ordinal, with ownerReferences implementing persistentVolumeClaimRetentionPolicy;
// updates by ControllerRevision — RollingUpdate (highest ordinal first, down to the partition, at
// most maxUnavailable at a time) or OnDelete; history trimmed to revisionHistoryLimit.

import { labelSelectorAsSelector, type ControllerRevision, type PersistentVolumeClaim, type Pod, type Selector, type StatefulSet, type StatefulSetStatus } from "../../api/index.ts";
import { isAlreadyExists, isConflict, isNotFound } from "../../client/errors.ts";
import type { Client, Clock, EventRecorder, Lister, ObjectKey, ReconcileContext, Reconciler, ResourceClient, Result } from "../../client/types.ts";
import { equalRevision, findEqualRevisions, History, nextRevision, sortControllerRevisions } from "../history/index.ts";
import { ControllerRefManager, deepCopy, errorMessage, getControllerOf, keyOf, recheckController, releasePatch } from "../podcontrol.ts";
import {
  allowsBurst,
  applyRevision,
  claimsFor,
  endOrdinal,
  getOrdinal,
  getPodRevision,
  hasStaleOwnerRef,
  identityMatches,
  isClaimOwnerUpToDate,
  isCreated,
  isFailed,
  isHealthy,
  isMemberOf,
  isPending,
  isRunningAndAvailable,
  isRunningAndReady,
  isSucceeded,
  isTerminating,
  maxUnavailable,
  newRevision,
  newVersionedStatefulSetPod,
  PodGVK,
  podInOrdinalRange,
  replicasOf,
  retentionPolicy,
  startOrdinal,
  StatefulSetGVK,
  storageMatches,
  updateClaimOwnerRefs,
  updateIdentity,
  updateStorage,
} from "./util.ts";

export { StatefulSetGVK } from "./util.ts";
/** controller.SlowStartInitialBatchSize, and the statefulset controller's MaxBatchSize. */
const SlowStartInitialBatchSize = 1;
const MaxBatchSize = 500;

export interface StatefulSetControllerDeps {
  client: Client;
  sets: Lister<StatefulSet>;
  pods: Lister<Pod>;
  revisions: Lister<ControllerRevision>;
  claims: Lister<PersistentVolumeClaim>;
  recorder: EventRecorder;
  clock?: Pick<Clock, "now">;
}

/** What one pass over the replicas decided: stop here (waiting, or after a monotonic create) or go on. */
type Step = boolean;

export class StatefulSetController implements Reconciler {
  private readonly setClient: ResourceClient<StatefulSet>;
  private readonly podClient: ResourceClient<Pod>;
  private readonly claimClient: ResourceClient<PersistentVolumeClaim>;
  private readonly history: History;
  private readonly clock: Pick<Clock, "now">;

  constructor(private readonly deps: StatefulSetControllerDeps) {
    this.setClient = deps.client.resource<StatefulSet>("apps", "statefulsets");
    this.podClient = deps.client.resource<Pod>("", "pods");
    this.claimClient = deps.client.resource<PersistentVolumeClaim>("", "persistentvolumeclaims");
    this.history = new History(deps.client, deps.revisions);
    this.clock = deps.clock ?? { now: () => Date.now() };
  }

  async reconcile(ctx: ReconcileContext, key: ObjectKey): Promise<Result> {
    const cached = this.deps.sets.get(key);
    if (!cached) return {}; // deleted: pods, claims and revisions are the garbage collector's
    const set = deepCopy(cached);
    let selector: Selector;
    try {
      selector = labelSelectorAsSelector(set.spec?.selector);
    } catch (e) {
      // Not transient: retrying cannot fix a selector the apiserver should never have accepted.
      ctx.log.error({ statefulSet: key, err: errorMessage(e) }, "error converting StatefulSet selector");
      return {};
    }
    await this.adoptOrphanRevisions(set, selector);
    const pods = await this.claimPods(set, selector);
    const status = await this.updateStatefulSet(ctx, set, selector, pods);
    const minReady = set.spec?.minReadySeconds ?? 0;
    if (minReady > 0 && status && status.availableReplicas !== replicasOf(set)) return { requeueAfterMs: minReady * 1000 };
    return {};
  }

  // ---- ownership ------------------------------------------------------------------------------

  private async adoptOrphanRevisions(set: Readonly<StatefulSet>, selector: Selector): Promise<void> {
    const orphans = this.history.listControllerRevisions(set, selector).filter((r) => !getControllerOf(r));
    if (orphans.length === 0) return;
    try {
      await recheckController(this.setClient, set);
    } catch (e) {
      throw new Error(`can't adopt ControllerRevisions: ${errorMessage(e)}`, { cause: e });
    }
    for (const r of orphans) await this.history.adoptControllerRevision(set, StatefulSetGVK, r);
  }

  /**
   * getPodsForStatefulSet: every pod of the namespace that is a member by name and matches the
   * selector is claimed (orphans adopted); owned pods that stopped being members are released.
   */
  private async claimPods(set: Readonly<StatefulSet>, selector: Selector): Promise<Readonly<Pod>[]> {
    const all = this.deps.pods.listNamespace(set.metadata.namespace ?? "");
    const m = new ControllerRefManager<Pod>({
      controller: set,
      gvk: StatefulSetGVK,
      selector,
      children: this.podClient,
      canAdopt: () => recheckController(this.setClient, set),
    });
    const claimed = await m.claim(all.filter((p) => isMemberOf(set, p)));
    for (const p of all) {
      if (isMemberOf(set, p) || getControllerOf(p)?.uid !== set.metadata.uid || set.metadata.deletionTimestamp) continue;
      try {
        await this.podClient.patch(p.metadata.namespace ?? "", p.metadata.name ?? "", "merge", releasePatch(p, set.metadata.uid ?? ""));
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
    return claimed;
  }

  // ---- UpdateStatefulSet ----------------------------------------------------------------------

  /** UpdateStatefulSet: revisions, then pods, then status, then history; the first error is rethrown after trimming history. */
  private async updateStatefulSet(ctx: ReconcileContext, set: StatefulSet, selector: Selector, pods: readonly Readonly<Pod>[]): Promise<StatefulSetStatus | undefined> {
    const revisions = sortControllerRevisions(this.history.listControllerRevisions(set, selector));
    const { current, update, collisionCount } = await this.getRevisions(set, revisions);
    let status: StatefulSetStatus | undefined;
    let err: unknown;
    try {
      status = await this.performUpdate(ctx, set, current, update, collisionCount, pods);
    } catch (e) {
      err = e;
    }
    await this.truncateHistory(set, pods, revisions, current, update);
    if (err !== undefined) throw err;
    return status;
  }

  /**
   * getStatefulSetRevisions: the update revision is the set's current template — the latest
   * revision if it is equal, an older equal one renumbered to the next revision (a rollback), or a
   * new one; the current revision is status.currentRevision, or the update revision for a new set.
   */
  private async getRevisions(
    set: Readonly<StatefulSet>,
    revisions: readonly Readonly<ControllerRevision>[],
  ): Promise<{ current: ControllerRevision; update: ControllerRevision; collisionCount: number }> {
    let collisionCount = set.status?.collisionCount ?? 0;
    let update: ControllerRevision = newRevision(set, nextRevision(revisions), collisionCount);
    const equal = findEqualRevisions(revisions, update);
    const last = revisions.at(-1);
    if (equal.length > 0 && equalRevision(last, equal.at(-1))) {
      update = deepCopy(last!);
    } else if (equal.length > 0) {
      update = await this.history.updateControllerRevision(equal.at(-1)!, update.revision);
    } else {
      const created = await this.history.createControllerRevision(set, update, collisionCount);
      update = created.revision;
      collisionCount = created.collisionCount;
    }
    const found = revisions.find((r) => r.metadata.name === set.status?.currentRevision);
    return { current: found ? deepCopy(found) : update, update, collisionCount };
  }

  /** performUpdate: the pods pass, then the status write (even after a failed pass, as upstream). */
  private async performUpdate(
    ctx: ReconcileContext,
    set: StatefulSet,
    current: ControllerRevision,
    update: ControllerRevision,
    collisionCount: number,
    pods: readonly Readonly<Pod>[],
  ): Promise<StatefulSetStatus> {
    const status: StatefulSetStatus = {
      observedGeneration: set.metadata.generation,
      replicas: 0,
      currentRevision: current.metadata.name,
      updateRevision: update.metadata.name,
      collisionCount,
    };
    let err: unknown;
    try {
      await this.syncPods(ctx, set, current, update, pods, status);
    } catch (e) {
      err = e;
    }
    try {
      await this.updateStatus(set, status);
    } catch (e) {
      if (err === undefined) throw e;
      ctx.log.error({ statefulSet: keyOf(set), err: errorMessage(e) }, "could not update status");
    }
    if (err !== undefined) throw err;
    return status;
  }

  /**
   * updateStatefulSet (the pods pass): fills in the missing ordinals, recreates failed pods, fixes
   * identities and storage, creates pods in order (waiting for each to be Running and Ready unless
   * Parallel), deletes condemned pods from the highest ordinal down, then rolls the update. `status`
   * is kept current as pods are created and deleted.
   */
  private async syncPods(
    ctx: ReconcileContext,
    set: StatefulSet,
    currentRevision: ControllerRevision,
    updateRevision: ControllerRevision,
    pods: readonly Readonly<Pod>[],
    status: StatefulSetStatus,
  ): Promise<void> {
    const currentSet = applyRevision(set, currentRevision);
    const updateSet = applyRevision(set, updateRevision);
    const minReady = set.spec?.minReadySeconds ?? 0;
    const count = (lists: readonly (readonly Readonly<Pod>[])[]) => computeReplicaStatus(status, lists, minReady, currentRevision, updateRevision, this.clock.now());
    count([pods]);

    const start = startOrdinal(set);
    const replicas: Readonly<Pod>[] = new Array<Readonly<Pod>>(replicasOf(set));
    const condemned: Readonly<Pod>[] = [];
    for (const pod of pods) {
      if (podInOrdinalRange(pod, set)) replicas[getOrdinal(pod) - start] = pod;
      else if (getOrdinal(pod) >= 0) condemned.push(pod);
    }
    for (let ord = start; ord <= endOrdinal(set); ord++) {
      replicas[ord - start] ??= newVersionedStatefulSetPod(currentSet, updateSet, currentRevision.metadata.name ?? "", updateRevision.metadata.name ?? "", ord);
    }
    condemned.sort((a, b) => getOrdinal(b) - getOrdinal(a));
    let firstUnhealthy: Readonly<Pod> | undefined = replicas.find((p) => !isHealthy(p));
    if (!firstUnhealthy) for (let i = condemned.length - 1; i >= 0; i--) if (!isHealthy(condemned[i]!)) { firstUnhealthy = condemned[i]; break; }

    if (set.metadata.deletionTimestamp) return;
    const monotonic = !allowsBurst(set);

    try {
      // Living replicas first; then the condemned pods' claims (whenScaled), then the condemned pods themselves.
      if (await runForAll(replicas.length, (i) => this.processReplica(ctx, set, updateSet, currentRevision, updateRevision, monotonic, replicas, i), monotonic)) {
        return count([replicas, condemned]);
      }
      const fixClaim = async (i: number): Promise<Step> => {
        const pod = condemned[i]!;
        if (!this.claimsMatchRetentionPolicy(updateSet, pod)) await this.updatePodClaimForRetentionPolicy(updateSet, pod);
        return false;
      };
      if (await runForAll(condemned.length, fixClaim, monotonic)) return count([replicas, condemned]);
      if (await runForAll(condemned.length, (i) => this.processCondemned(ctx, set, firstUnhealthy, monotonic, condemned, i), monotonic)) {
        return count([replicas, condemned]);
      }
    } catch (e) {
      count([replicas, condemned]);
      throw e;
    }
    count([replicas, condemned]);

    if (set.spec?.updateStrategy?.type === "OnDelete") return;
    await this.rollingUpdate(ctx, set, replicas, updateRevision, status);
  }

  /** updateStatefulSetAfterInvariantEstablished: delete up to maxUnavailable outdated pods, highest ordinal first, down to the partition. */
  private async rollingUpdate(ctx: ReconcileContext, set: StatefulSet, replicas: readonly Readonly<Pod>[], updateRevision: ControllerRevision, status: StatefulSetStatus): Promise<void> {
    const partition = set.spec?.updateStrategy?.rollingUpdate?.partition ?? 0;
    const allowed = set.spec?.updateStrategy?.rollingUpdate ? maxUnavailable(set) : 1;
    const unavailable = replicas.filter((p) => !isHealthy(p)).length;
    if (unavailable >= allowed) {
      ctx.log.debug({ statefulSet: keyOf(set), unavailable, maxUnavailable: allowed }, "waiting: unavailable pods at maxUnavailable");
      return;
    }
    let deleted = 0;
    for (let target = replicas.length - 1; target >= partition && deleted < allowed - unavailable; target--) {
      const pod = replicas[target]!;
      if (getPodRevision(pod) !== updateRevision.metadata.name && !isTerminating(pod)) {
        ctx.log.info({ statefulSet: keyOf(set), pod: pod.metadata.name }, "terminating pod for update");
        await this.deleteStatefulPod(set, pod);
        deleted++;
        status.currentReplicas = (status.currentReplicas ?? 0) - 1;
      }
    }
  }

  /** processReplica: returns true to stop the pass (an error, a monotonic create, or a pod to wait for). */
  private async processReplica(
    ctx: ReconcileContext,
    set: StatefulSet,
    updateSet: StatefulSet,
    currentRevision: ControllerRevision,
    updateRevision: ControllerRevision,
    monotonic: boolean,
    replicas: Readonly<Pod>[],
    i: number,
  ): Promise<Step> {
    let pod = replicas[i]!;
    if (isFailed(pod) || isSucceeded(pod)) {
      if (isFailed(pod)) this.deps.recorder.event(set, "Warning", "RecreatingFailedPod", `StatefulSet ${keyOf(set)} is recreating failed Pod ${pod.metadata.name}`);
      else this.deps.recorder.event(set, "Normal", "RecreatingTerminatedPod", `StatefulSet ${keyOf(set)} is recreating terminated Pod ${pod.metadata.name}`);
      await this.deleteStatefulPod(set, pod);
      const currentSet = applyRevision(set, currentRevision);
      pod = replicas[i] = newVersionedStatefulSetPod(currentSet, updateSet, currentRevision.metadata.name ?? "", updateRevision.metadata.name ?? "", i + startOrdinal(set));
    }
    if (!isCreated(pod)) {
      if (this.podClaimIsStale(set, pod)) return true; // the stale claim's deletion will wake us
      await this.createStatefulPod(set, pod);
      if (monotonic) return true;
    }
    if (isPending(pod)) await this.createMissingClaims(set, pod);
    if (isTerminating(pod) && monotonic) {
      ctx.log.debug({ statefulSet: keyOf(set), pod: pod.metadata.name }, "waiting for pod to terminate");
      return true;
    }
    if (!isRunningAndReady(pod) && monotonic) {
      ctx.log.debug({ statefulSet: keyOf(set), pod: pod.metadata.name }, "waiting for pod to be Running and Ready");
      return true;
    }
    if (!isRunningAndAvailable(pod, set.spec?.minReadySeconds ?? 0, this.clock.now()) && monotonic) {
      ctx.log.debug({ statefulSet: keyOf(set), pod: pod.metadata.name }, "waiting for pod to be Available");
      return true;
    }
    if (!isCreated(pod)) return false; // just created in Parallel mode: nothing to reconcile on it yet
    const retentionMatch = this.claimsMatchRetentionPolicy(updateSet, pod);
    if (identityMatches(set, pod) && storageMatches(set, pod) && retentionMatch) return false;
    await this.updateStatefulPod(updateSet, deepCopy(pod));
    return false;
  }

  /** processCondemned: delete one condemned pod (monotonic: only when every pod before it is healthy, one at a time). */
  private async processCondemned(ctx: ReconcileContext, set: StatefulSet, firstUnhealthy: Readonly<Pod> | undefined, monotonic: boolean, condemned: readonly Readonly<Pod>[], i: number): Promise<Step> {
    const pod = condemned[i]!;
    if (isTerminating(pod)) {
      if (monotonic) ctx.log.debug({ statefulSet: keyOf(set), pod: pod.metadata.name }, "waiting for pod to terminate before scaling down");
      return monotonic;
    }
    if (monotonic && pod !== firstUnhealthy) {
      if (!isRunningAndReady(pod) || !isRunningAndAvailable(pod, set.spec?.minReadySeconds ?? 0, this.clock.now())) {
        ctx.log.debug({ statefulSet: keyOf(set), pod: firstUnhealthy?.metadata.name }, "waiting for pod to be healthy before scaling down");
        return true;
      }
    }
    ctx.log.info({ statefulSet: keyOf(set), pod: pod.metadata.name }, "terminating pod for scale down");
    await this.deleteStatefulPod(set, pod);
    return true;
  }

  // ---- StatefulPodControl ---------------------------------------------------------------------

  private recordPodEvent(verb: "create" | "update" | "delete", set: Readonly<StatefulSet>, pod: Readonly<Pod>, err?: unknown): void {
    const title = verb[0]!.toUpperCase() + verb.slice(1);
    if (err === undefined) this.deps.recorder.event(set, "Normal", `Successful${title}`, `${verb} Pod ${pod.metadata.name} in StatefulSet ${set.metadata.name} successful`);
    else this.deps.recorder.event(set, "Warning", `Failed${title}`, `${verb} Pod ${pod.metadata.name} in StatefulSet ${set.metadata.name} failed error: ${errorMessage(err)}`);
  }

  private recordClaimEvent(set: Readonly<StatefulSet>, pod: Readonly<Pod>, claim: Readonly<PersistentVolumeClaim>, err?: unknown): void {
    if (err === undefined) this.deps.recorder.event(set, "Normal", "SuccessfulCreate", `create Claim ${claim.metadata.name} Pod ${pod.metadata.name} in StatefulSet ${set.metadata.name} success`);
    else this.deps.recorder.event(set, "Warning", "FailedCreate", `create Claim ${claim.metadata.name} for Pod ${pod.metadata.name} in StatefulSet ${set.metadata.name} failed error: ${errorMessage(err)}`);
  }

  private claim(namespace: string, name: string): Readonly<PersistentVolumeClaim> | undefined {
    return this.deps.claims.get(`${namespace}/${name}`);
  }

  /** createPersistentVolumeClaims: creates the pod's missing claims; a claim being deleted is an error (the pod must wait). */
  private async createMissingClaims(set: Readonly<StatefulSet>, pod: Readonly<Pod>): Promise<void> {
    const errs: string[] = [];
    for (const claim of claimsFor(set, pod).values()) {
      const existing = this.claim(claim.metadata.namespace ?? "", claim.metadata.name ?? "");
      if (existing) {
        if (existing.metadata.deletionTimestamp) errs.push(`pvc ${claim.metadata.name} is being deleted`);
        continue;
      }
      // Owned per the retention policy from the start, so no later pass has to catch the cache up.
      updateClaimOwnerRefs(claim, set, pod);
      try {
        await this.claimClient.create(claim.metadata.namespace ?? "", claim);
        this.recordClaimEvent(set, pod, claim);
      } catch (e) {
        if (isAlreadyExists(e)) continue; // the cache was behind
        errs.push(`failed to create PVC ${claim.metadata.name}: ${errorMessage(e)}`);
        this.recordClaimEvent(set, pod, claim, e);
      }
    }
    if (errs.length > 0) throw new Error(errs.length === 1 ? errs[0] : `[${errs.join(", ")}]`);
  }

  /** CreateStatefulPod: claims first, then the pod, then the claims' retention ownerReferences. */
  private async createStatefulPod(set: Readonly<StatefulSet>, pod: Readonly<Pod>): Promise<void> {
    try {
      await this.createMissingClaims(set, pod);
    } catch (e) {
      this.recordPodEvent("create", set, pod, e);
      throw e;
    }
    try {
      await this.podClient.create(set.metadata.namespace ?? "", deepCopy(pod));
    } catch (e) {
      if (isAlreadyExists(e)) throw e; // our cache is behind; no event, as upstream
      this.recordPodEvent("create", set, pod, e);
      throw e;
    }
    try {
      await this.updatePodClaimForRetentionPolicy(set, pod);
    } catch (e) {
      this.recordPodEvent("update", set, pod, e);
      throw e;
    }
    this.recordPodEvent("create", set, pod);
  }

  /** UpdateStatefulPod: restores identity, storage and claim ownership, then PUTs the pod (retrying conflicts from a fresh read). */
  private async updateStatefulPod(set: Readonly<StatefulSet>, pod: Pod): Promise<void> {
    let attempted = false;
    let err: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      let consistent = true;
      if (!identityMatches(set, pod)) {
        updateIdentity(set, pod);
        consistent = false;
      }
      try {
        if (!storageMatches(set, pod)) {
          updateStorage(set, pod);
          consistent = false;
          await this.createMissingClaims(set, pod);
        }
        if (!this.claimsMatchRetentionPolicy(set, pod)) {
          await this.updatePodClaimForRetentionPolicy(set, pod);
        }
      } catch (e) {
        this.recordPodEvent("update", set, pod, e);
        throw e;
      }
      if (consistent) return;
      attempted = true;
      try {
        await this.podClient.update(pod);
        err = undefined;
        break;
      } catch (e) {
        err = e;
        if (!isConflict(e)) break;
        pod = await this.podClient.get(set.metadata.namespace ?? "", pod.metadata.name ?? "");
      }
    }
    if (attempted) this.recordPodEvent("update", set, pod, err);
    if (err !== undefined) throw err;
  }

  /** DeleteStatefulPod (NotFound counts as done). */
  private async deleteStatefulPod(set: Readonly<StatefulSet>, pod: Readonly<Pod>): Promise<void> {
    try {
      await this.podClient.delete(pod.metadata.namespace ?? "", pod.metadata.name ?? "");
    } catch (e) {
      if (isNotFound(e)) return;
      this.recordPodEvent("delete", set, pod, e);
      throw e;
    }
    this.recordPodEvent("delete", set, pod);
  }

  /** ClaimsMatchRetentionPolicy: every existing claim of the pod carries the ownerReferences the policy asks for. */
  private claimsMatchRetentionPolicy(set: Readonly<StatefulSet>, pod: Readonly<Pod>): boolean {
    for (const claim of claimsFor(set, pod).values()) {
      const existing = this.claim(set.metadata.namespace ?? "", claim.metadata.name ?? "");
      if (existing && !isClaimOwnerUpToDate(existing, set, pod)) return false;
    }
    return true;
  }

  /** UpdatePodClaimForRetentionPolicy: rewrites the ownerReferences of the pod's claims to match the policy. */
  private async updatePodClaimForRetentionPolicy(set: Readonly<StatefulSet>, pod: Readonly<Pod>): Promise<void> {
    for (const c of claimsFor(set, pod).values()) {
      const existing = this.claim(set.metadata.namespace ?? "", c.metadata.name ?? "");
      if (!existing || isClaimOwnerUpToDate(existing, set, pod)) continue;
      const claim = deepCopy(existing);
      updateClaimOwnerRefs(claim, set, pod);
      try {
        await this.claimClient.update(claim);
      } catch (e) {
        throw new Error(`could not update claim ${claim.metadata.name} for delete policy ownerRefs: ${errorMessage(e)}`, { cause: e });
      }
    }
  }

  /** PodClaimIsStale: with whenScaled Delete, a claim still owned by a previous pod of this name blocks the new pod. */
  private podClaimIsStale(set: Readonly<StatefulSet>, pod: Readonly<Pod>): boolean {
    if (retentionPolicy(set).whenScaled === "Retain") return false;
    for (const claim of claimsFor(set, pod).values()) {
      const existing = this.claim(claim.metadata.namespace ?? "", claim.metadata.name ?? "");
      if (existing && hasStaleOwnerRef(existing, pod, PodGVK)) return true;
    }
    return false;
  }

  // ---- status and history ---------------------------------------------------------------------

  /** updateStatefulSetStatus: completes a finished rolling update, then writes status if it changed. */
  private async updateStatus(set: Readonly<StatefulSet>, status: StatefulSetStatus): Promise<void> {
    if (set.spec?.updateStrategy?.type === "RollingUpdate" && status.updatedReplicas === status.replicas && status.readyReplicas === status.replicas) {
      status.currentReplicas = status.updatedReplicas;
      status.currentRevision = status.updateRevision;
    }
    const cur = set.status;
    const same =
      cur !== undefined &&
      (status.observedGeneration ?? 0) <= (cur.observedGeneration ?? 0) &&
      status.replicas === (cur.replicas ?? 0) &&
      (status.currentReplicas ?? 0) === (cur.currentReplicas ?? 0) &&
      (status.readyReplicas ?? 0) === (cur.readyReplicas ?? 0) &&
      (status.updatedReplicas ?? 0) === (cur.updatedReplicas ?? 0) &&
      (status.availableReplicas ?? 0) === (cur.availableReplicas ?? 0) &&
      status.currentRevision === cur.currentRevision &&
      status.updateRevision === cur.updateRevision;
    if (same) return;
    let obj = deepCopy(set);
    for (let attempt = 0; ; attempt++) {
      obj.status = wireStatus(status, obj.status);
      try {
        await this.setClient.updateStatus(obj);
        return;
      } catch (e) {
        // Deleted meanwhile: nothing to report on (upstream ignores NotFound here too).
        if (isNotFound(e)) return;
        if (attempt >= 4 || !isConflict(e)) throw e;
        obj = await this.setClient.get(set.metadata.namespace ?? "", set.metadata.name ?? "");
      }
    }
  }

  /**
   * truncateHistory: deletes the oldest revisions that are neither current, update, nor worn by a
   * pod, until revisionHistoryLimit remain.
   */
  private async truncateHistory(
    set: Readonly<StatefulSet>,
    pods: readonly Readonly<Pod>[],
    revisions: readonly Readonly<ControllerRevision>[],
    current: Readonly<ControllerRevision>,
    update: Readonly<ControllerRevision>,
  ): Promise<void> {
    const live = new Set<string>([current.metadata.name ?? "", update.metadata.name ?? "", ...pods.map(getPodRevision)]);
    const history = revisions.filter((r) => !live.has(r.metadata.name ?? ""));
    const limit = set.spec?.revisionHistoryLimit ?? 10;
    for (const r of history.slice(0, Math.max(0, history.length - limit))) {
      try {
        await this.history.deleteControllerRevision(r);
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
  }
}

/** Status as the apiserver serializes it: counts with omitempty dropped when zero, replicas and availableReplicas always. */
function wireStatus(s: StatefulSetStatus, previous: StatefulSetStatus | undefined): StatefulSetStatus {
  const out: StatefulSetStatus = { replicas: s.replicas };
  if (s.observedGeneration) out.observedGeneration = s.observedGeneration;
  if (s.readyReplicas) out.readyReplicas = s.readyReplicas;
  if (s.currentReplicas) out.currentReplicas = s.currentReplicas;
  if (s.updatedReplicas) out.updatedReplicas = s.updatedReplicas;
  if (s.currentRevision) out.currentRevision = s.currentRevision;
  if (s.updateRevision) out.updateRevision = s.updateRevision;
  if (s.collisionCount !== undefined) out.collisionCount = s.collisionCount;
  if (previous?.conditions?.length) out.conditions = previous.conditions;
  out.availableReplicas = s.availableReplicas ?? 0;
  return out;
}

/** updateStatus/computeReplicaStatus: recounts replicas, ready, available, current and updated over the lists. */
function computeReplicaStatus(
  status: StatefulSetStatus,
  lists: readonly (readonly Readonly<Pod>[])[],
  minReadySeconds: number,
  current: Readonly<ControllerRevision>,
  update: Readonly<ControllerRevision>,
  nowMs: number,
): void {
  let replicas = 0;
  let ready = 0;
  let available = 0;
  let currentReplicas = 0;
  let updated = 0;
  for (const list of lists) {
    for (const pod of list) {
      if (!pod) continue;
      if (isCreated(pod)) replicas++;
      if (isRunningAndReady(pod)) {
        ready++;
        if (isRunningAndAvailable(pod, minReadySeconds, nowMs)) available++;
      }
      if (isCreated(pod) && !isTerminating(pod)) {
        const rev = getPodRevision(pod);
        if (rev === current.metadata.name) currentReplicas++;
        if (rev === update.metadata.name) updated++;
      }
    }
  }
  Object.assign(status, { replicas, readyReplicas: ready, availableReplicas: available, currentReplicas, updatedReplicas: updated });
}

/**
 * runForAll: monotonic — one at a time in order, stopping at the first that asks to stop (or
 * fails); otherwise slow-start batches (1, 2, 4, … up to 500) of all of them, stopping at the
 * first failed batch. Returns true when the caller should stop this pass.
 */
async function runForAll(n: number, fn: (i: number) => Promise<Step>, monotonic: boolean): Promise<boolean> {
  if (monotonic) {
    for (let i = 0; i < n; i++) if (await fn(i)) return true;
    return false;
  }
  let next = 0;
  for (let batch = Math.min(n, SlowStartInitialBatchSize); batch > 0; batch = Math.min(2 * batch, n - next, MaxBatchSize)) {
    const results = await Promise.allSettled(Array.from({ length: batch }, (_, k) => fn(next + k)));
    next += batch;
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Event handlers: the harness wires these to the pod informer and adds the returned keys.

/** Maps pod events to StatefulSet keys (stateful_set.go addPod/updatePod/deletePod). */
export class StatefulSetPodHandlers {
  constructor(private readonly deps: { sets: Lister<StatefulSet> }) {}

  onPodAdd(pod: Readonly<Pod>): ObjectKey[] {
    const owner = this.resolveOwner(pod);
    if (owner) return [keyOf(owner)];
    if (getControllerOf(pod)) return [];
    return this.matchingSets(pod).map(keyOf);
  }

  onPodUpdate(oldPod: Readonly<Pod>, cur: Readonly<Pod>): ObjectKey[] {
    if (oldPod.metadata.resourceVersion === cur.metadata.resourceVersion) return [];
    const keys = new Set<ObjectKey>();
    const oldOwner = this.resolveOwner(oldPod);
    const curOwner = this.resolveOwner(cur);
    if (oldOwner && oldOwner.metadata.uid !== curOwner?.metadata.uid) keys.add(keyOf(oldOwner));
    if (curOwner) keys.add(keyOf(curOwner));
    else if (!getControllerOf(cur)) for (const s of this.matchingSets(cur)) keys.add(keyOf(s));
    return [...keys];
  }

  onPodDelete(pod: Readonly<Pod>): ObjectKey[] {
    const owner = this.resolveOwner(pod);
    return owner ? [keyOf(owner)] : [];
  }

  private resolveOwner(pod: Readonly<Pod>): Readonly<StatefulSet> | undefined {
    const ref = getControllerOf(pod);
    if (!ref || ref.kind !== StatefulSetGVK.kind) return undefined;
    const set = this.deps.sets.get(`${pod.metadata.namespace ?? ""}/${ref.name}`);
    return set && set.metadata.uid === ref.uid ? set : undefined;
  }

  /** getPodStatefulSets: the sets whose selector matches an orphan pod. */
  private matchingSets(pod: Readonly<Pod>): Readonly<StatefulSet>[] {
    return this.deps.sets.listNamespace(pod.metadata.namespace ?? "").filter((s) => {
      try {
        const sel = labelSelectorAsSelector(s.spec?.selector);
        return !sel.empty() && sel.matches(pod.metadata.labels);
      } catch {
        return false;
      }
    });
  }
}
