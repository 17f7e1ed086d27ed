// Scale-down: unneeded nodes over consecutive loops with a FakeClock — the unneeded time, minSize,
// pods that block (bare, kube-system, emptyDir, PDB), eviction retried on 429, the drain timeout,
// the delay after a scale-up, and the single CAS update that terminates the instance.

import { describe, expect, it } from "vitest";
import type { ConfigMap, Node, Pod } from "../../../api/index.ts";
import { fakeErrors } from "../../../client/index.ts";
import { nodeGroups, TO_BE_DELETED_TAINT } from "./clusterstate.ts";
import { deleteNode } from "./scaledown.ts";
import { groupConfigMap, harness, liveLister, makeNode, makePDB, makePod, T0, type Harness } from "./testing.ts";

const TEN_MIN = 600_000;

/** Group general/local-1a (min 1) with two nodes: n1 busy, n2 lightly used. */
function cluster(opts: { min?: number; pods?: ReturnType<typeof makePod>[] } = {}) {
  return [
    groupConfigMap({ group: "general", zone: "local-1a", min: opts.min ?? 1, max: 5, instances: ["n1", "n2"] }),
    makeNode("n1", { group: "general", zone: "local-1a" }),
    makeNode("n2", { group: "general", zone: "local-1a" }),
    makePod("busy", { nodeName: "n1", cpu: "2500m", memory: "4Gi" }),
    ...(opts.pods ?? [makePod("light", { nodeName: "n2", cpu: "500m", memory: "1Gi" })]),
  ];
}

/** Loops every 10 s for `ms`, then lets the deletion under way finish (advancing the clock). */
async function loopFor(h: Harness, ms: number) {
  let r = await h.autoscaler.runOnce(h.ctx);
  for (let t = 0; t < ms; t += 10_000) {
    await h.clock.advance(10_000);
    r = await h.autoscaler.runOnce(h.ctx);
  }
  return r;
}

async function finishDeletion(h: Harness, maxMs = 300_000) {
  for (let t = 0; h.autoscaler.deletion() && t < maxMs; t += 1000) await h.clock.advance(1000);
  await h.autoscaler.deletion();
}

function node(h: Harness, name: string): Node | undefined {
  return h.client.tracker("", "nodes", "", name) as Node | undefined;
}

describe("scale-down", () => {
  it("removes an underutilized node after the unneeded time: taint, evict, terminate with desired−1, delete the Node", async () => {
    const h = harness(cluster());
    const first = await h.autoscaler.runOnce(h.ctx);
    expect(first.unneeded).toEqual(["n2"]);
    expect(first.deleting).toEqual([]);
    const r = await loopFor(h, TEN_MIN);
    expect(r.deleting).toEqual(["n2"]);
    await finishDeletion(h);
    expect(h.group("general", "local-1a")).toEqual({ desiredCapacity: 1, instances: [expect.objectContaining({ name: "n1" })] });
    expect(node(h, "n2")).toBeUndefined();
    expect(h.client.actions.filter((a) => a.verb === "evict").map((a) => a.name)).toEqual(["light"]);
    expect(h.events()).toEqual(["Normal ScaleDown marked the node as toBeDeleted/unschedulable", "Normal ScaleDown deleting pod for node scale down"]);
    // The taint went on before the eviction.
    const taintUpdate = h.client.actions.find((a) => a.verb === "update" && a.resource === "nodes");
    expect((taintUpdate?.object as Node).spec?.taints).toEqual([{ key: TO_BE_DELETED_TAINT, value: String(Math.floor((Date.UTC(2026, 11, 3, 6, 0, 0) + TEN_MIN) / 1000)), effect: "NoSchedule" }]);
    // One CAS update of the group ConfigMap.
    expect(h.client.actions.filter((a) => a.verb === "update" && a.resource === "configmaps" && a.name.startsWith("kubelab-nodegroup"))).toHaveLength(1);
  });

  it("keeps a node that has not been unneeded long enough", async () => {
    const h = harness(cluster());
    const r = await loopFor(h, TEN_MIN - 20_000);
    expect(r.unneeded).toEqual(["n2"]);
    expect(r.deleting).toEqual([]);
  });

  it("never goes below minSize", async () => {
    const h = harness(cluster({ min: 2 }));
    const r = await loopFor(h, TEN_MIN + 10_000);
    expect(r.unneeded).toEqual([]);
    expect(h.group("general", "local-1a").desiredCapacity).toBe(2);
  });

  it("removes only as many empty nodes as minSize allows", async () => {
    const h = harness([
      groupConfigMap({ group: "general", zone: "local-1a", min: 1, max: 5, instances: ["n1", "n2", "n3"] }),
      makeNode("n1", { group: "general", zone: "local-1a" }),
      makeNode("n2", { group: "general", zone: "local-1a" }),
      makeNode("n3", { group: "general", zone: "local-1a" }),
    ]);
    const r = await loopFor(h, TEN_MIN);
    expect(r.deleting).toEqual(["n1", "n2"]);
    await finishDeletion(h);
    expect(h.group("general", "local-1a")).toEqual({ desiredCapacity: 1, instances: [expect.objectContaining({ name: "n3" })] });
  });

  it("keeps a node whose utilization is at the threshold", async () => {
    const h = harness(cluster({ pods: [makePod("half", { nodeName: "n2", cpu: "2", memory: "1Gi" })] }));
    const r = await h.autoscaler.runOnce(h.ctx);
    expect(r.unneeded).toEqual([]);
  });

  it("keeps a node whose pods fit nowhere else", async () => {
    const h = harness([
      groupConfigMap({ group: "general", zone: "local-1a", min: 0, max: 5, instances: ["n1", "n2"] }),
      makeNode("n1", { group: "general", zone: "local-1a" }),
      makeNode("n2", { group: "general", zone: "local-1a" }),
      makePod("a", { nodeName: "n1", cpu: "1800m" }),
      makePod("b", { nodeName: "n2", cpu: "1800m" }),
      makePod("c", { nodeName: "n1", cpu: "1800m" }),
    ]);
    // n2's pod fits n1 (3.6 + 1.8 > 4: no) — nowhere; n1 is busy.
    const r = await h.autoscaler.runOnce(h.ctx);
    expect(r.unneeded).toEqual([]);
  });

  it.each([
    ["a bare pod", makePod("bare", { nodeName: "n2", cpu: "100m", owner: "none" })],
    ["a kube-system pod without a PDB", makePod("sys", { nodeName: "n2", cpu: "100m", namespace: "kube-system" })],
    ["an emptyDir", makePod("scratch", { nodeName: "n2", cpu: "100m", volumes: [{ name: "tmp", emptyDir: {} }] })],
    ["safe-to-evict=false", makePod("precious", { nodeName: "n2", cpu: "100m", annotations: { "cluster-autoscaler.kubernetes.io/safe-to-evict": "false" } })],
  ])("is blocked by %s", async (_what, pod) => {
    const h = harness(cluster({ pods: [pod] }));
    const r = await loopFor(h, TEN_MIN + 10_000);
    expect(r.unneeded).toEqual([]);
    expect(node(h, "n2")).toBeDefined();
  });

  it("ignores DaemonSet pods", async () => {
    const h = harness(cluster({ pods: [makePod("ds", { nodeName: "n2", cpu: "100m", owner: "DaemonSet" })] }));
    const r = await h.autoscaler.runOnce(h.ctx);
    expect(r.unneeded).toEqual(["n2"]);
  });

  it("is blocked by a PDB that allows no disruption", async () => {
    const h = harness([...cluster(), makePDB("web", 0)]);
    const r = await h.autoscaler.runOnce(h.ctx);
    expect(r.unneeded).toEqual([]);
  });

  it("retries evictions the PDB refuses (429) until they pass", async () => {
    const h = harness([...cluster(), makePDB("web", 1)]);
    let refusals = 2;
    h.client.prependReactor("evict", "pods", () => (refusals-- > 0 ? { error: fakeErrors.tooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.") } : undefined));
    await loopFor(h, TEN_MIN);
    await finishDeletion(h);
    const evictions = h.client.actions.filter((a) => a.verb === "evict");
    expect(evictions).toHaveLength(3);
    expect(node(h, "n2")).toBeUndefined();
    expect(h.group("general", "local-1a").desiredCapacity).toBe(1);
  });

  it("gives up after the drain timeout: taint removed, ScaleDownFailed, instance kept", async () => {
    const h = harness([...cluster(), makePDB("web", 1)]);
    h.client.prependReactor("evict", "pods", () => ({ error: fakeErrors.tooManyRequests() }));
    await loopFor(h, TEN_MIN);
    await finishDeletion(h);
    expect(node(h, "n2")?.spec?.taints ?? []).toEqual([]);
    expect(h.group("general", "local-1a").desiredCapacity).toBe(2);
    expect(h.events("ScaleDownFailed")).toHaveLength(1);
    expect(h.events("ScaleDownFailed")[0]).toMatch(/^Warning ScaleDownFailed failed to drain the node, aborting ScaleDown/);
    // About 2 minutes of retries every 5 s.
    const n = h.client.actions.filter((a) => a.verb === "evict").length;
    expect(n).toBeGreaterThanOrEqual(20);
    expect(n).toBeLessThanOrEqual(26);
  });

  it("waits scale-down-delay-after-add after a scale-up", async () => {
    const h = harness(
      [...cluster(), groupConfigMap({ group: "other", zone: "local-1b", min: 0, max: 5 }), makePod("pending", { cpu: "1", nodeSelector: { "topology.kubernetes.io/zone": "local-1b" } })],
      { scaleDownUnneededTimeMs: 60_000 },
    );
    const up = await h.autoscaler.runOnce(h.ctx);
    expect(up.scaleUp?.group).toBe("kubelab-nodegroup-other-local-1b");
    // The pod went elsewhere; n2 has been unneeded for over a minute, but the delay after add holds.
    await h.client.resource("", "pods").delete("default", "pending");
    const r = await loopFor(h, TEN_MIN - 20_000);
    expect(r.unneeded).toEqual(["n2"]);
    expect(h.client.actions.filter((a) => a.verb === "evict")).toEqual([]);
    expect(node(h, "n2")?.spec?.taints).toBeUndefined();
    await loopFor(h, 30_000);
    await finishDeletion(h);
    expect(node(h, "n2")).toBeUndefined();
  });

  it("does not remove a node whose pods need the capacity pending pods will take elsewhere", async () => {
    // A pending pod fits only n1 (after n2's pod would move there, it would not): n2 stays.
    const h = harness(cluster({ pods: [makePod("light", { nodeName: "n2", cpu: "1", memory: "1Gi" })] }).concat([makePod("waiting", { cpu: "1" })]));
    const r = await h.autoscaler.runOnce(h.ctx);
    expect(r.scaleUp).toBeUndefined();
    expect(r.unneeded).toEqual([]);
  });

  it("keeps an empty node that a pending pod will land on", async () => {
    const h = harness([
      groupConfigMap({ group: "general", zone: "local-1a", min: 0, max: 5, instances: ["n1", "n2"] }),
      makeNode("n1", { group: "general", zone: "local-1a" }),
      makeNode("n2", { group: "general", zone: "local-1a" }),
      makePod("busy", { nodeName: "n1", cpu: "3" }),
      makePod("coming", { cpu: "3" }),
    ]);
    const r = await h.autoscaler.runOnce(h.ctx);
    expect(r.scaleUp).toBeUndefined();
    expect(r.unneeded).toEqual([]);
  });

  it("removes a node NotReady past max-node-provision-time after scale-down-unready-time, not a booting one", async () => {
    const h = harness([
      groupConfigMap({ group: "general", zone: "local-1a", min: 0, max: 5, instances: ["dead"], launchedAt: Date.UTC(2026, 11, 3, 5, 0, 0) }),
      groupConfigMap({ group: "general", zone: "local-1b", min: 0, max: 5, instances: ["booting"], launchedAt: Date.UTC(2026, 11, 3, 5, 59, 0) }),
      makeNode("dead", { group: "general", zone: "local-1a", ready: false }),
      makeNode("booting", { group: "general", zone: "local-1b", ready: false }),
      makeNode("static", { zone: "local-1a" }),
      makePod("stuck", { nodeName: "dead", cpu: "3" }),
    ]);
    const r = await loopFor(h, TEN_MIN + 10_000);
    expect(r.unneeded).toEqual(["dead"]);
    expect(node(h, "dead")).toBeDefined();
    await loopFor(h, TEN_MIN);
    await finishDeletion(h);
    expect(node(h, "dead")).toBeUndefined();
    expect(h.group("general", "local-1a").desiredCapacity).toBe(0);
    expect(node(h, "booting")).toBeDefined();
  });
});

describe("deleteNode", () => {
  function setup(objects: Parameters<typeof harness>[0]) {
    const h = harness(objects);
    const nodes = new Map((h.client.trackerList("", "nodes") as Node[]).map((n) => [n.metadata.name!, n]));
    const groups = nodeGroups(h.client.trackerList("", "configmaps") as ConfigMap[], nodes, T0, 15 * 60_000);
    const pods = liveLister<Pod>(h.client, "", "pods");
    const deps = { client: h.client, recorder: h.recorder, clock: h.clock, podsOnNode: (n: string) => pods.byIndex("spec.nodeName", n) };
    return { h, deps, group: groups[0]!, node: nodes.get("n2")! };
  }

  it("touches nothing when the group is already at minSize", async () => {
    const { h, deps, group, node } = setup(cluster({ min: 2 }));
    h.client.clearActions();
    const r = await deleteNode(h.ctx, deps, { node, group });
    expect(r).toEqual({ ok: false, error: "node group kubelab-nodegroup-general-local-1a min size reached (2)" });
    expect(h.client.writeActions()).toEqual([]);
    expect(h.recorder.events).toEqual([]);
  });

  it("waits for evicted pods to terminate, at most their grace period", async () => {
    const held = { ...makePod("held", { nodeName: "n2", cpu: "500m" }) };
    held.metadata.finalizers = ["example.com/hold"];
    held.spec!.terminationGracePeriodSeconds = 10;
    const { h, deps, group, node } = setup(cluster({ pods: [held] }));
    let finished = false;
    const p = deleteNode(h.ctx, deps, { node, group }, { pollMs: 1000 }).then((r) => ((finished = true), r));
    await h.clock.advance(5_000);
    // Evicted (deletionTimestamp set) but still there: the instance is kept meanwhile.
    expect((h.client.tracker("", "pods", "default", "held") as Pod).metadata.deletionTimestamp).toBeDefined();
    expect(finished).toBe(false);
    expect(h.group("general", "local-1a").desiredCapacity).toBe(2);
    await h.clock.advance(10_000);
    expect(await p).toEqual({ ok: true });
    expect(h.group("general", "local-1a").desiredCapacity).toBe(1);
  });
});
