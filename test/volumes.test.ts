// Persistent volumes end to end on `kubelab up` (simulated kubelets in three zones) with the real
// kubectl: the built-in classes and drivers, an Immediate regional claim provisioned and bound, a
// pre-created PV bound statically and Released under Retain, a WaitForFirstConsumer zonal claim that
// waits and then gets a PV in the selected node's zone, reclaim Delete, expansion (and its refusal
// for a class without allowVolumeExpansion), the protection finalizers holding a claim in use until
// its pod goes, and bad input (RWX on the zonal class, an unknown class) answered by Events only.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CSIDriver, Event, Node, PersistentVolume, PersistentVolumeClaim, Pod, StorageClass } from "../api/index.ts";
import { RestClient } from "../client/index.ts";
import { startKubelab, type Kubelab } from "./harness/kubelab.ts";
import { poll as pollEvery } from "./harness/poll.ts";

const poll = <T,>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 120_000): Promise<T> => pollEvery(what, fn, timeoutMs, 250);
const NS = "vols";

let k: Kubelab;
let client: RestClient;

beforeAll(async () => {
  k = await startKubelab({ nodes: true });
  client = RestClient.fromKubeconfig(k.kubeconfig);
  await client.resource("", "namespaces").create("", { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } });
}, 120_000);

afterAll(async () => {
  client?.close();
  await k?.stop({ clean: true });
});

async function ok(args: string[], input?: string): Promise<string> {
  const r = await k.kubectl(args, { input, timeoutMs: 60_000 });
  expect(r.code, `kubectl ${args.join(" ")} failed (${r.code}):\n${r.stderr}${r.stdout}`).toBe(0);
  return r.stdout;
}

const claims = () => client.resource<PersistentVolumeClaim>("", "persistentvolumeclaims");
const volumes = () => client.resource<PersistentVolume>("", "persistentvolumes");

function claimYaml(name: string, cls: string | undefined, size: string, modes = ["ReadWriteOnce"]): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name, namespace: NS },
    spec: { accessModes: modes, resources: { requests: { storage: size } }, ...(cls !== undefined ? { storageClassName: cls } : {}) },
  });
}

async function getClaim(name: string): Promise<PersistentVolumeClaim | undefined> {
  try {
    return await claims().get(NS, name);
  } catch {
    return undefined;
  }
}

async function getVolume(name: string): Promise<PersistentVolume | undefined> {
  try {
    return await volumes().get("", name);
  } catch {
    return undefined;
  }
}

const bound = (name: string) => poll(`claim ${name} Bound`, async () => {
  const c = await getClaim(name);
  return c?.status?.phase === "Bound" && c;
});

/** Events about one object, as "Type Reason message". */
async function eventsOf(namespace: string, name: string): Promise<string[]> {
  const list = await client.resource<Event>("", "events").list(namespace, { fieldSelector: `involvedObject.name=${name}` });
  return list.items.map((e) => `${e.type} ${e.reason} ${e.message}`);
}

const waitForEvent = (namespace: string, name: string, prefix: string) =>
  poll(`event "${prefix}" on ${name}`, async () => (await eventsOf(namespace, name)).find((e) => e.startsWith(prefix)));

/** kubectl get's rows as arrays of cells (header first), split on runs of two or more spaces. */
function rows(out: string): string[][] {
  return out.trim().split("\n").map((l) => l.trim().split(/\s{2,}/));
}

describe("storage on kubelab up", () => {
  it("has the built-in classes (kubelab-zonal the default) and CSIDrivers, with upstream's columns", async () => {
    await poll("built-in classes", async () => (await client.resource<StorageClass>("storage.k8s.io", "storageclasses").list("")).items.length >= 2);
    const sc = rows(await ok(["get", "sc"]));
    expect(sc[0]).toEqual(["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION", "AGE"]);
    expect(sc.find((r) => r[0] === "kubelab-zonal (default)")?.slice(1, 5)).toEqual(["zonal.csi.kubelab.io", "Delete", "WaitForFirstConsumer", "true"]);
    expect(sc.find((r) => r[0] === "kubelab-regional")?.slice(1, 5)).toEqual(["regional.csi.kubelab.io", "Delete", "Immediate", "true"]);
    const drivers = await poll("CSIDrivers", async () => {
      const l = (await client.resource<CSIDriver>("storage.k8s.io", "csidrivers").list("")).items;
      return l.length >= 2 && l;
    });
    expect(Object.fromEntries(drivers.map((d) => [d.metadata.name, d.spec.attachRequired]))).toEqual({ "zonal.csi.kubelab.io": true, "regional.csi.kubelab.io": false });
    const csi = rows(await ok(["get", "csidrivers"]));
    expect(csi[0]).toEqual(["NAME", "ATTACHREQUIRED", "PODINFOONMOUNT", "STORAGECAPACITY", "TOKENREQUESTS", "REQUIRESREPUBLISH", "MODES", "AGE"]);
    expect(csi.find((r) => r[0] === "zonal.csi.kubelab.io")?.slice(1, 7)).toEqual(["true", "false", "false", "<unset>", "false", "Persistent"]);
  });

  it("serves VolumeAttachments with upstream's columns and refuses a changed spec", async () => {
    const va = {
      apiVersion: "storage.k8s.io/v1",
      kind: "VolumeAttachment",
      metadata: { name: "csi-test" },
      spec: { attacher: "zonal.csi.kubelab.io", source: { persistentVolumeName: "pv-x" }, nodeName: "node-x" },
    };
    await ok(["apply", "-f", "-"], JSON.stringify(va));
    const r = rows(await ok(["get", "volumeattachments"]));
    expect(r[0]).toEqual(["NAME", "ATTACHER", "PV", "NODE", "ATTACHED", "AGE"]);
    expect(r.find((x) => x[0] === "csi-test")?.slice(1, 5)).toEqual(["zonal.csi.kubelab.io", "pv-x", "node-x", "false"]);
    const moved = await k.kubectl(["patch", "volumeattachment", "csi-test", "--type=merge", "-p", '{"spec":{"nodeName":"node-y"}}']);
    expect(moved.code).not.toBe(0);
    expect(moved.stderr).toContain("field is immutable");
    await ok(["delete", "volumeattachment", "csi-test"]);
  });

  it("an Immediate regional claim is provisioned, bound, shown by kubectl get pvc,pv, and deleted with its volume (reclaim Delete)", async () => {
    await ok(["apply", "-f", "-"], claimYaml("shared", "kubelab-regional", "1Gi", ["ReadWriteMany"]));
    const c = await bound("shared");
    const pvName = `pvc-${c.metadata.uid}`;
    expect(c.spec?.volumeName).toBe(pvName);
    expect(c.metadata.finalizers).toContain("kubernetes.io/pvc-protection");
    expect(c.metadata.annotations).toMatchObject({
      "pv.kubernetes.io/bind-completed": "yes",
      "pv.kubernetes.io/bound-by-controller": "yes",
      "volume.kubernetes.io/storage-provisioner": "regional.csi.kubelab.io",
    });
    const pv = (await getVolume(pvName))!;
    expect(pv.spec?.csi?.volumeHandle).toMatch(/^fs-[0-9a-f]{17}$/);
    expect(pv.metadata.finalizers).toContain("kubernetes.io/pv-protection");
    expect(pv.status?.phase).toBe("Bound");
    expect(await eventsOf(NS, "shared")).toContain(`Normal ProvisioningSucceeded Successfully provisioned volume ${pvName}`);

    const pvc = rows(await ok(["get", "pvc", "shared", "-n", NS]));
    expect(pvc[0]).toEqual(["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "AGE"]);
    expect(pvc[1]!.slice(0, 7)).toEqual(["shared", "Bound", pvName, "1Gi", "RWX", "kubelab-regional", "<unset>"]);
    const pvRows = rows(await ok(["get", "pv", pvName]));
    expect(pvRows[0]).toEqual(["NAME", "CAPACITY", "ACCESS MODES", "RECLAIM POLICY", "STATUS", "CLAIM", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "REASON", "AGE"]);
    expect(pvRows[1]!.slice(0, 8)).toEqual([pvName, "1Gi", "RWX", "Delete", "Bound", `${NS}/shared`, "kubelab-regional", "<unset>"]);

    const all = await ok(["get", "pv,pvc,sc", "-n", NS]);
    expect(all).toContain(`persistentvolume/${pvName}`);
    expect(all).toContain("persistentvolumeclaim/shared");
    expect(all).toContain("storageclass.storage.k8s.io/kubelab-zonal (default)");

    await ok(["delete", "pvc", "shared", "-n", NS, "--wait=false"]);
    await poll("claim and its volume gone", async () => !(await getClaim("shared")) && !(await getVolume(pvName)));
  });

  it("a pre-created PV binds statically (smallest fit of the class), and under Retain is Released and kept when the claim goes", async () => {
    const pv = (name: string, size: string) => ({
      apiVersion: "v1",
      kind: "PersistentVolume",
      metadata: { name },
      spec: { capacity: { storage: size }, accessModes: ["ReadWriteOnce"], persistentVolumeReclaimPolicy: "Retain", storageClassName: "manual", csi: { driver: "regional.csi.kubelab.io", volumeHandle: `static-${name}` } },
    });
    await ok(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: [pv("static-big", "10Gi"), pv("static-fit", "2Gi")] }));
    await poll("static volumes Available", async () => (await getVolume("static-fit"))?.status?.phase === "Available" && (await getVolume("static-big"))?.status?.phase === "Available");
    await ok(["apply", "-f", "-"], claimYaml("static", "manual", "1500Mi"));
    const c = await bound("static");
    expect(c.spec?.volumeName).toBe("static-fit");
    expect(c.status?.capacity?.storage).toBe("2Gi");
    expect((await getVolume("static-big"))?.status?.phase).toBe("Available");

    await ok(["delete", "pvc", "static", "-n", NS, "--wait=false"]);
    const released = await poll("static-fit Released", async () => {
      const v = await getVolume("static-fit");
      return v?.status?.phase === "Released" && v;
    });
    expect(released.spec?.claimRef?.name).toBe("static");
    const r = rows(await ok(["get", "pv", "static-fit"]));
    expect(r[1]![4]).toBe("Released");
  });

  it("a WaitForFirstConsumer claim (the default class) waits, then is provisioned in the selected node's zone", async () => {
    await ok(["apply", "-f", "-"], claimYaml("db", undefined, "1500Mi"));
    const pending = (await getClaim("db"))!;
    expect(pending.spec?.storageClassName).toBe("kubelab-zonal");
    await waitForEvent(NS, "db", "Normal WaitForFirstConsumer waiting for first consumer to be created before binding");
    expect((await getClaim("db"))?.status?.phase).toBe("Pending");

    // What the scheduler's VolumeBinding PreBind writes once it has picked a node for the claim's pod.
    const nodes = (await client.resource<Node>("", "nodes").list("")).items;
    const node = nodes.find((n) => n.metadata.labels?.["topology.kubernetes.io/zone"])!;
    const zone = node.metadata.labels!["topology.kubernetes.io/zone"]!;
    await claims().patch(NS, "db", "merge", { metadata: { annotations: { "volume.kubernetes.io/selected-node": node.metadata.name } } });
    const c = await bound("db");
    const pv = (await getVolume(c.spec!.volumeName!))!;
    expect(pv.spec?.capacity?.storage).toBe("2Gi");
    expect(pv.spec?.csi).toMatchObject({ driver: "zonal.csi.kubelab.io", fsType: "ext4" });
    expect(pv.spec?.csi?.volumeHandle).toMatch(/^vol-[0-9a-f]{17}$/);
    expect(pv.metadata.labels?.["topology.kubernetes.io/zone"]).toBe(zone);
    expect(pv.spec?.nodeAffinity?.required?.nodeSelectorTerms?.[0]?.matchExpressions).toEqual([{ key: "topology.kubernetes.io/zone", operator: "In", values: [zone] }]);
  });

  it("expands a bound claim of an expandable class, and refuses it for a class without allowVolumeExpansion", async () => {
    await ok(["apply", "-f", "-"], claimYaml("grow", "kubelab-regional", "1Gi"));
    const c = await bound("grow");
    await ok(["patch", "pvc", "grow", "-n", NS, "--type=merge", "-p", '{"spec":{"resources":{"requests":{"storage":"3Gi"}}}}']);
    await poll("claim grown", async () => (await getClaim("grow"))?.status?.capacity?.storage === "3Gi");
    expect((await getVolume(c.spec!.volumeName!))?.spec?.capacity?.storage).toBe("3Gi");
    await waitForEvent(NS, "grow", "Normal VolumeResizeSuccessful");

    // The static claim's class "manual" does not exist, so it cannot expand.
    await ok(["apply", "-f", "-"], claimYaml("fixed", "manual", "5Gi"));
    await bound("fixed");
    const r = await k.kubectl(["patch", "pvc", "fixed", "-n", NS, "--type=merge", "-p", '{"spec":{"resources":{"requests":{"storage":"20Gi"}}}}']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(
      'persistentvolumeclaims "fixed" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize',
    );
  });

  it("a claim in use by a pod stays (Terminating) after delete until its pod is gone", async () => {
    await ok(["apply", "-f", "-"], claimYaml("inuse", "kubelab-regional", "1Gi", ["ReadWriteMany"]));
    await bound("inuse");
    const pod: Pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "user", namespace: NS },
      spec: {
        containers: [{ name: "app", image: "busybox", command: ["sleep", "3600"], volumeMounts: [{ name: "data", mountPath: "/data" }] }],
        volumes: [{ name: "data", persistentVolumeClaim: { claimName: "inuse" } }],
      },
    };
    await client.resource<Pod>("", "pods").create(NS, pod);
    await poll("pod scheduled", async () => !!(await client.resource<Pod>("", "pods").get(NS, "user")).spec?.nodeName);
    await ok(["delete", "pvc", "inuse", "-n", NS, "--wait=false"]);
    const marked = await poll("claim marked for deletion", async () => {
      const c = await getClaim("inuse");
      return c?.metadata.deletionTimestamp ? c : undefined;
    });
    expect(marked.metadata.finalizers).toContain("kubernetes.io/pvc-protection");
    expect(rows(await ok(["get", "pvc", "inuse", "-n", NS]))[1]![1]).toBe("Terminating");
    // Still there after the controllers had their chance (the pod keeps it).
    await new Promise((r) => setTimeout(r, 1500));
    expect((await getClaim("inuse"))?.metadata.deletionTimestamp).toBeTruthy();
    await ok(["delete", "pod", "user", "-n", NS, "--grace-period=0", "--force"]);
    await poll("claim released after its pod", async () => !(await getClaim("inuse")));
  });

  it("bad input gets an Event and disturbs nothing else: RWX on the zonal class, an unknown class, a claim larger than the class allows", async () => {
    const nodes = (await client.resource<Node>("", "nodes").list("")).items;
    await ok(["apply", "-f", "-"], claimYaml("rwx", "kubelab-zonal", "1Gi", ["ReadWriteMany"]));
    await claims().patch(NS, "rwx", "merge", { metadata: { annotations: { "volume.kubernetes.io/selected-node": nodes[0]!.metadata.name } } });
    await waitForEvent(NS, "rwx", 'Warning ProvisioningFailed failed to provision volume with StorageClass "kubelab-zonal": rpc error: code = InvalidArgument desc = access mode ReadWriteMany not supported');
    const rwx = await poll("selected-node dropped", async () => {
      const c = await getClaim("rwx");
      return c && !c.metadata.annotations?.["volume.kubernetes.io/selected-node"] && c;
    });
    expect(rwx.status?.phase).toBe("Pending");

    await ok(["apply", "-f", "-"], claimYaml("nope", "no-such-class", "1Gi"));
    await waitForEvent(NS, "nope", 'Warning ProvisioningFailed storageclass.storage.k8s.io "no-such-class" not found');
    expect((await getClaim("nope"))?.status?.phase).toBe("Pending");

    // Larger than any class allows (the zonal class's 16Ti, like gp3): refused by the provisioner, claim kept Pending.
    await ok(["apply", "-f", "-"], claimYaml("huge", "kubelab-zonal", "17Ti"));
    await claims().patch(NS, "huge", "merge", { metadata: { annotations: { "volume.kubernetes.io/selected-node": nodes[0]!.metadata.name } } });
    await waitForEvent(NS, "huge", "Warning ProvisioningFailed failed to provision volume with StorageClass \"kubelab-zonal\": rpc error: code = OutOfRange desc = requested size 17Ti is more than the class's maxSize 16Ti");
    expect((await getClaim("huge"))?.status?.phase).toBe("Pending");

    // Everything else still works.
    await ok(["apply", "-f", "-"], claimYaml("after", "kubelab-regional", "1Gi"));
    await bound("after");
  });
});
