// The built-in StorageClasses and CSIDrivers, created when missing at controller start and never
// overwritten: kubelab-zonal (EBS gp3-like, the default, WaitForFirstConsumer, ReadWriteOnce) and
// kubelab-regional (EFS-like, Immediate, every access mode).

import {
  IsDefaultStorageClassAnnotation,
  REGIONAL_PROVISIONER,
  REGIONAL_STORAGE_CLASS,
  ZONAL_PROVISIONER,
  ZONAL_STORAGE_CLASS,
  type CSIDriver,
  type KubeObject,
  type PersistentVolumeAccessMode,
  type StorageClass,
} from "../../api/index.ts";
import { isClientError } from "../../client/errors.ts";
import type { Client, Context } from "../../client/types.ts";

/** The largest zonal volume, as EBS gp3 (parameter `maxSize` of a class; absent means unlimited). */
export const ZONAL_MAX_SIZE = "16Ti";

export const BUILTIN_STORAGE_CLASSES: readonly StorageClass[] = [
  {
    apiVersion: "storage.k8s.io/v1",
    kind: "StorageClass",
    metadata: { name: ZONAL_STORAGE_CLASS, annotations: { [IsDefaultStorageClassAnnotation]: "true" } },
    provisioner: ZONAL_PROVISIONER,
    parameters: { type: "gp3", maxSize: ZONAL_MAX_SIZE },
    reclaimPolicy: "Delete",
    volumeBindingMode: "WaitForFirstConsumer",
    allowVolumeExpansion: true,
  },
  {
    apiVersion: "storage.k8s.io/v1",
    kind: "StorageClass",
    metadata: { name: REGIONAL_STORAGE_CLASS },
    provisioner: REGIONAL_PROVISIONER,
    reclaimPolicy: "Delete",
    volumeBindingMode: "Immediate",
    allowVolumeExpansion: true,
  },
];

export const BUILTIN_CSI_DRIVERS: readonly CSIDriver[] = [
  { apiVersion: "storage.k8s.io/v1", kind: "CSIDriver", metadata: { name: ZONAL_PROVISIONER }, spec: { attachRequired: true, volumeLifecycleModes: ["Persistent"] } },
  { apiVersion: "storage.k8s.io/v1", kind: "CSIDriver", metadata: { name: REGIONAL_PROVISIONER }, spec: { attachRequired: false, volumeLifecycleModes: ["Persistent"] } },
];

/** The access modes a kubelab driver supports. */
export function supportedAccessModes(provisioner: string): readonly PersistentVolumeAccessMode[] {
  return provisioner === ZONAL_PROVISIONER ? ["ReadWriteOnce", "ReadWriteOncePod"] : ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"];
}

/** Creates each built-in class and driver that does not exist yet (409 is success: never overwrite). */
export async function ensureBuiltins(ctx: Context, client: Client): Promise<void> {
  const create = async (resource: string, obj: KubeObject): Promise<void> => {
    try {
      await client.resource("storage.k8s.io", resource).create("", structuredClone(obj));
      ctx.log.info({ resource, name: obj.metadata.name }, "created built-in storage object");
    } catch (e) {
      if (isClientError(e) && e.code === 409) return;
      throw e;
    }
  };
  for (const d of BUILTIN_CSI_DRIVERS) await create("csidrivers", d);
  for (const sc of BUILTIN_STORAGE_CLASSES) await create("storageclasses", sc);
}
