// Node lifecycle controller: passes driven by hand against a FakeClient whose tracker the listers
// read (so each pass sees the previous one's writes), with a FakeClock for heartbeats and rates.

import { describe, expect, it } from "vitest";
import type { KubeObject, Lease, Node, NodeCondition, Pod } from "../../api/index.ts";
import { FakeClient, FakeClock, FakeRecorder, newLogger, type Context } from "../../client/index.ts";
import { DEFAULT_CONTROLLER_MANAGER_CONFIG, type ControllerManagerConfig } from "../env.ts";
import { computeZoneState, NodeLifecycleController, type ZoneState } from "./lifecycle.ts";
import { iso, lease, node, pod, TrackerLister } from "./testing.ts";

function fixture(objects: KubeObject[], config: Partial<ControllerManagerConfig> = {}, clock = new FakeClock()) {
  const client = new FakeClient(objects, { clock });
  const recorder = new FakeRecorder();
  const controller = new NodeLifecycleController({
    client,
    nodes: new TrackerLister<Node>(client, "", "nodes"),
    leases: new TrackerLister<Lease>(client, "coordination.k8s.io", "leases"),
    pods: new TrackerLister<Pod>(client, "", "pods"),
    recorder,
    clock,
    config: { ...DEFAULT_CONTROLLER_MANAGER_CONFIG, ...config },
  });
  const ctx: Context = { signal: new AbortController().signal, log: newLogger("test") };
  const getNode = (name: string) => client.tracker("", "nodes", "", name) as Node;
  return {
    client,
    clock,
    recorder,
    controller,
    ctx,
    node: getNode,
    taints: (name: string) => (getNode(name).spec?.taints ?? []).map((t) => `${t.key}:${t.effect}`).sort(),
    /** One monitor pass, one tainting pass, then the NoSchedule reconcile of every node. */
    async pass() {
      await controller.monitorNodeHealth(ctx);
      await controller.doNoExecuteTaintingPass(ctx);
      for (const n of client.trackerList("", "nodes")) await controller.reconcile({ ...ctx, reconcileID: "t" }, n.metadata.name ?? "");
    },
    /** What the kubelet does: post the Ready condition with a fresh heartbeat. */
    async kubeletPosts(name: string, status: NodeCondition["status"]) {
      const n = getNode(name);
      const now = iso(clock.now());
      const ready = n.status!.conditions!.find((c) => c.type === "Ready")!;
      if (ready.status !== status) ready.lastTransitionTime = now;
      Object.assign(ready, { status, lastHeartbeatTime: now, reason: status === "True" ? "KubeletReady" : "KubeletNotReady", message: "" });
      for (const c of n.status!.conditions!) if (c.type !== "Ready") Object.assign(c, { status: "False", lastHeartbeatTime: now, reason: "KubeletHasNoPressure" });
      await client.resource<Node>("", "nodes").updateStatus(n);
    },
    async renewLease(name: string) {
      const l = client.tracker("coordination.k8s.io", "leases", "kube-node-lease", name) as Lease;
      l.spec!.renewTime = new Date(clock.now()).toISOString().replace("Z", "000Z");
      await client.resource<Lease>("coordination.k8s.io", "leases").update(l);
    },
    async setUnschedulable(name: string, on: boolean) {
      const n = getNode(name);
      n.spec = { ...n.spec, unschedulable: on };
      await client.resource<Node>("", "nodes").update(n);
    },
    tainted: (names: string[], key: string) => names.filter((n) => (getNode(n).spec?.taints ?? []).some((t) => t.key === key && t.effect === "NoExecute")),
  };
}

const T0 = new FakeClock().now();
const UNREACHABLE = "node.kubernetes.io/unreachable";
const NOT_READY = "node.kubernetes.io/not-ready";

describe("NodeLifecycleController health", () => {
  it("a node whose lease stops being renewed becomes Unknown after the grace period, its pods not ready, then gets the unreachable taints", async () => {
    // n2 keeps renewing its lease, so the zone is not fully disrupted (that would stop all tainting).
    const f = fixture([node("n1", { ready: "True", heartbeat: T0 }), lease("n1", T0), pod("p", "n1"), node("n2", { ready: "True", heartbeat: T0 }), lease("n2", T0)]);
    const tick = async (ms: number) => {
      await f.clock.advance(ms);
      await f.renewLease("n2");
      await f.pass();
    };
    await f.pass();
    expect(f.node("n1").status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
    // The lease alone keeps the node healthy: the Ready heartbeat never moves in this test.
    await f.clock.advance(30_000);
    await f.renewLease("n1");
    await tick(0);
    await tick(50_000);
    expect(f.node("n1").status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
    expect(f.taints("n1")).toEqual([]);

    await tick(1_000);
    const conds = f.node("n1").status!.conditions!;
    for (const type of ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"]) {
      expect(conds.find((c) => c.type === type)).toMatchObject({ status: "Unknown", reason: "NodeStatusUnknown", message: "Kubelet stopped posting node status.", lastTransitionTime: iso(f.clock.now()) });
    }
    expect((f.client.tracker("", "pods", "default", "p") as Pod).status?.conditions?.find((c) => c.type === "Ready")).toMatchObject({ status: "False", lastTransitionTime: iso(f.clock.now()) });
    expect(f.recorder.events).toContain("Normal NodeNotReady Node n1 status is now: NodeNotReady");
    expect(f.recorder.events).toContain("Warning NodeNotReady Node is not ready");
    // The NoSchedule taint follows the condition at once; NoExecute on the next monitor pass, through the zone queue.
    expect(f.taints("n1")).toEqual([`${UNREACHABLE}:NoSchedule`]);

    await tick(5_000);
    expect(f.taints("n1")).toEqual([`${UNREACHABLE}:NoExecute`, `${UNREACHABLE}:NoSchedule`]);
    const noExecute = f.node("n1").spec!.taints!.find((t) => t.effect === "NoExecute")!;
    expect(noExecute.timeAdded).toBe(iso(f.clock.now()));
    expect(f.taints("n2")).toEqual([]);
  });

  it("recovery: a fresh Ready=True heartbeat removes the unreachable taints", async () => {
    const f = fixture([node("n1", { ready: "True", heartbeat: T0 }), node("n2", { ready: "True", heartbeat: T0 })]);
    await f.pass();
    for (let t = 0; t < 60_000; t += 5_000) {
      await f.clock.advance(5_000);
      await f.kubeletPosts("n2", "True");
      await f.pass();
    }
    expect(f.taints("n1")).toEqual([`${UNREACHABLE}:NoExecute`, `${UNREACHABLE}:NoSchedule`]);
    await f.kubeletPosts("n1", "True");
    await f.pass();
    expect(f.taints("n1")).toEqual([]);
    expect(f.node("n1").status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
  });

  it("a node the kubelet reports Ready=False gets the not-ready taints, swapped at once for unreachable when it then goes silent", async () => {
    const f = fixture([node("n1", { ready: "False", heartbeat: T0 }), node("n2", { ready: "True", heartbeat: T0 })]);
    await f.pass();
    expect(f.taints("n1")).toEqual([`${NOT_READY}:NoExecute`, `${NOT_READY}:NoSchedule`]);
    // The kubelet's own NotReady is not the controller's doing: it does not touch the pods or the status.
    expect(f.recorder.events.filter((e) => e.includes("NodeNotReady"))).toEqual([]);
    for (let t = 0; t < 60_000; t += 5_000) {
      await f.clock.advance(5_000);
      await f.kubeletPosts("n2", "True");
      await f.pass();
    }
    expect(f.node("n1").status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("Unknown");
    expect(f.taints("n1")).toEqual([`${UNREACHABLE}:NoExecute`, `${UNREACHABLE}:NoSchedule`]);
  });

  it("a restarted controller gives every node a grace period instead of trusting old heartbeats", async () => {
    const clock = new FakeClock();
    const f = fixture([node("n1", { ready: "True", heartbeat: T0 - 600_000 }), lease("n1", T0 - 600_000)], {}, clock);
    await f.pass();
    expect(f.node("n1").status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
    await f.clock.advance(50_000);
    await f.pass();
    expect(f.node("n1").status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
    await f.clock.advance(1_000);
    await f.pass();
    expect(f.node("n1").status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("Unknown");
  });

  it("a node that never posted status is Unknown (NodeStatusNeverUpdated) once the startup grace period from its creation passes", async () => {
    const f = fixture([node("n1", { created: T0 })]);
    await f.pass();
    await f.clock.advance(60_000);
    await f.pass();
    expect(f.node("n1").status?.conditions ?? []).toEqual([]);
    await f.clock.advance(1_000);
    await f.pass();
    expect(f.node("n1").status?.conditions?.find((c) => c.type === "Ready")).toMatchObject({ status: "Unknown", reason: "NodeStatusNeverUpdated", message: "Kubelet never posted node status." });
  });

  it("a cordoned node gets node.kubernetes.io/unschedulable:NoSchedule, removed on uncordon", async () => {
    const f = fixture([node("n1", { ready: "True", heartbeat: T0, taints: [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }] })]);
    await f.setUnschedulable("n1", true);
    await f.pass();
    expect(f.taints("n1")).toEqual(["dedicated:NoSchedule", "node.kubernetes.io/unschedulable:NoSchedule"]);
    await f.setUnschedulable("n1", false);
    await f.pass();
    expect(f.taints("n1")).toEqual(["dedicated:NoSchedule"]);
  });

  it("a taint update that conflicts re-reads the node and retries", async () => {
    const f = fixture([node("n1", { ready: "True", heartbeat: T0 })]);
    await f.setUnschedulable("n1", true);
    let conflicts = 1;
    f.client.prependReactor("patch", "nodes", () => {
      if (conflicts-- > 0) {
        // Someone else wrote the node first: the cached resourceVersion is now stale.
        const n = f.node("n1");
        n.metadata.labels = { touched: "yes" };
        f.client.seed(n);
      }
      return undefined;
    });
    await f.controller.reconcile({ ...f.ctx, reconcileID: "t" }, "n1");
    expect(f.taints("n1")).toEqual(["node.kubernetes.io/unschedulable:NoSchedule"]);
    expect(f.client.actions.filter((a) => a.verb === "get" && a.resource === "nodes")).toHaveLength(1);
  });
});

describe("computeZoneState", () => {
  const c = (status: NodeCondition["status"]): NodeCondition => ({ type: "Ready", status });
  const cases: { name: string; conds: (NodeCondition | undefined)[]; want: [number, ZoneState] }[] = [
    { name: "all ready is Normal", conds: [c("True"), c("True")], want: [0, "Normal"] },
    { name: "no ready node at all is FullDisruption", conds: [c("False"), c("Unknown"), undefined], want: [3, "FullDisruption"] },
    { name: "a single not-ready node is FullDisruption when it is the whole zone", conds: [c("Unknown")], want: [1, "FullDisruption"] },
    { name: "two not-ready of three stays Normal: at least three must fail", conds: [c("False"), c("False"), c("True")], want: [2, "Normal"] },
    { name: "three not-ready of five (60%) is PartialDisruption", conds: [c("False"), c("Unknown"), c("False"), c("True"), c("True")], want: [3, "PartialDisruption"] },
    { name: "three not-ready of six (50%) is Normal under the 0.55 threshold", conds: [c("False"), c("False"), c("False"), c("True"), c("True"), c("True")], want: [3, "Normal"] },
    { name: "a missing Ready condition counts as not ready", conds: [undefined, undefined, undefined, c("True")], want: [3, "PartialDisruption"] },
    { name: "an empty zone is Normal", conds: [], want: [0, "Normal"] },
  ];
  for (const tc of cases) {
    it(tc.name, () => expect(computeZoneState(tc.conds, 0.55)).toEqual(tc.want));
  }
});

describe("NodeLifecycleController zone rate limiting", () => {
  const names = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

  it("taints the not-ready nodes of a healthy zone one per 1/node-eviction-rate seconds", async () => {
    const bad = names("bad", 3);
    const good = names("good", 10);
    const f = fixture([...bad.map((n) => node(n, { ready: "False", heartbeat: T0, zone: "a" })), ...good.map((n) => node(n, { ready: "True", heartbeat: T0, zone: "a" }))]);
    await f.controller.monitorNodeHealth(f.ctx);
    await f.controller.doNoExecuteTaintingPass(f.ctx);
    expect(f.tainted(bad, NOT_READY)).toHaveLength(1);
    const counts: number[] = [];
    for (let t = 100; t <= 20_000; t += 100) {
      await f.clock.advance(100);
      await f.controller.doNoExecuteTaintingPass(f.ctx);
      if (t % 5_000 === 0) counts.push(f.tainted(bad, NOT_READY).length);
    }
    // 0.1 nodes/s: the second at 10 s, the third at 20 s.
    expect(counts).toEqual([1, 2, 2, 3]);
    expect(f.tainted(good, NOT_READY)).toEqual([]);
  });

  it("honours --node-eviction-rate", async () => {
    const bad = names("bad", 4);
    const f = fixture([...bad.map((n) => node(n, { ready: "False", heartbeat: T0 })), ...names("good", 10).map((n) => node(n, { ready: "True", heartbeat: T0 }))], { nodeEvictionRate: 1 });
    await f.controller.monitorNodeHealth(f.ctx);
    for (let t = 0; t < 2_000; t += 100) {
      await f.controller.doNoExecuteTaintingPass(f.ctx);
      await f.clock.advance(100);
    }
    expect(f.tainted(bad, NOT_READY)).toHaveLength(2);
  });

  it("stops tainting, and removes the NoExecute taints, when every zone is fully disrupted", async () => {
    const a = names("a", 2);
    const b = names("b", 2);
    const f = fixture([
      ...a.map((n) => node(n, { ready: "True", heartbeat: T0, zone: "a", taints: [{ key: UNREACHABLE, effect: "NoExecute", timeAdded: iso(T0) }] })),
      ...b.map((n) => node(n, { ready: "True", heartbeat: T0, zone: "b" })),
    ]);
    await f.pass();
    // Everything goes silent at once: more likely the controller is cut off than every node dead.
    for (let t = 0; t < 120_000; t += 5_000) {
      await f.clock.advance(5_000);
      await f.pass();
    }
    expect(f.node("a0").status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("Unknown");
    expect(f.tainted([...a, ...b], UNREACHABLE)).toEqual([]);
    expect([...f.controller.zoneStates.values()]).toEqual(["FullDisruption", "FullDisruption"]);
    expect([...f.controller.zoneTainters.values()].map((q) => q.qps)).toEqual([0, 0]);

    // One node answering again ends master disruption mode: the silent zone is tainted at the normal rate.
    await f.kubeletPosts("b0", "True");
    await f.pass();
    expect(f.controller.zoneStates.get(":\x00:b")).toBe("Normal");
    expect([...f.controller.zoneTainters.values()].map((q) => q.qps)).toEqual([0.1, 0.1]);
    // The swap from a stopped limiter starts drained: the first taint comes after 1/rate, not at once.
    for (let t = 100; t <= 10_000; t += 100) {
      await f.clock.advance(100);
      await f.controller.doNoExecuteTaintingPass(f.ctx);
      if (t === 9_900) expect(f.tainted([...a, "b1"], UNREACHABLE)).toEqual([]);
    }
    expect(f.tainted(a, UNREACHABLE)).toHaveLength(1);
    expect(f.tainted(["b1"], UNREACHABLE)).toHaveLength(1);
  });

  it("a fully disrupted zone beside a healthy one is still tainted at the normal rate", async () => {
    const a = names("a", 3);
    const f = fixture([...a.map((n) => node(n, { ready: "False", heartbeat: T0, zone: "a" })), node("b0", { ready: "True", heartbeat: T0, zone: "b" })]);
    await f.pass();
    expect(f.controller.zoneStates.get(":\x00:a")).toBe("FullDisruption");
    expect(f.tainted(a, NOT_READY)).toHaveLength(1);
    for (let t = 0; t < 20_000; t += 100) {
      await f.clock.advance(100);
      await f.controller.doNoExecuteTaintingPass(f.ctx);
    }
    expect(f.tainted(a, NOT_READY)).toHaveLength(3);
  });

  it("a partially disrupted small zone is not tainted at all; a large one at the secondary rate", async () => {
    const small = fixture([
      ...names("bad", 3).map((n) => node(n, { ready: "False", heartbeat: T0, zone: "a" })),
      node("ok", { ready: "True", heartbeat: T0, zone: "a" }),
      node("b0", { ready: "True", heartbeat: T0, zone: "b" }),
    ]);
    await small.controller.monitorNodeHealth(small.ctx);
    expect(small.controller.zoneStates.get(":\x00:a")).toBe("PartialDisruption");
    for (let t = 0; t < 30_000; t += 100) {
      await small.controller.doNoExecuteTaintingPass(small.ctx);
      await small.clock.advance(100);
    }
    expect(small.tainted(names("bad", 3), NOT_READY)).toEqual([]);

    const bad = names("bad", 40);
    const large = fixture([...bad.map((n) => node(n, { ready: "False", heartbeat: T0, zone: "a" })), ...names("ok", 20).map((n) => node(n, { ready: "True", heartbeat: T0, zone: "a" }))], {
      secondaryNodeEvictionRate: 0.05,
    });
    await large.controller.monitorNodeHealth(large.ctx);
    expect(large.controller.zoneStates.get(":\x00:a")).toBe("PartialDisruption");
    expect(large.controller.zoneTainters.get(":\x00:a")?.qps).toBe(0.05);
    for (let t = 0; t <= 40_000; t += 100) {
      await large.controller.doNoExecuteTaintingPass(large.ctx);
      await large.clock.advance(100);
    }
    // One at once, then one per 20 s.
    expect(large.tainted(bad, NOT_READY)).toHaveLength(3);
  });
});
