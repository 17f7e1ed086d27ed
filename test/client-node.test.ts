// @kubernetes/client-node 1.4 against kubelab: typed CoreV1Api calls and a list+watch informer.

import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startKubelab, type Kubelab } from "./harness/kubelab.ts";

let k: Kubelab;
let kc: k8s.KubeConfig;
let api: k8s.CoreV1Api;

beforeAll(async () => {
  k = await startKubelab();
  kc = new k8s.KubeConfig();
  kc.loadFromFile(k.kubeconfig);
  api = kc.makeApiClient(k8s.CoreV1Api);
});

afterAll(async () => {
  await k?.stop({ clean: true });
});

async function until(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("client-node", () => {
  it("an informer lists and then sees add, update and delete", async () => {
    const pre = await api.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name: "pre" }, data: { a: "1" } } });
    expect(pre.metadata?.resourceVersion).toMatch(/^\d+$/);

    const informer = k8s.makeInformer<k8s.V1ConfigMap>(kc, "/api/v1/namespaces/default/configmaps", () => api.listNamespacedConfigMap({ namespace: "default" }));
    const events: { type: string; name: string; data?: Record<string, string>; rv?: string }[] = [];
    const errors: unknown[] = [];
    const record = (type: string) => (o: k8s.V1ConfigMap) => {
      events.push({ type, name: o.metadata?.name ?? "", ...(o.data ? { data: o.data } : {}), ...(o.metadata?.resourceVersion ? { rv: o.metadata.resourceVersion } : {}) });
    };
    informer.on(k8s.ADD, record("add"));
    informer.on(k8s.UPDATE, record("update"));
    informer.on(k8s.DELETE, record("delete"));
    informer.on(k8s.ERROR, (e: unknown) => errors.push(e));
    await informer.start();
    try {
      // The initial list.
      await until(() => events.some((e) => e.type === "add" && e.name === "pre"), "the listed object");
      expect(informer.list("default").map((o) => o.metadata?.name)).toContain("pre");

      const created = await api.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name: "live" }, data: { v: "1" } } });
      await until(() => events.some((e) => e.type === "add" && e.name === "live"), "add of live");

      created.data = { v: "2" };
      const updated = await api.replaceNamespacedConfigMap({ name: "live", namespace: "default", body: created });
      expect(updated.data).toEqual({ v: "2" });
      await until(() => events.some((e) => e.type === "update" && e.name === "live" && e.data?.v === "2"), "update of live");
      expect(informer.get("live", "default")?.data).toEqual({ v: "2" });
      expect(informer.get("live", "default")?.metadata?.resourceVersion).toBe(updated.metadata?.resourceVersion);

      await api.deleteNamespacedConfigMap({ name: "live", namespace: "default" });
      await until(() => events.some((e) => e.type === "delete" && e.name === "live"), "delete of live");
      expect(informer.get("live", "default")).toBeUndefined();

      expect(events.filter((e) => e.name === "live").map((e) => e.type)).toEqual(["add", "update", "delete"]);
      expect(errors).toEqual([]);
    } finally {
      await informer.stop();
    }
  });

  it("a replace with a stale resourceVersion rejects with a 409 ApiException", async () => {
    const cm = await api.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name: "racy" }, data: { a: "1" } } });
    await api.patchNamespacedConfigMap(
      { name: "racy", namespace: "default", body: { data: { a: "2" } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    cm.data = { a: "stale" };
    const err: unknown = await api.replaceNamespacedConfigMap({ name: "racy", namespace: "default", body: cm }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(k8s.ApiException);
    const ex = err as k8s.ApiException<string>;
    expect(ex.code).toBe(409);
    const status = JSON.parse(ex.body) as k8s.V1Status;
    expect(status).toMatchObject({ kind: "Status", reason: "Conflict", code: 409 });
    expect(status.message).toContain("the object has been modified");
    expect((await api.readNamespacedConfigMap({ name: "racy", namespace: "default" })).data).toEqual({ a: "2" });
  });

  it("reading a missing object rejects with a 404 ApiException", async () => {
    const err: unknown = await api.readNamespacedConfigMap({ name: "missing", namespace: "default" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(k8s.ApiException);
    expect((err as k8s.ApiException<string>).code).toBe(404);
  });
});
