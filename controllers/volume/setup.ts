// Wires the PersistentVolume controller: claim events enqueue the claim and its volume; volume events
// enqueue the volume and the claim it refers to, and an unclaimed volume every unbound claim (it may
// fit one); a new class enqueues the unbound claims naming it. At start (i.e. once leading) the
// built-in StorageClasses and CSIDrivers are created when missing, retried until the API answers.

import type { Node, PersistentVolume, PersistentVolumeClaim, StorageClass } from "../../api/index.ts";
import { newRateLimitingQueue, realClock, runController, type EventRecorder, type ObjectKey } from "../../client/index.ts";
import type { ControllerSetup } from "../env.ts";
import { ensureBuiltins } from "./classes.ts";
import { claimKey, PersistentVolumeController, volumeKey } from "./index.ts";

export const setupPersistentVolumeController: ControllerSetup = (env) => {
  const claims = env.informers.informer<PersistentVolumeClaim>("", "persistentvolumeclaims");
  const volumes = env.informers.informer<PersistentVolume>("", "persistentvolumes");
  const classes = env.informers.informer<StorageClass>("storage.k8s.io", "storageclasses");
  const nodes = env.informers.informer<Node>("", "nodes");
  const queue = newRateLimitingQueue<ObjectKey>({ name: "persistentvolume", registry: env.registry });

  const enqueueClaim = (c: Readonly<PersistentVolumeClaim>): void => {
    queue.add(claimKey(c.metadata.namespace ?? "", c.metadata.name ?? ""));
    if (c.spec?.volumeName) queue.add(volumeKey(c.spec.volumeName));
  };
  const enqueueUnbound = (cls?: string): void => {
    for (const c of claims.lister.list()) {
      if (!c.spec?.volumeName && (cls === undefined || (c.spec?.storageClassName ?? "") === cls)) enqueueClaim(c);
    }
  };
  claims.addEventHandler({
    onAdd: enqueueClaim,
    onUpdate: (_o, c) => enqueueClaim(c),
    onDelete: (c) => {
      if (c.spec?.volumeName) queue.add(volumeKey(c.spec.volumeName));
      for (const pv of volumes.lister.list()) {
        const ref = pv.spec?.claimRef;
        if (ref?.namespace === c.metadata.namespace && ref?.name === c.metadata.name) queue.add(volumeKey(pv.metadata.name ?? ""));
      }
    },
  });
  const enqueueVolume = (pv: Readonly<PersistentVolume>): void => {
    queue.add(volumeKey(pv.metadata.name ?? ""));
    const ref = pv.spec?.claimRef;
    if (ref?.name) queue.add(claimKey(ref.namespace ?? "", ref.name));
    else enqueueUnbound(pv.spec?.storageClassName ?? "");
  };
  volumes.addEventHandler({ onAdd: enqueueVolume, onUpdate: (_o, pv) => enqueueVolume(pv), onDelete: enqueueVolume });
  classes.addEventHandler({ onAdd: (sc) => enqueueUnbound(sc.metadata.name ?? "") });

  const recorders = new Map<string, EventRecorder>();
  const reconciler = new PersistentVolumeController({
    client: env.client,
    claims: claims.lister,
    volumes: volumes.lister,
    classes: classes.lister,
    nodes: nodes.lister,
    recorder: env.recorder("persistentvolume-controller"),
    driverRecorder: (driver) => {
      let r = recorders.get(driver);
      if (!r) recorders.set(driver, (r = env.recorder(`${driver}_csi-provisioner`)));
      return r;
    },
    volumeDir: env.config.volumeDir,
  });
  return {
    name: "persistentvolume-binder",
    run: async (ctx) => {
      const builtins = (async () => {
        for (let delay = 500; !ctx.signal.aborted; delay = Math.min(delay * 2, 10_000)) {
          try {
            await ensureBuiltins(ctx, env.client);
            return;
          } catch (e) {
            ctx.log.warn({ err: (e as Error).message }, "cannot create the built-in storage classes yet; retrying");
            await realClock.sleep(delay, ctx.signal);
          }
        }
      })();
      await Promise.all([
        builtins,
        runController(ctx, { name: "persistentvolume-binder", reconciler, queue, workers: env.workers, informers: [claims, volumes, classes, nodes] }),
      ]);
    },
  };
};
