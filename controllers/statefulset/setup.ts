// Wires the StatefulSet controller to the shared informers: StatefulSet events enqueue the set, pod
// events enqueue the owning set (or, for orphans, the sets that select them); revisions and claims
// are read from their listers.

import type { ControllerRevision, PersistentVolumeClaim, Pod, StatefulSet } from "../../api/index.ts";
import { newRateLimitingQueue, objectKey, runController, type ObjectKey } from "../../client/index.ts";
import type { ControllerSetup } from "../env.ts";
import { StatefulSetController, StatefulSetPodHandlers } from "./index.ts";

export const setupStatefulSetController: ControllerSetup = (env) => {
  const sets = env.informers.informer<StatefulSet>("apps", "statefulsets");
  const pods = env.informers.informer<Pod>("", "pods");
  const revisions = env.informers.informer<ControllerRevision>("apps", "controllerrevisions");
  const claims = env.informers.informer<PersistentVolumeClaim>("", "persistentvolumeclaims");
  const queue = newRateLimitingQueue<ObjectKey>({ name: "statefulset", registry: env.registry });
  const handlers = new StatefulSetPodHandlers({ sets: sets.lister });
  const add = (keys: ObjectKey[]) => keys.forEach((k) => queue.add(k));
  sets.addEventHandler({ onAdd: (o) => queue.add(objectKey(o)), onUpdate: (_, o) => queue.add(objectKey(o)), onDelete: (o) => queue.add(objectKey(o)) });
  pods.addEventHandler({ onAdd: (p) => add(handlers.onPodAdd(p)), onUpdate: (a, b) => add(handlers.onPodUpdate(a, b)), onDelete: (p) => add(handlers.onPodDelete(p)) });
  const reconciler = new StatefulSetController({
    client: env.client,
    sets: sets.lister,
    pods: pods.lister,
    revisions: revisions.lister,
    claims: claims.lister,
    recorder: env.recorder("statefulset-controller"),
  });
  return {
    name: "statefulset",
    run: (ctx) => runController(ctx, { name: "statefulset", reconciler, queue, workers: env.workers, informers: [sets, pods, revisions, claims] }),
  };
};
