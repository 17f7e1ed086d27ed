import { describe, expect, it } from "vitest";
import type { Pod } from "../api/index.ts";
import { isAlreadyExists, isConflict, isNotFound } from "./errors.ts";
import { FakeClient, FakeClock, FakeRecorder, fakeErrors, fakeLister } from "./testing.ts";
import { INDEX_NODE_NAME, INDEX_OWNER_UID, type WatchEvent } from "./types.ts";

const pod = (name: string, extra: Partial<Pod> = {}): Pod =>
  ({ apiVersion: "v1", kind: "Pod", metadata: { name, namespace: "default" }, spec: { containers: [{ name: "c", image: "nginx" }] }, ...extra }) as Pod;

describe("FakeClient", () => {
  it("serves seeded objects and records the get", async () => {
    const fake = new FakeClient([pod("a")]);
    const got = await fake.resource<Pod>("", "pods").get("default", "a");
    expect(got.metadata.uid).toBeTruthy();
    expect(fake.actions).toEqual([{ verb: "get", group: "", resource: "pods", namespace: "default", name: "a" }]);
    fake.clearActions();
    expect(fake.actions).toEqual([]);
  });

  it("creates with uid, resourceVersion, creationTimestamp and a generated name", async () => {
    const clock = new FakeClock(Date.UTC(2024, 4, 5, 6, 7, 8));
    const fake = new FakeClient([], { clock });
    const created = await fake.resource<Pod>("", "pods").create("default", { ...pod(""), metadata: { generateName: "web-" } });
    expect(created.metadata.name).toMatch(/^web-[a-z0-9]{5}$/);
    expect(created.metadata.namespace).toBe("default");
    expect(created.metadata.uid).toBeTruthy();
    expect(created.metadata.resourceVersion).toBeTruthy();
    expect(created.metadata.creationTimestamp).toBe("2024-05-05T06:07:08Z");
    const again = fake.resource<Pod>("", "pods").create("default", pod(created.metadata.name!));
    await expect(again).rejects.toSatisfy(isAlreadyExists);
    expect(fake.writeActions().map((a) => a.verb)).toEqual(["create", "create"]);
  });

  it("rejects an update with a stale resourceVersion as a Conflict", async () => {
    const fake = new FakeClient([pod("a")]);
    const pods = fake.resource<Pod>("", "pods");
    const v1 = await pods.get("default", "a");
    const v2 = await pods.update({ ...v1, metadata: { ...v1.metadata, labels: { x: "1" } } });
    expect(v2.metadata.resourceVersion).not.toBe(v1.metadata.resourceVersion);
    await expect(pods.update({ ...v1, metadata: { ...v1.metadata, labels: { x: "2" } } })).rejects.toSatisfy(isConflict);
    await expect(pods.get("default", "missing")).rejects.toSatisfy(isNotFound);
  });

  it("applies merge and JSON patches", async () => {
    const fake = new FakeClient([pod("a")]);
    const pods = fake.resource<Pod>("", "pods");
    await pods.patch("default", "a", "merge", { metadata: { labels: { app: "web" } } });
    const p = await pods.patch("default", "a", "json", [{ op: "add", path: "/metadata/annotations", value: { n: "1" } }]);
    expect(p.metadata.labels).toEqual({ app: "web" });
    expect(p.metadata.annotations).toEqual({ n: "1" });
    expect(fake.actions.map((a) => [a.verb, a.patchType])).toEqual([
      ["patch", "merge"],
      ["patch", "json"],
    ]);
  });

  it("lets a reactor inject an error", async () => {
    const fake = new FakeClient();
    fake.prependReactor("create", "pods", () => ({ error: fakeErrors.internal("boom") }));
    await expect(fake.resource<Pod>("", "pods").create("default", pod("a"))).rejects.toThrow(/boom/);
    expect(fake.actions).toHaveLength(1);
    expect(fake.trackerList("", "pods")).toEqual([]);
  });

  it("keeps objects with finalizers until the last finalizer is removed", async () => {
    const fake = new FakeClient([{ ...pod("a"), metadata: { name: "a", namespace: "default", finalizers: ["x"] } }]);
    const pods = fake.resource<Pod>("", "pods");
    await pods.delete("default", "a");
    const terminating = await pods.get("default", "a");
    expect(terminating.metadata.deletionTimestamp).toBeTruthy();
    await pods.update({ ...terminating, metadata: { ...terminating.metadata, finalizers: [] } });
    await expect(pods.get("default", "a")).rejects.toSatisfy(isNotFound);
  });

  it("binds and evicts pods", async () => {
    const fake = new FakeClient([pod("a")]);
    await fake.bind("default", "a", "n1");
    expect((fake.tracker("", "pods", "default", "a")?.spec as { nodeName?: string }).nodeName).toBe("n1");
    await fake.evict("default", "a");
    expect(fake.tracker("", "pods", "default", "a")).toBeUndefined();
    expect(fake.actions.map((a) => `${a.verb}:${a.subresource}`)).toEqual(["bind:binding", "evict:eviction"]);
  });

  it("streams changes to watchers and replays from a resourceVersion", async () => {
    const fake = new FakeClient();
    const pods = fake.resource<Pod>("", "pods");
    const first = await pods.create("default", pod("a"));
    const ac = new AbortController();
    const seen: WatchEvent<Pod>[] = [];
    const done = (async () => {
      for await (const ev of pods.watch("default", { resourceVersion: "0" }, ac.signal)) {
        seen.push(ev);
        if (seen.length === 2) ac.abort();
      }
    })();
    await pods.delete("default", "a");
    await pods.create("default", pod("b"));
    await done;
    expect(seen.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual(["DELETED a", "ADDED b"]);

    const replay: string[] = [];
    const ac2 = new AbortController();
    for await (const ev of pods.watch("default", { resourceVersion: first.metadata.resourceVersion }, ac2.signal)) {
      replay.push(`${ev.type} ${ev.object.metadata.name}`);
      if (replay.length === 2) ac2.abort();
    }
    expect(replay).toEqual(["DELETED a", "ADDED b"]);
  });
});

describe("fakeLister", () => {
  it("indexes by namespace, owner uid and node name", () => {
    const owned = { ...pod("a"), metadata: { name: "a", namespace: "default", ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "rs", uid: "u1", controller: true }] } };
    const lister = fakeLister<Pod>([owned as Pod, { ...pod("b"), spec: { containers: [], nodeName: "n1" } } as Pod, { ...pod("c"), metadata: { name: "c", namespace: "other" } } as Pod]);
    expect(lister.get("default/a")?.metadata.name).toBe("a");
    expect(lister.listNamespace("default").map((p) => p.metadata.name).sort()).toEqual(["a", "b"]);
    expect(lister.byIndex(INDEX_OWNER_UID, "u1").map((p) => p.metadata.name)).toEqual(["a"]);
    expect(lister.byIndex(INDEX_NODE_NAME, "n1").map((p) => p.metadata.name)).toEqual(["b"]);
    expect(() => {
      (lister.get("default/a") as Pod).metadata.name = "x";
    }).toThrow();
  });
});

describe("FakeRecorder and FakeClock", () => {
  it("records events as strings", () => {
    const r = new FakeRecorder();
    r.event(pod("a"), "Normal", "Created", "created pod a");
    expect(r.events).toEqual(["Normal Created created pod a"]);
  });

  it("fires timers in order and resolves chained sleeps on advance", async () => {
    const clock = new FakeClock(0);
    const log: string[] = [];
    void (async () => {
      await clock.sleep(100);
      log.push(`a@${clock.now()}`);
      await clock.sleep(100);
      log.push(`b@${clock.now()}`);
    })();
    clock.setTimeout(() => log.push(`t@${clock.now()}`), 150);
    await clock.advance(99);
    expect(log).toEqual([]);
    await clock.advance(200);
    expect(log).toEqual(["a@100", "t@150", "b@200"]);
    expect(clock.now()).toBe(299);
    const ac = new AbortController();
    const s = clock.sleep(1000, ac.signal);
    ac.abort();
    await s;
    expect(clock.pending()).toBe(0);
  });
});
