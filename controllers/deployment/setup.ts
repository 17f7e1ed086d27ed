// Wires the Deployment controller: deployment events enqueue it, ReplicaSet events enqueue the
// owning deployment, pod deletions enqueue Recreate deployments waiting for old pods to go.

import type { Deployment, Pod, ReplicaSet } from "../../api/index.ts";
import { newRateLimitingQueue, objectKey, runController, type ObjectKey } from "../../client/index.ts";
import type { ControllerSetup } from "../env.ts";
import { DeploymentController, DeploymentHandlers } from "./index.ts";

export const setupDeploymentController: ControllerSetup = (env) => {
  const pods = env.informers.informer<Pod>("", "pods");
  const sets = env.informers.informer<ReplicaSet>("apps", "replicasets");
  const deployments = env.informers.informer<Deployment>("apps", "deployments");
  const queue = newRateLimitingQueue<ObjectKey>({ name: "deployment", registry: env.registry });
  const handlers = new DeploymentHandlers({ deployments: deployments.lister, replicaSets: sets.lister });
  const add = (keys: ObjectKey[]) => keys.forEach((k) => queue.add(k));
  deployments.addEventHandler({ onAdd: (o) => queue.add(objectKey(o)), onUpdate: (_, o) => queue.add(objectKey(o)), onDelete: (o) => queue.add(objectKey(o)) });
  sets.addEventHandler({
    onAdd: (rs) => add(handlers.replicaSetEventKeys(rs)),
    onUpdate: (a, b) => add(handlers.onReplicaSetUpdate(a, b)),
    onDelete: (rs) => add(handlers.replicaSetEventKeys(rs)),
  });
  pods.addEventHandler({ onDelete: (p) => add(handlers.podDeleteKeys(p)) });
  const reconciler = new DeploymentController({
    client: env.client,
    deployments: deployments.lister,
    replicaSets: sets.lister,
    pods: pods.lister,
    recorder: env.recorder("deployment-controller"),
  });
  return {
    name: "deployment",
    run: (ctx) => runController(ctx, { name: "deployment", reconciler, queue, workers: env.workers, informers: [pods, sets, deployments] }),
  };
};
