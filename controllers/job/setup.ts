// Wires the Job and TTL-after-finished controllers to the shared informers: Job events enqueue the
// Job, pod events enqueue the owning Job (recording expectation observations on the way).

import type { Job, Pod } from "../../api/index.ts";
import { newRateLimitingQueue, objectKey, runController, type ObjectKey } from "../../client/index.ts";
import type { ControllerSetup } from "../env.ts";
import { Expectations } from "../expectations.ts";
import { FinalizerExpectations, JobController, JobPodHandlers } from "./index.ts";
import { TTLAfterFinishedController } from "./ttl.ts";

export const setupJobController: ControllerSetup = (env) => {
  const pods = env.informers.informer<Pod>("", "pods");
  const jobs = env.informers.informer<Job>("batch", "jobs");
  const queue = newRateLimitingQueue<ObjectKey>({ name: "job", registry: env.registry });
  const expectations = new Expectations();
  const finalizerExpectations = new FinalizerExpectations();
  const handlers = new JobPodHandlers({ jobs: jobs.lister, expectations, finalizerExpectations });
  const add = (keys: ObjectKey[]) => keys.forEach((k) => queue.add(k));
  jobs.addEventHandler({ onAdd: (o) => queue.add(objectKey(o)), onUpdate: (_, o) => queue.add(objectKey(o)), onDelete: (o) => queue.add(objectKey(o)) });
  pods.addEventHandler({ onAdd: (p) => add(handlers.onPodAdd(p)), onUpdate: (a, b) => add(handlers.onPodUpdate(a, b)), onDelete: (p) => add(handlers.onPodDelete(p)) });
  const reconciler = new JobController({
    client: env.client,
    jobs: jobs.lister,
    pods: pods.lister,
    expectations,
    finalizerExpectations,
    recorder: env.recorder("job-controller"),
  });
  return { name: "job", run: (ctx) => runController(ctx, { name: "job", reconciler, queue, workers: env.workers, informers: [pods, jobs] }) };
};

export const setupTTLAfterFinishedController: ControllerSetup = (env) => {
  const jobs = env.informers.informer<Job>("batch", "jobs");
  const queue = newRateLimitingQueue<ObjectKey>({ name: "ttl-after-finished", registry: env.registry });
  // Only finished Jobs with a TTL concern this controller; the reconcile requeues itself until expiry.
  const enqueue = (j: Readonly<Job>): void => {
    if (j.spec?.ttlSecondsAfterFinished !== undefined && !j.metadata.deletionTimestamp) queue.add(objectKey(j));
  };
  jobs.addEventHandler({ onAdd: enqueue, onUpdate: (_, j) => enqueue(j) });
  const reconciler = new TTLAfterFinishedController({ client: env.client, jobs: jobs.lister });
  return {
    name: "ttl-after-finished",
    run: (ctx) => runController(ctx, { name: "ttl-after-finished", reconciler, queue, workers: env.workers, informers: [jobs] }),
  };
};
