// The StorageObjectInUseProtection admission plugin (plugin/pkg/admission/storage/storageobjectinuseprotection):
// every new PersistentVolume gets the kubernetes.io/pv-protection finalizer and every new claim the
// kubernetes.io/pvc-protection finalizer; the pv/pvc protection controllers remove them once the
// volume is unbound / no pod uses the claim, so a delete never pulls storage from under a user.

import { PVCProtectionFinalizer, PVProtectionFinalizer } from "../../api/index.ts";
import type { AdmissionAttributes, MutatingPlugin } from "./index.ts";

export class StorageObjectInUseProtection implements MutatingPlugin {
  readonly name = "StorageObjectInUseProtection";

  admit(a: AdmissionAttributes): void {
    if (a.operation !== "CREATE" || a.subresource || a.info.group !== "") return;
    const finalizer =
      a.info.resource === "persistentvolumes" ? PVProtectionFinalizer : a.info.resource === "persistentvolumeclaims" ? PVCProtectionFinalizer : undefined;
    if (!finalizer) return;
    const list = (a.object.metadata.finalizers ??= []);
    if (!list.includes(finalizer)) list.push(finalizer);
  }
}
