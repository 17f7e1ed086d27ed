// Scale-up: one autoscaler loop over a FakeClient — which group+zone is chosen (zone selector,
// taints, least waste), maxSize caps, upcoming nodes not counted twice, and the events' wording.

import { describe, expect, it } from "vitest";
import { notTriggerScaleUpMessage, triggeredScaleUpMessage } from "./scaleup.ts";
import { groupConfigMap, harness, makeNode, makePod } from "./testing.ts";

const ZONE = "topology.kubernetes.io/zone";

/** Two zones of "general" with one full Ready node each. */
function twoZones() {
  return [
    groupConfigMap({ group: "general", zone: "local-1a", min: 1, max: 5, instances: ["general-local-1a-0"] }),
    groupConfigMap({ group: "general", zone: "local-1b", min: 1, max: 5, instances: ["general-local-1b-0"] }),
    makeNode("general-local-1a-0", { group: "general", zone: "local-1a" }),
    makeNode("general-local-1b-0", { group: "general", zone: "local-1b" }),
    makePod("full-a", { nodeName: "general-local-1a-0", cpu: "3500m" }),
    makePod("full-b", { nodeName: "general-local-1b-0", cpu: "3500m" }),
  ];
}

describe("messages", () => {
  it("prints the group size change as upstream", () => {
    expect(triggeredScaleUpMessage([{ name: "kubelab-nodegroup-general-local-1b", from: 1, to: 4, max: 5 }])).toBe(
      "pod triggered scale-up: [{kubelab-nodegroup-general-local-1b 1->4 (max: 5)}]",
    );
  });
  it("aggregates reasons per group, sorted", () => {
    const m = new Map([
      ["a", new Set(["node(s) didn't match Pod's node affinity/selector"])],
      ["b", new Set(["max node group size reached"])],
      ["c", new Set(["node(s) didn't match Pod's node affinity/selector"])],
    ]);
    expect(notTriggerScaleUpMessage(m)).toBe("pod didn't trigger scale-up: 1 max node group size reached, 2 node(s) didn't match Pod's node affinity/selector");
  });
});

describe("scale-up", () => {
  it("scales the zone the pods select, by bin-packing them onto template nodes", async () => {
    const pods = [1, 2, 3].map((i) => makePod(`web-${i}`, { cpu: "3", nodeSelector: { [ZONE]: "local-1b" } }));
    const h = harness([...twoZones(), ...pods]);
    const r = await h.autoscaler.runOnce(h.ctx);
    expect(r.scaleUp).toEqual({ group: "kubelab-nodegroup-general-local-1b", from: 1, to: 4, pods: ["default/web-1", "default/web-2", "default/web-3"] });
    expect(h.group("general", "local-1b").desiredCapacity).toBe(4);
    expect(h.group("general", "local-1a").desiredCapacity).toBe(1);
    const events = h.events("TriggeredScaleUp");
    expect(events).toHaveLength(3);
    for (const e of events) expect(e).toMatch(/pod triggered scale-up: \[\{.*general.*local-1b.*1->[45] \(max: 5\)\}\]/);
    expect(h.events("NotTriggerScaleUp")).toEqual([]);
  });

  it("does not scale for pods that fit an existing node", async () => {
    const h = harness([
      groupConfigMap({ group: "general", zone: "local-1a", max: 5, instances: ["n1"] }),
      makeNode("n1", { group: "general", zone: "local-1a" }),
      makePod("small", { cpu: "1" }),
    ]);
    const r = await h.autoscaler.runOnce(h.ctx);
    expect(r.scaleUp).toBeUndefined();
    expect(h.group("general", "local-1a").desiredCapacity).toBe(1);
    expect(h.recorder.events).toEqual([]);
  });

  it("never picks a group whose taint the pod does not tolerate", async () => {
    const taint = { key: "dedicated", value: "gpu", effect: "NoSchedule" as const };
    const h = harness([
      // The tainted group is the better fit (less waste) but must not be chosen.
      groupConfigMap({ group: "gpu", zone: "local-1a", max: 5, cpu: "2", memory: "2Gi", taints: [taint] }),
      groupConfigMap({ group: "general", zone: "local-1a", max: 5, cpu: "16", memory: "64Gi" }),
      makePod("web", { cpu: "1500m", memory: "1Gi" }),
    ]);
    const r = await h.autoscaler.runOnce(h.ctx);
    expect(r.scaleUp?.group).toBe("kubelab-nodegroup-general-local-1a");
    expect(r.scaleUp).toMatchObject({ from: 0, to: 1 });
    expect(h.group("gpu", "local-1a").desiredCapacity).toBe(0);
  });

  it("picks the tainted group for a pod that tolerates it when it wastes less", async () => {
    const taint = { key: "dedicated", value: "gpu", effect: "NoSchedule" as const };
    const h = harness([
      groupConfigMap({ group: "gpu", zone: "local-1a", max: 5, cpu: "2", memory: "2Gi", taints: [taint] }),
      groupConfigMap({ group: "general", zone: "local-1a", max: 5, cpu: "16", memory: "64Gi" }),
      makePod("trainer", { cpu: "1500m", memory: "1Gi", tolerations: [{ key: "dedicated", operator: "Equal", value: "gpu", effect: "NoSchedule" }] }),
    ]);
    const r = await h.autoscaler.runOnce(h.ctx);
    expect(r.scaleUp?.group).toBe("kubelab-nodegroup-gpu-local-1a");
  });

  it("chooses the least-waste option", async () => {
    const h = harness([
      groupConfigMap({ group: "small", zone: "local-1a", max: 10, cpu: "2", memory: "4Gi" }),
      groupConfigMap({ group: "large", zone: "local-1a", max: 10, cpu: "16", memory: "64Gi" }),
      makePod("a", { cpu: "1500m", memory: "3Gi" }),
      makePod("b", { cpu: "1500m", memory: "3Gi" }),
    ]);
    const r = await h.autoscaler.runOnce(h.ctx);
    // small: 2 nodes, waste (4-3)/4 + (8-6)/8 = 0.5; large: 1 node, waste 13/16 + 58/64 ≈ 1.72.
    expect(r.plan.options.map((o) => [o.group.state.group, o.nodeCount, Number(o.waste.toFixed(3))])).toEqual([
      ["large", 1, 1.719],
      ["small", 2, 0.5],
    ]);
    expect(r.scaleUp).toMatchObject({ group: "kubelab-nodegroup-small-local-1a", from: 0, to: 2 });
  });

  it("caps at maxSize, and reports max size reached once the group is full", async () => {
    const pods = [1, 2, 3, 4].map((i) => makePod(`big-${i}`, { cpu: "3" }));
    const h = harness([groupConfigMap({ group: "general", zone: "local-1a", min: 0, max: 2 }), ...pods]);
    const r = await h.autoscaler.runOnce(h.ctx);
    expect(r.scaleUp).toMatchObject({ from: 0, to: 2 });
    expect(r.scaleUp?.pods).toHaveLength(2);
    expect(h.events("TriggeredScaleUp")[0]).toBe("Normal TriggeredScaleUp pod triggered scale-up: [{kubelab-nodegroup-general-local-1a 0->2 (max: 2)}]");
    // As upstream, no NotTriggerScaleUp in the loop that scaled up; the next loop explains the two pods left over.
    expect(h.events("NotTriggerScaleUp")).toEqual([]);
    expect(r.plan.noScaleUp.map((n) => n.message)).toEqual(["pod didn't trigger scale-up: 1 max node group size reached", "pod didn't trigger scale-up: 1 max node group size reached"]);
    await h.clock.advance(10_000);
    await h.autoscaler.runOnce(h.ctx);
    expect(h.events("NotTriggerScaleUp")).toEqual([
      "Normal NotTriggerScaleUp pod didn't trigger scale-up: 1 max node group size reached",
      "Normal NotTriggerScaleUp pod didn't trigger scale-up: 1 max node group size reached",
    ]);
    expect(h.group("general", "local-1a").desiredCapacity).toBe(2);
  });

  it("explains why no group helps: selector mismatch and max size, aggregated over groups", async () => {
    const h = harness([
      groupConfigMap({ group: "general", zone: "local-1a", max: 5 }),
      groupConfigMap({ group: "general", zone: "local-1b", max: 1, instances: ["b0"] }),
      groupConfigMap({ group: "batch", zone: "local-1a", max: 5 }),
      makeNode("b0", { group: "general", zone: "local-1b" }),
      makePod("filler", { nodeName: "b0", cpu: "4" }),
      makePod("web", { cpu: "1", nodeSelector: { [ZONE]: "local-1b" } }),
    ]);
    const r = await h.autoscaler.runOnce(h.ctx);
    expect(r.scaleUp).toBeUndefined();
    expect(h.events()).toEqual(["Normal NotTriggerScaleUp pod didn't trigger scale-up: 1 max node group size reached, 2 node(s) didn't match Pod's node affinity/selector"]);
  });

  it("records NotTriggerScaleUp at most once a minute per pod", async () => {
    const h = harness([groupConfigMap({ group: "general", zone: "local-1a", max: 5 }), makePod("huge", { cpu: "64" })]);
    await h.autoscaler.runOnce(h.ctx);
    await h.clock.advance(10_000);
    await h.autoscaler.runOnce(h.ctx);
    expect(h.events("NotTriggerScaleUp")).toEqual(["Normal NotTriggerScaleUp pod didn't trigger scale-up: 1 Insufficient cpu"]);
    await h.clock.advance(60_000);
    await h.autoscaler.runOnce(h.ctx);
    expect(h.events("NotTriggerScaleUp")).toHaveLength(2);
  });

  it("needs the zone of a pod's zonal volume", async () => {
    const pv = {
      apiVersion: "v1",
      kind: "PersistentVolume",
      metadata: { name: "pv-1", labels: { [ZONE]: "local-1b" } },
      spec: {
        capacity: { storage: "1Gi" },
        accessModes: ["ReadWriteOnce"],
        hostPath: { path: "/tmp/pv-1" },
        claimRef: { namespace: "default", name: "data" },
        nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: ZONE, operator: "In", values: ["local-1b"] }] }] } },
      },
      status: { phase: "Bound" },
    };
    const pvc = {
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: { name: "data", namespace: "default", annotations: { "pv.kubernetes.io/bind-completed": "yes" } },
      spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } }, volumeName: "pv-1" },
      status: { phase: "Bound" },
    };
    const h = harness([
      groupConfigMap({ group: "general", zone: "local-1a", max: 5 }),
      groupConfigMap({ group: "general", zone: "local-1b", max: 5 }),
      pv,
      pvc,
      makePod("db", { cpu: "1", volumes: [{ name: "data", persistentVolumeClaim: { claimName: "data" } }] }),
    ]);
    const r = await h.autoscaler.runOnce(h.ctx);
    expect(r.scaleUp?.group).toBe("kubelab-nodegroup-general-local-1b");
  });
});

describe("upcoming nodes", () => {
  it("counts instances without a Ready node as capacity", async () => {
    const h = harness([
      groupConfigMap({ group: "general", zone: "local-1a", max: 5, instances: ["n1", "n2"], launchedAt: Date.UTC(2026, 11, 3, 5, 59, 0) }),
      makeNode("n1", { group: "general", zone: "local-1a" }),
      makePod("filler", { nodeName: "n1", cpu: "4" }),
      makePod("web", { cpu: "2" }),
    ]);
    const r = await h.autoscaler.runOnce(h.ctx);
    expect(r.scaleUp).toBeUndefined();
    expect(h.recorder.events).toEqual([]);
  });

  it("does not scale again while the nodes it asked for are not launched or Ready", async () => {
    const pods = [1, 2].map((i) => makePod(`web-${i}`, { cpu: "3" }));
    const h = harness([groupConfigMap({ group: "general", zone: "local-1a", max: 5 }), ...pods]);
    const first = await h.autoscaler.runOnce(h.ctx);
    expect(first.scaleUp).toMatchObject({ from: 0, to: 2 });
    // The node group controller has not launched anything yet, the pods are still pending.
    await h.clock.advance(10_000);
    const second = await h.autoscaler.runOnce(h.ctx);
    expect(second.scaleUp).toBeUndefined();
    expect(h.group("general", "local-1a").desiredCapacity).toBe(2);
    expect(h.events("TriggeredScaleUp")).toHaveLength(2);
    expect(h.events("NotTriggerScaleUp")).toEqual([]);
  });

  it("adds nodes for pods the upcoming ones cannot hold", async () => {
    const pods = [1, 2, 3].map((i) => makePod(`web-${i}`, { cpu: "3" }));
    const h = harness([groupConfigMap({ group: "general", zone: "local-1a", max: 5, desired: 1 }), groupConfigMap({ group: "other", zone: "local-1b", max: 5 }), ...pods]);
    const r = await h.autoscaler.runOnce(h.ctx);
    // One pod fits the upcoming node of general; "general" is still coming up, so "other" takes the rest.
    expect(r.scaleUp).toMatchObject({ group: "kubelab-nodegroup-other-local-1b", from: 0, to: 2 });
    expect(h.group("general", "local-1a").desiredCapacity).toBe(1);
  });

  it("terminates instances that never registered within max-node-provision-time and backs the group off", async () => {
    const h = harness(
      [
        groupConfigMap({ group: "general", zone: "local-1a", min: 1, max: 5, instances: ["n1", "n2"], launchedAt: Date.UTC(2026, 11, 3, 5, 40, 0) }),
        groupConfigMap({ group: "general", zone: "local-1b", min: 0, max: 5 }),
        makeNode("n1", { group: "general", zone: "local-1a" }),
        makePod("filler", { nodeName: "n1", cpu: "4" }),
        makePod("web", { cpu: "2" }),
      ],
      { maxNodeProvisionTimeMs: 15 * 60_000 },
    );
    const r = await h.autoscaler.runOnce(h.ctx);
    // n2 was launched 20 minutes ago and has no Node: terminated; the pod gets a node in the other zone.
    const a = h.group("general", "local-1a");
    expect(a.instances.map((i) => i.name)).toEqual(["n1"]);
    expect(a.desiredCapacity).toBe(1);
    expect(r.scaleUp).toMatchObject({ group: "kubelab-nodegroup-general-local-1b", from: 0, to: 1 });
    expect(r.status?.nodeGroups.find((g) => g.name === "kubelab-nodegroup-general-local-1a")?.scaleUp).toMatchObject({
      status: "Backoff",
      backoffInfo: { errorCode: "timeout", errorMessage: "Scale-up timed out for node group kubelab-nodegroup-general-local-1a after 15m" },
    });
  });

  it("scales a backed-off group again once the backoff is over", async () => {
    const h = harness(
      [
        groupConfigMap({ group: "general", zone: "local-1a", min: 1, max: 5, instances: ["n1", "n2"], launchedAt: Date.UTC(2026, 11, 3, 5, 40, 0) }),
        makeNode("n1", { group: "general", zone: "local-1a" }),
        makePod("filler", { nodeName: "n1", cpu: "4" }),
        makePod("web", { cpu: "2" }),
      ],
      { maxNodeProvisionTimeMs: 15 * 60_000 },
    );
    const first = await h.autoscaler.runOnce(h.ctx);
    expect(first.scaleUp).toBeUndefined();
    expect(h.events("NotTriggerScaleUp")).toEqual(["Normal NotTriggerScaleUp pod didn't trigger scale-up: 1 in backoff after failed scale-up"]);
    await h.clock.advance(5 * 60_000);
    const later = await h.autoscaler.runOnce(h.ctx);
    expect(later.scaleUp).toMatchObject({ from: 1, to: 2 });
  });
});

describe("pods that do not count", () => {
  it("ignores expendable pods, pods of other schedulers and pods not marked unschedulable", async () => {
    const h = harness([
      groupConfigMap({ group: "general", zone: "local-1a", max: 5 }),
      { ...makePod("expendable", { cpu: "1" }), spec: { ...makePod("x").spec!, priority: -100 } },
      { ...makePod("serverless", { cpu: "1" }), spec: { ...makePod("x").spec!, schedulerName: "kubelab-serverless-scheduler" } },
      makePod("fresh", { cpu: "1", pending: false }),
    ]);
    const r = await h.autoscaler.runOnce(h.ctx);
    expect(r.scaleUp).toBeUndefined();
    expect(h.recorder.events).toEqual([]);
  });
});
