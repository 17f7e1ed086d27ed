// storage.k8s.io/v1 types: StorageClass.

import type { KubeObject } from "../meta.ts";
import type { PersistentVolumeReclaimPolicy, TopologySelectorTerm } from "../core/v1.ts";

export type VolumeBindingMode = "Immediate" | "WaitForFirstConsumer";

export interface StorageClass extends KubeObject {
  /** Required and immutable, e.g. "kubelab.io/zonal". */
  provisioner: string;
  parameters?: Record<string, string>;
  /** Default "Delete". */
  reclaimPolicy?: PersistentVolumeReclaimPolicy;
  mountOptions?: string[];
  allowVolumeExpansion?: boolean;
  /** Default "Immediate". */
  volumeBindingMode?: VolumeBindingMode;
  allowedTopologies?: TopologySelectorTerm[];
}

/** Annotation marking the cluster's default StorageClass. */
export const IsDefaultStorageClassAnnotation = "storageclass.kubernetes.io/is-default-class";
