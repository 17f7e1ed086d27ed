// The TTL-after-finished controller: deletes a finished Job (and, through the garbage collector,
// its pods) ttlSecondsAfterFinished after it completed or failed.

import type { Job } from "../../api/index.ts";
import { isNotFound } from "../../client/errors.ts";
import type { Client, Clock, Lister, ObjectKey, ReconcileContext, Reconciler, ResourceClient, Result } from "../../client/types.ts";
import { isJobFinished, jobFinishTime } from "./index.ts";

export interface TTLAfterFinishedControllerDeps {
  client: Client;
  jobs: Lister<Job>;
  clock?: Pick<Clock, "now">;
}

/** Milliseconds until the Job expires (≤ 0: expired), or undefined when it never does. */
export function timeLeft(job: Readonly<Job>, nowMs: number): number | undefined {
  const ttl = job.spec?.ttlSecondsAfterFinished;
  if (ttl === undefined || job.metadata.deletionTimestamp || !isJobFinished(job)) return undefined;
  const finishedAt = jobFinishTime(job);
  if (finishedAt === 0) return undefined;
  return finishedAt + ttl * 1000 - nowMs;
}

export class TTLAfterFinishedController implements Reconciler {
  private readonly jobClient: ResourceClient<Job>;
  private readonly clock: Pick<Clock, "now">;

  constructor(private readonly deps: TTLAfterFinishedControllerDeps) {
    this.jobClient = deps.client.resource<Job>("batch", "jobs");
    this.clock = deps.clock ?? { now: () => Date.now() };
  }

  async reconcile(ctx: ReconcileContext, key: ObjectKey): Promise<Result> {
    const job = this.deps.jobs.get(key);
    if (!job) return {};
    const left = timeLeft(job, this.clock.now());
    if (left === undefined) return {};
    if (left > 0) return { requeueAfterMs: left };

    // The cache may be behind a user who just raised the TTL: decide on a fresh read (upstream does).
    const ns = job.metadata.namespace ?? "";
    const name = job.metadata.name ?? "";
    let fresh: Job;
    try {
      fresh = await this.jobClient.get(ns, name);
    } catch (e) {
      if (isNotFound(e)) return {};
      throw e;
    }
    const freshLeft = timeLeft(fresh, this.clock.now());
    if (freshLeft === undefined) return {};
    if (freshLeft > 0) return { requeueAfterMs: freshLeft };

    ctx.log.info({ job: key }, "deleting finished job whose TTL expired");
    try {
      // The uid precondition keeps a same-named successor safe.
      await this.jobClient.delete(ns, name, { propagationPolicy: "Background", preconditions: { uid: fresh.metadata.uid } });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    return {};
  }
}
