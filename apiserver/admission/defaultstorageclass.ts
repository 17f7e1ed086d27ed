// The DefaultStorageClass admission plugin (plugin/pkg/admission/storage/storageclass/setdefault): a
// new claim that names no class (spec.storageClassName absent — "" means "no class" and is kept) gets
// the cluster's default StorageClass; with several defaults the newest wins, as upstream since 1.28.

import { IsDefaultStorageClassAnnotation, type PersistentVolumeClaim, type StorageClass } from "../../api/index.ts";
import type { AdmissionAttributes, MutatingPlugin } from "./index.ts";

/** Where the plugin reads the StorageClasses (the apiserver's watch cache). */
export type StorageClassSource = () => readonly StorageClass[];

const BETA_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class";
const BETA_DEFAULT_ANNOTATION = "storageclass.beta.kubernetes.io/is-default-class";

export function isDefaultStorageClass(sc: Readonly<StorageClass>): boolean {
  const a = sc.metadata.annotations ?? {};
  return a[IsDefaultStorageClassAnnotation] === "true" || a[BETA_DEFAULT_ANNOTATION] === "true";
}

/** The default class: among classes marked default, the newest (then by name, for a stable choice). */
export function defaultStorageClass(classes: readonly Readonly<StorageClass>[]): Readonly<StorageClass> | undefined {
  const defaults = classes.filter(isDefaultStorageClass);
  defaults.sort((a, b) => {
    const ta = Date.parse(a.metadata.creationTimestamp ?? "") || 0;
    const tb = Date.parse(b.metadata.creationTimestamp ?? "") || 0;
    if (ta !== tb) return tb - ta;
    return (a.metadata.name ?? "").localeCompare(b.metadata.name ?? "");
  });
  return defaults[0];
}

export class DefaultStorageClass implements MutatingPlugin {
  readonly name = "DefaultStorageClass";

  constructor(private readonly classes: StorageClassSource) {}

  admit(a: AdmissionAttributes): void {
    if (a.operation !== "CREATE" || a.subresource || a.info.group !== "" || a.info.resource !== "persistentvolumeclaims") return;
    const pvc = a.object as PersistentVolumeClaim;
    if (pvc.spec?.storageClassName !== undefined && pvc.spec.storageClassName !== null) return;
    if (pvc.metadata.annotations?.[BETA_CLASS_ANNOTATION] !== undefined) return;
    const def = defaultStorageClass(this.classes());
    if (!def) return;
    pvc.spec ??= {};
    pvc.spec.storageClassName = def.metadata.name;
  }
}
