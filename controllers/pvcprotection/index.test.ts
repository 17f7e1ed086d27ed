// PVC protection: one reconcile against a FakeClient and preloaded listers.

import { describe, expect, it } from "vitest";
import type { PersistentVolumeClaim, Pod } from "../../api/index.ts";
import { newLogger } from "../../client/log.ts";
import { fakeLister, FakeClient } from "../../client/testing.ts";
import type { ReconcileContext } from "../../client/types.ts";
import { PVCProtectionController } from "./index.ts";

const NS = "default";
const ctx = (): ReconcileContext => ({ signal: new AbortController().signal, log: newLogger("test"), reconcileID: "test" });
const FIN = "kubernetes.io/pvc-protection";

function claim(opts: { deleting?: boolean; finalizers?: string[] } = {}): PersistentVolumeClaim {
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name: "data", namespace: NS, uid: "c1", finalizers: opts.finalizers ?? [FIN], ...(opts.deleting ? { deletionTimestamp: "2024-01-01T00:00:00Z" } : {}) },
    spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
  };
}

function pod(name: string, opts: { node?: string; phase?: "Running" | "Succeeded" | "Pending" } = {}): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: NS, uid: `u-${name}` },
    spec: { ...(opts.node === "" ? {} : { nodeName: opts.node ?? "n1" }), containers: [{ name: "c", image: "busybox" }], volumes: [{ name: "d", persistentVolumeClaim: { claimName: "data" } }] },
    status: { phase: opts.phase ?? "Running" },
  };
}

async function sync(c: PersistentVolumeClaim, pods: Pod[]) {
  const client = new FakeClient([c, ...pods]);
  const ctrl = new PVCProtectionController({ client, claims: fakeLister([c]), pods: fakeLister(pods) });
  await ctrl.reconcile(ctx(), `${NS}/data`);
  return client;
}

describe("PVCProtectionController", () => {
  it("keeps the finalizer of a claim being deleted while a running pod uses it", async () => {
    const client = await sync(claim({ deleting: true }), [pod("app")]);
    expect(client.writeActions()).toEqual([]);
  });

  it("removes the finalizer once only finished or unscheduled pods refer to the claim", async () => {
    const client = await sync(claim({ deleting: true }), [pod("done", { phase: "Succeeded" }), pod("pending", { node: "", phase: "Pending" })]);
    const writes = client.writeActions();
    expect(writes.map((a) => `${a.verb} ${a.resource}`)).toEqual(["update persistentvolumeclaims"]);
    expect(writes[0]!.object?.metadata.finalizers).toEqual([]);
  });

  it("adds the finalizer to a live claim that lacks it, and leaves others' finalizers alone", async () => {
    const client = await sync(claim({ finalizers: ["example.com/keep"] }), []);
    expect(client.writeActions()[0]!.object?.metadata.finalizers).toEqual(["example.com/keep", FIN]);
  });
});
