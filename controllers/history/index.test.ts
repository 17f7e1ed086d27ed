// ControllerRevision helpers: hashing, naming, equality, ordering, and the API operations against a FakeClient.

import { describe, expect, it } from "vitest";
import type { ControllerRevision, KubeObject } from "../../api/index.ts";
import { labelSelectorAsSelector } from "../../api/index.ts";
import { fakeLister, FakeClient } from "../../client/testing.ts";
import {
  ControllerRevisionHashLabel,
  controllerRevisionName,
  equalRevision,
  findEqualRevisions,
  hashControllerRevision,
  History,
  newControllerRevision,
  nextRevision,
  sortControllerRevisions,
} from "./index.ts";

const NS = "default";
const GVK = { apiVersion: "apps/v1", kind: "StatefulSet" };
const parent: KubeObject = { apiVersion: "apps/v1", kind: "StatefulSet", metadata: { name: "web", namespace: NS, uid: "uid-web" } };
const patch = (image: string) => ({ spec: { template: { $patch: "replace", metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "c", image }] } } } });

describe("revision hashing and naming", () => {
  it("hashes equal data to the same name whatever the key order, and different data or probes to different ones", () => {
    const a = newControllerRevision(parent, GVK, { app: "web" }, patch("nginx:1"), 1);
    const b = newControllerRevision(parent, GVK, { app: "web" }, { spec: { template: { spec: { containers: [{ image: "nginx:1", name: "c" }] }, metadata: { labels: { app: "web" } }, $patch: "replace" } } }, 2);
    expect(a.metadata.name).toBe(b.metadata.name);
    expect(a.metadata.name).toMatch(/^web-[bcdfghjklmnpqrstvwxz2456789]+$/);
    expect(a.metadata.labels).toEqual({ app: "web", [ControllerRevisionHashLabel]: a.metadata.name!.slice("web-".length) });
    expect(a.metadata.ownerReferences).toEqual([{ apiVersion: "apps/v1", kind: "StatefulSet", name: "web", uid: "uid-web", controller: true, blockOwnerDeletion: true }]);
    expect(newControllerRevision(parent, GVK, {}, patch("nginx:2"), 1).metadata.name).not.toBe(a.metadata.name);
    expect(hashControllerRevision(a, 1)).not.toBe(hashControllerRevision(a));
  });

  it("cuts long parent names so the revision name stays a valid object name", () => {
    expect(controllerRevisionName("x".repeat(300), "abc")).toBe(`${"x".repeat(223)}-abc`);
  });

  it("compares by data, sorts by revision number, and numbers the next revision", () => {
    const r1 = newControllerRevision(parent, GVK, {}, patch("nginx:1"), 3);
    const r2 = newControllerRevision(parent, GVK, {}, patch("nginx:2"), 1);
    const r3 = newControllerRevision(parent, GVK, {}, patch("nginx:1"), 2);
    expect(equalRevision(r1, r3)).toBe(true);
    expect(equalRevision(r1, r2)).toBe(false);
    expect(findEqualRevisions([r1, r2, r3], r3)).toEqual([r1, r3]);
    expect(sortControllerRevisions([r1, r2, r3]).map((r) => r.revision)).toEqual([1, 2, 3]);
    expect(nextRevision([r1, r2, r3])).toBe(4);
    expect(nextRevision([])).toBe(1);
  });
});

describe("History", () => {
  function stored(cr: ControllerRevision): ControllerRevision {
    return { ...cr, metadata: { ...cr.metadata, namespace: NS } };
  }

  it("lists revisions it controls or nobody controls, matching the selector", () => {
    const mine = stored(newControllerRevision(parent, GVK, { app: "web" }, patch("a"), 1));
    const orphan = stored({ ...newControllerRevision(parent, GVK, { app: "web" }, patch("b"), 2) });
    orphan.metadata.ownerReferences = undefined;
    const theirs = stored(newControllerRevision({ ...parent, metadata: { ...parent.metadata, uid: "other" } }, GVK, { app: "web" }, patch("c"), 1));
    const unlabeled = stored(newControllerRevision(parent, GVK, { app: "db" }, patch("d"), 1));
    const client = new FakeClient([mine, orphan, theirs, unlabeled]);
    const h = new History(client, fakeLister(client.trackerList("apps", "controllerrevisions") as ControllerRevision[]));
    const names = h.listControllerRevisions(parent, labelSelectorAsSelector({ matchLabels: { app: "web" } })).map((r) => r.metadata.name);
    expect(names.sort()).toEqual([mine.metadata.name, orphan.metadata.name].sort());
  });

  it("returns the existing revision when the name is taken by equal data, and bumps the collision count when not", async () => {
    // Controllers always hash with their collision count (0 to begin with), as createControllerRevision does.
    const rev = newControllerRevision(parent, GVK, {}, patch("a"), 1, 0);
    const client = new FakeClient([stored(rev)]);
    const h = new History(client, fakeLister<ControllerRevision>([]));
    const same = await h.createControllerRevision(parent, rev, 0);
    expect(same.collisionCount).toBe(0);
    expect(same.revision.metadata.name).toBe(rev.metadata.name);
    expect(client.trackerList("apps", "controllerrevisions")).toHaveLength(1);

    // Someone else's data under the name our revision hashes to: a collision.
    const squatter = stored({ ...rev, data: patch("other") });
    const client2 = new FakeClient([squatter]);
    const h2 = new History(client2, fakeLister<ControllerRevision>([]));
    const created = await h2.createControllerRevision(parent, rev, 0);
    expect(created.collisionCount).toBe(1);
    expect(created.revision.metadata.name).toBe(controllerRevisionName("web", hashControllerRevision(rev, 1)));
    expect(client2.trackerList("apps", "controllerrevisions")).toHaveLength(2);
  });

  it("renumbers a revision, adopts an orphan and releases it", async () => {
    const rev = stored(newControllerRevision(parent, GVK, {}, patch("a"), 1));
    rev.metadata.ownerReferences = undefined;
    const client = new FakeClient([rev]);
    const h = new History(client, fakeLister<ControllerRevision>([]));
    const cur = client.tracker("apps", "controllerrevisions", NS, rev.metadata.name!) as ControllerRevision;
    expect((await h.updateControllerRevision(cur, 5)).revision).toBe(5);
    const adopted = await h.adoptControllerRevision(parent, GVK, client.tracker("apps", "controllerrevisions", NS, rev.metadata.name!) as ControllerRevision);
    expect(adopted.metadata.ownerReferences?.[0]).toMatchObject({ kind: "StatefulSet", uid: "uid-web", controller: true });
    await expect(h.adoptControllerRevision(parent, GVK, adopted)).rejects.toThrow(/attempt to adopt revision owned by/);
    const released = await h.releaseControllerRevision(parent, adopted);
    expect(released.metadata.ownerReferences ?? []).toEqual([]);
    await h.deleteControllerRevision(released);
    expect(client.trackerList("apps", "controllerrevisions")).toEqual([]);
  });
});
