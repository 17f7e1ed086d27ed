// DaemonSet controller: one synchronous reconcile against a FakeClient, assertions on its actions.

import { describe, expect, it } from "vitest";
import type { ControllerRevision, DaemonSet, KubeObject, Node, Pod, Taint } from "../../api/index.ts";
import { newLogger } from "../../client/log.ts";
import { fakeErrors, fakeLister, FakeClient, FakeClock, FakeRecorder, type Action } from "../../client/testing.ts";
import type { Lister, ReconcileContext } from "../../client/types.ts";
import { computeHash } from "../deployment/util.ts";
import { DaemonSetController, DaemonSetExpectations, DaemonSetHandlers, getPatch, getTargetNodeName, nodeShouldRunDaemonPod, replaceDaemonSetPodNodeNameNodeAffinity } from "./index.ts";

const NS = "default";
const T0 = Date.UTC(2024, 0, 1, 0, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

function ctx(): ReconcileContext {
  return { signal: new AbortController().signal, log: newLogger("test"), reconcileID: "test" };
}

interface DSOpts {
  nodeSelector?: Record<string, string>;
  tolerations?: NonNullable<NonNullable<DaemonSet["spec"]>["template"]["spec"]>["tolerations"];
  strategy?: NonNullable<DaemonSet["spec"]>["updateStrategy"];
  image?: string;
  templateGeneration?: number;
  revisionHistoryLimit?: number;
  status?: DaemonSet["status"];
  generation?: number;
}

function daemonSet(name: string, o: DSOpts = {}): DaemonSet {
  return {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: {
      name,
      namespace: NS,
      uid: `uid-${name}`,
      generation: o.generation ?? 1,
      resourceVersion: "1",
      creationTimestamp: iso(T0),
      annotations: { "deprecated.daemonset.template.generation": String(o.templateGeneration ?? 1) },
    },
    spec: {
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: [{ name: "c", image: o.image ?? "busybox:1" }],
          ...(o.nodeSelector ? { nodeSelector: o.nodeSelector } : {}),
          ...(o.tolerations ? { tolerations: o.tolerations } : {}),
        },
      },
      updateStrategy: o.strategy ?? { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } },
      revisionHistoryLimit: o.revisionHistoryLimit ?? 10,
    },
    ...(o.status ? { status: o.status } : {}),
  };
}

function node(name: string, o: { labels?: Record<string, string>; taints?: Taint[]; unschedulable?: boolean } = {}): Node {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name, uid: `uid-${name}`, resourceVersion: "1", labels: { "kubernetes.io/hostname": name, ...(o.labels ?? {}) } },
    spec: { ...(o.taints ? { taints: o.taints } : {}), ...(o.unschedulable ? { unschedulable: true } : {}) },
    status: { conditions: [{ type: "Ready", status: "True" }] },
  };
}

interface PodOpts {
  node?: string;
  /** The node an unscheduled pod's affinity names. */
  target?: string;
  hash?: string;
  generation?: number;
  phase?: "Pending" | "Running" | "Failed" | "Succeeded";
  readySince?: number;
  created?: number;
  deleting?: boolean;
}

function pod(name: string, ds: DaemonSet, o: PodOpts = {}): Pod {
  const labels: Record<string, string> = { app: ds.metadata.name ?? "" };
  if (o.hash) labels["controller-revision-hash"] = o.hash;
  if (o.generation !== undefined) labels["pod-template-generation"] = String(o.generation);
  const target = o.node ?? o.target ?? "";
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: NS,
      uid: `uid-${name}`,
      resourceVersion: "1",
      creationTimestamp: iso(o.created ?? T0),
      labels,
      ownerReferences: [{ apiVersion: "apps/v1", kind: "DaemonSet", name: ds.metadata.name ?? "", uid: ds.metadata.uid ?? "", controller: true, blockOwnerDeletion: true }],
      ...(o.deleting ? { deletionTimestamp: iso(T0), finalizers: ["test/keep"] } : {}),
    },
    spec: {
      containers: [{ name: "c", image: "busybox:1" }],
      affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: "metadata.name", operator: "In", values: [target] }] }] } } },
      ...(o.node ? { nodeName: o.node } : {}),
    },
    status: {
      phase: o.phase ?? "Running",
      conditions: o.readySince !== undefined ? [{ type: "Ready", status: "True", lastTransitionTime: iso(o.readySince) }] : [{ type: "Ready", status: "False" }],
    },
  };
}

/** A lister that always reads the tracker, as a perfectly synced informer would. */
function liveLister<T extends KubeObject>(client: FakeClient, group: string, resource: string): Lister<T> {
  const now = () => fakeLister(client.trackerList(group, resource) as T[]);
  return {
    get: (k) => now().get(k),
    list: (s) => now().list(s),
    listNamespace: (ns, s) => now().listNamespace(ns, s),
    byIndex: (i, v) => now().byIndex(i, v),
  };
}

function fixture(objects: KubeObject[], opts: { now?: number; burstReplicas?: number; live?: boolean } = {}) {
  const clock = new FakeClock(opts.now ?? T0 + 3600_000);
  const client = new FakeClient(objects, { clock });
  const expectations = new DaemonSetExpectations({ clock });
  const recorder = new FakeRecorder();
  const lister = <T extends KubeObject>(group: string, resource: string): Lister<T> =>
    opts.live === false ? fakeLister(client.trackerList(group, resource) as T[]) : liveLister<T>(client, group, resource);
  const controller = new DaemonSetController({
    client,
    daemonSets: lister<DaemonSet>("apps", "daemonsets"),
    pods: lister<Pod>("", "pods"),
    nodes: lister<Node>("", "nodes"),
    revisions: lister<ControllerRevision>("apps", "controllerrevisions"),
    expectations,
    recorder,
    clock,
    burstReplicas: opts.burstReplicas,
  });
  return { client, clock, expectations, recorder, controller };
}

/** The revision the controller would create for the DaemonSet's current template. */
function revisionOf(ds: DaemonSet, revision: number): ControllerRevision {
  const hash = computeHash(ds.spec!.template);
  return {
    apiVersion: "apps/v1",
    kind: "ControllerRevision",
    metadata: {
      name: `${ds.metadata.name}-${hash}`,
      namespace: NS,
      labels: { app: ds.metadata.name ?? "", "controller-revision-hash": hash },
      ownerReferences: [{ apiVersion: "apps/v1", kind: "DaemonSet", name: ds.metadata.name ?? "", uid: ds.metadata.uid ?? "", controller: true, blockOwnerDeletion: true }],
    },
    data: getPatch(ds),
    revision,
  };
}

const writes = (client: FakeClient, verb: Action["verb"], resource: string) => client.writeActions().filter((a) => a.verb === verb && a.resource === resource);
const createdNodes = (client: FakeClient) =>
  writes(client, "create", "pods")
    .map((a) => (a.object as Pod).spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms[0]?.matchFields?.[0]?.values?.[0])
    .sort();
const deletedPods = (client: FakeClient) => writes(client, "delete", "pods").map((a) => a.name).sort();
const dsStatus = (client: FakeClient) => (client.tracker("apps", "daemonsets", NS, "ds") as DaemonSet).status;

describe("DaemonSetController: one pod per eligible node", () => {
  it("creates a pod for each node, pinned by a metadata.name node affinity, with the daemon tolerations, revision labels and controller reference", async () => {
    const ds = daemonSet("ds");
    const f = fixture([ds, node("n1"), node("n2"), node("n3")]);
    await f.controller.reconcile(ctx(), "default/ds");
    expect(createdNodes(f.client)).toEqual(["n1", "n2", "n3"]);
    const hash = computeHash(ds.spec!.template);
    for (const a of writes(f.client, "create", "pods")) {
      const p = a.object as Pod;
      expect(p.metadata.generateName).toBe("ds-");
      expect(p.metadata.labels).toEqual({ app: "ds", "controller-revision-hash": hash, "pod-template-generation": "1" });
      expect(p.metadata.ownerReferences).toEqual([{ apiVersion: "apps/v1", kind: "DaemonSet", name: "ds", uid: "uid-ds", controller: true, blockOwnerDeletion: true }]);
      expect(p.spec?.nodeName).toBeUndefined();
      expect(p.spec?.tolerations).toEqual([
        { key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute" },
        { key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute" },
        { key: "node.kubernetes.io/disk-pressure", operator: "Exists", effect: "NoSchedule" },
        { key: "node.kubernetes.io/memory-pressure", operator: "Exists", effect: "NoSchedule" },
        { key: "node.kubernetes.io/pid-pressure", operator: "Exists", effect: "NoSchedule" },
        { key: "node.kubernetes.io/unschedulable", operator: "Exists", effect: "NoSchedule" },
      ]);
    }
    expect(f.recorder.events.filter((e) => e.startsWith("Normal SuccessfulCreate"))).toHaveLength(3);
  });

  it("records the template as ControllerRevision <ds>-<hash>, revision 1, whose data is the rollback patch", async () => {
    const ds = daemonSet("ds");
    const f = fixture([ds, node("n1")]);
    await f.controller.reconcile(ctx(), "default/ds");
    const [create] = writes(f.client, "create", "controllerrevisions");
    const cr = create!.object as ControllerRevision;
    const hash = computeHash(ds.spec!.template);
    expect(cr.metadata.name).toBe(`ds-${hash}`);
    expect(cr.revision).toBe(1);
    expect(cr.metadata.labels).toEqual({ app: "ds", "controller-revision-hash": hash });
    expect(cr.data).toEqual({ spec: { template: { ...ds.spec!.template, $patch: "replace" } } });
    expect(cr.metadata.ownerReferences?.[0]).toMatchObject({ kind: "DaemonSet", uid: "uid-ds", controller: true });
  });

  it("adds the network-unavailable toleration for host-network pods and replaces a user toleration that matches an automatic one", async () => {
    const ds = daemonSet("ds", { tolerations: [{ key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute", tolerationSeconds: 30 }] });
    ds.spec!.template.spec!.hostNetwork = true;
    const f = fixture([ds, node("n1")]);
    await f.controller.reconcile(ctx(), "default/ds");
    const tolerations = (writes(f.client, "create", "pods")[0]!.object as Pod).spec?.tolerations ?? [];
    expect(tolerations[0]).toEqual({ key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute" });
    expect(tolerations).toContainEqual({ key: "node.kubernetes.io/network-unavailable", operator: "Exists", effect: "NoSchedule" });
  });

  it("skips nodes the template's nodeSelector does not match", async () => {
    const f = fixture([daemonSet("ds", { nodeSelector: { role: "edge" } }), node("n1", { labels: { role: "edge" } }), node("n2")]);
    await f.controller.reconcile(ctx(), "default/ds");
    expect(createdNodes(f.client)).toEqual(["n1"]);
    expect(dsStatus(f.client)).toMatchObject({ desiredNumberScheduled: 1, currentNumberScheduled: 0, numberMisscheduled: 0 });
  });

  it("skips nodes with a NoSchedule or NoExecute taint the pod does not tolerate, and runs where the template tolerates it", async () => {
    const dedicated: Taint = { key: "dedicated", value: "gpu", effect: "NoSchedule" };
    const f = fixture([daemonSet("ds"), node("n1", { taints: [dedicated] }), node("n2", { taints: [{ key: "x", effect: "NoExecute" }] }), node("n3", { taints: [{ key: "soft", effect: "PreferNoSchedule" }] })]);
    await f.controller.reconcile(ctx(), "default/ds");
    expect(createdNodes(f.client)).toEqual(["n3"]);

    const g = fixture([daemonSet("ds", { tolerations: [{ key: "dedicated", operator: "Exists" }] }), node("n1", { taints: [dedicated] })]);
    await g.controller.reconcile(ctx(), "default/ds");
    expect(createdNodes(g.client)).toEqual(["n1"]);
  });

  it("runs on cordoned nodes: unschedulable and its taint are tolerated", async () => {
    const cordoned = node("n1", { unschedulable: true, taints: [{ key: "node.kubernetes.io/unschedulable", effect: "NoSchedule" }] });
    expect(nodeShouldRunDaemonPod(cordoned, daemonSet("ds"))).toEqual({ shouldRun: true, shouldContinueRunning: true });
    const f = fixture([daemonSet("ds"), cordoned]);
    await f.controller.reconcile(ctx(), "default/ds");
    expect(createdNodes(f.client)).toEqual(["n1"]);
  });

  it("keeps a pod on a node newly tainted NoSchedule (counted misscheduled) but deletes it for an untolerated NoExecute taint", async () => {
    const ds = daemonSet("ds");
    const f = fixture([ds, node("n1", { taints: [{ key: "a", effect: "NoSchedule" }] }), node("n2", { taints: [{ key: "b", effect: "NoExecute" }] }), pod("p1", ds, { node: "n1" }), pod("p2", ds, { node: "n2" })]);
    await f.controller.reconcile(ctx(), "default/ds");
    expect(deletedPods(f.client)).toEqual(["p2"]);
    expect(writes(f.client, "create", "pods")).toHaveLength(0);
    expect(dsStatus(f.client)).toMatchObject({ desiredNumberScheduled: 0, numberMisscheduled: 2 });
  });

  it("deletes the pods of a node whose labels stopped matching the nodeSelector", async () => {
    const ds = daemonSet("ds", { nodeSelector: { role: "edge" } });
    const f = fixture([ds, node("n1"), pod("p1", ds, { node: "n1" })]);
    await f.controller.reconcile(ctx(), "default/ds");
    expect(deletedPods(f.client)).toEqual(["p1"]);
  });

  it("deletes unscheduled pods meant for a node that no longer exists, but leaves pods bound to a deleted node to the pod GC", async () => {
    const ds = daemonSet("ds");
    const f = fixture([ds, node("n1"), pod("p1", ds, { node: "n1" }), pod("pending", ds, { target: "gone" }), pod("bound", ds, { node: "gone2" })]);
    await f.controller.reconcile(ctx(), "default/ds");
    expect(deletedPods(f.client)).toEqual(["pending"]);
    expect(writes(f.client, "create", "pods")).toHaveLength(0);
  });

  it("keeps only the oldest of several pods on one node", async () => {
    const ds = daemonSet("ds");
    const f = fixture([ds, node("n1"), pod("new", ds, { node: "n1", created: T0 + 1000 }), pod("old", ds, { node: "n1", created: T0 })]);
    await f.controller.reconcile(ctx(), "default/ds");
    expect(deletedPods(f.client)).toEqual(["new"]);
  });

  it("deletes a failed pod with a FailedDaemonPod event, then backs off deleting the next failed one on that node", async () => {
    const ds = daemonSet("ds");
    const hash = computeHash(ds.spec!.template);
    const f = fixture([ds, node("n1"), pod("p1", ds, { node: "n1", hash, phase: "Failed" })]);
    await f.controller.reconcile(ctx(), "default/ds");
    expect(deletedPods(f.client)).toEqual(["p1"]);
    expect(f.recorder.events).toContain("Warning FailedDaemonPod Found failed daemon pod default/p1 on node n1, will try to kill it");
    f.expectations.deletionObserved("default/ds", "uid-p1"); // as the pod informer would
    f.client.seed(pod("p2", ds, { node: "n1", hash, phase: "Failed" }));
    f.client.clearActions();
    const r = await f.controller.reconcile(ctx(), "default/ds");
    expect(deletedPods(f.client)).toEqual([]);
    expect(r.requeueAfterMs).toBe(1000);
  });

  it("adopts a matching orphan pod instead of creating another", async () => {
    const ds = daemonSet("ds");
    const orphan = pod("orphan", ds, { node: "n1" });
    delete orphan.metadata.ownerReferences;
    const f = fixture([ds, node("n1"), orphan]);
    await f.controller.reconcile(ctx(), "default/ds");
    expect(writes(f.client, "patch", "pods").map((a) => a.name)).toEqual(["orphan"]);
    expect(writes(f.client, "create", "pods")).toHaveLength(0);
  });

  it("creates in slow-start batches and stops at the first failing batch", async () => {
    const nodes = Array.from({ length: 6 }, (_, i) => node(`n${i}`));
    const f = fixture([daemonSet("ds"), ...nodes]);
    let n = 0;
    f.client.prependReactor("create", "pods", () => (++n >= 2 ? { error: fakeErrors.internal("quota exceeded") } : undefined));
    await expect(f.controller.reconcile(ctx(), "default/ds")).rejects.toThrow();
    // Batch 1 (ok), batch 2 (both fail), the remaining 3 never tried.
    expect(writes(f.client, "create", "pods")).toHaveLength(3);
    // Only the one pod that was created is still expected to show up.
    expect(f.expectations.get("default/ds")).toEqual({ add: 1, del: 0 });
  });

  it("does not create again while its creations are unobserved (stale cache)", async () => {
    const f = fixture([daemonSet("ds"), node("n1"), node("n2")], { live: false });
    await f.controller.reconcile(ctx(), "default/ds");
    expect(writes(f.client, "create", "pods")).toHaveLength(2);
    f.client.clearActions();
    await f.controller.reconcile(ctx(), "default/ds");
    expect(writes(f.client, "create", "pods")).toHaveLength(0);
  });

  it("writes status: desired, current, ready, available, unavailable, updated, misscheduled and observedGeneration", async () => {
    const ds = daemonSet("ds", { generation: 3 });
    const hash = computeHash(ds.spec!.template);
    const f = fixture([
      ds,
      revisionOf(ds, 1),
      node("n1"),
      node("n2"),
      node("n3"),
      node("other", { taints: [{ key: "x", effect: "NoSchedule" }] }),
      pod("p1", ds, { node: "n1", hash, readySince: T0 }),
      pod("p2", ds, { node: "n2", hash: "old", generation: 0, readySince: T0 }),
      pod("p3", ds, { node: "other", hash }),
    ]);
    await f.controller.reconcile(ctx(), "default/ds");
    expect(dsStatus(f.client)).toEqual({
      desiredNumberScheduled: 3,
      currentNumberScheduled: 2,
      numberMisscheduled: 1,
      numberReady: 2,
      numberAvailable: 2,
      numberUnavailable: 1,
      updatedNumberScheduled: 1,
      observedGeneration: 3,
    });
  });
});

describe("DaemonSetController: updates", () => {
  function updated(ds: DaemonSet): DaemonSet {
    const next = structuredClone(ds);
    next.spec!.template.spec!.containers[0]!.image = "busybox:2";
    next.metadata.annotations!["deprecated.daemonset.template.generation"] = "2";
    next.metadata.generation = 2;
    return next;
  }

  it("RollingUpdate with maxUnavailable 1 deletes one available old pod at a time; manage recreates it", async () => {
    const v1 = daemonSet("ds");
    const v2 = updated(v1);
    const oldHash = computeHash(v1.spec!.template);
    const pods = ["n1", "n2", "n3"].map((n) => pod(`p-${n}`, v1, { node: n, hash: oldHash, generation: 1, readySince: T0 }));
    const f = fixture([v2, revisionOf(v1, 1), node("n1"), node("n2"), node("n3"), ...pods]);
    await f.controller.reconcile(ctx(), "default/ds");
    expect(deletedPods(f.client)).toHaveLength(1);
    expect(writes(f.client, "create", "pods")).toHaveLength(0);
    // The new template got revision 2.
    const cr = writes(f.client, "create", "controllerrevisions")[0]!.object as ControllerRevision;
    expect(cr.revision).toBe(2);
  });

  it("RollingUpdate replaces unavailable old pods at once and honours a percentage maxUnavailable", async () => {
    const v1 = daemonSet("ds", { strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "50%", maxSurge: 0 } } });
    const v2 = updated(v1);
    const oldHash = computeHash(v1.spec!.template);
    const nodes = ["n1", "n2", "n3", "n4"].map((n) => node(n));
    const pods = [
      pod("p1", v1, { node: "n1", hash: oldHash, generation: 1 }), // not ready: replaced anyway
      pod("p2", v1, { node: "n2", hash: oldHash, generation: 1, readySince: T0 }),
      pod("p3", v1, { node: "n3", hash: oldHash, generation: 1, readySince: T0 }),
      pod("p4", v1, { node: "n4", hash: oldHash, generation: 1, readySince: T0 }),
    ];
    const f = fixture([v2, revisionOf(v1, 1), ...nodes, ...pods]);
    await f.controller.reconcile(ctx(), "default/ds");
    // 50% of 4 = 2 unavailable allowed: p1 (already unavailable) and one available old pod.
    const deleted = deletedPods(f.client);
    expect(deleted).toHaveLength(2);
    expect(deleted).toContain("p1");
  });

  it("RollingUpdate with maxSurge creates the new pod beside the old one, and deletes the old one once the new is available", async () => {
    const v1 = daemonSet("ds", { strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } } });
    const v2 = updated(v1);
    const oldHash = computeHash(v1.spec!.template);
    const newHash = computeHash(v2.spec!.template);
    const f = fixture([v2, revisionOf(v1, 1), node("n1"), node("n2"), pod("o1", v1, { node: "n1", hash: oldHash, generation: 1, readySince: T0 }), pod("o2", v1, { node: "n2", hash: oldHash, generation: 1, readySince: T0 })]);
    await f.controller.reconcile(ctx(), "default/ds");
    expect(createdNodes(f.client)).toHaveLength(1);
    expect(deletedPods(f.client)).toEqual([]);

    const g = fixture([v2, revisionOf(v1, 1), revisionOf(v2, 2), node("n1"), pod("o1", v1, { node: "n1", hash: oldHash, generation: 1, readySince: T0 }), pod("n1new", v2, { node: "n1", hash: newHash, generation: 2, readySince: T0, created: T0 + 1 })]);
    await g.controller.reconcile(ctx(), "default/ds");
    expect(deletedPods(g.client)).toEqual(["o1"]);
  });

  it("OnDelete leaves old pods alone; a deleted one comes back at the new revision", async () => {
    const v1 = daemonSet("ds", { strategy: { type: "OnDelete" } });
    const v2 = updated(v1);
    const oldHash = computeHash(v1.spec!.template);
    const f = fixture([v2, revisionOf(v1, 1), node("n1"), node("n2"), pod("p1", v1, { node: "n1", hash: oldHash, generation: 1, readySince: T0 })]);
    await f.controller.reconcile(ctx(), "default/ds");
    expect(deletedPods(f.client)).toEqual([]);
    const created = writes(f.client, "create", "pods").map((a) => a.object as Pod);
    expect(created.map((p) => p.metadata.labels?.["controller-revision-hash"])).toEqual([computeHash(v2.spec!.template)]);
    expect(created[0]!.metadata.labels?.["pod-template-generation"]).toBe("2");
  });

  it("a rollback to an old template renumbers its revision to the newest instead of creating one", async () => {
    const v1 = daemonSet("ds");
    const v2 = updated(v1);
    const back = structuredClone(v1);
    back.metadata.annotations!["deprecated.daemonset.template.generation"] = "3";
    const f = fixture([back, revisionOf(v1, 1), revisionOf(v2, 2), node("n1")]);
    await f.controller.reconcile(ctx(), "default/ds");
    expect(writes(f.client, "create", "controllerrevisions")).toHaveLength(0);
    const up = writes(f.client, "update", "controllerrevisions").map((a) => a.object as ControllerRevision);
    expect(up.map((r) => [r.metadata.name, r.revision])).toEqual([[`ds-${computeHash(v1.spec!.template)}`, 3]]);
  });

  it("keeps revisionHistoryLimit old revisions, deleting the oldest ones no pod uses", async () => {
    const base = daemonSet("ds", { revisionHistoryLimit: 1 });
    const olds = [1, 2, 3].map((i) => {
      const d = structuredClone(base);
      d.spec!.template.spec!.containers[0]!.image = `busybox:old${i}`;
      return revisionOf(d, i);
    });
    const usedHash = olds[0]!.metadata.labels!["controller-revision-hash"]!;
    const f = fixture([base, ...olds, node("n1"), pod("p1", base, { node: "n1", hash: usedHash, generation: 0, readySince: T0 })]);
    await f.controller.reconcile(ctx(), "default/ds");
    // Three old revisions, one to keep: two go, oldest first, skipping revision 1 which p1 still runs.
    expect(writes(f.client, "delete", "controllerrevisions").map((a) => a.name)).toEqual([olds[1]!.metadata.name, olds[2]!.metadata.name]);
  });
});

describe("DaemonSetHandlers", () => {
  it("maps pod events to the owner and records expectation observations", () => {
    const ds = daemonSet("ds");
    const expectations = new DaemonSetExpectations();
    const h = new DaemonSetHandlers({ daemonSets: fakeLister([ds]), expectations });
    expectations.setExpectations("default/ds", 1, ["uid-gone"]);
    expect(h.onPodAdd(pod("p1", ds, { node: "n1" }))).toEqual(["default/ds"]);
    expect(expectations.get("default/ds")).toEqual({ add: 0, del: 1 });
    expect(h.onPodDelete(pod("gone", ds, { node: "n1" }))).toEqual(["default/ds"]);
    expect(expectations.satisfied("default/ds")).toBe(true);
  });

  it("a pod turning Ready asks for another look minReadySeconds (+1 s) later, when the DaemonSet has minReadySeconds", () => {
    const ds = daemonSet("ds");
    ds.spec!.minReadySeconds = 5;
    const h = new DaemonSetHandlers({ daemonSets: fakeLister([ds]), expectations: new DaemonSetExpectations() });
    const notReady = pod("p1", ds, { node: "n1" });
    const nowReady = pod("p1", ds, { node: "n1", readySince: T0 });
    expect(h.onPodReadyLater(notReady, nowReady)).toEqual({ key: "default/ds", afterMs: 6000 });
    expect(h.onPodReadyLater(nowReady, nowReady)).toBeUndefined();
    const plain = new DaemonSetHandlers({ daemonSets: fakeLister([daemonSet("ds")]), expectations: new DaemonSetExpectations() });
    expect(plain.onPodReadyLater(notReady, nowReady)).toBeUndefined();
  });

  it("a node heartbeat enqueues nothing; a label change that flips eligibility enqueues the DaemonSet", () => {
    const ds = daemonSet("ds", { nodeSelector: { role: "edge" } });
    const h = new DaemonSetHandlers({ daemonSets: fakeLister([ds]), expectations: new DaemonSetExpectations() });
    const a = node("n1");
    const beat = structuredClone(a);
    beat.metadata.resourceVersion = "2";
    beat.status!.conditions![0]!.lastHeartbeatTime = iso(T0 + 10_000);
    expect(h.onNodeUpdate(a, beat)).toEqual([]);
    const labelled = structuredClone(a);
    labelled.metadata.labels!.role = "edge";
    expect(h.onNodeUpdate(a, labelled)).toEqual(["default/ds"]);
    expect(h.onNodeAdd(labelled)).toEqual(["default/ds"]);
    expect(h.onNodeAdd(a)).toEqual([]);
  });
});

describe("daemon pod placement helpers", () => {
  it("ReplaceDaemonSetPodNodeNameNodeAffinity replaces the required terms and keeps preferred terms and pod affinity", () => {
    const preferred = [{ weight: 1, preference: { matchExpressions: [{ key: "disk", operator: "In" as const, values: ["ssd"] }] } }];
    const a = replaceDaemonSetPodNodeNameNodeAffinity(
      {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: "role", operator: "In", values: ["edge"] }] }] },
          preferredDuringSchedulingIgnoredDuringExecution: preferred,
        },
        podAntiAffinity: {},
      },
      "n7",
    );
    expect(a).toEqual({
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: "metadata.name", operator: "In", values: ["n7"] }] }] },
        preferredDuringSchedulingIgnoredDuringExecution: preferred,
      },
      podAntiAffinity: {},
    });
  });

  it("GetTargetNodeName: spec.nodeName, else the single metadata.name In value of the required affinity", () => {
    const ds = daemonSet("ds");
    expect(getTargetNodeName(pod("a", ds, { node: "n1" }))).toBe("n1");
    expect(getTargetNodeName(pod("b", ds, { target: "n2" }))).toBe("n2");
    const two = pod("c", ds, { target: "n3" });
    two.spec!.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms[0]!.matchFields![0]!.values = ["n3", "n4"];
    expect(getTargetNodeName(two)).toBeUndefined();
  });

  it("NodeShouldRunDaemonPod honours the template's required node affinity and nodeName", () => {
    const ds = daemonSet("ds");
    ds.spec!.template.spec!.affinity = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: "role", operator: "In", values: ["edge"] }] }] } } };
    expect(nodeShouldRunDaemonPod(node("n1"), ds).shouldRun).toBe(false);
    expect(nodeShouldRunDaemonPod(node("n1", { labels: { role: "edge" } }), ds).shouldRun).toBe(true);
    const pinned = daemonSet("ds");
    pinned.spec!.template.spec!.nodeName = "n2";
    expect(nodeShouldRunDaemonPod(node("n1"), pinned)).toEqual({ shouldRun: false, shouldContinueRunning: false });
    expect(nodeShouldRunDaemonPod(node("n2"), pinned).shouldRun).toBe(true);
  });
});
