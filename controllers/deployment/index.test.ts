// Deployment controller: synchronous reconciles against a FakeClient; rollouts are simulated by
// feeding the recorded writes (held by the fake's tracker) back as the next reconcile's lister state.

import { describe, expect, it } from "vitest";
import type { Deployment, DeploymentStatus, IntOrString, Pod, PodTemplateSpec, ReplicaSet } from "../../api/index.ts";
import { newLogger } from "../../client/log.ts";
import { fakeLister, FakeClient, FakeClock, FakeRecorder } from "../../client/testing.ts";
import type { ReconcileContext, Result } from "../../client/types.ts";
import { computeHash, DeploymentController, DeploymentHandlers, RevisionHistoryAnnotation } from "./index.ts";

const NS = "default";
const T0 = Date.UTC(2024, 0, 1, 0, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

function ctx(): ReconcileContext {
  return { signal: new AbortController().signal, log: newLogger("test"), reconcileID: "test" };
}

function template(image: string): PodTemplateSpec {
  return { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "c", image }] } };
}

interface DeployOpts {
  replicas?: number;
  image?: string;
  type?: "RollingUpdate" | "Recreate";
  maxSurge?: IntOrString;
  maxUnavailable?: IntOrString;
  paused?: boolean;
  revisionHistoryLimit?: number;
  progressDeadlineSeconds?: number;
  generation?: number;
  revision?: string;
  status?: DeploymentStatus;
}

function deployment(o: DeployOpts = {}): Deployment {
  const type = o.type ?? "RollingUpdate";
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      name: "web",
      namespace: NS,
      uid: "uid-web",
      generation: o.generation ?? 1,
      creationTimestamp: iso(T0 - 86_400_000),
      ...(o.revision ? { annotations: { "deployment.kubernetes.io/revision": o.revision } } : {}),
    },
    spec: {
      replicas: o.replicas ?? 3,
      selector: { matchLabels: { app: "web" } },
      template: template(o.image ?? "v2"),
      strategy: type === "Recreate" ? { type } : { type, rollingUpdate: { maxSurge: o.maxSurge ?? "25%", maxUnavailable: o.maxUnavailable ?? "25%" } },
      revisionHistoryLimit: o.revisionHistoryLimit ?? 10,
      progressDeadlineSeconds: o.progressDeadlineSeconds ?? 600,
      paused: o.paused,
    },
    ...(o.status ? { status: o.status } : {}),
  };
}

/** A ReplicaSet as the controller would have made it for `image`, with `available` of `replicas` pods up. */
function replicaSet(d: Deployment, image: string, o: { replicas: number; available?: number; actual?: number; revision: number; ageSeconds: number; desired?: number }): ReplicaSet {
  const hash = computeHash(template(image));
  const t = template(image);
  t.metadata!.labels!["pod-template-hash"] = hash;
  const available = o.available ?? o.replicas;
  return {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    metadata: {
      name: `web-${hash}`,
      namespace: NS,
      uid: `uid-rs-${image}`,
      generation: 1,
      creationTimestamp: iso(T0 - o.ageSeconds * 1000),
      labels: { ...t.metadata!.labels },
      annotations: {
        "deployment.kubernetes.io/revision": String(o.revision),
        "deployment.kubernetes.io/desired-replicas": String(o.desired ?? d.spec!.replicas),
        "deployment.kubernetes.io/max-replicas": String((o.desired ?? d.spec!.replicas ?? 0) + 1),
      },
      ownerReferences: [{ apiVersion: "apps/v1", kind: "Deployment", name: "web", uid: "uid-web", controller: true, blockOwnerDeletion: true }],
    },
    spec: { replicas: o.replicas, selector: { matchLabels: { app: "web", "pod-template-hash": hash } }, template: t },
    status: { replicas: o.actual ?? o.replicas, readyReplicas: available, availableReplicas: available, observedGeneration: 1 },
  };
}

function podOf(rs: ReplicaSet, name: string, phase: "Running" | "Succeeded" = "Running"): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: NS,
      uid: `uid-${name}`,
      labels: { ...rs.spec!.template!.metadata!.labels },
      ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: rs.metadata.name ?? "", uid: rs.metadata.uid ?? "", controller: true }],
    },
    spec: { containers: [{ name: "c", image: "x" }], nodeName: "n1" },
    status: { phase },
  };
}

/** A FakeClient seeded with the objects, and a controller whose listers hold what the tracker holds. */
function fixture(objects: (Deployment | ReplicaSet | Pod)[], now = T0) {
  const clock = new FakeClock(now);
  const client = new FakeClient(objects, { clock });
  const recorder = new FakeRecorder();
  const controller = () =>
    new DeploymentController({
      client,
      deployments: fakeLister(client.trackerList("apps", "deployments") as Deployment[]),
      replicaSets: fakeLister(client.trackerList("apps", "replicasets") as ReplicaSet[]),
      pods: fakeLister(client.trackerList("", "pods") as Pod[]),
      recorder,
      clock,
    });
  const reconcile = async (): Promise<Result> => {
    client.clearActions();
    return controller().reconcile(ctx(), "default/web");
  };
  const rsUpdates = () => client.writeActions().filter((a) => a.resource === "replicasets" && a.verb === "update");
  const rsCreates = () => client.writeActions().filter((a) => a.resource === "replicasets" && a.verb === "create");
  const statusWrites = () => client.writeActions().filter((a) => a.resource === "deployments" && a.subresource === "status");
  const replicaSets = () => client.trackerList("apps", "replicasets") as ReplicaSet[];
  const current = () => client.tracker("apps", "deployments", NS, "web") as Deployment;
  return { client, clock, recorder, reconcile, rsUpdates, rsCreates, statusWrites, replicaSets, current };
}

describe("DeploymentController: the new ReplicaSet", () => {
  it("creates the ReplicaSet <name>-<pod-template-hash> with the hash in its labels, selector and template, at revision 1", async () => {
    const d = deployment({ replicas: 3, image: "v1" });
    const f = fixture([d]);
    await f.reconcile();
    const hash = computeHash(template("v1"));
    const creates = f.rsCreates();
    expect(creates).toHaveLength(1);
    const rs = creates[0].object as ReplicaSet;
    expect(rs.metadata.name).toBe(`web-${hash}`);
    expect(rs.metadata.labels).toEqual({ app: "web", "pod-template-hash": hash });
    expect(rs.spec?.selector).toEqual({ matchLabels: { app: "web", "pod-template-hash": hash } });
    expect(rs.spec?.template?.metadata?.labels).toEqual({ app: "web", "pod-template-hash": hash });
    expect(rs.spec?.replicas).toBe(3);
    expect(rs.metadata.annotations).toEqual({
      "deployment.kubernetes.io/revision": "1",
      "deployment.kubernetes.io/desired-replicas": "3",
      "deployment.kubernetes.io/max-replicas": "4",
    });
    expect(rs.metadata.ownerReferences).toEqual([
      { apiVersion: "apps/v1", kind: "Deployment", name: "web", uid: "uid-web", controller: true, blockOwnerDeletion: true },
    ]);
    expect(f.current().metadata.annotations?.["deployment.kubernetes.io/revision"]).toBe("1");
    expect(f.recorder.events).toContain(`Normal ScalingReplicaSet Scaled up replica set web-${hash} from 0 to 3`);
    const status = f.current().status;
    expect(status?.observedGeneration).toBe(1);
    expect(status?.conditions).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: "Progressing", status: "True", reason: "NewReplicaSetCreated" }),
        expect.objectContaining({ type: "Available", status: "False", reason: "MinimumReplicasUnavailable" }),
      ]),
    );
  });

  it("gives the same template the same hash, and a different template (or a collision count) a different one", () => {
    expect(computeHash(template("v1"))).toBe(computeHash(structuredClone(template("v1"))));
    expect(computeHash(template("v1"))).not.toBe(computeHash(template("v2")));
    expect(computeHash(template("v1"), 1)).not.toBe(computeHash(template("v1")));
    expect(computeHash(template("v1"))).toMatch(/^[bcdfghjklmnpqrstvwxz2456789]+$/);
  });

  it("on rollback to an old template (kubectl rollout undo) moves that ReplicaSet to the next revision and records the old one in revision-history", async () => {
    const d = deployment({ image: "v1", generation: 3, revision: "2" });
    const v1 = replicaSet(d, "v1", { replicas: 0, revision: 1, ageSeconds: 200 });
    const v2 = replicaSet(d, "v2", { replicas: 3, revision: 2, ageSeconds: 100 });
    const f = fixture([d, v1, v2]);
    await f.reconcile();
    const rs = f.replicaSets().find((r) => r.metadata.uid === "uid-rs-v1")!;
    expect(rs.metadata.annotations?.["deployment.kubernetes.io/revision"]).toBe("3");
    expect(rs.metadata.annotations?.[RevisionHistoryAnnotation]).toBe("1");
    expect(f.current().metadata.annotations?.["deployment.kubernetes.io/revision"]).toBe("3");
    expect(f.rsCreates()).toHaveLength(0);
  });

  it("adopts an orphaned ReplicaSet its selector matches", async () => {
    const d = deployment({ image: "v1" });
    const orphan = replicaSet(d, "v1", { replicas: 3, revision: 1, ageSeconds: 10 });
    delete orphan.metadata.ownerReferences;
    const f = fixture([d, orphan]);
    await f.reconcile();
    const patch = f.client.writeActions().find((a) => a.verb === "patch" && a.resource === "replicasets");
    expect(patch?.patch).toEqual({
      metadata: { uid: "uid-rs-v1", ownerReferences: [{ apiVersion: "apps/v1", kind: "Deployment", name: "web", uid: "uid-web", controller: true, blockOwnerDeletion: true }] },
    });
    expect(f.rsCreates()).toHaveLength(0);
  });
});

describe("DeploymentController: RollingUpdate from 3 old replicas to a new template", () => {
  const cases: { name: string; maxSurge: IntOrString; maxUnavailable: IntOrString; surge: number; unavailable: number; firstStep: [number, number] }[] = [
    { name: "maxSurge 1, maxUnavailable 0 surges one new pod before any old one goes", maxSurge: 1, maxUnavailable: 0, surge: 1, unavailable: 0, firstStep: [1, 3] },
    { name: "maxSurge 0, maxUnavailable 1 takes one old pod down before adding a new one", maxSurge: 0, maxUnavailable: 1, surge: 0, unavailable: 1, firstStep: [0, 2] },
    { name: "25%/25% rounds maxSurge up to 1 and maxUnavailable down to 0", maxSurge: "25%", maxUnavailable: "25%", surge: 1, unavailable: 0, firstStep: [1, 3] },
    { name: "50%/50% rounds maxSurge up to 2 and maxUnavailable down to 1", maxSurge: "50%", maxUnavailable: "50%", surge: 2, unavailable: 1, firstStep: [2, 2] },
    { name: "maxSurge 0 and maxUnavailable 0 would stall, so one pod may be unavailable", maxSurge: 0, maxUnavailable: 0, surge: 0, unavailable: 1, firstStep: [0, 2] },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const d = deployment({ image: "v2", generation: 2, revision: "1", maxSurge: c.maxSurge, maxUnavailable: c.maxUnavailable });
      const old = replicaSet(d, "v1", { replicas: 3, revision: 1, ageSeconds: 3600 });
      d.status = { observedGeneration: 1, replicas: 3, updatedReplicas: 3, readyReplicas: 3, availableReplicas: 3, unavailableReplicas: 0 };
      const f = fixture([d, old]);
      const sizes: [number, number][] = [];
      for (let step = 0; step < 30; step++) {
        await f.reconcile();
        const rss = f.replicaSets();
        const newRS = rss.find((r) => r.metadata.uid !== old.metadata.uid);
        const oldRS = rss.find((r) => r.metadata.uid === old.metadata.uid)!;
        sizes.push([newRS?.spec?.replicas ?? 0, oldRS.spec?.replicas ?? 0]);
        // Never more pods than replicas + maxSurge.
        expect(rss.reduce((n, r) => n + (r.spec?.replicas ?? 0), 0)).toBeLessThanOrEqual(3 + c.surge);
        // Stand-in for the ReplicaSet controller and kubelets: scale-downs are immediate, new pods
        // become available one step after they were asked for.
        for (const rs of rss) {
          const want = rs.spec?.replicas ?? 0;
          const available = Math.min(want, rs.status?.replicas ?? 0);
          f.client.seed({ ...rs, status: { replicas: want, readyReplicas: available, availableReplicas: available, observedGeneration: rs.metadata.generation } });
        }
        // Never fewer available than replicas - maxUnavailable.
        expect(f.replicaSets().reduce((n, r) => n + (r.status?.availableReplicas ?? 0), 0)).toBeGreaterThanOrEqual(3 - c.unavailable);
        const cond = f.current().status?.conditions?.find((x) => x.type === "Progressing");
        if (cond?.reason === "NewReplicaSetAvailable") break;
      }
      expect(sizes[0]).toEqual(c.firstStep);
      expect(sizes.at(-1)).toEqual([3, 0]);
      const status = f.current().status!;
      expect(status).toMatchObject({ observedGeneration: 2, replicas: 3, updatedReplicas: 3, availableReplicas: 3, unavailableReplicas: 0 });
      expect(status.conditions).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ type: "Available", status: "True", reason: "MinimumReplicasAvailable" }),
          expect.objectContaining({ type: "Progressing", status: "True", reason: "NewReplicaSetAvailable" }),
        ]),
      );
      const newRS = f.replicaSets().find((r) => r.metadata.uid !== old.metadata.uid)!;
      expect(newRS.metadata.annotations?.["deployment.kubernetes.io/revision"]).toBe("2");
    });
  }

  it("does not grow the new ReplicaSet while an old one's scale-down still has its pod (status above spec)", async () => {
    const d = deployment({ image: "v2", generation: 2, revision: "2", replicas: 4, maxSurge: 1, maxUnavailable: 1 });
    // Old scaled 4 -> 3 but its ReplicaSet controller has not removed the pod yet (status.replicas 4);
    // the new one has its one surge pod: 5 pods are up, the most replicas + maxSurge allows.
    const old = replicaSet(d, "v1", { replicas: 3, actual: 4, revision: 1, ageSeconds: 3600 });
    const cur = replicaSet(d, "v2", { replicas: 1, available: 1, revision: 2, ageSeconds: 60 });
    d.status = { observedGeneration: 2, replicas: 5, updatedReplicas: 1, readyReplicas: 5, availableReplicas: 5, unavailableReplicas: 0 };
    const f = fixture([d, old, cur]);
    await f.reconcile();
    expect(f.replicaSets().find((r) => r.metadata.uid === cur.metadata.uid)?.spec?.replicas).toBe(1);
    // Once the old pod is gone, the new ReplicaSet takes the freed slot.
    f.client.seed({ ...f.replicaSets().find((r) => r.metadata.uid === old.metadata.uid)!, status: { replicas: 3, readyReplicas: 3, availableReplicas: 3, observedGeneration: 1 } });
    await f.reconcile();
    expect(f.replicaSets().find((r) => r.metadata.uid === cur.metadata.uid)?.spec?.replicas).toBe(2);
  });

  it("scales a replicas change mid-rollout proportionally across old and new ReplicaSets", async () => {
    // 10 → 20 replicas while a rollout holds 6 old and 5 new (maxSurge 1, so 11 → 21 pods): each grows by its share of 21/11.
    const d = deployment({ replicas: 20, image: "v2", generation: 3, revision: "2", maxSurge: 1, maxUnavailable: 0 });
    d.status = { observedGeneration: 2, replicas: 11 };
    const old = replicaSet(d, "v1", { replicas: 6, revision: 1, ageSeconds: 3600, desired: 10 });
    const cur = replicaSet(d, "v2", { replicas: 5, available: 0, revision: 2, ageSeconds: 60, desired: 10 });
    const f = fixture([d, old, cur]);
    await f.reconcile();
    const byUID = Object.fromEntries(f.replicaSets().map((r) => [r.metadata.uid, r]));
    expect(byUID["uid-rs-v1"].spec?.replicas).toBe(11);
    expect(byUID["uid-rs-v2"].spec?.replicas).toBe(10);
    expect(f.rsCreates()).toHaveLength(0);
    expect(byUID["uid-rs-v1"].metadata.annotations?.["deployment.kubernetes.io/desired-replicas"]).toBe("20");
    expect(byUID["uid-rs-v2"].metadata.annotations?.["deployment.kubernetes.io/max-replicas"]).toBe("21");
  });
});

describe("DeploymentController: Recreate", () => {
  const d = deployment({ type: "Recreate", image: "v2", generation: 2, revision: "1" });
  const oldRunning = replicaSet(d, "v1", { replicas: 3, revision: 1, ageSeconds: 3600 });
  const oldScaledDown = replicaSet(d, "v1", { replicas: 0, revision: 1, ageSeconds: 3600 });
  const cases: { name: string; objects: (Deployment | ReplicaSet | Pod)[]; oldScaledTo?: number; newCreatedWith?: number }[] = [
    { name: "scales the old ReplicaSet to 0 first and creates nothing yet", objects: [d, oldRunning, podOf(oldRunning, "p1")], oldScaledTo: 0 },
    { name: "waits while pods of the old ReplicaSet are still running", objects: [d, oldScaledDown, podOf(oldScaledDown, "p1")] },
    { name: "creates the new ReplicaSet at full size once the old pods are gone", objects: [d, oldScaledDown, podOf(oldScaledDown, "p1", "Succeeded")], newCreatedWith: 3 },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const f = fixture(c.objects);
      await f.reconcile();
      expect(f.rsUpdates().map((a) => (a.object as ReplicaSet).spec?.replicas)).toEqual(c.oldScaledTo === undefined ? [] : [c.oldScaledTo]);
      expect(f.rsCreates().map((a) => (a.object as ReplicaSet).spec?.replicas)).toEqual(c.newCreatedWith === undefined ? [] : [c.newCreatedWith]);
    });
  }
});

describe("DeploymentController: paused", () => {
  it("makes no rollout progress on a new template, and marks Progressing Unknown with DeploymentPaused", async () => {
    const d = deployment({ image: "v2", paused: true, generation: 2, revision: "1" });
    const f = fixture([d, replicaSet(d, "v1", { replicas: 3, revision: 1, ageSeconds: 3600 })]);
    await f.reconcile();
    expect(f.rsCreates()).toHaveLength(0);
    expect(f.rsUpdates()).toHaveLength(0);
    const status = f.current().status!;
    expect(status.observedGeneration).toBe(2);
    expect(status.conditions).toEqual(expect.arrayContaining([expect.objectContaining({ type: "Progressing", status: "Unknown", reason: "DeploymentPaused" })]));
  });

  it("still scales when replicas change while paused", async () => {
    const d = deployment({ replicas: 5, image: "v2", paused: true, generation: 2, revision: "1" });
    const f = fixture([d, replicaSet(d, "v1", { replicas: 3, revision: 1, ageSeconds: 3600, desired: 3 })]);
    await f.reconcile();
    expect(f.rsCreates()).toHaveLength(0);
    expect(f.rsUpdates().map((a) => (a.object as ReplicaSet).spec?.replicas)).toEqual([5]);
  });
});

describe("DeploymentController: revisionHistoryLimit", () => {
  const complete: DeploymentStatus = { observedGeneration: 4, replicas: 3, updatedReplicas: 3, readyReplicas: 3, availableReplicas: 3, unavailableReplicas: 0 };
  const d = deployment({ image: "v4", generation: 4, revision: "4", revisionHistoryLimit: 1, status: complete });
  const cases: { name: string; old: ReplicaSet[]; deleted: string[] }[] = [
    {
      name: "deletes the oldest empty ReplicaSets beyond the limit",
      old: [1, 2, 3].map((r) => replicaSet(d, `v${r}`, { replicas: 0, revision: r, ageSeconds: 1000 - r })),
      deleted: [1, 2].map((r) => `web-${computeHash(template(`v${r}`))}`),
    },
    {
      name: "keeps an old ReplicaSet that still has pods even when it is beyond the limit",
      old: [replicaSet(d, "v1", { replicas: 0, actual: 1, available: 0, revision: 1, ageSeconds: 999 }), ...[2, 3].map((r) => replicaSet(d, `v${r}`, { replicas: 0, revision: r, ageSeconds: 1000 - r }))],
      deleted: [`web-${computeHash(template("v2"))}`],
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const f = fixture([d, ...c.old, replicaSet(d, "v4", { replicas: 3, revision: 4, ageSeconds: 10 })]);
      await f.reconcile();
      expect(f.client.writeActions().filter((a) => a.verb === "delete").map((a) => a.name)).toEqual(c.deleted);
    });
  }
});

describe("DeploymentController: status conditions", () => {
  // Stuck mid-rollout: maxUnavailable 0 and the one surge pod never becomes available.
  const d = deployment({ image: "v2", generation: 2, revision: "2", maxSurge: 1, maxUnavailable: 0, progressDeadlineSeconds: 600 });
  const old = replicaSet(d, "v1", { replicas: 3, revision: 1, ageSeconds: 3600 });
  const stuckNew = replicaSet(d, "v2", { replicas: 1, available: 0, revision: 2, ageSeconds: 60 });
  const progressing = { type: "Progressing", status: "True" as const, reason: "ReplicaSetUpdated", message: "x", lastUpdateTime: iso(T0), lastTransitionTime: iso(T0 - 60_000) };
  const available = { type: "Available", status: "True" as const, reason: "MinimumReplicasAvailable", message: "Deployment has minimum availability.", lastUpdateTime: iso(T0), lastTransitionTime: iso(T0) };
  const stuckStatus: DeploymentStatus = { observedGeneration: 2, replicas: 4, updatedReplicas: 1, readyReplicas: 3, availableReplicas: 3, unavailableReplicas: 1, conditions: [available, progressing] };

  const cases: { name: string; now: number; rss: ReplicaSet[]; status: DeploymentStatus; progressing?: { status: string; reason: string; lastTransitionTime?: string; lastUpdateTime?: string }; available?: string; requeueAfterMs?: number }[] = [
    {
      name: "before the deadline, without progress, writes nothing and requeues for the moment the deadline passes",
      now: T0 + 300_000,
      rss: [old, stuckNew],
      status: stuckStatus,
      requeueAfterMs: 301_000,
    },
    {
      name: "once progressDeadlineSeconds pass without progress, Progressing turns False with ProgressDeadlineExceeded",
      now: T0 + 601_000,
      rss: [old, stuckNew],
      status: stuckStatus,
      progressing: { status: "False", reason: "ProgressDeadlineExceeded" },
    },
    {
      name: "a newly available pod is progress (and lets an old one go): ReplicaSetUpdated again, keeping its lastTransitionTime",
      now: T0 + 601_000,
      rss: [old, replicaSet(d, "v2", { replicas: 1, available: 1, revision: 2, ageSeconds: 60 })],
      status: stuckStatus,
      progressing: { status: "True", reason: "ReplicaSetUpdated", lastTransitionTime: iso(T0 - 60_000), lastUpdateTime: iso(T0 + 601_000) },
    },
    {
      name: "Available turns False with MinimumReplicasUnavailable when fewer than replicas - maxUnavailable are available",
      now: T0 + 10_000,
      rss: [replicaSet(d, "v1", { replicas: 3, available: 1, revision: 1, ageSeconds: 3600 }), stuckNew],
      status: stuckStatus,
      available: "MinimumReplicasUnavailable",
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const dep = structuredClone(d);
      dep.status = c.status;
      const f = fixture([dep, ...c.rss], c.now);
      const result = await f.reconcile();
      const writes = f.statusWrites();
      if (!c.progressing && !c.available) {
        expect(writes).toHaveLength(0);
      } else {
        expect(writes).toHaveLength(1);
        const conds = (writes[0].object as Deployment).status?.conditions ?? [];
        if (c.progressing) expect(conds.find((x) => x.type === "Progressing")).toMatchObject(c.progressing);
        if (c.available) expect(conds.find((x) => x.type === "Available")).toMatchObject({ status: "False", reason: c.available });
      }
      if (c.requeueAfterMs !== undefined) expect(result.requeueAfterMs).toBe(c.requeueAfterMs);
    });
  }
});

describe("DeploymentController: writes", () => {
  it("writes status once for a finished rollout and nothing at all on the next reconcile", async () => {
    const d = deployment({ image: "v1", generation: 1, revision: "1" });
    const f = fixture([d, replicaSet(d, "v1", { replicas: 3, revision: 1, ageSeconds: 60 })]);
    await f.reconcile();
    expect(f.statusWrites()).toHaveLength(1);
    expect(f.current().status?.conditions?.find((c) => c.type === "Progressing")?.reason).toBe("NewReplicaSetAvailable");
    await f.reconcile();
    expect(f.client.writeActions()).toHaveLength(0);
  });
});

describe("DeploymentHandlers", () => {
  it("maps a ReplicaSet to its Deployment, and a deleted pod to its Recreate Deployment only", () => {
    const rolling = deployment();
    const rs = replicaSet(rolling, "v1", { replicas: 1, revision: 1, ageSeconds: 1 });
    const h = new DeploymentHandlers({ deployments: fakeLister([rolling]), replicaSets: fakeLister([rs]) });
    expect(h.replicaSetEventKeys(rs)).toEqual(["default/web"]);
    expect(h.podDeleteKeys(podOf(rs, "p"))).toEqual([]);
    const recreate = deployment({ type: "Recreate" });
    const h2 = new DeploymentHandlers({ deployments: fakeLister([recreate]), replicaSets: fakeLister([rs]) });
    expect(h2.podDeleteKeys(podOf(rs, "p"))).toEqual(["default/web"]);
  });
});
