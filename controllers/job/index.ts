// The Job controller: runs a Job's pods to completion — parallelism and completions, backoffLimit,
// activeDeadlineSeconds, suspend — counting each finished pod exactly once through the
// batch.kubernetes.io/job-tracking finalizer and status.uncountedTerminatedPods, as upstream does.

import { labelSelectorAsSelector, type Job, type JobCondition, type JobStatus, type Pod, type PodTemplateSpec, type Selector } from "../../api/index.ts";
import { isConflict, isNotFound, TerminalError } from "../../client/errors.ts";
import type { Client, Clock, EventRecorder, Lister, ObjectKey, ReconcileContext, Reconciler, ResourceClient, Result } from "../../client/types.ts";
import type { Expectations } from "../expectations.ts";
import {
  ControllerRefManager,
  deepCopy,
  errorMessage,
  getControllerOf,
  isPodActive,
  isPodReady,
  keyOf,
  newControllerRef,
  parseTime,
  PodControl,
  recheckController,
  rfc3339,
  slowStartBatch,
} from "../podcontrol.ts";

export const JobGVK = { apiVersion: "batch/v1", kind: "Job" } as const;
/** Put on every pod the controller creates; removed once the pod's outcome is in the Job's status. */
export const JobTrackingFinalizer = "batch.kubernetes.io/job-tracking";
/** Upstream's MaxPodCreateDeletePerSync. */
export const MaxPodCreateDeletePerSync = 500;
/** Default spec.backoffLimit. */
export const DefaultBackoffLimit = 6;

export interface JobControllerDeps {
  client: Client;
  jobs: Lister<Job>;
  pods: Lister<Pod>;
  expectations: Expectations;
  /** Pods whose tracking finalizer this controller removed and the informer has not yet shown without it. */
  finalizerExpectations: FinalizerExpectations;
  recorder: EventRecorder;
  clock?: Pick<Clock, "now">;
}

/**
 * Upstream's uidTrackingExpectations for finalizer removals: until the cache shows a pod without
 * its tracking finalizer, that pod must not be counted again — its uid already left
 * uncountedTerminatedPods for the succeeded/failed counters.
 */
export class FinalizerExpectations {
  private readonly byJob = new Map<ObjectKey, Set<string>>();

  expectRemoval(jobKey: ObjectKey, uid: string): void {
    let s = this.byJob.get(jobKey);
    if (!s) this.byJob.set(jobKey, (s = new Set()));
    s.add(uid);
  }

  /** The cache showed the pod without the finalizer (or gone), or the removal failed. */
  removalObserved(jobKey: ObjectKey, uid: string): void {
    const s = this.byJob.get(jobKey);
    if (!s) return;
    s.delete(uid);
    if (s.size === 0) this.byJob.delete(jobKey);
  }

  expected(jobKey: ObjectKey): ReadonlySet<string> {
    return this.byJob.get(jobKey) ?? new Set();
  }

  delete(jobKey: ObjectKey): void {
    this.byJob.delete(jobKey);
  }
}

export function hasTrackingFinalizer(pod: Readonly<Pod>): boolean {
  return pod.metadata.finalizers?.includes(JobTrackingFinalizer) ?? false;
}

/** Failed, or deleted before it succeeded — so orphaned and evicted pods count as failures (isPodFailed). */
export function isPodFailed(pod: Readonly<Pod>): boolean {
  if (pod.status?.phase === "Failed") return true;
  return pod.metadata.deletionTimestamp !== undefined && pod.status?.phase !== "Succeeded";
}

function condition(job: Readonly<Job>, type: string): Readonly<JobCondition> | undefined {
  return job.status?.conditions?.find((c) => c.type === type);
}

/** Complete or Failed is True (util.IsJobFinished). */
export function isJobFinished(job: Readonly<Job>): boolean {
  return (job.status?.conditions ?? []).some((c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True");
}

/** When the Job finished: completionTime, else the finishing condition's lastTransitionTime (ms; 0 if unknown). */
export function jobFinishTime(job: Readonly<Job>): number {
  const c = (job.status?.conditions ?? []).find((x) => (x.type === "Complete" || x.type === "Failed") && x.status === "True");
  if (!c) return 0;
  return parseTime(job.status?.completionTime) || parseTime(c.lastTransitionTime);
}

interface FinishedCondition {
  type: "Complete" | "Failed";
  reason: string;
  message: string;
}

/** uncountedTerminatedPods as sets, keeping insertion order for a stable status. */
class Uncounted {
  readonly succeeded: Set<string>;
  readonly failed: Set<string>;
  constructor(u: JobStatus["uncountedTerminatedPods"]) {
    this.succeeded = new Set(u?.succeeded ?? []);
    this.failed = new Set(u?.failed ?? []);
  }
  has(uid: string): boolean {
    return this.succeeded.has(uid) || this.failed.has(uid);
  }
  toStatus(): NonNullable<JobStatus["uncountedTerminatedPods"]> {
    const out: NonNullable<JobStatus["uncountedTerminatedPods"]> = {};
    if (this.succeeded.size) out.succeeded = [...this.succeeded];
    if (this.failed.size) out.failed = [...this.failed];
    return out;
  }
}

export class JobController implements Reconciler {
  private readonly jobClient: ResourceClient<Job>;
  private readonly podClient: ResourceClient<Pod>;
  private readonly podControl: PodControl;
  private readonly clock: Pick<Clock, "now">;

  constructor(private readonly deps: JobControllerDeps) {
    this.jobClient = deps.client.resource<Job>("batch", "jobs");
    this.podClient = deps.client.resource<Pod>("", "pods");
    this.podControl = new PodControl(deps.client, deps.recorder);
    this.clock = deps.clock ?? { now: () => Date.now() };
  }

  async reconcile(ctx: ReconcileContext, key: ObjectKey): Promise<Result> {
    const { jobs, expectations, finalizerExpectations } = this.deps;
    const job = jobs.get(key);
    if (!job) {
      expectations.delete(key);
      finalizerExpectations.delete(key);
      await this.releaseOrphans(key, undefined);
      return {};
    }
    // Pods left behind by an earlier Job of the same name hold finalizers nobody else removes.
    await this.releaseOrphans(key, job);
    if (isJobFinished(job)) {
      // Every counted pod lost its finalizer before the Job finished; this is only a backstop.
      await this.removeFinalizers(key, this.ownedPods(job).filter(hasTrackingFinalizer));
      return {};
    }

    // Read before listing pods: an observation arriving in between makes us wait a round, never act twice.
    const needsSync = expectations.satisfied(key);
    let selector: Selector;
    try {
      selector = labelSelectorAsSelector(job.spec?.selector);
    } catch (e) {
      throw new TerminalError(`invalid selector on Job ${key}: ${errorMessage(e)}`, { cause: e });
    }
    const pods = await this.claimPods(job, selector);
    const activePods = pods.filter(isPodActive);
    let active = activePods.length;
    const uncounted = new Uncounted(job.status?.uncountedTerminatedPods);
    const expectedRm = finalizerExpectations.expected(key);

    // Outcomes not yet in the status: pods still carrying the finalizer, not already uncounted.
    let newSucceeded = 0;
    let newFailed = 0;
    for (const p of pods) {
      if (!hasTrackingFinalizer(p) || expectedRm.has(p.metadata.uid ?? "") || uncounted.has(p.metadata.uid ?? "")) continue;
      if (p.status?.phase === "Succeeded") newSucceeded++;
      else if (isPodFailed(p)) newFailed++;
    }
    const succeeded = (job.status?.succeeded ?? 0) + uncounted.succeeded.size + newSucceeded;
    const failed = (job.status?.failed ?? 0) + uncounted.failed.size + newFailed;

    const now = this.clock.now();
    const status: JobStatus = deepCopy(job.status ?? {});
    const suspended = job.spec?.suspend === true;
    let requeueAfterMs: number | undefined;
    if (!status.startTime && !suspended) status.startTime = rfc3339(now);

    let finished: FinishedCondition | undefined;
    const backoffLimit = job.spec?.backoffLimit ?? DefaultBackoffLimit;
    const deadline = job.spec?.activeDeadlineSeconds;
    if (failed > backoffLimit) {
      finished = { type: "Failed", reason: "BackoffLimitExceeded", message: "Job has reached the specified backoff limit" };
    } else if (deadline !== undefined && status.startTime && !suspended) {
      const remaining = parseTime(status.startTime) + deadline * 1000 - now;
      if (remaining <= 0) finished = { type: "Failed", reason: "DeadlineExceeded", message: "Job was active longer than specified deadline" };
      else requeueAfterMs = remaining;
    }

    let manageErr: unknown;
    // Pods whose finalizer deleteJobPods already removed in this round: no second patch.
    const finalizerGone = new Set<string>();
    if (finished) {
      // Upstream counts the pods it kills on failure as failed: they are terminated, not finished.
      active -= await this.deleteJobPods(ctx, key, job, activePods, finalizerGone);
    } else {
      if (needsSync && !job.metadata.deletionTimestamp) {
        try {
          active = await this.manageJob(ctx, key, job, activePods, succeeded, finalizerGone);
        } catch (e) {
          manageErr = e;
        }
      }
      const completions = job.spec?.completions;
      const complete = completions === undefined ? succeeded > 0 && active === 0 : succeeded >= completions;
      if (complete) {
        finished = { type: "Complete", reason: "CompletionsReached", message: "Reached expected number of succeeded pods" };
      } else if (job.spec?.suspend !== undefined) {
        this.setSuspended(job, status, suspended, now);
      }
    }

    status.active = active;
    status.ready = activePods.filter(isPodReady).length;
    await this.trackStatusAndRemoveFinalizers(key, job, pods, uncounted, status, finished, finalizerGone, now);
    if (manageErr !== undefined) throw manageErr;
    if (finished) return {};
    return requeueAfterMs !== undefined ? { requeueAfterMs } : {};
  }

  /** Suspended condition and startTime on suspend/resume (upstream resets startTime so the deadline restarts). */
  private setSuspended(job: Readonly<Job>, status: JobStatus, suspended: boolean, now: number): void {
    const cur = condition(job, "Suspended");
    if (suspended && cur?.status !== "True") {
      status.conditions = upsertCondition(status.conditions, { type: "Suspended", status: "True", reason: "JobSuspended", message: "Job suspended" }, now);
      // The deadline counts only while running.
      if (job.spec?.activeDeadlineSeconds !== undefined) delete status.startTime;
      this.deps.recorder.event(job, "Normal", "Suspended", "Job suspended");
    } else if (!suspended && cur?.status === "True") {
      status.conditions = upsertCondition(status.conditions, { type: "Suspended", status: "False", reason: "JobResumed", message: "Job resumed" }, now);
      status.startTime = rfc3339(now);
      this.deps.recorder.event(job, "Normal", "Resumed", "Job resumed");
    }
  }

  /** Pods in the Job's namespace that it controls (adopting matching orphans, releasing strays). */
  private claimPods(job: Readonly<Job>, selector: Selector): Promise<Readonly<Pod>[]> {
    const m = new ControllerRefManager<Pod>({
      controller: job,
      gvk: JobGVK,
      selector,
      children: this.podClient,
      canAdopt: () => recheckController(this.jobClient, job),
    });
    return m.claim(this.deps.pods.listNamespace(job.metadata.namespace ?? ""));
  }

  private ownedPods(job: Readonly<Job>): Readonly<Pod>[] {
    return this.deps.pods.listNamespace(job.metadata.namespace ?? "").filter((p) => getControllerOf(p)?.uid === job.metadata.uid);
  }

  /**
   * Creates or deletes pods so that min(parallelism, completions − succeeded) run (upstream's
   * wantActive); while suspended, deletes every active pod. Returns the active count afterwards.
   */
  private async manageJob(ctx: ReconcileContext, key: ObjectKey, job: Readonly<Job>, activePods: readonly Readonly<Pod>[], succeeded: number, finalizerGone: Set<string>): Promise<number> {
    const active = activePods.length;
    if (job.spec?.suspend) return active - (await this.deleteJobPods(ctx, key, job, activePods, finalizerGone));

    const parallelism = job.spec?.parallelism ?? 1;
    const completions = job.spec?.completions;
    let wantActive: number;
    if (completions === undefined) {
      // A work queue: once one pod succeeded, let the others finish but start no more.
      wantActive = succeeded > 0 ? active : parallelism;
    } else {
      wantActive = Math.max(0, Math.min(completions - succeeded, parallelism));
    }

    const surplus = active - wantActive;
    if (surplus > 0) {
      // Not ready before ready, newest first: the cheapest pods to lose.
      const victims = [...activePods].sort(byDeletionPreference).slice(0, Math.min(surplus, MaxPodCreateDeletePerSync));
      return active - (await this.deleteJobPods(ctx, key, job, victims, finalizerGone));
    }
    if (active >= wantActive) return active;

    const n = Math.min(wantActive - active, MaxPodCreateDeletePerSync);
    const template = withTrackingFinalizer(job.spec?.template ?? {});
    const ref = newControllerRef(job, JobGVK);
    const ns = job.metadata.namespace ?? "";
    this.deps.expectations.expectCreations(key, n);
    ctx.log.debug({ job: key, need: n }, "too few active pods, creating");
    const { successes, error } = await slowStartBatch(n, 1, async () => {
      await this.podControl.createPod(ns, template, job, ref);
    });
    for (let i = 0; i < n - successes; i++) this.deps.expectations.creationObserved(key);
    if (error !== undefined) throw error;
    return active + successes;
  }

  /**
   * Removes the tracking finalizer, then deletes each pod (upstream's deleteJobPods). Returns how
   * many were deleted (NotFound counts: the pod is gone either way); throws the first other error.
   */
  private async deleteJobPods(ctx: ReconcileContext, key: ObjectKey, job: Readonly<Job>, pods: readonly Readonly<Pod>[], finalizerGone: Set<string>): Promise<number> {
    if (pods.length === 0) return 0;
    const { expectations } = this.deps;
    const ns = job.metadata.namespace ?? "";
    expectations.expectDeletions(key, pods.map((p) => p.metadata.uid ?? ""));
    ctx.log.debug({ job: key, pods: pods.length }, "deleting active pods");
    const results = await Promise.allSettled(
      pods.map(async (pod) => {
        try {
          if (hasTrackingFinalizer(pod)) {
            await this.podClient.patch(ns, pod.metadata.name ?? "", "strategic", removeFinalizerPatch(pod));
            finalizerGone.add(pod.metadata.uid ?? "");
          }
          await this.podControl.deletePod(ns, pod.metadata.name ?? "", job);
        } catch (e) {
          expectations.deletionObserved(key, pod.metadata.uid ?? "");
          if (!isNotFound(e)) throw e;
        }
      }),
    );
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
    return results.length;
  }

  /**
   * upstream's trackJobStatusAndRemoveFinalizers + flushUncountedAndRemoveFinalizers: record the
   * uids of newly finished pods in status.uncountedTerminatedPods (a write), remove their
   * finalizers, then move the uids whose finalizers are gone into succeeded/failed and, once
   * nothing is uncounted, add the finished condition (a second write). Writes only on change.
   */
  private async trackStatusAndRemoveFinalizers(
    key: ObjectKey,
    job: Readonly<Job>,
    pods: readonly Readonly<Pod>[],
    uncounted: Uncounted,
    status: JobStatus,
    finished: FinishedCondition | undefined,
    finalizerGone: ReadonlySet<string>,
    now: number,
  ): Promise<void> {
    const expectedRm = this.deps.finalizerExpectations.expected(key);
    const toRemove: Readonly<Pod>[] = [];
    let grew = false;
    for (const p of pods) {
      const uid = p.metadata.uid ?? "";
      if (!hasTrackingFinalizer(p) || expectedRm.has(uid)) continue;
      const podFailed = isPodFailed(p);
      const terminal = p.status?.phase === "Succeeded" || p.status?.phase === "Failed";
      if (!(terminal || podFailed || finished || job.metadata.deletionTimestamp)) continue;
      if (!finalizerGone.has(uid)) toRemove.push(p);
      if (p.status?.phase === "Succeeded" && !uncounted.failed.has(uid)) {
        if (!uncounted.succeeded.has(uid)) (uncounted.succeeded.add(uid), (grew = true));
      } else if (podFailed || finished?.type === "Failed") {
        // When the Job fails, every pod not yet terminated counts as failed (upstream does the same).
        if (!uncounted.failed.has(uid)) (uncounted.failed.add(uid), (grew = true));
      }
    }

    let cur: Readonly<Job> = job;
    if (grew) {
      status.uncountedTerminatedPods = uncounted.toStatus();
      cur = await this.writeStatus(cur, status);
    }

    const removed = await this.removeFinalizers(key, toRemove);
    const withFinalizer = new Set<string>();
    for (const p of pods) {
      const uid = p.metadata.uid ?? "";
      if (hasTrackingFinalizer(p) && !expectedRm.has(uid) && !removed.has(uid) && !finalizerGone.has(uid)) withFinalizer.add(uid);
    }
    for (const uid of [...uncounted.succeeded]) {
      if (withFinalizer.has(uid)) continue;
      uncounted.succeeded.delete(uid);
      status.succeeded = (status.succeeded ?? 0) + 1;
    }
    for (const uid of [...uncounted.failed]) {
      if (withFinalizer.has(uid)) continue;
      uncounted.failed.delete(uid);
      status.failed = (status.failed ?? 0) + 1;
    }
    status.succeeded ??= 0;
    status.failed ??= 0;
    status.uncountedTerminatedPods = uncounted.toStatus();

    const finishing = finished !== undefined && uncounted.succeeded.size === 0 && uncounted.failed.size === 0;
    if (finishing) {
      status.conditions = upsertCondition(status.conditions, { type: finished.type, status: "True", reason: finished.reason, message: finished.message }, now);
      if (finished.type === "Complete") status.completionTime = rfc3339(now);
    }
    await this.writeStatus(cur, status);
    if (finishing) {
      if (finished.type === "Complete") this.deps.recorder.event(job, "Normal", "Completed", "Job completed");
      else this.deps.recorder.event(job, "Warning", finished.reason, finished.message);
    }
  }

  /** Removes the tracking finalizer from each pod; returns the uids it is now gone from. */
  private async removeFinalizers(key: ObjectKey, pods: readonly Readonly<Pod>[]): Promise<Set<string>> {
    const { finalizerExpectations } = this.deps;
    const removed = new Set<string>();
    const results = await Promise.allSettled(
      pods.map(async (p) => {
        const uid = p.metadata.uid ?? "";
        finalizerExpectations.expectRemoval(key, uid);
        try {
          await this.podClient.patch(p.metadata.namespace ?? "", p.metadata.name ?? "", "strategic", removeFinalizerPatch(p));
        } catch (e) {
          if (!isNotFound(e)) {
            finalizerExpectations.removalObserved(key, uid);
            throw e;
          }
        }
        removed.add(uid);
      }),
    );
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
    return removed;
  }

  /**
   * Pods whose controller reference names a Job `key` that no longer exists (or a different Job of
   * that name) still carry the tracking finalizer: without its removal they could never go away.
   */
  private async releaseOrphans(key: ObjectKey, job: Readonly<Job> | undefined): Promise<void> {
    const slash = key.indexOf("/");
    const ns = key.slice(0, slash);
    const name = key.slice(slash + 1);
    const orphans = this.deps.pods.listNamespace(ns).filter((p) => {
      const ref = getControllerOf(p);
      return hasTrackingFinalizer(p) && ref?.kind === JobGVK.kind && ref.name === name && ref.uid !== job?.metadata.uid;
    });
    if (orphans.length === 0) return;
    await Promise.all(
      orphans.map(async (p) => {
        try {
          await this.podClient.patch(ns, p.metadata.name ?? "", "strategic", removeFinalizerPatch(p));
        } catch (e) {
          if (!isNotFound(e)) throw e;
        }
      }),
    );
  }

  /** PUT status when it differs (one retry on conflict with a fresh read); returns the Job as it now stands. */
  private async writeStatus(job: Readonly<Job>, status: JobStatus): Promise<Readonly<Job>> {
    if (sameStatus(job.status, status)) return job;
    let obj = deepCopy(job);
    for (let attempt = 0; ; attempt++) {
      obj.status = status;
      try {
        return await this.jobClient.updateStatus(obj);
      } catch (e) {
        if (attempt >= 1 || !isConflict(e)) throw e;
        obj = await this.jobClient.get(job.metadata.namespace ?? "", job.metadata.name ?? "");
        // Someone else changed the status: our view of the counters is stale, start over.
        if (!sameStatus(obj.status, job.status ?? {})) throw e;
      }
    }
  }
}

/** Strategic merge patch dropping the tracking finalizer; metadata.uid fails it on a recreated pod. */
export function removeFinalizerPatch(pod: Readonly<Pod>): unknown {
  return { metadata: { "$deleteFromPrimitiveList/finalizers": [JobTrackingFinalizer], uid: pod.metadata.uid } };
}

function withTrackingFinalizer(template: Readonly<PodTemplateSpec>): PodTemplateSpec {
  const t = deepCopy(template);
  const finalizers = t.metadata?.finalizers ?? [];
  t.metadata = { ...t.metadata, finalizers: finalizers.includes(JobTrackingFinalizer) ? finalizers : [...finalizers, JobTrackingFinalizer] };
  return t;
}

/** Not ready before ready, then newer first. */
function byDeletionPreference(a: Readonly<Pod>, b: Readonly<Pod>): number {
  const ra = isPodReady(a);
  const rb = isPodReady(b);
  if (ra !== rb) return ra ? 1 : -1;
  return parseTime(b.metadata.creationTimestamp) - parseTime(a.metadata.creationTimestamp);
}

/** Sets a condition; lastTransitionTime moves only when its status changes. */
function upsertCondition(conditions: JobCondition[] | undefined, c: Omit<JobCondition, "lastProbeTime" | "lastTransitionTime">, now: number): JobCondition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((x) => x.type === c.type);
  const t = rfc3339(now);
  if (i < 0) return [...list, { ...c, lastProbeTime: t, lastTransitionTime: t }];
  const old = list[i]!;
  list[i] = { ...c, lastProbeTime: t, lastTransitionTime: old.status === c.status ? old.lastTransitionTime : t };
  return list;
}

function sameStatus(a: Readonly<JobStatus> | undefined, b: Readonly<JobStatus>): boolean {
  return JSON.stringify(normalize(a ?? {})) === JSON.stringify(normalize(b));
}

/** Zero counters and empty uncounted lists are the same as absent ones. */
function normalize(s: Readonly<JobStatus>): unknown {
  const u = s.uncountedTerminatedPods;
  return {
    conditions: s.conditions ?? [],
    startTime: s.startTime,
    completionTime: s.completionTime,
    active: s.active ?? 0,
    succeeded: s.succeeded ?? 0,
    failed: s.failed ?? 0,
    ready: s.ready ?? 0,
    terminating: s.terminating,
    completedIndexes: s.completedIndexes,
    failedIndexes: s.failedIndexes,
    uncounted: [u?.succeeded ?? [], u?.failed ?? []],
  };
}

// ---------------------------------------------------------------------------------------------
// Event handlers: the harness wires these to the pod informer and adds the returned keys.

/**
 * Maps pod events to Job keys, recording creation/deletion and finalizer-removal observations
 * (job_controller.go addPod/updatePod/deletePod). Every method returns the keys to enqueue.
 */
export class JobPodHandlers {
  constructor(private readonly deps: { jobs: Lister<Job>; expectations: Expectations; finalizerExpectations: FinalizerExpectations }) {}

  onPodAdd(pod: Readonly<Pod>): ObjectKey[] {
    if (pod.metadata.deletionTimestamp) return this.onPodDelete(pod);
    const owner = this.resolveOwner(pod);
    if (owner) {
      this.deps.expectations.creationObserved(keyOf(owner));
      return [keyOf(owner)];
    }
    return this.orphanKeys(pod);
  }

  onPodUpdate(oldPod: Readonly<Pod>, cur: Readonly<Pod>): ObjectKey[] {
    if (oldPod.metadata.resourceVersion === cur.metadata.resourceVersion) return [];
    const keys = new Set<ObjectKey>();
    const curOwner = this.resolveOwner(cur);
    if (curOwner && !hasTrackingFinalizer(cur)) this.deps.finalizerExpectations.removalObserved(keyOf(curOwner), cur.metadata.uid ?? "");
    if (cur.metadata.deletionTimestamp && !oldPod.metadata.deletionTimestamp && curOwner) {
      this.deps.expectations.deletionObserved(keyOf(curOwner), cur.metadata.uid ?? "");
    }
    const oldOwner = this.resolveOwner(oldPod);
    if (oldOwner && oldOwner.metadata.uid !== curOwner?.metadata.uid) keys.add(keyOf(oldOwner));
    if (curOwner) keys.add(keyOf(curOwner));
    else for (const k of this.orphanKeys(cur)) keys.add(k);
    return [...keys];
  }

  onPodDelete(pod: Readonly<Pod>): ObjectKey[] {
    const owner = this.resolveOwner(pod);
    if (!owner) return this.orphanKeys(pod);
    const key = keyOf(owner);
    this.deps.expectations.deletionObserved(key, pod.metadata.uid ?? "");
    this.deps.finalizerExpectations.removalObserved(key, pod.metadata.uid ?? "");
    return [key];
  }

  /** An orphan still carrying the tracking finalizer: its (former) Job's key, so reconcile releases it. */
  private orphanKeys(pod: Readonly<Pod>): ObjectKey[] {
    const ref = getControllerOf(pod);
    if (!ref || ref.kind !== JobGVK.kind || !hasTrackingFinalizer(pod)) return [];
    return [`${pod.metadata.namespace ?? ""}/${ref.name}`];
  }

  private resolveOwner(pod: Readonly<Pod>): Readonly<Job> | undefined {
    const ref = getControllerOf(pod);
    if (!ref || ref.kind !== JobGVK.kind) return undefined;
    const job = this.deps.jobs.get(`${pod.metadata.namespace ?? ""}/${ref.name}`);
    return job && job.metadata.uid === ref.uid ? job : undefined;
  }
}
