// Taint eviction controller and pod GC: node/pod keys reconciled by hand, deletions fired by a FakeClock.

import { describe, expect, it } from "vitest";
import type { KubeObject, Node, Pod, Taint, Toleration } from "../../api/index.ts";
import { FakeClient, FakeClock, FakeRecorder, newLogger, type Context } from "../../client/index.ts";
import { PodGCController, PodGCQuarantineMs } from "./podgc.ts";
import { evictionTime, TaintEvictionController } from "./tainteviction.ts";
import { iso, node, pod, TrackerLister } from "./testing.ts";

const UNREACHABLE = "node.kubernetes.io/unreachable";

function fixture(objects: KubeObject[]) {
  const clock = new FakeClock();
  const client = new FakeClient(objects, { clock });
  const recorder = new FakeRecorder();
  const controller = new TaintEvictionController({ client, nodes: new TrackerLister<Node>(client, "", "nodes"), pods: new TrackerLister<Pod>(client, "", "pods"), recorder, clock });
  const ctx: Context = { signal: new AbortController().signal, log: newLogger("test") };
  return {
    client,
    clock,
    recorder,
    controller,
    ctx,
    exists: (name: string) => client.tracker("", "pods", "default", name) !== undefined,
    async setTaints(name: string, taints: Taint[]) {
      const n = client.tracker("", "nodes", "", name) as Node;
      n.spec = { ...n.spec, taints };
      await client.resource<Node>("", "nodes").update(n);
      await controller.reconcileNode(ctx, name);
    },
  };
}

const T0 = new FakeClock().now();
const unreachable = (addedAt = T0): Taint => ({ key: UNREACHABLE, effect: "NoExecute", timeAdded: iso(addedAt) });
const tolerate = (seconds?: number): Toleration => ({ key: UNREACHABLE, operator: "Exists", effect: "NoExecute", ...(seconds !== undefined ? { tolerationSeconds: seconds } : {}) });

describe("TaintEvictionController", () => {
  it("deletes a pod that does not tolerate a NoExecute taint at once, recording the event and DisruptionTarget first", async () => {
    const f = fixture([node("n1", { taints: [unreachable()] }), pod("p", "n1")]);
    await f.controller.reconcileNode(f.ctx, "n1");
    await f.clock.advance(0);
    expect(f.exists("p")).toBe(false);
    expect(f.recorder.events).toEqual(["Normal TaintManagerEviction Marking for deletion Pod default/p"]);
    const writes = f.client.writeActions().map((a) => `${a.verb} ${a.resource}${a.subresource ? "/" + a.subresource : ""}`);
    expect(writes).toEqual(["update pods/status", "delete pods"]);
    const status = f.client.writeActions()[0]!.object as Pod;
    expect(status.status?.conditions?.find((c) => c.type === "DisruptionTarget")).toMatchObject({ status: "True", reason: "DeletionByTaintManager", message: "Taint manager: deleting due to NoExecute taint" });
  });

  it("deletes a pod tolerating the taint for N seconds N seconds after the taint's timeAdded", async () => {
    const f = fixture([node("n1", { taints: [unreachable()] }), pod("p", "n1", { tolerations: [tolerate(300)] }), pod("q", "n1", { tolerations: [tolerate(60), tolerate(600)] })]);
    await f.controller.reconcileNode(f.ctx, "n1");
    await f.clock.advance(59_000);
    expect([f.exists("p"), f.exists("q")]).toEqual([true, true]);
    // The first matching toleration counts (60 s for q), as upstream's GetMatchingTolerations.
    await f.clock.advance(1_000);
    expect([f.exists("p"), f.exists("q")]).toEqual([true, false]);
    await f.clock.advance(239_000);
    expect(f.exists("p")).toBe(true);
    await f.clock.advance(1_000);
    expect(f.exists("p")).toBe(false);
  });

  it("counts tolerationSeconds from when the taint was added, not from when the controller saw it", async () => {
    const f = fixture([node("n1", { taints: [unreachable(T0 - 200_000)] }), pod("p", "n1", { tolerations: [tolerate(300)] })]);
    await f.controller.reconcilePod(f.ctx, "default/p");
    await f.clock.advance(99_000);
    expect(f.exists("p")).toBe(true);
    await f.clock.advance(1_000);
    expect(f.exists("p")).toBe(false);
  });

  it("never deletes a pod whose toleration has no tolerationSeconds", async () => {
    const f = fixture([node("n1", { taints: [unreachable()] }), pod("p", "n1", { tolerations: [{ operator: "Exists" }] })]);
    await f.controller.reconcileNode(f.ctx, "n1");
    await f.clock.advance(24 * 3600_000);
    expect(f.exists("p")).toBe(true);
    expect(f.controller.pending().size).toBe(0);
  });

  it("a second, untolerated NoExecute taint deletes the pod at once", async () => {
    const f = fixture([node("n1", { taints: [unreachable()] }), pod("p", "n1", { tolerations: [tolerate()] })]);
    await f.controller.reconcileNode(f.ctx, "n1");
    await f.clock.advance(1_000);
    expect(f.exists("p")).toBe(true);
    await f.setTaints("n1", [unreachable(), { key: "maintenance", effect: "NoExecute" }]);
    await f.clock.advance(0);
    expect(f.exists("p")).toBe(false);
  });

  it("cancels a scheduled deletion when the taint is removed", async () => {
    const f = fixture([node("n1", { taints: [unreachable()] }), pod("p", "n1", { tolerations: [tolerate(300)] })]);
    await f.controller.reconcileNode(f.ctx, "n1");
    expect([...f.controller.pending().keys()]).toEqual(["default/p"]);
    await f.clock.advance(100_000);
    await f.setTaints("n1", []);
    expect(f.recorder.events).toEqual(["Normal TaintManagerEviction Cancelling deletion of Pod default/p"]);
    await f.clock.advance(600_000);
    expect(f.exists("p")).toBe(true);
    expect(f.client.writeActions().filter((a) => a.resource === "pods")).toEqual([]);
  });

  it("leaves alone pods already being deleted, and pods whose NoExecute taints are NoSchedule only", async () => {
    const f = fixture([
      node("n1", { taints: [unreachable()] }),
      pod("gone", "n1", { terminating: true }),
      node("n2", { taints: [{ key: UNREACHABLE, effect: "NoSchedule" }] }),
      pod("p", "n2"),
    ]);
    await f.controller.reconcileNode(f.ctx, "n1");
    await f.controller.reconcileNode(f.ctx, "n2");
    await f.clock.advance(1_000);
    expect(f.client.writeActions()).toEqual([]);
    expect(f.recorder.events).toEqual([]);
  });

  it("evictionTime: tolerationSeconds ≤ 0 means now; the earliest deadline across taints wins", () => {
    const taints: Taint[] = [unreachable(T0 - 10_000), { key: "b", effect: "NoExecute", timeAdded: iso(T0) }];
    expect(evictionTime(taints, [tolerate(0), { key: "b", operator: "Exists", tolerationSeconds: 5 }], T0)).toBe(T0 - 10_000);
    expect(evictionTime(taints, [tolerate(30), { key: "b", operator: "Exists", tolerationSeconds: 5 }], T0)).toBe(T0 + 5_000);
    expect(evictionTime(taints, [tolerate(30)], T0)).toBe(T0);
    expect(evictionTime(taints, [{ operator: "Exists" }], T0)).toBeUndefined();
  });
});

describe("PodGCController", () => {
  it("force-deletes, after the quarantine, pods bound to a node that no longer exists, marking them Failed first", async () => {
    const clock = new FakeClock();
    const client = new FakeClient([node("n1"), pod("alive", "n1"), pod("orphan", "gone")], { clock });
    const gc = new PodGCController({ client, nodes: new TrackerLister<Node>(client, "", "nodes"), pods: new TrackerLister<Pod>(client, "", "pods"), clock });
    const ctx: Context = { signal: new AbortController().signal, log: newLogger("test") };
    await gc.gc(ctx);
    await clock.advance(PodGCQuarantineMs - 1_000);
    await gc.gc(ctx);
    expect(client.writeActions()).toEqual([]);
    await clock.advance(1_000);
    await gc.gc(ctx);
    const writes = client.writeActions();
    expect(writes.map((a) => `${a.verb} ${a.name}${a.subresource ? "/" + a.subresource : ""}`)).toEqual(["patch orphan/status", "delete orphan"]);
    expect(writes[0]!.patch).toMatchObject({ status: { phase: "Failed", conditions: expect.arrayContaining([expect.objectContaining({ type: "DisruptionTarget", reason: "DeletionByPodGC" })]) } });
    expect(writes[1]!.deleteOptions?.gracePeriodSeconds).toBe(0);
    expect(client.tracker("", "pods", "default", "orphan")).toBeUndefined();
    expect(client.tracker("", "pods", "default", "alive")).toBeDefined();
  });

  it("does not delete pods of a node that only the cache was missing", async () => {
    const clock = new FakeClock();
    const client = new FakeClient([node("late"), pod("p", "late")], { clock });
    // The informer has not seen the node yet: an empty node lister.
    const gc = new PodGCController({ client, nodes: new TrackerLister<Node>(new FakeClient(), "", "nodes"), pods: new TrackerLister<Pod>(client, "", "pods"), clock });
    const ctx: Context = { signal: new AbortController().signal, log: newLogger("test") };
    await gc.gc(ctx);
    await clock.advance(PodGCQuarantineMs);
    await gc.gc(ctx);
    expect(client.writeActions()).toEqual([]);
  });
});
