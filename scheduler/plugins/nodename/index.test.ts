import { describe, expect, it } from "vitest";
import { Code, CycleState } from "../../framework/types.ts";
import { fakeHandle, makeNode, makePod, nodeInfoFor } from "../testing.ts";
import { ERR_REASON, NAME, NodeName, newNodeName } from "./index.ts";

describe(NAME, () => {
  const cases: { name: string; podNodeName?: string; node: string; code: number; reasons: string[] }[] = [
    { name: "a pod that names no node fits any node", node: "node-a", code: Code.Success, reasons: [] },
    { name: "a pod that names this node fits it", podNodeName: "node-a", node: "node-a", code: Code.Success, reasons: [] },
    {
      name: "a pod that names another node is rejected as unresolvable with upstream's reason",
      podNodeName: "node-b",
      node: "node-a",
      code: Code.UnschedulableAndUnresolvable,
      reasons: [ERR_REASON],
    },
  ];
  for (const tc of cases) {
    it(tc.name, () => {
      const status = new NodeName().filter(new CycleState(), makePod("p", { nodeName: tc.podNodeName }), nodeInfoFor(makeNode(tc.node)));
      expect(status.code).toBe(tc.code);
      expect(status.reasons).toEqual(tc.reasons);
    });
  }

  it("the factory builds the plugin under its registered name", () => {
    expect(newNodeName(undefined, fakeHandle()).name).toBe("NodeName");
  });
});
