// The storage admission plugins and the PV/PVC/VolumeAttachment/CSIDriver strategies through the
// registry's stores on an in-memory backend: default class, protection finalizers, resize rules,
// initial phases, immutable specs — with upstream's messages.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { CSIDriver, KubeObject, PersistentVolume, PersistentVolumeClaim, StorageClass } from "../../api/index.ts";
import { openBackend, type Backend } from "../storage/index.ts";
import { Registry } from "../registry/registry.ts";
import { ApiError } from "../errors.ts";

const NS = "team";
let backend: Backend;
let registry: Registry;

beforeEach(async () => {
  backend = await openBackend("memory://");
  registry = new Registry(backend);
  await registry.start();
  await registry.store("", "namespaces").create("", { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } });
});

afterEach(async () => {
  registry.stop();
  await backend.close?.();
});

async function rejection(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error("expected the request to be refused");
}

async function settle(): Promise<void> {
  await registry.cache.waitUntilFresh(await backend.currentRevision());
}

async function storageClass(name: string, extra: Partial<StorageClass> = {}, isDefault = false): Promise<void> {
  await registry.store("storage.k8s.io", "storageclasses").create("", {
    apiVersion: "storage.k8s.io/v1",
    kind: "StorageClass",
    metadata: { name, ...(isDefault ? { annotations: { "storageclass.kubernetes.io/is-default-class": "true" } } : {}) },
    provisioner: "zonal.csi.kubelab.io",
    ...extra,
  } as KubeObject);
  await settle();
}

function claim(name: string, spec: Record<string, unknown> = {}): KubeObject {
  return { apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: { name }, spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } }, ...spec } };
}

const pvcs = () => registry.store("", "persistentvolumeclaims");

describe("DefaultStorageClass", () => {
  it("gives a claim without a class the default one, the newest of several, and leaves an explicit empty class alone", async () => {
    const none = (await pvcs().create(NS, claim("before"))) as PersistentVolumeClaim;
    expect(none.spec?.storageClassName).toBeUndefined();
    await storageClass("plain");
    await storageClass("old-default", {}, true);
    await new Promise((r) => setTimeout(r, 1100)); // creationTimestamps have second resolution
    await storageClass("new-default", {}, true);
    const c = (await pvcs().create(NS, claim("a"))) as PersistentVolumeClaim;
    expect(c.spec?.storageClassName).toBe("new-default");
    const empty = (await pvcs().create(NS, claim("b", { storageClassName: "" }))) as PersistentVolumeClaim;
    expect(empty.spec?.storageClassName).toBe("");
    const named = (await pvcs().create(NS, claim("c", { storageClassName: "plain" }))) as PersistentVolumeClaim;
    expect(named.spec?.storageClassName).toBe("plain");
  });
});

describe("StorageObjectInUseProtection and the PV/PVC strategies", () => {
  it("adds the protection finalizers and starts volumes and claims Pending", async () => {
    const c = (await pvcs().create(NS, claim("a"))) as PersistentVolumeClaim;
    expect(c.metadata.finalizers).toEqual(["kubernetes.io/pvc-protection"]);
    expect(c.status?.phase).toBe("Pending");
    const pv = (await registry.store("", "persistentvolumes").create("", {
      apiVersion: "v1",
      kind: "PersistentVolume",
      metadata: { name: "pv1" },
      spec: { capacity: { storage: "1Gi" }, accessModes: ["ReadWriteOnce"], csi: { driver: "regional.csi.kubelab.io", volumeHandle: "fs-1" } },
      status: { phase: "Bound" },
    } as KubeObject)) as PersistentVolume;
    expect(pv.metadata.finalizers).toEqual(["kubernetes.io/pv-protection"]);
    expect(pv.status?.phase).toBe("Pending");
    expect(pv.status?.lastPhaseTransitionTime).toBeTruthy();
  });

  it("a delete of a protected claim only marks it; removing the finalizer removes it", async () => {
    await pvcs().create(NS, claim("a"));
    await pvcs().delete(NS, "a", {});
    const marked = (await pvcs().get(NS, "a")) as PersistentVolumeClaim;
    expect(marked.metadata.deletionTimestamp).toBeTruthy();
    await pvcs().update(NS, "a", (cur) => ({ ...cur!, metadata: { ...cur!.metadata, finalizers: [] } }));
    await expect(pvcs().get(NS, "a")).rejects.toMatchObject({ code: 404 });
  });
});

describe("PersistentVolumeClaimResize and claim immutability", () => {
  async function boundClaim(name: string, cls: string): Promise<void> {
    await pvcs().create(NS, claim(name, { storageClassName: cls }));
    await pvcs().update(NS, name, (cur) => ({ ...cur!, status: { phase: "Bound", capacity: { storage: "1Gi" } } }), { subresource: "status" });
  }
  const grow = (name: string, size: string) =>
    pvcs().update(NS, name, (cur) => {
      const c = structuredClone(cur!) as PersistentVolumeClaim;
      c.spec!.resources = { requests: { storage: size } };
      return c;
    });

  it("lets a bound claim of an expandable class grow, refuses other classes and shrinking", async () => {
    await storageClass("grows", { allowVolumeExpansion: true });
    await storageClass("fixed");
    await boundClaim("a", "grows");
    await boundClaim("b", "fixed");
    const grown = (await grow("a", "2Gi")) as { obj: PersistentVolumeClaim };
    expect(grown.obj.spec?.resources?.requests?.storage).toBe("2Gi");
    const e = await rejection(grow("b", "2Gi"));
    expect(e.message).toBe('persistentvolumeclaims "b" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize');
    await pvcs().update(NS, "a", (cur) => ({ ...cur!, spec: { ...(cur!.spec as object), volumeName: "pv-a" } }));
    const shrink = await rejection(grow("a", "500Mi"));
    expect(shrink.message).toContain("spec.resources.requests[storage]: Forbidden: field can not be less than status.capacity");
  });

  it("refuses any spec change of an unbound claim", async () => {
    await pvcs().create(NS, claim("a"));
    const e = await rejection(grow("a", "2Gi"));
    expect(e.message).toContain("spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims");
  });
});

describe("VolumeAttachment and CSIDriver", () => {
  it("a VolumeAttachment needs attacher, source and node, and its spec never changes", async () => {
    const store = registry.store("storage.k8s.io", "volumeattachments");
    const bad = await rejection(store.create("", { apiVersion: "storage.k8s.io/v1", kind: "VolumeAttachment", metadata: { name: "va" }, spec: { attacher: "", source: {}, nodeName: "" } } as KubeObject));
    expect(bad.message).toContain("spec.attacher: Required value");
    expect(bad.message).toContain("spec.nodeName: Required value");
    await store.create("", {
      apiVersion: "storage.k8s.io/v1",
      kind: "VolumeAttachment",
      metadata: { name: "va" },
      spec: { attacher: "zonal.csi.kubelab.io", source: { persistentVolumeName: "pv1" }, nodeName: "n1" },
      status: { attached: true },
    } as KubeObject);
    const va = await store.get("", "va");
    expect(va.status).toBeUndefined();
    const moved = await rejection(store.update("", "va", (cur) => ({ ...cur!, spec: { ...(cur!.spec as object), nodeName: "n2" } })));
    expect(moved.message).toContain("spec: Invalid value");
    expect(moved.message).toContain("field is immutable");
  });

  it("a CSIDriver gets upstream's defaults and keeps attachRequired", async () => {
    const store = registry.store("storage.k8s.io", "csidrivers");
    const d = (await store.create("", { apiVersion: "storage.k8s.io/v1", kind: "CSIDriver", metadata: { name: "zonal.csi.kubelab.io" }, spec: {} } as KubeObject)) as CSIDriver;
    expect(d.spec).toMatchObject({ attachRequired: true, podInfoOnMount: false, volumeLifecycleModes: ["Persistent"], fsGroupPolicy: "ReadWriteOnceWithFSType" });
    const e = await rejection(store.update("", "zonal.csi.kubelab.io", (cur) => ({ ...cur!, spec: { ...(cur!.spec as object), attachRequired: false } })));
    expect(e.message).toContain("spec.attachRequired: Invalid value: false: field is immutable");
  });
});

describe("StorageClass validation", () => {
  const scs = () => registry.store("storage.k8s.io", "storageclasses");
  const sc = (extra: Record<string, unknown>): KubeObject => ({ apiVersion: "storage.k8s.io/v1", kind: "StorageClass", metadata: { name: "c" }, ...extra }) as KubeObject;

  it("requires a provisioner and holds reclaimPolicy, volumeBindingMode and allowedTopologies to upstream's rules", async () => {
    expect((await rejection(scs().create("", sc({})))).message).toContain("provisioner: Required value");
    const e = await rejection(
      scs().create("", sc({ provisioner: "zonal.csi.kubelab.io", reclaimPolicy: "Recycle", volumeBindingMode: "Later", allowedTopologies: [{ matchLabelExpressions: [] }] })),
    );
    expect(e.message).toContain('reclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", "Retain"');
    expect(e.message).toContain('volumeBindingMode: Unsupported value: "Later": supported values: "Immediate", "WaitForFirstConsumer"');
    expect(e.message).toContain("allowedTopologies[0].matchLabelExpressions: Required value");
  });

  it("keeps provisioner and parameters immutable, allowVolumeExpansion mutable", async () => {
    await scs().create("", sc({ provisioner: "zonal.csi.kubelab.io", parameters: { type: "gp3" } }));
    const moved = await rejection(scs().update("", "c", (cur) => ({ ...cur!, provisioner: "other.example.com" })));
    expect(moved.message).toContain("provisioner: Forbidden: updates to provisioner are forbidden.");
    const params = await rejection(scs().update("", "c", (cur) => ({ ...cur!, parameters: { type: "io2" } })));
    expect(params.message).toContain("parameters: Forbidden: updates to parameters are forbidden.");
    const { obj } = await scs().update("", "c", (cur) => ({ ...cur!, allowVolumeExpansion: true }));
    expect((obj as StorageClass).allowVolumeExpansion).toBe(true);
  });
});
