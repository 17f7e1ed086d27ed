// VolumeZone: a pod whose claims are bound to zonal PersistentVolumes (zone/region labels on the PV)
// may only run in those zones (upstream pkg/scheduler/framework/plugins/volumezone).

import type { PersistentVolume, PersistentVolumeClaim, Pod } from "../../../api/index.ts";
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

export const NAME = "VolumeZone";

export const ErrReasonConflict = "node(s) had no available volume zone";

export const LABEL_TOPOLOGY_ZONE = "topology.kubernetes.io/zone";
export const LABEL_TOPOLOGY_REGION = "topology.kubernetes.io/region";
const LABEL_FAILURE_DOMAIN_BETA_ZONE = "failure-domain.beta.kubernetes.io/zone";
const LABEL_FAILURE_DOMAIN_BETA_REGION = "failure-domain.beta.kubernetes.io/region";
const TOPOLOGY_LABELS = [LABEL_FAILURE_DOMAIN_BETA_ZONE, LABEL_FAILURE_DOMAIN_BETA_REGION, LABEL_TOPOLOGY_ZONE, LABEL_TOPOLOGY_REGION];
/** A volume replicated across zones lists them as "zone-a__zone-b" (volumehelpers.LabelMultiZoneDelimiter). */
const MULTI_ZONE_DELIMITER = "__";

/** A PV's topology label: the node must carry `key` with one of `values`. */
interface PVTopology {
  key: string;
  values: ReadonlySet<string>;
}

const PRE_FILTER_KEY = `PreFilter${NAME}`;

export class VolumeZone implements PreFilterPlugin, FilterPlugin, EnqueueExtensions {
  readonly name = NAME;

  constructor(private readonly handle: Handle) {}

  /** A claim getting bound, a PV relabelled, or a node in the right zone appearing can help. */
  eventsToRegister(): ClusterEvent[] {
    return [
      { resource: "StorageClass", actionType: ActionType.Add },
      { resource: "Node", actionType: ActionType.Add | ActionType.UpdateNodeLabel },
      { resource: "PersistentVolumeClaim", actionType: ActionType.Add | ActionType.Update },
      { resource: "PersistentVolume", actionType: ActionType.Add | ActionType.Update },
    ];
  }

  /** Looks the pod's claims and volumes up once; Filter only compares labels. */
  preFilter(state: CycleState, pod: Readonly<Pod>): { result?: PreFilterResult; status: Status } {
    const volumes = this.handle.volumes;
    if (!volumes) return { status: Status.skip() };
    const namespace = pod.metadata.namespace ?? "";
    const topologies: PVTopology[] = [];
    for (const v of pod.spec?.volumes ?? []) {
      const claimName = v.persistentVolumeClaim?.claimName;
      if (!claimName) continue;
      const pvc = volumes.pvc(namespace, claimName) as Readonly<PersistentVolumeClaim> | undefined;
      if (!pvc) return { status: Status.unresolvable(`persistentvolumeclaim "${claimName}" not found`) };
      const pvName = pvc.spec?.volumeName;
      if (!pvName) continue; // unbound: VolumeBinding decides where it may be provisioned
      const pv = volumes.pv(pvName) as Readonly<PersistentVolume> | undefined;
      if (!pv) return { status: Status.unresolvable(`persistentvolume "${pvName}" not found`) };
      const labels = pv.metadata.labels ?? {};
      for (const key of TOPOLOGY_LABELS) {
        const value = labels[key];
        if (value !== undefined) topologies.push({ key, values: new Set(value.split(MULTI_ZONE_DELIMITER)) });
      }
    }
    if (topologies.length === 0) return { status: Status.skip() };
    state.write(PRE_FILTER_KEY, topologies);
    return { status: Status.success() };
  }

  filter(state: CycleState, _pod: Readonly<Pod>, nodeInfo: NodeInfo): Status {
    const topologies = state.read<readonly PVTopology[]>(PRE_FILTER_KEY);
    if (!topologies) return Status.success();
    const labels = nodeInfo.node.metadata.labels ?? {};
    // A node with no zone or region labels at all is not zoned: any zonal volume may reach it (as upstream).
    if (!TOPOLOGY_LABELS.some((k) => labels[k] !== undefined)) return Status.success();
    for (const t of topologies) {
      // A PV with the beta label still matches a node with only the GA label, and vice versa.
      const value = labels[t.key] ?? labels[translateLabel(t.key)];
      if (value === undefined || !t.values.has(value)) return Status.unresolvable(ErrReasonConflict);
    }
    return Status.success();
  }
}

function translateLabel(key: string): string {
  switch (key) {
    case LABEL_FAILURE_DOMAIN_BETA_ZONE:
      return LABEL_TOPOLOGY_ZONE;
    case LABEL_FAILURE_DOMAIN_BETA_REGION:
      return LABEL_TOPOLOGY_REGION;
    case LABEL_TOPOLOGY_ZONE:
      return LABEL_FAILURE_DOMAIN_BETA_ZONE;
    case LABEL_TOPOLOGY_REGION:
      return LABEL_FAILURE_DOMAIN_BETA_REGION;
    default:
      return key;
  }
}

export const newVolumeZone: PluginFactory = (_args, handle) => new VolumeZone(handle);
