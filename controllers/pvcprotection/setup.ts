// Wires the PVC protection controller: claim events enqueue the claim; a pod's changes and deletion
// enqueue every claim it refers to (a finished or deleted pod may release a claim being deleted).

import type { PersistentVolumeClaim, Pod } from "../../api/index.ts";
import { enqueueOnChange, newRateLimitingQueue, runController, type ObjectKey } from "../../client/index.ts";
import type { ControllerSetup } from "../env.ts";
import { claimNamesOf, PVCProtectionController } from "./index.ts";

export const setupPVCProtectionController: ControllerSetup = (env) => {
  const claims = env.informers.informer<PersistentVolumeClaim>("", "persistentvolumeclaims");
  const pods = env.informers.informer<Pod>("", "pods");
  const queue = newRateLimitingQueue<ObjectKey>({ name: "pvcprotection", registry: env.registry });
  enqueueOnChange(claims, queue);
  const enqueueClaims = (pod: Readonly<Pod>): void => {
    for (const c of claimNamesOf(pod)) queue.add(`${pod.metadata.namespace}/${c}`);
  };
  pods.addEventHandler({
    onAdd: enqueueClaims,
    onUpdate: (_old, cur) => enqueueClaims(cur),
    onDelete: enqueueClaims,
  });
  const reconciler = new PVCProtectionController({ client: env.client, claims: claims.lister, pods: pods.lister });
  return {
    name: "pvc-protection",
    run: (ctx) => runController(ctx, { name: "pvc-protection", reconciler, queue, workers: env.workers, informers: [claims, pods] }),
  };
};
