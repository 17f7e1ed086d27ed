// CSIDrivers: the scheme's defaults of storage.k8s.io/v1 (attachRequired true, podInfoOnMount false,
// Persistent lifecycle, ReadWriteOnceWithFSType fsGroupPolicy, …) applied on create and update.

import type { CSIDriver, ResourceInfo } from "../../../../api/index.ts";
import { genericStrategy, type Strategy } from "../../strategy.ts";

export function csiDriverStrategy(info: ResourceInfo): Strategy {
  const base = genericStrategy(info);
  return genericStrategy(info, {
    defaults(obj) {
      base.defaults(obj);
      const d = obj as CSIDriver;
      d.spec ??= {};
      d.spec.attachRequired ??= true;
      d.spec.podInfoOnMount ??= false;
      d.spec.storageCapacity ??= false;
      d.spec.fsGroupPolicy ??= "ReadWriteOnceWithFSType";
      d.spec.requiresRepublish ??= false;
      d.spec.seLinuxMount ??= false;
      if (!d.spec.volumeLifecycleModes?.length) d.spec.volumeLifecycleModes = ["Persistent"];
    },
  });
}
