// Helpers of the volume controller: quantities in bytes, access modes, node affinity, volume handles.

import { createHash } from "node:crypto";
import {
  volumeNodeAffinityMatches,
  parseQuantity,
  REGIONAL_PROVISIONER,
  ZONAL_PROVISIONER,
  type Node,
  type PersistentVolume,
  type PersistentVolumeAccessMode,
  type PersistentVolumeClaim,
} from "../../api/index.ts";

export const ZONE_LABEL = "topology.kubernetes.io/zone";
export const REGION_LABEL = "topology.kubernetes.io/region";
const GI = 1024 ** 3;

/** The drivers this controller provisions for (as their external-provisioner sidecars would). */
export const KUBELAB_PROVISIONERS: readonly string[] = [ZONAL_PROVISIONER, REGIONAL_PROVISIONER];

/** A quantity in bytes, or undefined when absent or unparsable. */
export function bytes(q: string | number | undefined): number | undefined {
  if (q === undefined) return undefined;
  try {
    return parseQuantity(q);
  } catch {
    return undefined;
  }
}

export function claimRequest(claim: Readonly<PersistentVolumeClaim>): number | undefined {
  return bytes(claim.spec?.resources?.requests?.storage);
}

export function volumeCapacity(pv: Readonly<PersistentVolume>): number | undefined {
  return bytes(pv.spec?.capacity?.storage);
}

/** EBS sizes volumes in whole GiB: the request rounded up, written as "<n>Gi". */
export function roundUpToGi(q: string | number): string {
  const b = bytes(q) ?? 0;
  return `${Math.max(1, Math.ceil(b / GI))}Gi`;
}

/** Every mode the claim asks for is among the volume's. */
export function accessModesContain(have: readonly PersistentVolumeAccessMode[] | undefined, want: readonly PersistentVolumeAccessMode[] | undefined): boolean {
  const h = new Set(have ?? []);
  return (want ?? []).every((m) => h.has(m));
}

/** The PV's spec.nodeAffinity.required admits the node (no affinity admits every node). */
export function volumeFitsNode(pv: Readonly<PersistentVolume>, node: Readonly<Node>): boolean {
  return volumeNodeAffinityMatches(pv, node);
}

/** `vol-<17 hex>` (zonal, like EBS) or `fs-<17 hex>` (regional, like EFS), derived from the claim's uid so a retried provisioning names the same disk. */
export function volumeHandle(provisioner: string, claimUid: string): string {
  const hex = createHash("sha256").update(claimUid).digest("hex").slice(0, 17);
  return provisioner === ZONAL_PROVISIONER ? `vol-${hex}` : `fs-${hex}`;
}

/** Only handles this controller makes are ever removed from the volume directory. */
export function isKubelabHandle(handle: string): boolean {
  return /^(vol|fs)-[0-9a-f]{17}$/.test(handle);
}
