import { describe, expect, it } from "vitest";
import type { Pod, ResourceList } from "../../../api/index.ts";
import { Code, CycleState } from "../../framework/types.ts";
import { fakeHandle, makePod, nodeInfoFor, nodeWithAllocatable, podWithRequests } from "../testing.ts";
import { BALANCED_ALLOCATION_NAME, BalancedAllocation, newBalancedAllocation } from "./balanced.ts";

const node4cpu8Gi: ResourceList = { cpu: "4", memory: "8Gi", pods: "110" };

describe(BALANCED_ALLOCATION_NAME, () => {
  const cases: { name: string; pod: Pod; nodes: { allocatable: ResourceList; existing: Pod[] }[]; args?: Record<string, unknown>; want: number[] }[] = [
    {
      name: "a node left with cpu and memory used in equal shares scores 100",
      pod: podWithRequests("p", { cpu: "1", memory: "2Gi" }),
      nodes: [{ allocatable: node4cpu8Gi, existing: [podWithRequests("e", { cpu: "1", memory: "2Gi" })] }],
      want: [100],
    },
    {
      name: "the node where the pod evens out usage beats the one where it skews it",
      pod: podWithRequests("p", { cpu: "1", memory: "1Gi" }),
      nodes: [
        // cpu 2/4 = .5, memory 1/8 = .125 → std .1875 → 81
        { allocatable: node4cpu8Gi, existing: [podWithRequests("e", { cpu: "1" })] },
        // cpu 1/4 = .25, memory 5/8 = .625 → std .1875 → 81; with 3 cpu: cpu 1, memory .625 → std .1875 → 81
        { allocatable: node4cpu8Gi, existing: [podWithRequests("e", { memory: "4Gi" })] },
        // cpu 1/4 = .25, memory 2/8 = .25 → 100
        { allocatable: node4cpu8Gi, existing: [podWithRequests("e", { memory: "1Gi" })] },
      ],
      want: [81, 81, 100],
    },
    {
      name: "fractions above 1 are capped, so an overcommitted node is not rewarded",
      pod: podWithRequests("p", { cpu: "8", memory: "1Gi" }),
      nodes: [{ allocatable: node4cpu8Gi, existing: [] }],
      // cpu min(2, 1) = 1, memory .125 → std .4375 → 56
      want: [56],
    },
    {
      name: "containers without requests count as zero here, not as the 100m/200Mi defaults",
      pod: makePod("p", { requests: [{ cpu: "1", memory: "2Gi" }, {}] }),
      nodes: [{ allocatable: node4cpu8Gi, existing: [makePod("e")] }],
      want: [100],
    },
  ];
  for (const tc of cases) {
    it(tc.name, () => {
      const pl = newBalancedAllocation(tc.args, fakeHandle()) as BalancedAllocation;
      const state = new CycleState();
      expect(pl.preScore(state, tc.pod).isSuccess()).toBe(true);
      const scores = tc.nodes.map((n, i) => pl.score(state, tc.pod, nodeInfoFor(nodeWithAllocatable(`n${i}`, n.allocatable), ...n.existing)));
      expect(scores.map((s) => s.score)).toEqual(tc.want);
    });
  }

  it("a pod that requests nothing is skipped, so best-effort pods are not piled onto one node", () => {
    expect(new BalancedAllocation().preScore(new CycleState(), makePod("p")).code).toBe(Code.Skip);
  });

  it("a malformed resources list in the args is refused", () => {
    expect(() => newBalancedAllocation({ resources: [{ weight: 1 }] }, fakeHandle())).toThrow(/name/);
  });
});
