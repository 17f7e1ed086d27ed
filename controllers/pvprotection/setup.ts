// Wires the PV protection controller: every PersistentVolume event enqueues the volume.

import type { PersistentVolume } from "../../api/index.ts";
import { enqueueOnChange, newRateLimitingQueue, runController, type ObjectKey } from "../../client/index.ts";
import type { ControllerSetup } from "../env.ts";
import { PVProtectionController } from "./index.ts";

export const setupPVProtectionController: ControllerSetup = (env) => {
  const volumes = env.informers.informer<PersistentVolume>("", "persistentvolumes");
  const queue = newRateLimitingQueue<ObjectKey>({ name: "pvprotection", registry: env.registry });
  enqueueOnChange(volumes, queue);
  const reconciler = new PVProtectionController({ client: env.client, volumes: volumes.lister });
  return {
    name: "pv-protection",
    run: (ctx) => runController(ctx, { name: "pv-protection", reconciler, queue, workers: env.workers, informers: [volumes] }),
  };
};
