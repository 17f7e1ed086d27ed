// The PersistentVolumeClaimResize admission plugin (plugin/pkg/admission/storage/persistentvolume/resize):
// a claim's storage request may grow only when the claim is bound to a dynamically provisioned volume
// whose StorageClass has allowVolumeExpansion: true.

import { parseQuantity, type PersistentVolumeClaim, type StorageClass } from "../../api/index.ts";
import { forbidden, type AdmissionAttributes, type ValidatingPlugin } from "./index.ts";
import type { StorageClassSource } from "./defaultstorageclass.ts";

function requestBytes(pvc: PersistentVolumeClaim): number | undefined {
  const q = pvc.spec?.resources?.requests?.storage;
  if (q === undefined) return undefined;
  try {
    return parseQuantity(q);
  } catch {
    return undefined;
  }
}

export class PersistentVolumeClaimResize implements ValidatingPlugin {
  readonly name = "PersistentVolumeClaimResize";

  constructor(private readonly classes: StorageClassSource) {}

  validate(a: AdmissionAttributes): void {
    if (a.operation !== "UPDATE" || a.subresource || a.info.group !== "" || a.info.resource !== "persistentvolumeclaims" || !a.oldObject) return;
    const pvc = a.object as PersistentVolumeClaim;
    const old = a.oldObject as PersistentVolumeClaim;
    const n = requestBytes(pvc);
    const o = requestBytes(old);
    if (n === undefined || o === undefined || n <= o) return;
    // Growth of an unbound claim is refused by validation ("spec is immutable ...").
    if (old.status?.phase !== "Bound") return;
    const name = pvc.spec?.storageClassName ?? "";
    const sc: Readonly<StorageClass> | undefined = name ? this.classes().find((c) => c.metadata.name === name) : undefined;
    if (!sc || sc.allowVolumeExpansion !== true) {
      throw forbidden(a, "only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize");
    }
  }
}
