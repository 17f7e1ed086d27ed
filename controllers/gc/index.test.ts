// Garbage collector: synchronous reconciles against a FakeClient, listers rebuilt from the tracker
// whenever a test lets "the informers catch up".

import { describe, expect, it } from "vitest";
import { findResource, type KubeObject, type OwnerReference } from "../../api/index.ts";
import { newLogger } from "../../client/log.ts";
import { fakeLister, FakeClient, FakeClock } from "../../client/testing.ts";
import type { ReconcileContext } from "../../client/types.ts";
import { GarbageCollector, GarbageCollectorHandlers, gcKey, GCResources, type GCResource } from "./index.ts";

const NS = "default";
const T0 = Date.UTC(2024, 0, 1, 0, 0, 0);

function ctx(): ReconcileContext {
  return { signal: new AbortController().signal, log: newLogger("test"), reconcileID: "test" };
}

const info = (group: string, resource: string) => findResource(group, "v1", resource)!;
const DEPLOYMENTS = info("apps", "deployments");
const REPLICASETS = info("apps", "replicasets");
const PODS = info("", "pods");

function ref(owner: KubeObject, block = true): OwnerReference {
  return { apiVersion: owner.apiVersion ?? "", kind: owner.kind ?? "", name: owner.metadata.name ?? "", uid: owner.metadata.uid ?? "", controller: true, blockOwnerDeletion: block };
}

function deployment(name: string, opts: { uid?: string; deleting?: "orphan" | "foregroundDeletion" } = {}): KubeObject {
  const d: KubeObject = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace: NS, uid: opts.uid ?? `uid-${name}` },
    spec: { selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "c", image: "busybox" }] } } },
  };
  if (opts.deleting) {
    d.metadata.deletionTimestamp = new Date(T0).toISOString().replace(/\.\d{3}Z$/, "Z");
    d.metadata.deletionGracePeriodSeconds = 0;
    d.metadata.finalizers = [opts.deleting];
  }
  return d;
}

function replicaSet(name: string, owners: OwnerReference[]): KubeObject {
  return {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    metadata: { name, namespace: NS, uid: `uid-${name}`, ownerReferences: owners },
    spec: { replicas: 1, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "c", image: "busybox" }] } } },
  };
}

function pod(name: string, owners: OwnerReference[]): KubeObject {
  return { apiVersion: "v1", kind: "Pod", metadata: { name, namespace: NS, uid: `uid-${name}`, ownerReferences: owners }, spec: { containers: [{ name: "c", image: "busybox" }] } };
}

/**
 * A GC over a FakeClient whose listers hold what the tracker holds, minus `hidden` (object names the
 * informers have not seen yet). `sync()` lets the informers catch up with the tracker.
 */
function fixture(objects: KubeObject[], opts: { hidden?: string[] } = {}) {
  const client = new FakeClient(objects, { clock: new FakeClock(T0) });
  const hidden = new Set(opts.hidden ?? []);
  const build = () => {
    const resources: GCResource[] = GCResources.map(({ group, resource }) => ({
      info: info(group, resource),
      lister: fakeLister(client.trackerList(group, resource).filter((o) => !hidden.has(o.metadata.name ?? ""))),
    }));
    const gc = new GarbageCollector({ client, resources });
    return { gc, handlers: new GarbageCollectorHandlers(gc) };
  };
  const f = {
    client,
    ...build(),
    sync() {
      hidden.clear();
      Object.assign(f, build());
    },
    key(resInfo: ReturnType<typeof info>, name: string) {
      const o = client.tracker(resInfo.group, resInfo.resource, NS, name);
      return gcKey({ info: resInfo, namespace: NS, name, uid: o?.metadata.uid ?? `uid-${name}` });
    },
    exists(resInfo: ReturnType<typeof info>, name: string) {
      return client.tracker(resInfo.group, resInfo.resource, NS, name) !== undefined;
    },
  };
  return f;
}

describe("GarbageCollector: background cascade", () => {
  it("deletes the ReplicaSet of a deleted Deployment, then that ReplicaSet's pods, with Background propagation", async () => {
    const d = deployment("web");
    const rs = replicaSet("web-1", [ref(d)]);
    const f = fixture([rs, pod("web-1-a", [ref(rs)]), pod("web-1-b", [ref(rs)])]);

    await f.gc.reconcile(ctx(), f.key(REPLICASETS, "web-1"));
    const deletes = f.client.writeActions().filter((a) => a.verb === "delete");
    expect(deletes).toEqual([
      expect.objectContaining({ resource: "replicasets", name: "web-1", deleteOptions: { propagationPolicy: "Background", preconditions: { uid: "uid-web-1" } } }),
    ]);
    // The owner's absence was confirmed live, not taken from the cache.
    expect(f.client.actions).toContainEqual(expect.objectContaining({ verb: "get", resource: "deployments", name: "web" }));

    // The ReplicaSet's delete event enqueues its pods, which are now orphans.
    const keys = f.handlers.onDelete(REPLICASETS, rs);
    const podKeys = [f.key(PODS, "web-1-a"), f.key(PODS, "web-1-b")];
    expect(keys).toEqual(expect.arrayContaining(podKeys));
    f.sync();
    for (const k of podKeys) await f.gc.reconcile(ctx(), k);
    expect(f.client.trackerList("", "pods")).toEqual([]);
    expect(f.client.trackerList("apps", "replicasets")).toEqual([]);
  });

  it("treats an owner recreated under the same name (another uid) as gone", async () => {
    const old = deployment("web", { uid: "uid-old" });
    const f = fixture([deployment("web", { uid: "uid-new" }), replicaSet("web-1", [ref(old)])]);
    await f.gc.reconcile(ctx(), f.key(REPLICASETS, "web-1"));
    expect(f.exists(REPLICASETS, "web-1")).toBe(false);
    expect(f.exists(DEPLOYMENTS, "web")).toBe(true);
  });

  it("keeps a dependent that has another live owner and drops only its reference to the gone one", async () => {
    const gone = deployment("gone");
    const live = deployment("live");
    const f = fixture([live, replicaSet("shared", [ref(gone), { ...ref(live), controller: false }])]);
    await f.gc.reconcile(ctx(), f.key(REPLICASETS, "shared"));
    expect(f.client.writeActions().filter((a) => a.verb === "delete")).toEqual([]);
    expect(f.client.tracker("apps", "replicasets", NS, "shared")?.metadata.ownerReferences).toEqual([{ ...ref(live), controller: false }]);
  });

  it("deletes nothing when the owner is missing from the cache but present on a live GET (a stale cache)", async () => {
    const d = deployment("web");
    const f = fixture([d, replicaSet("web-1", [ref(d)])], { hidden: ["web"] });
    await f.gc.reconcile(ctx(), f.key(REPLICASETS, "web-1"));
    expect(f.client.actions).toContainEqual(expect.objectContaining({ verb: "get", resource: "deployments", name: "web" }));
    expect(f.client.writeActions()).toEqual([]);
  });

  it("does nothing, and reads nothing, for a dependent whose owner is in the cache", async () => {
    const d = deployment("web");
    const f = fixture([d, replicaSet("web-1", [ref(d)])]);
    await f.gc.reconcile(ctx(), f.key(REPLICASETS, "web-1"));
    expect(f.client.actions).toEqual([]);
  });
});

describe("GarbageCollector: orphan propagation", () => {
  it("removes the ownerReference to the owner from every dependent, then the orphan finalizer, leaving the dependents", async () => {
    const d = deployment("web", { deleting: "orphan" });
    const other = deployment("other");
    const f = fixture([d, other, replicaSet("web-1", [ref(d)]), replicaSet("web-2", [ref(d), { ...ref(other), controller: false }])]);

    await f.gc.reconcile(ctx(), f.key(DEPLOYMENTS, "web"));
    expect(f.client.tracker("apps", "replicasets", NS, "web-1")?.metadata.ownerReferences ?? []).toEqual([]);
    expect(f.exists(REPLICASETS, "web-1")).toBe(true);
    expect(f.client.tracker("apps", "replicasets", NS, "web-2")?.metadata.ownerReferences).toEqual([{ ...ref(other), controller: false }]);
    // The finalizer goes last, and with it the owner (it has no other finalizers).
    const writes = f.client.writeActions();
    expect(writes.at(-1)).toEqual(expect.objectContaining({ verb: "patch", resource: "deployments", name: "web", patchType: "merge" }));
    expect(f.exists(DEPLOYMENTS, "web")).toBe(false);
    expect(writes.filter((a) => a.verb === "delete")).toEqual([]);
  });
});

describe("GarbageCollector: foreground propagation", () => {
  it("deletes blocking dependents first, cascading through ReplicaSets, and removes the finalizer only once they are gone", async () => {
    const d = deployment("web", { deleting: "foregroundDeletion" });
    const rs = replicaSet("web-1", [ref(d)]);
    const f = fixture([d, rs, pod("web-1-a", [ref(rs)])]);

    // Round 1: the owner's reconcile deletes the ReplicaSet in the foreground (it has pods).
    await f.gc.reconcile(ctx(), f.key(DEPLOYMENTS, "web"));
    expect(f.client.writeActions()).toEqual([
      expect.objectContaining({ verb: "delete", resource: "replicasets", name: "web-1", deleteOptions: { propagationPolicy: "Foreground", preconditions: { uid: "uid-web-1" } } }),
    ]);
    expect(f.client.tracker("apps", "deployments", NS, "web")?.metadata.finalizers).toEqual(["foregroundDeletion"]);

    // Round 2: the ReplicaSet is now itself deleting its dependents: its pod goes (Background).
    f.sync();
    f.client.clearActions();
    await f.gc.reconcile(ctx(), f.key(REPLICASETS, "web-1"));
    expect(f.client.writeActions()).toEqual([
      expect.objectContaining({ verb: "delete", resource: "pods", name: "web-1-a", deleteOptions: { propagationPolicy: "Background", preconditions: { uid: "uid-web-1-a" } } }),
    ]);

    // The Deployment still waits: its blocking ReplicaSet exists (being deleted, so not deleted again).
    f.sync();
    f.client.clearActions();
    await f.gc.reconcile(ctx(), f.key(DEPLOYMENTS, "web"));
    expect(f.client.writeActions()).toEqual([]);

    // The pod is gone: the ReplicaSet's finalizer goes, and with it the ReplicaSet, whose delete event wakes the Deployment.
    await f.gc.reconcile(ctx(), f.key(REPLICASETS, "web-1"));
    expect(f.exists(REPLICASETS, "web-1")).toBe(false);
    expect(f.handlers.onDelete(REPLICASETS, rs)).toContain(f.key(DEPLOYMENTS, "web"));
    f.sync();
    await f.gc.reconcile(ctx(), f.key(DEPLOYMENTS, "web"));
    expect(f.exists(DEPLOYMENTS, "web")).toBe(false);
  });

  it("does not wait for a dependent without blockOwnerDeletion, though it deletes it", async () => {
    const d = deployment("web", { deleting: "foregroundDeletion" });
    const f = fixture([d, pod("loose", [ref(d, false)])]);
    await f.gc.reconcile(ctx(), f.key(DEPLOYMENTS, "web"));
    expect(f.exists(DEPLOYMENTS, "web")).toBe(false);
  });

  it("releases, rather than deletes, a blocking dependent that has another live owner", async () => {
    const d = deployment("web", { deleting: "foregroundDeletion" });
    const other = deployment("other");
    const f = fixture([d, other, replicaSet("shared", [ref(d), { ...ref(other), controller: false }])]);
    await f.gc.reconcile(ctx(), f.key(DEPLOYMENTS, "web"));
    expect(f.exists(REPLICASETS, "shared")).toBe(true);
    expect(f.client.tracker("apps", "replicasets", NS, "shared")?.metadata.ownerReferences).toEqual([{ ...ref(other), controller: false }]);
    f.sync();
    await f.gc.reconcile(ctx(), f.key(DEPLOYMENTS, "web"));
    expect(f.exists(DEPLOYMENTS, "web")).toBe(false);
  });
});

describe("GarbageCollectorHandlers", () => {
  it("enqueues an object and its owners when its ownerReferences change, and ignores resyncs", () => {
    const d = deployment("web");
    const rs = replicaSet("web-1", [ref(d)]);
    const f = fixture([d, rs]);
    const released = { ...rs, metadata: { ...rs.metadata, resourceVersion: "99", ownerReferences: [] } };
    expect(f.handlers.onUpdate(REPLICASETS, { ...rs, metadata: { ...rs.metadata, resourceVersion: "1" } }, released).sort()).toEqual(
      [f.key(REPLICASETS, "web-1"), f.key(DEPLOYMENTS, "web")].sort(),
    );
    expect(f.handlers.onUpdate(REPLICASETS, released, released)).toEqual([]);
  });
});
