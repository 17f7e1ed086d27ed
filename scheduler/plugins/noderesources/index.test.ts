import { describe, expect, it } from "vitest";
import type { Pod, ResourceList } from "../../../api/index.ts";
import { Code, CycleState } from "../../framework/types.ts";
import { fakeHandle, makePod, nodeInfoFor, nodeWithAllocatable, podWithRequests } from "../testing.ts";
import { Fit, NAME, newFit, REASON_TOO_MANY_PODS } from "./index.ts";

const node4cpu8Gi: ResourceList = { cpu: "4", memory: "8Gi", pods: "110" };

describe(`${NAME} Filter`, () => {
  const cases: {
    name: string;
    pod: Pod;
    allocatable?: ResourceList;
    existing?: Pod[];
    args?: Record<string, unknown>;
    code: number;
    reasons?: string[];
  }[] = [
    { name: "a pod requesting nothing fits an empty node", pod: makePod("p"), code: Code.Success },
    { name: "a pod fits when the node has exactly the room it asks for", pod: podWithRequests("p", { cpu: "3", memory: "6Gi" }), existing: [podWithRequests("e", { cpu: "1", memory: "2Gi" })], code: Code.Success },
    {
      name: "a pod that needs more cpu than is left is unschedulable, preemption could help",
      pod: podWithRequests("p", { cpu: "2" }),
      existing: [podWithRequests("e", { cpu: "3" })],
      code: Code.Unschedulable,
      reasons: ["Insufficient cpu"],
    },
    {
      name: "a pod that needs more cpu than the whole node has is unresolvable",
      pod: podWithRequests("p", { cpu: "5" }),
      code: Code.UnschedulableAndUnresolvable,
      reasons: ["Insufficient cpu"],
    },
    {
      name: "every resource the node lacks is reported in one status",
      pod: podWithRequests("p", { cpu: "2", memory: "7Gi", "ephemeral-storage": "20Gi", "example.com/gpu": "1" }),
      allocatable: { ...node4cpu8Gi, "ephemeral-storage": "10Gi" },
      existing: [podWithRequests("e", { cpu: "3", memory: "2Gi" })],
      code: Code.UnschedulableAndUnresolvable,
      reasons: ["Insufficient cpu", "Insufficient memory", "Insufficient ephemeral-storage", "Insufficient example.com/gpu"],
    },
    {
      name: "a node at its pod limit rejects even a pod that requests nothing",
      pod: makePod("p"),
      allocatable: { cpu: "4", memory: "8Gi", pods: "1" },
      existing: [makePod("e")],
      code: Code.Unschedulable,
      reasons: [REASON_TOO_MANY_PODS],
    },
    {
      name: "the pod limit and a resource shortage are reported together",
      pod: podWithRequests("p", { memory: "1Gi" }),
      allocatable: { cpu: "4", memory: "8Gi", pods: "1" },
      existing: [podWithRequests("e", { memory: "8Gi" })],
      code: Code.Unschedulable,
      reasons: [REASON_TOO_MANY_PODS, "Insufficient memory"],
    },
    {
      name: "an extended resource the node has enough of fits",
      pod: podWithRequests("p", { "example.com/gpu": "2" }),
      allocatable: { ...node4cpu8Gi, "example.com/gpu": "4" },
      existing: [podWithRequests("e", { "example.com/gpu": "2" })],
      code: Code.Success,
    },
    {
      name: "an extended resource in use by other pods is insufficient but resolvable",
      pod: podWithRequests("p", { "example.com/gpu": "2" }),
      allocatable: { ...node4cpu8Gi, "example.com/gpu": "4" },
      existing: [podWithRequests("e", { "example.com/gpu": "3" })],
      code: Code.Unschedulable,
      reasons: ["Insufficient example.com/gpu"],
    },
    {
      name: "an ignored extended resource is not checked",
      pod: podWithRequests("p", { "example.com/gpu": "2" }),
      args: { ignoredResources: ["example.com/gpu"] },
      code: Code.Success,
    },
    {
      name: "an ignored extended resource group is not checked",
      pod: podWithRequests("p", { "example.com/gpu": "2" }),
      args: { ignoredResourceGroups: ["example.com"] },
      code: Code.Success,
    },
    {
      name: "an init container's larger request counts instead of the app containers' sum",
      pod: makePod("p", { requests: [{ cpu: "1" }], initRequests: [{ cpu: "3500m" }] }),
      existing: [podWithRequests("e", { cpu: "1" })],
      code: Code.Unschedulable,
      reasons: ["Insufficient cpu"],
    },
    {
      name: "the pod overhead is added to the containers' requests",
      pod: makePod("p", { requests: [{ memory: "7Gi" }], overhead: { memory: "1Gi" } }),
      existing: [podWithRequests("e", { memory: "1" })],
      code: Code.Unschedulable,
      reasons: ["Insufficient memory"],
    },
    {
      name: "requests of several containers add up",
      pod: podWithRequests("p", { cpu: "2" }, { cpu: "2" }, { cpu: "1m" }),
      code: Code.UnschedulableAndUnresolvable,
      reasons: ["Insufficient cpu"],
    },
  ];
  for (const tc of cases) {
    for (const withPreFilter of [true, false]) {
      it(`${tc.name}${withPreFilter ? "" : " (Filter without PreFilter)"}`, () => {
        const pl = newFit(tc.args, fakeHandle()) as Fit;
        const info = nodeInfoFor(nodeWithAllocatable("n", tc.allocatable ?? node4cpu8Gi), ...(tc.existing ?? []));
        const state = new CycleState();
        if (withPreFilter) expect(pl.preFilter(state, tc.pod).status.isSuccess()).toBe(true);
        const status = pl.filter(state, tc.pod, info);
        expect(status.code).toBe(tc.code);
        expect(status.reasons).toEqual(tc.reasons ?? []);
      });
    }
  }
});

describe(`${NAME} Score`, () => {
  const cases: { name: string; pod: Pod; nodes: { allocatable: ResourceList; existing: Pod[] }[]; args?: Record<string, unknown>; want: number[] }[] = [
    {
      name: "LeastAllocated scores the free share of cpu and memory after placing the pod, averaged",
      pod: podWithRequests("p", { cpu: "1", memory: "2Gi" }),
      nodes: [
        { allocatable: node4cpu8Gi, existing: [] },
        { allocatable: node4cpu8Gi, existing: [podWithRequests("e", { cpu: "2", memory: "2Gi" })] },
      ],
      // n0: cpu 75, memory 75 → 75. n1: cpu (4000-3000)*100/4000 = 25, memory 50 → 37 (integer division).
      want: [75, 37],
    },
    {
      name: "a pod without requests counts as 100m cpu and 200Mi memory, and so do the pods already there",
      pod: makePod("p"),
      nodes: [
        { allocatable: { cpu: "1", memory: "2000Mi", pods: "110" }, existing: [] },
        { allocatable: { cpu: "1", memory: "2000Mi", pods: "110" }, existing: [makePod("e")] },
      ],
      // n0: cpu 90, memory 90 → 90. n1: cpu 80, memory 80 → 80.
      want: [90, 80],
    },
    {
      name: "a node whose requests would exceed allocatable scores 0 for that resource",
      pod: podWithRequests("p", { cpu: "3", memory: "1Gi" }),
      nodes: [{ allocatable: node4cpu8Gi, existing: [podWithRequests("e", { cpu: "3" })] }],
      // cpu 6000 > 4000 → 0; memory: 1Gi + the existing pod's default 200Mi of 8Gi → 85; (0 + 85) / 2 = 42.
      want: [42],
    },
    {
      name: "MostAllocated prefers the fuller node",
      pod: podWithRequests("p", { cpu: "1", memory: "2Gi" }),
      args: { scoringStrategy: { type: "MostAllocated" } },
      nodes: [
        { allocatable: node4cpu8Gi, existing: [] },
        { allocatable: node4cpu8Gi, existing: [podWithRequests("e", { cpu: "2", memory: "2Gi" })] },
      ],
      want: [25, 62],
    },
    {
      name: "resource weights from the args weigh the average",
      pod: podWithRequests("p", { cpu: "1", memory: "2Gi" }),
      args: { scoringStrategy: { type: "LeastAllocated", resources: [{ name: "cpu", weight: 3 }, { name: "memory", weight: 1 }] } },
      nodes: [{ allocatable: node4cpu8Gi, existing: [podWithRequests("e", { cpu: "2", memory: "2Gi" })] }],
      // (25*3 + 50*1) / 4 = 31
      want: [31],
    },
    {
      name: "an extended resource in the scoring list is left out for a pod that does not request it",
      pod: podWithRequests("p", { cpu: "1", memory: "2Gi" }),
      args: { scoringStrategy: { resources: [{ name: "cpu", weight: 1 }, { name: "memory", weight: 1 }, { name: "example.com/gpu", weight: 5 }] } },
      nodes: [{ allocatable: { ...node4cpu8Gi, "example.com/gpu": "4" }, existing: [] }],
      want: [75],
    },
  ];
  for (const tc of cases) {
    it(tc.name, () => {
      const pl = newFit(tc.args, fakeHandle()) as Fit;
      const state = new CycleState();
      expect(pl.preScore(state, tc.pod).isSuccess()).toBe(true);
      const scores = tc.nodes.map((n, i) => pl.score(state, tc.pod, nodeInfoFor(nodeWithAllocatable(`n${i}`, n.allocatable), ...n.existing)));
      expect(scores.every((s) => s.status.isSuccess())).toBe(true);
      expect(scores.map((s) => s.score)).toEqual(tc.want);
    });
  }
});

describe(`${NAME} args`, () => {
  const bad: { name: string; args: Record<string, unknown>; error: RegExp }[] = [
    { name: "an unknown scoring strategy is refused", args: { scoringStrategy: { type: "RequestedToCapacityRatio" } }, error: /LeastAllocated or MostAllocated/ },
    { name: "a resource weight outside 1..100 is refused", args: { scoringStrategy: { resources: [{ name: "cpu", weight: 0 }] } }, error: /weight/ },
    { name: "ignoredResources that is not a list of strings is refused", args: { ignoredResources: "example.com/gpu" }, error: /ignoredResources/ },
  ];
  for (const tc of bad) {
    it(tc.name, () => {
      expect(() => newFit(tc.args, fakeHandle())).toThrow(tc.error);
    });
  }
  it("the factory builds the plugin under its registered name", () => {
    expect(newFit(undefined, fakeHandle()).name).toBe("NodeResourcesFit");
  });
});
