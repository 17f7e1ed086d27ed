// ControllerRevisions: immutable snapshots written by the StatefulSet and DaemonSet controllers.
// `data` is required and may never change; `revision` is always present (int64 without omitempty
// upstream, so an absent one reads as 0) and stays mutable, since a rollback renumbers an old snapshot.

import { applyDefaults, type KubeObject, type ResourceInfo } from "../../../../api/index.ts";
import { genericStrategy, type Strategy } from "../../strategy.ts";

export function controllerRevisionStrategy(info: ResourceInfo): Strategy {
  return genericStrategy(info, {
    defaults(obj: KubeObject) {
      applyDefaults(obj);
      if (obj.revision === undefined || obj.revision === null) obj.revision = 0;
    },
  });
}
