import { describe, expect, it } from "vitest";
import type { Node, Pod } from "../../../api/index.ts";
import { FakeClient, FakeRecorder } from "../../../client/testing.ts";
import { newNodeInfo } from "../../framework/nodeinfo.ts";
import { Code, CycleState, Status, type Handle, type NodeInfo } from "../../framework/types.ts";
import {
  DefaultPreemption,
  ErrReasonNotEligiblePolicy,
  ErrReasonNotEligibleTerminating,
  newDefaultPreemption,
  type PreemptionHandle,
  type RunFilters,
} from "./index.ts";

// ---- builders --------------------------------------------------------------------------------------

/** A node with room for `slots` pods (what the fake filter checks). */
function nodeWithSlots(name: string, slots: number): Node {
  return { apiVersion: "v1", kind: "Node", metadata: { name, labels: { slots: String(slots) } } };
}

function podWithPriority(name: string, priority: number, opts: { on?: string; terminating?: boolean; nominated?: string; never?: boolean } = {}): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default", uid: `uid-${name}`, ...(opts.terminating ? { deletionTimestamp: "2024-01-01T00:00:00Z" } : {}) },
    spec: {
      containers: [{ name: "c", image: "pause" }],
      priority,
      ...(opts.on ? { nodeName: opts.on } : {}),
      ...(opts.never ? { preemptionPolicy: "Never" as const } : {}),
    },
    ...(opts.nominated ? { status: { nominatedNodeName: opts.nominated } } : {}),
  };
}

/** The stand-in for the profile's filters: the pod fits while the node has a free slot. */
const fitsInSlots: RunFilters = (_state, _pod, ni) =>
  ni.pods.length + 1 <= Number(ni.node.metadata.labels?.["slots"] ?? 0) ? Status.success() : Status.unschedulable("Too many pods");

interface Fixture {
  plugin: DefaultPreemption;
  handle: Handle;
  client: FakeClient;
  recorder: FakeRecorder;
}

function fixture(nodes: Node[], pods: Pod[], preemptor: Pod): Fixture {
  const infos: NodeInfo[] = nodes.map((n) => newNodeInfo(n, pods.filter((p) => p.spec?.nodeName === n.metadata.name)));
  const client = new FakeClient([...pods, preemptor]);
  const recorder = new FakeRecorder();
  const handle: Handle = {
    snapshot: () => ({
      list: () => infos,
      get: (name) => infos.find((i) => i.node.metadata.name === name),
      havePodsWithAffinityList: () => [],
      havePodsWithRequiredAntiAffinityList: () => [],
    }),
    client,
    recorder,
  };
  return { plugin: newDefaultPreemption({ runFilters: fitsInSlots }, handle) as DefaultPreemption, handle, client, recorder };
}

/** Filter said every node is full (Unschedulable) unless overridden. */
function rejectedEverywhere(nodes: Node[], overrides: Record<string, Status> = {}): Map<string, Status> {
  return new Map(nodes.map((n) => [n.metadata.name!, overrides[n.metadata.name!] ?? Status.unschedulable("Too many pods")]));
}

// ---- cases -----------------------------------------------------------------------------------------

describe("DefaultPreemption", () => {
  const cases: {
    name: string;
    nodes: Node[];
    pods: Pod[];
    preemptor: Pod;
    statuses?: Record<string, Status>;
    wantNominated?: string;
    wantDeleted: string[];
    wantCode: number;
    wantMessage?: string;
  }[] = [
    {
      name: "evicts only the lowest-priority pod when that alone makes room, sparing the middle-priority one",
      nodes: [nodeWithSlots("n1", 2)],
      pods: [podWithPriority("low", 0, { on: "n1" }), podWithPriority("mid", 5, { on: "n1" })],
      preemptor: podWithPriority("high", 10),
      wantNominated: "n1",
      wantDeleted: ["low"],
      wantCode: Code.Success,
    },
    {
      name: "prefers the node whose most important victim has the lowest priority",
      nodes: [nodeWithSlots("n1", 1), nodeWithSlots("n2", 1)],
      pods: [podWithPriority("mid", 5, { on: "n1" }), podWithPriority("low", 1, { on: "n2" })],
      preemptor: podWithPriority("high", 10),
      wantNominated: "n2",
      wantDeleted: ["low"],
      wantCode: Code.Success,
    },
    {
      name: "between equally important victims, prefers the node with fewer of them",
      nodes: [nodeWithSlots("n1", 1), nodeWithSlots("n2", 1)],
      pods: [podWithPriority("a", 0, { on: "n1" }), podWithPriority("b", 0, { on: "n1" }), podWithPriority("c", 0, { on: "n2" })],
      preemptor: podWithPriority("high", 10),
      wantNominated: "n2",
      wantDeleted: ["c"],
      wantCode: Code.Success,
    },
    {
      name: "never evicts pods of equal or higher priority, and says so when nothing else could help",
      nodes: [nodeWithSlots("n1", 1)],
      pods: [podWithPriority("peer", 10, { on: "n1" })],
      preemptor: podWithPriority("high", 10),
      wantDeleted: [],
      wantCode: Code.Unschedulable,
      wantMessage: "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod",
    },
    {
      name: "skips nodes where Filter's verdict was unresolvable even if eviction would free room",
      nodes: [nodeWithSlots("n1", 1), nodeWithSlots("n2", 1)],
      pods: [podWithPriority("low", 0, { on: "n1" }), podWithPriority("mid", 5, { on: "n2" })],
      preemptor: podWithPriority("high", 10),
      statuses: { n1: Status.unresolvable("node(s) didn't match Pod's node affinity/selector") },
      wantNominated: "n2",
      wantDeleted: ["mid"],
      wantCode: Code.Success,
    },
    {
      name: "a pod with preemptionPolicy Never evicts nothing",
      nodes: [nodeWithSlots("n1", 1)],
      pods: [podWithPriority("low", 0, { on: "n1" })],
      preemptor: podWithPriority("high", 10, { never: true }),
      wantDeleted: [],
      wantCode: Code.Unschedulable,
      wantMessage: ErrReasonNotEligiblePolicy,
    },
    {
      name: "a pod whose earlier victims are still terminating on its nominated node waits instead of evicting more",
      nodes: [nodeWithSlots("n1", 1)],
      pods: [podWithPriority("dying", 0, { on: "n1", terminating: true })],
      preemptor: podWithPriority("high", 10, { nominated: "n1" }),
      wantDeleted: [],
      wantCode: Code.Unschedulable,
      wantMessage: ErrReasonNotEligibleTerminating,
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const f = fixture(c.nodes, c.pods, c.preemptor);
      const got = await f.plugin.postFilter(new CycleState(), c.preemptor, rejectedEverywhere(c.nodes, c.statuses));
      expect(got.status.code).toBe(c.wantCode);
      if (c.wantMessage) expect(got.status.message()).toBe(c.wantMessage);
      expect(got.nominatedNodeName).toBe(c.wantNominated);
      const writes = f.client.writeActions();
      expect(writes.filter((a) => a.verb === "delete").map((a) => a.name)).toEqual(c.wantDeleted);
      const patches = writes.filter((a) => a.verb === "patch");
      if (c.wantNominated) {
        expect(patches).toMatchObject([{ name: c.preemptor.metadata.name, patch: { status: { nominatedNodeName: c.wantNominated } } }]);
        expect(f.client.tracker("", "pods", "default", c.preemptor.metadata.name!)?.status).toMatchObject({ nominatedNodeName: c.wantNominated });
        for (const v of c.wantDeleted) expect(f.client.tracker("", "pods", "default", v)).toBeUndefined();
      } else {
        expect(patches).toEqual([]);
      }
    });
  }

  it("records a Preempted event on each victim naming the preemptor and the node", async () => {
    const nodes = [nodeWithSlots("n1", 1)];
    const f = fixture(nodes, [podWithPriority("low", 0, { on: "n1" })], podWithPriority("high", 10));
    await f.plugin.postFilter(new CycleState(), podWithPriority("high", 10), rejectedEverywhere(nodes));
    expect(f.recorder.events.join("\n")).toContain("Preempted by pod uid-high on node n1");
  });

  it("takes the profile's filters from the handle when the args carry none", async () => {
    const nodes = [nodeWithSlots("n1", 1)];
    const f = fixture(nodes, [podWithPriority("low", 0, { on: "n1" })], podWithPriority("high", 10));
    const handle: PreemptionHandle = { ...f.handle, runFilterPlugins: fitsInSlots };
    const got = await (newDefaultPreemption(undefined, handle) as DefaultPreemption).postFilter(new CycleState(), podWithPriority("high", 10), rejectedEverywhere(nodes));
    expect(got.nominatedNodeName).toBe("n1");
  });

  it("without filters from either place reports an error and evicts nothing", async () => {
    const nodes = [nodeWithSlots("n1", 1)];
    const f = fixture(nodes, [podWithPriority("low", 0, { on: "n1" })], podWithPriority("high", 10));
    const got = await (newDefaultPreemption(undefined, f.handle) as DefaultPreemption).postFilter(new CycleState(), podWithPriority("high", 10), rejectedEverywhere(nodes));
    expect(got.status.code).toBe(Code.Error);
    expect(f.client.writeActions()).toEqual([]);
  });
});
