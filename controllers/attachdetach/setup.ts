// Wires the attach/detach controller: pods, claims, volumes, attachments and drivers all map to the
// PersistentVolume key they concern.

import type { CSIDriver, Node, PersistentVolume, PersistentVolumeClaim, Pod, VolumeAttachment } from "../../api/index.ts";
import { newRateLimitingQueue, runController, type ObjectKey } from "../../client/index.ts";
import type { ControllerSetup } from "../env.ts";
import { AttachDetachController, podClaimNames } from "./index.ts";

export const setupAttachDetachController: ControllerSetup = (env) => {
  const pods = env.informers.informer<Pod>("", "pods");
  const claims = env.informers.informer<PersistentVolumeClaim>("", "persistentvolumeclaims");
  const volumes = env.informers.informer<PersistentVolume>("", "persistentvolumes");
  const attachments = env.informers.informer<VolumeAttachment>("storage.k8s.io", "volumeattachments");
  const drivers = env.informers.informer<CSIDriver>("storage.k8s.io", "csidrivers");
  const nodes = env.informers.informer<Node>("", "nodes");
  const queue = newRateLimitingQueue<ObjectKey>({ name: "attachdetach", registry: env.registry });

  const enqueuePod = (pod: Readonly<Pod>): void => {
    if (!pod.spec?.nodeName) return;
    for (const name of podClaimNames(pod)) {
      const pv = claims.lister.get(`${pod.metadata.namespace}/${name}`)?.spec?.volumeName;
      if (pv) queue.add(pv);
    }
  };
  pods.addEventHandler({ onAdd: enqueuePod, onUpdate: (_o, p) => enqueuePod(p), onDelete: enqueuePod });
  const enqueueClaim = (c: Readonly<PersistentVolumeClaim>): void => {
    if (c.spec?.volumeName) queue.add(c.spec.volumeName);
  };
  claims.addEventHandler({ onAdd: enqueueClaim, onUpdate: (_o, c) => enqueueClaim(c), onDelete: enqueueClaim });
  const enqueueVolume = (pv: Readonly<PersistentVolume>): void => queue.add(pv.metadata.name ?? "");
  volumes.addEventHandler({ onAdd: enqueueVolume, onUpdate: (_o, pv) => enqueueVolume(pv), onDelete: enqueueVolume });
  const enqueueAttachment = (va: Readonly<VolumeAttachment>): void => {
    const pv = va.spec?.source?.persistentVolumeName;
    if (pv) queue.add(pv);
  };
  attachments.addEventHandler({ onAdd: enqueueAttachment, onUpdate: (_o, va) => enqueueAttachment(va), onDelete: enqueueAttachment });
  const enqueueDriver = (d: Readonly<CSIDriver>): void => {
    for (const pv of volumes.lister.list()) if (pv.spec?.csi?.driver === d.metadata.name) enqueueVolume(pv);
  };
  drivers.addEventHandler({ onAdd: enqueueDriver, onUpdate: (_o, d) => enqueueDriver(d), onDelete: enqueueDriver });

  const reconciler = new AttachDetachController({
    client: env.client,
    pods: pods.lister,
    claims: claims.lister,
    volumes: volumes.lister,
    attachments: attachments.lister,
    drivers: drivers.lister,
    nodes: nodes.lister,
    recorder: env.recorder("attachdetach-controller"),
  });
  return {
    name: "attachdetach",
    run: (ctx) => runController(ctx, { name: "attachdetach", reconciler, queue, workers: env.workers, informers: [pods, claims, volumes, attachments, drivers, nodes] }),
  };
};
