// The CronJob controller (upstream's controllerv2): at each scheduled time create a Job named
// `<cronjob>-<scheduled minutes since the epoch>` from the job template, honouring suspend,
// startingDeadlineSeconds and concurrencyPolicy; keep status.active, lastScheduleTime and
// lastSuccessfulTime; delete finished Jobs beyond the history limits; requeue for the next time.

import {
  CronJobScheduledTimestampAnnotation,
  formatRFC3339In,
  isValidTimeZone,
  parseSchedule,
  type CronJob,
  type Job,
  type ObjectReference,
  type Schedule,
} from "../../api/index.ts";
import { isAlreadyExists, isNotFound } from "../../client/errors.ts";
import type { Client, Clock, EventRecorder, Lister, ObjectKey, ReconcileContext, Reconciler, ResourceClient, Result } from "../../client/types.ts";
import { deepCopy, errorMessage, getControllerOf, newControllerRef, parseTime, rfc3339 } from "../podcontrol.ts";

export const CronJobGVK = { apiVersion: "batch/v1", kind: "CronJob" } as const;
/** Padding added to each requeue so clock skew does not wake the controller just before the time (nextScheduleDelta). */
export const NextScheduleDeltaMs = 100;
/** More missed start times than this and the controller says so (and starts only the most recent). */
export const MaxMissedSchedules = 100;
/** Work-queue timers are capped (Node's timers overflow past ~24.8 days); an early wake-up just requeues. */
const MAX_REQUEUE_MS = 24 * 3600_000;

export interface CronJobControllerDeps {
  client: Client;
  cronJobs: Lister<CronJob>;
  jobs: Lister<Job>;
  recorder: EventRecorder;
  clock?: Pick<Clock, "now">;
}

type Missed = "none" | "few" | "many";

function finishedCondition(job: Readonly<Job>): "Complete" | "Failed" | undefined {
  for (const c of job.status?.conditions ?? []) {
    if ((c.type === "Complete" || c.type === "Failed") && c.status === "True") return c.type;
  }
  return undefined;
}

export function isJobFinished(job: Readonly<Job>): boolean {
  return finishedCondition(job) !== undefined;
}

/** The Job name for a scheduled time: deterministic, so two syncs of one time create one Job. */
export function getJobName(cj: Readonly<CronJob>, scheduledMs: number): string {
  return `${cj.metadata.name ?? ""}-${Math.floor(Math.floor(scheduledMs / 1000) / 60)}`;
}

/**
 * The schedule as the controller runs it (formatSchedule + cron.ParseStandard): a TZ= prefix in the
 * schedule wins, else spec.timeZone, else the process's local time zone.
 */
export function cronJobSchedule(cj: Readonly<CronJob>): Schedule {
  const spec = cj.spec!;
  if (spec.schedule.includes("TZ")) return parseSchedule(spec.schedule);
  return parseSchedule(spec.schedule, spec.timeZone && isValidTimeZone(spec.timeZone) ? spec.timeZone : undefined);
}

/**
 * mostRecentScheduleTime: the earliest time considered (last schedule, or creation), the most
 * recent scheduled time not after `now` (undefined if none is due), and how many were missed.
 * Throws for a schedule whose consecutive times are under a second apart (or that never fires).
 */
export function mostRecentScheduleTime(
  cj: Readonly<CronJob>,
  now: number,
  schedule: Schedule,
  includeStartingDeadlineSeconds: boolean,
): { earliest: number; mostRecent?: number; missed: Missed } {
  let earliest = parseTime(cj.metadata.creationTimestamp);
  const last = parseTime(cj.status?.lastScheduleTime);
  if (last) earliest = last;
  const deadline = cj.spec?.startingDeadlineSeconds;
  if (includeStartingDeadlineSeconds && deadline !== undefined && deadline !== null) {
    // The controller is not going to schedule anything before this point.
    const schedulingDeadline = now - deadline * 1000;
    if (schedulingDeadline > earliest) earliest = schedulingDeadline;
  }
  const t1 = schedule.next(earliest);
  const t2 = t1 === undefined ? undefined : schedule.next(t1);
  if (t1 !== undefined && now < t1) return { earliest, missed: "none" };
  if (t1 !== undefined && t2 !== undefined && now < t2) return { earliest, mostRecent: t1, missed: "none" };
  // A schedule that parses but cannot fire (31 February) comes here as well.
  const between = t1 === undefined || t2 === undefined ? 0 : Math.round((t2 - t1) / 60_000) * 60;
  if (between < 1) throw new Error("time difference between two schedules is less than 1 second");
  // A rough count: how many intervals fit between the first missed time and now.
  const elapsed = Math.trunc((now - t1!) / 1000);
  const numberOfMissed = Math.floor(elapsed / between) + 1;
  // Step back one interval more than the count and let the schedule find the real times (irregular schedules).
  const potentialEarliest = t1! + (numberOfMissed - 2) * between * 1000;
  let mostRecent: number | undefined;
  for (let t = schedule.next(potentialEarliest); t !== undefined && t <= now; t = schedule.next(t)) mostRecent = t;
  const missed: Missed = numberOfMissed > MaxMissedSchedules ? "many" : numberOfMissed > 0 ? "few" : "none";
  return mostRecent === undefined ? { earliest, missed } : { earliest, mostRecent, missed };
}

/** How long until the next scheduled time after the most recent one, plus NextScheduleDeltaMs. */
export function nextScheduleTimeDuration(cj: Readonly<CronJob>, now: number, schedule: Schedule): number {
  let from: number;
  try {
    const r = mostRecentScheduleTime(cj, now, schedule, false);
    from = r.mostRecent ?? (r.missed === "none" ? r.earliest : now);
  } catch {
    // Still requeue at some point: aim for the next slot from now.
    from = now;
  }
  const next = schedule.next(from);
  if (next === undefined) return MAX_REQUEUE_MS;
  return Math.min(MAX_REQUEUE_MS, next + NextScheduleDeltaMs - now);
}

function jobRef(job: Readonly<Job>): ObjectReference {
  return {
    kind: "Job",
    namespace: job.metadata.namespace,
    name: job.metadata.name,
    uid: job.metadata.uid,
    apiVersion: "batch/v1",
    resourceVersion: job.metadata.resourceVersion,
  };
}

function inActiveList(cj: Readonly<CronJob>, uid: string | undefined): boolean {
  return (cj.status?.active ?? []).some((r) => r.uid === uid);
}

function deleteFromActiveList(cj: CronJob, uid: string | undefined): void {
  if (!cj.status?.active) return;
  cj.status.active = cj.status.active.filter((r) => r.uid !== uid);
}

/** Oldest first by status.startTime (unstarted last), then by name (byJobStartTime). */
function byJobStartTime(a: Readonly<Job>, b: Readonly<Job>): number {
  const sa = a.status?.startTime;
  const sb = b.status?.startTime;
  if (!sa && sb) return 1;
  if (sa && !sb) return -1;
  const ta = parseTime(sa);
  const tb = parseTime(sb);
  if (ta === tb) return (a.metadata.name ?? "") < (b.metadata.name ?? "") ? -1 : (a.metadata.name ?? "") > (b.metadata.name ?? "") ? 1 : 0;
  return ta - tb;
}

/** getJobFromTemplate2: the Job for one scheduled time, owned by the CronJob. */
export function getJobFromTemplate(cj: Readonly<CronJob>, scheduledMs: number): Job {
  const template = cj.spec!.jobTemplate;
  const annotations: Record<string, string> = { ...template.metadata?.annotations };
  annotations[CronJobScheduledTimestampAnnotation] = formatRFC3339In(scheduledMs, cj.spec!.timeZone);
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      name: getJobName(cj, scheduledMs),
      namespace: cj.metadata.namespace,
      labels: { ...template.metadata?.labels },
      annotations,
      ownerReferences: [newControllerRef(cj, CronJobGVK)],
    },
    spec: deepCopy(template.spec ?? { template: {} }),
  };
}

export class CronJobController implements Reconciler {
  private readonly cronJobClient: ResourceClient<CronJob>;
  private readonly jobClient: ResourceClient<Job>;
  private readonly clock: Pick<Clock, "now">;

  constructor(private readonly deps: CronJobControllerDeps) {
    this.cronJobClient = deps.client.resource<CronJob>("batch", "cronjobs");
    this.jobClient = deps.client.resource<Job>("batch", "jobs");
    this.clock = deps.clock ?? { now: () => Date.now() };
  }

  async reconcile(ctx: ReconcileContext, key: ObjectKey): Promise<Result> {
    const cached = this.deps.cronJobs.get(key);
    if (!cached) return {};
    // Jobs this CronJob controls, including ones whose labels no longer match the template.
    const jobs = this.deps.jobs
      .listNamespace(cached.metadata.namespace ?? "")
      .filter((j) => {
        const ref = getControllerOf(j);
        return ref !== undefined && ref.kind === "CronJob" && ref.uid === cached.metadata.uid;
      });
    const cj = deepCopy(cached);
    const cleaned = await this.cleanupFinishedJobs(ctx, cj, jobs);
    let sync: { requeueAfterMs?: number; updateStatus: boolean; error?: unknown };
    try {
      sync = await this.syncCronJob(ctx, cj, jobs);
    } catch (e) {
      sync = { updateStatus: true, error: e };
    }
    if (cleaned || sync.updateStatus) {
      if (!deepEqualStatus(cached, cj)) await this.cronJobClient.updateStatus(cj);
    }
    if (sync.requeueAfterMs !== undefined) return { requeueAfterMs: Math.max(1, sync.requeueAfterMs) };
    if (sync.error !== undefined) throw sync.error;
    return {};
  }

  private async syncCronJob(ctx: ReconcileContext, cj: CronJob, jobs: readonly Readonly<Job>[]): Promise<{ requeueAfterMs?: number; updateStatus: boolean; error?: unknown }> {
    const { recorder } = this.deps;
    const now = this.clock.now();
    let updateStatus = false;
    cj.status ??= {};

    const children = new Set<string>();
    for (const j of jobs) {
      children.add(j.metadata.uid ?? "");
      const found = inActiveList(cj, j.metadata.uid);
      const finished = finishedCondition(j);
      if (!found && !finished) {
        // Our status may just be older than our own last write: check a fresh copy first.
        const fresh = await this.cronJobClient.get(cj.metadata.namespace ?? "", cj.metadata.name ?? "");
        if (inActiveList(fresh, j.metadata.uid)) {
          cj.status.active = fresh.status?.active ?? [];
          continue;
        }
        recorder.event(cj, "Warning", "UnexpectedJob", `Saw a job that the controller did not create or forgot: ${j.metadata.name ?? ""}`);
      } else if (found && finished) {
        deleteFromActiveList(cj, j.metadata.uid);
        recorder.event(cj, "Normal", "SawCompletedJob", `Saw completed job: ${j.metadata.name ?? ""}, condition: ${finished}`);
        updateStatus = true;
      }
      if (finished === "Complete" && j.status?.completionTime) {
        const last = parseTime(cj.status.lastSuccessfulTime);
        if (!cj.status.lastSuccessfulTime || parseTime(j.status.completionTime) > last) {
          cj.status.lastSuccessfulTime = j.status.completionTime;
          updateStatus = true;
        }
      }
    }

    // An active reference whose Job is gone (checked against the server, not a lagging cache) is dropped.
    for (const ref of [...(cj.status.active ?? [])]) {
      if (children.has(ref.uid ?? "")) continue;
      try {
        await this.jobClient.get(ref.namespace ?? cj.metadata.namespace ?? "", ref.name ?? "");
      } catch (e) {
        if (!isNotFound(e)) throw e;
        recorder.event(cj, "Normal", "MissingJob", `Active job went missing: ${ref.name ?? ""}`);
        deleteFromActiveList(cj, ref.uid);
        updateStatus = true;
      }
    }

    // Being deleted: only the status is kept up to date.
    if (cj.metadata.deletionTimestamp) return { updateStatus };

    const spec = cj.spec!;
    if (spec.timeZone !== undefined && spec.timeZone !== null && !isValidTimeZone(spec.timeZone)) {
      recorder.event(cj, "Warning", "UnknownTimeZone", `invalid timeZone: ${JSON.stringify(spec.timeZone)}: unknown time zone ${spec.timeZone}`);
      return { updateStatus };
    }
    if (spec.suspend === true) {
      ctx.log.debug({ cronjob: cj.metadata.name }, "not starting job because the cron is suspended");
      return { updateStatus };
    }
    if (spec.schedule.includes("TZ")) {
      recorder.event(
        cj,
        "Warning",
        "UnsupportedSchedule",
        `CRON_TZ or TZ used in schedule ${JSON.stringify(spec.schedule)} is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details`,
      );
    }
    let sched: Schedule;
    try {
      sched = cronJobSchedule(cj);
    } catch (e) {
      // A user error in the spec: nothing to do until the spec changes.
      recorder.event(cj, "Warning", "UnparseableSchedule", `unparseable schedule: ${JSON.stringify(spec.schedule)} : ${errorMessage(e)}`);
      return { updateStatus };
    }

    let scheduled: number | undefined;
    try {
      const r = mostRecentScheduleTime(cj, now, sched, true);
      if (r.mostRecent !== undefined && r.mostRecent <= now) {
        scheduled = r.mostRecent;
        if (r.missed === "many") {
          recorder.event(cj, "Warning", "TooManyMissedTimes", "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew");
          ctx.log.info({ cronjob: cj.metadata.name }, "too many missed times");
        }
      }
    } catch (e) {
      recorder.event(cj, "Warning", "InvalidSchedule", `invalid schedule: ${spec.schedule} : ${errorMessage(e)}`);
      return { updateStatus };
    }
    const requeue = (): number => nextScheduleTimeDuration(cj, now, sched);
    if (scheduled === undefined) {
      // No unmet start time (the queue woke us early, or after a restart).
      return { requeueAfterMs: requeue(), updateStatus };
    }

    const deadline = spec.startingDeadlineSeconds;
    if (deadline !== undefined && deadline !== null && scheduled + deadline * 1000 < now) {
      recorder.event(cj, "Warning", "MissSchedule", `Missed scheduled time to start a job: ${rfc1123z(scheduled)}`);
      return { requeueAfterMs: requeue(), updateStatus };
    }
    const name = getJobName(cj, scheduled);
    const lastScheduled = parseTime(cj.status.lastScheduleTime);
    if ((cj.status.active ?? []).some((r) => r.name === name) || (cj.status.lastScheduleTime && lastScheduled === Math.floor(scheduled / 1000) * 1000)) {
      // This scheduled time was already processed.
      return { requeueAfterMs: requeue(), updateStatus };
    }
    if (spec.concurrencyPolicy === "Forbid" && (cj.status.active ?? []).length > 0) {
      // The active list may lag (our status write or the Job's creation not yet seen): concurrency is
      // then possible, as upstream accepts for runs far enough apart.
      recorder.event(cj, "Normal", "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid");
      return { requeueAfterMs: requeue(), updateStatus };
    }
    if (spec.concurrencyPolicy === "Replace") {
      for (const ref of [...(cj.status.active ?? [])]) {
        let job: Job;
        try {
          job = await this.jobClient.get(ref.namespace ?? cj.metadata.namespace ?? "", ref.name ?? "");
        } catch (e) {
          recorder.event(cj, "Warning", "FailedGet", `Get job: ${errorMessage(e)}`);
          return { updateStatus, error: e };
        }
        if (!(await this.deleteJob(ctx, cj, job))) {
          return { updateStatus, error: new Error(`could not replace job ${job.metadata.namespace ?? ""}/${job.metadata.name ?? ""}`) };
        }
        updateStatus = true;
      }
    }

    const req = getJobFromTemplate(cj, scheduled);
    let created: Job;
    try {
      created = await this.jobClient.create(cj.metadata.namespace ?? "", req);
      recorder.event(cj, "Normal", "SuccessfulCreate", `Created job ${created.metadata.name ?? ""}`);
      ctx.log.info({ job: created.metadata.name, scheduledTime: rfc3339(scheduled) }, "created job");
    } catch (e) {
      if (/because it is being terminated/.test(errorMessage(e))) return { updateStatus, error: e };
      if (!isAlreadyExists(e)) {
        recorder.event(cj, "Warning", "FailedCreate", `Error creating job: ${errorMessage(e)}`);
        return { updateStatus, error: e };
      }
      // Created by an earlier sync (or someone else): adopt it into the status only if it is ours.
      created = await this.jobClient.get(cj.metadata.namespace ?? "", name);
      const ref = getControllerOf(created);
      if (!ref || ref.uid !== cj.metadata.uid) return { updateStatus };
      if (inActiveList(cj, created.metadata.uid)) return { updateStatus };
    }
    cj.status.active = [...(cj.status.active ?? []), jobRef(created)];
    cj.status.lastScheduleTime = rfc3339(scheduled);
    updateStatus = true;
    return { requeueAfterMs: requeue(), updateStatus };
  }

  /** Deletes finished Jobs beyond successfulJobsHistoryLimit / failedJobsHistoryLimit, oldest first. */
  private async cleanupFinishedJobs(ctx: ReconcileContext, cj: CronJob, jobs: readonly Readonly<Job>[]): Promise<boolean> {
    const spec = cj.spec;
    if (!spec || (spec.failedJobsHistoryLimit === undefined && spec.successfulJobsHistoryLimit === undefined)) return false;
    const succeeded = jobs.filter((j) => finishedCondition(j) === "Complete");
    const failed = jobs.filter((j) => finishedCondition(j) === "Failed");
    let update = false;
    if (spec.successfulJobsHistoryLimit !== undefined && (await this.removeOldestJobs(ctx, cj, succeeded, spec.successfulJobsHistoryLimit))) update = true;
    if (spec.failedJobsHistoryLimit !== undefined && (await this.removeOldestJobs(ctx, cj, failed, spec.failedJobsHistoryLimit))) update = true;
    return update;
  }

  private async removeOldestJobs(ctx: ReconcileContext, cj: CronJob, jobs: readonly Readonly<Job>[], max: number): Promise<boolean> {
    const n = jobs.length - max;
    if (n <= 0) return false;
    let update = false;
    for (const j of [...jobs].sort(byJobStartTime).slice(0, n)) if (await this.deleteJob(ctx, cj, j)) update = true;
    return update;
  }

  /** Deletes a Job (its pods follow in the background) and its active reference. */
  private async deleteJob(ctx: ReconcileContext, cj: CronJob, job: Readonly<Job>): Promise<boolean> {
    try {
      await this.jobClient.delete(job.metadata.namespace ?? "", job.metadata.name ?? "", { propagationPolicy: "Background" });
    } catch (e) {
      if (!isNotFound(e)) {
        this.deps.recorder.event(cj, "Warning", "FailedDelete", `Deleted job: ${errorMessage(e)}`);
        ctx.log.error({ err: e, job: job.metadata.name }, "error deleting job from cronjob");
        return false;
      }
    }
    deleteFromActiveList(cj, job.metadata.uid);
    this.deps.recorder.event(cj, "Normal", "SuccessfulDelete", `Deleted job ${job.metadata.name ?? ""}`);
    return true;
  }
}

function deepEqualStatus(a: Readonly<CronJob>, b: Readonly<CronJob>): boolean {
  return JSON.stringify(a.status ?? {}) === JSON.stringify(b.status ?? {});
}

/** Go's time.RFC1123Z in UTC: "Mon, 02 Jan 2006 15:04:05 +0000". */
function rfc1123z(ms: number): string {
  return new Date(ms).toUTCString().replace("GMT", "+0000");
}
