import { describe, expect, it } from "vitest";
import type { Node, Pod } from "../api/index.ts";
import { FakeClock } from "../client/index.ts";
import { Cache, NodeTree, ZONE_LABEL } from "./cache.ts";

function nodeInZone(name: string, zone?: string, cpu = "4"): Node {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name, ...(zone ? { labels: { [ZONE_LABEL]: zone } } : {}) },
    status: { allocatable: { cpu, memory: "8Gi", pods: "110" } },
  };
}

function podOn(name: string, nodeName: string | undefined, cpu = "1", extra: Partial<NonNullable<Pod["spec"]>> = {}): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default", uid: `uid-${name}` },
    spec: { containers: [{ name: "c", resources: { requests: { cpu } } }], ...(nodeName ? { nodeName } : {}), ...extra },
  };
}

function newCache(): { cache: Cache; clock: FakeClock } {
  const clock = new FakeClock();
  return { cache: new Cache({ clock }), clock };
}

describe("NodeTree", () => {
  const cases: { name: string; nodes: Node[]; want: string[] }[] = [
    { name: "nodes without zones are listed in insertion order", nodes: [nodeInZone("a"), nodeInZone("b")], want: ["a", "b"] },
    {
      name: "nodes in three zones are interleaved one zone at a time",
      nodes: [nodeInZone("a1", "a"), nodeInZone("a2", "a"), nodeInZone("a3", "a"), nodeInZone("b1", "b"), nodeInZone("c1", "c"), nodeInZone("c2", "c")],
      want: ["a1", "b1", "c1", "a2", "c2", "a3"],
    },
  ];
  it.each(cases)("$name", ({ nodes, want }) => {
    const tree = new NodeTree();
    for (const n of nodes) tree.add(n);
    expect(tree.list()).toEqual(want);
  });

  it("a node whose zone label changes moves to its new zone", () => {
    const tree = new NodeTree();
    tree.add(nodeInZone("x", "a"));
    tree.add(nodeInZone("y", "b"));
    tree.add(nodeInZone("x", "b"));
    expect(tree.list()).toEqual(["y", "x"]);
    expect(tree.size).toBe(2);
  });
});

describe("Cache", () => {
  it("a snapshot lists nodes interleaved across zones with the pods on them counted", () => {
    const { cache } = newCache();
    cache.addNode(nodeInZone("a1", "a"));
    cache.addNode(nodeInZone("a2", "a"));
    cache.addNode(nodeInZone("b1", "b"));
    cache.addPod(podOn("p", "a2"));
    const snap = cache.updateSnapshot();
    expect(snap.list().map((n) => n.node.metadata.name)).toEqual(["a1", "b1", "a2"]);
    expect(snap.get("a2")!.requested.milliCPU).toBe(1000);
    expect(snap.get("a2")!.pods).toHaveLength(1);
  });

  it("updating a snapshot replaces only the NodeInfos that changed", () => {
    const { cache } = newCache();
    cache.addNode(nodeInZone("n1"));
    cache.addNode(nodeInZone("n2"));
    const snap = cache.updateSnapshot();
    const n1 = snap.get("n1");
    const n2 = snap.get("n2");
    cache.addPod(podOn("p", "n2"));
    cache.updateSnapshot(snap);
    expect(snap.get("n1")).toBe(n1);
    expect(snap.get("n2")).not.toBe(n2);
    expect(snap.list()[1]).toBe(snap.get("n2"));
    expect(snap.list()[1]!.pods).toHaveLength(1);
  });

  it("a removed node disappears from the snapshot and its later pod deletes are harmless", () => {
    const { cache } = newCache();
    cache.addNode(nodeInZone("n1"));
    cache.addNode(nodeInZone("n2"));
    const p = podOn("p", "n1");
    cache.addPod(p);
    const snap = cache.updateSnapshot();
    cache.removeNode(nodeInZone("n1"));
    cache.updateSnapshot(snap);
    expect(snap.list().map((n) => n.node.metadata.name)).toEqual(["n2"]);
    expect(snap.get("n1")).toBeUndefined();
    cache.removePod(p);
    expect(cache.podCount()).toBe(0);
    expect(cache.nodeCount()).toBe(1);
  });

  it("pods seen before their node are counted once the node arrives", () => {
    const { cache } = newCache();
    cache.addPod(podOn("early", "late-node"));
    expect(cache.updateSnapshot().list()).toHaveLength(0);
    cache.addNode(nodeInZone("late-node"));
    expect(cache.updateSnapshot().get("late-node")!.requested.milliCPU).toBe(1000);
  });

  it("nodes with pods with affinity are listed separately and kept current", () => {
    const { cache } = newCache();
    cache.addNode(nodeInZone("n1"));
    cache.addNode(nodeInZone("n2"));
    const snap = cache.updateSnapshot();
    expect(snap.havePodsWithAffinityList()).toHaveLength(0);
    const anti = podOn("anti", "n2", "1", {
      affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: "kubernetes.io/hostname" }] } },
    });
    cache.addPod(anti);
    cache.updateSnapshot(snap);
    expect(snap.havePodsWithAffinityList().map((n) => n.node.metadata.name)).toEqual(["n2"]);
    expect(snap.havePodsWithRequiredAntiAffinityList().map((n) => n.node.metadata.name)).toEqual(["n2"]);
    cache.removePod(anti);
    cache.updateSnapshot(snap);
    expect(snap.havePodsWithAffinityList()).toHaveLength(0);
  });

  it("an assumed pod counts on its node until it is forgotten", () => {
    const { cache } = newCache();
    cache.addNode(nodeInZone("n1"));
    const p = podOn("p", "n1", "3");
    cache.assumePod(p);
    expect(cache.isAssumedPod(p)).toBe(true);
    expect(cache.updateSnapshot().get("n1")!.requested.milliCPU).toBe(3000);
    cache.forgetPod(p);
    expect(cache.isAssumedPod(p)).toBe(false);
    expect(cache.updateSnapshot().get("n1")!.requested.milliCPU).toBe(0);
  });

  it("assuming a pod the cache already holds is refused", () => {
    const { cache } = newCache();
    cache.addNode(nodeInZone("n1"));
    cache.assumePod(podOn("p", "n1"));
    expect(() => cache.assumePod(podOn("p", "n1"))).toThrow(/already in the cache/);
  });

  it("the informer's add confirms an assumed pod, which then never expires", async () => {
    const { cache, clock } = newCache();
    cache.addNode(nodeInZone("n1"));
    const p = podOn("p", "n1");
    cache.assumePod(p);
    cache.finishBinding(p);
    cache.addPod(p);
    expect(cache.isAssumedPod(p)).toBe(false);
    await clock.advance(60_000);
    expect(cache.cleanupExpiredAssumedPods()).toHaveLength(0);
    expect(cache.updateSnapshot().get("n1")!.pods).toHaveLength(1);
  });

  it("a confirmed pod that landed on another node than assumed is moved there", () => {
    const { cache } = newCache();
    cache.addNode(nodeInZone("n1"));
    cache.addNode(nodeInZone("n2"));
    cache.assumePod(podOn("p", "n1"));
    cache.addPod(podOn("p", "n2"));
    const snap = cache.updateSnapshot();
    expect(snap.get("n1")!.pods).toHaveLength(0);
    expect(snap.get("n2")!.pods).toHaveLength(1);
  });

  it("an assumed pod whose bind never shows up expires 30 seconds after binding finished", async () => {
    const { cache, clock } = newCache();
    cache.addNode(nodeInZone("n1"));
    const p = podOn("p", "n1");
    cache.assumePod(p);
    await clock.advance(120_000);
    expect(cache.cleanupExpiredAssumedPods()).toHaveLength(0);
    cache.finishBinding(p);
    await clock.advance(29_000);
    expect(cache.cleanupExpiredAssumedPods()).toHaveLength(0);
    await clock.advance(1_000);
    expect(cache.cleanupExpiredAssumedPods().map((x) => x.metadata.name)).toEqual(["p"]);
    expect(cache.updateSnapshot().get("n1")!.pods).toHaveLength(0);
  });

  it("the cache's run loop expires assumed pods on the injected clock", async () => {
    const { cache, clock } = newCache();
    cache.addNode(nodeInZone("n1"));
    const p = podOn("p", "n1");
    cache.assumePod(p);
    cache.finishBinding(p);
    const ac = new AbortController();
    const done = cache.run(ac.signal);
    await clock.advance(31_000);
    expect(cache.podCount()).toBe(0);
    ac.abort();
    await done;
  });

  it("a pod update to a new node moves its requests", () => {
    const { cache } = newCache();
    cache.addNode(nodeInZone("n1"));
    cache.addNode(nodeInZone("n2"));
    const p = podOn("p", "n1", "1");
    cache.addPod(p);
    cache.updatePod(p, podOn("p", "n2", "2"));
    const snap = cache.updateSnapshot();
    expect(snap.get("n1")!.requested.milliCPU).toBe(0);
    expect(snap.get("n2")!.requested.milliCPU).toBe(2000);
  });
});
