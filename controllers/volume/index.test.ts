// The PersistentVolume controller: one reconcile against a FakeClient and preloaded listers, with
// assertions on what it wrote and the events it recorded.

import { mkdtempSync, mkdirSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Node, PersistentVolume, PersistentVolumeClaim, StorageClass } from "../../api/index.ts";
import { newLogger } from "../../client/log.ts";
import { fakeLister, FakeClient, FakeRecorder } from "../../client/testing.ts";
import type { ReconcileContext } from "../../client/types.ts";
import { BUILTIN_STORAGE_CLASSES } from "./classes.ts";
import { claimKey, PersistentVolumeController, volumeKey } from "./index.ts";
import { volumeHandle } from "./util.ts";

const NS = "default";
const ctx = (): ReconcileContext => ({ signal: new AbortController().signal, log: newLogger("test"), reconcileID: "test" });
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function claim(name: string, spec: Partial<NonNullable<PersistentVolumeClaim["spec"]>> = {}, annotations?: Record<string, string>): PersistentVolumeClaim {
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name, namespace: NS, uid: `uid-${name}`, ...(annotations ? { annotations } : {}) },
    spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } }, ...spec },
    status: { phase: "Pending" },
  };
}

function volume(name: string, size: string, extra: Partial<NonNullable<PersistentVolume["spec"]>> = {}, labels?: Record<string, string>): PersistentVolume {
  return {
    apiVersion: "v1",
    kind: "PersistentVolume",
    metadata: { name, uid: `uid-${name}`, ...(labels ? { labels } : {}) },
    spec: { capacity: { storage: size }, accessModes: ["ReadWriteOnce"], persistentVolumeReclaimPolicy: "Retain", storageClassName: "manual", csi: { driver: "regional.csi.kubelab.io", volumeHandle: `h-${name}` }, ...extra },
    status: { phase: "Available" },
  };
}

const node = (name: string, zone: string): Node => ({ apiVersion: "v1", kind: "Node", metadata: { name, labels: { "topology.kubernetes.io/zone": zone, "topology.kubernetes.io/region": "r1" } } });

function harness(objs: { claims?: PersistentVolumeClaim[]; volumes?: PersistentVolume[]; classes?: StorageClass[]; nodes?: Node[] }, volumeDir?: string) {
  const claims = objs.claims ?? [];
  const volumes = objs.volumes ?? [];
  const classes = objs.classes ?? [...BUILTIN_STORAGE_CLASSES];
  const nodes = objs.nodes ?? [node("n1", "zone-a"), node("n2", "zone-b")];
  const client = new FakeClient([...claims, ...volumes, ...classes, ...nodes]);
  const recorder = new FakeRecorder();
  const ctrl = new PersistentVolumeController({
    client,
    claims: fakeLister(claims),
    volumes: fakeLister(volumes),
    classes: fakeLister(classes),
    nodes: fakeLister(nodes),
    recorder,
    ...(volumeDir ? { volumeDir } : {}),
  });
  return { client, recorder, ctrl };
}

const pvOf = (client: FakeClient, name: string) => client.tracker("", "persistentvolumes", "", name) as PersistentVolume | undefined;
const pvcOf = (client: FakeClient, name: string) => client.tracker("", "persistentvolumeclaims", NS, name) as PersistentVolumeClaim;

describe("static binding", () => {
  it("binds the smallest volume of the class that is large enough and has the access modes", async () => {
    const c = claim("data", { storageClassName: "manual", resources: { requests: { storage: "2Gi" } } });
    const { client, ctrl } = harness({
      claims: [c],
      volumes: [volume("small", "1Gi"), volume("big", "10Gi"), volume("fit", "5Gi"), volume("rwx", "3Gi", { accessModes: ["ReadWriteMany"] }), volume("other", "3Gi", { storageClassName: "x" })],
    });
    await ctrl.reconcile(ctx(), claimKey(NS, "data"));
    expect(pvOf(client, "fit")?.spec?.claimRef).toMatchObject({ name: "data", namespace: NS, uid: "uid-data" });
    expect(pvOf(client, "fit")?.status?.phase).toBe("Bound");
    expect(pvOf(client, "fit")?.metadata.annotations?.["pv.kubernetes.io/bound-by-controller"]).toBe("yes");
    const bound = pvcOf(client, "data");
    expect(bound.spec?.volumeName).toBe("fit");
    expect(bound.status).toMatchObject({ phase: "Bound", capacity: { storage: "5Gi" }, accessModes: ["ReadWriteOnce"] });
    expect(bound.metadata.annotations).toMatchObject({ "pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes" });
  });

  it("prefers a volume pre-bound to the claim by claimRef, and honours the claim's selector", async () => {
    const c = claim("data", { storageClassName: "manual", selector: { matchLabels: { tier: "gold" } } });
    const { client, ctrl } = harness({
      claims: [c],
      volumes: [volume("plain", "1Gi"), volume("gold", "2Gi", {}, { tier: "gold" }), volume("mine", "8Gi", { claimRef: { namespace: NS, name: "data" } })],
    });
    await ctrl.reconcile(ctx(), claimKey(NS, "data"));
    expect(pvcOf(client, "data").spec?.volumeName).toBe("mine");
    // A pre-binding by the user is not the controller's: no bound-by-controller on the volume.
    expect(pvOf(client, "mine")?.metadata.annotations?.["pv.kubernetes.io/bound-by-controller"]).toBeUndefined();
  });

  it("completes a claim pre-bound by volumeName", async () => {
    const c = claim("data", { storageClassName: "manual", volumeName: "chosen" });
    const { client, ctrl } = harness({ claims: [c], volumes: [volume("chosen", "1Gi"), volume("other", "1Gi")] });
    await ctrl.reconcile(ctx(), claimKey(NS, "data"));
    expect(pvOf(client, "chosen")?.spec?.claimRef?.uid).toBe("uid-data");
    expect(pvcOf(client, "data").status?.phase).toBe("Bound");
    expect(pvcOf(client, "data").metadata.annotations?.["pv.kubernetes.io/bound-by-controller"]).toBeUndefined();
  });

  it("a claim with no class and no volume gets FailedBinding; an unknown class ProvisioningFailed", async () => {
    const { recorder, ctrl, client } = harness({ claims: [claim("a", { storageClassName: "" }), claim("b", { storageClassName: "nope" })] });
    await ctrl.reconcile(ctx(), claimKey(NS, "a"));
    await ctrl.reconcile(ctx(), claimKey(NS, "b"));
    expect(recorder.events).toEqual([
      "Normal FailedBinding no persistent volumes available for this claim and no storage class is set",
      'Warning ProvisioningFailed storageclass.storage.k8s.io "nope" not found',
    ]);
    expect(client.writeActions()).toEqual([]);
  });
});

describe("dynamic provisioning", () => {
  it("provisions a regional claim at once with the contract's shape, and binds it", async () => {
    const c = claim("shared", { storageClassName: "kubelab-regional", accessModes: ["ReadWriteMany"], resources: { requests: { storage: "1500Mi" } } });
    const { client, recorder, ctrl } = harness({ claims: [c] });
    await ctrl.reconcile(ctx(), claimKey(NS, "shared"));
    const pv = pvOf(client, "pvc-uid-shared")!;
    expect(pv.metadata.annotations?.["pv.kubernetes.io/provisioned-by"]).toBe("regional.csi.kubelab.io");
    expect(pv.spec).toMatchObject({
      capacity: { storage: "1500Mi" },
      accessModes: ["ReadWriteMany"],
      persistentVolumeReclaimPolicy: "Delete",
      storageClassName: "kubelab-regional",
      volumeMode: "Filesystem",
      claimRef: { name: "shared", namespace: NS, uid: "uid-shared" },
      csi: { driver: "regional.csi.kubelab.io", volumeHandle: volumeHandle("regional.csi.kubelab.io", "uid-shared") },
    });
    expect(pv.spec?.csi?.volumeHandle).toMatch(/^fs-[0-9a-f]{17}$/);
    expect(pv.spec?.nodeAffinity).toBeUndefined();
    const bound = pvcOf(client, "shared");
    expect(bound.spec?.volumeName).toBe("pvc-uid-shared");
    expect(bound.metadata.annotations?.["volume.kubernetes.io/storage-provisioner"]).toBe("regional.csi.kubelab.io");
    expect(bound.status?.phase).toBe("Bound");
    expect(recorder.events).toEqual([
      "Normal ExternalProvisioning Waiting for a volume to be created either by the external provisioner 'regional.csi.kubelab.io' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.",
      'Normal Provisioning External provisioner is provisioning volume for claim "default/shared"',
      "Normal ProvisioningSucceeded Successfully provisioned volume pvc-uid-shared",
    ]);
  });

  it("waits for the first consumer on a zonal claim, then provisions in the selected node's zone, rounded to GiB", async () => {
    const waiting = harness({ claims: [claim("db", { storageClassName: "kubelab-zonal", resources: { requests: { storage: "1500Mi" } } })] });
    await waiting.ctrl.reconcile(ctx(), claimKey(NS, "db"));
    expect(waiting.recorder.events).toEqual(["Normal WaitForFirstConsumer waiting for first consumer to be created before binding"]);
    expect(waiting.client.writeActions()).toEqual([]);

    const c = claim("db", { storageClassName: "kubelab-zonal", resources: { requests: { storage: "1500Mi" } } }, { "volume.kubernetes.io/selected-node": "n2" });
    const { client, ctrl } = harness({ claims: [c] });
    await ctrl.reconcile(ctx(), claimKey(NS, "db"));
    const pv = pvOf(client, "pvc-uid-db")!;
    expect(pv.spec?.capacity?.storage).toBe("2Gi");
    expect(pv.spec?.csi).toMatchObject({ driver: "zonal.csi.kubelab.io", fsType: "ext4" });
    expect(pv.spec?.csi?.volumeHandle).toMatch(/^vol-[0-9a-f]{17}$/);
    expect(pv.metadata.labels).toEqual({ "topology.kubernetes.io/zone": "zone-b", "topology.kubernetes.io/region": "r1" });
    expect(pv.spec?.nodeAffinity?.required?.nodeSelectorTerms).toEqual([{ matchExpressions: [{ key: "topology.kubernetes.io/zone", operator: "In", values: ["zone-b"] }] }]);
    expect(pvcOf(client, "db").status?.phase).toBe("Bound");
  });

  it("refuses a zonal claim asking ReadWriteMany or more than maxSize, and drops the selected node", async () => {
    const rwx = claim("rwx", { storageClassName: "kubelab-zonal", accessModes: ["ReadWriteMany"] }, { "volume.kubernetes.io/selected-node": "n1" });
    const huge = claim("huge", { storageClassName: "kubelab-zonal", resources: { requests: { storage: "17Ti" } } }, { "volume.kubernetes.io/selected-node": "n1" });
    const { client, recorder, ctrl } = harness({ claims: [rwx, huge] });
    await ctrl.reconcile(ctx(), claimKey(NS, "rwx"));
    await ctrl.reconcile(ctx(), claimKey(NS, "huge"));
    const failures = recorder.events.filter((e) => e.startsWith("Warning"));
    expect(failures).toEqual([
      'Warning ProvisioningFailed failed to provision volume with StorageClass "kubelab-zonal": rpc error: code = InvalidArgument desc = access mode ReadWriteMany not supported: zonal.csi.kubelab.io volumes support only ReadWriteOnce, ReadWriteOncePod',
      'Warning ProvisioningFailed failed to provision volume with StorageClass "kubelab-zonal": rpc error: code = OutOfRange desc = requested size 17Ti is more than the class\'s maxSize 16Ti',
    ]);
    expect(client.trackerList("", "persistentvolumes")).toEqual([]);
    expect(pvcOf(client, "rwx").metadata.annotations?.["volume.kubernetes.io/selected-node"]).toBeUndefined();
    expect(pvcOf(client, "huge").metadata.annotations?.["volume.kubernetes.io/selected-node"]).toBeUndefined();
  });
});

describe("volumes and reclaim", () => {
  it("a Retain volume whose claim is gone is Released and kept", async () => {
    const pv = volume("kept", "1Gi", { claimRef: { namespace: NS, name: "gone", uid: "uid-gone" } });
    pv.status = { phase: "Bound" };
    const { client, ctrl } = harness({ volumes: [pv] });
    await ctrl.reconcile(ctx(), volumeKey("kept"));
    expect(pvOf(client, "kept")?.status?.phase).toBe("Released");
    expect(client.writeActions().map((a) => a.verb)).toEqual(["update"]);
  });

  it("a provisioned Delete volume whose claim is gone loses its host directory and its object", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kubelab-vol-"));
    dirs.push(dir);
    const handle = volumeHandle("zonal.csi.kubelab.io", "uid-gone");
    mkdirSync(join(dir, handle));
    const pv = volume("pvc-uid-gone", "1Gi", {
      claimRef: { namespace: NS, name: "gone", uid: "uid-gone" },
      persistentVolumeReclaimPolicy: "Delete",
      storageClassName: "kubelab-zonal",
      csi: { driver: "zonal.csi.kubelab.io", volumeHandle: handle },
    });
    pv.metadata.annotations = { "pv.kubernetes.io/provisioned-by": "zonal.csi.kubelab.io" };
    pv.status = { phase: "Bound" };
    const { client, ctrl } = harness({ volumes: [pv] }, dir);
    await ctrl.reconcile(ctx(), volumeKey("pvc-uid-gone"));
    expect(existsSync(join(dir, handle))).toBe(false);
    expect(pvOf(client, "pvc-uid-gone")).toBeUndefined();
  });

  it("a static Delete volume nobody can delete fails with VolumeFailedDelete", async () => {
    const pv = volume("static", "1Gi", { claimRef: { namespace: NS, name: "gone", uid: "uid-gone" }, persistentVolumeReclaimPolicy: "Delete" });
    const { client, recorder, ctrl } = harness({ volumes: [pv] });
    await ctrl.reconcile(ctx(), volumeKey("static"));
    expect(pvOf(client, "static")?.status).toMatchObject({ phase: "Failed", reason: "VolumeFailedDelete" });
    expect(recorder.events).toEqual(['Warning VolumeFailedDelete error getting deleter volume plugin for volume "static": no deletable volume plugin matched']);
  });

  it("a bound claim whose volume vanished is Lost", async () => {
    const c = claim("data", { storageClassName: "manual", volumeName: "vanished" });
    c.status = { phase: "Bound", capacity: { storage: "1Gi" } };
    const { client, recorder, ctrl } = harness({ claims: [c] });
    await ctrl.reconcile(ctx(), claimKey(NS, "data"));
    expect(pvcOf(client, "data").status?.phase).toBe("Lost");
    expect(recorder.events).toEqual(["Warning ClaimLost Bound claim has lost its PersistentVolume. Data on the volume is lost!"]);
  });
});

describe("expansion", () => {
  it("grows the volume and the claim's status capacity of an expandable class", async () => {
    const c = claim("data", { storageClassName: "kubelab-regional", volumeName: "pvc-uid-data", resources: { requests: { storage: "3Gi" } } }, { "pv.kubernetes.io/bind-completed": "yes" });
    c.status = { phase: "Bound", capacity: { storage: "1Gi" } };
    const pv = volume("pvc-uid-data", "1Gi", { storageClassName: "kubelab-regional", claimRef: { namespace: NS, name: "data", uid: "uid-data" } });
    pv.status = { phase: "Bound" };
    const { client, recorder, ctrl } = harness({ claims: [c], volumes: [pv] });
    await ctrl.reconcile(ctx(), claimKey(NS, "data"));
    expect(pvOf(client, "pvc-uid-data")?.spec?.capacity?.storage).toBe("3Gi");
    expect(pvcOf(client, "data").status).toMatchObject({ capacity: { storage: "3Gi" }, allocatedResources: { storage: "3Gi" } });
    expect(recorder.events).toEqual(["Normal Resizing External resizer is resizing volume pvc-uid-data", "Normal VolumeResizeSuccessful Resize volume succeeded"]);
  });
});
