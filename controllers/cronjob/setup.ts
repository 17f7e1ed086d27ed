// Wires the CronJob controller to the shared informers: CronJob events enqueue the CronJob (a
// schedule or time zone change waits for the new schedule's next time, as upstream), and Job
// events enqueue the CronJob that controls the Job.

import type { CronJob, Job } from "../../api/index.ts";
import { enqueueOwner, newRateLimitingQueue, objectKey, realClock, runController, type ObjectKey } from "../../client/index.ts";
import type { ControllerSetup } from "../env.ts";
import { CronJobController, cronJobSchedule, nextScheduleTimeDuration } from "./index.ts";

export const setupCronJobController: ControllerSetup = (env) => {
  const cronJobs = env.informers.informer<CronJob>("batch", "cronjobs");
  const jobs = env.informers.informer<Job>("batch", "jobs");
  const queue = newRateLimitingQueue<ObjectKey>({ name: "cronjob", registry: env.registry });
  const recorder = env.recorder("cronjob-controller");
  cronJobs.addEventHandler({
    onAdd: (cj) => queue.add(objectKey(cj)),
    onUpdate: (old, cur) => {
      const scheduleChanged = old.spec?.schedule !== cur.spec?.schedule || old.spec?.timeZone !== cur.spec?.timeZone;
      if (!scheduleChanged) return queue.add(objectKey(cur));
      // A new schedule: requeue for its next time (sooner than the old requeue, or a no-op sync later).
      try {
        queue.addAfter(objectKey(cur), nextScheduleTimeDuration(cur, realClock.now(), cronJobSchedule(cur)));
      } catch {
        recorder.event(cur, "Warning", "UnParseableCronJobSchedule", `unparseable schedule for cronjob: ${cur.spec?.schedule ?? ""}`);
      }
    },
    onDelete: (cj) => queue.add(objectKey(cj)),
  });
  enqueueOwner(jobs, queue, "CronJob");
  const reconciler = new CronJobController({ client: env.client, cronJobs: cronJobs.lister, jobs: jobs.lister, recorder, clock: realClock });
  return { name: "cronjob", run: (ctx) => runController(ctx, { name: "cronjob", reconciler, queue, workers: env.workers, informers: [cronJobs, jobs] }) };
};
