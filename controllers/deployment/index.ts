// The Deployment controller: rolls a pod template out through ReplicaSets (one per template,
// named by pod-template-hash), RollingUpdate within maxSurge/maxUnavailable or Recreate, keeps the
// revision annotations `kubectl rollout history/undo` read, prunes history, and reports the status
// and conditions `kubectl rollout status` waits on.

import {
  DefaultDeploymentUniqueLabelKey,
  DeploymentRevisionAnnotation,
  labelSelectorAsSelector,
  type Deployment,
  type DeploymentStatus,
  type Pod,
  type ReplicaSet,
  type Selector,
} from "../../api/index.ts";
import { isAlreadyExists, isNotFound, TerminalError } from "../../client/errors.ts";
import type { Client, Clock, EventRecorder, Lister, ObjectKey, ReconcileContext, Reconciler, ResourceClient, Result } from "../../client/types.ts";
import { ControllerRefManager, deepCopy, errorMessage, getControllerOf, keyOf, newControllerRef, recheckController, rfc3339 } from "../podcontrol.ts";
import {
  actualReplicaCount,
  activeReplicaSets,
  availableReplicaCount,
  canonicalJSON,
  computeHash,
  deploymentComplete,
  deploymentProgressing,
  deploymentReplicas,
  deploymentTimedOut,
  equalIgnoreHash,
  FailedRSCreateReason,
  findActiveOrLatest,
  findNewReplicaSet,
  findOldReplicaSets,
  FoundNewRSReason,
  getCondition,
  getProportion,
  hasProgressDeadline,
  isRollingUpdate,
  isSaturated,
  maxRevision,
  maxSurge,
  maxUnavailable,
  MinimumReplicasAvailable,
  MinimumReplicasUnavailable,
  newCondition,
  NewReplicaSetReason,
  newRSNewReplicas,
  NewRSAvailableReason,
  PausedDeployReason,
  progressDeadlineSeconds,
  readyReplicaCount,
  removeCondition,
  replicaCount,
  replicasAnnotationsNeedUpdate,
  ReplicaSetUpdatedReason,
  ResumedDeployReason,
  revisionHistoryLimit,
  revisionOf,
  rsReplicas,
  selectorWithLabel,
  setCondition,
  setNewReplicaSetAnnotations,
  setReplicasAnnotations,
  sortByCreation,
  sortByRevision,
  sortBySizeNewer,
  sortBySizeOlder,
  TimedOutReason,
} from "./util.ts";

export * from "./util.ts";

export const DeploymentGVK = { apiVersion: "apps/v1", kind: "Deployment" } as const;

export interface DeploymentControllerDeps {
  client: Client;
  deployments: Lister<Deployment>;
  replicaSets: Lister<ReplicaSet>;
  pods: Lister<Pod>;
  recorder: EventRecorder;
  clock?: Pick<Clock, "now">;
}

export class DeploymentController implements Reconciler {
  readonly dClient: ResourceClient<Deployment>;
  readonly rsClient: ResourceClient<ReplicaSet>;
  readonly clock: Pick<Clock, "now">;

  constructor(readonly deps: DeploymentControllerDeps) {
    this.dClient = deps.client.resource<Deployment>("apps", "deployments");
    this.rsClient = deps.client.resource<ReplicaSet>("apps", "replicasets");
    this.clock = deps.clock ?? { now: () => Date.now() };
  }

  async reconcile(ctx: ReconcileContext, key: ObjectKey): Promise<Result> {
    const cached = this.deps.deployments.get(key);
    if (!cached) return {};
    const d = deepCopy(cached);
    if (!d.spec) return {};
    const sel = d.spec.selector;
    if (!sel || (Object.keys(sel.matchLabels ?? {}).length === 0 && (sel.matchExpressions ?? []).length === 0)) {
      this.deps.recorder.event(d, "Warning", "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.");
      if ((d.status?.observedGeneration ?? 0) < (d.metadata.generation ?? 0)) {
        d.status = { ...(d.status ?? {}), observedGeneration: d.metadata.generation };
        await this.dClient.updateStatus(d);
      }
      return {};
    }
    let selector: Selector;
    try {
      selector = labelSelectorAsSelector(sel);
    } catch (e) {
      throw new TerminalError(`invalid selector on Deployment ${key}: ${errorMessage(e)}`, { cause: e });
    }
    const s = new DeploymentSync(this, ctx, d, selector);
    return s.run();
  }
}

/** One reconcile of one Deployment: the working copy, its ReplicaSets as updated so far, and the rollout steps. */
class DeploymentSync {
  /** The status as read from the cache: written back only when the computed one differs. */
  private readonly origStatus: DeploymentStatus | undefined;
  /** Every ReplicaSet this Deployment owns, replaced by our own writes' results as we go. */
  private rsList: Readonly<ReplicaSet>[] = [];
  private readonly now: number;

  constructor(
    private readonly c: DeploymentController,
    private readonly ctx: ReconcileContext,
    private readonly d: Deployment,
    private readonly selector: Selector,
  ) {
    this.origStatus = structuredClone(d.status);
    this.now = c.clock.now();
  }

  async run(): Promise<Result> {
    const d = this.d;
    this.rsList = await this.claimReplicaSets();
    if (d.metadata.deletionTimestamp) return this.syncStatusOnly();
    this.checkPausedConditions();
    if (d.spec?.paused) return this.sync();
    if (await this.isScalingEvent()) return this.sync();
    if (isRollingUpdate(d)) return this.rolloutRolling();
    return this.rolloutRecreate();
  }

  // ---- ReplicaSets: ownership, new and old ----

  private claimReplicaSets(): Promise<Readonly<ReplicaSet>[]> {
    const m = new ControllerRefManager<ReplicaSet>({
      controller: this.d,
      gvk: DeploymentGVK,
      selector: this.selector,
      children: this.c.rsClient,
      canAdopt: () => recheckController(this.c.dClient, this.d),
    });
    return m.claim(this.c.deps.replicaSets.listNamespace(this.d.metadata.namespace ?? ""));
  }

  /** The latest copy of a ReplicaSet (after our own writes in this reconcile). */
  private latest(rs: Readonly<ReplicaSet>): Readonly<ReplicaSet> {
    return this.rsList.find((r) => r.metadata.uid === rs.metadata.uid) ?? rs;
  }

  private remember(rs: Readonly<ReplicaSet>): void {
    const i = this.rsList.findIndex((r) => r.metadata.uid === rs.metadata.uid);
    if (i >= 0) this.rsList[i] = rs;
    else this.rsList.push(rs);
  }

  /** getAllReplicaSetsAndSyncRevision: old ReplicaSets, and the new one (created when asked and missing). */
  private async getAllReplicaSets(create: boolean): Promise<{ newRS?: Readonly<ReplicaSet>; oldRSs: Readonly<ReplicaSet>[] }> {
    const oldRSs = findOldReplicaSets(this.d, this.rsList);
    const newRS = await this.getNewReplicaSet(oldRSs, create);
    return { newRS, oldRSs: oldRSs.map((rs) => this.latest(rs)) };
  }

  private async getNewReplicaSet(oldRSs: readonly Readonly<ReplicaSet>[], create: boolean): Promise<Readonly<ReplicaSet> | undefined> {
    const d = this.d;
    const existing = findNewReplicaSet(d, this.rsList);
    const newRevision = maxRevision(oldRSs) + 1;
    if (existing) {
      // A rollback to an old template lands here: the revision moves up, the old one goes into revision-history.
      const copy = deepCopy(existing);
      const annotationsUpdated = setNewReplicaSetAnnotations(d, copy, newRevision, true);
      const minReady = d.spec?.minReadySeconds ?? 0;
      const minReadyNeedsUpdate = (copy.spec?.minReadySeconds ?? 0) !== minReady;
      let rs: Readonly<ReplicaSet> = existing;
      if (annotationsUpdated || minReadyNeedsUpdate) {
        if (copy.spec) copy.spec.minReadySeconds = minReady;
        rs = await this.c.rsClient.update(copy);
        this.remember(rs);
      }
      await this.setDeploymentRevision(rs);
      if (!getCondition(d.status, "Progressing")) {
        this.setStatusCondition(newCondition("Progressing", "True", FoundNewRSReason, `Found new replica set "${rs.metadata.name}"`, rfc3339(this.now)));
      }
      return rs;
    }
    if (!create) return undefined;

    const spec = d.spec!;
    const hash = computeHash(spec.template, d.status?.collisionCount);
    const template = deepCopy(spec.template);
    template.metadata = { ...(template.metadata ?? {}), labels: { ...(template.metadata?.labels ?? {}), [DefaultDeploymentUniqueLabelKey]: hash } };
    const name = `${d.metadata.name}-${hash}`;
    const newRS: ReplicaSet = {
      apiVersion: "apps/v1",
      kind: "ReplicaSet",
      metadata: {
        name,
        namespace: d.metadata.namespace,
        labels: { ...(template.metadata.labels ?? {}) },
        ownerReferences: [newControllerRef(d, DeploymentGVK)],
      },
      spec: {
        replicas: 0,
        minReadySeconds: spec.minReadySeconds ?? 0,
        selector: selectorWithLabel(spec.selector, DefaultDeploymentUniqueLabelKey, hash),
        template,
      },
    };
    const replicas = newRSNewReplicas(d, [...oldRSs, newRS], newRS);
    newRS.spec!.replicas = replicas;
    setNewReplicaSetAnnotations(d, newRS, newRevision, false);

    let created: Readonly<ReplicaSet>;
    let alreadyExists = false;
    try {
      created = await this.c.rsClient.create(d.metadata.namespace ?? "", newRS);
    } catch (e) {
      if (isAlreadyExists(e)) {
        const found = this.c.deps.replicaSets.get(`${d.metadata.namespace}/${name}`);
        if (found && getControllerOf(found)?.uid === d.metadata.uid && equalIgnoreHash(found.spec?.template, spec.template)) {
          // Ours, created by an earlier reconcile the cache had not seen yet.
          created = found;
          alreadyExists = true;
        } else {
          // A different template hashed to the same name: bump collisionCount so the next hash differs.
          const status = this.d.status ?? {};
          status.collisionCount = (status.collisionCount ?? 0) + 1;
          this.d.status = status;
          await this.writeStatus(status);
          throw new Error(`found a hash collision for deployment "${d.metadata.name}" - bumping collisionCount to ${status.collisionCount} to resolve it`, { cause: e });
        }
      } else {
        const msg = `Failed to create new replica set "${name}": ${errorMessage(e)}`;
        this.setStatusCondition(newCondition("Progressing", "False", FailedRSCreateReason, msg, rfc3339(this.now)));
        await this.writeStatus(this.d.status ?? {});
        throw e;
      }
    }
    this.remember(created);
    if (!alreadyExists && replicas > 0) {
      this.c.deps.recorder.event(d, "Normal", "ScalingReplicaSet", `Scaled up replica set ${name} from 0 to ${replicas}`);
    }
    await this.setDeploymentRevision(created);
    if (!alreadyExists) {
      this.setStatusCondition(newCondition("Progressing", "True", NewReplicaSetReason, `Created new replica set "${name}"`, rfc3339(this.now)));
    }
    return created;
  }

  /** SetDeploymentRevision: the Deployment carries its new ReplicaSet's revision (a metadata patch: status writes cannot change annotations). */
  private async setDeploymentRevision(rs: Readonly<ReplicaSet>): Promise<void> {
    const rev = rs.metadata.annotations?.[DeploymentRevisionAnnotation];
    if (rev === undefined || this.d.metadata.annotations?.[DeploymentRevisionAnnotation] === rev) return;
    const patched = await this.c.dClient.patch(this.d.metadata.namespace ?? "", this.d.metadata.name ?? "", "merge", {
      metadata: { annotations: { [DeploymentRevisionAnnotation]: rev } },
    });
    this.d.metadata.annotations = { ...(this.d.metadata.annotations ?? {}), [DeploymentRevisionAnnotation]: rev };
    if (patched?.metadata?.resourceVersion) this.d.metadata.resourceVersion = patched.metadata.resourceVersion;
  }

  // ---- scaling ----

  /** scaleReplicaSetAndRecordEvent: returns whether the size changed, and the ReplicaSet as written. */
  private async scaleReplicaSet(rs: Readonly<ReplicaSet>, newScale: number): Promise<{ scaled: boolean; rs: Readonly<ReplicaSet> }> {
    const d = this.d;
    const cur = rsReplicas(rs);
    const sizeNeedsUpdate = cur !== newScale;
    const desired = deploymentReplicas(d);
    const max = desired + maxSurge(d);
    if (!sizeNeedsUpdate && !replicasAnnotationsNeedUpdate(rs, desired, max)) return { scaled: false, rs };
    const copy = deepCopy(rs);
    copy.spec = { ...(copy.spec ?? { selector: {} }), replicas: newScale };
    setReplicasAnnotations(copy, desired, max);
    const updated = await this.c.rsClient.update(copy);
    this.remember(updated);
    if (sizeNeedsUpdate) {
      const op = newScale > cur ? "up" : "down";
      this.c.deps.recorder.event(d, "Normal", "ScalingReplicaSet", `Scaled ${op} replica set ${rs.metadata.name} from ${cur} to ${newScale}`);
    }
    return { scaled: sizeNeedsUpdate, rs: updated };
  }

  /** isScalingEvent: some active ReplicaSet was sized for a different spec.replicas than the Deployment's now. */
  private async isScalingEvent(): Promise<boolean> {
    const { newRS, oldRSs } = await this.getAllReplicaSets(false);
    const want = String(deploymentReplicas(this.d));
    for (const rs of activeReplicaSets([...oldRSs, newRS])) {
      const desired = rs.metadata.annotations?.["deployment.kubernetes.io/desired-replicas"];
      if (desired !== undefined && desired !== want) return true;
    }
    return false;
  }

  /**
   * scale: a scaling event (or a paused Deployment) resizes ReplicaSets without rolling: the single
   * active one takes the full count; a saturated new one means old ones go to 0; otherwise extra
   * (or fewer) replicas are shared out in proportion to each ReplicaSet's size.
   */
  private async scale(newRS: Readonly<ReplicaSet> | undefined, oldRSs: readonly Readonly<ReplicaSet>[]): Promise<void> {
    const d = this.d;
    const activeOrLatest = findActiveOrLatest(newRS, oldRSs);
    if (activeOrLatest) {
      if (rsReplicas(activeOrLatest) === deploymentReplicas(d)) return;
      await this.scaleReplicaSet(activeOrLatest, deploymentReplicas(d));
      return;
    }
    if (isSaturated(d, newRS)) {
      for (const old of activeReplicaSets(oldRSs)) await this.scaleReplicaSet(old, 0);
      return;
    }
    if (!isRollingUpdate(d)) return;
    const all = activeReplicaSets([...oldRSs, newRS]);
    const allowed = deploymentReplicas(d) > 0 ? deploymentReplicas(d) + maxSurge(d) : 0;
    const toAdd = allowed - replicaCount(all);
    if (toAdd > 0) sortBySizeNewer(all);
    else if (toAdd < 0) sortBySizeOlder(all);
    let added = 0;
    const sizes = new Map<string, number>();
    for (const rs of all) {
      const p = toAdd !== 0 ? getProportion(rs, d, toAdd, added) : 0;
      sizes.set(rs.metadata.uid ?? "", rsReplicas(rs) + p);
      added += p;
    }
    for (let i = 0; i < all.length; i++) {
      const rs = all[i];
      let size = sizes.get(rs.metadata.uid ?? "") ?? rsReplicas(rs);
      // Leftovers from rounding go to the largest ReplicaSet.
      if (i === 0 && toAdd !== 0) size = Math.max(0, size + (toAdd - added));
      await this.scaleReplicaSet(rs, size);
    }
  }

  // ---- strategies ----

  /** sync: scaling and status without rollout progress (paused, or a pure scaling event). */
  private async sync(): Promise<Result> {
    const { newRS, oldRSs } = await this.getAllReplicaSets(false);
    await this.scale(newRS, oldRSs);
    if (this.d.spec?.paused) await this.cleanupDeployment(oldRSs.map((rs) => this.latest(rs)));
    return this.syncDeploymentStatus(newRS);
  }

  private async syncStatusOnly(): Promise<Result> {
    const { newRS } = await this.getAllReplicaSets(false);
    return this.syncDeploymentStatus(newRS);
  }

  private async rolloutRolling(): Promise<Result> {
    const { newRS, oldRSs } = await this.getAllReplicaSets(true);
    const rs = newRS!;
    if (await this.reconcileNewReplicaSet(rs)) return this.syncRolloutStatus(rs);
    const activeOld = activeReplicaSets(oldRSs);
    if (await this.reconcileOldReplicaSets(activeOld, this.latest(rs))) return this.syncRolloutStatus(rs);
    if (deploymentComplete(this.d, this.d.status ?? {})) await this.cleanupDeployment(oldRSs.map((r) => this.latest(r)));
    return this.syncRolloutStatus(rs);
  }

  /** reconcileNewReplicaSet: grow the new ReplicaSet as far as maxSurge allows (or shrink it to spec.replicas). */
  private async reconcileNewReplicaSet(newRS: Readonly<ReplicaSet>): Promise<boolean> {
    const want = deploymentReplicas(this.d);
    if (rsReplicas(newRS) === want) return false;
    if (rsReplicas(newRS) > want) return (await this.scaleReplicaSet(newRS, want)).scaled;
    const count = newRSNewReplicas(this.d, this.rsList, newRS);
    return (await this.scaleReplicaSet(newRS, count)).scaled;
  }

  /**
   * reconcileOldReplicaSets: shrink old ReplicaSets as far as maxUnavailable allows, counting the
   * new ReplicaSet's unavailable pods against the budget so a broken rollout cannot eat availability.
   */
  private async reconcileOldReplicaSets(oldRSs: Readonly<ReplicaSet>[], newRS: Readonly<ReplicaSet>): Promise<boolean> {
    if (replicaCount(oldRSs) === 0) return false;
    const allPods = replicaCount(this.rsList);
    const minAvailable = deploymentReplicas(this.d) - maxUnavailable(this.d);
    const newUnavailable = rsReplicas(newRS) - (newRS.status?.availableReplicas ?? 0);
    const maxScaledDown = allPods - minAvailable - newUnavailable;
    if (maxScaledDown <= 0) return false;
    // Unhealthy old replicas go first: removing them costs no availability (kubernetes#16737).
    const cleaned = await this.cleanupUnhealthyReplicas(oldRSs, maxScaledDown);
    const scaledDown = await this.scaleDownOldReplicaSetsForRollingUpdate(oldRSs.map((rs) => this.latest(rs)), newRS);
    return cleaned + scaledDown > 0;
  }

  private async cleanupUnhealthyReplicas(oldRSs: Readonly<ReplicaSet>[], maxCleanup: number): Promise<number> {
    let total = 0;
    for (const rs of sortByCreation([...oldRSs])) {
      if (total >= maxCleanup) break;
      const replicas = rsReplicas(rs);
      const available = rs.status?.availableReplicas ?? 0;
      if (replicas === 0 || replicas === available) continue;
      const n = Math.min(maxCleanup - total, replicas - available);
      await this.scaleReplicaSet(rs, replicas - n);
      total += n;
    }
    return total;
  }

  private async scaleDownOldReplicaSetsForRollingUpdate(oldRSs: Readonly<ReplicaSet>[], newRS: Readonly<ReplicaSet>): Promise<number> {
    const minAvailable = deploymentReplicas(this.d) - maxUnavailable(this.d);
    const available = availableReplicaCount([...oldRSs, newRS]);
    if (available <= minAvailable) return 0;
    const budget = available - minAvailable;
    let total = 0;
    for (const rs of sortByCreation([...oldRSs])) {
      if (total >= budget) break;
      const replicas = rsReplicas(rs);
      if (replicas === 0) continue;
      const n = Math.min(replicas, budget - total);
      await this.scaleReplicaSet(rs, replicas - n);
      total += n;
    }
    return total;
  }

  private async rolloutRecreate(): Promise<Result> {
    let { newRS, oldRSs } = await this.getAllReplicaSets(false);
    let scaledDown = false;
    for (const rs of activeReplicaSets(oldRSs)) {
      if ((await this.scaleReplicaSet(rs, 0)).scaled) scaledDown = true;
    }
    if (scaledDown) return this.syncRolloutStatus(newRS);
    // Recreate promises no old and new pod ever run together: wait until every old pod is gone.
    if (this.oldPodsRunning(newRS, oldRSs)) return this.syncRolloutStatus(newRS);
    if (!newRS) ({ newRS, oldRSs } = await this.getAllReplicaSets(true));
    await this.scaleReplicaSet(this.latest(newRS!), deploymentReplicas(this.d));
    if (deploymentComplete(this.d, this.d.status ?? {})) await this.cleanupDeployment(oldRSs.map((r) => this.latest(r)));
    return this.syncRolloutStatus(newRS);
  }

  /** oldPodsRunning: old ReplicaSets still report pods, or pods they own are not finished. */
  private oldPodsRunning(newRS: Readonly<ReplicaSet> | undefined, oldRSs: readonly Readonly<ReplicaSet>[]): boolean {
    if (actualReplicaCount(oldRSs) > 0) return true;
    const oldUIDs = new Set(oldRSs.map((rs) => rs.metadata.uid));
    const pods = this.c.deps.pods.listNamespace(this.d.metadata.namespace ?? "", this.selector);
    return pods.some((p) => {
      const owner = getControllerOf(p)?.uid;
      if (!owner || owner === newRS?.metadata.uid || !oldUIDs.has(owner)) return false;
      const phase = p.status?.phase;
      return phase !== "Failed" && phase !== "Succeeded";
    });
  }

  /** cleanupDeployment: deletes the oldest empty ReplicaSets beyond revisionHistoryLimit. */
  private async cleanupDeployment(oldRSs: Readonly<ReplicaSet>[]): Promise<void> {
    const limit = revisionHistoryLimit(this.d);
    if (limit === undefined) return;
    const alive = oldRSs.filter((rs) => !rs.metadata.deletionTimestamp);
    const diff = alive.length - limit;
    if (diff <= 0) return;
    sortByRevision(alive);
    for (let i = 0; i < diff; i++) {
      const rs = alive[i];
      // Never delete a ReplicaSet with pods, or one whose latest spec its controller has not yet seen.
      if ((rs.status?.replicas ?? 0) !== 0 || rsReplicas(rs) !== 0 || (rs.metadata.generation ?? 0) > (rs.status?.observedGeneration ?? 0)) continue;
      this.ctx.log.debug({ replicaSet: keyOf(rs) }, "deleting old replica set beyond revisionHistoryLimit");
      try {
        await this.c.rsClient.delete(rs.metadata.namespace ?? "", rs.metadata.name ?? "");
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
  }

  // ---- status ----

  /** checkPausedConditions: Progressing=Unknown while paused (DeploymentPaused), and on resume (DeploymentResumed). */
  private checkPausedConditions(): void {
    const d = this.d;
    if (!hasProgressDeadline(d)) return;
    const cond = getCondition(d.status, "Progressing");
    if (cond?.reason === TimedOutReason) return;
    const pausedExists = cond?.reason === PausedDeployReason;
    const now = rfc3339(this.now);
    if (d.spec?.paused && !pausedExists) {
      this.setStatusCondition(newCondition("Progressing", "Unknown", PausedDeployReason, "Deployment is paused", now));
    } else if (!d.spec?.paused && pausedExists) {
      this.setStatusCondition(newCondition("Progressing", "Unknown", ResumedDeployReason, "Deployment is resumed", now));
    }
  }

  private setStatusCondition(cond: ReturnType<typeof newCondition>): void {
    const status = this.d.status ?? {};
    setCondition(status, cond);
    this.d.status = status;
  }

  /** calculateStatus: counts from the ReplicaSets, plus the Available condition. */
  private calculateStatus(newRS: Readonly<ReplicaSet> | undefined): DeploymentStatus {
    const d = this.d;
    const all = this.rsList;
    const available = availableReplicaCount(all);
    const total = replicaCount(all);
    const status: DeploymentStatus = {
      observedGeneration: d.metadata.generation,
      replicas: actualReplicaCount(all),
      updatedReplicas: actualReplicaCount(newRS ? [this.latest(newRS)] : []),
      readyReplicas: readyReplicaCount(all),
      availableReplicas: available,
      unavailableReplicas: Math.max(0, total - available),
    };
    if (d.status?.collisionCount !== undefined) status.collisionCount = d.status.collisionCount;
    if (d.status?.conditions) status.conditions = d.status.conditions.map((c) => ({ ...c }));
    const now = rfc3339(this.now);
    if (available >= deploymentReplicas(d) - maxUnavailable(d)) {
      setCondition(status, newCondition("Available", "True", MinimumReplicasAvailable, "Deployment has minimum availability.", now));
    } else {
      setCondition(status, newCondition("Available", "False", MinimumReplicasUnavailable, "Deployment does not have minimum availability.", now));
    }
    return status;
  }

  private async syncDeploymentStatus(newRS: Readonly<ReplicaSet> | undefined): Promise<Result> {
    const status = this.calculateStatus(newRS);
    if (!statusEqual(this.origStatus, status)) await this.writeStatus(status);
    return {};
  }

  /** syncRolloutStatus: the Progressing condition (progress, completion, deadline) and ReplicaFailure, then status. */
  private async syncRolloutStatus(newRS: Readonly<ReplicaSet> | undefined): Promise<Result> {
    const d = this.d;
    const status = this.calculateStatus(newRS);
    if (!hasProgressDeadline(d)) removeCondition(status, "Progressing");
    const cur = getCondition(d.status, "Progressing");
    const complete = status.replicas === status.updatedReplicas && cur?.reason === NewRSAvailableReason;
    const now = rfc3339(this.now);
    const what = newRS ? `ReplicaSet "${newRS.metadata.name}"` : `Deployment "${d.metadata.name}"`;
    if (hasProgressDeadline(d) && !complete) {
      if (deploymentComplete(d, status)) {
        setCondition(status, newCondition("Progressing", "True", NewRSAvailableReason, `${what} has successfully progressed.`, now));
      } else if (deploymentProgressing(d, status)) {
        const cond = newCondition("Progressing", "True", ReplicaSetUpdatedReason, `${what} is progressing.`, now);
        if (cur) {
          if (cur.status === "True" && cur.lastTransitionTime) cond.lastTransitionTime = cur.lastTransitionTime;
          removeCondition(status, "Progressing");
        }
        setCondition(status, cond);
      } else if (deploymentTimedOut(d, status, this.now)) {
        setCondition(status, newCondition("Progressing", "False", TimedOutReason, `${what} has timed out progressing.`, now));
      }
    }
    const failure = this.replicaFailure(newRS);
    if (failure) setCondition(status, failure);
    else removeCondition(status, "ReplicaFailure");
    if (!statusEqual(this.origStatus, status)) await this.writeStatus(status);
    return this.requeueStuckDeployment(status);
  }

  /** getReplicaFailures: the new ReplicaSet's ReplicaFailure condition (else an old one's), lifted to the Deployment. */
  private replicaFailure(newRS: Readonly<ReplicaSet> | undefined): ReturnType<typeof newCondition> | undefined {
    const order = newRS ? [this.latest(newRS), ...this.rsList.filter((r) => r.metadata.uid !== newRS.metadata.uid)] : this.rsList;
    for (const rs of order) {
      const c = rs.status?.conditions?.find((x) => x.type === "ReplicaFailure");
      if (c) {
        const existing = getCondition(this.d.status, "ReplicaFailure");
        const t = c.lastTransitionTime ?? rfc3339(this.now);
        return { type: "ReplicaFailure", status: c.status, reason: c.reason, message: c.message, lastUpdateTime: existing?.lastUpdateTime ?? t, lastTransitionTime: t };
      }
    }
    return undefined;
  }

  /** requeueStuckDeployment: wake up when the progress deadline would pass, since no event will. */
  private requeueStuckDeployment(status: DeploymentStatus): Result {
    const cond = getCondition(status, "Progressing");
    if (!hasProgressDeadline(this.d) || !cond || cond.reason === TimedOutReason || cond.reason === NewRSAvailableReason) return {};
    if (cond.status !== "True") return {};
    if (deploymentComplete(this.d, status)) return {};
    const from = Date.parse(cond.lastUpdateTime ?? "");
    if (Number.isNaN(from)) return {};
    const after = from + progressDeadlineSeconds(this.d) * 1000 - this.now;
    if (after < 1000) return { requeue: true };
    return { requeueAfterMs: after + 1000 };
  }

  private async writeStatus(status: DeploymentStatus): Promise<void> {
    const obj = deepCopy(this.d);
    obj.status = status;
    const updated = await this.c.dClient.updateStatus(obj);
    this.d.status = status;
    if (updated?.metadata?.resourceVersion) this.d.metadata.resourceVersion = updated.metadata.resourceVersion;
  }
}

/** Status equality as reflect.DeepEqual on the Go struct: a missing count is 0. */
function statusEqual(a: DeploymentStatus | undefined, b: DeploymentStatus | undefined): boolean {
  const norm = (s: DeploymentStatus | undefined) => ({
    observedGeneration: s?.observedGeneration ?? 0,
    replicas: s?.replicas ?? 0,
    updatedReplicas: s?.updatedReplicas ?? 0,
    readyReplicas: s?.readyReplicas ?? 0,
    availableReplicas: s?.availableReplicas ?? 0,
    unavailableReplicas: s?.unavailableReplicas ?? 0,
    terminatingReplicas: s?.terminatingReplicas,
    collisionCount: s?.collisionCount,
    conditions: s?.conditions?.length ? s.conditions : undefined,
  });
  return canonicalJSON(norm(a)) === canonicalJSON(norm(b));
}

// ---------------------------------------------------------------------------------------------
// Event handlers: the harness wires these to the ReplicaSet and pod informers and adds the keys.

export class DeploymentHandlers {
  constructor(private readonly deps: { deployments: Lister<Deployment>; replicaSets: Lister<ReplicaSet> }) {}

  /** A ReplicaSet changed: its owning Deployment, or — for an orphan — every Deployment that selects it. */
  replicaSetEventKeys(rs: Readonly<ReplicaSet>): ObjectKey[] {
    const owner = this.resolveOwner(rs);
    if (owner) return [keyOf(owner)];
    if (getControllerOf(rs)) return [];
    return this.matchingDeployments(rs).map(keyOf);
  }

  /** Both the old and the new owner hear about a ReplicaSet whose controller reference changed. */
  onReplicaSetUpdate(oldRS: Readonly<ReplicaSet>, cur: Readonly<ReplicaSet>): ObjectKey[] {
    if (oldRS.metadata.resourceVersion === cur.metadata.resourceVersion) return [];
    const keys = new Set<ObjectKey>(this.replicaSetEventKeys(cur));
    const oldOwner = this.resolveOwner(oldRS);
    if (oldOwner) keys.add(keyOf(oldOwner));
    return [...keys];
  }

  /** A pod was deleted: a Recreate Deployment may be waiting for its old pods to be gone. */
  podDeleteKeys(pod: Readonly<Pod>): ObjectKey[] {
    const ref = getControllerOf(pod);
    if (!ref || ref.kind !== "ReplicaSet") return [];
    const rs = this.deps.replicaSets.get(`${pod.metadata.namespace ?? ""}/${ref.name}`);
    if (!rs || rs.metadata.uid !== ref.uid) return [];
    const d = this.resolveOwner(rs);
    if (!d || d.spec?.strategy?.type !== "Recreate") return [];
    return [keyOf(d)];
  }

  private resolveOwner(rs: Readonly<ReplicaSet>): Readonly<Deployment> | undefined {
    const ref = getControllerOf(rs);
    if (!ref || ref.kind !== DeploymentGVK.kind) return undefined;
    const d = this.deps.deployments.get(`${rs.metadata.namespace ?? ""}/${ref.name}`);
    return d && d.metadata.uid === ref.uid ? d : undefined;
  }

  private matchingDeployments(rs: Readonly<ReplicaSet>): Readonly<Deployment>[] {
    return this.deps.deployments.listNamespace(rs.metadata.namespace ?? "").filter((d) => {
      try {
        const sel = labelSelectorAsSelector(d.spec?.selector);
        return !sel.empty() && sel.matches(rs.metadata.labels);
      } catch {
        return false;
      }
    });
  }
}
