import { describe, expect, it } from "vitest";
import type { CSIDriver, KubeObject, Node, PersistentVolume, PersistentVolumeClaim, Pod, VolumeAttachment } from "../../api/index.ts";
import { FakeClient, FakeClock, FakeRecorder, fakeLister, newLogger } from "../../client/index.ts";
import { AttachDetachController } from "./index.ts";
import { volumeAttachmentName } from "../../api/index.ts";

const DRIVER = "zonal.csi.kubelab.io";
const HANDLE = "vol-0123456789abcdef0";

function pv(accessModes: PersistentVolume["spec"] extends infer S ? S extends { accessModes?: infer A } ? A : never : never = ["ReadWriteOnce"]): PersistentVolume {
  return {
    apiVersion: "v1",
    kind: "PersistentVolume",
    metadata: { name: "pvc-1" },
    spec: { csi: { driver: DRIVER, volumeHandle: HANDLE }, accessModes, claimRef: { namespace: "default", name: "data", uid: "uid-data" } },
  };
}
const claim: PersistentVolumeClaim = { apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: { name: "data", namespace: "default", uid: "uid-data" }, spec: { volumeName: "pvc-1" } };
const driver: CSIDriver = { apiVersion: "storage.k8s.io/v1", kind: "CSIDriver", metadata: { name: DRIVER }, spec: { attachRequired: true } };

function pod(name: string, node: string | undefined, created = "2024-01-01T00:00:00Z", phase?: string): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default", creationTimestamp: created },
    spec: { ...(node ? { nodeName: node } : {}), containers: [{ name: "c", image: "busybox" }], volumes: [{ name: "v", persistentVolumeClaim: { claimName: "data" } }] },
    ...(phase ? { status: { phase: phase as "Succeeded" } } : {}),
  };
}

function attachment(node: string, attached: boolean, created = "2024-01-01T00:00:00Z"): VolumeAttachment {
  return {
    apiVersion: "storage.k8s.io/v1",
    kind: "VolumeAttachment",
    metadata: { name: volumeAttachmentName(HANDLE, DRIVER, node), creationTimestamp: created },
    spec: { attacher: DRIVER, nodeName: node, source: { persistentVolumeName: "pvc-1" } },
    status: { attached },
  };
}

async function reconcile(objects: { pods?: Pod[]; vas?: VolumeAttachment[]; pv?: PersistentVolume | null; attachDelayMs?: number; clock?: FakeClock; nodes?: Node[] }) {
  const vas = objects.vas ?? [];
  const volume = objects.pv === null ? [] : [objects.pv ?? pv()];
  const client = new FakeClient([...(vas as KubeObject[]), ...volume, ...(objects.nodes ?? [])]);
  const recorder = new FakeRecorder();
  const c = new AttachDetachController({
    client,
    pods: fakeLister(objects.pods ?? []),
    claims: fakeLister([claim]),
    volumes: fakeLister(volume),
    attachments: fakeLister(vas),
    drivers: fakeLister([driver]),
    ...(objects.nodes ? { nodes: fakeLister(objects.nodes) } : {}),
    recorder,
    ...(objects.attachDelayMs !== undefined ? { attachDelayMs: objects.attachDelayMs } : {}),
    ...(objects.clock ? { clock: objects.clock } : {}),
  });
  const result = await c.reconcile({ signal: new AbortController().signal, log: newLogger("test", { level: "silent" }), reconcileID: "t" }, "pvc-1");
  const writes = client.writeActions().map((a) => `${a.verb} ${a.resource}${a.subresource ? "/" + a.subresource : ""} ${a.name ?? (a.object as KubeObject | undefined)?.metadata?.name ?? ""}`);
  return { writes, events: recorder.events, result, client };
}

describe("AttachDetachController", () => {
  it("a scheduled pod's zonal volume gets a VolumeAttachment to its node, named as the CSI attacher names it, attached at once without a delay", async () => {
    const { writes, client } = await reconcile({ pods: [pod("web-0", "n1")] });
    const name = volumeAttachmentName(HANDLE, DRIVER, "n1");
    expect(writes).toEqual([`create volumeattachments ${name}`, `patch volumeattachments/status ${name}`]);
    expect(client.tracker("storage.k8s.io", "volumeattachments", "", name)).toMatchObject({ spec: { attacher: DRIVER, nodeName: "n1", source: { persistentVolumeName: "pvc-1" } } });
  });

  it("the simulated attacher marks a new attachment attached and tells the pod", async () => {
    const { writes, events } = await reconcile({ pods: [pod("web-0", "n1")], vas: [attachment("n1", false)] });
    expect(writes).toEqual([`patch volumeattachments/status ${volumeAttachmentName(HANDLE, DRIVER, "n1")}`]);
    expect(events).toEqual(['Normal SuccessfulAttachVolume AttachVolume.Attach succeeded for volume "pvc-1"']);
  });

  it("with an attach delay the attachment waits and the key is requeued for the rest of it", async () => {
    const clock = new FakeClock(Date.parse("2024-01-01T00:00:01Z"));
    const { writes, result } = await reconcile({ pods: [pod("web-0", "n1")], vas: [attachment("n1", false)], attachDelayMs: 3000, clock });
    expect(writes).toEqual([]);
    expect(result).toEqual({ requeueAfterMs: 2000 });
  });

  it("a ReadWriteOnce volume used by a pod on another node is not attached again: Multi-Attach on the waiting pod", async () => {
    const { writes, events } = await reconcile({
      pods: [pod("web-0", "n1"), pod("web-1", "n2", "2024-01-01T00:01:00Z")],
      vas: [attachment("n1", true)],
    });
    expect(writes).toEqual([]);
    expect(events).toEqual(['Warning FailedAttachVolume Multi-Attach error for volume "pvc-1" Volume is already used by pod(s) web-0']);
  });

  it("once the first pod is gone the attachment is deleted, and the next reconcile attaches to the waiting pod's node", async () => {
    const first = await reconcile({ pods: [pod("web-1", "n2")], vas: [attachment("n1", true)] });
    expect(first.writes).toEqual([`delete volumeattachments ${volumeAttachmentName(HANDLE, DRIVER, "n1")}`]);
    // Until the detach is seen the volume is still attached elsewhere, with no pod there (upstream's wording).
    expect(first.events).toEqual([`Warning FailedAttachVolume Multi-Attach error for volume "pvc-1" Volume is already exclusively attached to one node and can't be attached to another`]);
    const second = await reconcile({ pods: [pod("web-1", "n2")] });
    const n2 = volumeAttachmentName(HANDLE, DRIVER, "n2");
    expect(second.writes).toEqual([`create volumeattachments ${n2}`, `patch volumeattachments/status ${n2}`]);
  });

  it("a ReadWriteMany volume is attached to every node that uses it", async () => {
    const { writes } = await reconcile({ pv: pv(["ReadWriteMany"]), pods: [pod("a", "n1"), pod("b", "n2")], vas: [attachment("n1", true)] });
    const n2 = volumeAttachmentName(HANDLE, DRIVER, "n2");
    expect(writes).toEqual([`create volumeattachments ${n2}`, `patch volumeattachments/status ${n2}`]);
  });

  it("unscheduled and finished pods do not hold a volume", async () => {
    const { writes } = await reconcile({ pods: [pod("pending", undefined), pod("done", "n1", undefined, "Succeeded")], vas: [attachment("n1", true)] });
    expect(writes).toEqual([`delete volumeattachments ${volumeAttachmentName(HANDLE, DRIVER, "n1")}`]);
  });

  it("the node's status.volumesAttached follows its attached attachments", async () => {
    const n1: Node = { apiVersion: "v1", kind: "Node", metadata: { name: "n1" } };
    const attached = await reconcile({ pods: [pod("web-0", "n1")], vas: [attachment("n1", false)], nodes: [n1] });
    expect(attached.writes).toContain("patch nodes/status n1");
    expect((attached.client.tracker("", "nodes", "", "n1") as Node).status?.volumesAttached).toEqual([{ name: `kubernetes.io/csi/${DRIVER}^${HANDLE}`, devicePath: "" }]);
    const withList: Node = { ...n1, status: { volumesAttached: [{ name: `kubernetes.io/csi/${DRIVER}^${HANDLE}`, devicePath: "" }] } };
    const detached = await reconcile({ pods: [], vas: [attachment("n1", true)], nodes: [withList] });
    expect(detached.writes).toContain("patch nodes/status n1");
    expect((detached.client.tracker("", "nodes", "", "n1") as Node).status?.volumesAttached).toBeUndefined();
  });

  it("the attachments of a deleted volume are detached", async () => {
    const { writes } = await reconcile({ pv: null, pods: [pod("web-0", "n1")], vas: [attachment("n1", true)] });
    expect(writes).toEqual([`delete volumeattachments ${volumeAttachmentName(HANDLE, DRIVER, "n1")}`]);
  });
});
