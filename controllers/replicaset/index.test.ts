// ReplicaSet controller: one synchronous reconcile against a FakeClient, assertions on its actions.

import { describe, expect, it } from "vitest";
import type { Pod, ReplicaSet } from "../../api/index.ts";
import { newLogger } from "../../client/log.ts";
import { fakeErrors, fakeLister, FakeClient, FakeClock, FakeRecorder, type Action } from "../../client/testing.ts";
import type { ReconcileContext } from "../../client/types.ts";
import { Expectations } from "../expectations.ts";
import { ReplicaSetController, ReplicaSetPodHandlers } from "./index.ts";

const NS = "default";
const T0 = Date.UTC(2024, 0, 1, 0, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

function ctx(): ReconcileContext {
  return { signal: new AbortController().signal, log: newLogger("test"), reconcileID: "test" };
}

function replicaSet(name: string, replicas: number, opts: { minReadySeconds?: number; status?: ReplicaSet["status"]; generation?: number } = {}): ReplicaSet {
  return {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    metadata: { name, namespace: NS, uid: `uid-${name}`, generation: opts.generation ?? 1, resourceVersion: "1", creationTimestamp: iso(T0) },
    spec: {
      replicas,
      minReadySeconds: opts.minReadySeconds,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "c", image: "busybox" }] } },
    },
    ...(opts.status ? { status: opts.status } : {}),
  };
}

interface PodOpts {
  owner?: ReplicaSet;
  labels?: Record<string, string>;
  phase?: "Pending" | "Running" | "Unknown";
  node?: string;
  /** Ready since this time (ms); absent: not ready. */
  readySince?: number;
  created?: number;
  restarts?: number;
}

function pod(name: string, o: PodOpts = {}): Pod {
  const p: Pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: NS,
      uid: `uid-${name}`,
      resourceVersion: "1",
      creationTimestamp: iso(o.created ?? T0),
      labels: o.labels ?? (o.owner ? { app: o.owner.metadata.name ?? "" } : {}),
    },
    spec: { containers: [{ name: "c", image: "busybox" }], ...(o.node ? { nodeName: o.node } : {}) },
    status: {
      phase: o.phase ?? "Running",
      conditions: o.readySince !== undefined ? [{ type: "Ready", status: "True", lastTransitionTime: iso(o.readySince) }] : [{ type: "Ready", status: "False" }],
      containerStatuses: [{ name: "c", ready: o.readySince !== undefined, restartCount: o.restarts ?? 0, image: "busybox", imageID: "" }],
    },
  };
  if (o.owner) {
    p.metadata.ownerReferences = [
      { apiVersion: "apps/v1", kind: "ReplicaSet", name: o.owner.metadata.name ?? "", uid: o.owner.metadata.uid ?? "", controller: true, blockOwnerDeletion: true },
    ];
  }
  return p;
}

function ownedBy(rs: ReplicaSet, deployment: string): ReplicaSet {
  rs.metadata.ownerReferences = [{ apiVersion: "apps/v1", kind: "Deployment", name: deployment, uid: `uid-${deployment}`, controller: true, blockOwnerDeletion: true }];
  return rs;
}

function fixture(rss: ReplicaSet[], pods: Pod[], opts: { burstReplicas?: number; now?: number } = {}) {
  const clock = new FakeClock(opts.now ?? T0 + 3600_000);
  const client = new FakeClient([...rss, ...pods], { clock });
  const expectations = new Expectations({ clock });
  const recorder = new FakeRecorder();
  const controller = new ReplicaSetController({
    client,
    // Listers hold what the tracker holds (with its resourceVersions), as an informer would.
    pods: fakeLister(client.trackerList("", "pods") as Pod[]),
    replicaSets: fakeLister(client.trackerList("apps", "replicasets") as ReplicaSet[]),
    expectations,
    recorder,
    clock,
    burstReplicas: opts.burstReplicas,
  });
  return { client, expectations, recorder, controller, clock };
}

const writes = (client: FakeClient, verb: Action["verb"], resource: string) => client.writeActions().filter((a) => a.verb === verb && a.resource === resource);

describe("ReplicaSetController: creating pods", () => {
  it("creates the missing pods from the template, each owned by the ReplicaSet with generateName <rs>-", async () => {
    const rs = replicaSet("web", 3);
    const f = fixture([rs], []);
    await f.controller.reconcile(ctx(), "default/web");
    const creates = writes(f.client, "create", "pods");
    expect(creates).toHaveLength(3);
    for (const a of creates) {
      expect(a.object?.metadata.generateName).toBe("web-");
      expect(a.object?.metadata.labels).toEqual({ app: "web" });
      expect(a.object?.metadata.ownerReferences).toEqual([
        { apiVersion: "apps/v1", kind: "ReplicaSet", name: "web", uid: "uid-web", controller: true, blockOwnerDeletion: true },
      ]);
    }
    expect(f.recorder.events.filter((e) => e.startsWith("Normal SuccessfulCreate"))).toHaveLength(3);
  });

  it("caps the creates of one reconcile at burstReplicas", async () => {
    const f = fixture([replicaSet("web", 10)], [], { burstReplicas: 3 });
    await f.controller.reconcile(ctx(), "default/web");
    expect(writes(f.client, "create", "pods")).toHaveLength(3);
  });

  it("stops at the first failing slow-start batch (1, then 2) and lowers expectations for the skipped creates", async () => {
    const f = fixture([replicaSet("web", 10)], []);
    let n = 0;
    f.client.prependReactor("create", "pods", () => (++n === 2 ? { error: fakeErrors.internal("etcd is sad") } : undefined));
    await expect(f.controller.reconcile(ctx(), "default/web")).rejects.toThrow(/etcd is sad/);
    // Batch of 1 succeeds, batch of 2 has a failure: no batch of 4.
    expect(writes(f.client, "create", "pods")).toHaveLength(3);
    expect(f.expectations.get("default/web")).toEqual({ add: 2, del: 0 });
    expect(f.recorder.events).toContain("Warning FailedCreate Error creating: Internal error occurred: etcd is sad");
    const status = writes(f.client, "update", "replicasets").find((a) => a.subresource === "status");
    expect((status?.object as ReplicaSet).status?.conditions).toEqual([
      expect.objectContaining({ type: "ReplicaFailure", status: "True", reason: "FailedCreate" }),
    ]);
  });

  it("creates nothing on a second reconcile before the informer has observed the first creates", async () => {
    const rs = replicaSet("web", 2);
    const f = fixture([rs], []);
    await f.controller.reconcile(ctx(), "default/web");
    expect(writes(f.client, "create", "pods")).toHaveLength(2);
    f.client.clearActions();
    await f.controller.reconcile(ctx(), "default/web");
    expect(writes(f.client, "create", "pods")).toHaveLength(0);

    // The informer now delivers both pods: expectations are met and the next reconcile may act again.
    const handlers = new ReplicaSetPodHandlers({ replicaSets: fakeLister([rs]), expectations: f.expectations });
    for (const p of f.client.trackerList("", "pods") as Pod[]) expect(handlers.onPodAdd(p)).toEqual(["default/web"]);
    expect(f.expectations.satisfied("default/web")).toBe(true);
  });

  it("treats expectations older than five minutes as satisfied", async () => {
    const f = fixture([replicaSet("web", 2)], []);
    await f.controller.reconcile(ctx(), "default/web");
    f.client.clearActions();
    await f.clock.advance(5 * 60_000 + 1);
    await f.controller.reconcile(ctx(), "default/web");
    expect(writes(f.client, "create", "pods")).toHaveLength(2);
  });
});

describe("ReplicaSetController: deleting surplus pods", () => {
  const rs = replicaSet("web", 1);
  const cases: { name: string; rss?: ReplicaSet[]; pods: Pod[]; deleted: string }[] = [
    {
      name: "an unscheduled pod goes before a scheduled one",
      pods: [pod("scheduled", { owner: rs, node: "n1", phase: "Pending" }), pod("unscheduled", { owner: rs, phase: "Pending" })],
      deleted: "unscheduled",
    },
    {
      name: "a pending pod goes before a running one",
      pods: [pod("running", { owner: rs, node: "n1" }), pod("pending", { owner: rs, node: "n1", phase: "Pending" })],
      deleted: "pending",
    },
    {
      name: "a not-ready pod goes before a ready one",
      pods: [pod("ready", { owner: rs, node: "n1", readySince: T0 }), pod("not-ready", { owner: rs, node: "n2" })],
      deleted: "not-ready",
    },
    {
      name: "a pod sharing its node with a pod of a sibling ReplicaSet goes before one alone on its node, even when older",
      rss: [ownedBy(replicaSet("web", 1), "d1"), ownedBy(replicaSet("web-old", 0), "d1")],
      pods: [
        pod("alone", { owner: ownedBy(replicaSet("web", 1), "d1"), node: "n1", readySince: T0, created: T0 }),
        pod("doubled", { owner: ownedBy(replicaSet("web", 1), "d1"), node: "n2", readySince: T0, created: T0 - 60_000 }),
        pod("sibling", { owner: ownedBy(replicaSet("web-old", 0), "d1"), node: "n2", readySince: T0, labels: { app: "web-old" } }),
      ],
      deleted: "doubled",
    },
    {
      name: "the pod ready for less time goes before the one ready longer",
      pods: [pod("long", { owner: rs, node: "n1", readySince: T0 }), pod("short", { owner: rs, node: "n2", readySince: T0 + 60_000 })],
      deleted: "short",
    },
    {
      name: "the pod with more restarts goes first among otherwise equal pods",
      pods: [pod("stable", { owner: rs, node: "n1", readySince: T0 }), pod("flappy", { owner: rs, node: "n2", readySince: T0, restarts: 4 })],
      deleted: "flappy",
    },
    {
      name: "the newest of otherwise equal pods goes first",
      pods: [pod("old", { owner: rs, node: "n1", readySince: T0, created: T0 - 60_000 }), pod("new", { owner: rs, node: "n2", readySince: T0, created: T0 })],
      deleted: "new",
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const f = fixture(c.rss ?? [rs], c.pods);
      await f.controller.reconcile(ctx(), "default/web");
      expect(writes(f.client, "delete", "pods").map((a) => a.name)).toEqual([c.deleted]);
      expect(f.recorder.events).toContain(`Normal SuccessfulDelete Deleted pod: ${c.deleted}`);
    });
  }

  it("expects the deletions by uid: nothing more is deleted until the informer reports them gone", async () => {
    const pods = [pod("a", { owner: rs, node: "n1", readySince: T0 }), pod("b", { owner: rs, node: "n1" })];
    const f = fixture([rs], pods);
    await f.controller.reconcile(ctx(), "default/web");
    expect(writes(f.client, "delete", "pods").map((a) => a.name)).toEqual(["b"]);
    f.client.clearActions();
    await f.controller.reconcile(ctx(), "default/web");
    expect(writes(f.client, "delete", "pods")).toHaveLength(0);

    const handlers = new ReplicaSetPodHandlers({ replicaSets: fakeLister([rs]), expectations: f.expectations });
    handlers.onPodDelete(pods[0]); // not one we deleted: does not count
    expect(f.expectations.satisfied("default/web")).toBe(false);
    expect(handlers.onPodDelete(pods[1])).toEqual(["default/web"]);
    expect(f.expectations.satisfied("default/web")).toBe(true);
  });

  it("ignores pods that are finished or being deleted when counting replicas", async () => {
    const done = pod("done", { owner: rs });
    done.status!.phase = "Succeeded";
    const leaving = pod("leaving", { owner: rs });
    leaving.metadata.deletionTimestamp = iso(T0);
    const f = fixture([rs], [done, leaving]);
    await f.controller.reconcile(ctx(), "default/web");
    expect(writes(f.client, "create", "pods")).toHaveLength(1);
    expect(writes(f.client, "delete", "pods")).toHaveLength(0);
  });
});

describe("ReplicaSetController: adoption and release", () => {
  it("adopts a matching orphan and releases an owned pod whose labels no longer match, by merge patch with a uid precondition", async () => {
    const rs = replicaSet("web", 1);
    const orphan = pod("orphan", { labels: { app: "web" }, node: "n1", readySince: T0 });
    const stray = pod("stray", { owner: rs, labels: { app: "debug" } });
    const other = replicaSet("other", 1);
    const foreign = pod("foreign", { owner: other, labels: { app: "web" } });
    const f = fixture([rs, other], [orphan, stray, foreign]);
    await f.controller.reconcile(ctx(), "default/web");

    const patches = writes(f.client, "patch", "pods");
    expect(patches.map((a) => [a.name, a.patchType])).toEqual([
      ["orphan", "merge"],
      ["stray", "merge"],
    ]);
    expect(patches[0].patch).toEqual({
      metadata: {
        uid: "uid-orphan",
        ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "web", uid: "uid-web", controller: true, blockOwnerDeletion: true }],
      },
    });
    expect(patches[1].patch).toEqual({ metadata: { uid: "uid-stray", ownerReferences: null } });
    // Adoption re-reads the ReplicaSet from the apiserver first.
    expect(f.client.actions.some((a) => a.verb === "get" && a.resource === "replicasets" && a.name === "web")).toBe(true);
    // The adopted orphan fills the one replica: nothing is created or deleted, and the foreign pod is left alone.
    expect(writes(f.client, "create", "pods")).toHaveLength(0);
    expect(writes(f.client, "delete", "pods")).toHaveLength(0);
    expect((f.client.tracker("", "pods", NS, "orphan") as Pod).metadata.ownerReferences?.[0].uid).toBe("uid-web");
    expect((f.client.tracker("", "pods", NS, "stray") as Pod).metadata.ownerReferences).toBeUndefined();
  });

  it("does not adopt orphans while the ReplicaSet is being deleted", async () => {
    const rs = replicaSet("web", 1);
    rs.metadata.deletionTimestamp = iso(T0);
    const f = fixture([rs], [pod("orphan", { labels: { app: "web" } })]);
    await f.controller.reconcile(ctx(), "default/web");
    expect(writes(f.client, "patch", "pods")).toHaveLength(0);
    expect(writes(f.client, "create", "pods")).toHaveLength(0);
  });
});

describe("ReplicaSetController: status", () => {
  const rs = replicaSet("web", 2, { minReadySeconds: 10 });
  const now = T0 + 3600_000;
  const cases: { name: string; rs: ReplicaSet; pods: Pod[]; expected?: Partial<NonNullable<ReplicaSet["status"]>>; requeueAfterMs?: number }[] = [
    {
      name: "counts ready pods as available only once minReadySeconds have passed, and requeues for that moment",
      rs,
      pods: [pod("a", { owner: rs, node: "n1", readySince: now - 60_000 }), pod("b", { owner: rs, node: "n1", readySince: now - 5_000 })],
      expected: { replicas: 2, fullyLabeledReplicas: 2, readyReplicas: 2, availableReplicas: 1, observedGeneration: 1 },
      requeueAfterMs: 10_000,
    },
    {
      name: "does not count a pod missing template labels as fully labeled",
      rs: (() => {
        const r = replicaSet("web", 1);
        r.spec!.template!.metadata!.labels = { app: "web", tier: "front" };
        return r;
      })(),
      pods: [pod("a", { owner: replicaSet("web", 1), node: "n1", readySince: now - 60_000 })],
      expected: { replicas: 1, fullyLabeledReplicas: 0, readyReplicas: 1, availableReplicas: 1, observedGeneration: 1 },
    },
    {
      name: "writes nothing when the status already says it all",
      rs: replicaSet("web", 1, { status: { replicas: 1, fullyLabeledReplicas: 1, readyReplicas: 1, availableReplicas: 1, observedGeneration: 1 } }),
      pods: [pod("a", { owner: replicaSet("web", 1), node: "n1", readySince: now - 60_000 })],
    },
    {
      name: "writes the status when only the generation moved on",
      rs: replicaSet("web", 1, { generation: 2, status: { replicas: 1, fullyLabeledReplicas: 1, readyReplicas: 1, availableReplicas: 1, observedGeneration: 1 } }),
      pods: [pod("a", { owner: replicaSet("web", 1), node: "n1", readySince: now - 60_000 })],
      expected: { replicas: 1, observedGeneration: 2 },
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const f = fixture([c.rs], c.pods, { now });
      const result = await f.controller.reconcile(ctx(), "default/web");
      const updates = writes(f.client, "update", "replicasets");
      if (!c.expected) {
        expect(updates).toHaveLength(0);
      } else {
        expect(updates).toHaveLength(1);
        expect(updates[0].subresource).toBe("status");
        expect((updates[0].object as ReplicaSet).status).toMatchObject(c.expected);
      }
      expect(result.requeueAfterMs).toBe(c.requeueAfterMs);
    });
  }

  it("forgets the expectations of a ReplicaSet that is gone", async () => {
    const f = fixture([], []);
    f.expectations.expectCreations("default/web", 3);
    await f.controller.reconcile(ctx(), "default/web");
    expect(f.expectations.get("default/web")).toBeUndefined();
    expect(f.client.actions).toHaveLength(0);
  });
});

describe("ReplicaSetPodHandlers", () => {
  it("maps an owned pod to its ReplicaSet and an orphan to every ReplicaSet selecting it", () => {
    const web = replicaSet("web", 1);
    const web2 = replicaSet("web2", 1);
    web2.spec!.selector = { matchLabels: { app: "web" } };
    const h = new ReplicaSetPodHandlers({ replicaSets: fakeLister([web, web2]), expectations: new Expectations() });
    expect(h.podEventKeys(pod("a", { owner: web }))).toEqual(["default/web"]);
    expect(h.podEventKeys(pod("b", { labels: { app: "web" } })).sort()).toEqual(["default/web", "default/web2"]);
    expect(h.podEventKeys(pod("c", { labels: { app: "nothing" } }))).toEqual([]);
    const stale = pod("d", { owner: web });
    stale.metadata.ownerReferences![0].uid = "uid-of-a-previous-web";
    expect(h.podEventKeys(stale)).toEqual([]);
  });
});
