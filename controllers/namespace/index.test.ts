// Namespace controller: one synchronous reconcile against a FakeClient, assertions on its actions.

import { describe, expect, it } from "vitest";
import type { KubeObject, Namespace } from "../../api/index.ts";
import { newLogger } from "../../client/log.ts";
import { fakeLister, FakeClient, FakeClock } from "../../client/testing.ts";
import type { ReconcileContext } from "../../client/types.ts";
import { ContentRemainingRequeueMs, NamespaceController, namespaceFinalizer } from "./index.ts";

const T0 = Date.UTC(2024, 0, 1, 0, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

function ctx(): ReconcileContext {
  return { signal: new AbortController().signal, log: newLogger("test"), reconcileID: "test" };
}

function namespace(name: string, terminating: boolean): Namespace {
  return {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name, ...(terminating ? { deletionTimestamp: iso(T0) } : {}) },
    spec: { finalizers: ["kubernetes"] },
    status: { phase: terminating ? "Terminating" : "Active" },
  };
}

const configMap = (ns: string, name: string): KubeObject => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: ns }, data: { a: "b" } });
const pod = (ns: string, name: string, finalizers?: string[]): KubeObject => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: ns, ...(finalizers ? { finalizers } : {}) },
  spec: { containers: [{ name: "c", image: "busybox" }] },
});

function fixture(objects: KubeObject[]) {
  const clock = new FakeClock(T0 + 5_000);
  const client = new FakeClient(objects, { clock });
  const controller = new NamespaceController({
    client,
    namespaces: fakeLister(client.trackerList("", "namespaces") as Namespace[]),
    finalize: namespaceFinalizer(client),
    clock,
  });
  return { client, controller };
}

describe("NamespaceController", () => {
  it("deletes every object in a terminating namespace and requeues while a pod held by a finalizer remains", async () => {
    const f = fixture([namespace("team", true), configMap("team", "settings"), pod("team", "web", ["example.com/hold"]), configMap("other", "keep")]);
    const result = await f.controller.reconcile(ctx(), "team");

    const deletes = f.client.writeActions().filter((a) => a.verb === "delete");
    expect(deletes.map((a) => `${a.resource} ${a.namespace}/${a.name}`).sort()).toEqual(["configmaps team/settings", "pods team/web"]);
    for (const d of deletes) expect(d.deleteOptions).toEqual({ propagationPolicy: "Background" });
    expect(result).toEqual({ requeueAfterMs: ContentRemainingRequeueMs });
    expect(f.client.tracker("", "configmaps", "other", "keep")).toBeDefined();
    // Not finalized while content remains.
    expect(f.client.writeActions().filter((a) => a.subresource === "finalize")).toEqual([]);

    const status = f.client.writeActions().find((a) => a.resource === "namespaces" && a.subresource === "status")?.object as Namespace;
    expect(status.status?.conditions).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: "NamespaceContentRemaining", status: "True", reason: "SomeResourcesRemain", message: "Some resources are remaining: pods has 1 resource instances" }),
        expect.objectContaining({
          type: "NamespaceFinalizersRemaining",
          status: "True",
          reason: "SomeFinalizersRemain",
          message: "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances",
        }),
      ]),
    );
  });

  it("does not delete again an object already being deleted", async () => {
    const f = fixture([namespace("team", true), pod("team", "web", ["example.com/hold"])]);
    await f.controller.reconcile(ctx(), "team");
    f.client.clearActions();
    await f.controller.reconcile(ctx(), "team");
    expect(f.client.writeActions().filter((a) => a.verb === "delete")).toEqual([]);
  });

  it("removes the kubernetes finalizer of an empty terminating namespace through the finalize subresource", async () => {
    const f = fixture([namespace("team", true)]);
    expect(await f.controller.reconcile(ctx(), "team")).toEqual({});
    const finalize = f.client.writeActions().filter((a) => a.subresource === "finalize");
    expect(finalize).toHaveLength(1);
    expect(finalize[0]).toMatchObject({ verb: "patch", resource: "namespaces", name: "team", patch: { spec: { finalizers: [] } } });
    // With no finalizers left the (fake) apiserver removes the namespace.
    expect(f.client.tracker("", "namespaces", "", "team")).toBeUndefined();
  });

  it("leaves an active namespace and its content alone", async () => {
    const f = fixture([namespace("team", false), configMap("team", "settings")]);
    expect(await f.controller.reconcile(ctx(), "team")).toEqual({});
    expect(f.client.actions).toEqual([]);
  });
});
