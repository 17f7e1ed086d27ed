// PersistentVolumes: a new volume starts Pending (the volume controller makes it Available or Bound);
// status.lastPhaseTransitionTime follows every phase change, as upstream's PV strategy does.

import type { KubeObject, PersistentVolume, ResourceInfo } from "../../../../api/index.ts";
import { rfc3339 } from "../../store.ts";
import { genericStrategy, type Strategy } from "../../strategy.ts";

export function persistentVolumeStrategy(info: ResourceInfo): Strategy {
  const base = genericStrategy(info);
  return genericStrategy(info, {
    prepareForCreate(obj, ctx) {
      (obj as PersistentVolume).status = { phase: "Pending", lastPhaseTransitionTime: rfc3339(ctx.now()) };
    },
    prepareForStatusUpdate(obj: KubeObject, old: KubeObject) {
      base.prepareForStatusUpdate(obj, old);
      const cur = (obj as PersistentVolume).status;
      const prev = (old as PersistentVolume).status;
      // The status writer has no clock of the registry here; the wall clock is what upstream uses too.
      if (cur && cur.phase !== prev?.phase) cur.lastPhaseTransitionTime = rfc3339(new Date());
      else if (cur && prev?.lastPhaseTransitionTime && !cur.lastPhaseTransitionTime) cur.lastPhaseTransitionTime = prev.lastPhaseTransitionTime;
    },
  });
}
