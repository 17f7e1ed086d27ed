import { describe, expect, it } from "vitest";
import type { Toleration } from "../../../api/index.ts";
import { Code, CycleState } from "../../framework/types.ts";
import { fakeHandle, makeNode, nodeInfoFor, podWithTolerations } from "../testing.ts";
import { ERR_REASON_UNSCHEDULABLE, NAME, NodeUnschedulable, newNodeUnschedulable } from "./index.ts";

describe(NAME, () => {
  const cases: { name: string; unschedulable: boolean; tolerations: Toleration[]; code: number; reasons: string[] }[] = [
    { name: "a schedulable node accepts a pod without tolerations", unschedulable: false, tolerations: [], code: Code.Success, reasons: [] },
    {
      name: "a cordoned node rejects a pod without tolerations as unresolvable",
      unschedulable: true,
      tolerations: [],
      code: Code.UnschedulableAndUnresolvable,
      reasons: [ERR_REASON_UNSCHEDULABLE],
    },
    {
      name: "a cordoned node accepts a pod that tolerates the unschedulable taint with Exists",
      unschedulable: true,
      tolerations: [{ key: "node.kubernetes.io/unschedulable", operator: "Exists", effect: "NoSchedule" }],
      code: Code.Success,
      reasons: [],
    },
    {
      name: "a cordoned node accepts a pod that tolerates everything",
      unschedulable: true,
      tolerations: [{ operator: "Exists" }],
      code: Code.Success,
      reasons: [],
    },
    {
      name: "a cordoned node rejects a pod whose toleration for the key is limited to NoExecute",
      unschedulable: true,
      tolerations: [{ key: "node.kubernetes.io/unschedulable", operator: "Exists", effect: "NoExecute" }],
      code: Code.UnschedulableAndUnresolvable,
      reasons: [ERR_REASON_UNSCHEDULABLE],
    },
  ];
  for (const tc of cases) {
    it(tc.name, () => {
      const node = makeNode("n", { unschedulable: tc.unschedulable });
      const status = new NodeUnschedulable().filter(new CycleState(), podWithTolerations("p", ...tc.tolerations), nodeInfoFor(node));
      expect(status.code).toBe(tc.code);
      expect(status.reasons).toEqual(tc.reasons);
    });
  }

  it("the factory builds the plugin under its registered name", () => {
    expect(newNodeUnschedulable(undefined, fakeHandle()).name).toBe("NodeUnschedulable");
  });
});
