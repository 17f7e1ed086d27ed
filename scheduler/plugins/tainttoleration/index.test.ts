import { describe, expect, it } from "vitest";
import type { Taint, Toleration } from "../../../api/index.ts";
import { Code, CycleState, type NodeScore } from "../../framework/types.ts";
import { fakeHandle, nodeInfoFor, nodeWithTaints, podWithTolerations } from "../testing.ts";
import { NAME, TaintToleration, defaultNormalizeScore, newTaintToleration } from "./index.ts";

describe(`${NAME} Filter`, () => {
  const cases: { name: string; taints: Taint[]; tolerations: Toleration[]; code: number; reasons: string[] }[] = [
    { name: "a node without taints accepts a pod without tolerations", taints: [], tolerations: [], code: Code.Success, reasons: [] },
    {
      name: "a NoSchedule taint rejects a pod without tolerations, naming the taint as upstream formats it",
      taints: [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }],
      tolerations: [],
      code: Code.UnschedulableAndUnresolvable,
      reasons: ["node(s) had untolerated taint {dedicated: gpu}"],
    },
    {
      name: "a taint without a value is printed with an empty value",
      taints: [{ key: "node.kubernetes.io/not-ready", effect: "NoExecute" }],
      tolerations: [],
      code: Code.UnschedulableAndUnresolvable,
      reasons: ["node(s) had untolerated taint {node.kubernetes.io/not-ready: }"],
    },
    {
      name: "an Equal toleration with the same key, value and effect tolerates the taint",
      taints: [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }],
      tolerations: [{ key: "dedicated", operator: "Equal", value: "gpu", effect: "NoSchedule" }],
      code: Code.Success,
      reasons: [],
    },
    {
      name: "an Equal toleration with a different value does not tolerate the taint",
      taints: [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }],
      tolerations: [{ key: "dedicated", value: "cpu", effect: "NoSchedule" }],
      code: Code.UnschedulableAndUnresolvable,
      reasons: ["node(s) had untolerated taint {dedicated: gpu}"],
    },
    {
      name: "an Exists toleration with an empty effect tolerates the key under every effect",
      taints: [
        { key: "dedicated", value: "gpu", effect: "NoSchedule" },
        { key: "dedicated", value: "x", effect: "NoExecute" },
      ],
      tolerations: [{ key: "dedicated", operator: "Exists" }],
      code: Code.Success,
      reasons: [],
    },
    {
      name: "an Exists toleration with no key tolerates every taint",
      taints: [{ key: "a", effect: "NoSchedule" }, { key: "b", value: "c", effect: "NoExecute" }],
      tolerations: [{ operator: "Exists" }],
      code: Code.Success,
      reasons: [],
    },
    {
      name: "a toleration for NoSchedule does not tolerate the same taint with NoExecute",
      taints: [{ key: "dedicated", value: "gpu", effect: "NoExecute" }],
      tolerations: [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }],
      code: Code.UnschedulableAndUnresolvable,
      reasons: ["node(s) had untolerated taint {dedicated: gpu}"],
    },
    {
      name: "a PreferNoSchedule taint never rejects a pod",
      taints: [{ key: "spot", value: "true", effect: "PreferNoSchedule" }],
      tolerations: [],
      code: Code.Success,
      reasons: [],
    },
    {
      name: "only the first untolerated taint is reported",
      taints: [
        { key: "a", value: "1", effect: "NoSchedule" },
        { key: "b", value: "2", effect: "NoSchedule" },
      ],
      tolerations: [],
      code: Code.UnschedulableAndUnresolvable,
      reasons: ["node(s) had untolerated taint {a: 1}"],
    },
  ];
  for (const tc of cases) {
    it(tc.name, () => {
      const status = new TaintToleration().filter(new CycleState(), podWithTolerations("p", ...tc.tolerations), nodeInfoFor(nodeWithTaints("n", ...tc.taints)));
      expect(status.code).toBe(tc.code);
      expect(status.reasons).toEqual(tc.reasons);
    });
  }
});

describe(`${NAME} Score`, () => {
  const cases: { name: string; tolerations: Toleration[]; nodes: Taint[][]; want: number[] }[] = [
    {
      name: "nodes with no PreferNoSchedule taints all score the maximum",
      tolerations: [],
      nodes: [[], [{ key: "x", effect: "NoSchedule" }]],
      want: [100, 100],
    },
    {
      name: "the node with more untolerated PreferNoSchedule taints scores lower",
      tolerations: [],
      nodes: [[], [{ key: "a", effect: "PreferNoSchedule" }], [{ key: "a", effect: "PreferNoSchedule" }, { key: "b", effect: "PreferNoSchedule" }]],
      want: [100, 50, 0],
    },
    {
      name: "a PreferNoSchedule taint the pod tolerates does not count against the node",
      tolerations: [{ key: "a", operator: "Exists", effect: "PreferNoSchedule" }],
      nodes: [[{ key: "a", effect: "PreferNoSchedule" }], [{ key: "b", effect: "PreferNoSchedule" }]],
      want: [100, 0],
    },
    {
      name: "a toleration limited to NoSchedule does not tolerate a PreferNoSchedule taint",
      tolerations: [{ key: "a", operator: "Exists", effect: "NoSchedule" }],
      nodes: [[{ key: "a", effect: "PreferNoSchedule" }], []],
      want: [0, 100],
    },
  ];
  for (const tc of cases) {
    it(tc.name, () => {
      const pl = new TaintToleration();
      const pod = podWithTolerations("p", ...tc.tolerations);
      const infos = tc.nodes.map((taints, i) => nodeInfoFor(nodeWithTaints(`n${i}`, ...taints)));
      const state = new CycleState();
      expect(pl.preScore(state, pod).isSuccess()).toBe(true);
      const scores: NodeScore[] = infos.map((ni) => {
        const r = pl.score(state, pod, ni);
        expect(r.status.isSuccess()).toBe(true);
        return { name: ni.node.metadata.name ?? "", score: r.score };
      });
      pl.normalizeScore(state, pod, scores);
      expect(scores.map((s) => s.score)).toEqual(tc.want);
    });
  }
});

describe("helpers", () => {
  it("defaultNormalizeScore scales to the maximum with integer division and reverses on request", () => {
    const scores: NodeScore[] = [{ name: "a", score: 1 }, { name: "b", score: 3 }, { name: "c", score: 0 }];
    defaultNormalizeScore(100, false, scores);
    expect(scores.map((s) => s.score)).toEqual([33, 100, 0]);
    const rev: NodeScore[] = [{ name: "a", score: 1 }, { name: "b", score: 3 }];
    defaultNormalizeScore(100, true, rev);
    expect(rev.map((s) => s.score)).toEqual([67, 0]);
  });
  it("the factory builds the plugin under its registered name", () => {
    expect(newTaintToleration(undefined, fakeHandle()).name).toBe("TaintToleration");
  });
});
