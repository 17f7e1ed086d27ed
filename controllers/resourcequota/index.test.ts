// Resource quota controller: one reconcile against a FakeClient and preloaded listers; the
// handlers' choice of which quota events and object events recompute a quota.

import { describe, expect, it } from "vitest";
import type { KubeObject, ResourceQuota } from "../../api/index.ts";
import { podEvaluator, serviceEvaluator } from "../../api/index.ts";
import { newLogger } from "../../client/log.ts";
import { fakeLister, FakeClient } from "../../client/testing.ts";
import type { ReconcileContext } from "../../client/types.ts";
import { ChargeTracker, ResourceQuotaController, ResourceQuotaHandlers, trackedResource } from "./index.ts";

const NS = "team";
const NOW = Date.UTC(2024, 0, 1);

function ctx(): ReconcileContext {
  return { signal: new AbortController().signal, log: newLogger("test"), reconcileID: "test" };
}

function quota(hard: Record<string, string>, status?: ResourceQuota["status"], spec: Partial<NonNullable<ResourceQuota["spec"]>> = {}): ResourceQuota {
  return { apiVersion: "v1", kind: "ResourceQuota", metadata: { name: "q", namespace: NS, uid: "uid-q", resourceVersion: "5" }, spec: { hard, ...spec }, ...(status ? { status } : {}) };
}

function pod(name: string, opts: { cpu?: string; phase?: string; ns?: string } = {}): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: opts.ns ?? NS, uid: `uid-${name}`, resourceVersion: "1" },
    spec: { containers: [{ name: "c", image: "busybox", ...(opts.cpu ? { resources: { requests: { cpu: opts.cpu } } } : {}) }] },
    status: { phase: opts.phase ?? "Running" },
  };
}

function setup(q: ResourceQuota, objects: { pods?: KubeObject[]; configmaps?: KubeObject[]; services?: KubeObject[] }, charges?: ChargeTracker) {
  const client = new FakeClient();
  // The lister holds what the tracker stored, so the status write's resourceVersion is current.
  const quotas = fakeLister([client.seed(q) as ResourceQuota]);
  const controller = new ResourceQuotaController({
    client,
    quotas,
    clock: { now: () => NOW },
    charges,
    resources: [
      trackedResource("", "pods", fakeLister(objects.pods ?? [])),
      trackedResource("", "configmaps", fakeLister(objects.configmaps ?? [])),
      trackedResource("", "services", fakeLister(objects.services ?? [])),
    ],
  });
  return { client, controller };
}

describe("ResourceQuotaController", () => {
  it("writes status.hard from spec.hard and status.used counted from the namespace's live objects", async () => {
    const { client, controller } = setup(quota({ pods: "3", "requests.cpu": "2", configmaps: "10", "count/pods": "10" }), {
      pods: [pod("a", { cpu: "100m" }), pod("b", { cpu: "250m" }), pod("done", { cpu: "1", phase: "Succeeded" }), pod("elsewhere", { ns: "other" })],
      configmaps: [{ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cm", namespace: NS } }],
    });
    await controller.reconcile(ctx(), `${NS}/q`);
    const writes = client.writeActions();
    expect(writes).toHaveLength(1);
    expect(writes[0]).toMatchObject({ verb: "update", resource: "resourcequotas", subresource: "status" });
    expect((writes[0].object as ResourceQuota).status).toEqual({
      hard: { configmaps: "10", "count/pods": "10", pods: "3", "requests.cpu": "2" },
      used: { configmaps: "1", "count/pods": "3", pods: "2", "requests.cpu": "350m" },
    });
  });

  it("gives back usage once an object is gone: a recount below what admission charged", async () => {
    const charged = quota({ pods: "3" }, { hard: { pods: "3" }, used: { pods: "3" } });
    const { client, controller } = setup(charged, { pods: [pod("a"), pod("b")] });
    await controller.reconcile(ctx(), `${NS}/q`);
    expect((client.writeActions()[0]?.object as ResourceQuota).status?.used).toEqual({ pods: "2" });
  });

  it("does not give a fresh charge back before its object can be in the cache, and looks again after the grace", async () => {
    const charges = new ChargeTracker();
    charges.observe(`${NS}/q`, NOW - 300);
    const charged = quota({ pods: "3", configmaps: "5" }, { hard: { pods: "3", configmaps: "5" }, used: { pods: "3", configmaps: "0" } });
    const { client, controller } = setup(charged, { pods: [pod("a"), pod("b")], configmaps: [{ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cm", namespace: NS } }] }, charges);
    const result = await controller.reconcile(ctx(), `${NS}/q`);
    expect(result).toEqual({ requeueAfterMs: 700 });
    // Increases are written at once; the decrease waits.
    expect((client.writeActions()[0]?.object as ResourceQuota).status?.used).toEqual({ configmaps: "1", pods: "3" });
  });

  it("writes nothing when the status is already right", async () => {
    const { client, controller } = setup(quota({ pods: "3" }, { hard: { pods: "3" }, used: { pods: "1" } }), { pods: [pod("a")] });
    await controller.reconcile(ctx(), `${NS}/q`);
    expect(client.writeActions()).toEqual([]);
  });

  it("counts only the pods a scoped quota covers", async () => {
    const be = pod("be");
    const burst = pod("burst", { cpu: "100m" });
    const { client, controller } = setup(quota({ pods: "5" }, undefined, { scopes: ["BestEffort"] }), { pods: [be, burst] });
    await controller.reconcile(ctx(), `${NS}/q`);
    expect((client.writeActions()[0]?.object as ResourceQuota).status?.used).toEqual({ pods: "1" });
  });

  it("does nothing for a quota that is gone", async () => {
    const client = new FakeClient();
    const controller = new ResourceQuotaController({ client, quotas: fakeLister<ResourceQuota>([]), resources: [] });
    await controller.reconcile(ctx(), `${NS}/q`);
    expect(client.actions).toEqual([]);
  });
});

describe("ResourceQuotaHandlers", () => {
  const q = quota({ pods: "3" }, { hard: { pods: "3" }, used: { pods: "1" } });
  const handlers = new ResourceQuotaHandlers(fakeLister([q]), { now: () => NOW });

  it("recomputes on a spec change or a missing status, not on admission's status-only charges", () => {
    expect(handlers.onQuotaUpdate(q, { ...q, status: { hard: { pods: "3" }, used: { pods: "2" } } })).toEqual([]);
    expect(handlers.onQuotaUpdate(q, { ...q, spec: { hard: { pods: "5" } } })).toEqual([`${NS}/q`]);
    expect(handlers.onQuotaUpdate(q, { ...q, status: undefined })).toEqual([`${NS}/q`]);
  });

  it("replenishes the namespace's quotas that count pods when a pod goes or finishes", () => {
    expect(handlers.replenish(podEvaluator, pod("a"))).toEqual([`${NS}/q`]);
    expect(handlers.replenish(podEvaluator, pod("a", { ns: "other" }))).toEqual([]);
    expect(handlers.replenish(serviceEvaluator, { metadata: { name: "s", namespace: NS } })).toEqual([]);
    const running = pod("a");
    const finished = { ...pod("a", { phase: "Succeeded" }), metadata: { ...running.metadata, resourceVersion: "2" } };
    expect(handlers.onObjectUpdate(podEvaluator, running, finished)).toEqual([`${NS}/q`]);
    const relabelled = { ...running, metadata: { ...running.metadata, resourceVersion: "3", labels: { x: "y" } } };
    expect(handlers.onObjectUpdate(podEvaluator, running, relabelled)).toEqual([]);
  });
});
