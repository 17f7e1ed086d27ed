// StatefulSet controller: reconciles against a FakeClient (listers refreshed from its tracker before
// each one, as an informer would be), assertions on the recorded actions.

import { describe, expect, it } from "vitest";
import type { ControllerRevision, KubeObject, PersistentVolumeClaim, Pod, StatefulSet } from "../../api/index.ts";
import { newLogger } from "../../client/log.ts";
import { fakeLister, FakeClient, FakeClock, FakeRecorder, type Action } from "../../client/testing.ts";
import type { ReconcileContext } from "../../client/types.ts";
import { ControllerRevisionHashLabel } from "../history/index.ts";
import { StatefulSetController, StatefulSetPodHandlers } from "./index.ts";
import { revisionPatch } from "./util.ts";

const NS = "default";
const T0 = Date.UTC(2024, 0, 1, 0, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

function ctx(): ReconcileContext {
  return { signal: new AbortController().signal, log: newLogger("test"), reconcileID: "test" };
}

function statefulSet(replicas: number, opts: Partial<NonNullable<StatefulSet["spec"]>> & { image?: string } = {}): StatefulSet {
  const { image, ...spec } = opts;
  return {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: { name: "web", namespace: NS, uid: "uid-web", generation: 1, resourceVersion: "1", creationTimestamp: iso(T0) },
    spec: {
      replicas,
      serviceName: "nginx",
      selector: { matchLabels: { app: "web" } },
      template: { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "c", image: image ?? "nginx:1" }], restartPolicy: "Always" } },
      podManagementPolicy: "OrderedReady",
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { partition: 0, maxUnavailable: 1 } },
      revisionHistoryLimit: 10,
      persistentVolumeClaimRetentionPolicy: { whenDeleted: "Retain", whenScaled: "Retain" },
      ...spec,
    },
    status: { replicas: 0, availableReplicas: 0 },
  };
}

const claimTemplate: PersistentVolumeClaim = {
  apiVersion: "v1",
  kind: "PersistentVolumeClaim",
  metadata: { name: "data" },
  spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
};

function fixture(objects: KubeObject[]) {
  const clock = new FakeClock(T0 + 3600_000);
  const client = new FakeClient(objects, { clock });
  const recorder = new FakeRecorder();
  const sync = async () => {
    const controller = new StatefulSetController({
      client,
      sets: fakeLister(client.trackerList("apps", "statefulsets") as StatefulSet[]),
      pods: fakeLister(client.trackerList("", "pods") as Pod[]),
      revisions: fakeLister(client.trackerList("apps", "controllerrevisions") as ControllerRevision[]),
      claims: fakeLister(client.trackerList("", "persistentvolumeclaims") as PersistentVolumeClaim[]),
      recorder,
      clock,
    });
    client.clearActions();
    return controller.reconcile(ctx(), `${NS}/web`);
  };
  /** What the kubelet would report: the pod Running, Ready (since T0) or not. */
  const setPhase = async (name: string, ready: boolean, phase: "Running" | "Pending" | "Failed" = "Running") => {
    const pods = client.resource<Pod>("", "pods");
    const pod = await pods.get(NS, name);
    pod.status = { phase, conditions: [{ type: "Ready", status: ready ? "True" : "False", lastTransitionTime: iso(T0) }] };
    await pods.updateStatus(pod);
  };
  const set = () => client.tracker("apps", "statefulsets", NS, "web") as StatefulSet;
  const updateSet = async (f: (s: StatefulSet) => void) => {
    const s = set();
    f(s);
    await client.resource<StatefulSet>("apps", "statefulsets").update(s);
  };
  const podNames = () => (client.trackerList("", "pods") as Pod[]).map((p) => p.metadata.name).sort();
  return { client, recorder, sync, setPhase, set, updateSet, podNames };
}

const writes = (client: FakeClient, verb: Action["verb"], resource: string) => client.writeActions().filter((a) => a.verb === verb && a.resource === resource);

async function upAndReady(f: ReturnType<typeof fixture>, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await f.sync();
    await f.setPhase(`web-${i}`, true);
  }
  await f.sync();
}

describe("StatefulSetController: OrderedReady", () => {
  it("creates web-0 only, with its stable identity, and records the first revision", async () => {
    const f = fixture([statefulSet(3)]);
    await f.sync();
    const creates = writes(f.client, "create", "pods");
    expect(creates.map((a) => a.object?.metadata.name)).toEqual(["web-0"]);
    const pod = creates[0]!.object as Pod;
    const revs = f.client.trackerList("apps", "controllerrevisions") as ControllerRevision[];
    expect(revs).toHaveLength(1);
    expect(revs[0]!.revision).toBe(1);
    expect(revs[0]!.data).toEqual(revisionPatch(statefulSet(3)));
    expect(revs[0]!.metadata.labels?.[ControllerRevisionHashLabel]).toBe(revs[0]!.metadata.name!.slice("web-".length));
    expect(pod.metadata.labels).toEqual({
      app: "web",
      "statefulset.kubernetes.io/pod-name": "web-0",
      "apps.kubernetes.io/pod-index": "0",
      "controller-revision-hash": revs[0]!.metadata.name,
    });
    expect(pod.spec?.hostname).toBe("web-0");
    expect(pod.spec?.subdomain).toBe("nginx");
    expect(pod.metadata.ownerReferences).toEqual([{ apiVersion: "apps/v1", kind: "StatefulSet", name: "web", uid: "uid-web", controller: true, blockOwnerDeletion: true }]);
    expect(f.recorder.events).toContain("Normal SuccessfulCreate create Pod web-0 in StatefulSet web successful");
    expect(f.set().status).toMatchObject({ observedGeneration: 1, currentRevision: revs[0]!.metadata.name, updateRevision: revs[0]!.metadata.name, collisionCount: 0 });
  });

  it("waits for web-0 to be Running and Ready before creating web-1", async () => {
    const f = fixture([statefulSet(3)]);
    await f.sync();
    await f.setPhase("web-0", false);
    await f.sync();
    expect(writes(f.client, "create", "pods")).toEqual([]);
    await f.setPhase("web-0", true);
    await f.sync();
    expect(writes(f.client, "create", "pods").map((a) => a.object?.metadata.name)).toEqual(["web-1"]);
    expect(f.set().status).toMatchObject({ replicas: 1, readyReplicas: 1, availableReplicas: 1 });
  });

  it("scales down from the highest ordinal, one pod per healthy round", async () => {
    const f = fixture([statefulSet(3)]);
    await upAndReady(f, 3);
    expect(f.set().status).toMatchObject({ replicas: 3, readyReplicas: 3, currentReplicas: 3, updatedReplicas: 3 });
    await f.updateSet((s) => (s.spec!.replicas = 1));
    await f.sync();
    expect(writes(f.client, "delete", "pods").map((a) => a.name)).toEqual(["web-2"]);
    expect(f.podNames()).toEqual(["web-0", "web-1"]);
    await f.sync();
    expect(writes(f.client, "delete", "pods").map((a) => a.name)).toEqual(["web-1"]);
  });

  it("does not scale down past a pod that is not Ready", async () => {
    const f = fixture([statefulSet(3)]);
    await upAndReady(f, 3);
    await f.setPhase("web-0", false);
    await f.updateSet((s) => (s.spec!.replicas = 1));
    await f.sync();
    expect(writes(f.client, "delete", "pods")).toEqual([]);
  });

  it("recreates a failed pod under the same name", async () => {
    const f = fixture([statefulSet(1)]);
    await upAndReady(f, 1);
    await f.setPhase("web-0", false, "Failed");
    await f.sync();
    expect(writes(f.client, "delete", "pods").map((a) => a.name)).toEqual(["web-0"]);
    expect(writes(f.client, "create", "pods").map((a) => a.object?.metadata.name)).toEqual(["web-0"]);
    expect(f.recorder.events).toContain("Warning RecreatingFailedPod StatefulSet default/web is recreating failed Pod web-0");
  });
});

describe("StatefulSetController: Parallel", () => {
  it("creates every missing pod at once and deletes every condemned pod at once", async () => {
    const f = fixture([statefulSet(3, { podManagementPolicy: "Parallel" })]);
    await f.sync();
    expect(writes(f.client, "create", "pods").map((a) => a.object?.metadata.name).sort()).toEqual(["web-0", "web-1", "web-2"]);
    await f.updateSet((s) => (s.spec!.replicas = 0));
    await f.sync();
    expect(writes(f.client, "delete", "pods").map((a) => a.name).sort()).toEqual(["web-0", "web-1", "web-2"]);
  });
});

describe("StatefulSetController: volumeClaimTemplates", () => {
  it("creates data-web-0 before web-0 and mounts it as the volume 'data'", async () => {
    const f = fixture([statefulSet(1, { volumeClaimTemplates: [claimTemplate] })]);
    await f.sync();
    const order = f.client.writeActions().filter((a) => a.verb === "create").map((a) => `${a.resource}/${a.object?.metadata.name}`);
    expect(order.slice(1)).toEqual(["persistentvolumeclaims/data-web-0", "pods/web-0"]);
    const claim = f.client.tracker("", "persistentvolumeclaims", NS, "data-web-0") as PersistentVolumeClaim;
    expect(claim.metadata.labels).toEqual({ app: "web" });
    expect(claim.metadata.ownerReferences).toBeUndefined(); // Retain/Retain
    const pod = f.client.tracker("", "pods", NS, "web-0") as Pod;
    expect(pod.spec?.volumes).toEqual([{ name: "data", persistentVolumeClaim: { claimName: "data-web-0" } }]);
    expect(f.recorder.events).toContain("Normal SuccessfulCreate create Claim data-web-0 Pod web-0 in StatefulSet web success");
  });

  it("whenDeleted Delete: the set owns every claim, so deleting the set deletes them", async () => {
    const f = fixture([statefulSet(1, { volumeClaimTemplates: [claimTemplate], persistentVolumeClaimRetentionPolicy: { whenDeleted: "Delete", whenScaled: "Retain" } })]);
    await f.sync();
    const claim = f.client.tracker("", "persistentvolumeclaims", NS, "data-web-0") as PersistentVolumeClaim;
    expect(claim.metadata.ownerReferences).toEqual([{ apiVersion: "apps/v1", kind: "StatefulSet", name: "web", uid: "uid-web", controller: true, blockOwnerDeletion: true }]);
  });

  it("whenScaled Delete: a condemned pod's claim gets the pod as owner before the pod is deleted; Retain leaves it unowned", async () => {
    for (const whenScaled of ["Delete", "Retain"] as const) {
      const f = fixture([statefulSet(2, { volumeClaimTemplates: [claimTemplate], persistentVolumeClaimRetentionPolicy: { whenDeleted: "Retain", whenScaled } })]);
      await upAndReady(f, 2);
      await f.updateSet((s) => (s.spec!.replicas = 1));
      const pod1 = f.client.tracker("", "pods", NS, "web-1") as Pod;
      await f.sync();
      const claim = f.client.tracker("", "persistentvolumeclaims", NS, "data-web-1") as PersistentVolumeClaim;
      if (whenScaled === "Delete") {
        expect(claim.metadata.ownerReferences).toEqual([{ apiVersion: "v1", kind: "Pod", name: "web-1", uid: pod1.metadata.uid, controller: true, blockOwnerDeletion: true }]);
      } else {
        expect(claim.metadata.ownerReferences).toBeUndefined();
      }
      expect(writes(f.client, "delete", "pods").map((a) => a.name)).toEqual(["web-1"]);
      expect(writes(f.client, "delete", "persistentvolumeclaims")).toEqual([]); // deleting it is the garbage collector's job
    }
  });
});

describe("StatefulSetController: updates", () => {
  it("RollingUpdate with partition 2 replaces only web-2, and reports the rollout in status", async () => {
    const f = fixture([statefulSet(3)]);
    await upAndReady(f, 3);
    const rev1 = f.set().status?.currentRevision;
    await f.updateSet((s) => {
      s.spec!.template.spec!.containers[0]!.image = "nginx:2";
      s.spec!.updateStrategy = { type: "RollingUpdate", rollingUpdate: { partition: 2, maxUnavailable: 1 } };
    });
    await f.sync();
    expect(writes(f.client, "delete", "pods").map((a) => a.name)).toEqual(["web-2"]);
    const rev2 = f.set().status?.updateRevision;
    expect(rev2).not.toBe(rev1);
    await f.sync(); // web-2 is gone from the cache: recreated at the update revision
    const web2 = f.client.tracker("", "pods", NS, "web-2") as Pod;
    expect(web2.metadata.labels?.["controller-revision-hash"]).toBe(rev2);
    expect(web2.spec?.containers[0]?.image).toBe("nginx:2");
    await f.setPhase("web-2", true);
    await f.sync();
    expect(writes(f.client, "delete", "pods")).toEqual([]);
    expect(f.set().status).toMatchObject({ replicas: 3, updatedReplicas: 1, currentReplicas: 2, currentRevision: rev1, updateRevision: rev2 });
    for (const n of ["web-0", "web-1"]) expect((f.client.tracker("", "pods", NS, n) as Pod).spec?.containers[0]?.image).toBe("nginx:1");
  });

  it("with partition 0 walks down from the highest ordinal, one unavailable pod at a time, then completes", async () => {
    const f = fixture([statefulSet(2)]);
    await upAndReady(f, 2);
    await f.updateSet((s) => (s.spec!.template.spec!.containers[0]!.image = "nginx:2"));
    await f.sync();
    expect(writes(f.client, "delete", "pods").map((a) => a.name)).toEqual(["web-1"]);
    await f.sync(); // recreate web-1
    await f.setPhase("web-1", false, "Pending");
    await f.sync(); // web-1 not ready yet: nothing else is touched
    expect(writes(f.client, "delete", "pods")).toEqual([]);
    await f.setPhase("web-1", true);
    await f.sync();
    expect(writes(f.client, "delete", "pods").map((a) => a.name)).toEqual(["web-0"]);
    await f.sync();
    await f.setPhase("web-0", true);
    await f.sync();
    const st = f.set().status!;
    expect(st.currentRevision).toBe(st.updateRevision);
    expect(st).toMatchObject({ replicas: 2, readyReplicas: 2, currentReplicas: 2, updatedReplicas: 2 });
  });

  it("maxUnavailable 2 takes two pods down at once", async () => {
    const f = fixture([statefulSet(3)]);
    await upAndReady(f, 3);
    await f.updateSet((s) => {
      s.spec!.template.spec!.containers[0]!.image = "nginx:2";
      s.spec!.updateStrategy = { type: "RollingUpdate", rollingUpdate: { partition: 0, maxUnavailable: 2 } };
    });
    await f.sync();
    expect(writes(f.client, "delete", "pods").map((a) => a.name)).toEqual(["web-2", "web-1"]);
  });

  it("OnDelete leaves old pods alone and recreates a deleted one at the update revision", async () => {
    const f = fixture([statefulSet(2, { updateStrategy: { type: "OnDelete" } })]);
    await upAndReady(f, 2);
    await f.updateSet((s) => (s.spec!.template.spec!.containers[0]!.image = "nginx:2"));
    await f.sync();
    expect(writes(f.client, "delete", "pods")).toEqual([]);
    await f.client.resource("", "pods").delete(NS, "web-0");
    await f.sync();
    expect((f.client.tracker("", "pods", NS, "web-0") as Pod).spec?.containers[0]?.image).toBe("nginx:2");
    expect((f.client.tracker("", "pods", NS, "web-1") as Pod).spec?.containers[0]?.image).toBe("nginx:1");
  });

  it("a template equal to an older revision renumbers that revision instead of creating one (rollback)", async () => {
    const f = fixture([statefulSet(1)]);
    await upAndReady(f, 1);
    await f.updateSet((s) => (s.spec!.template.spec!.containers[0]!.image = "nginx:2"));
    await f.sync();
    await f.updateSet((s) => (s.spec!.template.spec!.containers[0]!.image = "nginx:1"));
    await f.sync();
    const revs = (f.client.trackerList("apps", "controllerrevisions") as ControllerRevision[]).sort((a, b) => a.revision - b.revision);
    expect(revs).toHaveLength(2);
    expect(revs.map((r) => (r.data as { spec: { template: { spec: { containers: { image: string }[] } } } }).spec.template.spec.containers[0]!.image)).toEqual(["nginx:2", "nginx:1"]);
    expect(revs.map((r) => r.revision)).toEqual([2, 3]);
    expect(f.set().status?.updateRevision).toBe(revs[1]!.metadata.name);
  });

  it("trims history to revisionHistoryLimit, keeping the live revisions", async () => {
    const f = fixture([statefulSet(1, { revisionHistoryLimit: 1, updateStrategy: { type: "OnDelete" } })]);
    await upAndReady(f, 1);
    for (const image of ["nginx:2", "nginx:3", "nginx:4"]) {
      await f.updateSet((s) => (s.spec!.template.spec!.containers[0]!.image = image));
      await f.sync();
    }
    await f.sync();
    // Live: nginx:1 (current, and web-0 wears it) and nginx:4 (update); one historic kept: nginx:3.
    const images = (f.client.trackerList("apps", "controllerrevisions") as ControllerRevision[]).map(
      (r) => (r.data as { spec: { template: { spec: { containers: { image: string }[] } } } }).spec.template.spec.containers[0]!.image,
    );
    expect(images.sort()).toEqual(["nginx:1", "nginx:3", "nginx:4"]);
  });
});

describe("StatefulSetPodHandlers", () => {
  it("maps a pod to its owning set, and an orphan to the sets selecting it", () => {
    const set = statefulSet(1);
    const h = new StatefulSetPodHandlers({ sets: fakeLister([set]) });
    const owned: Pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "web-0", namespace: NS, labels: { app: "web" }, ownerReferences: [{ apiVersion: "apps/v1", kind: "StatefulSet", name: "web", uid: "uid-web", controller: true }] },
    };
    expect(h.onPodAdd(owned)).toEqual(["default/web"]);
    expect(h.onPodDelete(owned)).toEqual(["default/web"]);
    expect(h.onPodAdd({ ...owned, metadata: { ...owned.metadata, ownerReferences: undefined } })).toEqual(["default/web"]);
    expect(h.onPodAdd({ ...owned, metadata: { ...owned.metadata, ownerReferences: undefined, labels: { app: "db" } } })).toEqual([]);
  });
});
