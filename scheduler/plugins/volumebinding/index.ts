// VolumeBinding (basic): a pod's claims must be usable from the node — bound volumes' node
// affinity must admit it, and an unbound claim may only wait for the scheduler when its class
// says WaitForFirstConsumer (P6 adds dynamic provisioning). Upstream
// pkg/scheduler/framework/plugins/volumebinding.

import type { PersistentVolume, PersistentVolumeClaim, Pod, StorageClass } from "../../../api/index.ts";
import {
  ActionType,
  Status,
  type ClusterEvent,
  type CycleState,
  type EnqueueExtensions,
  type FilterPlugin,
  type Handle,
  type NodeInfo,
  type PluginFactory,
  type PreFilterPlugin,
  type PreFilterResult,
} from "../../framework/types.ts";
import { nodeSelectorMatches } from "./nodeselector.ts";

export const NAME = "VolumeBinding";

export const ErrReasonNodeConflict = "node(s) had volume node affinity conflict";
export const ErrReasonPVNotExist = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)";
export const ErrReasonUnboundImmediatePVC = "pod has unbound immediate PersistentVolumeClaims";

/** The pod's claims, sorted by what Filter must do with them. */
export interface PodVolumes {
  /** Bound claims and their volumes (undefined: the PV the claim names does not exist). */
  bound: { claim: Readonly<PersistentVolumeClaim>; pv: Readonly<PersistentVolume> | undefined }[];
  /** Unbound claims of a WaitForFirstConsumer class: provisioned once the pod has a node. */
  delayed: Readonly<PersistentVolumeClaim>[];
}

const PRE_FILTER_KEY = `PreFilter${NAME}`;

export class VolumeBinding implements PreFilterPlugin, FilterPlugin, EnqueueExtensions {
  readonly name = NAME;

  constructor(private readonly handle: Handle) {}

  /** Claims binding, volumes or classes appearing, or a node whose labels fit a volume, can help. */
  eventsToRegister(): ClusterEvent[] {
    return [
      { resource: "PersistentVolumeClaim", actionType: ActionType.Add | ActionType.Update },
      { resource: "PersistentVolume", actionType: ActionType.Add | ActionType.Update },
      { resource: "StorageClass", actionType: ActionType.Add | ActionType.Update },
      { resource: "Node", actionType: ActionType.Add | ActionType.UpdateNodeLabel },
    ];
  }

  preFilter(state: CycleState, pod: Readonly<Pod>): { result?: PreFilterResult; status: Status } {
    const volumes = this.handle.volumes;
    if (!volumes) return { status: Status.skip() };
    const namespace = pod.metadata.namespace ?? "";
    const podVolumes: PodVolumes = { bound: [], delayed: [] };
    let any = false;
    for (const v of pod.spec?.volumes ?? []) {
      const claimName = v.persistentVolumeClaim?.claimName;
      if (!claimName) continue;
      any = true;
      const claim = volumes.pvc(namespace, claimName) as Readonly<PersistentVolumeClaim> | undefined;
      if (!claim) return { status: Status.unresolvable(`persistentvolumeclaim "${claimName}" not found`) };
      if (claim.metadata.deletionTimestamp) return { status: Status.unresolvable(`persistentvolumeclaim "${claimName}" is being deleted`) };
      const pvName = claim.spec?.volumeName;
      if (pvName) {
        podVolumes.bound.push({ claim, pv: volumes.pv(pvName) as Readonly<PersistentVolume> | undefined });
        continue;
      }
      const className = claim.spec?.storageClassName ?? "";
      const sc = className ? (volumes.storageClass(className) as Readonly<StorageClass> | undefined) : undefined;
      // No class, or a class that binds at once: the PV controller binds it, not the scheduler.
      if (sc?.volumeBindingMode !== "WaitForFirstConsumer") return { status: Status.unresolvable(ErrReasonUnboundImmediatePVC) };
      podVolumes.delayed.push(claim);
    }
    if (!any) return { status: Status.skip() };
    state.write(PRE_FILTER_KEY, podVolumes);
    return { status: Status.success() };
  }

  filter(state: CycleState, _pod: Readonly<Pod>, nodeInfo: NodeInfo): Status {
    const s = state.read<PodVolumes>(PRE_FILTER_KEY);
    if (!s) return Status.success();
    const reasons = new Set<string>();
    for (const { pv } of s.bound) {
      if (!pv) reasons.add(ErrReasonPVNotExist);
      else if (!nodeSelectorMatches(pv.spec?.nodeAffinity?.required, nodeInfo.node)) reasons.add(ErrReasonNodeConflict);
    }
    // Delayed claims pass: provisioning in the node's topology is P6's (storage class allowedTopologies).
    return reasons.size > 0 ? Status.unresolvable(...reasons) : Status.success();
  }
}

export const newVolumeBinding: PluginFactory = (_args, handle) => new VolumeBinding(handle);
