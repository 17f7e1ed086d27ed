// storage.k8s.io/v1 types: StorageClass, VolumeAttachment, CSIDriver; the storage annotations and finalizers.

import { createHash } from "node:crypto";
import type { KubeObject } from "../meta.ts";
import type { PersistentVolumeReclaimPolicy, PersistentVolumeSpec, TopologySelectorTerm } from "../core/v1.ts";

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

// ---------------------------------------------------------------------------------------------
// VolumeAttachment and CSIDriver (storage.k8s.io/v1)

export interface VolumeAttachmentSource {
  /** The PV to attach (set for every attachment kubelab makes). */
  persistentVolumeName?: string;
  inlineVolumeSpec?: PersistentVolumeSpec;
}

export interface VolumeAttachmentSpec {
  /** The CSI driver that attaches (its name, as in CSIDriver and the PV's spec.csi.driver). */
  attacher: string;
  source: VolumeAttachmentSource;
  nodeName: string;
}

export interface VolumeError {
  time?: string;
  message?: string;
  errorCode?: number;
}

export interface VolumeAttachmentStatus {
  /** Set by the attacher once the volume is attached to the node. */
  attached: boolean;
  attachmentMetadata?: Record<string, string>;
  attachError?: VolumeError;
  detachError?: VolumeError;
}

/** A request to attach a volume to a node, and the attacher's answer in status (cluster-scoped). */
export interface VolumeAttachment extends KubeObject {
  spec: VolumeAttachmentSpec;
  status?: VolumeAttachmentStatus;
}

export interface CSIDriverSpec {
  /** True: the attach/detach controller creates VolumeAttachments and kubelets wait for them (default true). */
  attachRequired?: boolean;
  podInfoOnMount?: boolean;
  volumeLifecycleModes?: ("Persistent" | "Ephemeral")[];
  storageCapacity?: boolean;
  fsGroupPolicy?: "ReadWriteOnceWithFSType" | "File" | "None";
  requiresRepublish?: boolean;
  seLinuxMount?: boolean;
}

/** How Kubernetes treats one CSI driver (cluster-scoped; named after the driver). */
export interface CSIDriver extends KubeObject {
  spec: CSIDriverSpec;
}

// ---------------------------------------------------------------------------------------------
// kubelab's two simulated CSI drivers and the well-known storage annotations and finalizers

/** EBS-like: ReadWriteOnce block volumes in one zone, attached to one node at a time. */
export const ZONAL_PROVISIONER = "zonal.csi.kubelab.io";
/** EFS-like: a regional file system, mountable from every zone, no attach. */
export const REGIONAL_PROVISIONER = "regional.csi.kubelab.io";
export const ZONAL_STORAGE_CLASS = "kubelab-zonal";
export const REGIONAL_STORAGE_CLASS = "kubelab-regional";

/** PVC: the node the scheduler chose for a WaitForFirstConsumer claim's first pod. */
export const AnnSelectedNode = "volume.kubernetes.io/selected-node";
/** PVC: which provisioner is to provision it (and the deprecated beta spelling). */
export const AnnStorageProvisioner = "volume.kubernetes.io/storage-provisioner";
export const AnnBetaStorageProvisioner = "volume.beta.kubernetes.io/storage-provisioner";
/** PVC: the binding is complete (the controller finished both halves). */
export const AnnBindCompleted = "pv.kubernetes.io/bind-completed";
/** PV and PVC: the controller (not the user) made the binding. */
export const AnnBoundByController = "pv.kubernetes.io/bound-by-controller";
/** PV: the provisioner that created it. */
export const AnnDynamicallyProvisioned = "pv.kubernetes.io/provisioned-by";
/** Finalizer keeping a claim while a pod uses it (StorageObjectInUseProtection). */
export const PVCProtectionFinalizer = "kubernetes.io/pvc-protection";
/** Finalizer keeping a volume while a claim is bound to it. */
export const PVProtectionFinalizer = "kubernetes.io/pv-protection";

/**
 * The VolumeAttachment name for a CSI volume on a node, as upstream's CSI attacher makes it
 * (csi-<sha256(volumeHandle + driver + nodeName)>): the attach/detach controller creates it, the
 * kubelet waits for it.
 */
export function volumeAttachmentName(volumeHandle: string, driver: string, nodeName: string): string {
  return `csi-${createHash("sha256").update(`${volumeHandle}${driver}${nodeName}`).digest("hex")}`;
}
