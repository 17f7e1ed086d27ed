// Wires the disruption controller to the shared informers: budget events enqueue the budget, pod
// events enqueue every budget selecting the pod (before and after a label change). The ReplicaSet,
// Deployment and StatefulSet informers only feed the listers the scale lookups read.

import type { Deployment, Pod, PodDisruptionBudget, ReplicaSet, StatefulSet } from "../../api/index.ts";
import { enqueueOnChange, newRateLimitingQueue, objectKey, realClock, runController, type ObjectKey } from "../../client/index.ts";
import type { ControllerSetup } from "../env.ts";
import { DisruptionController, pdbsForPod } from "./index.ts";

export const setupDisruptionController: ControllerSetup = (env) => {
  const pdbs = env.informers.informer<PodDisruptionBudget>("policy", "poddisruptionbudgets");
  const pods = env.informers.informer<Pod>("", "pods");
  const replicaSets = env.informers.informer<ReplicaSet>("apps", "replicasets");
  const deployments = env.informers.informer<Deployment>("apps", "deployments");
  const statefulSets = env.informers.informer<StatefulSet>("apps", "statefulsets");
  const queue = newRateLimitingQueue<ObjectKey>({ name: "disruption", registry: env.registry });
  enqueueOnChange(pdbs, queue);
  const enqueueFor = (pod: Readonly<Pod>): void => {
    for (const pdb of pdbsForPod(pod, pdbs.lister)) queue.add(objectKey(pdb));
  };
  pods.addEventHandler({
    onAdd: enqueueFor,
    onUpdate: (old, cur) => {
      if (old.metadata.resourceVersion === cur.metadata.resourceVersion) return;
      enqueueFor(cur);
      if (JSON.stringify(old.metadata.labels ?? {}) !== JSON.stringify(cur.metadata.labels ?? {})) enqueueFor(old);
    },
    onDelete: enqueueFor,
  });
  const reconciler = new DisruptionController({
    client: env.client,
    pdbs: pdbs.lister,
    pods: pods.lister,
    replicaSets: replicaSets.lister,
    deployments: deployments.lister,
    statefulSets: statefulSets.lister,
    recorder: env.recorder("controllermanager"),
    clock: realClock,
  });
  return {
    name: "disruption",
    run: (ctx) => runController(ctx, { name: "disruption", reconciler, queue, workers: env.workers, informers: [pdbs, pods, replicaSets, deployments, statefulSets] }),
  };
};
