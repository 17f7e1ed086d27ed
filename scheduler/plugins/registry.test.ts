import { describe, expect, it } from "vitest";
import { Status } from "../framework/types.ts";
import { fakeHandle } from "./testing.ts";
import { inTreeRegistry } from "./registry.ts";

describe("the in-tree registry", () => {
  const names = [
    "NodeName",
    "NodeUnschedulable",
    "NodePorts",
    "NodeResourcesFit",
    "NodeResourcesBalancedAllocation",
    "NodeAffinity",
    "TaintToleration",
    "PodTopologySpread",
    "InterPodAffinity",
    "VolumeZone",
    "VolumeBinding",
    "DefaultPreemption",
    "DefaultBinder",
  ];
  it("holds exactly kube-scheduler's in-tree plugins that kubelab implements", () => {
    expect(Object.keys(inTreeRegistry).sort()).toEqual([...names].sort());
  });
  for (const name of names) {
    it(`the factory registered as ${name} builds a plugin that calls itself ${name}`, () => {
      // DefaultPreemption can't be built without the profile's filters, which the framework passes in.
      const args = name === "DefaultPreemption" ? { runFilters: () => Status.success() } : undefined;
      expect(inTreeRegistry[name]!(args, fakeHandle()).name).toBe(name);
    });
  }
});
