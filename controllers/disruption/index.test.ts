// Disruption controller: one reconcile against a FakeClient and preloaded listers; assertions on the
// PodDisruptionBudget status it writes.

import { describe, expect, it } from "vitest";
import type { Deployment, Pod, PodDisruptionBudget, ReplicaSet } from "../../api/index.ts";
import { newLogger } from "../../client/log.ts";
import { fakeLister, FakeClient, FakeClock, FakeRecorder } from "../../client/testing.ts";
import type { ReconcileContext } from "../../client/types.ts";
import { DisruptionController } from "./index.ts";

const NS = "default";
const T0 = Date.UTC(2024, 0, 1, 0, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
const ctx = (): ReconcileContext => ({ signal: new AbortController().signal, log: newLogger("test"), reconcileID: "test" });

const deployment: Deployment = { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", namespace: NS, uid: "d1" }, spec: { replicas: 4, selector: { matchLabels: { app: "web" } }, template: {} } };
const rs: ReplicaSet = {
  apiVersion: "apps/v1",
  kind: "ReplicaSet",
  metadata: { name: "web-1", namespace: NS, uid: "rs1", ownerReferences: [{ apiVersion: "apps/v1", kind: "Deployment", name: "web", uid: "d1", controller: true }] },
  spec: { replicas: 4, selector: { matchLabels: { app: "web" } }, template: {} },
};

function pod(name: string, ready: boolean, opts: { deleting?: boolean; owned?: boolean } = {}): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: NS,
      uid: `uid-${name}`,
      labels: { app: "web" },
      ...(opts.deleting ? { deletionTimestamp: iso(T0) } : {}),
      ...(opts.owned === false ? {} : { ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "web-1", uid: "rs1", controller: true }] }),
    },
    spec: { containers: [{ name: "c", image: "busybox" }] },
    status: { phase: "Running", conditions: [{ type: "Ready", status: ready ? "True" : "False" }] },
  };
}

function budget(spec: NonNullable<PodDisruptionBudget["spec"]>, status?: PodDisruptionBudget["status"]): PodDisruptionBudget {
  return { apiVersion: "policy/v1", kind: "PodDisruptionBudget", metadata: { name: "pdb", namespace: NS, uid: "p1", generation: 1 }, spec: { selector: { matchLabels: { app: "web" } }, ...spec }, ...(status ? { status } : {}) };
}

async function sync(pdb: PodDisruptionBudget, pods: Pod[], now = T0) {
  const clock = new FakeClock(now);
  const client = new FakeClient([pdb, ...pods], { clock });
  const recorder = new FakeRecorder();
  const c = new DisruptionController({
    client,
    pdbs: fakeLister([pdb]),
    pods: fakeLister(pods),
    replicaSets: fakeLister([rs]),
    deployments: fakeLister([deployment]),
    statefulSets: fakeLister([]),
    recorder,
    clock,
  });
  const result = await c.reconcile(ctx(), `${NS}/pdb`);
  return { status: (client.tracker("policy", "poddisruptionbudgets", NS, "pdb") as PodDisruptionBudget).status, recorder, result };
}

describe("DisruptionController", () => {
  it("minAvailable 2 over 3 Ready pods allows one disruption (SufficientPods)", async () => {
    const { status } = await sync(budget({ minAvailable: 2 }), [pod("a", true), pod("b", true), pod("c", true)]);
    expect(status).toMatchObject({ currentHealthy: 3, desiredHealthy: 2, expectedPods: 3, disruptionsAllowed: 1, observedGeneration: 1 });
    expect(status?.conditions?.[0]).toMatchObject({ type: "DisruptionAllowed", status: "True", reason: "SufficientPods" });
  });

  it("unready and terminating pods are not healthy: none allowed (InsufficientPods)", async () => {
    const { status } = await sync(budget({ minAvailable: 2 }), [pod("a", true), pod("b", false), pod("c", true, { deleting: true })]);
    expect(status).toMatchObject({ currentHealthy: 1, desiredHealthy: 2, disruptionsAllowed: 0 });
    expect(status?.conditions?.[0]).toMatchObject({ status: "False", reason: "InsufficientPods" });
  });

  it("a percentage is taken of the Deployment's replicas, not of the pods that exist", async () => {
    const { status } = await sync(budget({ maxUnavailable: "25%" }), [pod("a", true), pod("b", true), pod("c", true)]);
    // 25% of 4 rounds up to 1: desiredHealthy 3, currentHealthy 3.
    expect(status).toMatchObject({ expectedPods: 4, desiredHealthy: 3, currentHealthy: 3, disruptionsAllowed: 0 });
  });

  it("a pod the eviction API recorded in disruptedPods counts as gone until DeletionTimeout, and the budget is requeued for then", async () => {
    const pdb = budget({ minAvailable: 2 }, { disruptedPods: { a: iso(T0) }, disruptionsAllowed: 0, currentHealthy: 2, desiredHealthy: 2, expectedPods: 3, observedGeneration: 1 });
    const soon = await sync(pdb, [pod("a", true), pod("b", true), pod("c", true)], T0 + 30_000);
    expect(soon.status).toMatchObject({ currentHealthy: 2, disruptionsAllowed: 0, disruptedPods: { a: iso(T0) } });
    expect(soon.result.requeueAfterMs).toBe(90_000);
    const late = await sync(pdb, [pod("a", true), pod("b", true), pod("c", true)], T0 + 3 * 60_000);
    expect(late.status).toMatchObject({ currentHealthy: 3, disruptionsAllowed: 1 });
    expect(late.status?.disruptedPods).toBeUndefined();
    expect(late.recorder.events).toContain("Warning NotDeleted Pod was expected by PDB default/pdb to be deleted but it wasn't");
  });

  it("a percentage over a pod without a controller: an UnmanagedPods warning, the pod left out of the expected count", async () => {
    const { status, recorder } = await sync(budget({ minAvailable: "50%" }), [pod("a", true), pod("x", true, { owned: false })]);
    expect(status).toMatchObject({ expectedPods: 4, desiredHealthy: 2, currentHealthy: 2, disruptionsAllowed: 0 });
    expect(recorder.events.some((e) => e.startsWith("Warning UnmanagedPods Pods selected by this PodDisruptionBudget"))).toBe(true);
  });

  it("a pod whose controller cannot be found fails safe: no disruption, condition SyncFailed", async () => {
    const orphan = pod("o", true);
    orphan.metadata.ownerReferences = [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "gone", uid: "gone", controller: true }];
    const { status } = await sync(budget({ maxUnavailable: 1 }, { disruptionsAllowed: 1, currentHealthy: 2, desiredHealthy: 1, expectedPods: 2 }), [pod("a", true), orphan]);
    expect(status?.disruptionsAllowed).toBe(0);
    expect(status?.conditions?.[0]).toMatchObject({ type: "DisruptionAllowed", status: "False", reason: "SyncFailed", message: 'found no controllers for pod "o"' });
  });
});
