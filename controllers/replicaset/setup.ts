// Wires the ReplicaSet controller to the shared informers: ReplicaSet events enqueue the set, pod
// events enqueue the owning set (recording expectation observations on the way).

import type { Pod, ReplicaSet } from "../../api/index.ts";
import { newRateLimitingQueue, objectKey, runController, type ObjectKey } from "../../client/index.ts";
import type { ControllerSetup } from "../env.ts";
import { Expectations } from "../expectations.ts";
import { ReplicaSetController, ReplicaSetPodHandlers } from "./index.ts";

export const setupReplicaSetController: ControllerSetup = (env) => {
  const pods = env.informers.informer<Pod>("", "pods");
  const sets = env.informers.informer<ReplicaSet>("apps", "replicasets");
  const queue = newRateLimitingQueue<ObjectKey>({ name: "replicaset", registry: env.registry });
  const expectations = new Expectations();
  const handlers = new ReplicaSetPodHandlers({ replicaSets: sets.lister, expectations });
  const add = (keys: ObjectKey[]) => keys.forEach((k) => queue.add(k));
  sets.addEventHandler({ onAdd: (o) => queue.add(objectKey(o)), onUpdate: (_, o) => queue.add(objectKey(o)), onDelete: (o) => queue.add(objectKey(o)) });
  pods.addEventHandler({ onAdd: (p) => add(handlers.onPodAdd(p)), onUpdate: (a, b) => add(handlers.onPodUpdate(a, b)), onDelete: (p) => add(handlers.onPodDelete(p)) });
  const reconciler = new ReplicaSetController({
    client: env.client,
    pods: pods.lister,
    replicaSets: sets.lister,
    expectations,
    recorder: env.recorder("replicaset-controller"),
  });
  return { name: "replicaset", run: (ctx) => runController(ctx, { name: "replicaset", reconciler, queue, workers: env.workers, informers: [pods, sets] }) };
};
