// PV protection: one reconcile against a FakeClient and a preloaded lister.

import { describe, expect, it } from "vitest";
import type { PersistentVolume } from "../../api/index.ts";
import { newLogger } from "../../client/log.ts";
import { fakeLister, FakeClient } from "../../client/testing.ts";
import type { ReconcileContext } from "../../client/types.ts";
import { PVProtectionController } from "./index.ts";

const ctx = (): ReconcileContext => ({ signal: new AbortController().signal, log: newLogger("test"), reconcileID: "test" });

function pv(phase: "Bound" | "Released" | "Available", deleting: boolean, finalizers = ["kubernetes.io/pv-protection"]): PersistentVolume {
  return {
    apiVersion: "v1",
    kind: "PersistentVolume",
    metadata: { name: "pv1", uid: "v1", finalizers, ...(deleting ? { deletionTimestamp: "2024-01-01T00:00:00Z" } : {}) },
    spec: { capacity: { storage: "1Gi" }, accessModes: ["ReadWriteOnce"], csi: { driver: "regional.csi.kubelab.io", volumeHandle: "fs-1" } },
    status: { phase },
  };
}

async function sync(v: PersistentVolume) {
  const client = new FakeClient([v]);
  await new PVProtectionController({ client, volumes: fakeLister([v]) }).reconcile(ctx(), "pv1");
  return client;
}

describe("PVProtectionController", () => {
  it("keeps a Bound volume being deleted", async () => {
    expect((await sync(pv("Bound", true))).writeActions()).toEqual([]);
  });

  it("lets a Released or Available volume being deleted go", async () => {
    for (const phase of ["Released", "Available"] as const) {
      const writes = (await sync(pv(phase, true))).writeActions();
      expect(writes.map((a) => a.verb)).toEqual(["update"]);
      expect(writes[0]!.object?.metadata.finalizers).toEqual([]);
    }
  });

  it("adds the finalizer to a live volume without it", async () => {
    const writes = (await sync(pv("Available", false, []))).writeActions();
    expect(writes[0]!.object?.metadata.finalizers).toEqual(["kubernetes.io/pv-protection"]);
  });
});
