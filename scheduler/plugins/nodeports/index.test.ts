import { describe, expect, it } from "vitest";
import type { ContainerPort } from "../../../api/index.ts";
import { Code, CycleState } from "../../framework/types.ts";
import { fakeHandle, makeNode, makePod, nodeInfoFor, podWithHostPorts } from "../testing.ts";
import { ERR_REASON, NAME, NodePorts, newNodePorts } from "./index.ts";

const port = (hostPort: number, protocol: ContainerPort["protocol"] = "TCP", hostIP?: string): ContainerPort => ({
  containerPort: 8080,
  hostPort,
  protocol,
  ...(hostIP ? { hostIP } : {}),
});

describe(NAME, () => {
  const cases: { name: string; want: ContainerPort[]; existing: ContainerPort[][]; code: number; reasons?: string[] }[] = [
    { name: "a pod without host ports fits a node whose ports are all taken", want: [], existing: [[port(80)]], code: Code.Success },
    { name: "a pod fits a node with no pods", want: [port(80)], existing: [], code: Code.Success },
    {
      name: "the same TCP port on all addresses conflicts",
      want: [port(80)],
      existing: [[port(80)]],
      code: Code.Unschedulable,
      reasons: [ERR_REASON],
    },
    { name: "the same port under another protocol does not conflict", want: [port(80, "UDP")], existing: [[port(80, "TCP")]], code: Code.Success },
    { name: "a different port does not conflict", want: [port(8080)], existing: [[port(80)]], code: Code.Success },
    {
      name: "a specific address conflicts with the same port bound on 0.0.0.0",
      want: [port(80, "TCP", "10.0.0.1")],
      existing: [[port(80)]],
      code: Code.Unschedulable,
      reasons: [ERR_REASON],
    },
    {
      name: "0.0.0.0 conflicts with the same port bound on a specific address",
      want: [port(80)],
      existing: [[port(80, "TCP", "10.0.0.1")]],
      code: Code.Unschedulable,
      reasons: [ERR_REASON],
    },
    {
      name: "two different specific addresses share a port without conflict",
      want: [port(80, "TCP", "10.0.0.2")],
      existing: [[port(80, "TCP", "10.0.0.1")]],
      code: Code.Success,
    },
    {
      name: "the same specific address and port conflict",
      want: [port(80, "TCP", "10.0.0.1")],
      existing: [[port(80, "TCP", "10.0.0.1")]],
      code: Code.Unschedulable,
      reasons: [ERR_REASON],
    },
    {
      name: "one conflicting port among several rejects the pod",
      want: [port(8081), port(9090, "UDP")],
      existing: [[port(8080)], [port(9090, "UDP")]],
      code: Code.Unschedulable,
      reasons: [ERR_REASON],
    },
    {
      name: "a port whose number is a suffix of a used port does not conflict",
      want: [port(80)],
      existing: [[port(8080)]],
      code: Code.Success,
    },
  ];
  for (const tc of cases) {
    for (const withPreFilter of [true, false]) {
      it(`${tc.name}${withPreFilter ? "" : " (Filter without PreFilter)"}`, () => {
        const pl = new NodePorts();
        const pod = podWithHostPorts("p", ...tc.want);
        const info = nodeInfoFor(makeNode("n"), ...tc.existing.map((ports, i) => makePod(`e${i}`, { ports, nodeName: "n" })));
        const state = new CycleState();
        if (withPreFilter) {
          const pre = pl.preFilter(state, pod);
          expect(pre.status.code).toBe(tc.want.length === 0 ? Code.Skip : Code.Success);
        }
        const status = pl.filter(state, pod, info);
        expect(status.code).toBe(tc.code);
        expect(status.reasons).toEqual(tc.reasons ?? []);
      });
    }
  }

  it("the factory builds the plugin under its registered name", () => {
    expect(newNodePorts(undefined, fakeHandle()).name).toBe("NodePorts");
  });
});
