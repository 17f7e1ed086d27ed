// The in-tree plugins by name (kube-scheduler's plugins/registry.go): profiles name plugins, and
// the framework builds each one from this map with its args and the handle.

import type { PluginFactory } from "../framework/types.ts";
import { NAME as DefaultBinder, newDefaultBinder } from "./defaultbinder/index.ts";
import { NAME as DefaultPreemption, newDefaultPreemption } from "./defaultpreemption/index.ts";
import { NAME as InterPodAffinity, newInterPodAffinity } from "./interpodaffinity/index.ts";
import { NAME as NodeAffinity, newNodeAffinity } from "./nodeaffinity/index.ts";
import { NAME as NodeName, newNodeName } from "./nodename/index.ts";
import { NAME as NodePorts, newNodePorts } from "./nodeports/index.ts";
import { BALANCED_ALLOCATION_NAME as NodeResourcesBalancedAllocation, NAME as NodeResourcesFit, newBalancedAllocation, newFit } from "./noderesources/index.ts";
import { NAME as NodeUnschedulable, newNodeUnschedulable } from "./nodeunschedulable/index.ts";
import { NAME as PodTopologySpread, newPodTopologySpread } from "./podtopologyspread/index.ts";
import { NAME as TaintToleration, newTaintToleration } from "./tainttoleration/index.ts";
import { NAME as VolumeBinding, newVolumeBinding } from "./volumebinding/index.ts";
import { NAME as VolumeZone, newVolumeZone } from "./volumezone/index.ts";

/** Plugin name → factory for every in-tree plugin. */
export const inTreeRegistry: Readonly<Record<string, PluginFactory>> = {
  [NodeName]: newNodeName,
  [NodeUnschedulable]: newNodeUnschedulable,
  [NodePorts]: newNodePorts,
  [NodeResourcesFit]: newFit,
  [NodeResourcesBalancedAllocation]: newBalancedAllocation,
  [NodeAffinity]: newNodeAffinity,
  [TaintToleration]: newTaintToleration,
  [PodTopologySpread]: newPodTopologySpread,
  [InterPodAffinity]: newInterPodAffinity,
  [VolumeZone]: newVolumeZone,
  [VolumeBinding]: newVolumeBinding,
  [DefaultPreemption]: newDefaultPreemption,
  [DefaultBinder]: newDefaultBinder,
};
