import { describe, expect, it } from "vitest";
import type { Node, NodeSelectorOperator, NodeSelectorTerm, Pod } from "../../../api/index.ts";
import { Code, CycleState, type NodeScore } from "../../framework/types.ts";
import {
  fakeHandle,
  makePod,
  nodeInfoFor,
  nodeWithLabels,
  podWithNodeSelector,
  podWithPreferredNodeAffinity,
  podWithRequiredNodeAffinity,
} from "../testing.ts";
import { ERR_REASON_CONFLICT, ERR_REASON_ENFORCED, ERR_REASON_POD, NAME, NodeAffinity, newNodeAffinity } from "./index.ts";

const expr = (key: string, operator: NodeSelectorOperator, ...values: string[]): NodeSelectorTerm => ({
  matchExpressions: [{ key, operator, ...(values.length ? { values } : {}) }],
});
const nameIn = (...values: string[]): NodeSelectorTerm => ({ matchFields: [{ key: "metadata.name", operator: "In", values }] });

describe(`${NAME} Filter`, () => {
  const zoneA = nodeWithLabels("node-a", { "topology.kubernetes.io/zone": "a", gpu: "true", cores: "16" });
  const cases: { name: string; pod: Pod; node: Node; args?: Record<string, unknown>; code: number; reasons?: string[] }[] = [
    { name: "a pod without constraints fits any node", pod: makePod("p"), node: zoneA, code: Code.Success },
    { name: "a nodeSelector the node's labels satisfy fits", pod: podWithNodeSelector("p", { gpu: "true" }), node: zoneA, code: Code.Success },
    {
      name: "a nodeSelector with a value the node doesn't have is unresolvable",
      pod: podWithNodeSelector("p", { gpu: "false" }),
      node: zoneA,
      code: Code.UnschedulableAndUnresolvable,
      reasons: [ERR_REASON_POD],
    },
    {
      name: "a nodeSelector and required affinity must both hold",
      pod: makePod("p", {
        nodeSelector: { gpu: "true" },
        affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [expr("topology.kubernetes.io/zone", "In", "b")] } } },
      }),
      node: zoneA,
      code: Code.UnschedulableAndUnresolvable,
      reasons: [ERR_REASON_POD],
    },
    { name: "In matches a node whose label has one of the values", pod: podWithRequiredNodeAffinity("p", expr("topology.kubernetes.io/zone", "In", "b", "a")), node: zoneA, code: Code.Success },
    { name: "NotIn matches a node without the label at all", pod: podWithRequiredNodeAffinity("p", expr("disk", "NotIn", "hdd")), node: zoneA, code: Code.Success },
    {
      name: "NotIn rejects a node whose label has one of the values",
      pod: podWithRequiredNodeAffinity("p", expr("topology.kubernetes.io/zone", "NotIn", "a")),
      node: zoneA,
      code: Code.UnschedulableAndUnresolvable,
      reasons: [ERR_REASON_POD],
    },
    { name: "Exists matches a node with the label whatever its value", pod: podWithRequiredNodeAffinity("p", expr("gpu", "Exists")), node: zoneA, code: Code.Success },
    {
      name: "DoesNotExist rejects a node with the label",
      pod: podWithRequiredNodeAffinity("p", expr("gpu", "DoesNotExist")),
      node: zoneA,
      code: Code.UnschedulableAndUnresolvable,
      reasons: [ERR_REASON_POD],
    },
    { name: "Gt compares label values as integers", pod: podWithRequiredNodeAffinity("p", expr("cores", "Gt", "8")), node: zoneA, code: Code.Success },
    {
      name: "Lt rejects a node whose integer label is not smaller",
      pod: podWithRequiredNodeAffinity("p", expr("cores", "Lt", "16")),
      node: zoneA,
      code: Code.UnschedulableAndUnresolvable,
      reasons: [ERR_REASON_POD],
    },
    {
      name: "Gt rejects a node whose label is not an integer",
      pod: podWithRequiredNodeAffinity("p", expr("gpu", "Gt", "0")),
      node: zoneA,
      code: Code.UnschedulableAndUnresolvable,
      reasons: [ERR_REASON_POD],
    },
    {
      name: "expressions within a term are ANDed",
      pod: podWithRequiredNodeAffinity("p", { matchExpressions: [{ key: "gpu", operator: "Exists" }, { key: "topology.kubernetes.io/zone", operator: "In", values: ["b"] }] }),
      node: zoneA,
      code: Code.UnschedulableAndUnresolvable,
      reasons: [ERR_REASON_POD],
    },
    {
      name: "terms are ORed, so one matching term is enough",
      pod: podWithRequiredNodeAffinity("p", expr("topology.kubernetes.io/zone", "In", "b"), expr("gpu", "In", "true")),
      node: zoneA,
      code: Code.Success,
    },
    {
      name: "an empty term matches no node",
      pod: podWithRequiredNodeAffinity("p", {}),
      node: zoneA,
      code: Code.UnschedulableAndUnresolvable,
      reasons: [ERR_REASON_POD],
    },
    {
      name: "an invalid term is ignored while a valid one still matches",
      pod: podWithRequiredNodeAffinity("p", expr("gpu", "In"), expr("gpu", "Exists")),
      node: zoneA,
      code: Code.Success,
    },
    { name: "matchFields metadata.name In matches the named node", pod: podWithRequiredNodeAffinity("p", nameIn("node-a")), node: zoneA, code: Code.Success },
    {
      name: "matchFields metadata.name NotIn rejects the named node",
      pod: podWithRequiredNodeAffinity("p", { matchFields: [{ key: "metadata.name", operator: "NotIn", values: ["node-a"] }] }),
      node: zoneA,
      code: Code.UnschedulableAndUnresolvable,
      reasons: [ERR_REASON_POD],
    },
    {
      name: "a node outside the profile's added affinity is rejected with the enforced reason",
      pod: makePod("p"),
      node: zoneA,
      args: { addedAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [expr("topology.kubernetes.io/zone", "In", "b")] } } },
      code: Code.UnschedulableAndUnresolvable,
      reasons: [ERR_REASON_ENFORCED],
    },
  ];
  for (const tc of cases) {
    for (const withPreFilter of [true, false]) {
      it(`${tc.name}${withPreFilter ? "" : " (Filter without PreFilter)"}`, () => {
        const pl = newNodeAffinity(tc.args, fakeHandle()) as NodeAffinity;
        const state = new CycleState();
        if (withPreFilter) pl.preFilter(state, tc.pod);
        const status = pl.filter(state, tc.pod, nodeInfoFor(tc.node));
        expect(status.code).toBe(tc.code);
        expect(status.reasons).toEqual(tc.reasons ?? []);
      });
    }
  }
});

describe(`${NAME} PreFilter`, () => {
  const cases: { name: string; pod: Pod; code: number; nodeNames?: string[]; reasons?: string[] }[] = [
    { name: "a pod without nodeSelector or required affinity is skipped", pod: makePod("p"), code: Code.Skip },
    { name: "a nodeSelector alone restricts no node names", pod: podWithNodeSelector("p", { a: "b" }), code: Code.Success },
    { name: "terms naming nodes restrict Filter to the union of the names", pod: podWithRequiredNodeAffinity("p", nameIn("n1"), nameIn("n2")), code: Code.Success, nodeNames: ["n1", "n2"] },
    {
      name: "names in one term are intersected",
      pod: podWithRequiredNodeAffinity("p", { matchFields: [{ key: "metadata.name", operator: "In", values: ["n1"] }, { key: "metadata.name", operator: "In", values: ["n1"] }] }),
      code: Code.Success,
      nodeNames: ["n1"],
    },
    { name: "one term without names leaves every node eligible", pod: podWithRequiredNodeAffinity("p", nameIn("n1"), expr("zone", "Exists")), code: Code.Success },
    {
      name: "a term whose name requirements contradict each other makes the pod unschedulable everywhere",
      pod: podWithRequiredNodeAffinity("p", { matchFields: [{ key: "metadata.name", operator: "In", values: ["n1"] }, { key: "metadata.name", operator: "In", values: ["n2"] }] }),
      code: Code.UnschedulableAndUnresolvable,
      reasons: [ERR_REASON_CONFLICT],
    },
  ];
  for (const tc of cases) {
    it(tc.name, () => {
      const { result, status } = new NodeAffinity().preFilter(new CycleState(), tc.pod);
      expect(status.code).toBe(tc.code);
      expect(status.reasons).toEqual(tc.reasons ?? []);
      expect(result?.nodeNames ? [...result.nodeNames].sort() : undefined).toEqual(tc.nodeNames);
    });
  }
});

describe(`${NAME} Score`, () => {
  const nodes = [
    nodeWithLabels("n0", { zone: "a", disk: "ssd" }),
    nodeWithLabels("n1", { zone: "a" }),
    nodeWithLabels("n2", { zone: "b" }),
  ];
  const cases: { name: string; pod: Pod; args?: Record<string, unknown>; want: number[] }[] = [
    {
      name: "weights of matching preferred terms add up and the best node is scaled to 100",
      pod: podWithPreferredNodeAffinity("p", { weight: 2, preference: expr("zone", "In", "a") }, { weight: 6, preference: expr("disk", "In", "ssd") }),
      want: [100, 25, 0],
    },
    {
      name: "no node matching any preferred term leaves every score at 0",
      pod: podWithPreferredNodeAffinity("p", { weight: 5, preference: expr("zone", "In", "c") }),
      want: [0, 0, 0],
    },
    {
      name: "the profile's added preferred terms count alongside the pod's",
      pod: podWithPreferredNodeAffinity("p", { weight: 1, preference: expr("zone", "In", "a") }),
      args: { addedAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 3, preference: expr("zone", "In", "b") }] } },
      want: [33, 33, 100],
    },
  ];
  for (const tc of cases) {
    it(tc.name, () => {
      const pl = newNodeAffinity(tc.args, fakeHandle()) as NodeAffinity;
      const state = new CycleState();
      expect(pl.preScore(state, tc.pod).isSuccess()).toBe(true);
      const scores: NodeScore[] = nodes.map((n) => ({ name: n.metadata.name ?? "", score: pl.score(state, tc.pod, nodeInfoFor(n)).score }));
      pl.normalizeScore(state, tc.pod, scores);
      expect(scores.map((s) => s.score)).toEqual(tc.want);
    });
  }

  it("a pod without preferred terms is skipped at PreScore", () => {
    expect(new NodeAffinity().preScore(new CycleState(), makePod("p")).code).toBe(Code.Skip);
  });
  it("the factory builds the plugin under its registered name", () => {
    expect(newNodeAffinity(undefined, fakeHandle()).name).toBe("NodeAffinity");
  });
});
