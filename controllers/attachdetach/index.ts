// The attach/detach controller (upstream pkg/controller/volume/attachdetach) and, for kubelab's
// simulated cloud, the CSI external-attacher in one: keyed by PersistentVolume. The desired state is
// the nodes running (scheduled, not finished) pods that use the volume's claim; the actual state is
// its VolumeAttachments. Detach (delete the attachment) where no pod uses it any more; attach (create
// `csi-<sha256(handle+driver+node)>`) where one does — a ReadWriteOnce volume attached to another
// node that still has a pod using it is not attached again: the pod gets upstream's Multi-Attach
// Warning and waits. As the attacher it then marks the attachment attached after a simulated delay.

import {
  volumeAttachmentName,
  REGIONAL_PROVISIONER,
  ZONAL_PROVISIONER,
  type AttachedVolume,
  type CSIDriver,
  type Node,
  type PersistentVolume,
  type PersistentVolumeClaim,
  type Pod,
  type VolumeAttachment,
} from "../../api/index.ts";
import { isAlreadyExists, isNotFound, realClock, type Client, type Clock, type EventRecorder, type Lister, type ObjectKey, type ReconcileContext, type Reconciler, type Result } from "../../client/index.ts";

/** The drivers whose attacher this controller plays (the simulated cloud's). */
const SIMULATED_ATTACHERS: ReadonlySet<string> = new Set([ZONAL_PROVISIONER, REGIONAL_PROVISIONER]);

export const FailedAttachVolume = "FailedAttachVolume";
export const SuccessfulAttachVolume = "SuccessfulAttachVolume";


/** The PVC names a pod's volumes refer to. */
export function podClaimNames(pod: Readonly<Pod>): string[] {
  return (pod.spec?.volumes ?? []).flatMap((v) => (v.persistentVolumeClaim?.claimName ? [v.persistentVolumeClaim.claimName] : []));
}

/** ReadWriteMany and ReadOnlyMany volumes may be attached to several nodes (upstream's isMultiAttachAllowed). */
function multiAttachAllowed(pv: Readonly<PersistentVolume>): boolean {
  const modes = pv.spec?.accessModes ?? [];
  return modes.includes("ReadWriteMany") || modes.includes("ReadOnlyMany");
}

function isTerminal(pod: Readonly<Pod>): boolean {
  return pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";
}

export interface AttachDetachDeps {
  client: Client;
  pods: Lister<Pod>;
  claims: Lister<PersistentVolumeClaim>;
  volumes: Lister<PersistentVolume>;
  attachments: Lister<VolumeAttachment>;
  drivers: Lister<CSIDriver>;
  /** With it, each touched node's status.volumesAttached is kept to its attached attachments. */
  nodes?: Lister<Node>;
  recorder: EventRecorder;
  /** The simulated cloud's attach time (ms after the attachment is created); default 0. */
  attachDelayMs?: number;
  clock?: Clock;
}

export class AttachDetachController implements Reconciler {
  private readonly clock: Clock;
  constructor(private readonly deps: AttachDetachDeps) {
    this.clock = deps.clock ?? realClock;
  }

  /** `key` is a PersistentVolume name. */
  async reconcile(_ctx: ReconcileContext, key: ObjectKey): Promise<Result | void> {
    const { deps } = this;
    const mine = deps.attachments.list().filter((va) => va.spec?.source?.persistentVolumeName === key);
    const pv = deps.volumes.get(key);
    const csi = pv?.spec?.csi;
    // attachRequired defaults to true, as for a CSI driver without a CSIDriver object.
    const attachRequired = !!csi && (deps.drivers.get(csi.driver)?.spec?.attachRequired ?? true);
    const users = pv && csi && attachRequired ? this.podsByNode(pv) : new Map<string, Readonly<Pod>[]>();

    // Detach: attachments to nodes no pod of this volume runs on, and those of a volume that is
    // gone — only the ones this controller made (named as attachmentName names them): another
    // writer's attachment of an unknown volume is left alone, as upstream's controller detaches only
    // what its actual state of the world holds.
    const kept: Readonly<VolumeAttachment>[] = [];
    for (const va of pv ? mine : mine.filter((a) => /^csi-[0-9a-f]{64}$/.test(a.metadata.name ?? ""))) {
      if (users.has(va.spec.nodeName) && va.spec.attacher === csi?.driver) {
        kept.push(va);
        continue;
      }
      if (va.metadata.deletionTimestamp) continue;
      try {
        await deps.client.resource<VolumeAttachment>("storage.k8s.io", "volumeattachments").delete("", va.metadata.name ?? "");
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
    const touched = new Set(mine.map((va) => va.spec.nodeName));
    if (!pv || !csi || !attachRequired) {
      await this.updateNodesStatus(touched, new Map());
      return;
    }

    // Attach: each node with users and no attachment, unless the volume is exclusive and used elsewhere.
    const exclusive = !multiAttachAllowed(pv);
    const attachedNodes = new Set(mine.map((va) => va.spec.nodeName));
    const nodes = [...users.keys()].sort((a, b) => earliest(users.get(a)!) - earliest(users.get(b)!) || a.localeCompare(b));
    let requeueAfterMs: number | undefined;
    for (const node of nodes) {
      if (attachedNodes.has(node)) continue;
      if (exclusive) {
        const elsewhere = [...attachedNodes].filter((n) => n !== node);
        if (elsewhere.length > 0) {
          this.reportMultiAttach(pv, users.get(node)!, elsewhere.flatMap((n) => users.get(n) ?? []));
          continue;
        }
      }
      const va: VolumeAttachment = {
        apiVersion: "storage.k8s.io/v1",
        kind: "VolumeAttachment",
        metadata: { name: volumeAttachmentName(csi.volumeHandle, csi.driver, node) },
        spec: { attacher: csi.driver, nodeName: node, source: { persistentVolumeName: key } },
      };
      try {
        kept.push(await deps.client.resource<VolumeAttachment>("storage.k8s.io", "volumeattachments").create("", va));
      } catch (e) {
        if (!isAlreadyExists(e)) throw e;
      }
      attachedNodes.add(node);
    }

    // The simulated attacher: mark attachments of our drivers attached once the cloud's delay has passed.
    const nowAttached = new Map<string, boolean>();
    for (const va of mine) if (!kept.includes(va)) nowAttached.set(va.metadata.name ?? "", false);
    if (!SIMULATED_ATTACHERS.has(csi.driver)) {
      await this.updateNodesStatus(touched, nowAttached);
      return;
    }
    const delay = deps.attachDelayMs ?? 0;
    for (const va of kept) {
      if (va.status?.attached || va.metadata.deletionTimestamp) continue;
      const created = va.metadata.creationTimestamp ? Date.parse(va.metadata.creationTimestamp) : this.clock.now();
      const wait = created + delay - this.clock.now();
      if (delay > 0 && wait > 0) {
        requeueAfterMs = Math.min(requeueAfterMs ?? Infinity, wait);
        continue;
      }
      try {
        await deps.client.resource<VolumeAttachment>("storage.k8s.io", "volumeattachments").patch("", va.metadata.name ?? "", "merge", { status: { attached: true } }, { subresource: "status" });
      } catch (e) {
        if (isNotFound(e)) continue;
        throw e;
      }
      nowAttached.set(va.metadata.name ?? "", true);
      touched.add(va.spec.nodeName);
      for (const pod of users.get(va.spec.nodeName) ?? []) deps.recorder.event(pod, "Normal", SuccessfulAttachVolume, `AttachVolume.Attach succeeded for volume "${key}"`);
    }
    await this.updateNodesStatus(touched, nowAttached);
    return requeueAfterMs !== undefined ? { requeueAfterMs } : undefined;
  }

  /**
   * Node status.volumesAttached (upstream's node status updater): `kubernetes.io/csi/<driver>^<handle>`
   * for each attached attachment of the node, from the informer plus what this reconcile just changed.
   */
  private async updateNodesStatus(nodes: ReadonlySet<string>, changed: ReadonlyMap<string, boolean>): Promise<void> {
    const lister = this.deps.nodes;
    if (!lister) return;
    for (const nodeName of nodes) {
      const node = lister.get(nodeName);
      if (!node) continue;
      const want: AttachedVolume[] = [];
      for (const va of this.deps.attachments.list()) {
        if (va.spec?.nodeName !== nodeName) continue;
        const attached = changed.get(va.metadata.name ?? "") ?? va.status?.attached ?? false;
        const pv = this.deps.volumes.get(va.spec.source?.persistentVolumeName ?? "");
        if (attached && pv?.spec?.csi) want.push({ name: `kubernetes.io/csi/${pv.spec.csi.driver}^${pv.spec.csi.volumeHandle}`, devicePath: "" });
      }
      want.sort((a, b) => a.name.localeCompare(b.name));
      if (JSON.stringify(want) === JSON.stringify(node.status?.volumesAttached ?? [])) continue;
      try {
        await this.deps.client.resource<Node>("", "nodes").patch("", nodeName, "merge", { status: { volumesAttached: want.length > 0 ? want : null } }, { subresource: "status" });
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
  }

  /** Scheduled, unfinished pods using the volume's claim, by node. */
  private podsByNode(pv: Readonly<PersistentVolume>): Map<string, Readonly<Pod>[]> {
    const out = new Map<string, Readonly<Pod>[]>();
    const ref = pv.spec?.claimRef;
    if (!ref?.name) return out;
    const claim = this.deps.claims.get(`${ref.namespace}/${ref.name}`);
    // Only the claim this volume is bound to counts (a pre-bound, not yet bound claim has no users).
    if (!claim || claim.spec?.volumeName !== pv.metadata.name || (ref.uid && claim.metadata.uid !== ref.uid)) return out;
    for (const pod of this.deps.pods.listNamespace(ref.namespace ?? "")) {
      const node = pod.spec?.nodeName;
      if (!node || isTerminal(pod) || !podClaimNames(pod).includes(ref.name)) continue;
      out.set(node, [...(out.get(node) ?? []), pod]);
    }
    return out;
  }

  /** upstream reconciler.reportMultiAttachError: each waiting pod hears which pods (of its namespace) hold the volume. */
  private reportMultiAttach(pv: Readonly<PersistentVolume>, waiting: readonly Readonly<Pod>[], holders: readonly Readonly<Pod>[]): void {
    const name = pv.metadata.name ?? "";
    for (const pod of waiting) {
      let msg: string;
      if (holders.length === 0) {
        msg = "Volume is already exclusively attached to one node and can't be attached to another";
      } else {
        const local = holders.filter((h) => h.metadata.namespace === pod.metadata.namespace).map((h) => h.metadata.name ?? "");
        const others = holders.length - local.length;
        if (local.length > 0) msg = `Volume is already used by pod(s) ${local.join(", ")}${others > 0 ? ` and ${others} pod(s) in different namespaces` : ""}`;
        else msg = `Volume is already used by ${others} pod(s) in different namespaces`;
      }
      this.deps.recorder.event(pod, "Warning", FailedAttachVolume, `Multi-Attach error for volume "${name}" ${msg}`);
    }
  }
}

function earliest(pods: readonly Readonly<Pod>[]): number {
  return Math.min(...pods.map((p) => (p.metadata.creationTimestamp ? Date.parse(p.metadata.creationTimestamp) : 0)));
}
