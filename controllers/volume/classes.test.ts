// The built-in classes and drivers: created when missing, never overwritten.

import { describe, expect, it } from "vitest";
import type { CSIDriver, StorageClass } from "../../api/index.ts";
import { newLogger } from "../../client/log.ts";
import { FakeClient } from "../../client/testing.ts";
import { ensureBuiltins } from "./classes.ts";

describe("ensureBuiltins", () => {
  it("creates the missing classes and drivers and leaves an existing one as its owner changed it", async () => {
    const edited: StorageClass = { apiVersion: "storage.k8s.io/v1", kind: "StorageClass", metadata: { name: "kubelab-zonal" }, provisioner: "zonal.csi.kubelab.io", reclaimPolicy: "Retain" };
    const client = new FakeClient([edited]);
    await ensureBuiltins({ signal: new AbortController().signal, log: newLogger("test") }, client);
    const classes = client.trackerList("storage.k8s.io", "storageclasses") as StorageClass[];
    expect(classes.find((c) => c.metadata.name === "kubelab-zonal")).toMatchObject({ reclaimPolicy: "Retain" });
    expect(classes.find((c) => c.metadata.name === "kubelab-zonal")?.metadata.annotations).toBeUndefined();
    expect(classes.find((c) => c.metadata.name === "kubelab-regional")).toMatchObject({ provisioner: "regional.csi.kubelab.io", volumeBindingMode: "Immediate", allowVolumeExpansion: true });
    const drivers = client.trackerList("storage.k8s.io", "csidrivers") as CSIDriver[];
    expect(Object.fromEntries(drivers.map((d) => [d.metadata.name, d.spec.attachRequired]))).toEqual({ "zonal.csi.kubelab.io": true, "regional.csi.kubelab.io": false });
    // Idempotent: a second start changes nothing.
    client.clearActions();
    await ensureBuiltins({ signal: new AbortController().signal, log: newLogger("test") }, client);
    expect(client.trackerList("storage.k8s.io", "storageclasses")).toHaveLength(2);
  });
});
